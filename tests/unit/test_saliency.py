"""Saliency (vanilla backpropagation): signs, errors and no_grad.

Batching, targets, dtypes and model state of every registered method: ``tests/contract``."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from toy_models import ARCHITECTURES, mnist_like_batch


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


def test_dense_output_without_a_target_is_a_clear_error():
    model = nn.Conv2d(1, 2, 3).double()
    with pytest.raises(ValueError, match=r"returns \(2, 2, 26, 26\), not class scores \(N, C\): give target=\(c, i, \.\.\.\)"):
        nni.Saliency(model).attribute(mnist_like_batch(2))
    with pytest.raises(ValueError, match=r"a class target needs class scores"):
        nni.Saliency(model).attribute(mnist_like_batch(2), target=1)


def test_works_under_no_grad_and_leaves_no_parameter_gradients():
    model = ARCHITECTURES["nested_functional"]()
    with torch.no_grad():
        maps = nni.Saliency(model).attribute(mnist_like_batch(2), target=0)
    assert maps.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
