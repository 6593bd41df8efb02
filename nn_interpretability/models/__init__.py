"""Model definitions and the zoo (``load_model``: train-or-load, cached).

Names load on first use (``_EXPORTS``), so that ``nn_interpretability.models.losses`` (imported by
``nni.uncertainty``) does not pull in torchvision and the zoo.
"""
from ..core.lazy import lazy_exports

# Submodule -> the public names it defines; ``__all__`` and the lazy loading are derived from this.
_EXPORTS = {
    ".efficientnet_lite": ["EfficientNetLite0", "load_efficientnet_lite0"],
    ".mnist": ["GAPCNN", "MNISTCNN", "BinaryCNN"],
    ".torchvision_models": ["load_torchvision_model"],
    ".textbook": ["xor_network"],
    ".training": ["evaluate_accuracy", "train_classifier"],
    ".zoo": ["available", "load_model", "metadata", "mnist_split"],
}

lazy_exports(__name__, _EXPORTS, globals())
