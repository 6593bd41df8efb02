"""Decision-based methods (report section 2.2).

Imported eagerly (``eager=True``): each module registers its methods with ``get_method`` on import.
"""
from ..core.lazy import lazy_exports

# Submodule -> the public names it defines; ``__all__`` is derived from this.
_EXPORTS = {
    ".cam": ["CAM", "GradCAM", "GuidedGradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM", "EigenCAM", "ScoreCAM", "AblationCAM", "FullGrad"],
    ".deconvnet": ["DeconvNetReconstruction"],
    ".deeplift": ["DeepLift"],
    ".gradient": ["Deconvolution", "GuidedBackprop", "InputXGradient", "Saliency", "SimpleTaylor"],
    ".integrated_gradients": ["IntegratedGradients"],
    ".layer": ["LayerActivation", "LayerGradientXActivation", "LayerIntegratedGradients", "LayerConductance", "InternalInfluence", "NeuronGradient", "NeuronIntegratedGradients", "NeuronConductance"],
    ".lime": ["Lime", "LimeExplanation"],
    ".lrp": ["LRP", "DeepTaylor"],
    ".noise_tunnel": ["SmoothGrad"],
    ".occlusion": ["Occlusion", "occlusion_sweep"],
    ".rollout": ["AttentionRollout"],
    ".rise": ["RISE"],
    ".shapley": ["FeatureAblation", "GradientShap", "KernelShap", "ShapleyValueSampling"],
}

lazy_exports(__name__, _EXPORTS, globals(), eager=True)
