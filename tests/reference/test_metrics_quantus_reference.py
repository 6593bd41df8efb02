"""The evaluation metrics against Quantus 0.6 on the same model, inputs, maps and settings.

Quantus runs its model on ``torch.Tensor(x)`` (float32), so the inputs (and every perturbed input) are
float32 values held in float64: both libraries then evaluate the float64 model on the same numbers.
Random draws are shared by handing Quantus a perturbation function that returns ours, or by drawing
its NumPy numbers first and passing them to ours. Where we deliberately differ, the test shows both.
"""
import copy

import numpy as np
import pytest
import torch
from torch import nn

quantus = pytest.importorskip("quantus")

import nn_interpretability as nni
from nn_interpretability.evaluation import (
    aopc,
    complexity,
    deletion_insertion,
    efficient_mprt,
    faithfulness_correlation,
    histogram_entropy,
    local_lipschitz_estimate,
    max_sensitivity,
    pixel_flipping,
    random_logit,
    region_perturbation,
    road,
    smooth_mprt,
    sparseness,
)
from toy_models import mnist_cnn

N = 5


class Float64Inputs(nn.Module):
    """The float64 model on Quantus's float32 inputs."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.eval()

    def forward(self, x):
        return self.inner(x.double())


@pytest.fixture(scope="module")
def setup():
    model = mnist_cnn(0)
    x = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)).double()  # float32 values
    maps = torch.randn(N, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # no ties
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, maps, y


@pytest.fixture(scope="module")
def trained():
    """The zoo's MNIST CNN in float64 on real digits (a random model's prediction never flips in ROAD)."""
    model = copy.deepcopy(nni.load_model("mnist_cnn", device="cpu")).double().eval()
    images, _ = nni.data.load_mnist("test")
    x = images[::100][:N].double()
    maps = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, maps, y


def _np(t):
    return t.detach().cpu().numpy()


def _saliency_explain(model, inputs, targets, **kwargs):
    """Quantus's explain_func: our Saliency on the float64 model."""
    inner = model.inner if isinstance(model, Float64Inputs) else model
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float64)
    return _np(nni.Saliency(inner).attribute(x, target=torch.as_tensor(np.asarray(targets)).long()))


def _float32_steps(x, delta):
    """Perturbations whose perturbed inputs are float32 values: ``float32(x + delta) - x`` (exact in float64)."""
    return (x + delta).float().double() - x


def _replaying(perturbed_rows):
    """A Quantus perturb_func returning the given perturbed inputs ``(k, N, D)`` call after call."""
    calls = iter(perturbed_rows)

    def perturb(arr, indices=None, **kwargs):
        return next(calls)

    return perturb


def test_sparseness_equals_quantus_on_maps_shifted_by_its_epsilon(setup):
    maps = setup[2].abs()
    ours = sparseness(maps + 1e-7)
    theirs = quantus.Sparseness(normalise=False, abs=True, disable_warnings=True)(
        model=None, x_batch=_np(setup[1]), y_batch=_np(setup[3]), a_batch=_np(maps)
    )
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    # The deliberate difference: Quantus's 1e-7 makes a small-scale map look uniform; ours is scale free.
    tiny = maps * 1e-6
    quantus_tiny = quantus.Sparseness(normalise=False, abs=True, disable_warnings=True)(
        model=None, x_batch=_np(setup[1]), y_batch=_np(setup[3]), a_batch=_np(tiny)
    )
    torch.testing.assert_close(sparseness(tiny), sparseness(maps), rtol=1e-12, atol=0)
    assert (sparseness(tiny) - torch.tensor(quantus_tiny, dtype=torch.float64)).min() > 0.04


def test_complexity_equals_quantus(setup):
    maps = setup[2]
    theirs = quantus.Complexity(normalise=False, abs=True, disable_warnings=True)(
        model=None, x_batch=_np(setup[1]), y_batch=_np(setup[3]), a_batch=_np(maps)
    )
    torch.testing.assert_close(complexity(maps), torch.tensor(theirs, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_pixel_flipping_curve_equals_quantus_and_the_area_differs_by_its_convention(trained):
    model, x, maps, y = trained
    metric = quantus.PixelFlipping(features_in_step=28, perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True)
    curves = np.asarray(metric(model=Float64Inputs(model), x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu"))
    ours = deletion_insertion(model, x, maps, y, step_size=28, output="probability")
    torch.testing.assert_close(ours.scores[:, 1:], torch.tensor(curves), rtol=1e-10, atol=1e-12)
    # Quantus's default baseline "black" is each sample's minimum, not 0 (the same for images in [0, 1]
    # that reach 0): it equals ours with that baseline.
    black = quantus.PixelFlipping(features_in_step=28, normalise=False, abs=False, disable_warnings=True)
    black_curves = black(model=Float64Inputs(model), x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu")
    minimum = x.amin((1, 2, 3), keepdim=True).expand_as(x)
    ours_black = deletion_insertion(model, x, maps, y, step_size=28, baselines=minimum)
    torch.testing.assert_close(ours_black.scores[:, 1:], torch.tensor(np.asarray(black_curves, dtype=np.float64)), rtol=1e-10, atol=1e-12)
    area = pixel_flipping(model, x, maps, y, features_in_step=28)
    torch.testing.assert_close(area, ours.auc)
    # Quantus's area (return_auc_per_sample=True, which calls np.trapz, gone in NumPy 2): trapezoids over
    # the step index without the unperturbed point; it grows with the number of steps.
    quantus_auc = np.trapezoid(curves, dx=1, axis=1)
    torch.testing.assert_close(torch.tensor(quantus_auc), torch.trapezoid(ours.scores[:, 1:], dim=1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(area, torch.trapezoid(ours.scores, ours.fractions, dim=1))


def test_region_perturbation_and_aopc_equal_quantus(trained):
    model, x, maps, y = trained
    metric = quantus.RegionPerturbation(
        patch_size=4, regions_evaluation=20, perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True)
    drops = np.asarray(metric(model=Float64Inputs(model), x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu"))
    curve = region_perturbation(model, x, maps, y, patch_size=4, regions=20)
    torch.testing.assert_close(curve.scores[:, :1] - curve.scores[:, 1:], torch.tensor(drops), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(aopc(model, x, maps, y, patch_size=4, regions=20), torch.tensor(drops).sum(1) / 21)


def test_faithfulness_correlation_equals_quantus_given_its_subsets(trained):
    model, x, maps, y = trained
    runs, size = 20, 100
    np.random.seed(3)
    subsets = np.stack([np.stack([np.random.choice(784, size, replace=False) for _ in range(N)]) for _ in range(runs)], 1)
    np.random.seed(3)
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=size, perturb_baseline=0.0, normalise=False, abs=False, return_aggregate=False, disable_warnings=True
    )
    theirs = metric(model=Float64Inputs(model), x_batch=_np(x), y_batch=_np(y), a_batch=_np(maps), device="cpu")
    ours = faithfulness_correlation(model, x, maps, y, subsets=torch.as_tensor(subsets).long())
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-9, atol=1e-10)


def test_road_equals_quantus_without_noise(trained):
    model, x, maps, y = trained
    percentages = [5, 20, 40, 60, 80, 95]
    metric = quantus.ROAD(
        percentages=percentages, normalise=False, abs=False, perturb_func_kwargs={"noise": 0.0}, disable_warnings=True
    )
    theirs = []
    for i in range(N):  # Quantus's ROAD averages over the batch; one sample per call gives its 0/1 curve
        curve = metric(model=Float64Inputs(model), x_batch=_np(x[i : i + 1]), y_batch=_np(y[i : i + 1]), a_batch=_np(maps[i : i + 1]), device="cpu")
        theirs.append(np.mean([curve[p] for p in percentages]))
    ours = road(model, x, maps, y, percentages=percentages, noise=0.0)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64))
    assert 0 < ours.min() < 1  # predictions do flip


def test_noisy_linear_imputation_equals_quantus():
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

    from nn_interpretability.evaluation import noisy_linear_imputation

    x = torch.rand(3, 2, 9, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    removed = torch.rand(3, 9, 7, generator=torch.Generator().manual_seed(1)) < 0.4
    ours = noisy_linear_imputation(x, removed, noise=0.0)
    for i in range(3):
        indices = np.flatnonzero(_np(removed[i]))
        theirs = quantus_imputation(_np(x[i]), indices, noise=0.0)
        np.testing.assert_allclose(_np(ours[i]), theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["max_sensitivity", "local_lipschitz"])
def test_robustness_equals_quantus_given_the_same_perturbations(setup, name):
    model, x, _, y = setup
    k = 4
    generator = torch.Generator().manual_seed(5)
    if name == "max_sensitivity":
        delta = _float32_steps(x, (2 * torch.rand((k, *x.shape), generator=generator, dtype=torch.float64) - 1) * 0.05)
        metric_class, ours_function, kwargs = quantus.MaxSensitivity, max_sensitivity, {}
    else:
        delta = _float32_steps(x, 0.1 * torch.randn((k, *x.shape), generator=generator, dtype=torch.float64))
        metric_class, ours_function, kwargs = quantus.LocalLipschitzEstimate, local_lipschitz_estimate, {}
    metric = metric_class(
        nr_samples=k, normalise=False, abs=False, perturb_func=_replaying(_np((x + delta).flatten(2))), disable_warnings=True, **kwargs
    )
    wrapped = Float64Inputs(model)
    a = _saliency_explain(wrapped, _np(x), _np(y))
    theirs = metric(model=wrapped, x_batch=_np(x), y_batch=_np(y), a_batch=a, explain_func=_saliency_explain, device="cpu")
    ours = ours_function(nni.Saliency(model), x, y, perturbations=delta)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-8, atol=1e-12)


def test_random_logit_equals_quantus_with_spearman_and_its_classes(setup):
    model, x, _, y = setup
    from quantus.functions.similarity_func import correlation_spearman

    seed = 4
    np.random.seed(seed)
    draws = torch.as_tensor(np.random.randint(0, 9, N))
    off = draws + (draws >= y).long()
    wrapped = Float64Inputs(model)
    metric = quantus.RandomLogit(
        num_classes=10, seed=seed, similarity_func=correlation_spearman, normalise=False, abs=False, disable_warnings=True
    )
    a = _saliency_explain(wrapped, _np(x), _np(y))
    theirs = metric(model=wrapped, x_batch=_np(x), y_batch=_np(y), a_batch=a, explain_func=_saliency_explain, device="cpu")
    ours = random_logit(nni.Saliency(model), x, y, similarity="spearman", off_target=off)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-10, atol=1e-12)


def _quantus_randomized(model, seed):
    """Quantus's fully randomised model: every module with ``reset_parameters`` reset under ``seed + 1``."""
    randomized = copy.deepcopy(model)
    for _, module in randomized.named_modules():
        if hasattr(module, "reset_parameters"):
            torch.manual_seed(seed + 1)
            module.reset_parameters()
    return randomized


def test_efficient_mprt_equals_quantus_given_its_randomised_model(setup):
    model, x, _, y = setup
    wrapped = Float64Inputs(model)
    state = torch.random.get_rng_state()
    randomized = _quantus_randomized(wrapped, 42).inner
    torch.random.set_rng_state(state)
    metric = quantus.EfficientMPRT(
        complexity_func_kwargs={"n_bins": 50}, normalise=False, abs=True, disable_warnings=True, seed=42
    )
    a = _saliency_explain(wrapped, _np(x), _np(y))
    theirs = metric(model=wrapped, x_batch=_np(x), y_batch=_np(y), a_batch=a, explain_func=_saliency_explain, device="cpu")
    torch.random.set_rng_state(state)
    ours = efficient_mprt(model, nni.Saliency, x, y, n_bins=50, randomized_model=randomized)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-10, atol=1e-12)


def test_smooth_mprt_equals_quantus_given_its_draws_and_randomised_model(setup, monkeypatch):
    model, x, _, y = setup
    samples, magnitude = 4, 0.1
    z = torch.randn((samples - 1, *x.shape), generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    draws = iter(list(_np(z)) * 2)  # the same draws for the trained and the randomised model
    monkeypatch.setattr(np.random, "randn", lambda *shape: next(draws))
    wrapped = Float64Inputs(model)
    randomized = _quantus_randomized(wrapped, 42).inner
    metric = quantus.SmoothMPRT(
        nr_samples=samples, noise_magnitude=magnitude, return_last_correlation=True, skip_layers=True,
        normalise=False, abs=True, disable_warnings=True, seed=42,
    )
    noise = torch.cat([z, torch.zeros_like(z[:1])])  # Quantus's last copy is the clean input
    smoothed = nni.SmoothGrad(nni.Saliency(model), nt_samples=samples, stdevs=magnitude).attribute(x, target=y, noise=noise)
    # SmoothMPRT smooths with quantus.explain (its "Gradient": the plain gradient), not with explain_func.
    theirs = metric(
        model=wrapped, x_batch=_np(x), y_batch=_np(y), a_batch=_np(smoothed), explain_func=_saliency_explain,
        explain_func_kwargs={"method": "Gradient"}, device="cpu",
    )
    ours = smooth_mprt(model, nni.Saliency, x, y, nt_samples=samples, stdevs=magnitude, randomized_model=randomized, noise=noise)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-10, atol=1e-12)


def test_histogram_entropy_equals_numpy_and_scipy():
    import scipy.stats

    maps = torch.randn(4, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    maps[1] = maps[1].round(decimals=1)  # values on bin borders
    maps[2] = 3.0  # a constant map
    expected = [scipy.stats.entropy(np.histogram(_np(m), bins=37)[0]) for m in maps]
    torch.testing.assert_close(histogram_entropy(maps, 37), torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)
