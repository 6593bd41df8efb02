"""Occlusion and the Fig. 9 sweep: shapes, batching, chunking, errors, model state."""
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.attribution.occlusion import occlusion_sweep, window_positions
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch

WINDOW = {"sliding_window_shapes": (1, 7, 7), "strides": (1, 7, 7)}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_batch_equals_items_and_chunking_does_not_matter(arch):
    method = nni.Occlusion(ARCHITECTURES[arch]())
    x = mnist_like_batch(3)
    target = [2, 5, 5]
    batch = method.attribute(x, target=target, perturbations_per_eval=16, **WINDOW)
    assert batch.shape == x.shape and batch.dtype == x.dtype
    items = torch.cat([method.attribute(x[i : i + 1], target=t, **WINDOW) for i, t in enumerate(target)])
    torch.testing.assert_close(batch, items)
    torch.testing.assert_close(method.attribute(x, target=target, perturbations_per_eval=3, **WINDOW), batch)


def test_window_positions_cover_the_sample_and_cut_the_last_window():
    positions = window_positions((1, 11, 11), (1, 4, 4), (1, 3, 3))
    assert len(positions) == 16  # starts 0, 3, 6, 9 per side
    assert positions[-1] == (slice(0, 1), slice(9, 13), slice(9, 13))


def test_sweep_returns_every_occluded_copy_and_its_probability():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    occluded, probability = occlusion_sweep(model, x, (1, 14, 14), (1, 14, 14), target=1)
    assert occluded.shape == (2, 4, 1, 28, 28) and probability.shape == (2, 4)
    assert (occluded[:, 0, :, :14, :14] == 0).all() and torch.equal(occluded[:, 0, :, 14:, :], x[:, :, 14:, :])
    torch.testing.assert_close(probability[1, 3], model(occluded[1, 3:4]).softmax(1)[0, 1].detach())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "sliding_window_shapes is required"),
        ({"sliding_window_shapes": (5, 5)}, "one entry per sample dimension"),
        ({"sliding_window_shapes": (1, 40, 3)}, "larger than the sample shape"),
        ({"sliding_window_shapes": (1, 3, 3), "strides": 0}, "positive ints"),
        ({"sliding_window_shapes": (1, 3, 3), "output": "softmax"}, "output must be one of"),
        ({"sliding_window_shapes": (1, 3, 3), "target": 10}, "out of range"),
        ({"sliding_window_shapes": (1, 3, 3), "perturbations_per_eval": -2}, "perturbations_per_eval must be"),
        ({"sliding_window_shapes": (1, 3, 3), "baselines": torch.zeros(3, 1, 28, 28)}, "do not fit inputs"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    model = ARCHITECTURES["residual_bn"]()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        nni.Occlusion(model).attribute(mnist_like_batch(2), **kwargs)
    assert_same_state(before, _state(model))


def test_registry():
    assert isinstance(nni.get_method("occlusion", ARCHITECTURES["mnist_cnn"]()), nni.Occlusion)
