"""Data, offline by default: MNIST, rotated digits, localisation canvases, bundled photos and ImageNet helpers."""
from .canvas import compose_canvases, mask_fraction, mnist_canvas
from .imagenet import decode_predictions, deprocess, imagenet_class_names, input_bounds, normalize, preprocess
from .images import sample_images
from .mnist import DataSourceWarning, class_representatives, load_mnist
from .rotate import rotate_images, rotation_series

__all__ = [
    "DataSourceWarning",
    "class_representatives",
    "compose_canvases",
    "decode_predictions",
    "deprocess",
    "imagenet_class_names",
    "input_bounds",
    "load_mnist",
    "mask_fraction",
    "mnist_canvas",
    "normalize",
    "preprocess",
    "rotate_images",
    "rotation_series",
    "sample_images",
]
