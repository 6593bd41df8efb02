"""Plots of stochastic predictions: per-pass scores over a series of inputs (the report's Fig. 18 and 20)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .arrays import to_numpy


def pass_scatter(
    values,
    classes: Sequence[int],
    positions=None,
    ax=None,
    jitter: float = 0.25,
    seed: int = 0,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    s: float = 3.0,
    alpha: float = 0.25,
):
    """Scatter every pass's score of the chosen classes at each input of a series (Fig. 18).

    Well separated colours at an input mean the passes agree; overlapping colours show uncertainty
    that a single softmax score hides.

    Parameters
    ----------
    values : Tensor or array_like
        ``(passes, N, C)`` per-pass scores, e.g. ``MCDropoutPrediction.logits`` or ``.probabilities``.
    classes : sequence of int
        The classes to draw, one colour each.
    positions : array_like, optional
        ``(N,)`` x positions of the inputs (e.g. rotation angles); ``0..N-1`` by default.
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    jitter : float
        Horizontal spread of the points of one input, as a fraction of the spacing between inputs;
        seeded, so the figure is the same on every run.
    seed : int
        Seed of the jitter.
    xlabel, ylabel, title : str, optional
        Axis labels and title.
    s, alpha : float
        Marker size and opacity.

    Returns
    -------
    matplotlib.axes.Axes
    """
    values = to_numpy(values)
    if values.ndim != 3:
        raise ValueError(f"values must be (passes, N, C), got shape {values.shape}")
    passes, n, num_classes = values.shape
    bad = [c for c in classes if not 0 <= int(c) < num_classes]
    if bad:
        raise ValueError(f"classes {bad} out of range: the scores have {num_classes} classes")
    positions = np.arange(n, dtype=float) if positions is None else to_numpy(positions).astype(float).reshape(-1)
    if positions.shape != (n,):
        raise ValueError(f"positions must hold one value per input ({n}), got {positions.shape[0]}")
    ax = ax or plt.gca()
    spacing = float(np.min(np.diff(np.sort(positions)))) if n > 1 else 1.0
    offsets = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(passes, n)) * jitter * spacing
    x = (positions[None, :] + offsets).ravel()
    for c in classes:
        ax.scatter(x, values[:, :, int(c)].ravel(), s=s, alpha=alpha, label=f"class {int(c)}", rasterized=True)
    legend = ax.legend(markerscale=3, loc="best")
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{p:g}" for p in positions])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return ax


def series_lines(
    values,
    labels: Sequence[str],
    positions=None,
    ax=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
):
    """One line per quantity over a series of inputs, e.g. expected class probabilities and ``u`` (Fig. 20).

    Parameters
    ----------
    values : Tensor or array_like
        ``(N, K)``: ``K`` quantities at each of ``N`` inputs.
    labels : sequence of str
        Legend entry of each quantity.
    positions : array_like, optional
        ``(N,)`` x positions; ``0..N-1`` by default.
    """
    values = to_numpy(values)
    if values.ndim != 2 or values.shape[1] != len(labels):
        raise ValueError(f"values must be (N, {len(labels)}) for {len(labels)} labels, got shape {values.shape}")
    positions = np.arange(values.shape[0]) if positions is None else to_numpy(positions).reshape(-1)
    ax = ax or plt.gca()
    for column, label in zip(values.T, labels):
        ax.plot(positions, column, marker="o", label=label)
    ax.legend(loc="best")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return ax
