"""Model-based methods (report section 2.1): what a network has learned, independent of one input."""
from .activation_maximization import ActivationMaximization, CodeSpaceActivationMaximization
from .deep_dream import DeepDream

__all__ = ["ActivationMaximization", "CodeSpaceActivationMaximization", "DeepDream"]
