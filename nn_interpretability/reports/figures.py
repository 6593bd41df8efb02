"""Where report figures go, and saving them under their manifest id."""
from __future__ import annotations

import os
from pathlib import Path

from .manifest import figure

REPORTS_DIR_ENV = "NNI_REPORTS_DIR"


def find_repo_root(start: str | Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` holding ``pyproject.toml`` and ``nn_interpretability/``.

    Parameters
    ----------
    start : str or pathlib.Path, optional
        Where to start; the current working directory by default.

    Returns
    -------
    pathlib.Path or None
        The repository root, or None outside a checkout.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "nn_interpretability").is_dir():
            return folder
    return None


def reports_dir() -> Path:
    """The reports folder.

    ``$NNI_REPORTS_DIR`` when set (the report runner sets it for its kernels), else
    ``reports/`` in the repository containing the working directory, else
    ``./reports``.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get(REPORTS_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = find_repo_root()
    return (root if root is not None else Path.cwd()) / "reports"


def save_figure(fig, id: str, dpi: int = 150, **savefig_kwargs) -> None:
    """Save a report figure as ``<reports_dir>/figures/<id>.png``.

    The figure is left open so that a notebook still shows it inline. Nothing is returned, so a
    notebook cell ending in this call prints no machine-specific path (which nbval would compare);
    the file is ``reports_dir() / "figures" / figure(id).file``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (anything with ``savefig``).
    id : str
        Its manifest id, e.g. "fig06_backprop".
    dpi : int
        Resolution.
    **savefig_kwargs
        Passed to ``fig.savefig``.

    Raises
    ------
    ValueError
        If ``id`` is not in the manifest.
    """
    path = reports_dir() / "figures" / figure(id).file
    path.parent.mkdir(parents=True, exist_ok=True)
    savefig_kwargs.setdefault("bbox_inches", "tight")
    fig.savefig(path, dpi=dpi, **savefig_kwargs)
