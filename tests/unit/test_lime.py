"""Lime: segmentations, batching, determinism, errors and model state."""
import numpy as np
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.attribution.lime import grid_segments
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch


def _lime(arch="mnist_cnn", **kwargs):
    return nni.Lime(ARCHITECTURES[arch](), **{"segmentation": "grid", "cell_size": 7, "n_samples": 40, **kwargs})


def test_map_carries_each_segments_weight_and_is_deterministic():
    lime = _lime()
    x = mnist_like_batch(2)
    explanation = lime.explain(x, target=[1, 2])
    assert explanation.maps.shape == x.shape and explanation.segments.shape == (2, 28, 28)
    for i in range(2):
        torch.testing.assert_close(explanation.maps[i, 0], explanation.weights[i][explanation.segments[i]])
    torch.testing.assert_close(lime.attribute(x, target=[1, 2]), explanation.maps)


def test_the_seed_fixes_the_masks():
    x = mnist_like_batch(2)
    first, again = _lime(seed=3).attribute(x, target=4), _lime(seed=3).attribute(x, target=4)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, _lime(seed=4).attribute(x, target=4))


def test_target_none_explains_the_prediction_and_chunking_does_not_matter():
    lime = _lime("nested_functional")
    x = mnist_like_batch(3)
    predicted = lime.model(x).argmax(1)
    default = lime.attribute(x)
    torch.testing.assert_close(default, lime.attribute(x, target=predicted))
    torch.testing.assert_close(default, lime.attribute(x, perturbations_per_eval=7, show_progress=True))


def test_rgb_maps_repeat_the_segment_weight_over_channels():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 5)).double()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    explanation = nni.Lime(model, n_segments=8, n_samples=30).explain(x, target=[0, 3])
    assert explanation.maps.shape == x.shape
    for i in range(2):
        expected = explanation.weights[i][explanation.segments[i]]
        torch.testing.assert_close(explanation.maps[i], expected.expand(3, 16, 16))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_batch_equals_items_with_the_same_masks(arch):
    lime = _lime(arch)
    x = mnist_like_batch(3)
    generator = torch.Generator().manual_seed(0)
    masks = [torch.randint(0, 2, (40, 16), generator=generator) for _ in range(3)]
    batch = lime.attribute(x, target=[0, 5, 9], masks=masks)
    items = torch.cat([lime.attribute(x[i : i + 1], target=t, masks=[masks[i]]) for i, t in enumerate([0, 5, 9])])
    torch.testing.assert_close(batch, items)


def test_slic_and_callable_segmentations():
    x = mnist_like_batch(1)
    slic_segments = _lime(segmentation="slic", n_segments=20).segment(x[0])
    assert slic_segments.shape == (28, 28) and 2 <= int(slic_segments.max()) + 1 <= 40
    halves = _lime(segmentation=lambda image: (np.arange(28)[None, :] >= 14).repeat(28, 0) * 7).segment(x[0])
    assert sorted(halves.unique().tolist()) == [0, 1]  # relabelled to 0 .. S-1
    rgb = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    assert nni.Lime(ARCHITECTURES["mnist_cnn"](), n_segments=10).segment(rgb[0]).shape == (32, 32)


def test_grid_segments_label_cells_row_by_row():
    assert grid_segments(4, 6, 3).tolist() == [[0, 0, 0, 1, 1, 1]] * 3 + [[2, 2, 2, 3, 3, 3]]


@pytest.mark.parametrize(
    "kwargs, call, match",
    [
        ({"segmentation": "felzenszwalb"}, {}, "segmentation must be one of"),
        ({"n_samples": 1}, {}, "n_samples must be"),
        ({}, {"output": "softmax"}, "output must be one of"),
        ({}, {"target": 10}, "out of range"),
        ({}, {"masks": [torch.ones(5, 3)] * 2}, r"masks\[0\] must have shape"),
        ({"segmentation": lambda image: np.zeros((3, 3))}, {}, "labels of shape"),
        ({}, {"masks": [torch.ones(5, 49)]}, "one \\(n_samples, S\\) tensor per sample"),
        ({}, {"segments": torch.zeros(2, 14, 14)}, "segments must have shape"),
        ({}, {"perturbations_per_eval": 0}, "perturbations_per_eval must be >= 1"),
        ({"kernel_width": 0}, {}, "kernel_width must be > 0"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, call, match):
    model = ARCHITECTURES["residual_bn"]()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        nni.Lime(model, **{"segmentation": "grid", "n_samples": 10, **kwargs}).attribute(mnist_like_batch(2), **call)
    assert_same_state(before, _state(model))
