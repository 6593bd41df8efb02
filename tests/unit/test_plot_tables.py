"""Tables that notebooks display: the axioms table renders as HTML, not as fixed-width text."""
from html.parser import HTMLParser

import pytest

from nn_interpretability.evaluation.properties import AxiomsTable


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.red = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.rows[-1].append("")
            self.red.append("#b00" in (dict(attrs).get("style") or ""))

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def test_axioms_table_html_has_one_row_per_method_and_marks_failures():
    table = AxiomsTable(
        rows=["saliency", "IG <x>"],
        columns=["completeness", "continuity"],
        values=[[1.0, 354.0], [0.000935, float("nan")]],
        passed=[[False, False], [True, None]],
    )
    parser = _Cells()
    parser.feed(table._repr_html_())
    assert parser.rows == [
        ["method", "completeness", "continuity"],
        ["saliency", "1 ✗", "354 ✗"],
        ["IG <x>", "0.000935 ✓", "n/a"],
    ]
    assert parser.red == [False] * 3 + [False, True, True] + [False, False, False]


def test_summary_table_two_columns_and_matrix():
    import torch

    from nn_interpretability import plot

    summary = {"test accuracy": 0.97912345, "digits": [0, 2], "passes": True, "T": torch.tensor(1.5)}
    parser = _Cells()
    parser.feed(plot.table(summary)._repr_html_())
    assert parser.rows == [["", "value"], ["test accuracy", "0.9791"], ["digits", "0, 2"], ["passes", "yes"], ["T", "1.5"]]
    nested = {"clean": {"T": 1.36, "before": {"NLL": 0.0445}}, "rotated": {"T": 2.04, "before": {"NLL": 0.65}}}
    matrix = plot.table(nested, header=("setting", ""))
    assert matrix.columns == ["setting", "T", "before · NLL"]
    assert matrix.cells == [["clean", "1.36", "0.0445"], ["rotated", "2.04", "0.65"]]
    assert str(matrix).splitlines()[1].split() == ["clean", "1.36", "0.0445"]
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot.table([1, 2])
