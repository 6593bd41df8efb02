"""The report site: clean executed outputs, the HTML export (markers, stderr, header, notes, MathJax),
export-only builds, the index and the scorecard."""
import base64
import io
import sys
import warnings

import nbformat
import pytest

from nn_interpretability import reports
from nn_interpretability.core.progress import REPORT_BUILD_VARIABLE
from nn_interpretability.data import mnist
from nn_interpretability.reports.__main__ import closing_table, main
from nn_interpretability.reports.html import StripTestMarkers, saved_figure_ids, stderr_outputs
from nn_interpretability.reports.scorecard import write_scorecard

# A notebook cell doing what report notebooks do: load the embedded MNIST digits, loop with the
# package's progress bar, carry a test marker, save two report figures with their key numbers.
FIGURE_CELL = """\
# NBVAL_IGNORE_OUTPUT
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nn_interpretability as nni
from nn_interpretability.core.progress import progress
images, labels = nni.data.load_mnist("test", source="embedded")
total = sum(i for i in progress(range(200), "counting"))
fig, ax = plt.subplots()
ax.imshow(images[0, 0])
nni.reports.save_figure(fig, "fig06_backprop", numbers={"pixels": 784, "mean": 0.125})
nni.reports.save_figure(fig, id="fig07_smoothgrad")
print("total", total)
"""


def _notebook(path, *cells):
    parameters = nbformat.v4.new_code_cell("SEED = 0")
    parameters.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[parameters, *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return nb


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    notebooks = tmp_path_factory.mktemp("notebooks")
    intro = nbformat.v4.new_markdown_cell("# 06\nThe gradient $\\partial f_c / \\partial x$.")
    _notebook(notebooks / "03_saliency_maps.ipynb", nbformat.v4.new_code_cell("x = 1"))
    _notebook(notebooks / "06_backpropagation.ipynb", intro, nbformat.v4.new_code_cell(FIGURE_CELL))
    _notebook(notebooks / "08_lrp.ipynb", nbformat.v4.new_code_cell("y = 2"))
    out = tmp_path_factory.mktemp("reports")
    # 03 and 08 as an earlier build left them: only 06 executes, every page gets its header anew.
    (out / "executed").mkdir()
    for name in ("03_saliency_maps.ipynb", "08_lrp.ipynb"):
        (out / "executed" / name).write_bytes((notebooks / name).read_bytes())
    results = reports.run_reports(only="06", notebooks_dir=notebooks, output_dir=out, show_progress=False)
    return notebooks, out, {r.name: r for r in results}


def test_report_build_leaves_no_stderr_in_the_executed_notebook(built):
    _, out, results = built
    nb = nbformat.read(out / "executed" / "06_backpropagation.ipynb", as_version=4)
    assert results["06_backpropagation"].ok, results["06_backpropagation"].details
    assert "total 19900" in nb.cells[2].outputs[0]["text"]
    assert stderr_outputs(nb) == 0 and results["06_backpropagation"].stderr_outputs == 0
    assert "# NBVAL_IGNORE_OUTPUT" in nb.cells[2].source  # the executed notebook keeps what nbval reads


def test_html_has_header_note_local_math_and_no_markers(built):
    notebooks, out, _ = built
    page = (out / "html" / "06_backpropagation.html").read_text()
    assert "NBVAL" not in page
    assert '<a href="../index.html">Index</a>' in page
    assert '<a href="03_saliency_maps.html">← previous (03)</a>' in page
    assert '<a href="08_lrp.html">next (08) →</a>' in page
    assert '<a href="../executed/06_backpropagation.ipynb">executed notebook</a>' in page
    assert "notebook (.ipynb)" in page and "06_backpropagation.ipynb" in page
    assert '<script src="_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"></script>' in page
    assert (out / "html" / "_static" / "mathjax" / "MathJax.js").is_file()
    assert "https://" not in "".join(line for line in page.splitlines() if "<script" in line)
    fig06 = reports.figure("fig06_backprop")
    assert f"Project report, Fig. 6:</span> {fig06.original}" in page
    assert "<td>pixels</td><td>784</td>" in page and "<td>mean</td><td>0.125</td>" in page
    assert 'data-figure="fig07_smoothgrad"' in page
    first = (out / "html" / "03_saliency_maps.html").read_text()
    assert '<span class="off">← previous</span>' in first


def test_index_introduces_the_project_and_fills_details(built):
    _, out, _ = built
    page = (out / "index.html").read_text()
    for heading in ("Data and models", "What was substituted, and why", "This build"):
        assert f"<h2>{heading}</h2>" in page
    assert "python -m nn_interpretability.reports --only 06" in page
    assert '<a href="scorecard.html">' in page and (out / "scorecard.html").is_file()
    assert 'figures: <a href="#fig06_backprop">Fig. 6</a>, <a href="#fig07_smoothgrad">Fig. 7</a>' in page
    assert "<td>pixels</td><td>784</td>" in page  # the card carries the key numbers too


def test_export_only_takes_committed_outputs_and_writes_figures(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    png = base64.b64encode(b"\x89PNG not really").decode()
    cell = nbformat.v4.new_code_cell(
        "%matplotlib inline\nnni.reports.save_figure(fig, 'saliency_maps')\nnni.reports.save_figure",
        outputs=[
            nbformat.v4.new_output("stream", name="stderr", text="counting: 50%|#####     |\n"),
            nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        ],
    )
    nb = _notebook(notebooks / "03_saliency_maps.ipynb", cell)
    nb.metadata["papermill"] = {"duration": 12.5, "exception": False}
    nbformat.write(nb, notebooks / "03_saliency_maps.ipynb")
    out = tmp_path / "site"
    (result,) = reports.run_reports(notebooks_dir=notebooks, output_dir=out, execute=False, show_progress=False)
    assert (out / "figures" / "saliency_maps.png").read_bytes() == b"\x89PNG not really"
    assert result.missing_figures == ("saliency_imagenet",) and result.seconds == 12.5
    assert result.stderr_outputs == 1 and "1 stderr outputs (not shown in the HTML)" in result.details
    page = (out / "html" / "03_saliency_maps.html").read_text()
    assert "counting: 50%" not in page and 'data-mime-type="application/vnd.jupyter.stderr"' not in page
    assert "exported the 1 committed notebooks" in (out / "index.html").read_text()
    with pytest.raises(ValueError, match="need execution"):
        reports.run_reports(notebooks_dir=notebooks, output_dir=out, execute=False, in_place=True)


def test_export_only_takes_each_of_a_cells_figures_in_order(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    pngs = [base64.b64encode(f"PNG {i}".encode()).decode() for i in (1, 2)]
    two = nbformat.v4.new_code_cell(
        "nni.reports.save_figure(fig, 'saliency_maps')\nnni.reports.save_figure(fig, 'saliency_imagenet')",
        outputs=[nbformat.v4.new_output("display_data", data={"image/png": png}) for png in pngs],
    )
    _notebook(notebooks / "03_saliency_maps.ipynb", two)
    out = tmp_path / "site"
    (result,) = reports.run_reports(notebooks_dir=notebooks, output_dir=out, execute=False, show_progress=False)
    assert (out / "figures" / "saliency_maps.png").read_bytes() == b"PNG 1"
    assert (out / "figures" / "saliency_imagenet.png").read_bytes() == b"PNG 2"
    assert result.missing_figures == ()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_watched_build_shows_one_progress_bar(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "15_textbook_solved_problems.ipynb", nbformat.v4.new_code_cell("z = 3"))
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv(REPORT_BUILD_VARIABLE, raising=False)
    reports.run_reports(notebooks_dir=notebooks, output_dir=tmp_path / "site", execute=False)
    shown = terminal.getvalue()  # tqdm frames; the last one depends on timing
    assert "notebooks:" in shown and "0/1" in shown and "15_textbook_solved_problems" in shown


def test_cli_no_execute_prints_the_closing_table(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "15_textbook_solved_problems.ipynb", nbformat.v4.new_code_cell("z = 3"))
    assert main(["--no-execute", "--notebooks", str(notebooks), "--output", str(tmp_path / "site")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["notebook", "status", "time", "details"]
    assert lines[1].split() == ["15_textbook_solved_problems", "ok", "-"]
    assert lines[2].split()[:4] == ["total", "1", "ok", "/"]


def test_closing_table_lists_what_needs_a_look():
    result = reports.NotebookResult("08_lrp", 3.25, None, None, "In [2]: RuntimeError: boom", ("fig12_lrp_rules",), 2)
    row = closing_table([result]).splitlines()[1]
    assert row.split()[:4] == ["08_lrp", "failed", "3.2", "s"]
    assert "In [2]: RuntimeError: boom; figures not written: fig12_lrp_rules; 2 stderr outputs" in row


def test_saved_figure_ids_reads_calls_not_text():
    source = (
        "%matplotlib inline\n# save_figure(fig, 'fig01_am_general') is only a comment\n"
        "nni.reports.save_figure(fig, 'fig02_am_noise', dpi=100)\nsave_figure(fig, id=\"fig03_am_code_space\")\n"
        "save_figure(fig, name)\n"
    )
    assert saved_figure_ids(source) == ["fig02_am_noise", "fig03_am_code_space"]
    assert saved_figure_ids("def broken(:\n") == []


def test_strip_test_markers_keeps_everything_else():
    cell = nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nx = 1  # NBVAL_ stays inside code\n  # NBVAL_CHECK_OUTPUT\ny")
    stripped, _ = StripTestMarkers().preprocess_cell(cell, {}, 0)
    assert stripped.source == "x = 1  # NBVAL_ stays inside code\ny"


def test_scorecard_merges_tables_marks_the_best_and_links_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path))
    reports.save_scores("faithfulness", [{"method": "IG", "deletion": 0.2}, {"method": "Saliency", "deletion": 0.3}],
                        better={"deletion": "lower"}, notebook="18_evaluation")
    reports.save_scores("sanity", [{"method": "IG", "similarity": 0.1, "note": "cascading"}],
                        better={"similarity": "lower"}, notebook="18_evaluation")
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "18_evaluation.html").write_text("<html></html>")
    page = write_scorecard(tmp_path).read_text()
    rows = [line for line in page.splitlines() if line.startswith("<tr><td")]
    assert len(rows) == 2  # IG's two tables merged into one row
    assert '<a href="html/18_evaluation.html">IG</a>' in rows[0]
    assert '<td class="num best" data-value="0.2">0.2</td>' in rows[0]
    assert '<td class="num" data-value="0.3">0.3</td><td data-value=""></td>' in rows[1]
    assert "lower is better" in page and 'class="sortable"' in page


def test_scorecard_without_scores_says_so(tmp_path):
    assert "No notebook of this build saved scores." in write_scorecard(tmp_path).read_text()


def test_report_builds_do_not_announce_the_data_source(monkeypatch):
    monkeypatch.setattr(mnist, "_announced", set())
    monkeypatch.setenv(REPORT_BUILD_VARIABLE, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mnist.load_mnist("test", source="embedded")
    monkeypatch.delenv(REPORT_BUILD_VARIABLE)
    with pytest.warns(mnist.DataSourceWarning):
        mnist.load_mnist("test", source="embedded")


def test_every_report_figure_has_its_original_caption_and_differences():
    for entry in reports.MANIFEST:
        if entry.source == "extra":
            assert entry.original == "" and entry.differences == ""
        else:
            assert entry.original and entry.differences, entry.id


def test_committed_notebooks_figure_cells_match_the_manifest():
    from nn_interpretability.reports.html import saved_figure_ids
    from nn_interpretability.reports.runner import _default_root, discover_notebooks

    for path in discover_notebooks(_default_root() / "notebooks"):
        cells = nbformat.read(path, as_version=4).cells
        saved = [id for cell in cells if cell.cell_type == "code" for id in saved_figure_ids(cell.source)]
        assert sorted(saved) == sorted(e.id for e in reports.figures_for(path)), path.stem
