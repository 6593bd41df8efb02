"""nn_interpretability: interpretability methods for PyTorch models, one reproducible notebook each.

>>> import nn_interpretability as nni
>>> model = nni.load_model("mnist_cnn")
>>> images, labels = nni.data.load_mnist("test")
>>> maps = nni.Saliency(model).attribute(images[:8], target=labels[:8])

Method classes are imported on first use (``nni.IntegratedGradients`` loads only its own module), so
``import nn_interpretability`` stays cheap for notebook kernels and the report CLI.
"""
__version__ = "0.1.0"

from importlib import import_module

from . import data, models, plot, reports
from .core import Attribution, available_methods, borrowed, get_method
from .core.seed import resolve_device, set_seed
from .models import load_model

# Public name -> the module that defines it.
_LAZY = {
    **dict.fromkeys(
        ["Saliency", "InputXGradient", "SimpleTaylor", "GuidedBackprop", "Deconvolution"], ".attribution.gradient"
    ),
    "IntegratedGradients": ".attribution.integrated_gradients",
    "SmoothGrad": ".attribution.noise_tunnel",
    "Occlusion": ".attribution.occlusion",
    "Lime": ".attribution.lime",
    "DeconvNetReconstruction": ".attribution.deconvnet",
    **dict.fromkeys(["CAM", "GradCAM", "GuidedGradCAM"], ".attribution.cam"),
    "DeepLift": ".attribution.deeplift",
    **dict.fromkeys(["LRP", "DeepTaylor"], ".attribution.lrp"),
    "ActivationMaximization": ".feature_visualization.activation_maximization",
    "CodeSpaceActivationMaximization": ".feature_visualization.activation_maximization",
    "DeepDream": ".feature_visualization.deep_dream",
}
_SUBPACKAGES = ("attribution", "evaluation", "feature_visualization", "uncertainty")


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


__all__ = [
    "Attribution",
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
    *_LAZY,
]
