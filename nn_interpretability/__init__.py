"""nn_interpretability: interpretability methods for PyTorch models, one reproducible notebook each.

>>> import nn_interpretability as nni
>>> model = nni.load_model("mnist_cnn")
>>> images, labels = nni.data.load_mnist("test")
>>> maps = nni.Saliency(model).attribute(images[:8], target=labels[:8])

Every public name is imported on first use (``nni.IntegratedGradients`` loads only its own module,
``nni.plot`` only the plotting helpers), so ``import nn_interpretability`` stays cheap for notebook
kernels and the report CLI. ``_EXPORTS`` below is the one list of them: ``__all__``, ``dir(nni)`` and
the lazy loading are derived from it (:func:`~nn_interpretability.core.lazy.lazy_exports`).
"""
from .core.lazy import lazy_exports
from .core.registry import add_method_package
from .core.version import __version__

# Public name -> listed once, under the module that defines it.
_EXPORTS = {
    ".core": ["Attribution", "available_methods", "borrowed", "get_method"],
    ".core.seed": ["resolve_device", "set_seed"],
    ".models": ["load_model"],
    ".attribution.gradient": ["Saliency", "InputXGradient", "SimpleTaylor", "GuidedBackprop", "Deconvolution"],
    ".attribution.integrated_gradients": ["IntegratedGradients"],
    ".attribution.noise_tunnel": ["SmoothGrad"],
    ".attribution.occlusion": ["Occlusion"],
    ".attribution.lime": ["Lime"],
    ".attribution.deconvnet": ["DeconvNetReconstruction"],
    ".attribution.cam": ["CAM", "GradCAM", "GuidedGradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM", "EigenCAM", "ScoreCAM", "AblationCAM", "FullGrad"],
    ".attribution.deeplift": ["DeepLift"],
    ".attribution.lrp": ["LRP", "DeepTaylor"],
    ".attribution.rollout": ["AttentionRollout"],
    ".attribution.layer": ["LayerActivation", "LayerGradientXActivation", "LayerIntegratedGradients", "LayerConductance", "InternalInfluence", "NeuronGradient", "NeuronIntegratedGradients", "NeuronConductance"],
    ".attribution.shapley": ["FeatureAblation", "ShapleyValueSampling", "KernelShap", "GradientShap"],
    ".attribution.rise": ["RISE"],
    ".concepts.tcav": ["TCAV"],
    ".feature_visualization.activation_maximization": ["ActivationMaximization", "CodeSpaceActivationMaximization"],
    ".feature_visualization.deep_dream": ["DeepDream"],
}
_PACKAGES = ("attribution", "concepts", "data", "evaluation", "feature_visualization", "jobs", "models", "plot", "reports", "targets", "uncertainty")

lazy_exports(__name__, _EXPORTS, globals(), submodules=_PACKAGES)
# The registry (core) imports no method package itself; this package, above them all, names them.
add_method_package(f"{__name__}.attribution")
