"""MNIST loading (embedded and full), rotation helpers."""
import gzip
import struct
import warnings

import numpy as np
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.data import mnist as mnist_module


@pytest.mark.parametrize("split, size", [("train", 4000), ("test", 1000)])
def test_embedded_split_shapes_ranges_and_stratification(split, size):
    images, labels = nni.data.load_mnist(split, source="embedded")
    assert images.shape == (size, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (size,) and labels.dtype == torch.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.bincount().tolist() == [size // 10] * 10


def test_embedded_split_is_disjoint_and_deterministic():
    train, _ = nni.data.load_mnist("train", source="embedded")
    test, _ = nni.data.load_mnist("test", source="embedded")
    train_rows = {bytes(row) for row in (train * 255).round().to(torch.uint8).flatten(1).numpy()}
    test_rows = {bytes(row) for row in (test * 255).round().to(torch.uint8).flatten(1).numpy()}
    assert not train_rows & test_rows
    again, _ = nni.data.load_mnist("test", source="embedded")
    assert torch.equal(test, again)


def test_embedded_splits_come_shuffled_in_a_fixed_order():
    # The file is sorted by class: a split in file order would start with a hundred zeros.
    mnist_module._embedded_split.cache_clear()
    for split, size in (("train", 4000), ("test", 1000)):
        _, labels = nni.data.load_mnist(split, source="embedded")
        assert len(set(labels[:20].tolist())) >= 6
        changes = int((labels[1:] != labels[:-1]).sum())
        assert changes > 0.8 * size  # a random order changes class at ~90 % of the steps
        first = mnist_module._embedded_split()[split].copy()
        mnist_module._embedded_split.cache_clear()
        np.testing.assert_array_equal(mnist_module._embedded_split()[split], first)


def test_source_is_announced_once(monkeypatch):
    monkeypatch.setattr(mnist_module, "_announced", set())
    with pytest.warns(nni.data.DataSourceWarning, match="embedded"):
        nni.data.load_mnist("test", source="embedded")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nni.data.load_mnist("train", source="embedded")


def _write_idx(path, array: np.ndarray):
    magic = 0x0800 | array.ndim  # unsigned byte data
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


@pytest.fixture
def fake_full_mnist(tmp_path):
    """A tiny data set in torchvision's MNIST layout (gzipped idx files under MNIST/raw)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 3)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))
    for gz in raw.glob("*.gz"):  # torchvision reads the uncompressed files
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    return tmp_path


def test_auto_uses_full_mnist_when_present(fake_full_mnist, monkeypatch):
    monkeypatch.setattr(mnist_module, "_announced", set())
    with pytest.warns(nni.data.DataSourceWarning, match="full MNIST"):
        images, labels = nni.data.load_mnist("test", source="auto", root=fake_full_mnist)
    assert images.shape == (3, 1, 28, 28) and labels.tolist() == [0, 1, 2]
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_auto_falls_back_to_embedded_and_full_fails_clearly(tmp_path):
    images, _ = nni.data.load_mnist("test", source="auto", root=tmp_path)
    assert images.shape[0] == 1000
    with pytest.raises(FileNotFoundError, match="download=True"):
        nni.data.load_mnist("test", source="full", root=tmp_path)


@pytest.mark.parametrize("kwargs, match", [({"split": "val"}, "split"), ({"source": "web"}, "source")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nni.data.load_mnist(**kwargs)


def test_rotation_by_zero_and_by_180_degrees():
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(nni.data.rotate_images(images, 0.0), images)
    # about the centre of an even-sized grid, 180° maps pixel (i, j) exactly to (27 - i, 27 - j)
    torch.testing.assert_close(nni.data.rotate_images(images, 180.0), images.flip(-1, -2), atol=1e-5, rtol=0)


def test_rotation_direction_is_counter_clockwise():
    image = torch.zeros(1, 1, 28, 28)
    image[..., 2, 14] = 1.0  # a dot above the centre
    rotated = nni.data.rotate_images(image, 90.0)[0, 0]
    row, col = divmod(rotated.argmax().item(), 28)
    assert col < 14 and abs(row - 13.5) < 1.5  # moved to the left


def test_rotation_series():
    _, labels = nni.data.load_mnist("test", source="embedded")
    images, _ = nni.data.load_mnist("test", source="embedded")
    one = images[labels == 1][0]
    series, angles = nni.data.rotation_series(one, max_angle=90.0, steps=4)
    assert series.shape == (4, 1, 28, 28)
    assert angles.tolist() == pytest.approx([0.0, 30.0, 60.0, 90.0])
    torch.testing.assert_close(series[0], one)
    with pytest.raises(ValueError, match="angles"):
        nni.data.rotate_images(series, [0.0, 1.0])


def test_class_representatives():
    images, labels = nni.data.load_mnist("test", source="embedded")
    reps = nni.data.class_representatives(images, labels)
    assert reps.shape == (10, 1, 28, 28)
    for digit in range(10):
        assert torch.equal(reps[digit], images[labels == digit][0])
    with pytest.raises(ValueError, match="no image of class"):
        nni.data.class_representatives(images[labels < 5], labels[labels < 5])
