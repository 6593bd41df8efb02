"""Uncertainty functions against independent references.

- MC dropout and the MC-dropout attributions (approach 1, Algorithm 1, multi-pass) on a tiny MLP,
  against the networks written out by hand: pass ``k`` keeps the units its documented seed draws,
  logits and gradients are matrix products, counts and sums are plain loops.
- ECE against a direct NumPy computation, the fitted temperature against SciPy's scalar minimiser.
- The evidential loss against a hand computation, its KL term against torch.distributions.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import nn

import nn_interpretability as nni
from nn_interpretability.uncertainty import (
    MultiPassAttribution,
    TemperatureScaled,
    draw_keep_mask,
    evidential_mse_loss,
    expected_calibration_error,
    mc_dropout_class_relevance,
    mc_dropout_predict,
    mc_dropout_predicted_relevance,
)
from nn_interpretability.uncertainty.evidential import _kl_to_uniform_dirichlet
from toy_models import seeded

P = 0.4


def tiny_mlp() -> nn.Module:
    """4 inputs -> 6 ReLU units -> dropout -> 3 classes (float64)."""
    return seeded(lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(P), nn.Linear(6, 3)), seed=3)


def _inputs(n=2):
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


class HandNetwork:
    """The sub-network with mask key ``key``: its logits and the gradient of a class, in closed form."""

    def __init__(self, model, key, seed=0):
        first, _, _, last = model
        self.w1, self.b1, self.w2, self.b2 = first.weight, first.bias, last.weight, last.bias
        # The documented draw: NumPy's SeedSequence(seed, spawn_key=(dropout call, *key)) seeds a torch
        # generator, uniform float64 draws >= p are kept; kept units are scaled by 1 / (1 - p).
        state = np.random.SeedSequence(seed, spawn_key=(0, *key)).generate_state(1, np.uint64)[0]
        uniform = torch.rand(6, generator=torch.Generator().manual_seed(int(state)), dtype=torch.float64)
        self.scale = (uniform >= P).double() / (1 - P)

    def logits(self, x):
        return (self.scale * torch.relu(x @ self.w1.T + self.b1)) @ self.w2.T + self.b2

    def gradient(self, x, c):
        active = (x @ self.w1.T + self.b1 > 0).double()
        return (active * self.scale * self.w2[c]) @ self.w1


def test_the_documented_mask_draw():
    assert torch.equal(draw_keep_mask(0, 0, (7,), (6,), P), HandNetwork(tiny_mlp(), (7,)).scale > 0)


def test_mc_dropout_passes_are_the_hand_networks():
    model, x = tiny_mlp(), _inputs()
    with torch.no_grad():
        result = mc_dropout_predict(model, x, passes=20, seed=0)
        expected = torch.stack([HandNetwork(model, (k,)).logits(x) for k in range(20)])
    torch.testing.assert_close(result.logits, expected)
    mean = expected.softmax(-1).mean(0).numpy()
    entropy = -(mean * np.log(mean)).sum(1)
    expected_entropy = -(expected.softmax(-1).numpy() * expected.log_softmax(-1).numpy()).sum(2).mean(0)
    np.testing.assert_allclose(result.predictive_entropy.numpy(), entropy)
    np.testing.assert_allclose(result.mutual_information.numpy(), entropy - expected_entropy)


def test_approach_1_against_the_hand_networks():
    model, x = tiny_mlp(), _inputs()
    result = mc_dropout_predicted_relevance(nni.Saliency(model), x, passes=25)
    relevance, counts = torch.zeros(2, 3, 4, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.long)
    with torch.no_grad():
        for k in range(25):
            network = HandNetwork(model, (k,))
            for i in range(2):
                c = int(network.logits(x[i]).argmax())
                relevance[i, c] += network.gradient(x[i], c)
                counts[i, c] += 1
    torch.testing.assert_close(result.relevance, relevance)
    assert torch.equal(result.counts, counts) and counts.sum(1).tolist() == [25, 25]


@pytest.mark.parametrize("independent", [True, False])
def test_algorithm_1_against_the_hand_networks(independent):
    model, x = tiny_mlp(), _inputs()
    result = mc_dropout_class_relevance(nni.Saliency(model), x, passes=25, independent_classes=independent)
    relevance, counts = torch.zeros(2, 3, 4, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.long)
    with torch.no_grad():
        for k in range(25):
            for c in range(3):
                # Algorithm 1 as written draws a new prediction inside the class loop.
                network = HandNetwork(model, (k, c + 1) if independent else (k,))
                for i in range(2):
                    relevance[i, c] += network.gradient(x[i], c)
                    counts[i, c] += int(network.logits(x[i]).argmax() == c)
    torch.testing.assert_close(result.relevance, relevance)
    assert torch.equal(result.counts, counts)
    assert (result.maps == 25).all()
    if not independent:
        assert counts.sum(1).tolist() == [25, 25]


def test_multi_pass_against_the_hand_networks():
    model, x = tiny_mlp(), _inputs()
    mean = MultiPassAttribution(nni.InputXGradient(model), passes=15).attribute(x, target=2)
    with torch.no_grad():
        expected = torch.stack([x * HandNetwork(model, (k,)).gradient(x, 2) for k in range(15)]).mean(0)
    torch.testing.assert_close(mean, expected)


def _numpy_ece(probabilities: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        inside = (confidence > lower) & (confidence <= upper)
        if inside.any():
            gap = abs((predicted[inside] == labels[inside]).mean() - confidence[inside].mean())
            ece += inside.mean() * gap
    return ece


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_numpy(n_bins):
    generator = torch.Generator().manual_seed(n_bins)
    logits = torch.randn(500, 10, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(10, (500,), generator=generator)
    probabilities = logits.softmax(1)
    expected = _numpy_ece(probabilities.numpy(), labels.numpy(), n_bins)
    assert expected_calibration_error(probabilities, labels, n_bins) == pytest.approx(expected, rel=1e-12)


def test_fitted_temperature_matches_scipy():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(10, (400,), generator=generator)
    logits = torch.randn(400, 10, generator=generator, dtype=torch.float64)
    logits[torch.arange(400), labels] += 2.0
    logits *= 4.0  # overconfident

    def nll(log_t):
        return F.cross_entropy(logits / math.exp(log_t), labels).item()

    best = minimize_scalar(nll, bounds=(-5, 5), method="bounded", options={"xatol": 1e-10})
    scaled = TemperatureScaled(nn.Identity()).fit_logits(logits, labels)
    assert scaled.temperature == pytest.approx(math.exp(best.x), rel=1e-5)


def test_evidential_loss_by_hand():
    # e = (2, 0, 1), y = class 0: alpha = (3, 1, 2), S = 6, p = (1/2, 1/6, 1/3). Misleading alpha
    # (1, 1, 2): KL = ln Γ(4) − ln Γ(3) + (ψ(2) − ψ(4)) = ln 3 − 5/6. Half annealed at epoch 5 of 10.
    evidence = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
    error = (1 - 1 / 2) ** 2 + (1 / 6) ** 2 + (1 / 3) ** 2
    variance = (1 / 2 * 1 / 2 + 1 / 6 * 5 / 6 + 1 / 3 * 2 / 3) / 7
    expected = error + variance + 0.5 * (math.log(3) - 5 / 6)
    loss = evidential_mse_loss(evidence, torch.tensor([0]), epoch=5, annealing_epochs=10)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_kl_term_matches_torch_distributions():
    alpha = torch.rand(6, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5 + 1
    expected = torch.distributions.kl_divergence(
        torch.distributions.Dirichlet(alpha), torch.distributions.Dirichlet(torch.ones_like(alpha))
    )
    torch.testing.assert_close(_kl_to_uniform_dirichlet(alpha), expected)
