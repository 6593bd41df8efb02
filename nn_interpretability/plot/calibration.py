"""Reliability diagrams: accuracy against confidence per bin (Guo et al. 2017, Fig. 1)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..uncertainty.temperature_scaling import calibration_bins


def reliability_diagram(probabilities, labels, n_bins: int = 15, ax=None, title: str | None = None, color: str = "C0"):
    """Draw a reliability diagram: per confidence bin, the accuracy as a bar and its gap to the confidence.

    Bars show the accuracy of each equal-width confidence bin; the hatched red part spans from the
    accuracy to the bin's mean confidence (the calibration gap: above the bar = overconfident). The
    dashed diagonal is perfect calibration; the number over each bin is its sample count and the
    legend gives the expected calibration error (ECE). Empty bins are left blank.

    Parameters
    ----------
    probabilities : Tensor
        ``(N, C)`` predicted probabilities.
    labels : Tensor
        ``(N,)`` true classes.
    n_bins : int
        Equal-width bins on [0, 1].
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    title : str, optional
        Axes title.
    color : str
        Colour of the accuracy bars.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = ax if ax is not None else plt.gca()
    bins = calibration_bins(probabilities, labels, n_bins)
    edges = bins.edges.cpu().numpy()
    counts = bins.counts.cpu().numpy()
    accuracy = bins.accuracy.cpu().numpy()
    confidence = bins.confidence.cpu().numpy()
    filled = counts > 0
    left, width = edges[:-1][filled], np.diff(edges)[filled]
    ax.bar(left, accuracy[filled], width=width, align="edge", color=color, edgecolor="black", linewidth=0.5,
           label="accuracy")
    ax.bar(left, (confidence - accuracy)[filled], bottom=accuracy[filled], width=width, align="edge",
           color="tab:red", alpha=0.3, hatch="//", edgecolor="tab:red", linewidth=0.5, label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for x, top, count in zip(left + width / 2, np.maximum(accuracy, confidence)[filled], counts[filled]):
        ax.text(x, min(top + 0.01, 0.97), str(int(count)), ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_aspect("equal")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles, names, loc="upper left", fontsize=7, title=f"ECE = {bins.ece:.2%}", title_fontsize=8)
    if title is not None:
        ax.set_title(title)
    return ax
