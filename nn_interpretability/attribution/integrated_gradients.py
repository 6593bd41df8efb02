"""Integrated Gradients: the path integral of the gradient from a baseline to the input (report section 2.2.1)."""
from __future__ import annotations

import numpy as np
import torch

from ..core.base import Attribution, Run
from ..core.batching import broadcast_baselines_each, chunk_size, chunks, compute_dtype
from ..core.progress import progress
from ..core.registry import register_method

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "uniform")


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


def _along(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One value per row, shaped to broadcast over the other dimensions of ``like``."""
    return values.view(-1, *(1,) * (like.dim() - 1))


class StraightPath:
    """The points ``x' + α (x − x')`` of every sample, passed through the model in chunks.

    Point ``j`` is step ``j // N`` of sample ``j % N``; a chunk may split a step across samples. Path
    arithmetic is in :func:`~nn_interpretability.core.batching.compute_dtype`; the points are in the
    inputs' dtype. Integrated Gradients and the layer and neuron methods that integrate along the input
    path (conductance, internal influence) walk it.

    Attributes
    ----------
    baselines : tuple of Tensor
        One per input ``(N, ...)``, in the inputs' dtype.
    differences : tuple of Tensor
        ``x − x'`` per input, in the compute dtype.
    """

    def __init__(self, run: Run, baselines, alphas):
        xs = run.inputs_tuple
        self.run, self.dtype = run, compute_dtype(xs[0].dtype)
        self.baselines = broadcast_baselines_each(baselines, xs)
        self.starts = tuple(b.to(self.dtype) for b in self.baselines)
        self.differences = tuple(x.to(self.dtype) - start for x, start in zip(xs, self.starts))
        self.alphas = torch.as_tensor(alphas, dtype=self.dtype, device=xs[0].device)

    def passes(self, internal_batch_size: int | None, desc: str, show_progress: bool | None):
        """``(rows, step, sample, points)`` per chunk; ``points`` (shaped as the inputs) require gradients."""
        run, xs = self.run, self.run.inputs_tuple
        n, device = run.n, xs[0].device
        chunk = chunk_size(sum(x[0].numel() for x in xs), internal_batch_size, rows_per_copy=1, device=device)
        for rows in progress(chunks(len(self.alphas) * n, chunk), desc, show_progress):
            j = torch.arange(rows.start, rows.stop, device=device)
            step, sample = j // n, j % n
            points = run.like(
                (start[sample] + _along(self.alphas[step], d) * d[sample]).to(x.dtype).requires_grad_(True)
                for x, start, d in zip(xs, self.starts, self.differences)
            )
            yield rows, step, sample, points

    def output_change(self, selector) -> torch.Tensor:
        """``f(x) − f(x')`` of the explained score per sample, in the compute dtype (for convergence deltas)."""
        run = self.run
        with torch.no_grad():
            both = run.like(torch.cat([x, b.contiguous()]) for x, b in zip(run.inputs_tuple, self.baselines))
            scores = selector(run.forward(both))
        return (scores[: run.n] - scores[run.n :]).to(self.dtype)


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

    takes_baselines = True
    has_convergence_delta = True
    multiple_inputs = True

    def __init__(self, model, multiply_by_inputs: bool = True):
        super().__init__(model)
        self.multiplies_by_inputs = bool(multiply_by_inputs)

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
        show_progress: bool | None = None,
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
            holds at most :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` input elements (and
            on the CPU at most :data:`~nn_interpretability.core.batching.CPU_ROWS` points); unlike
            Captum's default, memory does not grow with ``n_steps × N``.
        return_convergence_delta : bool
            Also return, per sample, ``Σ (x - x') ∘ ḡ - (f_c(x) - f_c(x'))`` with ``ḡ`` the integrated
            gradient: the quadrature error of the path integral (completeness would make it 0). It
            is the same number whether or not ``multiply_by_inputs`` is set.
        show_progress : bool, optional
            A progress bar over the passes; ``None`` shows it in a terminal or notebook only.

        Returns
        -------
        Tensor, or (Tensor, Tensor) with the per-sample delta of shape ``(N,)``

        Notes
        -----
        For float16/bfloat16 inputs the path points are computed and the gradients accumulated in
        float32; each pass runs the model in the inputs' dtype.
        """
        alphas, weights = quadrature(method, n_steps)
        path = StraightPath(run, baselines, alphas)
        weights = torch.as_tensor(weights, dtype=path.dtype, device=path.alphas.device)
        selector = run.selector
        integrated = tuple(torch.zeros_like(d) for d in path.differences)
        for _, step, sample, points in path.passes(internal_batch_size, "integrated gradients", show_progress):
            scores = selector(run.forward(points, sample), sample)
            gradients = torch.autograd.grad(scores.sum(), points if run.multiple else (points,))
            for total, gradient in zip(integrated, gradients):
                total.index_add_(0, sample, gradient.to(path.dtype) * _along(weights[step], gradient))
        attributions = run.like(
            total * d if self.multiplies_by_inputs else total for total, d in zip(integrated, path.differences)
        )
        if not return_convergence_delta:
            return attributions
        products = sum((total * d).flatten(1).sum(1) for total, d in zip(integrated, path.differences))
        return attributions, products - path.output_change(selector)

    def __repr__(self) -> str:
        return f"IntegratedGradients({type(self.model).__name__}, multiply_by_inputs={self.multiplies_by_inputs})"
