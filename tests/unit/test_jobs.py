"""Dataset-scale jobs in one process: the store against the in-memory helpers, resumption, refusals, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import zarr

import nn_interpretability as nni
from jobs_helpers import assert_stores_equal, store_arrays, tiny_cnn, tiny_images
from nn_interpretability.evaluation import compute_attributions, deletion_insertion, method_agreement
from nn_interpretability.jobs import CorruptStoreError, JobStore, evaluate, explain_dataset
from nn_interpretability.jobs.__main__ import main
from nn_interpretability.jobs.evaluation import RunningMoments
from nn_interpretability.jobs.explain import chunk_seed

METHODS = {
    "IG": {"method": "integrated-gradients", "attribute": {"n_steps": 8}},
    "Saliency": "saliency",
    "SG": {"method": "smoothgrad", "init": {"nt_samples": 3}},
}
N, CHUNK = 45, 10


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    model, data = tiny_cnn(), tiny_images(N)
    path = tmp_path_factory.mktemp("jobs") / "job.zarr"
    store = explain_dataset(model, data, METHODS, path, chunk_size=CHUNK, show_progress=False)
    return model, data, store


def test_the_store_holds_what_the_in_memory_helpers_compute(job):
    model, data, store = job
    images, labels = data.tensors
    deterministic = {name: nni.get_method(spec if isinstance(spec, str) else spec["method"], model) for name, spec in METHODS.items() if name != "SG"}
    expected = compute_attributions(deterministic, images, target=labels, internal_batch_size=CHUNK, attribute_kwargs={"IG": {"n_steps": 8}})
    for name, maps in expected.items():
        torch.testing.assert_close(store.maps(name), maps, rtol=0, atol=0)
        torch.testing.assert_close(store.read(f"sums/{name}"), maps.double().flatten(1).sum(1), rtol=0, atol=1e-12)
    with torch.no_grad():
        logits = model(images)
    assert torch.equal(store.read("predictions"), logits.argmax(1))
    assert torch.equal(store.read("targets"), labels) and torch.equal(store.read("index"), torch.arange(N))
    torch.testing.assert_close(store.read("scores"), logits.double()[torch.arange(N), labels], rtol=0, atol=1e-6)
    assert store.n_chunks == 5 and store.done().all()
    assert store.array("maps/IG").chunks == (CHUNK, 1, 12, 12)
    meta = dict(zarr.open_group(str(store.path), mode="r").attrs)["nni_job"]
    assert meta["nn_interpretability"] == nni.__version__ and meta["torch"] == torch.__version__
    assert meta["config"]["methods"]["IG"] == {"method": "integrated-gradients", "init": {}, "attribute": {"n_steps": 8}}
    assert meta["config"]["model"]["sha256"] and meta["config"]["dataset"]["length"] == N


def test_a_stochastic_method_is_seeded_by_the_chunk_not_the_run(job):
    model, data, store = job
    images, labels = data.tensors
    for chunk in (0, 3):
        rows = store.rows(chunk)
        smooth = nni.get_method("smoothgrad", model, nt_samples=3, seed=chunk_seed(0, chunk, 0))
        expected = smooth.attribute(images[rows.start : rows.stop], target=labels[rows.start : rows.stop])
        torch.testing.assert_close(store.maps("SG", rows), expected, rtol=0, atol=0)
    assert chunk_seed(0, 0) != chunk_seed(0, 1) != chunk_seed(1, 1)


def test_a_crash_between_a_chunks_data_and_its_flag_is_recomputed_to_the_same_store(job, tmp_path, monkeypatch):
    model, data, reference = job
    path = tmp_path / "crashed.zarr"
    original = JobStore.write_chunk

    def crash_on_chunk_3(self, chunk, values, flags="done"):
        if chunk == 3:
            for name, value in values.items():  # the data of chunk 3 land, its flag does not
                rows = self.rows(chunk)
                self.group[name][rows.start : rows.stop] = np.zeros_like(value)
            raise KeyboardInterrupt
        return original(self, chunk, values, flags)

    monkeypatch.setattr(JobStore, "write_chunk", crash_on_chunk_3)
    with pytest.raises(KeyboardInterrupt):
        explain_dataset(model, data, METHODS, path, chunk_size=CHUNK, show_progress=False)
    monkeypatch.setattr(JobStore, "write_chunk", original)
    assert JobStore(path).done().tolist() == [True, True, True, False, False]
    (path / "maps" / "IG" / "c" / "0" / "0.0123.partial").write_bytes(b"left by a killed write")
    explain_dataset(model, data, METHODS, path, chunk_size=CHUNK, show_progress=False)
    assert not list(path.rglob("*.partial"))
    assert_stores_equal(path, reference.path)


def test_another_config_is_refused_naming_the_difference_unless_overwritten(job, tmp_path):
    model, data, reference = job
    path = tmp_path / "job.zarr"
    explain_dataset(model, data, {"Saliency": "saliency"}, path, chunk_size=CHUNK, show_progress=False)
    with pytest.raises(ValueError, match=r"(?s)holds another job.*methods\.IG: not in the store.*--overwrite"):
        explain_dataset(model, data, {"Saliency": "saliency", "IG": "integrated-gradients"}, path, chunk_size=CHUNK)
    with pytest.raises(ValueError, match=r"chunk_size: 10 in the store, 15 now"):
        explain_dataset(model, data, {"Saliency": "saliency"}, path, chunk_size=15)
    other = tiny_cnn()
    with torch.no_grad():
        other[0].bias.add_(1.0)
    with pytest.raises(ValueError, match=r"model\.sha256: "):
        explain_dataset(other, data, {"Saliency": "saliency"}, path, chunk_size=CHUNK)
    explain_dataset(model, data, METHODS, path, chunk_size=CHUNK, overwrite=True, show_progress=False)
    assert_stores_equal(path, reference.path)


def test_a_damaged_or_foreign_store_is_refused_clearly(job, tmp_path):
    model, data, reference = job
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="is not a job store: it has no zarr.json|not deleted, even with overwrite"):
            explain_dataset(model, data, METHODS, foreign, chunk_size=CHUNK, overwrite=overwrite)
    assert (foreign / "todo.txt").read_text() == "keep me"
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(ValueError, match="not a job store of layout 1"):
        explain_dataset(model, data, METHODS, tmp_path / "plain.zarr", chunk_size=CHUNK)
    damaged = tmp_path / "damaged.zarr"
    explain_dataset(model, data, {"Saliency": "saliency"}, damaged, chunk_size=CHUNK, show_progress=False)
    (damaged / "zarr.json").write_text("{not json")
    with pytest.raises(CorruptStoreError, match="damaged Zarr store"):
        explain_dataset(model, data, {"Saliency": "saliency"}, damaged, chunk_size=CHUNK)
    explain_dataset(model, data, {"Saliency": "saliency"}, damaged, chunk_size=CHUNK, overwrite=True, show_progress=False)
    chunk_file = damaged / "maps" / "Saliency" / "c" / "2" / "0" / "0" / "0"
    chunk_file.write_bytes(chunk_file.read_bytes()[:-6] + b"garble")  # the checksum no longer matches
    with pytest.raises(CorruptStoreError, match=r"array 'maps/Saliency' rows slice\(20, 30"):
        evaluate(damaged, metrics=["agreement"])
    (damaged / "done" / "c" / "1").write_bytes(b"")
    with pytest.raises(CorruptStoreError, match="completion flags 'done' cannot be read"):
        JobStore(damaged).done()
    (damaged / "maps" / "Saliency" / "zarr.json").unlink()
    with pytest.raises(CorruptStoreError, match="the array 'maps/Saliency' is missing or damaged"):
        JobStore(damaged)


@pytest.mark.parametrize(
    "methods, kwargs, message",
    [
        ({"X": "no-such-method"}, {}, r"method 'X': unknown method 'no-such-method'\. Available: ablation-cam, "),
        ({"X": {"method": "saliency", "rule": 1}}, {}, "'method' and optional 'init' and 'attribute'"),
        ({"a/b": "saliency"}, {}, "without '/'"),
        ({"X": {"method": "saliency", "attribute": {"target": 1}}}, {}, "the target is the job's"),
        ({"X": "saliency"}, {"target": "largest"}, "target must be one of"),
        ({"X": "saliency"}, {"chunk_size": 0}, "chunk_size must be >= 1"),
    ],
)
def test_bad_configs_are_refused_before_any_work(methods, kwargs, message, tmp_path):
    with pytest.raises((ValueError, TypeError, KeyError), match=message):
        explain_dataset(tiny_cnn(), tiny_images(4), methods, tmp_path / "s.zarr", **kwargs)
    assert not (tmp_path / "s.zarr").exists()


def test_named_datasets_and_models_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet:val'"):
        explain_dataset(tiny_cnn(), "imagenet:val", {"X": "saliency"}, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="unknown MNIST split 'valid'"):
        explain_dataset(tiny_cnn(), "mnist:valid", {"X": "saliency"}, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="unknown model 'resnet9000'"):
        explain_dataset("resnet9000", tiny_images(4), {"X": "saliency"}, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="has no attribute 'nothing'"):
        explain_dataset("jobs_helpers:nothing", tiny_images(4), {"X": "saliency"}, tmp_path / "s.zarr")
    unlabelled = torch.utils.data.TensorDataset(tiny_images(4).tensors[0])
    with pytest.raises(ValueError, match="items have no label"):
        explain_dataset(tiny_cnn(), unlabelled, {"X": "saliency"}, tmp_path / "s.zarr")
    store = explain_dataset(tiny_cnn(), unlabelled, {"X": "saliency"}, tmp_path / "p.zarr", target="prediction", show_progress=False)
    assert torch.equal(store.read("targets"), store.read("predictions"))


def test_evaluate_equals_the_in_memory_agreement_and_faithfulness(job):
    model, data, store = job
    images, _ = data.tensors
    result = evaluate(store, model, data, steps=7, show_progress=False)
    maps = {name: store.maps(name) for name in store.methods}
    reference = method_agreement(maps)
    torch.testing.assert_close(result.agreement.mean, reference.mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(result.agreement.std, reference.std, rtol=0, atol=1e-12)
    assert torch.equal(result.agreement.count, reference.count) and result.agreement.names == list(METHODS)
    targets = store.read("targets")
    for mode in ("deletion", "insertion"):
        for name in store.methods:
            auc = deletion_insertion(model, images, maps[name], target=targets, mode=mode, steps=7).auc.double()
            torch.testing.assert_close(store.read(f"evaluation/{mode}/{name}"), auc, rtol=0, atol=1e-6)
            stats = getattr(result, f"{mode}_auc")[name]
            assert stats["mean"] == pytest.approx(float(auc.mean()), abs=1e-6)
            assert stats["std"] == pytest.approx(float(auc.std(unbiased=False)), abs=1e-6)
    stored = dict(store.group["evaluation"].attrs)["nni_evaluation"]
    assert stored["config"]["steps"] == 7 and stored["summary"]["agreement"]["count"][0][0] == N
    np.testing.assert_array_equal(store.read("evaluation/agreement/mean").numpy(), result.agreement.mean.numpy())
    assert result.summary["prediction_is_target"] == pytest.approx(float((store.read("predictions") == targets).double().mean()))
    again = evaluate(store, model, data, steps=7, show_progress=False)  # complete: nothing recomputed, same summary
    assert again.summary == result.summary
    with pytest.raises(ValueError, match=r"holds another evaluation; differences:\n  steps: 7 in the store, 5 now"):
        evaluate(store, model, data, steps=5)
    with pytest.raises(ValueError, match="not the one the store"):
        evaluate(store, tiny_cnn().double(), data, steps=7, overwrite=True)


def test_evaluate_refuses_an_incomplete_store(job, tmp_path, monkeypatch):
    model, data, _ = job
    path = tmp_path / "half.zarr"
    explain_dataset(model, data, {"Saliency": "saliency"}, path, chunk_size=CHUNK, limit=20, show_progress=False)
    zarr.open_array(str(path / "done"), mode="r+")[1] = False
    with pytest.raises(ValueError, match=r"not complete \(1 of 2 chunks missing\)"):
        evaluate(path, metrics=["agreement"])


def test_running_moments_do_not_depend_on_the_chunking():
    values = torch.randn(101, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values[::7, 1] = float("nan")
    values[:, 2] = float("nan")
    for size in (1, 10, 101):
        moments = RunningMoments()
        for start in range(0, 101, size):
            moments.add(values[start : start + size])
        mean, std, count = moments.result()
        array = values.numpy()
        np.testing.assert_allclose(mean[:2].numpy(), np.nanmean(array[:, :2], 0), rtol=0, atol=1e-14)
        np.testing.assert_allclose(std[:2].numpy(), np.nanstd(array[:, :2], 0), rtol=0, atol=1e-14)
        assert count.tolist() == [101, 101 - 15, 0] and mean[2].isnan() and std[2].isnan()


def test_the_cli_runs_a_yaml_job_and_its_evaluation(tmp_path, capsys):
    config = tmp_path / "job.yaml"
    config.write_text(
        "model: jobs_helpers:tiny_cnn\ndataset: jobs_helpers:tiny_dataset\nlimit: 30\nchunk_size: 8\n"
        f"store: {tmp_path / 'cli.zarr'}\nmethods:\n  Saliency: saliency\n  IxG: input-x-gradient\n"
    )
    assert main(["explain", "--config", str(config), "--no-progress"]) == 0
    store = JobStore(tmp_path / "cli.zarr")
    assert store.samples == 30 and store.n_chunks == 4 and store.config["dataset"] == "jobs_helpers:tiny_dataset"
    assert main(["evaluate", "--store", str(store.path), "--steps", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| Saliency |" in out and "deletion AUC IxG:" in out
    config.write_text(config.read_text() + "n_steps: 5\n")
    assert main(["explain", "--config", str(config)]) == 2
    assert "unknown job config keys ['n_steps']" in capsys.readouterr().err
    arrays = store_arrays(store.path)
    assert {"maps/Saliency", "evaluation/deletion/IxG", "evaluation/spearman", "done"} <= set(arrays)
    json.dumps(dict(store.group["evaluation"].attrs))  # the summary is plain JSON


def test_an_imagefolder_directory_is_a_dataset(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "photos" / label / f"{i}.png")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(2, 2)).eval()
    store = explain_dataset(model, str(tmp_path / "photos"), {"Saliency": "saliency"}, tmp_path / "p.zarr", image_size=16, chunk_size=4, show_progress=False)
    assert store.maps("Saliency").shape == (6, 3, 16, 16)
    assert store.read("targets").tolist() == [0, 0, 0, 1, 1, 1] and store.config["image_size"] == 16
