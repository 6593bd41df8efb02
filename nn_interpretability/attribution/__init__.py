"""Decision-based methods (report section 2.2)."""
from .gradient import Saliency
from .integrated_gradients import IntegratedGradients
from .noise_tunnel import SmoothGrad

__all__ = ["IntegratedGradients", "Saliency", "SmoothGrad"]
