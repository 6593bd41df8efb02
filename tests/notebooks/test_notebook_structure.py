"""Every notebook follows the project's conventions; nbval (pytest --nbval) re-executes and compares them."""
import json
import re
from pathlib import Path

import pytest

from nn_interpretability import reports

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _source(cell):
    return "".join(cell["source"])


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_then_seed(path):
    first, second = _code_cells(path)[:2]
    assert "parameters" in first["metadata"].get("tags", [])
    assert re.search(r"^SEED = \d+$", _source(first), re.MULTILINE)
    assert "nni.set_seed(SEED)" in _source(second)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_outputs_of_a_complete_run(path):
    cells = _code_cells(path)
    assert all(cell["execution_count"] is not None for cell in cells), "execute it: make notebooks"
    assert not any(o.get("output_type") == "error" for cell in cells for o in cell["outputs"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saves_exactly_its_manifest_figures(path):
    code = "\n".join(_source(c) for c in _code_cells(path))
    saved = set(re.findall(r"save_figure\(\s*\w+\s*,\s*\"(\w+)\"", code))
    assert saved == {entry.id for entry in reports.figures_for(path.stem)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_thin_and_offline(path):
    code = "\n".join(_source(c) for c in _code_cells(path))
    for forbidden in (".backward(", "optimizer", "download=True", "pretrained=True", "os.environ"):
        assert forbidden not in code, f"{forbidden!r} belongs in the package, not the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_checks_its_claims_on_every_run(path):
    # nbval runs in lax mode (pyproject.toml): floating-point results differ in the last digits between
    # machines, and chaotic computations (training, optimisation) amplify that. So each notebook asserts
    # its claims with tolerances in its last code cell, which nbval executes on every run.
    last = _source(_code_cells(path)[-1])
    assert "assert " in last, "end the notebook with a cell asserting its claims"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_fit_the_page_and_results_are_tables(path):
    # A figure wider than the page is shrunk in the HTML with its text: nni.plot caps the width at 10 in.
    code = "\n".join(_source(c) for c in _code_cells(path))
    assert not re.search(r"plt\.(subplots|figure)\(", code), "make figures with nni.plot.subplots / nni.plot.figure"
    # A bare dict as a cell's result prints as raw text in the report: show it with nni.plot.table.
    for cell in _code_cells(path):
        for output in cell["outputs"]:
            text = "".join(output.get("data", {}).get("text/plain", []))
            if output.get("output_type") == "execute_result" and "text/html" not in output.get("data", {}):
                assert not text.lstrip().startswith("{"), f"a raw dict is shown: {text[:80]!r}"
