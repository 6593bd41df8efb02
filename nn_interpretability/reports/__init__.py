"""The project report: figure manifest, figure saving and the notebook runner.

Notebooks save figures with ``save_figure(fig, "fig06_backprop")``;
``python -m nn_interpretability.reports`` executes every notebook and builds
``reports/`` (executed notebooks, HTML exports, figures and ``index.html``).
"""
from .figures import find_repo_root, reports_dir, save_figure
from .manifest import MANIFEST, SOURCES, Figure, figure, figures_for


def __getattr__(name: str):
    # The runner needs papermill and nbconvert (dev extras); loading it lazily keeps
    # save_figure usable, and importing the package cheap, without them.
    if name in {"NotebookResult", "run_reports"}:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MANIFEST",
    "SOURCES",
    "Figure",
    "NotebookResult",
    "figure",
    "figures_for",
    "find_repo_root",
    "reports_dir",
    "run_reports",
    "save_figure",
]
