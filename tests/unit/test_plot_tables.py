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


def test_nested_sequences_and_mappings_inside_cells_keep_their_grouping():
    from nn_interpretability import plot

    summary = {
        "logit (model, surrogate)": [[12.125, 11.75], [9.5, 9.25]],
        "shape": (2, 1, 28, 28),
        "most alike": [("a / b", 0.91), ("c / d", 0.875)],
        "counts": [{"3": 40}, {"5": 2}],
    }
    assert plot.table(summary).cells == [
        ["logit (model, surrogate)", "(12.12, 11.75), (9.5, 9.25)"],
        ["shape", "2, 1, 28, 28"],
        ["most alike", "(a / b, 0.91), (c / d, 0.875)"],
        ["counts", "{3: 40}, {5: 2}"],
    ]


def test_transposed_matrix_has_one_column_per_outer_key():
    from nn_interpretability import plot

    per_layer = {"conv": {"ρ": 0.5, "top": [3, 1], "fit": {"a": 1}}, "dense": {"ρ": 0.25, "top": [7, 2], "extra": True}}
    table = plot.table(per_layer, header=("quantity", ""), transpose=True)
    assert table.columns == ["quantity", "conv", "dense"]
    assert table.cells == [["ρ", "0.5", "0.25"], ["top", "3, 1", "7, 2"], ["fit · a", "1", ""], ["extra", "", "yes"]]
    assert plot.table(per_layer).columns[0] == "" and [row[0] for row in plot.table(per_layer).cells] == ["conv", "dense"]
    with pytest.raises(ValueError, match="transpose needs a mapping of mappings"):
        plot.table({"a": 1, "b": {"c": 2}}, transpose=True)
