"""The static ``index.html`` of the report folder: every manifest figure and the notebooks run."""
from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from .manifest import MANIFEST, SOURCES, Figure

if TYPE_CHECKING:
    from .runner import NotebookResult

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1.5rem; color: #222; background: #fafafa; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; margin-top: 2rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; margin: 0; padding: 0.75rem;
        display: flex; flex-direction: column; gap: 0.5rem; }
.thumb { height: 200px; display: flex; align-items: center; justify-content: center; background: #f4f4f4;
         border-radius: 4px; }
.thumb img { max-width: 100%; max-height: 200px; object-fit: contain; }
figcaption { font-size: 0.9rem; line-height: 1.35; }
figcaption .nb { display: block; margin-top: 0.3rem; color: #555; font-size: 0.85rem; }
code { font-size: 0.8rem; color: #555; }
.badge { display: inline-block; padding: 0.15rem 0.6rem; border-radius: 999px; font-size: 0.8rem;
         font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; }
.pending { background: #eee; color: #777; } .missing, .incomplete { background: #fff1cc; color: #8a5a00; }
.ok { background: #dcf5e3; color: #1d6b35; } .failed { background: #fde0e0; color: #a11d1d; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 0.45rem 0.7rem; border-bottom: 1px solid #e6e6e6; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: #1a5fb4; text-decoration: none; } a:hover { text-decoration: underline; }
"""


def _notebook_link(slug: str, output_dir: Path) -> str:
    if (output_dir / "html" / f"{slug}.html").is_file():
        return f'<a href="html/{escape(slug)}.html">{escape(slug)}</a>'
    return escape(slug)


def _card(entry: Figure, output_dir: Path, notebooks_dir: Path) -> str:
    src = f"figures/{escape(entry.file)}"
    if (output_dir / "figures" / entry.file).is_file():
        thumb = f'<a href="{src}"><img src="{src}" alt="{escape(entry.label)}" loading="lazy"></a>'
    elif not (notebooks_dir / f"{entry.notebook}.ipynb").is_file():
        thumb = '<span class="badge pending">pending</span>'
    else:
        thumb = '<span class="badge missing">not generated</span>'
    return (
        f'<figure class="card" id="{escape(entry.id)}"><div class="thumb">{thumb}</div>'
        f"<figcaption><strong>{escape(entry.label)}.</strong> {escape(entry.caption)}"
        f'<span class="nb">{_notebook_link(entry.notebook, output_dir)} · <code>{escape(entry.id)}</code></span>'
        "</figcaption></figure>"
    )


def _notebook_row(result: NotebookResult, output_dir: Path) -> str:
    details = []
    if result.error:
        details.append(escape(result.error))
    if result.missing_figures:
        details.append("missing figures: " + ", ".join(escape(i) for i in result.missing_figures))
    return (
        f"<tr><td>{_notebook_link(result.name, output_dir)}</td>"
        f'<td><span class="badge {result.status}">{result.status}</span></td>'
        f'<td class="num">{result.seconds:.1f} s</td><td>{"<br>".join(details)}</td></tr>'
    )


def write_index(output_dir: Path, notebooks_dir: Path, results: list[NotebookResult]) -> Path:
    """Write ``<output_dir>/index.html``.

    Parameters
    ----------
    output_dir : pathlib.Path
        The report folder (with ``figures/`` and ``html/``).
    notebooks_dir : pathlib.Path
        Where the notebooks live; figures whose notebook is absent are "pending".
    results : list of NotebookResult
        The notebooks of this run, listed with status and wall time.

    Returns
    -------
    pathlib.Path
        The written page.
    """
    present = sum((output_dir / "figures" / entry.file).is_file() for entry in MANIFEST)
    sections = []
    for source, title in SOURCES.items():
        cards = "\n".join(_card(e, output_dir, notebooks_dir) for e in MANIFEST if e.source == source)
        heading = f"{title} ({source})" if source != "extra" else title
        sections.append(f'<section><h2>{escape(heading)}</h2><div class="cards">\n{cards}\n</div></section>')
    if results:
        rows = "\n".join(_notebook_row(r, output_dir) for r in results)
        table = (
            "<table><thead><tr><th>Notebook</th><th>Status</th><th>Wall time</th><th>Details</th></tr></thead>"
            f"<tbody>\n{rows}\n</tbody></table>"
        )
    else:
        table = '<p class="meta">No notebooks were run.</p>'
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nn_interpretability — report figures</title>
<style>{STYLE}</style>
</head>
<body>
<h1>nn_interpretability — report figures</h1>
<p class="meta">Generated {datetime.now():%Y-%m-%d %H:%M} · {present} of {len(MANIFEST)} figures present</p>
{"".join(sections)}
<section><h2>Notebooks run</h2>
{table}
</section>
</body>
</html>
"""
    path = output_dir / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
