"""Perturbation and Shapley attributions over feature groups: ablation, Shapley sampling, Kernel SHAP, GradientSHAP."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LinearRegression

from ..core.base import Attribution, Run
from ..core.batching import broadcast_baselines_each, chunk_size, chunks, compute_dtype
from ..core.progress import progress
from ..core.registry import register_method
from ..core.validation import check_seed, non_negative_number, positive_int

#: Kernel SHAP's weight of the empty and the full coalition, whose Shapley kernel weight is infinite
#: (eq. 9): large enough to pin the intercept to f(baseline) and the sum to f(x) (Captum's ``inf_weight``).
INFINITE_WEIGHT = 1e6


def feature_masks(feature_mask, xs: tuple[torch.Tensor, ...]) -> tuple[list[torch.Tensor], int]:
    """Integer feature groups, one mask ``(1 or N, ...)`` broadcastable to each input, and the number of features.

    ``None`` makes every element its own feature, numbered across the inputs. One index is one feature
    in every input of a tuple (Captum 0.9 groups features across tensors). A mask may omit the batch
    dimension (one mask for every sample) or have one row per sample.
    """
    n = xs[0].shape[0]
    if feature_mask is None:
        masks, offset = [], 0
        for x in xs:
            count = x[0].numel()
            masks.append(torch.arange(offset, offset + count, device=x.device).view(1, *x.shape[1:]))
            offset += count
        return masks, max(int(m.max()) for m in masks) + 1
    given = feature_mask if isinstance(feature_mask, (tuple, list)) else (feature_mask,)
    if len(given) != len(xs):
        raise ValueError(f"feature_mask has {len(given)} masks but there are {len(xs)} inputs: give one per input")
    masks = []
    for i, (mask, x) in enumerate(zip(given, xs)):
        name = "feature_mask" if len(xs) == 1 else f"feature_mask[{i}]"
        if not isinstance(mask, torch.Tensor) or mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor of feature indices, got {getattr(mask, 'dtype', type(mask).__name__)}")
        mask = mask.to(device=x.device, dtype=torch.long)
        if mask.dim() == x.dim() - 1:
            mask = mask.unsqueeze(0)
        fits = mask.dim() == x.dim() and mask.shape[0] in (1, n)
        fits = fits and all(m in (1, s) for m, s in zip(mask.shape[1:], x.shape[1:]))
        if not fits:
            raise ValueError(
                f"{name} of shape {tuple(mask.shape)} does not broadcast to the inputs {tuple(x.shape)}: give one mask "
                f"broadcastable to a sample {tuple(x.shape[1:])}, or one per sample (N, ...)"
            )
        if mask.numel() and int(mask.min()) < 0:
            raise ValueError(f"{name} holds negative feature indices; number the features 0, 1, 2, ...")
        masks.append(mask)
    return masks, max(int(m.max()) for m in masks if m.numel()) + 1


def compose(xs, baselines, masks, keep: torch.Tensor, sample: torch.Tensor) -> list[torch.Tensor]:
    """Inputs for coalitions: row ``r`` keeps sample ``sample[r]``'s features where ``keep[r]`` is true, else its baseline."""
    composed = []
    for x, b, mask in zip(xs, baselines, masks):
        rows = mask[sample] if mask.shape[0] > 1 else mask.expand(len(sample), *mask.shape[1:])
        kept = torch.gather(keep, 1, rows.flatten(1)).view(rows.shape)
        composed.append(torch.where(kept, x[sample], b[sample]))
    return composed


def spread(values: torch.Tensor, masks, xs) -> list[torch.Tensor]:
    """Per-feature values ``(N, K)`` as maps of the inputs' shapes: each element carries its feature's value."""
    maps = []
    for x, mask in zip(xs, masks):
        rows = mask.expand(x.shape[0], *mask.shape[1:])
        maps.append(torch.gather(values, 1, rows.flatten(1)).view(rows.shape).expand_as(x).to(x.dtype).contiguous())
    return maps


def unchanged_features(xs, baselines, masks, count: int) -> torch.Tensor:
    """Whether each feature of each sample equals its baseline ``(N, K)``: switching it leaves the input as it was.

    Equal means bit for bit in floating point (``0.0`` and ``-0.0`` differ), so a composed input with the
    feature switched is the same tensor as without, and the model's score on it the same. A feature with no
    element counts as unchanged.
    """
    n = xs[0].shape[0]
    changed = torch.zeros(n, count, dtype=torch.long, device=xs[0].device)
    for x, b, mask in zip(xs, baselines, masks):
        differs = (x != b) | (x.signbit() != b.signbit()) if x.is_floating_point() else x != b
        changed.scatter_add_(1, mask.expand_as(x).flatten(1), differs.flatten(1).to(changed.dtype))
    return changed == 0


def _format_mask_argument(feature_mask, run: Run):
    """A single mask for a tuple of one input is that input's mask (Captum accepts both)."""
    if run.multiple and isinstance(feature_mask, torch.Tensor) and len(run.inputs_tuple) == 1:
        return (feature_mask,)
    return feature_mask


def _copies_per_pass(xs, requested, n: int) -> int:
    return chunk_size(sum(x.numel() for x in xs), requested, "perturbations_per_eval", rows_per_copy=n, device=xs[0].device)


@register_method("feature-ablation")
class FeatureAblation(Attribution):
    """Feature ablation: the drop of the target score when a feature group is set to the baseline.

    The perturbation counterpart of occlusion with arbitrary groups (Captum's ``FeatureAblation``; Zeiler &
    Fergus 2014 for the idea): for every feature ``k`` of ``feature_mask``, ``φ_k = f(x) − f(x with group k
    replaced by the baseline)``, credited to every element of the group. With one feature covering the whole
    input, the map is ``f(x) − f(baseline)`` everywhere. Many ablated copies run in one forward pass; a
    feature equal to its baseline in a sample has the drop 0 there without one (:func:`unchanged_features`). A
    feature index groups elements across the inputs of a tuple (Captum 0.9's convention).
    """

    takes_baselines = True
    needs_gradients = False
    perturbation_forwards = True
    multiple_inputs = True

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        feature_mask=None,
        perturbations_per_eval: int | None = None,
        show_progress: bool | None = None,
    ):
        """Score drop per feature group, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs``.
        baselines : float or Tensor
            Value of ablated elements: a number, one tensor of the per-sample shape or one per sample.
        feature_mask : LongTensor, optional
            Feature index of every element, broadcastable to a sample (``(1, 1, H, W)`` groups the channels of
            a pixel) or one mask per sample ``(N, ...)``; ``None``: every element is its own feature.
        perturbations_per_eval : int, optional
            A forward pass holds ``perturbations_per_eval × N`` ablated inputs (of any features and samples);
            ``None`` keeps a pass at about :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` elements.
        show_progress : bool, optional
            A progress bar over the forward passes; ``None`` shows it in a terminal or notebook only.
        """
        xs, n = run.inputs_tuple, run.n
        device = xs[0].device
        masks, count = feature_masks(_format_mask_argument(feature_mask, run), xs)
        baselines = broadcast_baselines_each(baselines, xs)
        per_pass = _copies_per_pass(xs, perturbations_per_eval, n)
        features = torch.arange(count, device=device)
        # Ablating a feature that already equals its baseline leaves the input as it is: its drop is 0
        # without a forward. The others run feature-major (row: feature k, sample i), per_pass N rows a pass.
        ablated, sample = (~unchanged_features(xs, baselines, masks, count)).T.nonzero().unbind(1)
        with torch.no_grad():
            clean = run.select(run.forward(run.like(xs)))
            drops = torch.zeros(n, count, dtype=compute_dtype(clean.dtype), device=device)
            for block in progress(chunks(len(ablated), per_pass * n), "feature ablation", show_progress):
                k, i = ablated[block.start : block.stop], sample[block.start : block.stop]
                keep = features != k[:, None]
                scores = run.select(run.forward(run.like(compose(xs, baselines, masks, keep, i)), i), i)
                drops[i, k] = (clean[i] - scores).to(drops.dtype)
        return run.like(spread(drops, masks, xs))


@register_method("shapley-value-sampling")
class ShapleyValueSampling(Attribution):
    """Shapley values estimated from random feature orderings (Castro et al. 2009; Strumbelj & Kononenko 2010).

    The Shapley value ``φ_k = (1/K!) Σ_π [f(x_{S_π^k ∪ {k}}) − f(x_{S_π^k})]`` (Castro et al., eq. 3),
    with ``S_π^k`` the features before ``k`` in the ordering ``π`` and absent features at the baseline, is
    estimated over ``n_samples`` random orderings: starting from the baseline, features are switched to the
    input one by one, and each is credited its marginal contribution. Per ordering the contributions add up
    to ``f(x) − f(baseline)`` exactly. Features (indices of ``feature_mask``) are shared across the inputs
    of a tuple. The orderings are Captum's draws (``torch.randperm``) from a generator seeded by ``seed``.
    A feature equal to its baseline in a sample (blank background against a zero baseline) leaves that
    sample's input unchanged when switched on: its contribution is exactly 0 and the step costs no forward
    (:func:`unchanged_features`), nor does the step that switches on the last changing feature (its input
    is the input itself).

    Parameters
    ----------
    model : nn.Module
    n_samples : int
        Random orderings.
    seed : int
        Seed of the orderings; each call starts afresh, so equal calls give equal maps.
    """

    takes_baselines = True
    needs_gradients = False
    perturbation_forwards = True
    stochastic = True
    multiple_inputs = True

    def __init__(self, model, n_samples: int = 25, seed: int = 0):
        super().__init__(model)
        self.n_samples = positive_int(n_samples, "n_samples")
        self.seed = 0 if check_seed(seed) is None else seed

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        feature_mask=None,
        permutations: torch.Tensor | None = None,
        perturbations_per_eval: int | None = None,
        show_progress: bool | None = None,
    ):
        """Estimated Shapley value of each feature group, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs``.
        baselines : float or Tensor (or a tuple, one per input)
            Value of absent features: a number, one tensor of the per-sample shape or one per sample.
        feature_mask : LongTensor (or a tuple, one per input), optional
            Feature index of every element, as for :class:`FeatureAblation`; ``None``: every element is its
            own feature.
        permutations : LongTensor, optional
            Orderings ``(P, K)`` of the ``K`` features to use instead of the random ones (all ``K!`` give
            the exact Shapley values).
        perturbations_per_eval : int, optional
            A forward pass holds ``perturbations_per_eval × N`` steps (of any orderings and samples); ``None``
            keeps a pass at about :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` elements and
            :data:`~nn_interpretability.core.batching.CPU_ROWS` rows on a CPU.
        show_progress : bool, optional
            A progress bar over the forward passes; ``None`` shows it in a terminal or notebook only.
        """
        xs, n = run.inputs_tuple, run.n
        device = xs[0].device
        masks, count = feature_masks(_format_mask_argument(feature_mask, run), xs)
        baselines = broadcast_baselines_each(baselines, xs)
        if permutations is None:
            generator = torch.Generator().manual_seed(self.seed)
            permutations = torch.stack([torch.randperm(count, generator=generator) for _ in range(self.n_samples)])
        elif not isinstance(permutations, torch.Tensor) or permutations.dim() != 2 or permutations.shape[1] != count:
            shape = tuple(permutations.shape) if isinstance(permutations, torch.Tensor) else type(permutations).__name__
            raise ValueError(f"permutations must be a tensor (P, K) of orderings of the K = {count} features, got {shape}")
        elif not torch.equal(permutations.sort(1).values.cpu(), torch.arange(count).expand(permutations.shape)):
            raise ValueError(f"every row of permutations must be an ordering of the features 0 .. {count - 1}")
        permutations = permutations.to(device)
        orderings = len(permutations)
        per_pass = _copies_per_pass(xs, perturbations_per_eval, n)
        # Step j of ordering p switches on the features ranked <= j. Only the features that differ from their
        # baseline change the input: after step j sample i's input is its state `state[i, p, j]`, the number
        # of such features on, from 0 (the baseline) to `changing[i]` (the input itself). The forwards of
        # the target and of the baselines score those two; a forward scores each state in between, at the
        # step that reaches it. All orderings' steps share the passes, ordering-major (p, j, i).
        changes = ~unchanged_features(xs, baselines, masks, count)
        changing = changes.sum(1)
        switched = changes[:, permutations]  # (N, P, K): step j of ordering p switches on a changing feature
        state = switched.cumsum(2)
        needed = switched & (state < changing[:, None, None])
        ordering, step, sample = needed.permute(1, 2, 0).nonzero().unbind(1)
        ranks = torch.empty_like(permutations).scatter_(1, permutations, torch.arange(count, device=device).expand_as(permutations))
        with torch.no_grad():
            full = run.select(run.forward(run.like(xs)))
            start = run.select(run.forward(run.like(baselines)))  # the target was chosen on the inputs
            table = start.view(n, 1, 1).repeat(1, orderings, count + 1)  # score of each state, per ordering
            table.scatter_(2, changing.view(n, 1, 1).expand(n, orderings, 1), full.view(n, 1, 1).expand(n, orderings, 1))
            for block in progress(chunks(len(sample), per_pass * n), "shapley value sampling", show_progress):
                i, p, j = (v[block.start : block.stop] for v in (sample, ordering, step))
                keep = ranks[p] <= j[:, None]
                table[i, p, state[i, p, j]] = run.select(run.forward(run.like(compose(xs, baselines, masks, keep, i)), i), i)
        path = torch.cat([start.view(n, 1, 1).expand(n, orderings, 1), table.gather(2, state)], 2)
        dtype = compute_dtype(full.dtype)
        marginal = (path[:, :, 1:] - path[:, :, :-1]).to(dtype)  # (N, P, K): the contribution of feature order[p, j]
        totals = torch.zeros(n, count, dtype=dtype, device=device)
        totals.index_add_(1, permutations.flatten(), marginal.reshape(n, -1))
        return run.like(spread(totals / orderings, masks, xs))

    def __repr__(self) -> str:
        return f"ShapleyValueSampling({type(self.model).__name__}, n_samples={self.n_samples})"


def shapley_kernel(coalitions: torch.Tensor) -> torch.Tensor:
    """Shapley kernel weight ``(M − 1) / (C(M, |z|) |z| (M − |z|))`` of each coalition (Lundberg & Lee 2017, eq. 9).

    The empty and the full coalition, of infinite weight, get :data:`INFINITE_WEIGHT`.
    """
    m = coalitions.shape[1]
    size = coalitions.sum(1).double()
    binomial = torch.exp(torch.lgamma(torch.tensor(m + 1.0)) - torch.lgamma(size + 1) - torch.lgamma(m - size + 1))
    weights = (m - 1) / (binomial * size * (m - size))
    return torch.where((size == 0) | (size == m), torch.full_like(weights, INFINITE_WEIGHT), weights)


@register_method("kernel-shap")
class KernelShap(Attribution):
    """Kernel SHAP: Shapley values as a weighted linear regression on random coalitions (Lundberg & Lee 2017).

    Coalitions ``z ∈ {0, 1}^K`` of the feature groups switch features between the input and the baseline;
    the target scores on them are regressed linearly on ``z`` with the Shapley kernel weights (eq. 8–9,
    Theorem 2), whose coefficients are the Shapley values. As Captum does, the coalitions are drawn from the
    kernel itself — the number of features ``k`` with ``p(k) ∝ (K − 1) / (k (K − k))``, then ``k`` features
    uniformly — so each drawn coalition has weight 1, and the full and the empty coalition come first with
    weight :data:`INFINITE_WEIGHT`. The draws are Captum's (``Categorical`` then ``torch.randn``) from a
    generator seeded by ``seed``, one set of coalitions for every sample of the batch (each sample's map is
    Captum's on that sample alone after ``torch.manual_seed(seed)``); the regression is scikit-learn's ``LinearRegression`` with
    ``sample_weight`` (minimum-norm least squares), in float64. Features are shared across the inputs of a tuple.
    A coalition changes a sample's input through its features that differ from their baseline only, so a
    forward scores each distinct coalition of those once (drawn coalitions repeat: 13 of 200 over 49
    features, and blank cells of a digit against a zero baseline merge many more), and the input itself and
    the baseline come from one forward each.

    Parameters
    ----------
    model : nn.Module
    n_samples : int
        Coalitions per sample, the full and the empty one included.
    seed : int
        Seed of the coalitions; each call starts afresh, so equal calls give equal maps.
    """

    takes_baselines = True
    needs_gradients = False
    perturbation_forwards = True
    stochastic = True
    multiple_inputs = True

    def __init__(self, model, n_samples: int = 25, seed: int = 0):
        super().__init__(model)
        self.n_samples = positive_int(n_samples, "n_samples")
        if self.n_samples < 3:
            raise ValueError(f"n_samples must be >= 3 (the full and the empty coalition and a drawn one), got {n_samples}")
        self.seed = 0 if check_seed(seed) is None else seed

    def coalitions(self, count: int) -> torch.Tensor:
        """The coalitions ``(n_samples, K)``: full, empty, then draws from the Shapley kernel (Captum's order)."""
        if count < 2:
            raise ValueError(f"Kernel SHAP needs at least 2 features, the feature mask has {count}")
        sizes = torch.arange(count, dtype=torch.float)
        probabilities = (count - 1) / (sizes * (count - sizes))
        probabilities[0] = 0.0
        probabilities = probabilities / probabilities.sum()
        generator = torch.Generator().manual_seed(self.seed)
        z = torch.zeros(self.n_samples, count, dtype=torch.bool)
        z[0] = True
        for s in range(2, self.n_samples):
            k = int(torch.multinomial(probabilities, 1, True, generator=generator))
            values = torch.randn(1, count, generator=generator)
            z[s] = values[0] > torch.kthvalue(values, count - k).values
        return z

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        feature_mask=None,
        coalitions: torch.Tensor | None = None,
        perturbations_per_eval: int | None = None,
        show_progress: bool | None = None,
    ):
        """Kernel SHAP value of each feature group, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs``.
        baselines : float or Tensor (or a tuple, one per input)
            Value of absent features: a number, one tensor of the per-sample shape or one per sample.
        feature_mask : LongTensor (or a tuple, one per input), optional
            Feature index of every element, as for :class:`FeatureAblation`; ``None``: every element is its
            own feature.
        coalitions : Tensor, optional
            Binary coalitions ``(S, K)`` for every sample, weighted by the Shapley kernel
            (:func:`shapley_kernel`), instead of the drawn ones: all ``2^K`` give the exact Shapley values.
        perturbations_per_eval : int, optional
            A forward pass holds ``perturbations_per_eval × N`` coalitions (of any samples); ``None`` keeps a
            pass at about :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` elements.
        show_progress : bool, optional
            A progress bar over the forward passes; ``None`` shows it in a terminal or notebook only.
        """
        xs, n = run.inputs_tuple, run.n
        device = xs[0].device
        masks, count = feature_masks(_format_mask_argument(feature_mask, run), xs)
        baselines = broadcast_baselines_each(baselines, xs)
        if coalitions is None:
            z = self.coalitions(count)
            weights = torch.ones(self.n_samples, dtype=torch.float64)
            weights[:2] = INFINITE_WEIGHT
        else:
            if not isinstance(coalitions, torch.Tensor) or coalitions.dim() != 2 or coalitions.shape[1] != count:
                shape = tuple(coalitions.shape) if isinstance(coalitions, torch.Tensor) else type(coalitions).__name__
                raise ValueError(f"coalitions must be a binary tensor (S, K) over the K = {count} features, got {shape}")
            if not ((coalitions == 0) | (coalitions == 1)).all():
                raise ValueError("coalitions must hold only 0 and 1")
            z = coalitions.cpu().bool()
            weights = shapley_kernel(z)
        # A coalition changes sample i's input through its features that differ from their baseline only:
        # it scores as the coalition of those alone. Each distinct such coalition of a sample is scored once,
        # the input itself by the forward of the batch and no changing feature by that of the baselines.
        changes = ~unchanged_features(xs, baselines, masks, count)
        z_on_device = z.to(device)
        distinct, owner, index, offset = [], [], [], 0
        for i in range(n):
            rows, inverse = torch.unique(z_on_device & changes[i], dim=0, return_inverse=True)
            distinct.append(rows)
            owner.append(torch.full((len(rows),), i, device=device))
            index.append(inverse + offset)
            offset += len(rows)
        distinct, owner, index = torch.cat(distinct), torch.cat(owner), torch.stack(index)  # (R, K), (R,), (N, S)
        needed = ((distinct != changes[owner]).any(1) & distinct.any(1)).nonzero().squeeze(1)
        per_pass = _copies_per_pass(xs, perturbations_per_eval, n)
        with torch.no_grad():
            full = run.select(run.forward(run.like(xs)))
            empty = run.select(run.forward(run.like(baselines)))  # the target was chosen on the inputs
            score = torch.where(distinct.any(1), full[owner], empty[owner])
            for block in progress(chunks(len(needed), per_pass * n), "kernel shap", show_progress):
                r = needed[block.start : block.stop]
                i = owner[r]
                score[r] = run.select(run.forward(run.like(compose(xs, baselines, masks, distinct[r], i)), i), i)
        y = score[index].double().cpu().numpy()
        features, weights = z.double().numpy(), weights.numpy()
        values = np.stack([LinearRegression().fit(features, y[i], sample_weight=weights).coef_ for i in range(n)])
        return run.like(spread(torch.as_tensor(values, device=device), masks, xs))

    def __repr__(self) -> str:
        return f"KernelShap({type(self.model).__name__}, n_samples={self.n_samples})"


def baseline_distribution(baselines, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Reference samples ``(B, ...)`` per input: a number or one tensor of the per-sample shape is a distribution of one."""
    given = baselines if isinstance(baselines, (tuple, list)) else (baselines,) * len(xs)
    if isinstance(baselines, torch.Tensor) and len(xs) > 1:
        raise ValueError(f"there are {len(xs)} inputs: give baselines as a tuple of {len(xs)}, or one number")
    if len(given) != len(xs):
        raise ValueError(f"baselines has {len(given)} entries but there are {len(xs)} inputs: give one per input")
    distributions = []
    for b, x in zip(given, xs):
        if isinstance(b, bool) or not isinstance(b, (int, float, torch.Tensor)):
            raise TypeError(f"baselines must be a number or a tensor of reference samples (B, ...), got {type(b).__name__}")
        b = torch.as_tensor(b, dtype=x.dtype, device=x.device).detach()
        if b.dim() == 0:
            b = b.expand(1, *x.shape[1:])
        elif b.shape == x.shape[1:]:
            b = b.unsqueeze(0)
        if b.dim() != x.dim() or b.shape[1:] != x.shape[1:] or b.shape[0] == 0:
            raise ValueError(
                f"baselines of shape {tuple(b.shape)} are no distribution for inputs {tuple(x.shape)}: give reference "
                f"samples (B, {', '.join(map(str, x.shape[1:]))}), one of the per-sample shape, or a number"
            )
        if not torch.isfinite(b).all():
            raise ValueError("baselines contain NaN or infinite values")
        distributions.append(b)
    return tuple(distributions)


@register_method("gradient-shap")
class GradientShap(Attribution):
    """GradientSHAP / expected gradients: ``E[(x̃ − x') ∘ ∂f_c(x' + α(x̃ − x'))/∂x]`` over baselines, α and noise.

    Lundberg & Lee 2017 (SHAP values as expected gradients of a smoothed model) and Erion et al. 2021
    (expected gradients, eq. 4): the integral of Integrated Gradients over a baseline distribution,
    estimated with ``n_samples`` draws per sample of a baseline ``x'`` from ``baselines``, a point
    ``α ~ U(0, 1)`` on the path and Gaussian noise ``x̃ = x + ε``, ``ε ~ N(0, stdevs²)`` (Captum's
    ``GradientShap``, with its draws: the baseline indices and ``α`` from NumPy's ``RandomState(seed)``,
    the noise, in float32 as Captum's, from a ``torch.Generator`` seeded by ``seed``).

    Parameters
    ----------
    model : nn.Module
    multiply_by_inputs : bool
        ``True``: ``(x̃ − x') ∘ gradient`` (global attribution); ``False``: the expected gradient alone.
    n_samples : int
        Draws per sample.
    stdevs : float or tuple of float
        Absolute standard deviation of the noise (per input for a tuple); 0 adds none. Unlike SmoothGrad's,
        not a fraction of the value range: Captum's convention.
    seed : int
        Seed of the draws; each call starts afresh, so equal calls give equal maps.
    """

    takes_baselines = True
    has_convergence_delta = True
    stochastic = True
    multiple_inputs = True

    def __init__(self, model, multiply_by_inputs: bool = True, n_samples: int = 5, stdevs=0.0, seed: int = 0):
        super().__init__(model)
        self.multiplies_by_inputs = bool(multiply_by_inputs)
        self.n_samples = positive_int(n_samples, "n_samples")
        for s in stdevs if isinstance(stdevs, (tuple, list)) else (stdevs,):
            non_negative_number(s, "stdevs")
        self.stdevs = stdevs
        self.seed = 0 if check_seed(seed) is None else seed

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
        show_progress: bool | None = None,
    ):
        """Expected gradients of each sample's target score, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor or tuple of Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs``.
        baselines : float or Tensor (or a tuple, one per input)
            The baseline distribution: reference samples ``(B, ...)`` drawn uniformly, one tensor of the
            per-sample shape, or a number.
        internal_batch_size : int, optional
            Draws (over all samples) per forward/backward pass; ``None`` keeps a pass at about
            :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` input elements.
        return_convergence_delta : bool
            Also return, per sample, the mean over its draws of Captum's delta
            ``Σ (x̃ − x') ∘ g − (f_c(x̃) − f_c(x'))``, shape ``(N,)`` (Captum returns the ``N × n_samples``
            draws); computed from ``(x̃ − x') ∘ g`` whether or not ``multiply_by_inputs`` is set.
        show_progress : bool, optional
            A progress bar over the passes; ``None`` shows it in a terminal or notebook only.
        """
        xs, n = run.inputs_tuple, run.n
        device = xs[0].device
        distributions = baseline_distribution(baselines, xs)
        stdevs = self.stdevs if isinstance(self.stdevs, (tuple, list)) else (self.stdevs,) * len(xs)
        if len(stdevs) != len(xs):
            raise ValueError(f"stdevs has {len(stdevs)} entries but there are {len(xs)} inputs: give one per input")
        draws = n * self.n_samples
        # Captum's draws in its order; draw r = i * n_samples + s belongs to sample i.
        numpy_random = np.random.RandomState(self.seed)
        indices = [torch.as_tensor(numpy_random.choice(b.shape[0], draws), device=device) for b in distributions]
        generator = torch.Generator().manual_seed(self.seed)
        noises = [torch.randn((draws, *x.shape[1:]), generator=generator) * torch.tensor(float(s)) for x, s in zip(xs, stdevs)]
        alphas = torch.as_tensor(numpy_random.uniform(0.0, 1.0, draws), dtype=xs[0].dtype, device=device)
        dtype = compute_dtype(xs[0].dtype)
        chunk = chunk_size(sum(x[0].numel() for x in xs), internal_batch_size, rows_per_copy=1, device=device)
        selector = run.selector
        totals = [torch.zeros(x.shape, dtype=dtype, device=device) for x in xs]
        deltas = torch.zeros(n, dtype=dtype, device=device)
        for rows in progress(chunks(draws, chunk), "gradient shap", show_progress):
            r = torch.arange(rows.start, rows.stop, device=device)
            sample = r // self.n_samples
            noisy = [x[sample] + noise[rows.start : rows.stop].to(device) for x, noise in zip(xs, noises)]
            starts = [b[index[r]] for b, index in zip(distributions, indices)]
            scaled = []
            for v, b in zip(noisy, starts):
                alpha = alphas[r].view(-1, *(1,) * (v.dim() - 1))
                scaled.append((alpha * v + (1 - alpha) * b).requires_grad_(True))
            gradients = torch.autograd.grad(selector(run.forward(run.like(scaled), sample), sample).sum(), scaled)
            products = [g.to(dtype) * (v - b).to(dtype) for g, v, b in zip(gradients, noisy, starts)]
            for total, g, p in zip(totals, gradients, products):
                total.index_add_(0, sample, p if self.multiplies_by_inputs else g.to(dtype))
            if return_convergence_delta:
                with torch.no_grad():
                    ends = selector(run.forward(run.like(noisy), sample), sample)
                    begins = selector(run.forward(run.like(starts), sample), sample)
                    change = sum(p.flatten(1).sum(1) for p in products) - (ends - begins).to(dtype)
                deltas.index_add_(0, sample, change)
        maps = run.like(total / self.n_samples for total in totals)
        return (maps, deltas / self.n_samples) if return_convergence_delta else maps

    def __repr__(self) -> str:
        return f"GradientShap({type(self.model).__name__}, n_samples={self.n_samples}, stdevs={self.stdevs})"
