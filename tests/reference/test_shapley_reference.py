"""FeatureAblation, ShapleyValueSampling, KernelShap and GradientShap against Captum 0.9 on seeded float64 models."""
import itertools
import math

import numpy as np
import pytest
import torch
from captum.attr import FeatureAblation, GradientShap, KernelShap, ShapleyValueSampling
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lime import grid_segments
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

ARCHS = ["mnist_cnn", "nested_functional"]
TARGETS = [0, 4, 7]
MASK = torch.as_tensor(grid_segments(28, 28, 7)).view(1, 1, 28, 28)  # 16 features


def dense():
    return seeded(lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)), seed=4)


def assert_float32_close(ours, theirs, scale=2e-6):
    # Captum accumulates Shapley sampling, and fits Kernel SHAP's regression, in float32 even for float64
    # models: agreement is to float32 rounding of the largest value (Kernel SHAP's least squares with
    # weights of 1e6 loses a few more float32 digits).
    assert theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=scale * float(theirs.abs().max()))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("mask", ["grid", "per-sample", "none"])
def test_feature_ablation_matches_captum(arch, mask):
    model, x = ARCHITECTURES[arch](seed=1), mnist_like_batch(3, seed=1)
    feature_mask = {"grid": MASK, "per-sample": torch.stack([MASK[0], MASK[0].transpose(-1, -2).contiguous(), MASK[0] // 4]), "none": None}[mask]
    ours = nni.FeatureAblation(model).attribute(x, target=TARGETS, feature_mask=feature_mask, baselines=0.3, perturbations_per_eval=5)
    theirs = FeatureAblation(model).attribute(x, target=TARGETS, feature_mask=feature_mask, baselines=0.3, perturbations_per_eval=5)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-12)


def test_feature_ablation_of_two_inputs_matches_captum():
    model = seeded(lambda: nn.Bilinear(4, 3, 2), seed=2)
    a, b = torch.rand(3, 4, dtype=torch.float64), torch.rand(3, 3, dtype=torch.float64)
    masks = (torch.tensor([[0, 0, 1, 2]]), torch.tensor([[0, 1, 1]]))
    ours = nni.FeatureAblation(model).attribute((a, b), target=1, feature_mask=masks, baselines=(0.1, 0.2))
    theirs = FeatureAblation(model).attribute((a, b), target=1, feature_mask=masks, baselines=(0.1, 0.2))
    for o, t in zip(ours, theirs):
        torch.testing.assert_close(o, t, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_shapley_value_sampling_matches_captum(arch):
    model, x = ARCHITECTURES[arch](seed=1), mnist_like_batch(3, seed=1)
    ours = nni.ShapleyValueSampling(model, n_samples=3, seed=7).attribute(x, target=TARGETS, feature_mask=MASK, baselines=0.2, perturbations_per_eval=6)
    torch.manual_seed(7)
    theirs = ShapleyValueSampling(model).attribute(x, target=TARGETS, feature_mask=MASK, baselines=0.2, n_samples=3, perturbations_per_eval=6)
    assert_float32_close(ours, theirs)


def test_shapley_value_sampling_matches_captum_on_a_dense_net_with_per_element_features():
    model, x = dense(), torch.rand(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = nni.ShapleyValueSampling(model, n_samples=20, seed=1).attribute(x, target=2)
    torch.manual_seed(1)
    assert_float32_close(ours, ShapleyValueSampling(model).attribute(x, target=2, n_samples=20))


def digits_with_blank_cells(n=3):
    """Noise with a different set of the 16 cells of MASK blank (0, the baseline) in each sample."""
    x = mnist_like_batch(n, seed=2)
    blank = torch.rand(n, 16, generator=torch.Generator().manual_seed(3)) < 0.5
    return torch.where(blank.gather(1, MASK.flatten(1).expand(n, -1)).view_as(x), 0.0, x)


@pytest.mark.parametrize("arch", ARCHS)
def test_skipping_blank_cells_matches_captum(arch):
    # A cell equal to its baseline changes no input when switched: ours skips those forwards, Captum runs them.
    model, x = ARCHITECTURES[arch](seed=1), digits_with_blank_cells()
    per_sample = torch.stack([MASK[0], MASK[0].transpose(-1, -2).contiguous(), MASK[0]])
    ours = nni.ShapleyValueSampling(model, n_samples=4, seed=2).attribute(x, target=TARGETS, feature_mask=per_sample, perturbations_per_eval=5)
    torch.manual_seed(2)
    theirs = ShapleyValueSampling(model).attribute(x, target=TARGETS, feature_mask=per_sample, n_samples=4, perturbations_per_eval=5)
    assert_float32_close(ours, theirs)
    ours = nni.FeatureAblation(model).attribute(x, target=TARGETS, feature_mask=per_sample, perturbations_per_eval=5)
    theirs = FeatureAblation(model).attribute(x, target=TARGETS, feature_mask=per_sample, perturbations_per_eval=5)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_kernel_shap_matches_captum_sample_by_sample(arch):
    model, x = ARCHITECTURES[arch](seed=1), mnist_like_batch(3, seed=1)
    ours = nni.KernelShap(model, n_samples=60, seed=3).attribute(x, target=TARGETS, feature_mask=MASK, baselines=0.1)
    for i, target in enumerate(TARGETS):
        torch.manual_seed(3)
        theirs = KernelShap(model).attribute(x[i : i + 1], target=target, feature_mask=MASK, baselines=0.1, n_samples=60)
        assert_float32_close(ours[i : i + 1], theirs, scale=1e-5)


def exact_shapley(f, x, b):
    """Shapley values of f at x against b by enumerating every coalition (Shapley 1953)."""
    k = x.shape[1]
    phi = torch.zeros_like(x)
    for subset in itertools.product([0, 1], repeat=k):
        z = torch.tensor(subset, dtype=torch.bool)
        for j in range(k):
            if z[j]:
                continue
            weight = math.factorial(int(z.sum())) * math.factorial(k - int(z.sum()) - 1) / math.factorial(k)
            with_j = z.clone()
            with_j[j] = True
            phi[:, j] += weight * (f(torch.where(with_j, x, b)) - f(torch.where(z, x, b)))
    return phi


def test_exact_shapley_values_from_every_permutation_and_every_coalition():
    model, x = dense(), torch.rand(2, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b = torch.full_like(x, 0.25)
    exact = exact_shapley(lambda v: model(v)[:, 1].detach(), x, b)
    everyone = torch.tensor(list(itertools.permutations(range(6))))
    sampled = nni.ShapleyValueSampling(model).attribute(x, target=1, baselines=0.25, permutations=everyone)
    torch.testing.assert_close(sampled, exact, rtol=1e-10, atol=1e-12)
    coalitions = torch.tensor(list(itertools.product([0, 1], repeat=6)))
    kernel = nni.KernelShap(model).attribute(x, target=1, baselines=0.25, coalitions=coalitions)
    torch.testing.assert_close(kernel, exact, rtol=1e-5, atol=1e-7)  # the infinite weights are 1e6
    # Captum's sampled estimates approach the same values with many samples.
    torch.manual_seed(0)
    captum_svs = ShapleyValueSampling(model).attribute(x, target=1, baselines=0.25, n_samples=400).double()
    torch.testing.assert_close(captum_svs, exact, rtol=0, atol=0.05 * float(exact.abs().max()))


def test_gradient_shap_matches_captum_with_its_numpy_and_torch_draws():
    model, x = ARCHITECTURES["mnist_cnn"](seed=1), mnist_like_batch(3, seed=1)
    distribution = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours, delta = nni.GradientShap(model, n_samples=6, stdevs=0.1, seed=3).attribute(
        x, target=TARGETS, baselines=distribution, internal_batch_size=7, return_convergence_delta=True
    )
    torch.manual_seed(3)
    np.random.seed(3)
    theirs, their_delta = GradientShap(model).attribute(
        x, target=TARGETS, baselines=distribution, n_samples=6, stdevs=0.1, return_convergence_delta=True
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(delta, their_delta.view(3, 6).mean(1), rtol=1e-6, atol=1e-12)


def test_gradient_shap_without_multiplying_matches_captum():
    model, x = dense(), torch.rand(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    distribution = torch.rand(3, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = nni.GradientShap(model, multiply_by_inputs=False, n_samples=4, seed=5).attribute(x, target=2, baselines=distribution)
    torch.manual_seed(5)
    np.random.seed(5)
    theirs = GradientShap(model, multiply_by_inputs=False).attribute(x, target=2, baselines=distribution, n_samples=4)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-12)
