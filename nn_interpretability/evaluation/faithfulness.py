"""Deletion and insertion curves: does the class score follow the pixels a map calls relevant?

Petsiuk, Das & Saenko 2018 (RISE, section 4.1, "deletion" and "insertion" metrics); the pixel-flipping
curve of Samek et al. 2017. Deletion removes the most relevant pixels first (replacing them by a
baseline) and watches the score fall: a faithful map gives a steep drop and a small area under the
curve. Insertion starts from the baseline and reveals the most relevant pixels first: a faithful map
gives a fast rise and a large area.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.base import Target, check_inputs, forward_output
from ..core.targets import as_selector
from ..core.batching import CHUNK_ELEMENTS, broadcast_baselines, chunk_size, chunks
from ..core.hooks import borrowed
from ..core.progress import progress
from ..core.validation import positive_int
from ..core.vocabulary import renamed_arguments

MODES = ("deletion", "insertion")
ORDERS = ("most_relevant_first", "least_relevant_first")
OUTPUTS = ("probability", "logit")
#: Curve points when neither ``steps`` nor ``step_size`` is given: every 5 % of the pixels.
DEFAULT_STEPS = 21
#: Input elements per forward pass by default (334 MNIST images). Measured with the MNIST CNN on one
#: CPU thread: 4,900 images/s in passes of 334 images, 2,500 in passes of 2,674, whose activations
#: (over 32 MB each) the allocator maps afresh and zero-fills on every pass. Where the cores are shared
#: with other processes, ``torch.set_num_threads(1)`` avoids threads waiting on each other at every
#: operation (which makes more, smaller passes slower).
PASS_ELEMENTS = CHUNK_ELEMENTS // 4


@dataclass
class FaithfulnessCurve:
    """Scores of N perturbed inputs at S fractions of perturbed pixels.

    Attributes
    ----------
    fractions : Tensor
        ``(S,)``, from 0 to 1: the share of pixels replaced (deletion) or revealed (insertion).
    scores : Tensor
        ``(N, S)``: the target's probability or logit at every fraction.
    auc : Tensor
        ``(N,)``: area under each curve over ``fractions`` by the trapezoid rule (low is faithful for
        deletion, high for insertion).
    mode, order : str
        How the curve was made.
    """

    fractions: torch.Tensor
    scores: torch.Tensor
    auc: torch.Tensor
    mode: str
    order: str


def output_scores(model: torch.nn.Module, x: torch.Tensor, n: int, output: str) -> torch.Tensor:
    """The model's output on ``x`` as ``output`` asks: raw (``"logit"``) or softmax over dimension 1 (``"probability"``).

    ``n`` is the user's batch size (``x`` may stack perturbed copies of it), for error messages.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    raw = forward_output(model, x, n)
    if output == "logit":
        return raw
    if raw.dim() < 2 or raw.shape[1] < 2:
        raise ValueError(
            f"output='probability' needs class scores along dimension 1; the model returns {(n, *raw.shape[1:])}: "
            "give output='logit' to score the raw output"
        )
    return raw.softmax(1)


def _pixel_relevance(attributions: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """One relevance per pixel, ``(N, P)``: the attribution summed over channels for ``(N, C, ...)`` inputs."""
    if not isinstance(attributions, torch.Tensor):
        raise TypeError(f"attributions must be a tensor, got {type(attributions).__name__}")
    shape, n = tuple(inputs.shape), inputs.shape[0]
    allowed = [shape] + ([(n, 1, *shape[2:])] if inputs.dim() >= 3 else [])
    if tuple(attributions.shape) not in allowed:
        raise ValueError(
            f"attributions of shape {tuple(attributions.shape)} do not fit inputs of shape {shape}: give one map "
            f"of the inputs' shape per sample" + (f" or one channel {(n, 1, *shape[2:])}" if inputs.dim() >= 3 else "")
        )
    if not torch.isfinite(attributions).all():
        raise ValueError("attributions contain NaN or infinite values")
    relevance = attributions.detach().to(inputs.device)
    return relevance.sum(1).flatten(1) if inputs.dim() >= 3 else relevance


def _step_counts(pixels: int, steps, step_size) -> torch.Tensor:
    """How many pixels are perturbed at each curve point: from 0 to all, ``(S,)``."""
    if steps is not None and step_size is not None:
        raise ValueError("give steps (curve points) or step_size (pixels per step), not both")
    if step_size is not None:
        step_size = positive_int(step_size, "step_size")
        counts = list(range(0, pixels, step_size)) + [pixels]
        return torch.tensor(counts, dtype=torch.long)
    steps = DEFAULT_STEPS if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps (curve points, both ends included) must be an int >= 2, got {steps!r}")
    return torch.linspace(0, pixels, steps, dtype=torch.float64).round().long()


def perturbation_ranks(relevance: torch.Tensor, order: str, seed: int = 0) -> torch.Tensor:
    """Position of every pixel in the perturbation order, ``(N, P)``: pixel ``p`` of sample ``i`` is
    perturbed at the steps that perturb more than ``ranks[i, p]`` pixels.

    Ties (ReLU networks give maps with many exact zeros) are broken by one seeded random permutation of
    the pixels shared by all samples, so that equal values are not taken in reading order (which would
    sweep the image from the top) and a sample's curve does not depend on the batch it is in.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    n, pixels = relevance.shape
    permutation = torch.randperm(pixels, generator=torch.Generator().manual_seed(seed)).to(relevance.device)
    descending = order == "most_relevant_first"
    sorted_positions = relevance[:, permutation].argsort(dim=1, descending=descending, stable=True)
    by_rank = permutation[sorted_positions]
    positions = torch.arange(pixels, device=relevance.device).expand(n, pixels)
    return torch.empty_like(by_rank).scatter_(1, by_rank, positions)


@renamed_arguments(baseline="baselines", batch_size="internal_batch_size", progress="show_progress")
def deletion_insertion(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    mode: str = "deletion",
    order: str = "most_relevant_first",
    baselines=0.0,
    steps: int | None = None,
    step_size: int | None = None,
    output: str = "probability",
    *,
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> FaithfulnessCurve:
    """The deletion or insertion curve of every sample, ranked by its attribution map.

    Petsiuk et al. 2018, section 4.1: the score of the explained class as a growing share of pixels,
    taken in the order of the map, is replaced by the baseline (deletion) or revealed on top of the
    baseline (insertion); the area under the curve summarises it.

    Parameters
    ----------
    model : nn.Module
        Any model (a classifier's logits ``(N, C)``, a segmenter's ``(N, C, H, W)``, a regressor's
        ``(N,)``); borrowed, never changed.
    inputs : Tensor
        Batch ``(N, ...)``. For ``(N, C, ...)`` inputs a pixel is a position over the dimensions after
        the channel: it is ranked by the attribution summed over its channels and all its channels are
        perturbed together. For ``(N, D)`` inputs every feature is a pixel.
    attributions : Tensor
        Maps of the inputs' shape, or ``(N, 1, ...)`` (e.g. Grad-CAM upsampled). Pixels are ranked by the
        signed value; pass ``attributions.abs()`` to rank by magnitude.
    target : any target of ``attribute``
        What is scored (see the README's table of targets): a class per sample (``None``: the prediction
        on the unperturbed inputs), an index tuple, a selector of :mod:`nn_interpretability.targets` or a
        callable, chosen once on the unperturbed inputs.
    mode : {"deletion", "insertion"}
    order : {"most_relevant_first", "least_relevant_first"}
        ``"least_relevant_first"`` is the anti-ordered control: a faithful map gives the opposite curve.
    baselines : float or Tensor
        What a perturbed pixel becomes (deletion) or what is shown before it is revealed (insertion): a
        number, one tensor of the per-sample shape or one per sample ``(N, ...)``. Default 0 (black).
        (``baseline`` before 0.2.)
    steps : int, optional
        Number of curve points, both ends included (default :data:`DEFAULT_STEPS`).
    step_size : int, optional
        Pixels perturbed per step instead of ``steps``; the last step may be smaller.
    output : {"probability", "logit"}
        Score plotted: the target of the softmax over the output's dimension 1 (Petsiuk et al.; for a
        segmenter, per-pixel class probabilities) or of the raw output (``"logit"``; the only choice for
        a regression output).
    internal_batch_size : int, optional
        Perturbed inputs per forward pass (``batch_size`` before 0.2); by default as many as hold
        :data:`PASS_ELEMENTS` elements (see there for speed on shared CPU cores).
    show_progress : bool, optional
        A progress bar over the forward passes (``progress`` before 0.2); ``None`` shows it in a
        terminal or notebook only.
    seed : int
        Seed of the tie-breaking permutation (:func:`perturbation_ranks`).

    Returns
    -------
    FaithfulnessCurve
        The first point is the unperturbed score (deletion) or the baseline's score (insertion), the
        last point the other.
    """
    inputs = check_inputs(inputs)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    relevance = _pixel_relevance(attributions, inputs)
    n, pixels = relevance.shape
    counts = _step_counts(pixels, steps, step_size).to(inputs.device)
    s = counts.numel()
    baselines = broadcast_baselines(baselines, inputs)
    chunk = chunk_size(inputs[0].numel(), internal_batch_size, budget=PASS_ELEMENTS)
    ranks = perturbation_ranks(relevance, order, seed)
    # A mask over pixels broadcasts over the channels of (N, C, ...) inputs.
    mask_shape = (-1, 1, *inputs.shape[2:]) if inputs.dim() >= 3 else (-1, pixels)
    start_from, replace_by = (inputs, baselines) if mode == "deletion" else (baselines, inputs)

    def score(x: torch.Tensor) -> torch.Tensor:
        return output_scores(model, x, n, output)

    scores = torch.empty(n * s, dtype=inputs.dtype, device=inputs.device)
    with borrowed(model), torch.no_grad():
        selector = as_selector(target, score(inputs))
        # Row j of the flattened (N, S) curve table is step j % S of sample j // S.
        for block in progress(chunks(n * s, chunk), mode, show_progress):
            j = torch.arange(block.start, block.stop, device=inputs.device)
            sample, step = j // s, j % s
            perturbed = (ranks[sample] < counts[step].unsqueeze(1)).view(mask_shape)
            x = torch.where(perturbed, replace_by[sample], start_from[sample])
            scores[block.start : block.stop] = selector.select(score(x), sample)
    scores = scores.view(n, s)
    fractions = counts.to(inputs.dtype) / pixels
    return FaithfulnessCurve(
        fractions=fractions, scores=scores, auc=torch.trapezoid(scores, fractions, dim=1), mode=mode, order=order
    )
