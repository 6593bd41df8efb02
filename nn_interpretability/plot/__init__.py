"""Matplotlib helpers for attribution maps, images and the quantitative experiments.

Every function draws on the given (or current) axes and never calls ``plt.show()``,
so it works headless (Agg) and inline in notebooks alike.
"""
from .arrays import color_limit, to_image, to_map, to_numpy
from .calibration import reliability_diagram
from .grids import grid
from .layout import figure, subplots
from .maps import heatmap, image, overlay
from .stats import correlation_matrix, scatter
from .tables import Table, table
from .uncertainty import pass_scatter, series_lines

__all__ = [
    "Table",
    "color_limit",
    "correlation_matrix",
    "figure",
    "grid",
    "heatmap",
    "image",
    "overlay",
    "pass_scatter",
    "reliability_diagram",
    "scatter",
    "series_lines",
    "subplots",
    "table",
    "to_image",
    "to_map",
    "to_numpy",
]
