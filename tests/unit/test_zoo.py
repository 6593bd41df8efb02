"""The model zoo: train on first use, cache, reload, accuracy floors, determinism."""
import json

import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.models import training, zoo

FLOORS = {"mnist_cnn": 0.97, "mnist_binary_01": 0.995, "mnist_evidential_cnn": 0.95, "mnist_vit": 0.94}
SANITY_FLOOR = 0.9


def test_available_lists_every_zoo_model():
    names = set(nni.models.available())
    assert set(zoo.MNIST_MODELS) | set(zoo.MNIST_TASK_MODELS) <= names
    assert {"mnist_cnn", "mnist_dropout_cnn", "mnist_cam_3x3", "mnist_cam_6x6", "mnist_evidential_cnn",
            "mnist_binary_01", "mnist_segmenter", "mnist_angle_regressor", "mnist_canvas_cnn", "mnist_vit", "mnist_dcgan", "mnist_vae", "mnist_ppca",
            "efficientnet_lite0", "vgg16", "alexnet", "resnet18"} == names


@pytest.mark.parametrize("name", sorted(zoo.MNIST_MODELS))
def test_mnist_model_meets_its_accuracy_floor(name):
    model = nni.load_model(name, device="cpu")
    assert not model.training
    images, labels = nni.models.mnist_split(name, "test")
    accuracy = nni.models.evaluate_accuracy(model, images, labels)
    assert accuracy >= FLOORS.get(name, SANITY_FLOOR)
    info = nni.models.metadata(name)
    assert info["test_accuracy"] == pytest.approx(accuracy)
    assert info["data_source"] == "embedded" and info["seed"] == zoo.ZOO_SEED
    assert info["package_version"] == nni.__version__


def test_binary_model_sees_only_zeros_and_ones():
    images, labels = nni.models.mnist_split("mnist_binary_01", "test")
    assert set(labels.unique().tolist()) == {0, 1} and len(images) == 200
    assert nni.load_model("mnist_binary_01", device="cpu")(images[:2]).shape == (2, 2)


def test_cached_weights_load_safely_and_identically():
    first = nni.load_model("mnist_cnn", device="cpu")
    weights, _ = zoo._paths("mnist_cnn")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    second = nni.load_model("mnist_cnn", device="cpu")
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])
        assert torch.equal(value, state[key])


def _binary_weights():
    return {k: v.clone() for k, v in nni.load_model("mnist_binary_01", device="cpu").state_dict().items()}


def test_training_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_HOME", str(tmp_path / "a"))
    first = _binary_weights()
    monkeypatch.setenv("NNI_HOME", str(tmp_path / "b"))
    second = _binary_weights()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_stale_recipe_revision_retrains(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_HOME", str(tmp_path))
    nni.load_model("mnist_binary_01", device="cpu")
    _, meta_path = zoo._paths("mnist_binary_01")
    info = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**info, "revision": -1, "train_seconds": -1.0}))
    nni.load_model("mnist_binary_01", device="cpu")
    assert nni.models.metadata("mnist_binary_01")["revision"] == zoo.MNIST_MODELS["mnist_binary_01"].revision
    assert nni.models.metadata("mnist_binary_01")["train_seconds"] >= 0


def test_unknown_model_lists_the_choices():
    with pytest.raises(ValueError, match="available: mnist_cnn"):
        nni.load_model("mnist_transformer")


def test_efficientnet_through_the_zoo():
    model = nni.load_model("efficientnet_lite0", device="cpu")
    assert isinstance(model, nni.models.EfficientNetLite0) and not model.training


def test_torchvision_weights_are_never_downloaded_silently(tmp_path, monkeypatch):
    saved = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        with pytest.raises(RuntimeError, match="download=True"):
            nni.load_model("alexnet")
    finally:
        torch.hub.set_dir(saved)


# --- segmentation and regression models -------------------------------------------------------------

# Floors a little below the values measured with the committed recipes (see the metadata's "metrics").
SEGMENTER_FLOORS = {"pixel_accuracy": 0.97, "mean_iou": 0.80}
ANGLE_MAE_CEILING = 11.0  # degrees, on test digits rotated by seeded random angles in +-60


def _check_task_metadata(name, metrics):
    info = nni.models.metadata(name)
    for key, value in metrics.items():
        assert info["metrics"][key] == pytest.approx(value), key
    assert info["data_source"] == "embedded" and info["seed"] == zoo.ZOO_SEED
    assert info["revision"] == zoo.MNIST_TASK_MODELS[name].revision
    assert info["package_version"] == nni.__version__ and info["train_seconds"] >= 0


def test_segmentation_labels_mark_strokes_with_the_digit():
    images = torch.zeros(2, 1, 2, 2)
    images[0, 0, 0, 0], images[1, 0, 1, 1], images[1, 0, 0, 1] = 0.9, 0.31, training.STROKE_THRESHOLD
    truth = training.segmentation_labels(images, torch.tensor([7, 2]))
    assert truth.tolist() == [[[7, 10], [10, 10]], [[10, 10], [10, 2]]]
    assert training.BACKGROUND == 10


def test_segmenter_meets_its_floors():
    model = nni.load_model("mnist_segmenter", device="cpu")
    assert not model.training
    images, labels = nni.models.mnist_split("mnist_segmenter", "test")
    assert model(images[:2]).shape == (2, 11, 28, 28)
    assert model(torch.zeros(1, 1, 28, 56)).shape == (1, 11, 28, 56)  # fully convolutional: any size
    metrics = training.evaluate_segmentation(model, images, labels)
    assert metrics["pixel_accuracy"] >= SEGMENTER_FLOORS["pixel_accuracy"]
    assert metrics["mean_iou"] >= SEGMENTER_FLOORS["mean_iou"]
    assert len(metrics["iou"]) == 11 and min(metrics["iou"]) > 0.5  # every class, background included
    _check_task_metadata("mnist_segmenter", metrics)


def test_angle_regressor_meets_its_floor():
    model = nni.load_model("mnist_angle_regressor", device="cpu")
    assert not model.training
    images, _ = nni.models.mnist_split("mnist_angle_regressor", "test")
    rotated, angles = zoo.rotated_test_digits(images)
    assert angles.abs().max() <= zoo.MAX_ROTATION and model(rotated[:2]).shape == (2, 1)
    errors = training.evaluate_regression(model, rotated, angles)
    assert errors["mae"] <= ANGLE_MAE_CEILING
    _check_task_metadata("mnist_angle_regressor", {"mae_degrees": errors["mae"], "rmse_degrees": errors["rmse"]})
    # The output is in degrees: turning the digits further turns the prediction by about as much.
    with torch.no_grad():
        turned = model(nni.data.rotate_images(images[:200], 30.0)) - model(images[:200])
    assert 20.0 < float(turned.mean()) < 40.0
