"""Model definitions and the zoo (``load_model``: train-or-load, cached)."""
from .efficientnet_lite import EfficientNetLite0, load_efficientnet_lite0
from .mnist import GAPCNN, MNISTCNN, BinaryCNN
from .torchvision_models import load_torchvision_model
from .textbook import xor_network
from .training import evaluate_accuracy, train_classifier
from .zoo import available, load_model, metadata, mnist_split

__all__ = [
    "GAPCNN",
    "BinaryCNN",
    "EfficientNetLite0",
    "MNISTCNN",
    "available",
    "evaluate_accuracy",
    "load_efficientnet_lite0",
    "load_model",
    "load_torchvision_model",
    "metadata",
    "mnist_split",
    "train_classifier",
    "xor_network",
]
