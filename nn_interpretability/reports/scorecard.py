"""The scorecard page: every method-score table the notebooks saved (``save_scores``) as one sortable table."""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from .html import site_page

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1300px;
       padding: 0 1.5rem 1.5rem; color: #222; background: #fafafa; }
table { border-collapse: collapse; background: #fff; font-size: 0.9rem; }
th, td { padding: 0.35rem 0.6rem; border-bottom: 1px solid #e6e6e6; text-align: left; vertical-align: top; }
th { background: #f0f3f7; cursor: pointer; user-select: none; } th .table { display: block; color: #666;
     font-weight: normal; font-size: 0.8rem; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } td.best { background: #dcf5e3; font-weight: 600; }
.meta { color: #666; } a { color: #1a5fb4; text-decoration: none; } a:hover { text-decoration: underline; }
"""

# Click a header to sort by it (numbers as numbers, empty cells last); a second click reverses.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var nx = Number(x), ny = Number(y);
        var order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def read_score_tables(output_dir: str | Path) -> list[dict]:
    """The tables under ``<output_dir>/scores/*.json``, sorted by notebook and name."""
    folder = Path(output_dir) / "scores"
    tables = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]
    return sorted(tables, key=lambda t: (t["notebook"], t["name"]))


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _best(table: dict, column: str):
    values = [row[column] for row in table["rows"] if isinstance(row.get(column), (int, float))]
    if not values or column not in table["better"]:
        return None
    return max(values) if table["better"][column] == "higher" else min(values)


def write_scorecard(output_dir: str | Path) -> Path:
    """Write ``<output_dir>/scorecard.html``: one row per (notebook, method), one column per score.

    The rows of all tables from the same notebook and method are merged; each method links to its
    notebook's report, and the best value of every column with a "better" direction is marked.

    Parameters
    ----------
    output_dir : str or pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The written page.
    """
    output_dir = Path(output_dir)
    tables = read_score_tables(output_dir)
    columns = [(t, c) for t in tables for c in t["columns"] if c != "method"]
    keys = list(dict.fromkeys((t["notebook"], row["method"]) for t in tables for row in t["rows"]))
    best = {(t["name"], c): _best(t, c) for t, c in columns}
    header = "".join(
        f'<th scope="col">{escape(c)}<span class="table">{escape(t["name"])}'
        f'{" · " + t["better"][c] + " is better" if c in t["better"] else ""}</span></th>'
        for t, c in columns
    )
    rows = []
    for notebook, method in keys:
        href = f"html/{notebook}.html"
        link = f'<a href="{escape(href)}">{escape(method)}</a>' if (output_dir / href).is_file() else escape(method)
        cells = [f'<td data-value="{escape(method)}">{link}</td>', f'<td data-value="{escape(notebook)}">{escape(notebook)}</td>']
        for table, column in columns:
            row = next((r for r in table["rows"] if table["notebook"] == notebook and r["method"] == method), {})
            value = row.get(column)
            if value is None:
                cells.append('<td data-value=""></td>')
                continue
            numeric = isinstance(value, (int, float))
            classes = ["num"] if numeric else []
            if numeric and value == best[(table["name"], column)]:
                classes.append("best")
            cells.append(f'<td class="{" ".join(classes)}" data-value="{escape(str(value))}">{escape(_format(value))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    if rows:
        body = (
            '<table class="sortable"><thead><tr><th scope="col">method</th><th scope="col">notebook</th>'
            f"{header}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
        )
    else:
        body = '<p class="meta">No notebook of this build saved scores.</p>'
    sources = ", ".join(f'{escape(t["name"])} ({escape(t["notebook"])})' for t in tables) or "none"
    page = site_page("nn_interpretability — scorecard", STYLE, f"""<nav class="nni-nav" aria-label="reports"><span class="here">Scorecard</span><a href="index.html">Index</a></nav>
<h1>Scorecard</h1>
<p class="meta">The methods' scores from the notebooks' evaluations (tables: {sources}). Click a column to sort;
green marks the best value of a column.</p>
{body}
<script>{SORT_SCRIPT}</script>""")
    path = output_dir / "scorecard.html"
    path.write_text(page, encoding="utf-8")
    return path
