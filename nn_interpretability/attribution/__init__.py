"""Decision-based methods (report section 2.2)."""
from .cam import CAM, GradCAM, GuidedGradCAM
from .deconvnet import DeconvNetReconstruction
from .deeplift import DeepLift
from .gradient import Deconvolution, GuidedBackprop, InputXGradient, Saliency, SimpleTaylor
from .integrated_gradients import IntegratedGradients
from .lime import Lime, LimeExplanation
from .lrp import LRP, DeepTaylor
from .noise_tunnel import SmoothGrad
from .occlusion import Occlusion, occlusion_sweep

__all__ = [
    "CAM",
    "GradCAM",
    "GuidedGradCAM",
    "DeconvNetReconstruction",
    "Deconvolution",
    "DeepLift",
    "DeepTaylor",
    "GuidedBackprop",
    "InputXGradient",
    "IntegratedGradients",
    "LRP",
    "Lime",
    "LimeExplanation",
    "Occlusion",
    "Saliency",
    "SimpleTaylor",
    "SmoothGrad",
    "occlusion_sweep",
]
