"""Where report figures go, and saving them under their manifest id."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
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


def _plain(value):
    """A number or a string as JSON keeps it: tensors and NumPy scalars become floats, floats are finite."""
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number or a string, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")


def save_figure(fig, id: str, dpi: int = 150, numbers: Mapping[str, object] | None = None, **savefig_kwargs) -> None:
    """Save a report figure as ``<reports_dir>/figures/<id>.png``, with its key numbers beside it.

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
    numbers : mapping of str to number or str, optional
        The figure's key numbers by label (e.g. ``{"deletion AUC, Grad-CAM": 0.34}``), written to
        ``<id>.json`` beside the PNG; the reports show them under the figure and on its index card.
    **savefig_kwargs
        Passed to ``fig.savefig``.

    Raises
    ------
    ValueError
        If ``id`` is not in the manifest.
    """
    path = reports_dir() / "figures" / figure(id).file
    summary = {"numbers": {str(k): _plain(v) for k, v in (numbers or {}).items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    savefig_kwargs.setdefault("bbox_inches", "tight")
    fig.savefig(path, dpi=dpi, **savefig_kwargs)
    _write_json(path.with_suffix(".json"), summary)


def save_scores(
    name: str,
    rows: Sequence[Mapping[str, object]],
    better: Mapping[str, str],
    notebook: str,
) -> None:
    """Save a table of method scores as ``<reports_dir>/scores/<name>.json`` for the reports' scorecard.

    Parameters
    ----------
    name : str
        The table's name, e.g. "faithfulness".
    rows : sequence of mappings
        One row per method: ``{"method": "IG", "<column>": number or str, ...}``.
    better : mapping of str to {"higher", "lower"}
        For each numeric column, which direction is better (the scorecard colours by it).
    notebook : str
        The slug of the notebook that made the table, e.g. "18_evaluation".
    """
    rows = [{str(k): _plain(v) for k, v in row.items()} for row in rows]
    if not rows or any("method" not in row for row in rows):
        raise ValueError("give at least one row, each with a 'method' entry")
    bad = {k: v for k, v in better.items() if v not in ("higher", "lower")}
    if bad:
        raise ValueError(f"better must map columns to 'higher' or 'lower', got {bad}")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    unknown = sorted(set(better) - set(columns))
    if unknown:
        raise ValueError(f"better names columns that no row has: {unknown}")
    content = {"name": name, "notebook": notebook, "columns": columns, "rows": rows, "better": dict(better)}
    _write_json(reports_dir() / "scores" / f"{name}.json", content)
