"""SmoothGrad: noise-free limit, seeds, batching, chunking, errors, registry and model-state restoration."""
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.attribution.integrated_gradients import IntegratedGradients
from nn_interpretability.attribution.noise_tunnel import SmoothGrad
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_without_noise_it_is_the_wrapped_method(arch):
    model = ARCHITECTURES[arch]()
    x = mnist_like_batch(3)
    saliency = nni.Saliency(model).attribute(x, target=[1, 2, 3])
    for nt_type, expected in [
        ("smoothgrad", saliency),
        ("smoothgrad_sq", saliency**2),
        ("vargrad", torch.zeros_like(saliency)),
    ]:
        smoothgrad = SmoothGrad(nni.Saliency(model), nt_type=nt_type, nt_samples=3, stdevs=0.0)
        result = smoothgrad.attribute(x, target=[1, 2, 3])
        torch.testing.assert_close(result, expected)


def test_without_noise_integrated_gradients_gets_its_arguments():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    baselines = mnist_like_batch(2, seed=3)
    ig = IntegratedGradients(model)
    expected = ig.attribute(x, baselines=baselines, n_steps=5, method="riemann_left")
    smoothgrad = SmoothGrad(ig, nt_samples=2, stdevs=0.0)
    result = smoothgrad.attribute(x, baselines=baselines, n_steps=5, method="riemann_left")
    torch.testing.assert_close(result, expected)


def test_same_seed_same_maps_other_seed_other_maps():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)

    def smooth(seed):
        return SmoothGrad(nni.Saliency(model), nt_samples=4, seed=seed).attribute(x)

    assert torch.equal(smooth(None), smooth(None))
    assert torch.equal(smooth(None), smooth(0))  # None is the documented default seed 0
    assert torch.equal(smooth(5), smooth(5))
    assert not torch.allclose(smooth(5), smooth(6))


def test_chunking_does_not_change_the_noise():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    reference = SmoothGrad(nni.Saliency(model), nt_type="vargrad", nt_samples=5).attribute(x)
    for batch_size in (1, 2, 3, 5, 50):
        smoothgrad = SmoothGrad(nni.Saliency(model), nt_type="vargrad", nt_samples=5, internal_batch_size=batch_size)
        result = smoothgrad.attribute(x)
        torch.testing.assert_close(result, reference)


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_batch_equals_items_with_their_noise(nt_type):
    model = ARCHITECTURES["nested_functional"]()
    x = mnist_like_batch(3)
    z = torch.randn(4, *x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    target = [7, 0, 3]
    smoothgrad = SmoothGrad(nni.Saliency(model), nt_type=nt_type, nt_samples=4, stdevs=0.2)
    batch = smoothgrad.attribute(x, target=target, noise=z)
    assert batch.shape == x.shape and batch.dtype == x.dtype
    items = torch.cat(
        [smoothgrad.attribute(x[i : i + 1], target=t, noise=z[:, i : i + 1]) for i, t in enumerate(target)]
    )
    torch.testing.assert_close(batch, items)


def test_per_sample_stdevs():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    z = torch.randn(3, *x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    smoothgrad = SmoothGrad(nni.Saliency(model), nt_samples=3, stdevs=torch.tensor([0.0, 0.3]))
    both = smoothgrad.attribute(x, target=1, noise=z)
    torch.testing.assert_close(both[:1], nni.Saliency(model).attribute(x[:1], target=1))
    alone = SmoothGrad(nni.Saliency(model), nt_samples=3, stdevs=0.3).attribute(x[1:], target=1, noise=z[:, 1:])
    torch.testing.assert_close(both[1:], alone)


def test_smoothgrad_sq_and_vargrad_are_non_negative_and_consistent():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    kinds = {
        nt_type: SmoothGrad(nni.Saliency(model), nt_type=nt_type, nt_samples=6).attribute(x, target=0)
        for nt_type in ("smoothgrad", "smoothgrad_sq", "vargrad")
    }
    assert (kinds["smoothgrad_sq"] >= 0).all() and (kinds["vargrad"] >= 0).all()
    torch.testing.assert_close(kinds["vargrad"], kinds["smoothgrad_sq"] - kinds["smoothgrad"] ** 2)


@pytest.mark.parametrize(
    "config, error, match",
    [
        ({"nt_type": "mean"}, ValueError, "unknown nt_type"),
        ({"nt_samples": 0}, ValueError, "nt_samples must be >= 1"),
        ({"nt_samples": 2.0}, TypeError, "nt_samples must be an int"),
        ({"internal_batch_size": 0}, ValueError, "internal_batch_size"),
        ({"stdevs": -0.1}, ValueError, "non-negative"),
        ({"stdevs": torch.tensor([0.1, -0.1])}, ValueError, "non-negative"),
        ({"stdevs": "0.1"}, ValueError, "stdevs"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_bad_configuration_is_a_clear_error(config, error, match):
    with pytest.raises(error, match=match):
        SmoothGrad(nni.Saliency(ARCHITECTURES["mnist_cnn"]()), **config)


def test_wrapping_something_else_is_a_clear_error():
    with pytest.raises(TypeError, match="attribution method of this package"):
        SmoothGrad(ARCHITECTURES["mnist_cnn"]())


@pytest.mark.parametrize(
    "config, kwargs, match",
    [
        ({"nt_samples": 3}, {"noise": torch.zeros(2, 2, 1, 28, 28)}, r"noise must be a tensor of shape"),
        ({"nt_samples": 2}, {"noise": torch.full((2, 2, 1, 28, 28), float("nan"))}, "NaN"),
        ({"stdevs": torch.tensor([0.1, 0.1, 0.1])}, {}, "3 entries but the batch has N = 2"),
        ({}, {"target": 10}, "out of range"),
    ],
)
def test_bad_call_is_a_clear_error(config, kwargs, match):
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(ValueError, match=match):
        SmoothGrad(IntegratedGradients(model), nt_samples=config.pop("nt_samples", 2), **config).attribute(
            mnist_like_batch(2), n_steps=3, **kwargs
        )


def test_missing_batch_dimension_is_a_clear_error():
    with pytest.raises(ValueError, match="unsqueeze"):
        SmoothGrad(nni.Saliency(ARCHITECTURES["mnist_cnn"]())).attribute(torch.rand(28, 28, dtype=torch.float64))


def test_model_comes_back_unchanged_when_the_method_raises():
    model = ARCHITECTURES["residual_bn"]()
    before = _state(model)
    with pytest.raises(ValueError):
        SmoothGrad(IntegratedGradients(model), nt_samples=2).attribute(mnist_like_batch(2), baselines=torch.zeros(5))
    assert_same_state(before, _state(model))


def test_works_under_no_grad_and_leaves_no_parameter_gradients():
    model = ARCHITECTURES["nested_functional"]()
    with torch.no_grad():
        maps = SmoothGrad(nni.Saliency(model), nt_samples=2).attribute(mnist_like_batch(2), target=0)
    assert maps.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_registered_with_a_base_method_from_the_registry():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    smoothgrad = nni.get_method("smoothgrad", model, nt_samples=3)
    assert isinstance(smoothgrad, SmoothGrad) and isinstance(smoothgrad.method, nni.Saliency)
    assert torch.equal(smoothgrad.attribute(x), SmoothGrad(nni.Saliency(model), nt_samples=3).attribute(x))
    squared = nni.get_method(
        "smoothgrad_sq", model, base="integrated-gradients", base_kwargs={"multiply_by_inputs": False}, nt_samples=2
    )
    assert squared.nt_type == "smoothgrad_sq"
    assert isinstance(squared.method, IntegratedGradients) and not squared.method.multiplies_by_inputs
    assert nni.get_method("vargrad", model).nt_type == "vargrad"
