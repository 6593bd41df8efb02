"""What an attribution explains, for any model output: ``nni.targets.SegmentationRegion(7, mask)`` etc.

Pass one as ``target=`` to any method; see :mod:`nn_interpretability.core.targets`, where they live.
"""
from .core.targets import (
    ClassScore,
    FunctionOfOutput,
    OutputIndex,
    Regression,
    SegmentationRegion,
    Selector,
    TokenScore,
)

__all__ = ["ClassScore", "FunctionOfOutput", "OutputIndex", "Regression", "SegmentationRegion", "Selector", "TokenScore"]
