"""Summaries of per-sample metric scores: the mean with a bootstrap confidence interval, and paired tests.

Every metric of :mod:`nn_interpretability.evaluation` returns one score per sample; a method's score on
a data set is their mean, and how far it can be trusted is the width of its confidence interval.
Intervals are SciPy's bootstrap (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 14:
the bias-corrected and accelerated interval, BCa, section 14.3, by default); two methods scored on the
same samples are compared pairwise (Wilcoxon 1945 signed-rank test and a bootstrap interval of the mean
difference), which is far more sensitive than comparing two intervals.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from ..core.validation import positive_int

METHODS = ("BCa", "percentile", "basic")
#: Bootstrap resamples by default: enough for the interval's ends to be stable in the second digit.
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Summary:
    """The mean of per-sample scores and its bootstrap confidence interval.

    Attributes
    ----------
    mean : float
        The mean score.
    low, high : float
        The interval's ends (equal to the mean when every score is the same: nothing to resample).
    n : int
        Number of scores.
    confidence : float
        The interval's confidence level.
    method : str
        SciPy's bootstrap interval: ``"BCa"``, ``"percentile"`` or ``"basic"``.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling; the same seed gives the same interval.
    std : float
        Standard deviation of the scores (``ddof=1``; 0 for one score).
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float
    method: str
    n_resamples: int
    seed: int
    std: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _scores(scores, name: str = "scores") -> np.ndarray:
    values = scores.detach().cpu().double().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be one score per sample, a non-empty 1-D sequence; got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return values


def _check(confidence: float, method: str) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def summarize(
    scores,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    method: str = "BCa",
    seed: int = 0,
) -> Summary:
    """The mean of per-sample scores with a bootstrap confidence interval of it (``scipy.stats.bootstrap``).

    Efron & Tibshirani 1993 (section 14.3, the BCa interval; ch. 13, the percentile interval). The
    BCa interval corrects the percentile interval for the bootstrap distribution's bias and skew
    (scores bounded in [0, 1], such as hit rates near 0 or 1, are skewed).

    Parameters
    ----------
    scores : Tensor or array-like
        ``(N,)`` per-sample scores, finite.
    confidence : float
        Confidence level of the interval.
    n_resamples : int
        Bootstrap resamples.
    method : {"BCa", "percentile", "basic"}
        SciPy's interval.
    seed : int
        Seeds the resampling (recorded in the result).

    Returns
    -------
    Summary
    """
    values = _scores(scores)
    _check(confidence, method)
    n_resamples = positive_int(n_resamples, "n_resamples")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    if len(values) < 2 or np.all(values == values[0]):
        low = high = mean
    else:
        result = stats.bootstrap(
            (values,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method,
            vectorized=True, rng=np.random.default_rng(seed),
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Summary(mean, low, high, len(values), confidence, method, n_resamples, seed, std)


@dataclass(frozen=True)
class PairedTest:
    """Two methods' scores on the same samples compared: the mean difference ``a - b`` and tests of it.

    Attributes
    ----------
    difference : Summary
        Mean of the per-sample differences ``a - b`` with its bootstrap interval (the paired bootstrap).
    statistic : float
        Wilcoxon's signed-rank statistic (SciPy's: the smaller of the rank sums).
    p_value : float
        Two-sided p-value of the Wilcoxon test that the differences are symmetric about 0; 1.0 when all
        differences are 0.
    n : int
        Number of pairs.
    seed : int
        Seed of the bootstrap.
    """

    difference: Summary
    statistic: float
    p_value: float
    n: int
    seed: int

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the Wilcoxon test rejects "no difference" at level ``alpha``."""
        return self.p_value < alpha


def paired_test(
    scores_a,
    scores_b,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    method: str = "BCa",
    seed: int = 0,
) -> PairedTest:
    """Compare two methods scored on the same samples: Wilcoxon signed-rank test and a paired bootstrap.

    Wilcoxon 1945 ("Individual comparisons by ranking methods", the signed-rank test), as
    ``scipy.stats.wilcoxon`` computes it (two-sided, zero differences dropped as Wilcoxon did); the
    interval is :func:`summarize` of the per-sample differences ``a - b``.

    Parameters
    ----------
    scores_a, scores_b : Tensor or array-like
        ``(N,)`` each, sample ``i`` of both scored on the same input.
    confidence, n_resamples, method, seed
        As in :func:`summarize`.

    Returns
    -------
    PairedTest
    """
    a, b = _scores(scores_a, "scores_a"), _scores(scores_b, "scores_b")
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same samples: got {len(a)} and {len(b)} scores")
    differences = a - b
    summary = summarize(differences, confidence=confidence, n_resamples=n_resamples, method=method, seed=seed)
    if np.all(differences == 0):
        statistic, p_value = 0.0, 1.0
    else:
        test = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = float(test.statistic), float(test.pvalue)
    return PairedTest(summary, statistic, p_value, len(a), seed)
