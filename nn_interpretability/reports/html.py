"""HTML export of the report notebooks: what a reader sees, without what only the build or the tests need.

The executed notebooks keep everything (nbval compares them); the HTML leaves out the ``# NBVAL_*``
test markers and the stderr streams (progress bars, warnings), adds the site's header (index,
previous, next, the notebook, the executed notebook) and, under every manifest figure, its
"report vs reproduction" note. Math is typeset by a local copy of MathJax, so pages work offline.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
from dataclasses import dataclass
from html import escape
from importlib.resources import files
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import Unicode

from .manifest import SOURCES, Figure, figure

TEMPLATE_NAME = "nni_report"
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Where MathJax lives inside the HTML folder, and the script the pages load.
MATHJAX_DIR = Path("_static") / "mathjax"
# The combined configuration (TeX input, HTML-CSS output with the STIX web fonts) that
# jupyter_server_mathjax ships; the page's own settings are in templates/nni_report.
MATHJAX_SCRIPT = f"{MATHJAX_DIR.as_posix()}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
# What that configuration never loads from jupyter_server_mathjax's copy (12 MB -> 5 MB).
_MATHJAX_UNUSED = {"localization", "jax/output/SVG", "extensions/a11y"}
_TEST_MARKER = re.compile(r"^\s*#\s*NBVAL_[A-Z_]+\b.*$")

#: The look shared by the report pages' header and notes and the index and scorecard pages.
STYLE = """
.nni-nav { display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; align-items: baseline; padding: 0.6rem 1rem;
           margin: 0 0 1rem; background: #f3f6fa; border-bottom: 1px solid #d8dee6;
           font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 0.95rem; }
.nni-nav a { color: #1a5fb4; text-decoration: none; } .nni-nav a:hover { text-decoration: underline; }
.nni-nav .here { font-weight: 600; margin-right: auto; } .nni-nav .off { color: #999; }
.nni-note { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 0.9rem; line-height: 1.4;
            border-left: 3px solid #1a5fb4; background: #f7f9fc; padding: 0.5rem 0.8rem; margin: 0.4rem 0; }
.nni-note p { margin: 0.2rem 0; } .nni-note .label { font-weight: 600; }
.nni-note table { border-collapse: collapse; margin-top: 0.3rem; }
.nni-note td { padding: 0.1rem 0.8rem 0.1rem 0; border: none; font-variant-numeric: tabular-nums; }
"""


def install_mathjax(html_dir: str | Path) -> Path:
    """Copy MathJax 2 from the ``jupyter_server_mathjax`` package into ``<html_dir>/_static/mathjax``.

    Parameters
    ----------
    html_dir : str or pathlib.Path
        The folder of the HTML pages.

    Returns
    -------
    pathlib.Path
        The copy's ``MathJax.js``.

    Raises
    ------
    ModuleNotFoundError
        If ``jupyter_server_mathjax`` (a dev extra) is not installed.
    """
    source = Path(str(files("jupyter_server_mathjax") / "static"))
    target = Path(html_dir) / MATHJAX_DIR

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = Path(folder).relative_to(source)
        return {name for name in names if (relative / name).as_posix() in _MATHJAX_UNUSED}

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=ignore)
    return target / "MathJax.js"


def saved_figure_ids(source: str) -> list[str]:
    """The manifest ids a code cell saves, in order: the string ``id`` of every ``save_figure(fig, id)`` call.

    IPython syntax (magics, ``!`` commands) is translated first; a cell that is still not Python
    saves nothing.
    """
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return []
    ids = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", None))
        if name != "save_figure":
            continue
        argument = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "id"), None)
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            ids.append(argument.value)
    return sorted(ids, key=source.find)


def stderr_outputs(nb) -> int:
    """How many stderr stream outputs a notebook's cells hold (a report build should have none)."""
    return sum(
        output.get("output_type") == "stream" and output.get("name") == "stderr"
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


def read_numbers(figures_dir: str | Path, entry: Figure) -> dict[str, object]:
    """The key numbers ``save_figure(..., numbers=)`` wrote beside the figure; empty when there are none."""
    path = (Path(figures_dir) / entry.file).with_suffix(".json")
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("numbers", {}))


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def figure_note(entry: Figure, numbers: dict[str, object]) -> str:
    """The "report vs reproduction" note of a figure: the original caption, what differs, the key numbers."""
    parts = []
    if entry.original:
        parts.append(
            f'<p><span class="label">{escape(SOURCES[entry.source])}, {escape(entry.label)}:</span> '
            f"{escape(entry.original)}</p>"
        )
    else:
        parts.append(f'<p><span class="label">Extra figure</span> (not in the original documents): '
                     f"{escape(entry.caption)}</p>")
    if entry.differences:
        parts.append(f'<p><span class="label">What differs:</span> {escape(entry.differences)}</p>')
    if numbers:
        rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(_number(v))}</td></tr>" for k, v in numbers.items())
        parts.append(f'<p class="label">Key numbers</p><table>{rows}</table>')
    return f'<div class="nni-note" data-figure="{escape(entry.id)}">{"".join(parts)}</div>'


class StripTestMarkers(Preprocessor):
    """Remove the ``# NBVAL_*`` comment lines, which only tell nbval how to compare, from code cells."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            cell.source = "\n".join(line for line in lines if not _TEST_MARKER.match(line))
        return cell, resources


class DropStderr(Preprocessor):
    """Leave out stderr streams: progress bars and warnings are for the build's log, not the reader."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
        return cell, resources


class FigureNotes(Preprocessor):
    """Put each manifest figure's "report vs reproduction" note under the cell output that shows it."""

    figures_dir = Unicode(help="the report folder's figures/, where the figures' key numbers are").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for id in saved_figure_ids(cell.source):
                entry = figure(id)
                note = figure_note(entry, read_numbers(self.figures_dir, entry))
                cell.outputs.append(nbformat.v4.new_output("display_data", data={"text/html": note}))
        return cell, resources


@dataclass(frozen=True)
class Page:
    """Where one report page sits in the site: its neighbours and the notebooks it links to.

    Attributes
    ----------
    slug : str
        The notebook slug, e.g. "06_backpropagation".
    previous, next : str or None
        Slugs of the neighbouring reports, None at the ends.
    notebook : pathlib.Path
        The source notebook.
    executed : pathlib.Path
        The executed notebook the page was exported from.
    """

    slug: str
    previous: str | None
    next: str | None
    notebook: Path
    executed: Path


def page_header(page: Page, html_dir: Path) -> str:
    """The navigation bar on top of a report: index · previous · next · notebook · executed notebook."""

    def link(slug: str | None, text: str) -> str:
        if slug is None:
            return f'<span class="off">{escape(text)}</span>'
        return f'<a href="{escape(slug)}.html">{escape(text)}</a>'

    def file(path: Path, text: str) -> str:
        return f'<a href="{escape(Path(os.path.relpath(path, html_dir)).as_posix())}">{escape(text)}</a>'

    return (
        f'<nav class="nni-nav" aria-label="reports"><span class="here">{escape(page.slug)}</span>'
        '<a href="../index.html">Index</a>'
        f'{link(page.previous, "← previous" + (f" ({page.previous[:2]})" if page.previous else ""))}'
        f'{link(page.next, "next" + (f" ({page.next[:2]})" if page.next else "") + " →")}'
        f'{file(page.notebook, "notebook (.ipynb)")}{file(page.executed, "executed notebook")}</nav>'
    )


def make_exporter(figures_dir: str | Path) -> HTMLExporter:
    """The HTML exporter of the report pages (template ``nni_report``, the preprocessors above)."""
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATES)], mathjax_url=MATHJAX_SCRIPT
    )
    for preprocessor in (StripTestMarkers(), DropStderr(), FigureNotes(figures_dir=str(figures_dir))):
        exporter.register_preprocessor(preprocessor, enabled=True)
    return exporter


def export_page(exporter: HTMLExporter, page: Page, html_dir: str | Path) -> Path:
    """Export ``page.executed`` to ``<html_dir>/<slug>.html`` and return that file."""
    html_dir = Path(html_dir)
    nb = nbformat.read(page.executed, as_version=4)
    resources = {"metadata": {"name": page.slug}, "nni": {"style": STYLE, "header": page_header(page, html_dir)}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    path = html_dir / f"{page.slug}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def site_page(title: str, style: str, body: str) -> str:
    """A stand-alone page of the report site (index, scorecard): the document around ``body``, with the notes' style."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}{style}</style>
</head>
<body>
{body}
</body>
</html>
"""
