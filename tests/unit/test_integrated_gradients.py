"""Integrated Gradients: quadrature, baselines, targets, chunking and errors.

Batching (with per-sample baselines and deltas), targets, dtypes and model state of every registered
method: ``tests/contract``."""
import math

import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.integrated_gradients import IntegratedGradients, quadrature
from nn_interpretability.core.batching import CHUNK_ELEMENTS, CPU_ROWS, chunk_size
from toy_models import ARCHITECTURES, mnist_like_batch


def test_targets_select_different_classes():
    model = ARCHITECTURES["nested_functional"]()
    x = mnist_like_batch(2)
    ig = IntegratedGradients(model)
    assert not torch.allclose(ig.attribute(x, target=1, n_steps=5), ig.attribute(x, target=2, n_steps=5))


def test_baseline_forms_agree():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(3)
    ig = IntegratedGradients(model)
    reference = ig.attribute(x, target=2, baselines=0.3, n_steps=5)
    one = torch.full((1, 28, 28), 0.3, dtype=torch.float64)
    for baselines in (torch.tensor(0.3, dtype=torch.float64), one, one[None], one.expand(3, 1, 28, 28).clone()):
        torch.testing.assert_close(ig.attribute(x, target=2, baselines=baselines, n_steps=5), reference)


def test_per_sample_baselines_are_used_per_sample():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    baselines = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28)]).double()
    ig = IntegratedGradients(model)
    both = ig.attribute(x, target=1, baselines=baselines, n_steps=5)
    torch.testing.assert_close(both[:1], ig.attribute(x[:1], target=1, baselines=0.0, n_steps=5))
    torch.testing.assert_close(both[1:], ig.attribute(x[1:], target=1, baselines=1.0, n_steps=5))


def test_a_sample_equal_to_its_baseline_gets_zero_attribution():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    attributions = IntegratedGradients(model).attribute(x, target=0, baselines=x, n_steps=5)
    assert torch.equal(attributions, torch.zeros_like(x))


def test_multiply_by_inputs_false_is_the_integrated_gradient():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    multiplied, delta = IntegratedGradients(model).attribute(
        x, target=4, baselines=0.5, n_steps=7, return_convergence_delta=True
    )
    gradient, same_delta = IntegratedGradients(model, multiply_by_inputs=False).attribute(
        x, target=4, baselines=0.5, n_steps=7, return_convergence_delta=True
    )
    torch.testing.assert_close(gradient * (x - 0.5), multiplied)
    torch.testing.assert_close(same_delta, delta)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "uniform"])
def test_internal_batch_size_does_not_change_results(method):
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(3)
    ig = IntegratedGradients(model)
    reference = ig.attribute(x, target=[1, 2, 3], n_steps=7, method=method, internal_batch_size=10_000)
    for internal_batch_size in (1, 2, 3, 5, None):
        result = ig.attribute(x, target=[1, 2, 3], n_steps=7, method=method, internal_batch_size=internal_batch_size)
        torch.testing.assert_close(result, reference)


class _Recorder(nn.Module):
    """A tiny classifier that records the batch size of every forward pass."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(4, 3)
        self.batch_sizes = []

    def forward(self, x):
        self.batch_sizes.append(x.shape[0])
        return self.fc(self.pool(x).flatten(1))


def test_default_chunk_holds_at_most_chunk_elements():
    assert chunk_size(784) == CHUNK_ELEMENTS // 784
    assert chunk_size(3 * 224 * 224) == 6
    assert chunk_size(10 * CHUNK_ELEMENTS) == 1  # one copy per pass even when it is over budget
    model = _Recorder()
    x = torch.rand(3, 1, 256, 1024)  # 2**18 elements per sample: four path points per pass
    IntegratedGradients(model).attribute(x, target=0, n_steps=10)
    clean, *passes = model.batch_sizes
    assert clean == 3  # the target is resolved on the inputs themselves
    assert max(passes) * x[0].numel() <= CHUNK_ELEMENTS
    assert sum(passes) == 10 * 3 and len(passes) == math.ceil(30 / 4)


def test_default_chunk_holds_at_most_cpu_rows_of_small_inputs():
    assert chunk_size(784, rows_per_copy=1) == CPU_ROWS
    assert chunk_size(784, rows_per_copy=64) == CPU_ROWS // 64
    assert chunk_size(784, rows_per_copy=1000) == 1
    assert chunk_size(3 * 224 * 224, rows_per_copy=1) == 6  # the element budget binds first
    model = _Recorder()
    IntegratedGradients(model).attribute(torch.rand(3, 1, 4, 4), target=0, n_steps=100)
    clean, *passes = model.batch_sizes
    assert max(passes) == CPU_ROWS and sum(passes) == 300


def test_internal_batch_size_bounds_every_pass():
    model = _Recorder()
    IntegratedGradients(model).attribute(torch.rand(4, 1, 8, 8), target=0, n_steps=5, internal_batch_size=3)
    assert model.batch_sizes[1:] == [3] * 6 + [2]


def test_uniform_is_the_textbook_rule():
    alphas, weights = quadrature("uniform", 3)
    assert alphas.tolist() == [0.0, 0.5, 1.0]
    assert weights.tolist() == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "uniform"])
def test_rules_integrate_polynomials(method):
    # Each rule must integrate a straight line exactly (up to its order) and converge on smooth functions.
    alphas, weights = quadrature(method, 64)
    assert (weights * alphas).sum() == pytest.approx(0.5, abs=1 / 64)
    assert (weights * alphas**2).sum() == pytest.approx(1 / 3, abs=2 / 64)
    assert 0 <= alphas.min() and alphas.max() <= 1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"baselines": torch.zeros(2, 28, 28)}, ValueError, r"baselines of shape \(2, 28, 28\)"),
        ({"baselines": torch.zeros(3, 1, 28, 28)}, ValueError, "one per sample"),
        ({"baselines": True}, TypeError, "baselines must be"),
        ({"baselines": "zero"}, TypeError, "baselines must be"),
        ({"baselines": float("nan")}, ValueError, "NaN"),
        ({"method": "simpson"}, ValueError, "unknown integration method"),
        ({"n_steps": 1, "method": "riemann_left"}, ValueError, "n_steps >= 2"),
        ({"n_steps": 0}, ValueError, "n_steps >= 1"),
        ({"n_steps": 5.0}, TypeError, "n_steps must be an int"),
        ({"internal_batch_size": 0}, ValueError, "internal_batch_size must be >= 1"),
        ({"internal_batch_size": 2.5}, TypeError, "internal_batch_size"),
        ({"target": 10}, ValueError, "out of range"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(error, match=match):
        IntegratedGradients(model).attribute(mnist_like_batch(2), **kwargs)


def test_missing_batch_dimension_is_a_clear_error():
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(ValueError, match="unsqueeze"):
        IntegratedGradients(model).attribute(torch.rand(28, 28, dtype=torch.float64))


def test_works_under_no_grad_and_leaves_no_parameter_gradients():
    model = ARCHITECTURES["nested_functional"]()
    with torch.no_grad():
        maps = IntegratedGradients(model).attribute(mnist_like_batch(2), target=0, n_steps=4)
    assert maps.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_registered():
    model = ARCHITECTURES["mnist_cnn"]()
    method = nni.get_method("integrated-gradients", model, multiply_by_inputs=False)
    assert isinstance(method, IntegratedGradients) and not method.multiplies_by_inputs
    assert nni.get_method("integrated_gradients") is IntegratedGradients
