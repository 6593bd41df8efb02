"""nn_interpretability.reports: figure manifest, save_figure, the notebook runner and its CLI."""
import dataclasses
import os
import sys
from collections import Counter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402

from nn_interpretability import reports  # noqa: E402
from nn_interpretability.reports.__main__ import main  # noqa: E402
from nn_interpretability.reports.runner import (  # noqa: E402
    _kernel_for_this_python,
    parse_parameter,
    select_notebooks,
)

EXPECTED_NOTEBOOKS = {
    "fig01_am_general": "01_activation_maximization",
    "fig02_am_noise": "01_activation_maximization",
    "fig03_am_code_space": "01_activation_maximization",
    "fig04_deepdream_layers": "02_deep_dream",
    "fig05_deepdream_channels": "02_deep_dream",
    "fig06_backprop": "06_backpropagation",
    "fig07_smoothgrad": "06_backpropagation",
    "fig08_deconvolution": "04_deconvolution",
    "fig09_occlusion": "05_occlusion_sensitivity",
    "fig10_occlusion_deeplift": "05_occlusion_sensitivity",
    "fig11_taylor": "07_taylor_decomposition",
    "fig12_lrp_rules": "08_lrp",
    "fig13_lrp_alphabeta_composite": "08_lrp",
    "fig14_revealcancel": "09_deeplift",
    "fig15_deeplift": "09_deeplift",
    "fig16_cam": "10_cam_gradcam",
    "fig17_gradcam_layers": "10_cam_gradcam",
    "fig18_mc_dropout": "11_mc_dropout",
    "fig19_mc_dropout_lrp": "11_mc_dropout",
    "fig20_evidential": "12_evidential",
    "fig21_evidential_lrp_dtd": "12_evidential",
    "fig22_uncertainty_deeplift": "13_uncertainty_deeplift",
    "fig23_noisy_deeplift": "13_uncertainty_deeplift",
    "fig24_temperature_scaling": "14_temperature_scaling",
    "s000_fig1_method_maps": "17_method_agreement",
    "s000_fig2_method_agreement": "17_method_agreement",
    "saliency_maps": "03_saliency_maps",
    "saliency_imagenet": "03_saliency_maps",
}


# --- manifest -------------------------------------------------------------------------------------


def test_manifest_ids_are_unique():
    counts = Counter(entry.id for entry in reports.MANIFEST)
    assert [id for id, n in counts.items() if n > 1] == []


def test_manifest_covers_each_report_and_study_figure_exactly_once():
    numbers = Counter((e.source, e.number) for e in reports.MANIFEST if e.source != "extra")
    assert sorted(numbers) == [("000", 1), ("000", 2)] + [("002", n) for n in range(1, 25)]
    assert set(numbers.values()) == {1}
    assert all(e.number is None for e in reports.MANIFEST if e.source == "extra")
    assert {e.source for e in reports.MANIFEST} == set(reports.SOURCES)


def test_manifest_ids_notebooks_and_files():
    notebooks = {e.id: e.notebook for e in reports.MANIFEST}
    # Every figure of the report and of study 000 is claimed by its notebook; anything else is an extra.
    assert {k: v for k, v in notebooks.items() if k in EXPECTED_NOTEBOOKS} == EXPECTED_NOTEBOOKS
    assert all(e.source == "extra" for e in reports.MANIFEST if e.id not in EXPECTED_NOTEBOOKS)
    for entry in reports.MANIFEST:
        assert entry.file == f"{entry.id}.png"
        assert entry.caption and "\n" not in entry.caption


def test_figure_lookup():
    assert reports.figure("fig06_backprop").number == 6
    with pytest.raises(ValueError, match="fig06_backprop"):
        reports.figure("fig06_backprp")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reports.figure("fig06_backprop").number = 7


def test_figures_for_accepts_slug_file_name_and_path():
    ids = ("fig06_backprop", "fig07_smoothgrad")
    assert tuple(e.id for e in reports.figures_for("06_backpropagation")) == ids
    assert tuple(e.id for e in reports.figures_for("notebooks/06_backpropagation.ipynb")) == ids
    assert reports.figures_for("99_nothing") == ()


# --- save_figure / reports_dir --------------------------------------------------------------------


def test_save_figure_writes_png_under_reports_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert reports.save_figure(fig, "saliency_maps", dpi=50) is None
    path = tmp_path / "figures" / "saliency_maps.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert plt.fignum_exists(fig.number)
    plt.close(fig)


def test_save_figure_rejects_unknown_id(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path))
    fig = plt.figure()
    with pytest.raises(ValueError, match="fig12_lrp_rules"):
        reports.save_figure(fig, "fig12_lrp_rule")
    plt.close(fig)
    assert not (tmp_path / "figures").exists()


def test_reports_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("NNI_REPORTS_DIR", raising=False)
    repo = tmp_path / "repo"
    (repo / "nn_interpretability").mkdir(parents=True)
    (repo / "pyproject.toml").touch()
    (repo / "notebooks").mkdir()
    monkeypatch.chdir(repo / "notebooks")
    assert reports.reports_dir() == repo.resolve() / "reports"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert reports.reports_dir() == elsewhere.resolve() / "reports"
    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path / "custom"))
    assert reports.reports_dir() == (tmp_path / "custom").resolve()


# --- runner helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), ("0.5", 0.5), ("[1, 2]", [1, 2]), ("True", True), ("'quoted'", "quoted"), ("cuda", "cuda")],
)
def test_parse_parameter(text, value):
    assert parse_parameter(text) == value


def test_select_notebooks(tmp_path):
    notebooks = [tmp_path / "03_saliency_maps.ipynb", tmp_path / "06_backpropagation.ipynb"]
    assert select_notebooks(notebooks, None) == notebooks
    assert select_notebooks(notebooks, "03") == notebooks[:1]
    assert select_notebooks(notebooks, ["backpropagation", "03_saliency_maps"]) == notebooks
    with pytest.raises(ValueError, match="03_saliency_maps, 06_backpropagation"):
        select_notebooks(notebooks, "08_lrp")


def test_native_kernel_is_redirected_to_this_interpreter(tmp_path, monkeypatch):
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        '{"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],'
        ' "display_name": "other", "language": "python"}'
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == "/nonexistent/python"
    with _kernel_for_this_python("python3") as language:
        assert language == "python"
        assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    assert os.environ["JUPYTER_PATH"] == str(tmp_path)


# --- end to end -----------------------------------------------------------------------------------


def _write_notebook(path, *sources, parameters="SEED = 0"):
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell, *(nbformat.v4.new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


SAVING_CELL = """\
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nn_interpretability.reports
fig, ax = plt.subplots()
ax.plot([0, SEED])
for entry in nn_interpretability.reports.figures_for("03_saliency_maps"):
    nn_interpretability.reports.save_figure(fig, entry.id)
print(f"SEED={SEED!r}")
print(f"PYTHON={sys.executable}")
"""


def _stdout(executed_path):
    nb = nbformat.read(executed_path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def notebooks_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    _write_notebook(folder / "03_saliency_maps.ipynb", SAVING_CELL)
    _write_notebook(folder / "06_backpropagation.ipynb", "x = 1  # claims fig06/fig07 but saves nothing")
    _write_notebook(folder / "08_lrp.ipynb", "raise RuntimeError('boom')")
    (folder / "scratch.ipynb").write_text("not a method notebook, not run")
    return folder


@pytest.fixture(scope="module")
def run(notebooks_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    env_before = os.environ.get("NNI_REPORTS_DIR")
    results = reports.run_reports(
        parameters={"SEED": 3}, notebooks_dir=notebooks_dir, output_dir=out, kernel_name="python3"
    )
    assert os.environ.get("NNI_REPORTS_DIR") == env_before
    return out, {r.name: r for r in results}


def test_runner_executes_exports_and_saves_figure(run):
    out, results = run
    assert list(results) == ["03_saliency_maps", "06_backpropagation", "08_lrp"]
    ok = results["03_saliency_maps"]
    assert ok.ok and ok.status == "ok" and ok.error is None and ok.seconds > 0
    assert ok.executed == out / "executed" / "03_saliency_maps.ipynb" and ok.executed.is_file()
    assert ok.html == out / "html" / "03_saliency_maps.html" and "SEED=3" in ok.html.read_text()
    assert (out / "figures" / "saliency_maps.png").is_file()


def test_runner_injects_parameters_and_uses_this_interpreter(run):
    out, _ = run
    stdout = _stdout(out / "executed" / "03_saliency_maps.ipynb")
    assert "SEED=3\n" in stdout
    assert f"PYTHON={sys.executable}\n" in stdout


def test_runner_records_failures_and_keeps_going(run):
    _, results = run
    incomplete = results["06_backpropagation"]
    assert incomplete.status == "incomplete" and incomplete.error is None
    assert incomplete.missing_figures == ("fig06_backprop", "fig07_smoothgrad")
    failed = results["08_lrp"]
    assert failed.status == "failed" and "RuntimeError: boom" in failed.error
    assert failed.html is not None and failed.html.is_file()


def test_index_lists_figures_and_notebooks(run):
    out, _ = run
    page = (out / "index.html").read_text()
    cards = {card.split('"', 1)[0]: card for card in page.split('<figure class="card" id="')[1:]}
    assert set(cards) == {entry.id for entry in reports.MANIFEST}
    assert '<img src="figures/saliency_maps.png"' in cards["saliency_maps"]
    assert 'href="html/03_saliency_maps.html"' in cards["saliency_maps"]
    assert "pending" in cards["fig01_am_general"] and "<img" not in cards["fig01_am_general"]
    assert "not generated" in cards["fig06_backprop"]
    run_here = {"03_saliency_maps", "06_backpropagation", "08_lrp"}
    expected_pending = sum(entry.notebook not in run_here for entry in reports.MANIFEST)
    assert sum("pending" in card for card in cards.values()) == expected_pending
    for name, status in [("03_saliency_maps", "ok"), ("06_backpropagation", "incomplete"), ("08_lrp", "failed")]:
        assert f'{name}</a></td><td><span class="badge {status}">' in page


def test_cli_fails_when_a_figure_is_missing(notebooks_dir, tmp_path, capsys):
    assert main(["--notebooks", str(notebooks_dir), "--output", str(tmp_path), "--only", "06"]) == 1
    assert "fig06_backprop" in capsys.readouterr().err
    assert (tmp_path / "index.html").is_file()


def test_cli_passes_parameters_and_succeeds(notebooks_dir, tmp_path):
    argv = ["--notebooks", str(notebooks_dir), "--output", str(tmp_path), "--only", "saliency_maps"]
    assert main([*argv, "-p", "SEED", "5"]) == 0
    assert "SEED=5\n" in _stdout(tmp_path / "executed" / "03_saliency_maps.ipynb")


def test_cli_rejects_unknown_notebook(notebooks_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--notebooks", str(notebooks_dir), "--output", str(tmp_path), "--only", "99"])
    assert exit_info.value.code == 2
    assert "03_saliency_maps" in capsys.readouterr().err


def test_save_figure_writes_its_key_numbers_beside_it(tmp_path, monkeypatch):
    import json

    import torch

    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path))
    fig = plt.figure()
    reports.save_figure(fig, "saliency_maps", dpi=20, numbers={"AUC": torch.tensor(0.25), "model": "mnist_cnn"})
    plt.close(fig)
    assert json.loads((tmp_path / "figures" / "saliency_maps.json").read_text()) == {
        "numbers": {"AUC": 0.25, "model": "mnist_cnn"}
    }
    with pytest.raises(ValueError, match="finite"):
        reports.save_figure(plt.figure(), "saliency_maps", numbers={"AUC": float("nan")})


def test_save_scores_writes_a_scorecard_table(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path))
    rows = [{"method": "IG", "deletion AUC": 0.1}, {"method": "Saliency", "deletion AUC": 0.3}]
    reports.save_scores("faithfulness", rows, better={"deletion AUC": "lower"}, notebook="18_evaluation")
    saved = json.loads((tmp_path / "scores" / "faithfulness.json").read_text())
    assert saved["rows"] == rows and saved["columns"] == ["method", "deletion AUC"]
    assert saved["better"] == {"deletion AUC": "lower"} and saved["notebook"] == "18_evaluation"
    with pytest.raises(ValueError, match="higher' or 'lower"):
        reports.save_scores("x", rows, better={"deletion AUC": "up"}, notebook="18_evaluation")
    with pytest.raises(ValueError, match="no row has"):
        reports.save_scores("x", rows, better={"AOPC": "higher"}, notebook="18_evaluation")
