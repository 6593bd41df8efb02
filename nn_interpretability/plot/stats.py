"""Plots for the quantitative experiments: scatter plots and correlation matrices."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .arrays import to_numpy


def scatter(
    x,
    y,
    ax=None,
    hue=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    identity: bool = False,
    **kwargs,
):
    """Scatter plot of two equally long sets of values, optionally coloured by group.

    Parameters
    ----------
    x, y : torch.Tensor or array_like
        Values, flattened.
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    hue : sequence, optional
        One group label per point; each group gets a colour and a legend entry.
    xlabel, ylabel, title : str, optional
        Axis labels and title.
    identity : bool
        Draw the dashed line y = x.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = ax if ax is not None else plt.gca()
    x, y = to_numpy(x).ravel(), to_numpy(y).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in size: {x.size} vs {y.size}")
    kwargs.setdefault("s", 12)
    if hue is None:
        ax.scatter(x, y, **kwargs)
    else:
        hue = np.asarray(hue).ravel()
        if hue.shape != x.shape:
            raise ValueError(f"hue needs one label per point, got {hue.size} for {x.size}")
        for group in dict.fromkeys(hue.tolist()):
            mask = hue == group
            ax.scatter(x[mask], y[mask], label=str(group), **kwargs)
        ax.legend()
    if identity:
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot([lo, hi], [lo, hi], "k--", linewidth=1)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    return ax


def correlation_matrix(
    matrix,
    labels,
    std=None,
    ax=None,
    cmap="RdBu_r",
    vmin: float = -1.0,
    vmax: float = 1.0,
    fmt: str = ".2f",
    title: str | None = None,
):
    """Annotated heatmap of a correlation matrix, cells reading "0.83" over "± 0.05" when ``std`` is given.

    Parameters
    ----------
    matrix : torch.Tensor or array_like
        Square (K, K) matrix, e.g. mean rank correlations between K methods.
    labels : sequence of str
        The K row and column names.
    std : torch.Tensor or array_like, optional
        Standard deviations, same shape as ``matrix``.
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    cmap : str or Colormap
        Colormap, diverging around 0 by default.
    vmin, vmax : float
        Colour limits.
    fmt : str
        Number format of the annotations.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import seaborn as sns  # imported here: it pulls in pandas, which plain plotting does not need

    ax = ax if ax is not None else plt.gca()
    m = to_numpy(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise ValueError(f"expected a square matrix matching {len(labels)} labels, got shape {m.shape}")
    if std is None:
        annot = np.vectorize(lambda v: format(v, fmt))(m)
    else:
        s = to_numpy(std)
        if s.shape != m.shape:
            raise ValueError(f"std has shape {s.shape}, matrix {m.shape}")
        annot = np.vectorize(lambda v, e: f"{v:{fmt}}\n± {e:{fmt}}")(m, s)  # two lines: narrow cells stay legible
    sns.heatmap(
        m,
        annot=annot,
        fmt="",
        annot_kws={"fontsize": "small" if std is not None else "medium"},
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        square=True,
        xticklabels=list(labels),
        yticklabels=list(labels),
        ax=ax,
    )
    ax.tick_params(axis="y", rotation=0)
    if title is not None:
        ax.set_title(title)
    return ax
