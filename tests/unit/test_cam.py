"""CAM, Grad-CAM, Guided Grad-CAM: batching, layers by name, errors, no hooks left behind."""
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.models import GAPCNN
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

METHODS = {
    "cam": lambda m: nni.CAM(m, "features.10", "fc"),
    "grad-cam": lambda m: nni.GradCAM(m, "features.10"),
    "guided-grad-cam": lambda m: nni.GuidedGradCAM(m, "features.10"),
}


def _gap():
    return seeded(lambda: GAPCNN(map_size=3))


@pytest.mark.parametrize("name", METHODS)
def test_batch_equals_items_and_default_target_is_the_prediction(name):
    model = _gap()
    method = METHODS[name](model)
    x = mnist_like_batch(3)
    batch = method.attribute(x, target=[1, 5, 9])
    items = torch.cat([method.attribute(x[i : i + 1], target=t) for i, t in enumerate([1, 5, 9])])
    torch.testing.assert_close(batch, items)
    torch.testing.assert_close(method.attribute(x), method.attribute(x, target=model(x).argmax(1)))
    assert batch.shape[-2:] == (28, 28)


@pytest.mark.parametrize("name", METHODS)
def test_model_comes_back_unchanged_without_hooks(name):
    model = _gap().train()
    before = _state(model)
    METHODS[name](model).attribute(mnist_like_batch(2), target=0)
    assert_same_state(before, _state(model))
    assert all(not m._forward_hooks for m in model.modules())


def test_grad_cam_on_nested_functional_models_and_raw_resolution():
    model = ARCHITECTURES["nested_functional"]()
    maps = nni.GradCAM(model, "blocks.1.conv").attribute(mnist_like_batch(2), target=3, upsample=False)
    assert maps.shape == (2, 1, 14, 14) and (maps >= 0).all()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda m: nni.GradCAM(m, "features.99"), "no layer named"),
        (lambda m: nni.CAM(m, "features.10", "features.9"), "must be the nn.Linear"),
        (lambda m: nni.CAM(m, "features.3", "fc"), "expects 64"),
        (lambda m: nni.GradCAM(m, "fc"), "feature maps"),
    ],
)
def test_bad_layers_are_clear_errors(make, match):
    model = _gap()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        make(model).attribute(mnist_like_batch(2), target=1)
    assert_same_state(before, _state(model))


def test_target_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="out of range"):
        nni.GradCAM(_gap(), "features.10").attribute(mnist_like_batch(2), target=10)
