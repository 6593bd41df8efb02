"""Uncertainty-aware interpretability (report section 3): MC dropout, evidential deep learning,
temperature scaling, and attribution under uncertainty.

Names are imported on first use, so that the model zoo (which imports the evidential loss) does not
pull in the attribution methods.
"""
from importlib import import_module

# Public name -> the submodule that defines it.
_LAZY = {
    **dict.fromkeys(
        ["DirichletOpinion", "EvidenceLogits", "dirichlet_opinion", "evidential_mse_loss", "evidential_opinion"], ".evidential"
    ),
    **dict.fromkeys(
        [
            "DropoutMasks",
            "MCDropoutPrediction",
            "apply_keep_mask",
            "draw_keep_mask",
            "fixed_dropout_masks",
            "mc_dropout_predict",
        ],
        ".mc_dropout",
    ),
    **dict.fromkeys(
        [
            "ClassRelevance",
            "MultiPassAttribution",
            "mc_dropout_class_relevance",
            "mc_dropout_predicted_relevance",
            "noisy_predicted_relevance",
            "softmax_attribution",
        ],
        ".attribution",
    ),
    **dict.fromkeys(
        ["CalibrationBins", "TemperatureScaled", "calibration_bins", "expected_calibration_error"],
        ".temperature_scaling",
    ),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
