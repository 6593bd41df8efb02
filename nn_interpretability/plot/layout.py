"""Figure sizes that stay legible: a figure wider than a report page shrinks, its text does not."""
from __future__ import annotations

import matplotlib.pyplot as plt

#: Widest figure in inches: shown at a page width of ~900 px, its text keeps about its nominal size.
MAX_WIDTH = 10.0


def capped_size(figsize, max_width: float | None = MAX_WIDTH, text_rows: int = 0) -> tuple[float, float]:
    """The figure size ``figsize`` shrunk in proportion to at most ``max_width`` inches wide.

    Parameters
    ----------
    figsize : tuple of float
        The wanted (width, height) in inches.
    max_width : float or None
        The widest the figure may be; ``None`` keeps ``figsize``.
    text_rows : int
        Lines of text (titles, footnotes) stacked in the figure's height: their size in points does
        not shrink, so each keeps 0.25 inch of the height it had.

    Returns
    -------
    tuple of float
        (width, height) in inches.
    """
    width, height = (float(v) for v in figsize)
    if width <= 0 or height <= 0:
        raise ValueError(f"figsize must be two positive numbers, got {tuple(figsize)}")
    if max_width is None or width <= max_width:
        return width, height
    shrink = max_width / width
    return max_width, height * shrink + 0.25 * text_rows * (1 - shrink)


def subplots(nrows: int = 1, ncols: int = 1, figsize=None, max_width: float | None = MAX_WIDTH, **kwargs):
    """``matplotlib.pyplot.subplots`` with the width capped at ``max_width``, keeping the aspect ratio.

    Parameters
    ----------
    nrows, ncols : int
        The grid of axes.
    figsize : tuple of float, optional
        The wanted (width, height) in inches (default ``rcParams["figure.figsize"]``); a wider
        one shrinks in proportion (:func:`capped_size`), so its titles stay legible at page width.
    max_width : float or None
        The widest the figure may be, in inches; ``None`` keeps ``figsize``.
    **kwargs
        Passed to ``matplotlib.pyplot.subplots`` (``sharey``, ``gridspec_kw``, ``layout``, ...).

    Returns
    -------
    (matplotlib.figure.Figure, axes)
        As ``matplotlib.pyplot.subplots`` returns them.
    """
    figsize = plt.rcParams["figure.figsize"] if figsize is None else figsize
    return plt.subplots(nrows, ncols, figsize=capped_size(figsize, max_width), **kwargs)


def figure(figsize=None, max_width: float | None = MAX_WIDTH, **kwargs):
    """``matplotlib.pyplot.figure`` with the width capped at ``max_width``, keeping the aspect ratio.

    For figures laid out by hand (``add_gridspec``, ``subfigures``); see :func:`subplots`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figsize = plt.rcParams["figure.figsize"] if figsize is None else figsize
    return plt.figure(figsize=capped_size(figsize, max_width), **kwargs)
