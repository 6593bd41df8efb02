"""Single-axes views: signed heatmaps, images and heatmaps overlaid on images."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .arrays import color_limit, to_grey, to_image, to_map, value_range


def _limits(
    m: np.ndarray, symmetric: bool, percentile: float, vmax: float | None, vmin: float | None = None
) -> tuple[float, float]:
    if symmetric:
        v = vmax if vmax is not None else color_limit(m, percentile)
        return -v, v
    lo, hi = value_range(m, percentile)
    lo = vmin if vmin is not None else lo
    hi = vmax if vmax is not None else hi
    return (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(lo) + 0.5)


def _finish(ax, im, title: str | None, colorbar: bool, note: str | None = None):
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    if note is not None:
        ax.set_xlabel(note)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def heatmap(
    attribution,
    ax=None,
    cmap="bwr",
    reduce: str = "sum",
    symmetric: bool = True,
    percentile: float = 99.5,
    title: str | None = None,
    colorbar: bool | None = None,
    vmax: float | None = None,
    vmin: float | None = None,
    note: str | None = None,
):
    """Show a signed attribution map with a diverging colormap centred at 0.

    Parameters
    ----------
    attribution : torch.Tensor or array_like
        Shape (H, W), (C, H, W) or (1, C, H, W).
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    cmap : str or Colormap
        Colormap, diverging by default (blue negative, red positive).
    reduce : {"sum", "abs_sum", "max_abs"}
        Channel reduction, see :func:`to_map`.
    symmetric : bool
        Limits ±v with v the ``percentile`` of ``|map|``, so that 0 is the colormap
        centre and single outliers do not wash out the map. Otherwise the limits are
        the lower and upper percentiles of the map.
    percentile : float
        Percentile used for the colour limits.
    title : str, optional
        Axes title.
    colorbar : bool, optional
        Add a colorbar next to the axes; by default signed (``symmetric``) maps get one, so the
        colours read as values.
    vmax : float, optional
        Explicit upper limit (e.g. to share one scale across maps; ±``vmax`` when ``symmetric``).
    vmin : float, optional
        Explicit lower limit when not ``symmetric``.
    note : str, optional
        A footnote under the map, e.g. the conservation ``"Σ R = 0.998 · f(x)"``.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    ax = ax if ax is not None else plt.gca()
    m = to_map(attribution, reduce)
    vmin, vmax = _limits(m, symmetric, percentile, vmax, vmin)
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    return _finish(ax, im, title, symmetric if colorbar is None else colorbar, note)


def image(img, ax=None, title: str | None = None, rescale: bool = False, note: str | None = None):
    """Show a grey or RGB image with values clipped to [0, 1].

    Parameters
    ----------
    img : torch.Tensor or array_like
        Shape (H, W), (1, H, W), (3, H, W), (H, W, 3) or a batch of one.
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    title : str, optional
        Axes title.
    rescale : bool
        Min-max rescale to [0, 1] before clipping.
    note : str, optional
        A footnote under the image.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    ax = ax if ax is not None else plt.gca()
    x = to_image(img, rescale=rescale)
    im = ax.imshow(x, cmap="gray" if x.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    return _finish(ax, im, title, colorbar=False, note=note)


def overlay(
    image,
    attribution,
    ax=None,
    alpha: float = 0.6,
    cmap="bwr",
    reduce: str = "sum",
    symmetric: bool = True,
    percentile: float = 99.5,
    title: str | None = None,
    colorbar: bool | None = None,
    vmax: float | None = None,
    vmin: float | None = None,
    note: str | None = None,
    interpolation: str = "bilinear",
):
    """Show a signed heatmap on top of the grey-scaled image.

    Each pixel's opacity grows with ``|map|`` (up to ``alpha``), so regions without
    relevance show the plain image. A map coarser than the image (CAM, occlusion)
    is stretched over it.

    Parameters
    ----------
    image : torch.Tensor or array_like
        The input image, any shape accepted by :func:`image`.
    attribution : torch.Tensor or array_like
        The map, any shape accepted by :func:`heatmap`.
    ax : matplotlib.axes.Axes, optional
        Target axes; the current axes by default.
    alpha : float
        Opacity of the strongest relevance.
    cmap, reduce, symmetric, percentile, title, colorbar, vmax, vmin, note
        As in :func:`heatmap`.
    interpolation : str
        Interpolation of the map when it is stretched over the image.

    Returns
    -------
    matplotlib.image.AxesImage
        The heatmap layer.
    """
    ax = ax if ax is not None else plt.gca()
    grey = to_grey(image)
    m = to_map(attribution, reduce)
    vmin, vmax = _limits(m, symmetric, percentile, vmax, vmin)
    h, w = grey.shape
    ax.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    centre = 0.0 if symmetric else vmin
    strength = np.clip(np.abs(np.nan_to_num(m) - centre) / max(vmax - centre, 1e-12), 0.0, 1.0)
    im = ax.imshow(
        m,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        alpha=alpha * strength,
        extent=(-0.5, w - 0.5, h - 0.5, -0.5),
        interpolation="nearest" if m.shape == grey.shape else interpolation,
    )
    return _finish(ax, im, title, symmetric if colorbar is None else colorbar, note)
