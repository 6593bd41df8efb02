"""Summaries as tables: a notebook shows a mapping of results as an HTML table, not as a raw dict."""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence


def _is_list(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _text(value, inner: bool = False) -> str:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        listed = ", ".join(f"{k}: {_text(v, inner=True)}" for k, v in value.items())
        return f"{{{listed}}}" if inner else listed
    if _is_list(value):
        listed = ", ".join(_text(v, inner=True) for v in value)
        return f"({listed})" if inner else listed
    return str(value)


def _flatten(mapping: Mapping, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name} · "))
        else:
            flat[name] = value
    return flat


class Table:
    """A mapping of results shown as a table: HTML in notebooks, aligned text by ``str``.

    A mapping of mappings (``{row: {column: value}}``) is a matrix with one row per key (with
    ``transpose``, one column per key); any other mapping is two columns, the name and the value.
    Deeper levels are joined into column names (``"before · NLL"``); sequences are listed, the
    nested ones in parentheses (``"(12.1, 11.8), (9.5, 9.7)"``), mappings inside sequences in
    braces, floats shown with four significant digits.
    """

    def __init__(self, results: Mapping, header: tuple[str, str] = ("", "value"), transpose: bool = False):
        if not isinstance(results, Mapping) or not results:
            raise ValueError(f"a table needs a non-empty mapping, got {type(results).__name__}")
        matrix = all(isinstance(v, Mapping) for v in results.values())
        if transpose and not matrix:
            raise ValueError("transpose needs a mapping of mappings ({column: {row: value}})")
        self.results = results
        if transpose:
            rows = {str(k): _flatten(v) for k, v in results.items()}
            names = dict.fromkeys(r for column in rows.values() for r in column)
            results = {name: {column: values[name] for column, values in rows.items() if name in values} for name in names}
        if matrix:
            rows = {str(k): _flatten(v) for k, v in results.items()}
            self.columns = [header[0], *dict.fromkeys(c for row in rows.values() for c in row)]
            self.cells = [[name, *(_text(row[c]) if c in row else "" for c in self.columns[1:])] for name, row in rows.items()]
        else:
            self.columns = list(header)
            self.cells = [[name, _text(value)] for name, value in _flatten(results).items()]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            f"<tr><th style=\"text-align:left\">{html.escape(row[0])}</th>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[1:]) + "</tr>"
            for row in self.cells
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        lines = [self.columns, *self.cells]
        widths = [max(len(line[c]) for line in lines) for c in range(len(self.columns))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)

    __repr__ = __str__


def table(results: Mapping, header: tuple[str, str] = ("", "value"), transpose: bool = False) -> Table:
    """Show a mapping of results (a notebook's summary) as a table; see :class:`Table`.

    Parameters
    ----------
    results : mapping
        ``{name: value}`` (two columns) or ``{row: {column: value}}`` (a matrix).
    header : tuple of str
        The heading of the name column and, for two columns, of the value column.
    transpose : bool
        For a matrix: one column per outer key and one row per inner key, for a few results with
        many quantities each (``{layer: {quantity: value}}``).
    """
    return Table(results, header, transpose)
