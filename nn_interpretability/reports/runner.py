"""Execute the method notebooks with papermill (or take them as committed), export them to HTML and check their figures."""
from __future__ import annotations

import ast
import base64
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from papermill.exceptions import PapermillExecutionError

from ..core.progress import REPORT_BUILD_VARIABLE, interactive, progress
from .figures import REPORTS_DIR_ENV, find_repo_root
from .html import Page, export_page, install_mathjax, make_exporter, saved_figure_ids, stderr_outputs
from .index import write_index
from .manifest import figure, figures_for
from .scorecard import write_scorecard

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
        Wall time of the execution (for a notebook taken as committed: of the run that made its outputs,
        as papermill recorded it; 0 when unknown).
    executed : pathlib.Path
        The executed notebook.
    html : pathlib.Path or None
        The HTML export, None if there is none.
    error : str or None
        Why execution failed, None on success.
    missing_figures : tuple of str
        Manifest ids the notebook claims but did not write during the run.
    stderr_outputs : int
        Stderr streams in the executed notebook: warnings or progress bars that a report build should
        not produce (the HTML leaves them out; the closing table and the index count them).
    """

    name: str
    seconds: float
    executed: Path
    html: Path | None
    error: str | None = None
    missing_figures: tuple[str, ...] = ()
    stderr_outputs: int = 0

    @property
    def details(self) -> list[str]:
        """What went wrong or needs a look, one line each; empty for a clean run."""
        lines = [self.error] if self.error else []
        if self.missing_figures:
            lines.append("figures not written: " + ", ".join(self.missing_figures))
        if self.stderr_outputs:
            lines.append(f"{self.stderr_outputs} stderr outputs (not shown in the HTML)")
        return lines

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


# Kernels log at warning level to the terminal of the build (ipykernel: "Kernel is running over TCP
# without encryption" at every start); errors still show.
_KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def _execute(
    path: Path, executed: Path, notebooks_dir: Path, parameters: Mapping[str, object], kernel_name: str, language: str
) -> tuple[float, str | None]:
    clock = time.perf_counter()
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
            extra_arguments=_KERNEL_ARGUMENTS,
        )
    except PapermillExecutionError as exc:
        error = f"In [{exc.exec_count}]: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # a dead kernel or a timeout in one notebook must not stop the others
        error = f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - clock, error


def _figures_from_outputs(nb, figures_dir: Path) -> None:
    """Write the PNG each figure cell shows as ``<figures_dir>/<id>.png``: the figures of a notebook taken as committed.

    A cell that saves k figures and shows k images gives them in order; any other count is left out (and
    the run reports the figure as not written).
    """
    for cell in nb.cells:
        names = saved_figure_ids(cell.source) if cell.cell_type == "code" else []
        images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if names and len(images) == len(names):
            for name, image in zip(names, images):
                (figures_dir / figure(name).file).write_bytes(base64.b64decode(image))


def _take_committed(path: Path, executed: Path, figures_dir: Path) -> tuple[float, str | None]:
    """Use the committed notebook, outputs included, as the executed one; its figures come from its outputs."""
    shutil.copyfile(path, executed)
    nb = nbformat.read(executed, as_version=4)
    _figures_from_outputs(nb, figures_dir)
    record = nb.metadata.get("papermill", {})
    error = "the committed outputs come from a failed run" if record.get("exception") else None
    return float(record.get("duration") or 0.0), error


def _site_pages(notebooks: list[Path], output_dir: Path) -> list[Page]:
    """Every notebook with an executed copy, in order, each with its neighbours among them."""
    present = [p for p in notebooks if (output_dir / "executed" / p.name).is_file()]
    slugs = [p.stem for p in present]
    return [
        Page(
            slug,
            slugs[i - 1] if i > 0 else None,
            slugs[i + 1] if i + 1 < len(slugs) else None,
            path,
            output_dir / "executed" / path.name,
        )
        for i, (slug, path) in enumerate(zip(slugs, present))
    ]


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
    execute: bool = True,
    show_progress: bool | None = None,
) -> list[NotebookResult]:
    """Execute the method notebooks and build the report site.

    Each notebook is executed with papermill (working directory ``notebooks_dir``,
    ``$NNI_REPORTS_DIR`` set to ``output_dir`` so its ``save_figure`` calls land
    there, ``$NNI_REPORT_BUILD`` set so that it shows no progress bars or data-source
    warnings) and saved to ``<output_dir>/executed/``. A failing notebook is recorded
    and the others still run. Then every notebook with an executed copy is exported to
    ``<output_dir>/html/`` (MathJax copied to ``html/_static/``), and ``index.html`` and
    ``scorecard.html`` are written, in every case.

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
    execute : bool
        False: take the committed notebooks, with their outputs, as the executed ones and write
        each figure from the image its cell shows (seconds for all notebooks instead of minutes;
        the figures' key numbers, which only a run writes, are then absent).
    show_progress : bool, optional
        One progress bar over the notebooks; default: when a terminal is watching.

    Returns
    -------
    list of NotebookResult
        One per notebook run, in order; see ``NotebookResult.ok``.

    Raises
    ------
    ValueError
        If a name in ``only`` matches no notebook, or ``execute=False`` is combined with
        ``parameters`` or ``in_place``.
    """
    if not execute and (parameters or in_place):
        raise ValueError("parameters and in_place need execution; drop them or execute")
    if show_progress is None:
        # Decided here: inside the build's environment (NNI_REPORT_BUILD set for the kernels) nothing is interactive.
        show_progress = interactive()
    if notebooks_dir is None:
        notebooks_dir = _default_root() / "notebooks"
    if output_dir is None:
        env = os.environ.get(REPORTS_DIR_ENV)
        output_dir = Path(env) if env else _default_root() / "reports"
    notebooks_dir, output_dir = Path(notebooks_dir).resolve(), Path(output_dir).resolve()
    notebooks = discover_notebooks(notebooks_dir)
    selected = select_notebooks(notebooks, only)
    for sub in ("executed", "html", "figures"):
        (output_dir / sub).mkdir(parents=True, exist_ok=True)

    runs: dict[str, tuple[float, float, str | None]] = {}
    kernel_env = {
        REPORTS_DIR_ENV: str(output_dir),
        # Report builds show no progress bars and no data-source warnings (core.progress.report_build).
        REPORT_BUILD_VARIABLE: "1",
        # Kernels import the same nn_interpretability as this process, installed or not.
        "PYTHONPATH": _prepend_path(str(_PACKAGE_PARENT), os.environ.get("PYTHONPATH")),
    }
    results: list[NotebookResult] = []
    try:
        kernel = _kernel_for_this_python(kernel_name) if execute else nullcontext(None)
        with kernel as language, _environ(**kernel_env):
            bar = progress(selected, "notebooks", show_progress, unit="notebook")
            for path in bar:
                bar.set_postfix_str(path.stem)
                executed = output_dir / "executed" / path.name
                # Outputs of an earlier run must not pass for this one's.
                executed.unlink(missing_ok=True)
                (output_dir / "html" / f"{path.stem}.html").unlink(missing_ok=True)
                started = time.time()
                if execute:
                    seconds, error = _execute(path, executed, notebooks_dir, parameters or {}, kernel_name, language)
                else:
                    seconds, error = _take_committed(path, executed, output_dir / "figures")
                runs[path.stem] = (started, seconds, error)
        results = _export_site(notebooks, selected, runs, output_dir)
        if in_place:
            for result in results:
                if result.ok:
                    shutil.copyfile(result.executed, notebooks_dir / result.executed.name)
    finally:
        write_scorecard(output_dir)
        write_index(output_dir, notebooks_dir, results, executed=execute)
    return results


def _export_site(
    notebooks: list[Path], selected: list[Path], runs: Mapping[str, tuple[float, float, str | None]], output_dir: Path
) -> list[NotebookResult]:
    """Export every page of the site (fresh headers and notes) and return the results of this run's notebooks."""
    html_dir = output_dir / "html"
    install_mathjax(html_dir)
    exporter = make_exporter(output_dir / "figures")
    pages = {page.slug: page for page in _site_pages(notebooks, output_dir)}
    for page in pages.values():
        export_page(exporter, page, html_dir)
    results = []
    for path in selected:
        started, seconds, error = runs[path.stem]
        executed = output_dir / "executed" / path.name
        html = html_dir / f"{path.stem}.html"
        stderr = stderr_outputs(nbformat.read(executed, as_version=4)) if executed.is_file() else 0
        missing = tuple(
            e.id for e in figures_for(path) if not _written_since(output_dir / "figures" / e.file, started)
        )
        results.append(
            NotebookResult(path.stem, seconds, executed, html if html.is_file() else None, error, missing, stderr)
        )
    return results
