"""Labelled grids of heatmaps, images or overlays."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from .arrays import color_limit, to_map, value_range
from .layout import MAX_WIDTH, capped_size
from .maps import heatmap, image, overlay

KINDS = ("heatmap", "image", "overlay")
SCALES = ("panel", "row", "figure")


def _is_array(x) -> bool:
    return hasattr(x, "detach") or isinstance(x, np.ndarray)


def _chunk(items: list, ncols: int | None) -> list[list]:
    ncols = ncols or max(len(items), 1)
    return [items[i : i + ncols] for i in range(0, len(items), ncols)]


def _rows(maps, ncols: int | None) -> list[list]:
    if _is_array(maps):
        if ncols is None and maps.ndim >= 4:
            return [list(row) for row in maps]
        return _chunk(list(maps), ncols)
    maps = list(maps)
    if maps and all(isinstance(row, (list, tuple)) for row in maps):
        return [list(row) for row in maps]
    return _chunk(maps, ncols)


def _flatten(values) -> list:
    if _is_array(values):
        return list(values.reshape(-1, *values.shape[2:])) if values.ndim >= 5 else list(values)
    values = list(values)
    if values and all(isinstance(v, (list, tuple)) for v in values):
        return [v for row in values for v in row]
    return values


def _cells_like(values, rows: list[list], name: str, per_row: bool) -> list[list]:
    """Spread ``values`` over the cells of ``rows``: one per cell (row-major) or, if ``per_row``, one per row."""
    flat = _flatten(values)
    sizes = [len(row) for row in rows]
    if len(flat) == sum(sizes):
        starts = np.cumsum([0, *sizes])
        return [flat[a:b] for a, b in zip(starts[:-1], starts[1:])]
    if per_row and len(flat) == len(rows):
        return [[v] * n for v, n in zip(flat, sizes)]
    expected = f"{sum(sizes)} (one per cell)" + (f" or {len(rows)} (one per row)" if per_row else "")
    raise ValueError(f"{name}: got {len(flat)} values, expected {expected}")


ROW_LABEL_SIZE = "large"


def _longest_line(labels, size) -> float:
    """Width in inches of the longest line of ``labels`` set in the font size ``size``."""
    prop = FontProperties(size=size)
    lines = [line for label in labels for line in str(label).split("\n")]
    return max(TextToPath().get_text_width_height_descent(line, prop, ismath=False)[0] for line in lines) / 72


def _label_column(ax, label: str, has_title: bool) -> None:
    # An annotation above the axes keeps the per-cell title free; it is lifted
    # over that title when there is one.
    title_size = FontProperties(size=plt.rcParams["axes.titlesize"]).get_size_in_points()
    pad = 6 + (1.6 * title_size if has_title else 0)
    ax.annotate(
        label,
        xy=(0.5, 1.0),
        xycoords="axes fraction",
        xytext=(0, pad),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontweight="bold",
    )


def _shared_limits(cells: list, reduce: str, percentile: float, symmetric: bool) -> dict:
    """One colour scale for the given maps: the widest of their own limits.

    Maps with nothing to scale (no finite value, or, for signed maps, no finite nonzero value:
    e.g. a unit inactive on that input) take no part: their own limit is only a fallback (±1, or
    0 to 1) that would drown the other maps. Without any other map each keeps that fallback.
    """
    maps = [to_map(item, reduce) for item in cells]
    maps = [m for m in maps if np.any(np.isfinite(m) & (m != 0) if symmetric else np.isfinite(m))]
    if not maps:
        return {}
    if symmetric:
        return {"vmax": max(color_limit(m, percentile) for m in maps)}
    ranges = [value_range(m, percentile) for m in maps]
    return {"vmin": min(lo for lo, _ in ranges), "vmax": max(hi for _, hi in ranges)}


def grid(
    maps,
    row_labels=None,
    col_labels=None,
    kind: str | Sequence[str] = "heatmap",
    images=None,
    titles=None,
    notes=None,
    figsize=None,
    ncols: int | None = None,
    cell_size: float = 1.8,
    scale: str | Sequence[str] = "panel",
    colorbar: bool | None = None,
    max_width: float | None = MAX_WIDTH,
    row_label_rotation: float | None = None,
    **kwargs,
):
    """Draw maps in a labelled grid of axes without ticks.

    Parameters
    ----------
    maps : list of lists, sequence, torch.Tensor or numpy.ndarray
        The cells: a list of rows, a tensor shaped (R, C, ...) or, with ``ncols``,
        a flat sequence or batch (N, ...) filled row by row. A 3-D tensor (N, H, W)
        without ``ncols`` is one row.
    row_labels, col_labels : sequence of str, optional
        Labels left of each row and above each column.
    kind : {"heatmap", "image", "overlay"}, one of them per row, or a sequence of them per row
        How each cell is drawn: :func:`heatmap`, :func:`image` or :func:`overlay`; a sequence
        gives each row its own kind (e.g. inputs above their maps), and a sequence in place of a
        row's kind gives each cell of that row its own (e.g. the input left of its maps).
    images : optional
        Images under the overlays (``kind="overlay"``): one per cell, or one per row.
    titles : optional
        Per-cell titles (e.g. predicted class and probability), one per cell;
        ``None`` entries are skipped.
    notes : optional
        Per-cell footnotes under the cells (e.g. ``"Σ R = 0.998 · f(x)"``), one per cell;
        ``None`` entries are skipped.
    figsize : tuple of float, optional
        Figure size; by default ``cell_size`` inches per cell.
    ncols : int, optional
        Number of columns for flat input.
    cell_size : float
        Inches per cell when ``figsize`` is not given.
    scale : {"panel", "row", "figure"} or a sequence of them, one per row
        Colour scale of the heatmaps and overlays: each map its own (``"panel"``), one per row or
        one for the whole figure, so that magnitudes compare across the maps sharing it. A sequence
        gives each row its own (e.g. ``["panel", "row"]``: maps in different units above maps in the
        same units); the rows marked ``"figure"`` share one scale. A shared scale of signed maps is
        symmetric around 0 with the largest of the maps' limits (the ``percentile`` of ``|map|``);
        of unsigned maps (``symmetric=False``) it spans all their ranges.
    colorbar : bool, optional
        Draw colorbars: one per map of a ``"panel"`` row, one per ``"row"`` row and one for all the
        ``"figure"`` rows. By default signed maps get them (``symmetric``, the default).
    max_width : float or None
        The widest the figure may be, in inches: a wider ``figsize`` (given or from ``cell_size``)
        shrinks in proportion, so titles stay legible when the figure is shown at page width.
        ``None`` keeps the size as it is.
    row_label_rotation : float, optional
        Angle of the row labels in degrees: 90 (vertical) or 0 (horizontal, the label's right end
        against its row). By default vertical where every label fits in the height of a row, else
        horizontal, so that long labels of short rows do not run into each other.
    **kwargs
        Passed to :func:`heatmap` and :func:`overlay` (``cmap``, ``reduce``, ``percentile``,
        ``symmetric``, ...); ``rescale`` goes to :func:`image`.

    Returns
    -------
    matplotlib.figure.Figure
        Its first axes are the cells, row by row; colorbars come after them.
    """
    rows = _rows(maps, ncols)
    nrows, width = len(rows), max((len(row) for row in rows), default=0)
    if nrows == 0 or width == 0:
        raise ValueError("grid needs at least one map")
    row_scales = [scale] * nrows if isinstance(scale, str) else list(scale)
    if len(row_scales) != nrows:
        raise ValueError(f"scale: got {len(row_scales)} scales for {nrows} rows")
    for row_scale in row_scales:
        if row_scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {row_scale!r}")
    row_kinds = [kind] * nrows if isinstance(kind, str) else list(kind)
    if len(row_kinds) != nrows:
        raise ValueError(f"kind: got {len(row_kinds)} kinds for {nrows} rows")
    cell_kinds = []
    for row, row_kind in zip(rows, row_kinds):
        kinds = [row_kind] * len(row) if isinstance(row_kind, str) else list(row_kind)
        if len(kinds) != len(row):
            raise ValueError(f"kind: got {len(kinds)} kinds for a row of {len(row)} cells")
        for cell_kind in kinds:
            if cell_kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}, got {cell_kind!r}")
        cell_kinds.append(kinds)
    if any("overlay" in kinds for kinds in cell_kinds) and images is None:
        raise ValueError('kind="overlay" needs images')
    cell_titles = _cells_like(titles, rows, "titles", per_row=False) if titles is not None else None
    cell_notes = _cells_like(notes, rows, "notes", per_row=False) if notes is not None else None
    cell_images = _cells_like(images, rows, "images", per_row=True) if images is not None else None
    for name, labels, n in (("row_labels", row_labels, nrows), ("col_labels", col_labels, width)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name}: got {len(labels)} labels for {n} {name[:3]}s")

    if figsize is None:
        extra = (0.15 if titles is not None else 0.0) + (0.15 if notes is not None else 0.0)
        figsize = (cell_size * width, cell_size * nrows * (1.0 + extra))
    # The cells shrink with the width; their titles and footnotes keep their size and room.
    figsize = capped_size(figsize, max_width, text_rows=nrows * ((titles is not None) + (notes is not None)))
    rescale = kwargs.pop("rescale", False)  # the images' option; the rest is for the maps
    symmetric = kwargs.get("symmetric", True)
    colorbar = symmetric if colorbar is None else colorbar
    mapped = [[item is not None and k != "image" for item, k in zip(row, kinds)] for row, kinds in zip(rows, cell_kinds)]
    limit_args = (kwargs.get("reduce", "sum"), kwargs.get("percentile", 99.5), symmetric)
    scaled = [[i for i, on in zip(row, m) if on] for row, m in zip(rows, mapped)]  # the maps of each row
    shared = _shared_limits([i for cells, s in zip(scaled, row_scales) if s == "figure" for i in cells], *limit_args)
    row_limits = [
        shared if s == "figure" else _shared_limits(cells, *limit_args) if s == "row" else {}
        for cells, s in zip(scaled, row_scales)
    ]
    fig, axes = plt.subplots(nrows, width, figsize=figsize, squeeze=False, layout="constrained")
    drawn = [[] for _ in range(nrows)]  # (axes, image layer) of the maps of each row
    for r, row in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            item = row[c] if c < len(row) else None
            if item is None:
                ax.set_axis_off()
                continue
            text = {
                "title": cell_titles[r][c] if cell_titles is not None else None,
                "note": cell_notes[r][c] if cell_notes is not None else None,
            }
            cell_kind = cell_kinds[r][c]
            if cell_kind == "image":
                image(item, ax=ax, rescale=rescale, **text)
                continue
            panel = {**kwargs, **row_limits[r], "colorbar": colorbar and row_scales[r] == "panel"}
            if cell_kind == "heatmap":
                layer = heatmap(item, ax=ax, **text, **panel)
            else:
                layer = overlay(cell_images[r][c], item, ax=ax, **text, **panel)
            drawn[r].append((ax, layer))
    if colorbar:
        for row, row_scale in zip(drawn, row_scales):
            if row and row_scale == "row":
                fig.colorbar(row[-1][1], ax=[ax for ax, _ in row], fraction=0.046 / len(row), pad=0.02, aspect=15)
        cells = [cell for row, row_scale in zip(drawn, row_scales) if row_scale == "figure" for cell in row]
        if cells:
            shrink = min(1.0, 0.9 / row_scales.count("figure") + 0.3)
            fig.colorbar(cells[-1][1], ax=[ax for ax, _ in cells], shrink=shrink, pad=0.02)
    if row_labels is not None:
        if row_label_rotation is None:
            row_height = figsize[1] / nrows - 0.25 * ((titles is not None) + (notes is not None))
            row_label_rotation = 90 if _longest_line(row_labels, ROW_LABEL_SIZE) <= 0.9 * row_height else 0
        horizontal = {"ha": "right", "va": "center"} if row_label_rotation == 0 else {}
        for ax, label in zip(axes[:, 0], row_labels):
            ax.set_ylabel(label, fontsize=ROW_LABEL_SIZE, rotation=row_label_rotation, **horizontal)
    if col_labels is not None:
        for c, (ax, label) in enumerate(zip(axes[0], col_labels)):
            has_title = cell_titles is not None and c < len(cell_titles[0]) and cell_titles[0][c] is not None
            _label_column(ax, label, has_title)
    return fig
