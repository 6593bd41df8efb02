"""Metric reliability after MetaQuantus: resilience to minor and reactivity to disruptive perturbations."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import nn_interpretability as nni
from nn_interpretability.evaluation import metric_reliability, pointing_game, relevance_mass_accuracy


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).double().eval()


@pytest.fixture(scope="module")
def case():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(24, 1, 8, 8, generator=generator, dtype=torch.float64)
    masks = torch.zeros(24, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    inputs[:, :, 2:6, 2:6] += 1.0  # the object is bright: input-based maps find it
    targets = torch.arange(24) % 3
    return _model(), inputs, targets, masks


METHODS = {
    "saliency": lambda model, x, y: nni.Saliency(model).attribute(x, target=y),
    "input-x-gradient": lambda model, x, y: nni.InputXGradient(model).attribute(x, target=y),
    "inputs": lambda model, x, y: x.clone(),
}


def _mass(masks):
    return lambda model, x, a, y: relevance_mass_accuracy(a, masks)


def test_criteria_follow_their_definitions(case):
    model, inputs, targets, masks = case
    result = metric_reliability(model, inputs, targets, METHODS, _mass(masks), n_perturbations=2, seed=1)
    assert result.methods == tuple(METHODS)
    assert result.scores.shape == (3, 24) and result.minor_scores.shape == result.disruptive_scores.shape == (2, 3, 24)
    before, minor, disruptive = result.scores.numpy(), result.minor_scores.numpy(), result.disruptive_scores.numpy()

    def p(a, b):
        return 1.0 if np.all(a == b) else stats.wilcoxon(a, b).pvalue

    assert result.intra_consistency_minor == pytest.approx(np.mean([p(before[m], s[m]) for s in minor for m in range(3)]))
    assert result.intra_consistency_disruptive == pytest.approx(1 - np.mean([p(before[m], s[m]) for s in disruptive for m in range(3)]))
    # Ranks of the methods on every sample (0 = best), by SciPy.
    ranks = lambda s: stats.rankdata(-s, axis=-2, method="min") - 1
    assert result.inter_consistency_minor == pytest.approx(float(np.mean(ranks(minor) == ranks(before))))
    assert result.inter_consistency_disruptive == pytest.approx(float(np.mean(disruptive < before)))
    taus = [stats.kendalltau(before.mean(1), s.mean(1)).statistic for s in minor]
    assert result.ranking_tau_minor == pytest.approx(float(np.mean(taus)))
    assert result.resilience == pytest.approx((result.intra_consistency_minor + result.inter_consistency_minor) / 2)
    assert result.meta_consistency == pytest.approx((result.resilience + result.reactivity) / 2)
    assert set(result.as_dict()) >= {"resilience", "reactivity", "MC"}
    # The model-independent map ("inputs") scores the same under model perturbations.
    assert np.array_equal(minor[:, 2], np.broadcast_to(before[2], (2, 24)))


def test_minor_model_noise_keeps_the_verdict_and_randomisation_changes_it(case):
    model, inputs, targets, masks = case
    result = metric_reliability(model, inputs, targets, METHODS, _mass(masks), n_perturbations=2, minor_noise=1e-3, seed=0)
    assert result.prediction_agreement_minor > 0.9
    assert result.inter_consistency_minor == 1.0 and result.ranking_tau_minor == 1.0
    # Randomising the model changes every sample's score of the gradient maps, not of the model-free map.
    changed = (result.disruptive_scores != result.scores).double().mean((0, 2))
    assert changed[:2].min() > 0.9 and changed[2] == 0
    assert result.intra_consistency_disruptive > 0.5
    assert 0 <= result.reactivity <= 1 and 0 <= result.resilience <= 1


def test_a_metric_blind_to_everything_is_resilient_and_never_reactive(case):
    model, inputs, targets, _ = case
    blind = lambda model, x, a, y: torch.zeros(len(x))
    result = metric_reliability(model, inputs, targets, METHODS, blind, n_perturbations=2)
    assert (result.intra_consistency_minor, result.inter_consistency_minor) == (1.0, 1.0)
    assert (result.intra_consistency_disruptive, result.inter_consistency_disruptive) == (0.0, 0.0)
    assert result.meta_consistency == 0.5


def test_no_input_noise_changes_nothing_and_large_noise_is_noticed(case):
    model, inputs, targets, masks = case
    pointing = lambda model, x, a, y: pointing_game(a, masks)
    result = metric_reliability(model, inputs, targets, METHODS, pointing, perturbation="input", minor_noise=0.0,
                                disruptive_noise=3.0, n_perturbations=2)
    assert result.intra_consistency_minor == 1.0 and result.inter_consistency_minor == 1.0 and result.ranking_tau_minor == 1.0
    assert result.prediction_agreement_minor == 1.0
    assert result.intra_consistency_disruptive > 0.5  # noise of three times the range hides the object


def test_several_metrics_share_the_explanations_and_equal_separate_runs(case):
    model, inputs, targets, masks = case
    calls = []
    counting = {name: (lambda fn: lambda model, x, y: calls.append(1) or fn(model, x, y))(fn) for name, fn in METHODS.items()}
    pointing = lambda model, x, a, y: pointing_game(a, masks)
    both = metric_reliability(model, inputs, targets, counting, {"mass": _mass(masks), "pointing": pointing},
                              higher_is_better={"mass": True}, n_perturbations=1)
    assert len(calls) == 3 * 3  # three methods on the model, one minor and one disruptive copy: once for both metrics
    alone = metric_reliability(model, inputs, targets, METHODS, pointing, n_perturbations=1)
    assert torch.equal(both["pointing"].disruptive_scores, alone.disruptive_scores)
    assert both["pointing"].as_dict() == alone.as_dict()


def test_deterministic_and_the_model_is_left_unchanged(case):
    model, inputs, targets, masks = case
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = metric_reliability(model, inputs, targets, METHODS, _mass(masks), n_perturbations=1, seed=4)
    second = metric_reliability(model, inputs, targets, METHODS, _mass(masks), n_perturbations=1, seed=4)
    assert torch.equal(first.disruptive_scores, second.disruptive_scores) and torch.equal(first.minor_scores, second.minor_scores)
    assert first.seed == 4
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"perturbation": "label"}, "perturbation must be one of"),
        ({"methods": {"saliency": METHODS["saliency"]}}, "at least two methods"),
        ({"targets": torch.zeros(3, dtype=torch.long)}, "one target per input"),
        ({"metric": lambda model, x, a, y: torch.zeros(2)}, "one score per sample"),
    ],
)
def test_bad_arguments_are_refused(case, kwargs, match):
    model, inputs, targets, masks = case
    arguments = {"methods": METHODS, "metric": _mass(masks), "targets": targets} | kwargs
    with pytest.raises(ValueError, match=match):
        metric_reliability(model, inputs, arguments.pop("targets"), arguments.pop("methods"), arguments.pop("metric"), **arguments)
