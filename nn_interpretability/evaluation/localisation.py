"""Localisation metrics: does a map put its relevance on the object the label refers to?

Scores against a ground-truth mask of the object, one score per sample, batched over the batch:

- :func:`pointing_game`: is the most relevant pixel on the object (Zhang et al. 2018, "Top-down neural
  attention by excitation backprop", section 4.1)?
- :func:`relevance_mass_accuracy`: the share of the positive relevance that lies on the object (Arras,
  Osman & Samek 2022, "CLEVR-XAI", Information Fusion 81, section "Relevance Mass Accuracy").
- :func:`relevance_rank_accuracy`: the share of the K most relevant pixels that lie on the object, K the
  object's size (Arras et al. 2022, section "Relevance Rank Accuracy").

Attributions ``(N, C, H, W)`` are summed over channels (as the faithfulness metrics do), masks are bool
``(N, H, W)`` or ``(N, 1, H, W)``. Where these functions differ from Quantus 0.6 on purpose (ties, negative
relevance), the docstring says why and ``tests/reference/test_localisation_quantus_reference.py`` shows
both; with the Quantus conventions selected they equal Quantus.
"""
from __future__ import annotations

import torch

from .faithfulness import _pixel_relevance

TIES = ("fraction", "any")


def _relevance_and_masks(attributions: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel relevance ``(N, P)`` in float64 and the flattened masks ``(N, P)`` bool, checked."""
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a tensor, got {type(masks).__name__}")
    if not isinstance(attributions, torch.Tensor) or attributions.dim() != 4:
        shape = tuple(attributions.shape) if isinstance(attributions, torch.Tensor) else type(attributions).__name__
        raise ValueError(f"attributions must be (N, C, H, W) maps, got {shape}")
    n, _, height, width = attributions.shape
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if tuple(masks.shape) != (n, height, width):
        raise ValueError(
            f"masks of shape {tuple(masks.shape)} do not fit attributions of shape {tuple(attributions.shape)}: "
            f"give one (H, W) mask per sample, {(n, height, width)} or {(n, 1, height, width)}"
        )
    if masks.dtype != torch.bool:
        raise TypeError(f"masks must be bool (True on the object), got {masks.dtype}")
    flat = masks.reshape(n, -1).to(attributions.device)
    empty = torch.nonzero(~flat.any(1)).flatten()
    if len(empty):
        raise ValueError(f"masks of samples {empty.tolist()} are empty: a localisation score needs an object")
    # The maps are their own reference shape: any channel count is summed.
    return _pixel_relevance(attributions, attributions).double(), flat


def pointing_game(attributions: torch.Tensor, masks: torch.Tensor, ties: str = "fraction") -> torch.Tensor:
    """Whether each map's maximum lies on the object: 1.0 hit, 0.0 miss, ``(N,)``.

    Zhang et al. 2018 ("Top-down neural attention by excitation backprop", IJCV, section 4.1): a hit
    when the pixel of maximal relevance lies inside the object's mask; the accuracy is hits / (hits +
    misses), the mean of these scores. The relevance is signed (the maximum is the strongest evidence
    for the class). Zhang et al. allow a 15-pixel tolerance around the object; as in Quantus there is
    none here.

    Parameters
    ----------
    attributions : Tensor
        ``(N, C, H, W)``, summed over channels.
    masks : Tensor
        Bool ``(N, H, W)`` or ``(N, 1, H, W)``, none empty.
    ties : {"fraction", "any"}
        Several pixels sharing the maximum (constant maps, saturated maps, blocky CAM maps):
        ``"fraction"`` scores the share of them on the object, the expected hit when one maximum is
        picked at random, so a constant map scores the mask's area (chance) and lies between 0 and 1.
        ``"any"`` is Quantus 0.6's convention: a hit when any of them is on the object, under which a
        constant (all-zero) map hits every time. We consider that wrong and use ``"fraction"``.

    Returns
    -------
    Tensor
        ``(N,)`` float64 in [0, 1] (exactly 0 or 1 when the maximum is unique).
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    relevance, flat = _relevance_and_masks(attributions, masks)
    maxima = relevance == relevance.amax(1, keepdim=True)
    on_object = (maxima & flat).sum(1)
    if ties == "any":
        return (on_object > 0).double()
    return on_object.double() / maxima.sum(1)


def relevance_mass_accuracy(attributions: torch.Tensor, masks: torch.Tensor, positive: bool = True) -> torch.Tensor:
    """The share of relevance that lies on the object, ``(N,)``.

    Arras, Osman & Samek 2022 ("CLEVR-XAI: A benchmark dataset for the ground truth evaluation of
    neural network explanations", Information Fusion 81, 2022; its relevance mass accuracy
    ``R_within / R_total``): the relevance summed over the mask's pixels divided by the relevance
    summed over all pixels, where, as the paper states, only positive relevance is considered (Quantus's
    own docstring says "positive attributions" too, while its code sums the signed values).

    Parameters
    ----------
    attributions : Tensor
        ``(N, C, H, W)``, summed over channels.
    masks : Tensor
        Bool ``(N, H, W)`` or ``(N, 1, H, W)``, none empty.
    positive : bool
        ``True`` (Arras et al.): negative relevance is set to 0 first, so the score lies in [0, 1]; a
        map without positive relevance puts no mass on the object and scores 0. ``False`` is Quantus
        0.6's computation on the signed map (with ``abs=False, normalise=False``): negative relevance
        outside the object then raises the score (above 1 possibly) and a map that sums to about 0
        gives an unbounded ratio; we consider that wrong and default to ``True``.

    Returns
    -------
    Tensor
        ``(N,)`` float64.
    """
    relevance, flat = _relevance_and_masks(attributions, masks)
    if positive:
        relevance = relevance.clamp(min=0)
    within = (relevance * flat).sum(1)
    total = relevance.sum(1)
    if not positive:
        return within / total
    return torch.where(total > 0, within / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)


def relevance_rank_accuracy(attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The share of the K most relevant pixels that lie on the object, K the object's pixel count, ``(N,)``.

    Arras, Osman & Samek 2022 ("CLEVR-XAI", its relevance rank accuracy): with K = |GT| and P_top-K the K pixels of highest
    relevance, ``|P_top-K ∩ GT| / |GT|``. Relevance is signed, as in the paper and in Quantus.

    Ties at the K-th value (many exact zeros in ReLU maps) are shared out: the pixels strictly above it
    count fully and those equal to it count by the share of the remaining places among them, the
    expected score when the tie is broken at random, so a constant map scores the mask's area (chance).
    Quantus 0.6 breaks ties by NumPy's ``argsort`` order, which favours pixels by their position in the
    image; on maps without ties at the K-th value the two are equal.

    Parameters
    ----------
    attributions : Tensor
        ``(N, C, H, W)``, summed over channels.
    masks : Tensor
        Bool ``(N, H, W)`` or ``(N, 1, H, W)``, none empty.

    Returns
    -------
    Tensor
        ``(N,)`` float64 in [0, 1].
    """
    relevance, flat = _relevance_and_masks(attributions, masks)
    k = flat.sum(1)
    kth = relevance.sort(1, descending=True).values.gather(1, (k - 1)[:, None])
    above, tied = relevance > kth, relevance == kth
    places = (k - above.sum(1)).double()
    hits = (above & flat).sum(1).double() + (tied & flat).sum(1).double() * places / tied.sum(1)
    return hits / k
