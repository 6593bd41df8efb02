"""Integrated Gradients: the path integral of the gradient from a baseline to the input (report section 2.2.1)."""
from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from tqdm import tqdm

from ..core.base import Attribution, Target, check_inputs, forward_scores, resolve_target, select_target
from ..core.hooks import borrowed
from ..core.registry import register_method

#: Input elements (copies × elements per sample) that one forward/backward pass may hold when no
#: ``internal_batch_size`` is given. CNN activations kept for backward are typically 10–100× the input,
#: so a chunk's autograd graph stays around a few hundred MB (e.g. 6 copies of a 3×224×224 image).
CHUNK_ELEMENTS = 2**20

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "uniform")


def default_chunk_size(elements_per_copy: int, budget: int = CHUNK_ELEMENTS) -> int:
    """How many copies of an input of ``elements_per_copy`` elements fit in one pass of ``budget`` elements (≥ 1)."""
    return max(1, budget // max(1, elements_per_copy))


def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alpha`` in [0, 1] and weights of a rule approximating ``∫_0^1 g(alpha) dalpha ≈ Σ w g(alpha)``.

    ``gausslegendre`` and the ``riemann_*`` rules follow Captum's conventions (the same points and
    weights, computed here in float64), including its ``riemann_trapezoid``: the points
    ``k / (n - 1)`` with weights ``1/n`` halved at both ends, which sum to ``(n - 1)/n`` rather than 1.
    ``uniform`` is the textbook's eq. 9.15–9.16: ``T = n_steps`` points ``t / (T - 1)`` including both
    ends, each weighted ``1/T``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown integration method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int):
        raise TypeError(f"n_steps must be an int, got {type(n_steps).__name__}")
    minimum = 1 if method == "gausslegendre" else 2
    if n_steps < minimum:
        raise ValueError(f"method {method!r} needs n_steps >= {minimum}, got {n_steps}")
    n = n_steps
    k = np.arange(n, dtype=np.float64)
    weights = np.full(n, 1.0 / n)
    if method == "gausslegendre":
        nodes, legendre_weights = np.polynomial.legendre.leggauss(n)
        # Map the rule from [-1, 1] to [0, 1]: the interval halves, so do the weights.
        return (nodes + 1.0) / 2.0, legendre_weights / 2.0
    if method == "riemann_left":
        return k / n, weights
    if method == "riemann_right":
        return (k + 1.0) / n, weights
    if method == "riemann_middle":
        return (k + 0.5) / n, weights
    alphas = k / (n - 1)
    if method == "riemann_trapezoid":
        weights[[0, -1]] /= 2.0
    return alphas, weights


def _broadcast_baselines(baselines, inputs: torch.Tensor) -> torch.Tensor:
    """Baselines as a tensor of the inputs' shape ``(N, ...)`` (an expanded view where possible)."""
    if isinstance(baselines, bool) or not isinstance(baselines, (Real, torch.Tensor)):
        raise TypeError(f"baselines must be a number or a tensor, got {type(baselines).__name__}")
    baselines = torch.as_tensor(baselines, dtype=inputs.dtype, device=inputs.device).detach()
    sample_shape = inputs.shape[1:]
    if baselines.dim() == 0 or baselines.shape == sample_shape:
        baselines = baselines.expand_as(inputs)
    elif baselines.shape[1:] == sample_shape and baselines.shape[0] in (1, inputs.shape[0]):
        baselines = baselines.expand_as(inputs)
    else:
        raise ValueError(
            f"baselines of shape {tuple(baselines.shape)} do not fit inputs of shape {tuple(inputs.shape)}: "
            f"give a number, one baseline of the per-sample shape {tuple(sample_shape)}, or one per sample "
            f"of shape {tuple(inputs.shape)}"
        )
    if not torch.isfinite(baselines).all():
        raise ValueError("baselines contain NaN or infinite values")
    return baselines


@register_method("integrated-gradients")
class IntegratedGradients(Attribution):
    """Integrated Gradients: ``(x - x') ∘ ∫_0^1 ∂f_c(x' + α(x - x'))/∂x dα`` along the straight path.

    Sundararajan et al. 2017, "Axiomatic attribution for deep networks"; the report's eq. (5) and the
    textbook's eq. 9.15–9.16. The integral is a weighted sum over ``n_steps`` points of the path
    (see :func:`quadrature`), so ``Σ_i attribution_i ≈ f_c(x) - f_c(x')`` (completeness, eq. 9.17).

    Parameters
    ----------
    model : nn.Module
        A classifier returning class scores ``(N, C)``.
    multiply_by_inputs : bool
        ``True`` (the paper) multiplies the path-averaged gradient by ``x - x'``; ``False`` returns the
        averaged gradient itself, the variant of the report's footnote 2 used to compare with other
        gradient maps.
    """

    def __init__(self, model, multiply_by_inputs: bool = True):
        super().__init__(model)
        self.multiply_by_inputs = bool(multiply_by_inputs)

    def attribute(
        self,
        inputs: torch.Tensor,
        target: Target = None,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
    ):
        """Integrated gradients of each sample's target score, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs`` (not on the path points).
        baselines : float or Tensor
            The reference ``x'``: a number, one tensor of the per-sample shape (shared by all samples)
            or one per sample ``(N, ...)``.
        n_steps : int
            Points on the path.
        method : str
            ``"gausslegendre"`` (default), ``"riemann_left"``, ``"riemann_right"``,
            ``"riemann_middle"``, ``"riemann_trapezoid"`` (Captum's rules) or ``"uniform"``
            (the textbook's ``t / (T - 1)`` points with weight ``1/T``).
        internal_batch_size : int, optional
            Path points (over all samples) per forward/backward pass. ``None`` chooses it so that a pass
            holds at most :data:`CHUNK_ELEMENTS` input elements; unlike Captum's default, memory does
            not grow with ``n_steps × N``.
        return_convergence_delta : bool
            Also return, per sample, ``Σ (x - x') ∘ ḡ - (f_c(x) - f_c(x'))`` with ``ḡ`` the integrated
            gradient: the quadrature error of the path integral (completeness would make it 0). It
            is the same number whether or not ``multiply_by_inputs`` is set.

        Returns
        -------
        Tensor, or (Tensor, Tensor) with the per-sample delta of shape ``(N,)``
        """
        inputs = check_inputs(inputs)
        alphas, weights = quadrature(method, n_steps)
        baselines = _broadcast_baselines(baselines, inputs)
        if internal_batch_size is not None:
            if isinstance(internal_batch_size, bool) or not isinstance(internal_batch_size, int):
                raise TypeError(f"internal_batch_size must be an int or None, got {type(internal_batch_size).__name__}")
            if internal_batch_size < 1:
                raise ValueError(f"internal_batch_size must be >= 1, got {internal_batch_size}")
        n = inputs.shape[0]
        chunk = internal_batch_size or default_chunk_size(inputs[0].numel())
        alphas = torch.as_tensor(alphas, dtype=inputs.dtype, device=inputs.device)
        weights = torch.as_tensor(weights, dtype=inputs.dtype, device=inputs.device)
        difference = inputs - baselines
        trailing = (1,) * (inputs.dim() - 1)

        with borrowed(self.model):
            with torch.no_grad():
                output = forward_scores(self.model, inputs)
            indices = resolve_target(target, output)
            integrated = torch.zeros_like(inputs)
            # Path point j is step j // N of sample j % N; chunks may split a step across samples.
            total = n_steps * n
            starts = range(0, total, chunk)
            for start in tqdm(starts, desc="integrated gradients", leave=False, disable=len(starts) < 10):
                j = torch.arange(start, min(start + chunk, total), device=inputs.device)
                step, sample = j // n, j % n
                scaled = baselines[sample] + alphas[step].view(-1, *trailing) * difference[sample]
                scaled.requires_grad_(True)
                scores = select_target(forward_scores(self.model, scaled), indices[sample])
                (gradient,) = torch.autograd.grad(scores.sum(), scaled)
                integrated.index_add_(0, sample, gradient * weights[step].view(-1, *trailing))
            if return_convergence_delta:
                with torch.no_grad():
                    baseline_scores = select_target(forward_scores(self.model, baselines.contiguous()), indices)
                    delta = (integrated * difference).flatten(1).sum(1) - (
                        select_target(output, indices) - baseline_scores
                    )
        attributions = integrated * difference if self.multiply_by_inputs else integrated
        return (attributions, delta) if return_convergence_delta else attributions

    def __repr__(self) -> str:
        return f"IntegratedGradients({type(self.model).__name__}, multiply_by_inputs={self.multiply_by_inputs})"
