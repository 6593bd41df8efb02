"""Decision-based methods (report section 2.2)."""
from .gradient import Saliency

__all__ = ["Saliency"]
