"""DeepDream: the objective rises, tiles give the whole image's gradient, determinism, errors, model state."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.feature_visualization.deep_dream import _stop_at
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, seeded


def _image(n=1, size=32, seed=0):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("channel", [None, 3])
def test_dreaming_raises_the_objective(channel):
    dream = nni.DeepDream(ARCHITECTURES["mnist_cnn"](), "features.4", channel=channel)
    x = _image(size=28)
    out = dream.dream(x, octaves=2, steps=5, lr=0.05, jitter=2, l2=1e-3, noise=0.01, bounds=(0.0, 1.0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert (dream.objective(out) > 1.2 * dream.objective(x)).all()


def test_tiled_gradient_equals_the_whole_images_gradient_for_a_local_layer():
    # A 1x1 convolution is local, so each tile's share of the mean activation is exact.
    model = seeded(lambda: nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU()))
    dream = nni.DeepDream(model, "1")
    x = _image(2, size=40)
    captured = {}
    with nni.borrowed(model):
        model[1].register_forward_hook(_stop_at(captured))
        whole = dream._gradient(x, captured, tile_size=None)
        tiled = dream._gradient(x, captured, tile_size=16)
    torch.testing.assert_close(tiled, whole)


def test_tiles_give_the_same_dream_for_a_local_layer():
    model = seeded(lambda: nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU()))
    kwargs = {"octaves": 2, "steps": 3, "jitter": 3}
    whole = nni.DeepDream(model, "1").dream(_image(size=40), **kwargs)
    torch.testing.assert_close(nni.DeepDream(model, "1").dream(_image(size=40), tile_size=16, **kwargs), whole)


def test_seeded_and_batch_equals_items_without_noise():
    dream = nni.DeepDream(ARCHITECTURES["nested_functional"](), "blocks.1.conv", channel=2)
    x = _image(2, size=28)
    kwargs = {"octaves": 2, "steps": 3, "jitter": 4, "seed": 5}
    batch = dream.dream(x, **kwargs)
    torch.testing.assert_close(batch, dream.dream(x, **kwargs))
    torch.testing.assert_close(batch, torch.cat([dream.dream(x[i : i + 1], **kwargs) for i in range(2)]))
    assert not torch.equal(batch, dream.dream(x, **{**kwargs, "seed": 6}))


@pytest.mark.parametrize(
    "layer, channel, kwargs, match",
    [
        ("features.99", None, {}, "no layer named"),
        ("features.4", 20, {}, "channel 20 is out of range"),
        ("features.4", None, {"octaves": 0}, "octaves >= 1"),
        ("features.4", None, {"tile_size": 4}, "tile_size"),
    ],
)
def test_bad_arguments_are_clear_errors(layer, channel, kwargs, match):
    model = ARCHITECTURES["mnist_cnn"]()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        nni.DeepDream(model, layer, channel=channel).dream(_image(size=28), steps=1, **kwargs)
    assert_same_state(before, _state(model))


def test_model_comes_back_unchanged():
    model = ARCHITECTURES["residual_bn"]().train()
    before = _state(model)
    nni.DeepDream(model, "conv").dream(_image(size=28), octaves=2, steps=2)
    assert_same_state(before, _state(model))
