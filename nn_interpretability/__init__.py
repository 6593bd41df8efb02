"""nn_interpretability: interpretability methods for PyTorch models, one reproducible notebook each.

>>> import nn_interpretability as nni
>>> model = nni.load_model("mnist_cnn")
>>> images, labels = nni.data.load_mnist("test")
>>> maps = nni.Saliency(model).attribute(images[:8], target=labels[:8])
"""
__version__ = "0.1.0"

from . import data, models, plot, reports
from .attribution import Saliency
from .core import Attribution, available_methods, borrowed, get_method
from .core.seed import resolve_device, set_seed
from .models import load_model

__all__ = [
    "Attribution",
    "Saliency",
    "available_methods",
    "borrowed",
    "data",
    "get_method",
    "load_model",
    "models",
    "plot",
    "reports",
    "resolve_device",
    "set_seed",
]
