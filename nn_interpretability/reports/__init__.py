"""The project report: figure manifest, figure saving and the notebook runner.

Notebooks save figures with ``save_figure(fig, "fig06_backprop")``;
``python -m nn_interpretability.reports`` executes every notebook and builds
``reports/`` (executed notebooks, HTML pages with offline math and a navigation header, figures,
``index.html`` and ``scorecard.html``); ``--no-execute`` builds the same site from the committed
notebooks in seconds.
"""
from ..core.lazy import lazy_exports

# Submodule -> the public names it defines. Names load on first use: the runner needs papermill and
# nbconvert (dev extras), so save_figure stays usable, and importing the package cheap, without them.
_EXPORTS = {
    ".figures": ["find_repo_root", "reports_dir", "save_figure", "save_scores"],
    ".manifest": ["MANIFEST", "SOURCES", "Figure", "figure", "figures_for"],
    ".runner": ["NotebookResult", "run_reports"],
    ".scorecard": ["write_scorecard"],
}

lazy_exports(__name__, _EXPORTS, globals())
