"""Faithfulness by perturbation: does the model's output change where the map says the relevance is?

Every metric returns one score per sample, ``(N,)``, and runs all images × perturbation steps of a
call in a few large forward passes (rows of at most :data:`~.faithfulness.PASS_ELEMENTS` input
elements), never one sample at a time.

- :func:`pixel_flipping`: area under the pixel-flipping curve (Bach et al. 2015; Samek et al. 2017).
- :func:`region_perturbation`, :func:`aopc`: the region-perturbation curve and its area over the
  perturbation curve (Samek et al. 2017).
- :func:`faithfulness_correlation`: correlation of attribution sums and output drops over random
  subsets (Bhatt et al. 2020).
- :func:`road`: remove-and-debias with the noisy linear imputer (Rong et al. 2022).
- :func:`infidelity`: expected squared error of the map's linear prediction of output changes
  (Yeh et al. 2019).

Where a score is the same as Quantus 0.6's or Captum's, ``tests/reference/test_metrics_*`` check it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve

from ..core.base import Target, check_inputs
from ..core.batching import broadcast_baselines, chunk_size, chunks
from ..core.hooks import borrowed
from ..core.progress import progress
from ..core.targets import Selector, as_selector
from ..core.validation import non_negative_number, positive_int
from .agreement import _pearson_rows
from .faithfulness import (
    PASS_ELEMENTS,
    FaithfulnessCurve,
    _pixel_relevance,
    deletion_insertion,
    output_scores,
    perturbation_ranks,
)

#: Percentages of pixels ROAD removes by default: 1, 3, ..., 99 (Quantus 0.6's default).
ROAD_PERCENTAGES = tuple(range(1, 100, 2))
#: Neighbours of the noisy linear imputer and their weights (Rong et al. 2022, section 4.2): direct
#: neighbours 1/6, diagonal ones 1/12, so that the weights of an interior pixel sum to 1.
IMPUTER_NEIGHBOURS = (
    (1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12),
    (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6),
)


def _perturbed_scores(
    model, inputs: torch.Tensor, selector: Selector, rows: int, make_rows, output: str, chunk: int, desc: str, show_progress
) -> torch.Tensor:
    """Scores of ``rows`` perturbed inputs, ``(rows,)``: ``make_rows(j) -> (x, sample)`` builds rows ``j`` of a pass."""
    n = inputs.shape[0]
    scores = torch.empty(rows, dtype=inputs.dtype, device=inputs.device)
    for block in progress(chunks(rows, chunk), desc, show_progress):
        x, sample = make_rows(torch.arange(block.start, block.stop, device=inputs.device))
        scores[block.start : block.stop] = selector.select(output_scores(model, x, n, output), sample)
    return scores


def _mask_shape(inputs: torch.Tensor) -> tuple[int, ...]:
    """A mask over pixels ``(rows, P)`` viewed to broadcast over the channels of ``(N, C, ...)`` inputs."""
    return (-1, 1, *inputs.shape[2:]) if inputs.dim() >= 3 else (-1, inputs.shape[1])


def pixel_flipping(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    features_in_step: int = 1,
    baselines=0.0,
    output: str = "probability",
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Area under the pixel-flipping curve: the target's score as the most relevant pixels are replaced.

    Bach et al. 2015 (PLoS ONE, the pixel-flipping experiment); Samek et al. 2017 (IEEE TNNLS, the MoRF
    perturbation curve): ``features_in_step`` pixels at a time, most relevant first, are set to the baseline
    and the score recomputed. This is :func:`~.faithfulness.deletion_insertion` in deletion mode with
    ``step_size=features_in_step`` (its curve, for plots, is that call's ``scores``).

    Quantus 0.6 (``quantus.PixelFlipping``) returns the curve without the unperturbed point and, with
    ``return_auc_per_sample=True``, its trapezoid area over the step index (``dx=1``), which grows with
    the number of steps. Here the area is over the fraction of pixels flipped, from 0 (the unperturbed
    input) to 1, so that maps of images of any size compare; the reference test shows both and that the
    curves are equal. Quantus flips single elements of multi-channel inputs (channels separately) and
    replaces them by each image's minimum (its ``"black"``); here a pixel is all its channels and the
    baseline is ``baselines`` (0 by default; the test shows the minimum gives Quantus's curve).

    Parameters
    ----------
    model, inputs, attributions, target, baselines, output, internal_batch_size, show_progress, seed
        As in :func:`~.faithfulness.deletion_insertion` (``output="probability"``: Quantus's default).
    features_in_step : int
        Pixels flipped per step; the last step may flip fewer.

    Returns
    -------
    Tensor
        ``(N,)``; lower is more faithful.
    """
    curve = deletion_insertion(
        model, inputs, attributions, target, mode="deletion", baselines=baselines, step_size=features_in_step,
        output=output, internal_batch_size=internal_batch_size, show_progress=show_progress, seed=seed,
    )
    return curve.auc


def region_perturbation(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    patch_size: int = 4,
    regions: int | None = None,
    order: str = "most_relevant_first",
    baselines=0.0,
    output: str = "probability",
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> FaithfulnessCurve:
    """The region-perturbation curve: square patches removed one after another in the order of their relevance.

    Samek, Binder, Montavon, Lapuschkin & Müller 2017, "Evaluating the visualization of what a deep
    neural network has learned" (IEEE TNNLS), the MoRF region perturbation: ``x^(0) = x``,
    ``x^(k) = g(x^(k-1), r_k)``, where ``g`` replaces the ``patch_size × patch_size`` region ``r_k``
    (regions ranked by their summed relevance, non-overlapping) by the baseline.

    Quantus 0.6 (``quantus.RegionPerturbation``) pads images whose size is not a multiple of the patch
    (a border of partial patches); here the image size must be a multiple of ``patch_size``.

    Parameters
    ----------
    inputs : Tensor
        Images ``(N, C, H, W)`` with ``H`` and ``W`` multiples of ``patch_size``.
    patch_size : int
        Side of the square regions.
    regions : int, optional
        How many regions are removed (``L``); default all ``(H / patch_size) × (W / patch_size)``.
    order : {"most_relevant_first", "least_relevant_first"}
        MoRF (the metric) or LeRF (the control); ties broken by a seeded permutation
        (:func:`~.faithfulness.perturbation_ranks`).
    model, attributions, target, baselines, output, internal_batch_size, show_progress, seed
        As in :func:`~.faithfulness.deletion_insertion`.

    Returns
    -------
    FaithfulnessCurve
        ``scores`` ``(N, L + 1)`` from the unperturbed input; ``fractions`` the share of pixels removed.
    """
    inputs = check_inputs(inputs)
    if inputs.dim() != 4:
        raise ValueError(f"region perturbation removes square patches of images (N, C, H, W), got shape {tuple(inputs.shape)}")
    patch_size = positive_int(patch_size, "patch_size")
    n, _, height, width = inputs.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"images of size {height} x {width} do not tile into patches of {patch_size} x {patch_size}")
    relevance = _pixel_relevance(attributions, inputs).view(n, height // patch_size, patch_size, width // patch_size, patch_size)
    patch_relevance = relevance.sum((2, 4)).flatten(1)
    patches = patch_relevance.shape[1]
    regions = patches if regions is None else positive_int(regions, "regions")
    if regions > patches:
        raise ValueError(f"regions={regions} but the images have only {patches} patches of {patch_size} x {patch_size}")
    patch_ranks = perturbation_ranks(patch_relevance, order, seed).view(n, height // patch_size, 1, width // patch_size, 1)
    pixel_ranks = patch_ranks.expand(-1, -1, patch_size, -1, patch_size).reshape(n, height * width)
    steps = regions + 1
    baselines = broadcast_baselines(baselines, inputs)
    chunk = chunk_size(inputs[0].numel(), internal_batch_size, budget=PASS_ELEMENTS)

    def make_rows(j):
        sample, step = j // steps, j % steps
        removed = (pixel_ranks[sample] < step.unsqueeze(1)).view(_mask_shape(inputs))
        return torch.where(removed, baselines[sample], inputs[sample]), sample

    with borrowed(model), torch.no_grad():
        selector = as_selector(target, output_scores(model, inputs, n, output))
        scores = _perturbed_scores(model, inputs, selector, n * steps, make_rows, output, chunk, "region perturbation", show_progress)
    scores = scores.view(n, steps)
    fractions = torch.arange(steps, dtype=inputs.dtype, device=inputs.device) * patch_size**2 / (height * width)
    return FaithfulnessCurve(
        fractions=fractions, scores=scores, auc=torch.trapezoid(scores, fractions, dim=1), mode="deletion", order=order
    )


def aopc(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    patch_size: int = 4,
    regions: int | None = None,
    order: str = "most_relevant_first",
    baselines=0.0,
    output: str = "probability",
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Area over the MoRF perturbation curve of every sample: the mean drop of the score over ``L + 1`` steps.

    Samek et al. 2017, the area over the MoRF perturbation curve,
    ``AOPC = 1/(L+1) sum_{k=0}^{L} f(x^(0)) - f(x^(k))`` of the region-perturbation curve
    (:func:`region_perturbation`; the paper's AOPC also averages over images,
    which is left to the caller: the mean of these scores). Step 0 contributes 0 but is counted in
    ``L + 1``, as in the paper. Quantus 0.6 has no AOPC; its ``RegionPerturbation`` curve holds the drops
    ``f(x^(0)) - f(x^(k))`` for ``k = 1..L``, whose sum over ``L + 1`` equals this score (tested).

    Parameters
    ----------
    As in :func:`region_perturbation`.

    Returns
    -------
    Tensor
        ``(N,)``; higher is more faithful (for ``order="most_relevant_first"``).
    """
    curve = region_perturbation(
        model, inputs, attributions, target, patch_size=patch_size, regions=regions, order=order, baselines=baselines,
        output=output, internal_batch_size=internal_batch_size, show_progress=show_progress, seed=seed,
    )
    return (curve.scores[:, :1] - curve.scores).mean(1)


def _random_subsets(n: int, pixels: int, n_subsets: int, subset_size: int, seed: int, device) -> torch.Tensor:
    """``n_subsets`` subsets of ``subset_size`` distinct pixels per sample, ``(N, n_subsets, subset_size)``.

    A subset is the first ``subset_size`` pixels of a random permutation (the argsort of uniform draws),
    drawn for a few samples at a time so that the draws stay a few MB.
    """
    generator = torch.Generator().manual_seed(seed)
    per_draw = max(1, 2**22 // (n_subsets * pixels))
    subsets = [
        torch.rand(len(block), n_subsets, pixels, generator=generator).argsort(-1)[..., :subset_size]
        for block in chunks(n, per_draw)
    ]
    return torch.cat(subsets).to(device)


def faithfulness_correlation(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    n_subsets: int = 100,
    subset_size: int = 224,
    baselines=0.0,
    output: str = "logit",
    subsets: torch.Tensor | None = None,
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Pearson correlation between the relevance of random pixel subsets and the output drop when they are removed.

    Bhatt, Weller & Moura 2020, "Evaluating and aggregating feature-based model explanations" (IJCAI),
    faithfulness ``µ_F``: ``corr_{S ⊂ [d], |S| = subset_size} ( sum_{i ∈ S} g(x)_i , f(x) - f(x_[x_S = x̄_S]) )``
    over ``n_subsets`` random subsets ``S`` of each sample, ``x̄`` the baseline.

    Equals ``quantus.FaithfulnessCorrelation`` (Pearson, ``softmax=False``) given the same subsets
    (``subsets``; Quantus draws them with ``np.random.choice``).

    Parameters
    ----------
    model, inputs, attributions, target, baselines, internal_batch_size, show_progress
        As in :func:`~.faithfulness.deletion_insertion`; a pixel is a position over all channels.
    n_subsets : int
        Random subsets per sample (Quantus's ``nr_runs``).
    subset_size : int
        Pixels per subset, fewer than the image's pixels.
    output : {"logit", "probability"}
        Score whose drop is correlated (default the raw output, as Quantus).
    subsets : Tensor, optional
        ``(N, n_subsets, subset_size)`` pixel indices (flattened positions) to use instead of random ones.
    seed : int
        Seed of the random subsets.

    Returns
    -------
    Tensor
        ``(N,)`` in ``[-1, 1]`` (NaN where a sample's sums or drops are constant); higher is more faithful.
    """
    inputs = check_inputs(inputs)
    relevance = _pixel_relevance(attributions, inputs)
    n, pixels = relevance.shape
    if subsets is None:
        n_subsets, subset_size = positive_int(n_subsets, "n_subsets"), positive_int(subset_size, "subset_size")
        if subset_size >= pixels:
            raise ValueError(f"subset_size={subset_size} must be smaller than the {pixels} pixels of a sample")
        subsets = _random_subsets(n, pixels, n_subsets, subset_size, seed, inputs.device)
    else:
        if not isinstance(subsets, torch.Tensor) or subsets.dtype != torch.long or subsets.dim() != 3 or subsets.shape[0] != n:
            raise ValueError(f"subsets must be a LongTensor (N, n_subsets, subset_size) with N = {n}")
        if subsets.min() < 0 or subsets.max() >= pixels:
            raise ValueError(f"subsets index pixels 0..{pixels - 1}")
        subsets = subsets.to(inputs.device)
    k = subsets.shape[1]
    baselines = broadcast_baselines(baselines, inputs)
    chunk = chunk_size(inputs[0].numel(), internal_batch_size, budget=PASS_ELEMENTS)

    def make_rows(j):
        sample, subset = j // k, j % k
        removed = torch.zeros(len(j), pixels, dtype=torch.bool, device=inputs.device)
        removed.scatter_(1, subsets[sample, subset], True)
        return torch.where(removed.view(_mask_shape(inputs)), baselines[sample], inputs[sample]), sample

    with borrowed(model), torch.no_grad():
        unperturbed = output_scores(model, inputs, n, output)
        selector = as_selector(target, unperturbed)
        original = selector.select(unperturbed, torch.arange(n, device=inputs.device))
        perturbed = _perturbed_scores(model, inputs, selector, n * k, make_rows, output, chunk, "faithfulness correlation", show_progress)
    drops = original.unsqueeze(1) - perturbed.view(n, k)
    sums = relevance.gather(1, subsets.flatten(1)).view(n, k, -1).sum(-1)
    return _pearson_rows(sums.to(drops.dtype), drops)


def noisy_linear_imputation(
    inputs: torch.Tensor, removed: torch.Tensor, noise: float = 0.01, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Removed pixels replaced by the weighted mean of their neighbours, solved jointly, plus Gaussian noise.

    Rong, Leemann, Borisov, Kasneci & Kasneci 2022, "A consistent and efficient evaluation strategy for
    attribution methods" (ICML), section 4.2: every removed pixel equals the weighted mean of its eight
    neighbours (:data:`IMPUTER_NEIGHBOURS`, weights renormalised at the border), removed neighbours
    being unknowns too; the sparse linear system of all images of the batch is solved at once (SciPy's
    ``spsolve`` on a block-diagonal system), then ``noise × N(0, 1)`` is added to the imputed values.

    Parameters
    ----------
    inputs : Tensor
        Images ``(R, C, H, W)``; every channel is imputed with the same system.
    removed : Tensor
        Boolean ``(R, H, W)``: the pixels to impute.
    noise : float
        Standard deviation of the noise added to imputed values.
    generator : torch.Generator, optional
        Source of the noise (required when ``noise > 0``).

    Returns
    -------
    Tensor
        The imputed images, ``(R, C, H, W)``.
    """
    r, c, h, w = inputs.shape
    mask = removed.cpu().numpy()
    rows_, ys, xs = np.nonzero(mask)
    unknowns = len(ys)
    result = inputs.detach().clone()
    if unknowns == 0:
        return result
    ids = np.full(mask.shape, -1, dtype=np.int64)
    ids[rows_, ys, xs] = np.arange(unknowns)
    values = inputs.detach().cpu().double().numpy()
    diagonal = np.zeros(unknowns)
    right = np.zeros((unknowns, c))
    entries_i, entries_j, entries_v = [], [], []
    for dy, dx, weight in IMPUTER_NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        own, nr, ny, nx = np.nonzero(valid)[0], rows_[valid], ny[valid], nx[valid]
        diagonal[own] += weight
        neighbour = ids[nr, ny, nx]
        unknown = neighbour >= 0
        entries_i.append(own[unknown])
        entries_j.append(neighbour[unknown])
        entries_v.append(np.full(int(unknown.sum()), -weight))
        # a pixel has one neighbour per offset: the indices are distinct and a plain += adds them all
        right[own[~unknown]] += weight * values[nr[~unknown], :, ny[~unknown], nx[~unknown]]
    entries_i.append(np.arange(unknowns))
    entries_j.append(np.arange(unknowns))
    entries_v.append(diagonal)
    system = sparse.csc_matrix(
        (np.concatenate(entries_v), (np.concatenate(entries_i), np.concatenate(entries_j))), shape=(unknowns, unknowns)
    )
    solution = torch.as_tensor(spsolve(system, right).reshape(unknowns, c), dtype=inputs.dtype, device=inputs.device)
    if noise > 0:
        solution = solution + noise * torch.randn(solution.shape, generator=generator, dtype=inputs.dtype).to(inputs.device)
    index = [torch.as_tensor(a, device=inputs.device) for a in (rows_, ys, xs)]
    result.permute(0, 2, 3, 1)[index[0], index[1], index[2]] = solution
    return result


def road(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    percentages: Sequence[float] = ROAD_PERCENTAGES,
    order: str = "most_relevant_first",
    noise: float = 0.01,
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """ROAD: the share of removal levels at which the model still predicts the target, pixels removed by imputation.

    Rong et al. 2022 (ICML), section 4 (RemOve And Debias): for each percentage ``p`` the ``⌊P p / 100⌋``
    most (MoRF) or least (LeRF) relevant pixels are replaced by :func:`noisy_linear_imputation`, which
    leaks no information about the removal mask through its shape, and the prediction is compared with
    the target class. The paper's curve is the accuracy over a data set at every ``p``; this score is
    each sample's mean over the percentages (the area under its own 0/1 curve), whose mean over samples
    is the mean of the paper's curve.

    Equals ``quantus.ROAD`` per sample (the mean of its per-percentage 0/1 results) with ``noise=0``;
    with noise both draw different random numbers. Quantus imputes the flattened channel-first map's
    indices into the first ``H × W`` positions, correct for one channel only; here a pixel is a position
    and all its channels are imputed.

    Parameters
    ----------
    inputs : Tensor
        Images ``(N, C, H, W)``.
    target : None, int, sequence or LongTensor
        The class whose prediction is checked (``None``: the prediction on the unperturbed inputs).
    percentages : sequence of float
        Percentages of pixels removed (default 1, 3, ..., 99).
    order : {"most_relevant_first", "least_relevant_first"}
        MoRF (a faithful map loses the prediction fast: a low score) or LeRF (a high score).
    noise : float
        Standard deviation of the imputer's noise (0.01, the paper's and Quantus's).
    model, attributions, internal_batch_size, show_progress
        As in :func:`~.faithfulness.deletion_insertion`.
    seed : int
        Seed of the tie-breaking permutation and of the noise. The noise of a pixel at a percentage is
        the same for every sample, so a sample's score does not depend on the batch it is in.

    Returns
    -------
    Tensor
        ``(N,)`` in ``[0, 1]``; for MoRF lower is more faithful.
    """
    inputs = check_inputs(inputs)
    if inputs.dim() != 4:
        raise ValueError(f"ROAD imputes pixels of images (N, C, H, W), got shape {tuple(inputs.shape)}")
    noise = non_negative_number(noise, "noise")
    percentages = [float(p) for p in percentages]
    if not percentages or any(not 0 <= p <= 100 for p in percentages):
        raise ValueError(f"percentages must be a non-empty sequence of numbers in [0, 100], got {percentages!r}")
    relevance = _pixel_relevance(attributions, inputs)
    n, pixels = relevance.shape
    ranks = perturbation_ranks(relevance, order, seed)
    counts = torch.tensor([int(pixels * p / 100) for p in percentages], device=inputs.device)
    steps = len(percentages)
    generator = torch.Generator().manual_seed(seed)
    # One noise image per percentage, shared by the samples: independent over pixels and percentages.
    noise_images = noise * torch.randn((steps, *inputs.shape[1:]), generator=generator, dtype=inputs.dtype).to(inputs.device)
    chunk = chunk_size(inputs[0].numel(), internal_batch_size, budget=PASS_ELEMENTS)

    def make_rows(j):
        sample, step = j // steps, j % steps
        removed = (ranks[sample] < counts[step].unsqueeze(1)).view(-1, *inputs.shape[2:])
        imputed = noisy_linear_imputation(inputs[sample], removed, noise=0.0)
        return torch.where(removed.unsqueeze(1), imputed + noise_images[step], inputs[sample]), sample

    with borrowed(model), torch.no_grad():
        unperturbed = output_scores(model, inputs, n, "logit")
        classes = as_selector(target, unperturbed).class_indices()
        if classes is None:
            raise TypeError("ROAD compares predicted classes: target must be None, an int, a sequence or a LongTensor of classes")
        rows = n * steps
        kept = torch.empty(rows, dtype=torch.bool, device=inputs.device)
        for block in progress(chunks(rows, chunk), "ROAD", show_progress):
            x, sample = make_rows(torch.arange(block.start, block.stop, device=inputs.device))
            kept[block.start : block.stop] = output_scores(model, x, n, "logit").argmax(1) == classes[sample]
    return kept.view(n, steps).to(inputs.dtype).mean(1)


def infidelity(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    target: Target = None,
    *,
    n_perturb_samples: int = 10,
    noise_std: float = 0.1,
    perturbations: torch.Tensor | None = None,
    normalize: bool = False,
    output: str = "logit",
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Infidelity: the mean squared error of the map's linear prediction of the output change under noise.

    Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019, "On the (in)fidelity and sensitivity of explanations"
    (NeurIPS), explanation infidelity: ``INFD(Φ, f, x) = E_I[(I^T Φ(x) - (f(x) - f(x - I)))^2]``, estimated
    with ``n_perturb_samples`` draws of ``I ~ N(0, noise_std^2)`` (the paper's "noisy baseline"). With
    ``normalize`` the map is first scaled by the optimal ``β = E[I^T Φ Δf] / E[(I^T Φ)^2]`` (the paper's
    scale-invariant version, Captum's ``normalize=True``).

    Equals ``captum.metrics.infidelity`` given the same perturbations (Captum's ``perturb_func``
    returns ``(I, x - I)``).

    Parameters
    ----------
    model, inputs, target, output, internal_batch_size, show_progress
        As in :func:`~.faithfulness.deletion_insertion` (default the raw output, as Captum).
    attributions : Tensor
        Maps of the inputs' shape (or ``(N, 1, ...)``, broadcast over channels).
    n_perturb_samples : int
        Draws of ``I`` per sample.
    noise_std : float
        Standard deviation of ``I``.
    perturbations : Tensor, optional
        ``(n_perturb_samples, N, ...)``: the draws ``I`` to use instead of random ones (copy-major).
    normalize : bool
        Scale the map by the optimal ``β`` first.
    seed : int
        Seed of the draws.

    Returns
    -------
    Tensor
        ``(N,)``, ``>= 0``; lower is more faithful.
    """
    inputs = check_inputs(inputs)
    _pixel_relevance(attributions, inputs)
    maps = attributions.detach().to(inputs.device, inputs.dtype).expand_as(inputs)
    n = inputs.shape[0]
    if perturbations is None:
        k = positive_int(n_perturb_samples, "n_perturb_samples")
        noise_std = non_negative_number(noise_std, "noise_std")
        generator = torch.Generator().manual_seed(seed)
        perturbations = noise_std * torch.randn((k, *inputs.shape), generator=generator, dtype=inputs.dtype)
    elif not isinstance(perturbations, torch.Tensor) or perturbations.shape[1:] != inputs.shape:
        raise ValueError(f"perturbations must be a tensor (n_perturb_samples, N, ...) = (k, {', '.join(map(str, inputs.shape))})")
    perturbations = perturbations.detach().to(inputs.device, inputs.dtype)
    k = perturbations.shape[0]
    flat = perturbations.reshape(k * n, *inputs.shape[1:])
    chunk = chunk_size(inputs[0].numel(), internal_batch_size, budget=PASS_ELEMENTS)

    def make_rows(j):
        sample = j % n
        return inputs[sample] - flat[j], sample

    with borrowed(model), torch.no_grad():
        unperturbed = output_scores(model, inputs, n, output)
        selector = as_selector(target, unperturbed)
        original = selector.select(unperturbed, torch.arange(n, device=inputs.device))
        perturbed = _perturbed_scores(model, inputs, selector, k * n, make_rows, output, chunk, "infidelity", show_progress)
    drops = original - perturbed.view(k, n)
    predicted = (perturbations * maps).flatten(2).sum(2)
    if normalize:
        denominator = predicted.square().sum(0)
        beta = (predicted * drops).sum(0) / torch.where(denominator == 0, torch.ones_like(denominator), denominator)
        predicted = beta * predicted
    return (predicted - drops).square().mean(0)
