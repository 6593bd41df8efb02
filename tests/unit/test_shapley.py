"""FeatureAblation, ShapleyValueSampling, KernelShap, GradientShap: properties, batching, seeds, errors."""
import pytest
import torch
from torch import nn

from sklearn.linear_model import LinearRegression

import nn_interpretability as nni
from nn_interpretability.attribution.shapley import shapley_kernel
from nn_interpretability.attribution.lime import grid_segments
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

MASK = torch.as_tensor(grid_segments(28, 28, 7)).view(1, 1, 28, 28)


def dense():
    return seeded(lambda: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)), seed=3)


def inputs(n=3):
    return torch.rand(n, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def score(model, x, target):
    return model(x)[:, target].detach()


def test_feature_ablation_with_one_feature_is_the_total_drop():
    model, x = ARCHITECTURES["mnist_cnn"](seed=0), mnist_like_batch(2)
    maps = nni.FeatureAblation(model).attribute(x, target=3, feature_mask=torch.zeros(1, 1, 28, 28, dtype=torch.long), baselines=0.5)
    drop = score(model, x, 3) - score(model, torch.full_like(x, 0.5), 3)
    torch.testing.assert_close(maps, drop.view(2, 1, 1, 1).expand_as(x))


def test_feature_ablation_default_is_per_element_and_chunking_does_not_matter():
    model, x = dense(), inputs()
    maps = nni.FeatureAblation(model).attribute(x, target=1)
    for j in range(5):
        ablated = x.clone()
        ablated[:, j] = 0
        torch.testing.assert_close(maps[:, j], score(model, x, 1) - score(model, ablated, 1))
    torch.testing.assert_close(nni.FeatureAblation(model).attribute(x, target=1, perturbations_per_eval=2), maps)


@pytest.mark.parametrize("n_samples", [1, 3])
def test_shapley_sampling_is_efficient_for_every_number_of_orderings(n_samples):
    model, x = dense(), inputs()
    maps = nni.ShapleyValueSampling(model, n_samples=n_samples, seed=2).attribute(x, target=0, baselines=0.2)
    torch.testing.assert_close(maps.sum(1), score(model, x, 0) - score(model, torch.full_like(x, 0.2), 0))


def test_shapley_sampling_of_a_linear_model_is_exact_with_one_ordering():
    model = seeded(lambda: nn.Linear(5, 2), seed=1)
    x = inputs()
    maps = nni.ShapleyValueSampling(model, n_samples=1).attribute(x, target=1, baselines=0.3)
    torch.testing.assert_close(maps, model.weight[1].detach() * (x - 0.3))


class Counted(nn.Module):
    """The model, with the rows of each forward pass recorded."""

    def __init__(self, model):
        super().__init__()
        self.model, self.passes = model, []

    def forward(self, x):
        self.passes.append(x.shape[0])
        return self.model(x)


def test_shapley_sampling_fills_passes_across_orderings_and_reuses_the_input_score():
    model, x = Counted(dense()), inputs(2)
    maps = nni.ShapleyValueSampling(model, n_samples=3, seed=0).attribute(x, target=0, perturbations_per_eval=4)
    # The input and the baseline once, then the 3 x (5 - 1) steps that are neither, 4 per pass.
    assert model.passes == [2, 2, 8, 8, 8]
    torch.testing.assert_close(maps.sum(1), score(model, x, 0) - score(model, torch.zeros_like(x), 0))
    one = nni.ShapleyValueSampling(model, n_samples=2).attribute(x, target=0, feature_mask=torch.zeros(1, 5, dtype=torch.long))
    torch.testing.assert_close(one, (score(model, x, 0) - score(model, torch.zeros_like(x), 0))[:, None].expand_as(x))


def sampled_shapley_without_skipping(model, x, b, permutations, target):
    """Shapley sampling spelled out: every step of every ordering scored, unchanged inputs included."""
    phi = torch.zeros_like(x)
    for order in permutations:
        on = torch.zeros_like(x, dtype=torch.bool)
        previous = score(model, b, target)
        for feature in order:
            on[:, feature] = True
            current = score(model, torch.where(on, x, b), target)
            phi[:, feature] += current - previous
            previous = current
    return phi / len(permutations)


def test_features_equal_to_their_baseline_cost_no_forward_and_change_nothing():
    model = Counted(dense())
    x = inputs(2)
    x[0, 1], x[1, 3], x[1, 4] = 0.2, 0.2, 0.2  # the baseline
    permutations = torch.stack([torch.randperm(5, generator=torch.Generator().manual_seed(s)) for s in range(3)])
    maps = nni.ShapleyValueSampling(model).attribute(x, target=1, baselines=0.2, permutations=permutations, perturbations_per_eval=4)
    # Per ordering, sample 0 changes 4 features and sample 1 3: 3 + 2 states between baseline and input.
    assert model.passes == [2, 2, 8, 7]
    torch.testing.assert_close(maps, sampled_shapley_without_skipping(model, x, torch.full_like(x, 0.2), permutations, 1))
    assert maps[0, 1] == 0 and maps[1, 3] == 0 and maps[1, 4] == 0
    model.passes.clear()
    ablation = nni.FeatureAblation(model).attribute(x, target=1, baselines=0.2, perturbations_per_eval=2)
    assert model.passes == [2, 4, 3]  # 7 of the 10 (feature, sample) ablations change the input
    for j in range(5):
        ablated = x.clone()
        ablated[:, j] = 0.2
        torch.testing.assert_close(ablation[:, j], score(model, x, 1) - score(model, ablated, 1))


def test_negative_zero_is_not_the_baseline_zero():
    model = Counted(dense())
    x = inputs(1)
    x[0, 2] = -0.0
    nni.FeatureAblation(model).attribute(x, target=0)
    assert model.passes == [1, 5]


def test_shapley_sampling_seed_chunking_and_batch_items():
    model, x = ARCHITECTURES["nested_functional"](seed=0), mnist_like_batch(2)
    method = nni.ShapleyValueSampling(model, n_samples=2, seed=5)
    maps = method.attribute(x, target=[1, 2], feature_mask=MASK)
    torch.testing.assert_close(method.attribute(x, target=[1, 2], feature_mask=MASK, perturbations_per_eval=3), maps)
    items = torch.cat([method.attribute(x[i : i + 1], target=t, feature_mask=MASK) for i, t in enumerate([1, 2])])
    torch.testing.assert_close(items, maps)  # one set of orderings serves every sample
    assert not torch.allclose(nni.ShapleyValueSampling(model, n_samples=2, seed=6).attribute(x, target=[1, 2], feature_mask=MASK), maps)


def test_kernel_shap_is_efficient_and_shared_across_the_batch():
    model, x = dense(), inputs()
    method = nni.KernelShap(model, n_samples=40, seed=1)
    maps = method.attribute(x, target=2, baselines=0.1)
    torch.testing.assert_close(maps.sum(1), score(model, x, 2) - score(model, torch.full_like(x, 0.1), 2), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(method.attribute(x, target=2, baselines=0.1, perturbations_per_eval=3), maps)
    torch.testing.assert_close(torch.cat([method.attribute(x[i : i + 1], target=2, baselines=0.1) for i in range(3)]), maps)


def kernel_shap_without_skipping(model, x, b, z, target):
    """Kernel SHAP spelled out: every coalition scored on every sample, then the kernel-weighted regression."""
    y = torch.stack([score(model, torch.where(on, x, b), target) for on in z.bool()], 1)
    weights = shapley_kernel(z.bool()).numpy()
    return torch.stack([torch.as_tensor(LinearRegression().fit(z.double().numpy(), row.numpy(), sample_weight=weights).coef_) for row in y])


def test_kernel_shap_scores_each_distinct_changed_coalition_once():
    model = Counted(dense())
    x = inputs(2)
    x[0, 1], x[1, 3], x[1, 4] = 0.2, 0.2, 0.2  # the baseline
    every = torch.tensor([[(c >> k) & 1 for k in range(5)] for c in range(32)])
    maps = nni.KernelShap(model).attribute(x, target=1, baselines=0.2, coalitions=every, perturbations_per_eval=4)
    # Sample 0 changes 4 features (16 coalitions of them), sample 1 three (8): less the input and the
    # baseline, scored by the first two passes, 14 + 6 forwards of 8 rows a pass.
    assert model.passes == [2, 2, 8, 8, 4]
    torch.testing.assert_close(maps, kernel_shap_without_skipping(model, x, torch.full_like(x, 0.2), every, 1))
    assert maps[0, 1].abs() < 1e-9 and maps[1, 3:].abs().max() < 1e-9
    model.passes.clear()
    drawn = nni.KernelShap(model, n_samples=200, seed=0)
    drawn.attribute(inputs(1), target=1)  # 200 draws over 5 features: each of the 32 coalitions, less 2, once
    assert model.passes[:2] == [1, 1] and sum(model.passes[2:]) == len(torch.unique(drawn.coalitions(5), dim=0)) - 2 == 30


def test_two_inputs_share_feature_indices():
    model = seeded(lambda: nn.Bilinear(4, 3, 2), seed=2)
    a, b = torch.rand(2, 4, dtype=torch.float64), torch.rand(2, 3, dtype=torch.float64)
    masks = (torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1]))
    for method in (nni.ShapleyValueSampling(model, n_samples=2), nni.KernelShap(model, n_samples=30)):
        maps = method.attribute((a, b), target=0, feature_mask=masks)
        assert isinstance(maps, tuple) and maps[0].shape == a.shape and maps[1].shape == b.shape
        torch.testing.assert_close(maps[0][:, 0], maps[1][:, 0])  # feature 0 lies in both inputs


def test_gradient_shap_with_one_baseline_and_no_noise_is_efficient_for_a_linear_model():
    model = seeded(lambda: nn.Linear(5, 2), seed=1)
    x = inputs()
    maps, delta = nni.GradientShap(model, n_samples=4).attribute(x, target=0, baselines=0.2, return_convergence_delta=True)
    torch.testing.assert_close(maps, model.weight[0].detach() * (x - 0.2))
    torch.testing.assert_close(delta, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_gradient_shap_seed_and_chunking():
    model, x = dense(), inputs()
    distribution = torch.rand(4, 5, dtype=torch.float64)
    method = nni.GradientShap(model, n_samples=5, stdevs=0.1, seed=3)
    maps = method.attribute(x, target=1, baselines=distribution)
    torch.testing.assert_close(method.attribute(x, target=1, baselines=distribution, internal_batch_size=2), maps)
    assert not torch.allclose(nni.GradientShap(model, n_samples=5, stdevs=0.1, seed=4).attribute(x, target=1, baselines=distribution), maps)


def test_errors_name_the_problem():
    model, x = dense(), inputs()
    with pytest.raises(TypeError, match="integer tensor"):
        nni.FeatureAblation(model).attribute(x, target=0, feature_mask=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="does not broadcast"):
        nni.FeatureAblation(model).attribute(x, target=0, feature_mask=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="negative"):
        nni.FeatureAblation(model).attribute(x, target=0, feature_mask=torch.tensor([0, 1, -1, 2, 3]))
    with pytest.raises(ValueError, match="ordering"):
        nni.ShapleyValueSampling(model).attribute(x, target=0, permutations=torch.tensor([[0, 0, 1, 2, 3]]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        nni.KernelShap(model).attribute(x, target=0, coalitions=torch.full((3, 5), 2))
    with pytest.raises(ValueError, match="n_samples must be >= 3"):
        nni.KernelShap(model, n_samples=2)
    with pytest.raises(ValueError, match="no distribution"):
        nni.GradientShap(model).attribute(x, target=0, baselines=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="non-negative"):
        nni.GradientShap(model, stdevs=-1.0)
