"""Execute the method notebooks with papermill, export them to HTML and check their figures."""
from __future__ import annotations

import ast
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import papermill
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError
from tqdm import tqdm

from ..core.progress import REPORT_BUILD_VARIABLE
from .figures import REPORTS_DIR_ENV, find_repo_root
from .index import write_index
from .manifest import figures_for

NOTEBOOK_PATTERN = re.compile(r"\d{2}_.+")
# The folder holding the nn_interpretability package, put on the kernels' path.
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class NotebookResult:
    """Outcome of one notebook run.

    Attributes
    ----------
    name : str
        Notebook slug, e.g. "06_backpropagation".
    seconds : float
        Wall time of the execution.
    executed : pathlib.Path
        The executed notebook.
    html : pathlib.Path or None
        The HTML export, None if there is none.
    error : str or None
        Why execution failed, None on success.
    missing_figures : tuple of str
        Manifest ids the notebook claims but did not write during the run.
    """

    name: str
    seconds: float
    executed: Path
    html: Path | None
    error: str | None = None
    missing_figures: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """"failed" (execution error), "incomplete" (figures missing) or "ok"."""
        if self.error is not None:
            return "failed"
        return "incomplete" if self.missing_figures else "ok"

    @property
    def ok(self) -> bool:
        """True when the notebook ran and wrote all its figures."""
        return self.status == "ok"


def discover_notebooks(notebooks_dir: str | Path) -> list[Path]:
    """The method notebooks ``NN_*.ipynb`` of a folder, sorted by name."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebooks folder not found: {folder}")
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.fullmatch(p.stem))


def select_notebooks(notebooks: list[Path], only: str | Iterable[str] | None) -> list[Path]:
    """Filter notebooks by slug ("03_saliency_maps"), number ("03") or bare slug ("saliency_maps").

    Raises
    ------
    ValueError
        If a name matches no notebook; the message lists the available ones.
    """
    if only is None:
        return list(notebooks)
    names = [only] if isinstance(only, str) else list(only)
    chosen = set()
    for name in names:
        key = name.removesuffix(".ipynb")
        matches = [p for p in notebooks if key in (p.stem, *p.stem.split("_", 1))]
        if not matches:
            available = ", ".join(p.stem for p in notebooks) or "none"
            raise ValueError(f"no notebook matches {name!r}; available: {available}")
        chosen.update(matches)
    return [p for p in notebooks if p in chosen]


def parse_parameter(value: str):
    """Read a command-line parameter value as a Python literal ("3", "[1, 2]") when it is one, else keep the string."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


@contextmanager
def _environ(**changes: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _prepend_path(entry: str, current: str | None) -> str:
    return os.pathsep.join([entry, current]) if current else entry


def _runs_this_python(argv: list[str]) -> bool:
    executable = argv[0]
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" by sys.executable.
    if executable in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        return True
    found = shutil.which(executable)
    # Compare bin folders rather than resolved files: a virtualenv's python is a
    # symlink to the base interpreter but has its own site-packages.
    return found is not None and os.path.samefile(Path(found).parent, Path(sys.executable).parent)


@contextmanager
def _kernel_for_this_python(kernel_name: str) -> Iterator[str]:
    """Yield the kernel's language, making the native kernel start the current interpreter meanwhile.

    A "python3" kernelspec found first on the Jupyter path may belong to another
    Python without this package's dependencies; it is then shadowed by a temporary
    spec for ``sys.executable``. Other kernel names are used as they are.
    """
    spec = KernelSpecManager().get_kernel_spec(kernel_name)
    if kernel_name != NATIVE_KERNEL_NAME or _runs_this_python(spec.argv):
        yield spec.language
        return
    from ipykernel.kernelspec import write_kernel_spec

    with tempfile.TemporaryDirectory(prefix="nni-kernels-") as tmp:
        write_kernel_spec(Path(tmp) / "kernels" / kernel_name)
        with _environ(JUPYTER_PATH=_prepend_path(tmp, os.environ.get("JUPYTER_PATH"))):
            yield spec.language


def _written_since(path: Path, since: float) -> bool:
    # Whole seconds: some file systems keep coarse modification times.
    return path.is_file() and path.stat().st_mtime >= math.floor(since)


def _run_notebook(
    path: Path,
    notebooks_dir: Path,
    output_dir: Path,
    parameters: Mapping[str, object],
    kernel_name: str,
    language: str,
    exporter: HTMLExporter,
) -> NotebookResult:
    executed = output_dir / "executed" / path.name
    html = output_dir / "html" / f"{path.stem}.html"
    # Outputs of an earlier run must not pass for this one's.
    executed.unlink(missing_ok=True)
    html.unlink(missing_ok=True)
    started, clock = time.time(), time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(path),
            str(executed),
            parameters=dict(parameters),
            cwd=str(notebooks_dir),
            kernel_name=kernel_name,
            language=language,
            progress_bar=False,
        )
    except PapermillExecutionError as exc:
        error = f"In [{exc.exec_count}]: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # a dead kernel or a timeout in one notebook must not stop the others
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - clock
    if executed.is_file():
        body, _ = exporter.from_filename(str(executed))
        html.write_text(body, encoding="utf-8")
    else:
        html = None
    missing = tuple(
        entry.id for entry in figures_for(path) if not _written_since(output_dir / "figures" / entry.file, started)
    )
    return NotebookResult(path.stem, seconds, executed, html, error, missing)


def _default_root() -> Path:
    root = find_repo_root() or find_repo_root(_PACKAGE_PARENT)
    if root is None:
        raise FileNotFoundError("not inside an nn_interpretability checkout; pass notebooks_dir and output_dir")
    return root


def run_reports(
    only: str | Iterable[str] | None = None,
    parameters: Mapping[str, object] | None = None,
    notebooks_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    kernel_name: str = NATIVE_KERNEL_NAME,
    in_place: bool = False,
) -> list[NotebookResult]:
    """Execute the method notebooks and build the report folder.

    Each notebook is executed with papermill (working directory ``notebooks_dir``,
    ``$NNI_REPORTS_DIR`` set to ``output_dir`` so its ``save_figure`` calls land
    there), saved to ``<output_dir>/executed/`` and exported to
    ``<output_dir>/html/``. A failing notebook is recorded and the others still
    run. ``<output_dir>/index.html`` is written at the end in every case.

    Parameters
    ----------
    only : str or iterable of str, optional
        Notebooks to run, by slug ("03_saliency_maps"), number ("03") or bare
        slug ("saliency_maps"); all ``NN_*.ipynb`` by default.
    parameters : mapping, optional
        Papermill parameters injected into every notebook.
    notebooks_dir : str or pathlib.Path, optional
        Default ``<repo>/notebooks``.
    output_dir : str or pathlib.Path, optional
        Default ``$NNI_REPORTS_DIR`` if set, else ``<repo>/reports``.
    kernel_name : str
        Jupyter kernel. The native "python3" always runs the current interpreter.
    in_place : bool
        Also copy each successfully executed notebook over its source, so that the committed
        notebooks carry the outputs of this run (what nbval compares against).

    Returns
    -------
    list of NotebookResult
        One per notebook run, in order; see ``NotebookResult.ok``.

    Raises
    ------
    ValueError
        If a name in ``only`` matches no notebook.
    """
    if notebooks_dir is None:
        notebooks_dir = _default_root() / "notebooks"
    if output_dir is None:
        env = os.environ.get(REPORTS_DIR_ENV)
        output_dir = Path(env) if env else _default_root() / "reports"
    notebooks_dir, output_dir = Path(notebooks_dir).resolve(), Path(output_dir).resolve()
    selected = select_notebooks(discover_notebooks(notebooks_dir), only)
    for sub in ("executed", "html", "figures"):
        (output_dir / sub).mkdir(parents=True, exist_ok=True)

    results: list[NotebookResult] = []
    kernel_env = {
        REPORTS_DIR_ENV: str(output_dir),
        # Report builds show no progress bars (nn_interpretability.core.progress).
        REPORT_BUILD_VARIABLE: "1",
        # Kernels import the same nn_interpretability as this process, installed or not.
        "PYTHONPATH": _prepend_path(str(_PACKAGE_PARENT), os.environ.get("PYTHONPATH")),
    }
    try:
        with _kernel_for_this_python(kernel_name) as language, _environ(**kernel_env):
            exporter = HTMLExporter()
            progress = tqdm(selected, desc="notebooks", unit="notebook")
            for path in progress:
                progress.set_postfix_str(path.stem)
                result = _run_notebook(
                    path, notebooks_dir, output_dir, parameters or {}, kernel_name, language, exporter
                )
                if in_place and result.ok:
                    shutil.copyfile(result.executed, path)
                results.append(result)
    finally:
        write_index(output_dir, notebooks_dir, results)
    return results
