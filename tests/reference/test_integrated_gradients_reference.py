"""Integrated Gradients against Captum, completeness on the trained MNIST CNN and the textbook's problem P9.2."""
import copy

import numpy as np
import pytest
import torch
import torchvision
from captum.attr import IntegratedGradients as CaptumIntegratedGradients
from captum.attr._utils.approximation_methods import approximation_parameters

import nn_interpretability as nni
from nn_interpretability.attribution.integrated_gradients import IntegratedGradients, quadrature
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

CAPTUM_METHODS = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]


def _baselines(kind, x):
    if kind == "scalar":
        return 0.25
    return torch.rand(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)


@pytest.mark.parametrize("method", CAPTUM_METHODS)
@pytest.mark.parametrize("n_steps", [2, 3, 8, 50])
def test_quadrature_matches_captum(method, n_steps):
    step_sizes, alphas = approximation_parameters(method)
    ours_alphas, ours_weights = quadrature(method, n_steps)
    # Captum builds the Riemann points with a float32 linspace; ours are float64.
    np.testing.assert_allclose(ours_alphas, alphas(n_steps), rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours_weights, step_sizes(n_steps), rtol=1e-15, atol=0)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("method", CAPTUM_METHODS)
@pytest.mark.parametrize("baseline_kind", ["scalar", "per_sample"])
@pytest.mark.parametrize("multiply_by_inputs", [True, False])
@pytest.mark.parametrize("internal_batch_size", [None, 5])
def test_matches_captum(arch, method, baseline_kind, multiply_by_inputs, internal_batch_size):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(3, seed=1)
    target = torch.tensor([0, 4, 7])
    baselines = _baselines(baseline_kind, x)
    ours = IntegratedGradients(model, multiply_by_inputs=multiply_by_inputs).attribute(
        x, target=target, baselines=baselines, n_steps=8, method=method, internal_batch_size=internal_batch_size
    )
    captum = CaptumIntegratedGradients(model, multiply_by_inputs=multiply_by_inputs).attribute(
        x, target=target, baselines=baselines, n_steps=8, method=method
    )
    torch.testing.assert_close(ours, captum)


@pytest.mark.parametrize(
    "method, baseline_kind, multiply_by_inputs, internal_batch_size",
    [(method, "per_sample", True, 5) for method in CAPTUM_METHODS] + [("gausslegendre", "scalar", False, None)],
)
def test_matches_captum_on_resnet18(method, baseline_kind, multiply_by_inputs, internal_batch_size):
    model = seeded(lambda: torchvision.models.resnet18(weights=None), seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = [1, 500]
    baselines = _baselines(baseline_kind, x)
    ours = IntegratedGradients(model, multiply_by_inputs=multiply_by_inputs).attribute(
        x, target=target, baselines=baselines, n_steps=8, method=method, internal_batch_size=internal_batch_size
    )
    captum = CaptumIntegratedGradients(model, multiply_by_inputs=multiply_by_inputs).attribute(
        x, target=target, baselines=baselines, n_steps=8, method=method
    )
    torch.testing.assert_close(ours, captum)


@pytest.mark.parametrize("method", CAPTUM_METHODS)
def test_convergence_delta_matches_captum(method):
    model = ARCHITECTURES["residual_bn"](seed=2)
    x = mnist_like_batch(3, seed=2)
    baselines = _baselines("per_sample", x)
    predicted = model(x).argmax(1)
    ours, delta = IntegratedGradients(model).attribute(
        x, baselines=baselines, n_steps=6, method=method, return_convergence_delta=True
    )
    captum, captum_delta = CaptumIntegratedGradients(model).attribute(
        x, target=predicted, baselines=baselines, n_steps=6, method=method, return_convergence_delta=True
    )
    torch.testing.assert_close(ours, captum)
    # Captum weights the steps in float32, which moves the delta by ~1e-8 of the attributions' scale.
    torch.testing.assert_close(delta, captum_delta, rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore::nn_interpretability.data.DataSourceWarning")
def test_completeness_on_the_trained_mnist_cnn():
    # Σ_i IG_i = f_c(x) - f_c(x') (eq. 9.17) up to the quadrature error, which must fall with n_steps: from
    # 10 to 300 points, by 5x at least and not monotonically (the ReLUs' kinks make the error of a middle count erratic).
    model = copy.deepcopy(nni.load_model("mnist_cnn", device="cpu")).double()
    images, _ = nni.data.load_mnist("test")
    x = images[:4].double()
    scores = model(x)
    target = scores.argmax(1)
    baseline_scores = model(torch.zeros_like(x))
    gap = (scores - baseline_scores).gather(1, target[:, None]).squeeze(1)
    errors = []
    for n_steps in (10, 100, 300):
        attributions, delta = IntegratedGradients(model).attribute(x, n_steps=n_steps, return_convergence_delta=True)
        torch.testing.assert_close(delta, attributions.flatten(1).sum(1) - gap)
        errors.append((delta.abs() / gap.abs()).max().item())
    assert max(errors[1:]) < errors[0] / 5
    assert errors[2] < 1e-3


@pytest.mark.parametrize(
    "p, baseline, target, three_points, limit",
    [
        ([0.0, 3.0], [0.0, 0.0], 0, [0.0, 2.0], [0.0, 2.5]),  # P9.2 i: c = 1 (index 0)
        ([3.0, 3.0], [0.0, 3.0], 1, [2.0, 0.0], [2.5, 0.0]),  # P9.2 ii: c = 2, a baseline across the boundary
    ],
)
def test_textbook_p9_2(p, baseline, target, three_points, limit):
    network = nni.models.xor_network()
    x = torch.tensor([p], dtype=torch.float64)
    baselines = torch.tensor(baseline, dtype=torch.float64)
    ig = IntegratedGradients(network)
    # target=None: the class is the prediction at p, used for every path point as in the book.
    result, delta = ig.attribute(x, baselines=baselines, n_steps=3, method="uniform", return_convergence_delta=True)
    torch.testing.assert_close(result, torch.tensor([three_points], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(ig.attribute(x, target=target, baselines=baselines, n_steps=3, method="uniform"), result)
    # Three points miss completeness (eq. 9.17); the exact integral attributes the whole score gap.
    assert delta.abs().item() > 0.4
    converged, delta = ig.attribute(x, baselines=baselines, n_steps=200, return_convergence_delta=True)
    torch.testing.assert_close(converged, torch.tensor([limit], dtype=torch.float64), rtol=0, atol=1e-2)
    assert delta.abs().item() < 1e-2
