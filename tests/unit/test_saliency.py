"""Saliency (vanilla backpropagation): shapes, batching, targets, errors and model-state restoration."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_batch_equals_items_one_at_a_time(arch):
    model = ARCHITECTURES[arch]()
    x = mnist_like_batch(5)
    target = [0, 3, 9, 3, 1]
    batch = nni.Saliency(model).attribute(x, target=target)
    assert batch.shape == x.shape and batch.dtype == x.dtype
    items = torch.cat([nni.Saliency(model).attribute(x[i : i + 1], target=t) for i, t in enumerate(target)])
    torch.testing.assert_close(batch, items)


def test_default_target_is_the_prediction():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(3)
    predicted = model(x).argmax(1)
    torch.testing.assert_close(nni.Saliency(model).attribute(x), nni.Saliency(model).attribute(x, target=predicted))


def test_signed_by_default_and_abs_on_request():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    signed = nni.Saliency(model).attribute(x, target=1)
    assert (signed < 0).any() and (signed > 0).any()
    torch.testing.assert_close(nni.Saliency(model).attribute(x, target=1, abs=True), signed.abs())


def test_target_out_of_range_is_a_clear_error():
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(ValueError, match="out of range"):
        nni.Saliency(model).attribute(mnist_like_batch(2), target=10)


def test_missing_batch_dimension_is_a_clear_error():
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(ValueError, match="unsqueeze"):
        nni.Saliency(model).attribute(torch.rand(28, 28, dtype=torch.float64))


def test_non_classifier_output_is_a_clear_error():
    model = nn.Conv2d(1, 2, 3).double()
    with pytest.raises(ValueError, match=r"class scores of shape \(N, C\)"):
        nni.Saliency(model).attribute(mnist_like_batch(2))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_model_comes_back_unchanged(arch):
    model = ARCHITECTURES[arch]()
    model.train()  # BatchNorm statistics would move and dropout would act in train mode
    before = _state(model)
    nni.Saliency(model).attribute(mnist_like_batch(2), target=0)
    assert_same_state(before, _state(model))


def test_model_comes_back_unchanged_when_the_method_raises():
    model = ARCHITECTURES["residual_bn"]()
    before = _state(model)
    with pytest.raises(ValueError):
        nni.Saliency(model).attribute(mnist_like_batch(2), target=[0, 99])
    assert_same_state(before, _state(model))


def test_works_under_no_grad_and_leaves_no_parameter_gradients():
    model = ARCHITECTURES["nested_functional"]()
    with torch.no_grad():
        maps = nni.Saliency(model).attribute(mnist_like_batch(2), target=0)
    assert maps.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_deterministic():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(3)
    assert torch.equal(nni.Saliency(model).attribute(x), nni.Saliency(model).attribute(x))
