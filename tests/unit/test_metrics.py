"""The per-sample evaluation metrics: properties they must satisfy, batching, determinism, errors, model state."""
import math

import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.evaluation import (
    METRICS,
    aopc,
    cascading_randomization,
    complexity,
    deletion_insertion,
    efficient_mprt,
    faithfulness_correlation,
    infidelity,
    local_lipschitz_estimate,
    max_sensitivity,
    noisy_linear_imputation,
    pixel_flipping,
    random_logit,
    randomized_copy,
    region_perturbation,
    road,
    smooth_mprt,
    sparseness,
)
from test_core import _state, assert_same_state
from toy_models import mnist_cnn, mnist_like_batch


@pytest.fixture(scope="module")
def setup():
    model = mnist_cnn(0)
    x = mnist_like_batch(4)
    maps = nni.InputXGradient(model).attribute(x)
    return model, x, maps


def test_complexity_metrics_at_their_extremes():
    d = 50
    one_hot = torch.zeros(3, d, dtype=torch.float64)
    one_hot[:, 7] = -2.0  # the absolute value counts
    uniform = torch.full((3, d), 0.3, dtype=torch.float64)
    torch.testing.assert_close(sparseness(one_hot), torch.full((3,), 1 - 1 / d, dtype=torch.float64))
    torch.testing.assert_close(sparseness(uniform), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(complexity(one_hot), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(complexity(uniform), torch.full((3,), math.log(d), dtype=torch.float64))
    zeros = torch.zeros(2, 1, 4, 4)
    assert sparseness(zeros).tolist() == [0.0, 0.0]
    torch.testing.assert_close(complexity(zeros), torch.full((2,), math.log(16)))


def test_complexity_metrics_are_scale_and_permutation_invariant():
    maps = torch.randn(5, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shuffled = maps.flatten(1)[:, torch.randperm(36, generator=torch.Generator().manual_seed(1))]
    for metric in (sparseness, complexity):
        torch.testing.assert_close(metric(maps * 1e-5), metric(maps))
        torch.testing.assert_close(metric(shuffled), metric(maps))


def test_complexity_metrics_reject_bad_maps():
    with pytest.raises(TypeError, match="tensor"):
        sparseness([[1.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        complexity(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="batch"):
        sparseness(torch.ones(3))


def test_pixel_flipping_is_the_deletion_curve(setup):
    model, x, maps = setup
    curve = deletion_insertion(model, x, maps, step_size=49)
    torch.testing.assert_close(pixel_flipping(model, x, maps, features_in_step=49), curve.auc)


def test_region_perturbation_removes_whole_patches_most_relevant_first(setup):
    model, x, maps = setup
    # A model reading one pixel: removing the patch holding it is the only change.
    probe = nn.Sequential(nn.Flatten(), nn.Linear(784, 2)).double()
    with torch.no_grad():
        probe[1].weight.zero_()
        probe[1].bias.zero_()
        probe[1].weight[0, 5 * 28 + 6] = 1.0
    relevance = torch.zeros_like(x)
    relevance[:, :, 4:8, 4:8] = 1.0  # the patch of pixel (5, 6) is the most relevant
    curve = region_perturbation(probe, x, relevance, 0, patch_size=4, regions=3, output="logit")
    assert curve.scores.shape == (4, 4)
    torch.testing.assert_close(curve.scores[:, 0], x[:, 0, 5, 6])
    torch.testing.assert_close(curve.scores[:, 1:], torch.zeros(4, 3, dtype=x.dtype))
    torch.testing.assert_close(curve.fractions, torch.arange(4, dtype=x.dtype) * 16 / 784)
    torch.testing.assert_close(aopc(probe, x, relevance, 0, patch_size=4, regions=3, output="logit"), x[:, 0, 5, 6] * 3 / 4)
    lerf = region_perturbation(probe, x, relevance, 0, patch_size=4, regions=3, order="least_relevant_first", output="logit")
    torch.testing.assert_close(lerf.scores, x[:, 0, 5, 6].unsqueeze(1).expand(4, 4))


def test_region_perturbation_errors(setup):
    model, x, maps = setup
    with pytest.raises(ValueError, match="tile"):
        region_perturbation(model, x, maps, patch_size=5)
    with pytest.raises(ValueError, match="only 49 patches"):
        aopc(model, x, maps, patch_size=4, regions=50)
    with pytest.raises(ValueError, match="images"):
        aopc(nn.Linear(6, 2).double(), torch.rand(2, 6, dtype=torch.float64), torch.rand(2, 6, dtype=torch.float64))


def test_faithfulness_correlation_of_a_linear_model_with_its_exact_map_is_one():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).double()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 1])
    maps = nni.InputXGradient(model).attribute(x, target=target)  # exact: removing S drops f by sum_S x w
    scores = faithfulness_correlation(model, x, maps, target, n_subsets=30, subset_size=16)
    torch.testing.assert_close(scores, torch.ones(4, dtype=torch.float64))
    anti = faithfulness_correlation(model, x, -maps, target, n_subsets=30, subset_size=16)
    torch.testing.assert_close(anti, -torch.ones(4, dtype=torch.float64))


def test_faithfulness_correlation_errors(setup):
    model, x, maps = setup
    with pytest.raises(ValueError, match="smaller than the 784"):
        faithfulness_correlation(model, x, maps, subset_size=784)
    with pytest.raises(ValueError, match="LongTensor"):
        faithfulness_correlation(model, x, maps, subsets=torch.zeros(4, 3, 2))
    with pytest.raises(ValueError, match="index pixels"):
        faithfulness_correlation(model, x, maps, subsets=torch.full((4, 3, 2), 900, dtype=torch.long))


def test_noisy_linear_imputation_gives_the_mean_of_neighbours_and_keeps_other_pixels():
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    removed = torch.zeros(2, 6, 6, dtype=torch.bool)
    removed[0, 2, 3] = True  # one interior pixel: the weighted mean of its 8 known neighbours
    removed[1, :, 0] = True  # a whole border column
    imputed = noisy_linear_imputation(x, removed, noise=0.0)
    weights = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], dtype=torch.float64)
    torch.testing.assert_close(imputed[0, :, 2, 3], (x[0, :, 1:4, 2:5] * weights).sum((1, 2)))
    assert torch.equal(imputed[~removed.unsqueeze(1).expand_as(x)], x[~removed.unsqueeze(1).expand_as(x)])
    # A constant image is imputed by its constant.
    flat = torch.full((1, 1, 5, 5), 0.7, dtype=torch.float64)
    torch.testing.assert_close(noisy_linear_imputation(flat, torch.rand(1, 5, 5) < 0.5, noise=0.0), flat)


def test_road_scores_and_noise(setup):
    model, x, maps = setup
    scores = road(model, x, maps, percentages=[0, 10, 50])
    assert scores.shape == (4,) and ((scores >= 0) & (scores <= 1)).all()
    assert (scores >= 1 / 3).all()  # at 0 % the prediction is the target
    torch.testing.assert_close(road(model, x, maps, percentages=[10, 50], seed=3), road(model, x, maps, percentages=[10, 50], seed=3))
    # A sample's score does not depend on its batch nor on the pass size.
    single = road(model, x[2:3], maps[2:3], percentages=[10, 30, 50], internal_batch_size=1)
    torch.testing.assert_close(single, road(model, x, maps, percentages=[10, 30, 50])[2:3])
    with pytest.raises(ValueError, match="percentages"):
        road(model, x, maps, percentages=[120])
    with pytest.raises(TypeError, match="classes"):
        road(model, x, maps, target=lambda out: out[:, 0])


def test_infidelity_chunking_and_determinism(setup):
    model, x, maps = setup
    full = infidelity(model, x, maps, n_perturb_samples=5)
    torch.testing.assert_close(infidelity(model, x, maps, n_perturb_samples=5, internal_batch_size=3), full)
    assert (full >= 0).all()
    assert not torch.equal(infidelity(model, x, maps, n_perturb_samples=5, seed=1), full)
    with pytest.raises(ValueError, match="perturbations"):
        infidelity(model, x, maps, perturbations=torch.zeros(3, 2, 1, 28, 28))


@pytest.mark.parametrize("metric", [max_sensitivity, local_lipschitz_estimate])
def test_robustness_of_a_linear_model_gradient_is_zero_and_chunking_is_invisible(setup, metric):
    linear = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).double()
    _, x, _ = setup
    scores = metric(nni.Saliency(linear), x, n_samples=4)
    assert scores.abs().max() < 1e-12  # the gradient of a linear model does not move
    model = setup[0]
    full = metric(nni.Saliency(model), x, n_samples=4)
    torch.testing.assert_close(metric(nni.Saliency(model), x, n_samples=4, internal_batch_size=3), full)
    assert (full > 0).all()


def test_max_sensitivity_is_bounded_by_lipschitz_times_radius(setup):
    model, x, _ = setup
    delta = (2 * torch.rand((6, *x.shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1) * 0.05
    explain = nni.Saliency(model)
    sensitivity = max_sensitivity(explain, x, perturbations=delta)
    lipschitz = local_lipschitz_estimate(explain, x, perturbations=delta)
    norms = explain.attribute(x).flatten(1).norm(dim=1)
    assert (sensitivity * norms <= lipschitz * delta.flatten(2).norm(dim=2).amax(0) + 1e-12).all()


def test_robustness_needs_the_target_for_a_callable(setup):
    model, x, _ = setup
    with pytest.raises(ValueError, match="callable explain needs target"):
        max_sensitivity(lambda inputs, t: nni.Saliency(model).attribute(inputs, target=t), x)
    with pytest.raises(TypeError, match="Attribution or a callable"):
        local_lipschitz_estimate("saliency", x, target=0)


def test_random_logit_draws_another_class_uniformly(setup):
    model, x, _ = setup
    explain = nni.Saliency(model)
    scores = random_logit(explain, x, similarity="spearman")
    assert scores.shape == (4,) and (scores.abs() <= 1).all()
    same = random_logit(explain, x, target=3, similarity="spearman", off_target=torch.tensor([4, 4, 4, 4]))
    torch.testing.assert_close(same, random_logit(explain, x, target=4, similarity="spearman", off_target=torch.tensor([3, 3, 3, 3])))
    with pytest.raises(ValueError, match="different from the explained class"):
        random_logit(explain, x, target=3, off_target=torch.tensor([3, 1, 1, 1]))
    ssim = random_logit(explain, x)
    assert ((ssim > -1) & (ssim <= 1)).all()
    as_callable = lambda inputs, t: explain.attribute(inputs, target=t)  # noqa: E731
    off = torch.tensor([0, 1, 2, 5])
    torch.testing.assert_close(
        random_logit(as_callable, x, 3, num_classes=10, off_target=off), random_logit(explain, x, 3, off_target=off)
    )
    with pytest.raises(ValueError, match="needs target and num_classes"):
        random_logit(as_callable, x)


def test_randomized_copy_is_the_end_of_the_cascade_and_leaves_the_model(setup):
    model, x, _ = setup
    before = _state(model)
    randomized = randomized_copy(model, seed=2)
    assert_same_state(before, _state(model))
    cascade = cascading_randomization(model, nni.Saliency, x, similarity="spearman", seed=2, return_maps=True)
    torch.testing.assert_close(nni.Saliency(randomized).attribute(x, target=cascade.target), cascade.maps[-1])
    last = smooth_mprt(model, nni.Saliency, x, nt_samples=1, stdevs=0.0, similarity="spearman", seed=2)
    torch.testing.assert_close(last, cascade.similarity["spearman"][-1])


def test_mprt_variants_against_the_unrandomised_model(setup):
    model, x, _ = setup
    before = _state(model)
    identical = smooth_mprt(model, nni.Saliency, x, nt_samples=3, randomized_model=model)
    torch.testing.assert_close(identical, torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(efficient_mprt(model, nni.Saliency, x, randomized_model=model), torch.zeros(4, dtype=torch.float64))
    assert_same_state(before, _state(model))
    rise = efficient_mprt(model, nni.Saliency, x, seed=1)
    assert rise.shape == (4,) and torch.isfinite(rise).all()


def test_every_metric_leaves_the_model_unchanged_and_is_deterministic(setup):
    model, x, maps = setup
    calls = {
        "model": lambda f: f(model, x, maps),
        "explain": lambda f: f(nni.Saliency(model), x),
        "attributions": lambda f: f(maps),
        "method_factory": lambda f: f(model, nni.Saliency, x),
    }
    light = {
        "pixel_flipping": {"features_in_step": 98},
        "aopc": {"patch_size": 7},
        "road": {"percentages": [10, 50]},
        "smooth_mprt": {"nt_samples": 2},
        "faithfulness_correlation": {"n_subsets": 10},
        "infidelity": {"n_perturb_samples": 3},
        "max_sensitivity": {"n_samples": 3},
        "local_lipschitz_estimate": {"n_samples": 3},
    }
    before = _state(model)
    for name, metric in METRICS.items():
        assert metric.better in ("higher", "lower") and metric.takes in calls
        function = metric.function
        if name in light:
            function = lambda *args, f=metric.function, kw=light[name]: f(*args, **kw)
        first, second = calls[metric.takes](function), calls[metric.takes](function)
        assert first.shape == (4,) and first.is_floating_point(), name
        torch.testing.assert_close(first, second, equal_nan=True, msg=name)
    assert_same_state(before, _state(model))


def test_score_function_calls_each_metric_the_leaderboards_way():
    model, x = mnist_cnn(), mnist_like_batch(3)
    maps = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flipping = nni.evaluation.score_function("pixel_flipping", features_in_step=98)
    expected = nni.evaluation.pixel_flipping(model, x, maps, [1, 2, 3], features_in_step=98)
    torch.testing.assert_close(flipping(model, x, maps, [1, 2, 3]), expected)
    sparseness = nni.evaluation.score_function("sparseness")
    torch.testing.assert_close(sparseness(model, x, maps, [1, 2, 3]), nni.evaluation.sparseness(maps))
    # The metrics that run the method get its factory: the same scores as the function called with the method.
    sensitivity = nni.evaluation.score_function("max_sensitivity", n_samples=2, seed=3)
    assert isinstance(sensitivity, nni.evaluation.ExplainerScore)
    expected = nni.evaluation.max_sensitivity(nni.Saliency(model), x, [1, 2, 3], n_samples=2, seed=3)
    torch.testing.assert_close(sensitivity(model, nni.Saliency, x, [1, 2, 3]), expected)
    emprt = nni.evaluation.score_function("efficient_mprt", n_bins=20)
    expected = nni.evaluation.efficient_mprt(model, nni.Saliency, x, [1, 2, 3], n_bins=20)
    torch.testing.assert_close(emprt(model, nni.Saliency, x, [1, 2, 3]), expected)
    with pytest.raises(ValueError, match="unknown metric 'gini'"):
        nni.evaluation.score_function("gini")
