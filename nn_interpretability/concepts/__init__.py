"""Concept-based explanations: TCAV (Kim et al. 2018) and MNIST concept image sets.

- :mod:`.tcav`: :class:`Concept`, :class:`CAV`, :class:`TCAV` and its :class:`TCAVResult`, with the
  section 3.3 significance test.
- :mod:`.mnist_concepts`: closed loops, horizontal bars, thick strokes and random sets of digits.

Names are imported on first use (``_EXPORTS`` below, via
:func:`~nn_interpretability.core.lazy.lazy_exports`), so that ``import nn_interpretability.concepts``
does not load scikit-learn.
"""
from ..core.lazy import lazy_exports

# Submodule -> the public names it defines; ``__all__`` and the lazy loading are derived from this.
_EXPORTS = {
    ".tcav": ["CAV", "Concept", "TCAV", "TCAVResult", "significance"],
    ".mnist_concepts": [
        "closed_loop",
        "hole_area",
        "horizontal_bar",
        "longest_horizontal_run",
        "random_concepts",
        "stroke_width",
        "thick_stroke",
    ],
}

lazy_exports(__name__, _EXPORTS, globals())
