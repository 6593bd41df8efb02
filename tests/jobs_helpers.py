"""Tiny seeded models and datasets that job configs name by import path (``jobs_helpers:tiny_cnn``)."""
from __future__ import annotations

import torch
from torch import nn


def tiny_cnn() -> nn.Module:
    """A seeded, untrained 10-class CNN on 1 × 12 × 12 images (float32)."""
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 10),
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model.eval()


def tiny_images(n: int = 100, seed: int = 1) -> torch.utils.data.TensorDataset:
    """``n`` seeded random images ``(1, 12, 12)`` in [0, 1] with labels 0-9."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 12, 12, generator=generator)
    return torch.utils.data.TensorDataset(images, torch.randint(0, 10, (n,), generator=generator))


def tiny_dataset() -> torch.utils.data.TensorDataset:
    """The 100 images of :func:`tiny_images`, for job configs."""
    return tiny_images()


def store_arrays(path) -> dict:
    """Every array of a Zarr store by path, as NumPy arrays."""
    import numpy as np
    import zarr

    group = zarr.open_group(str(path), mode="r")
    return {name: np.asarray(array[...]) for name, array in group.arrays()} | {
        f"{name}/{sub}": value for name, child in group.groups() for sub, value in store_arrays(f"{path}/{name}").items()
    }


def assert_stores_equal(a, b) -> None:
    """Two stores hold the same arrays, bit for bit (NaN equal to NaN), and the same job attributes."""
    import numpy as np
    import zarr

    left, right = store_arrays(a), store_arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        assert left[name].dtype == right[name].dtype and left[name].shape == right[name].shape, name
        assert np.array_equal(left[name], right[name], equal_nan=left[name].dtype.kind == "f"), name
    attrs = [dict(zarr.open_group(str(p), mode="r").attrs) for p in (a, b)]
    assert attrs[0] == attrs[1]
