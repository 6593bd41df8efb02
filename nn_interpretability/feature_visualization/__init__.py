"""Model-based methods (report section 2.1): what a network has learned, independent of one input."""
from .deep_dream import DeepDream

__all__ = ["DeepDream"]
