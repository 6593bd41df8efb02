"""Complexity of an explanation: is the relevance concentrated on a few features?

Both metrics read the maps alone (no model) and score the absolute relevance of every element of each
map, flattened, per sample.

- :func:`sparseness`: the Gini index of the absolute map (Chalasani et al. 2020); higher is sparser.
- :func:`complexity`: the Shannon entropy of the absolute map as a distribution (Bhatt et al. 2020);
  lower is less complex.
"""
from __future__ import annotations

import math

import torch


def _absolute_rows(attributions: torch.Tensor) -> torch.Tensor:
    """The absolute maps, one row per sample ``(N, D)``, checked."""
    if not isinstance(attributions, torch.Tensor):
        raise TypeError(f"attributions must be a tensor, got {type(attributions).__name__}")
    if attributions.dim() < 2 or attributions.shape[0] == 0 or attributions[0].numel() < 2:
        raise ValueError(
            f"attributions must be a non-empty batch (N, ...) of maps of at least 2 elements, got shape "
            f"{tuple(attributions.shape)}"
        )
    if not attributions.is_floating_point():
        raise TypeError(f"attributions must be floating point, got dtype {attributions.dtype}")
    if not torch.isfinite(attributions).all():
        raise ValueError("attributions contain NaN or infinite values")
    return attributions.detach().flatten(1).abs()


def sparseness(attributions: torch.Tensor) -> torch.Tensor:
    """The Gini index of every absolute map: 0 for a uniform map, ``1 - 1/D`` for a single relevant element.

    Chalasani et al. 2020, "Concise explanations of neural networks using adversarial training" (ICML),
    their sparseness measure, the Gini index of Hurley & Rickard 2009: with the ``D`` absolute
    values sorted ascending, ``a_(1) <= ... <= a_(D)``,
    ``G = sum_k (2k - D - 1) a_(k) / (D sum_k a_(k))``.

    Quantus 0.6 (``quantus.Sparseness``) adds ``1e-7`` to every value before the formula, which pulls
    maps of small magnitude (a saliency map of a confident model is often ~1e-4) towards uniform: its
    score then depends on the map's scale, which the Gini index is meant not to. Here the index is
    scale invariant; ``sparseness(a + 1e-7)`` equals Quantus on ``a`` (``tests/reference``). An all-zero
    map scores 0, the limit of a constant map (Quantus gives the same through its ``1e-7``).

    Parameters
    ----------
    attributions : Tensor
        Maps ``(N, ...)``; every element of a map is a feature (sum channels first to score pixels).

    Returns
    -------
    Tensor
        ``(N,)`` in ``[0, 1)``, the maps' dtype; higher is sparser.
    """
    values = _absolute_rows(attributions).sort(dim=1).values
    d = values.shape[1]
    weights = 2 * torch.arange(1, d + 1, dtype=values.dtype, device=values.device) - d - 1
    total = values.sum(1)
    gini = (values * weights).sum(1) / (d * total.clamp(min=torch.finfo(values.dtype).tiny))
    return torch.where(total > 0, gini, torch.zeros_like(gini))


def complexity(attributions: torch.Tensor) -> torch.Tensor:
    """The entropy of every absolute map taken as a distribution over its features (nats).

    Bhatt, Weller & Moura 2020, "Evaluating and aggregating feature-based model explanations" (IJCAI),
    their complexity ``µ_C``: with ``P_g(i) = |g_i| / sum_j |g_j|``, the fractional contribution
    of feature ``i``, ``µ_C = -sum_i P_g(i) ln P_g(i)`` (``0 ln 0 = 0``).

    Equals ``quantus.Complexity`` (which takes ``P ln(P + 1e-12)``, a difference below 1e-9 per map).
    An all-zero map has no distribution; it scores ``ln D``, the limit of a constant map and the worst
    score (Quantus returns NaN).

    Parameters
    ----------
    attributions : Tensor
        Maps ``(N, ...)``; every element of a map is a feature.

    Returns
    -------
    Tensor
        ``(N,)`` in ``[0, ln D]``, the maps' dtype; lower is less complex.
    """
    values = _absolute_rows(attributions)
    total = values.sum(1, keepdim=True)
    p = values / total.clamp(min=torch.finfo(values.dtype).tiny)
    entropy = -torch.special.xlogy(p, p).sum(1)
    return torch.where(total.squeeze(1) > 0, entropy, torch.full_like(entropy, math.log(values.shape[1])))
