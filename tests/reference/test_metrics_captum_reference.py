"""``infidelity`` and ``max_sensitivity`` against Captum's ``infidelity`` and ``sensitivity_max``.

Captum draws its perturbations inside ``perturb_func`` on the inputs repeated sample-major
(``repeat_interleave``: row ``i * k + j`` is draw ``j`` of sample ``i``); the functions below hand it our
copy-major draws ``(k, N, ...)`` in that order, so both compute on the same numbers.
"""
import pytest
import torch
from captum.attr import Saliency as CaptumSaliency
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max

import nn_interpretability as nni
from nn_interpretability.evaluation import infidelity, max_sensitivity
from toy_models import ARCHITECTURES, mnist_like_batch

K = 6


def _sample_major(draws):
    """``(k, N, ...)`` copy-major draws as Captum's ``(N * k, ...)`` rows."""
    return draws.transpose(0, 1).reshape(-1, *draws.shape[2:])


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captum(architecture, normalize):
    model = ARCHITECTURES[architecture](0)
    x = mnist_like_batch(4)
    target = torch.tensor([0, 3, 5, 9])
    maps = nni.InputXGradient(model).attribute(x, target=target)
    draws = 0.1 * torch.randn((K, *x.shape), generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def perturb(inputs):
        noise = _sample_major(draws)
        return noise, inputs - noise

    theirs = captum_infidelity(model, perturb, x, maps, target=target, n_perturb_samples=K, normalize=normalize)
    ours = infidelity(model, x, maps, target, perturbations=draws, normalize=normalize, internal_batch_size=5)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


def test_infidelity_of_a_linear_model_with_its_exact_map_is_zero():
    model = torch.nn.Linear(6, 3).double()
    x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 2, 0, 1])
    maps = model.weight[target].detach().expand_as(x)  # the gradient: I^T Φ equals f(x) - f(x - I) exactly
    assert infidelity(model, x, maps, target, n_perturb_samples=8).abs().max() < 1e-24


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_max_sensitivity_equals_captum(architecture):
    model = ARCHITECTURES[architecture](0)
    x = mnist_like_batch(3)
    target = torch.tensor([1, 4, 7])
    draws = (2 * torch.rand((K, *x.shape), generator=torch.Generator().manual_seed(3), dtype=torch.float64) - 1) * 0.02

    def perturb(inputs, radius):
        return inputs + _sample_major(draws)

    def explain(inputs, target):  # Captum passes a tuple of inputs or a tensor
        with torch.enable_grad():
            inputs = tuple(x.clone().requires_grad_() for x in inputs) if isinstance(inputs, tuple) else inputs.clone().requires_grad_()
            return CaptumSaliency(model).attribute(inputs, target=target, abs=False)

    theirs = sensitivity_max(explain, x, perturb_func=perturb, n_perturb_samples=K, target=target)
    ours = max_sensitivity(nni.Saliency(model), x, target, perturbations=draws, internal_batch_size=4)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)
    # A callable explain with the target given gives the same scores.
    as_callable = max_sensitivity(lambda inputs, t: nni.Saliency(model).attribute(inputs, target=t), x, target, perturbations=draws)
    torch.testing.assert_close(as_callable, ours)
