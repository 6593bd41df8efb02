"""DeconvNetReconstruction: batching, layer lookup, errors and model state."""
import pytest
import torch

import nn_interpretability as nni
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch


def test_batch_equals_items_one_at_a_time():
    method = nni.DeconvNetReconstruction(ARCHITECTURES["mnist_cnn"](), "features.7")
    x = mnist_like_batch(3)
    batch = method.reconstruct(x, filter=5, keep="max")
    assert batch.shape == x.shape and batch.dtype == x.dtype
    torch.testing.assert_close(batch, torch.cat([method.reconstruct(x[i : i + 1], filter=5, keep="max") for i in range(3)]))


def test_layer_by_module_or_name_is_the_same():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    by_name = nni.DeconvNetReconstruction(model, "features.4").reconstruct(x)
    torch.testing.assert_close(nni.DeconvNetReconstruction(model, model.features[4]).reconstruct(x), by_name)


@pytest.mark.parametrize(
    "arch, layer, kwargs, match",
    [
        ("mnist_cnn", "features.99", {}, "no layer named"),
        ("mnist_cnn", "features.4", {"filter": 20}, r"channel index in 0\.\.19"),
        ("mnist_cnn", "features.4", {"keep": "top"}, "keep must be one of"),
        ("residual_bn", "conv", {}, "cannot mirror module 'bn1'"),
        ("nested_functional", "blocks.1.conv", {}, "does not consume the output"),
    ],
)
def test_unsupported_paths_and_bad_arguments_are_clear_errors(arch, layer, kwargs, match):
    model = ARCHITECTURES[arch]()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        nni.DeconvNetReconstruction(model, layer).reconstruct(mnist_like_batch(2), **kwargs)
    assert_same_state(before, _state(model))


def test_model_comes_back_unchanged_and_in_its_mode():
    model = ARCHITECTURES["mnist_cnn"]().train()
    before = _state(model)
    nni.DeconvNetReconstruction(model, "classifier.2").reconstruct(mnist_like_batch(2), filter=0)
    assert_same_state(before, _state(model))


def test_one_filter_per_sample_equals_each_sample_with_its_filter():
    method = nni.DeconvNetReconstruction(ARCHITECTURES["mnist_cnn"](), "classifier.3")
    x = mnist_like_batch(3)
    batch = method.reconstruct(x, filter=[4, 0, 9])
    items = torch.cat([method.reconstruct(x[i : i + 1], filter=f) for i, f in enumerate([4, 0, 9])])
    torch.testing.assert_close(batch, items)
