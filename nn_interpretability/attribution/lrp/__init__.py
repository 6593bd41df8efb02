"""Layer-wise relevance propagation: rules, composites, canonizers, LRP and deep Taylor decomposition.

Report section 2.2.4–2.2.5, textbook eq. 9.18–9.29. ``nni.LRP`` and ``nni.DeepTaylor`` resolve here.
"""
from .canonizers import MergeBatchNorm, batch_norm_layer
from .composites import (
    LINEAR_LAYERS,
    Composite,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlusFlat,
    Layer,
    ReportComposite,
)
from .lrp import LRP, DeepTaylor
from .rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    LinearLayer,
    OpaqueLayer,
    Pass,
    Rule,
    WSquare,
    ZBox,
    ZPlus,
)

__all__ = [
    "LINEAR_LAYERS",
    "LRP",
    "AlphaBeta",
    "Composite",
    "DeepTaylor",
    "Epsilon",
    "EpsilonAlpha2Beta1",
    "EpsilonGammaBox",
    "EpsilonPlusFlat",
    "Flat",
    "Gamma",
    "Layer",
    "LinearLayer",
    "MergeBatchNorm",
    "OpaqueLayer",
    "Pass",
    "ReportComposite",
    "Rule",
    "WSquare",
    "ZBox",
    "ZPlus",
    "batch_norm_layer",
]
