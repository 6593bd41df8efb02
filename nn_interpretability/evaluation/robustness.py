"""Robustness of an explanation: does the map stay put when the input moves a little?

- :func:`max_sensitivity`: the largest relative change of the map within an L∞ ball (Yeh et al. 2019).
- :func:`local_lipschitz_estimate`: the largest ratio of map change to input change under Gaussian
  noise (Alvarez-Melis & Jaakkola 2018).

Both explain all perturbed copies of all samples in a few large batches (copy-major: copy ``j`` of
sample ``i`` is row ``j * N + i``) and explain the same target on every copy: the one chosen on the
unperturbed inputs.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.base import Attribution, Target, check_inputs, forward_output
from ..core.batching import chunk_size, chunks
from ..core.hooks import borrowed
from ..core.progress import progress
from ..core.targets import as_selector
from ..core.validation import check_map_shape, non_negative_number, positive_int

Explain = Attribution | Callable[[torch.Tensor, Target], torch.Tensor]


def explainer(explain: Explain, inputs: torch.Tensor, target: Target, copies: int):
    """The maps of ``inputs`` and a function explaining rows ``block`` of ``copies`` copy-major copies.

    ``explain`` is an :class:`~nn_interpretability.core.base.Attribution` (the target is chosen once on
    the unperturbed inputs, ``None`` meaning the prediction) or a callable ``(inputs, target) -> maps``,
    which needs the target given (a class, or one per sample) so that every copy explains the same one.
    Returns ``(maps, run)`` with ``run(x, block) -> maps of x``, ``x`` being rows ``block`` of the copies.
    """
    n = inputs.shape[0]
    if isinstance(explain, Attribution):
        with borrowed(explain.model), torch.no_grad():
            selector = as_selector(target, forward_output(explain.model, inputs))
        repeated = selector.copies(copies)
        original = explain.attribute(inputs, target=selector)

        def run(x: torch.Tensor, block: range) -> torch.Tensor:
            return explain.attribute(x, target=repeated.rows(block.start, block.stop, copies * n))

    elif callable(explain):
        if target is None:
            raise ValueError(
                "a callable explain needs target given (a class or one per sample), so that every perturbed copy "
                "explains the class of its unperturbed sample; or pass an Attribution, whose target=None is the prediction"
            )
        per_sample = isinstance(target, torch.Tensor) and target.dim() == 1 or isinstance(target, (list, tuple))
        repeated = torch.as_tensor(target).repeat(copies) if per_sample else target
        original = explain(inputs, target)

        def run(x: torch.Tensor, block: range) -> torch.Tensor:
            return explain(x, repeated[block.start : block.stop] if per_sample else repeated)

    else:
        raise TypeError(f"explain must be an Attribution or a callable (inputs, target) -> maps, got {type(explain).__name__}")
    return check_map_shape(original, inputs.shape, "explain").detach(), run


def _noise(perturbations, k: int, inputs: torch.Tensor, draw) -> torch.Tensor:
    """The perturbations ``(k, N, ...)``: given ones checked, else ``draw(shape)``."""
    if perturbations is None:
        return draw((k, *inputs.shape)).to(inputs.device)
    if not isinstance(perturbations, torch.Tensor) or perturbations.dim() != inputs.dim() + 1 or perturbations.shape[1:] != inputs.shape:
        raise ValueError(f"perturbations must be a tensor (n_samples, N, ...) = (k, {', '.join(map(str, inputs.shape))})")
    return perturbations.detach().to(inputs.device, inputs.dtype)


def _largest_change(explain, inputs, target, noise, ratio, internal_batch_size, show_progress, desc) -> torch.Tensor:
    """``max_k ratio(Φ(x), Φ(x + δ_k), δ_k)`` per sample, all copies explained in chunks."""
    k, n = noise.shape[:2]
    original, run = explainer(explain, inputs, target, k)
    flat = noise.reshape(k * n, *inputs.shape[1:])
    values = torch.empty(k * n, dtype=torch.float64, device=inputs.device)
    chunk = chunk_size(inputs[0].numel(), internal_batch_size)
    for block in progress(chunks(k * n, chunk), desc, show_progress):
        sample = torch.arange(block.start, block.stop, device=inputs.device) % n
        maps = check_map_shape(run(inputs[sample] + flat[block.start : block.stop], block), (len(block), *inputs.shape[1:]), "explain")
        values[block.start : block.stop] = ratio(original[sample], maps.detach(), flat[block.start : block.stop])
    return values.view(k, n).amax(0).to(inputs.dtype)


def max_sensitivity(
    explain: Explain,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    perturbations: torch.Tensor | None = None,
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Max-sensitivity: the largest relative change of the map when the input moves within an L∞ ball.

    Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019 (NeurIPS), max-sensitivity
    ``SENS_MAX(Φ, f, x, r) = max_{||δ||∞ <= r} ||Φ(f, x + δ) - Φ(f, x)||``, estimated by
    ``n_samples`` uniform draws of ``δ`` in ``[-r, r]`` and divided by ``||Φ(f, x)||`` (Frobenius norms),
    as Captum's ``sensitivity_max`` and Quantus's ``MaxSensitivity`` do, so that maps of any scale
    compare. A zero map is divided by 1 (Captum's convention).

    Equals ``captum.metrics.sensitivity_max`` and ``quantus.MaxSensitivity`` (``normalise=False``,
    ``abs=False``) given the same perturbations.

    Parameters
    ----------
    explain : Attribution or callable
        The method (e.g. ``nni.Saliency(model)``), or ``(inputs, target) -> maps`` (then give ``target``).
    inputs : Tensor
        Batch ``(N, ...)``.
    target : any target of ``attribute``
        Explained on every perturbed copy as chosen on the unperturbed inputs (``None``: the prediction).
    radius : float
        L∞ radius ``r`` (Captum's default 0.02; Quantus's ``lower_bound`` 0.2).
    n_samples : int
        Perturbations per sample.
    perturbations : Tensor, optional
        ``(n_samples, N, ...)``: the ``δ`` to use instead of random ones (copy-major).
    internal_batch_size : int, optional
        Perturbed copies explained per call of the method (default as many as fit the memory budget).
    show_progress : bool, optional
        A progress bar over the calls.
    seed : int
        Seed of the draws.

    Returns
    -------
    Tensor
        ``(N,)``, ``>= 0``; lower is more robust.
    """
    inputs = check_inputs(inputs)
    radius = non_negative_number(radius, "radius")
    k = positive_int(n_samples, "n_samples")
    generator = torch.Generator().manual_seed(seed)
    noise = _noise(
        perturbations, k, inputs, lambda shape: (2 * torch.rand(shape, generator=generator, dtype=inputs.dtype) - 1) * radius
    )

    def ratio(original, maps, delta):
        norm = original.flatten(1).double().norm(dim=1)
        return (maps - original).flatten(1).double().norm(dim=1) / torch.where(norm == 0, torch.ones_like(norm), norm)

    return _largest_change(explain, inputs, target, noise, ratio, internal_batch_size, show_progress, "max-sensitivity")


def local_lipschitz_estimate(
    explain: Explain,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    std: float = 0.1,
    n_samples: int = 10,
    perturbations: torch.Tensor | None = None,
    internal_batch_size: int | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Local Lipschitz estimate: the largest ratio of map change to input change under Gaussian noise.

    Alvarez-Melis & Jaakkola 2018, "On the robustness of interpretability methods" (ICML WHI), the local Lipschitz
    estimate ``L(x) = max_{x' ∈ B_ε(x)} ||Φ(x) - Φ(x')||_2 / ||x - x'||_2``, estimated over ``n_samples``
    neighbours ``x' = x + δ``, ``δ ~ N(0, std^2)`` (Quantus's sampling; the paper also optimises).

    Equals ``quantus.LocalLipschitzEstimate`` (``normalise=False``, ``abs=False``) given the same
    perturbations, up to the ``1e-10`` Quantus adds to the denominator.

    Parameters
    ----------
    std : float
        Standard deviation of ``δ`` (Quantus's ``perturb_std``, 0.1).
    explain, inputs, target, n_samples, perturbations, internal_batch_size, show_progress, seed
        As in :func:`max_sensitivity`.

    Returns
    -------
    Tensor
        ``(N,)``, ``>= 0``; lower is more robust.
    """
    inputs = check_inputs(inputs)
    std = non_negative_number(std, "std")
    k = positive_int(n_samples, "n_samples")
    generator = torch.Generator().manual_seed(seed)
    noise = _noise(perturbations, k, inputs, lambda shape: std * torch.randn(shape, generator=generator, dtype=inputs.dtype))

    def ratio(original, maps, delta):
        return (maps - original).flatten(1).double().norm(dim=1) / delta.flatten(1).double().norm(dim=1)

    return _largest_change(explain, inputs, target, noise, ratio, internal_batch_size, show_progress, "local Lipschitz")
