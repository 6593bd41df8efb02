"""Uncertainty-aware interpretability (report section 3): MC dropout, evidential deep learning,
temperature scaling, and attribution under uncertainty.

Names are imported on first use (``_EXPORTS`` below, via
:func:`~nn_interpretability.core.lazy.lazy_exports`), so that ``nni.uncertainty.calibration_bins``
does not pull in the attribution methods.
"""
from ..core.lazy import lazy_exports

# Submodule -> the public names it defines; ``__all__`` and the lazy loading are derived from this.
_EXPORTS = {
    # evidential_mse_loss is defined in models.losses (the zoo trains with it) and re-exported there.
    ".evidential": ["DirichletOpinion", "EvidenceLogits", "dirichlet_opinion", "evidential_mse_loss", "evidential_opinion"],
    ".mc_dropout": [
        "DropoutMasks",
        "MCDropoutPrediction",
        "apply_keep_mask",
        "draw_keep_mask",
        "fixed_dropout_masks",
        "mc_dropout_predict",
    ],
    ".attribution": [
        "ClassRelevance",
        "MultiPassAttribution",
        "mc_dropout_class_relevance",
        "mc_dropout_predicted_relevance",
        "noisy_predicted_relevance",
        "softmax_attribution",
    ],
    ".temperature_scaling": ["CalibrationBins", "TemperatureScaled", "calibration_bins", "expected_calibration_error"],
}

lazy_exports(__name__, _EXPORTS, globals())
