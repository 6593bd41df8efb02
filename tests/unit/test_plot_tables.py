"""Tables that notebooks display: the axioms table renders as HTML, not as fixed-width text."""
from html.parser import HTMLParser

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
