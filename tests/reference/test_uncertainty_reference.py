"""Uncertainty functions against independent references.

- MC dropout and the MC-dropout attributions (approach 1, Algorithm 1, multi-pass) on a tiny MLP,
  against the networks written out by hand: pass ``k`` keeps the units its documented seed draws,
  logits and gradients are matrix products, counts and sums are plain loops.
- ECE against a direct NumPy computation, the fitted temperature against SciPy's scalar minimiser.
- The evidential loss against a hand computation, its KL term against torch.distributions.
- softmax_attribution with every registered method, plain and inside SmoothGrad, against the same
  method built on an explicit module: the softmax probabilities, or the contracted scores with
  weights from autograd Jacobians and adaptive quadrature; Saliency against the probability's gradient.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import quad_vec
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
    softmax_attribution,
)
from nn_interpretability.models.losses import _kl_to_uniform_dirichlet
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


# -- softmax_attribution over every registered method ------------------------------------------------

TARGET = [1, 2]
#: Constructor arguments a method cannot do without on :func:`gap_net` (layers, as modules so that they
#: are found in a wrapper of the model too; ranges; a segmentation for 8 × 8 images); the noise-tunnel
#: family keeps its noise, with few samples.
BUILD = {
    "cam": lambda model: {"feature_layer": model[4], "fc_layer": model[7]},
    "grad-cam": lambda model: {"layer": model[4]},
    "guided-grad-cam": lambda model: {"layer": model[4]},
    **{
        name: (lambda model: {"layer": model[4]})
        for name in (
            "grad-cam-plus-plus", "xgrad-cam", "hires-cam", "layer-cam", "eigen-cam", "score-cam", "ablation-cam",
            "layer-activation", "layer-gradient-x-activation", "layer-integrated-gradients", "layer-conductance",
            "internal-influence", "neuron-gradient", "neuron-integrated-gradients", "neuron-conductance",
        )
    },
    "deep-taylor": lambda model: {"low": 0.0, "high": 1.0},
    "lime": lambda model: {"segmentation": "grid", "cell_size": 4, "n_samples": 40},
    "smoothgrad": lambda model: {"nt_samples": 3},
    "smoothgrad-sq": lambda model: {"nt_samples": 3},
    "vargrad": lambda model: {"nt_samples": 3},
}
CALL = {
    "occlusion": {"sliding_window_shapes": (1, 4, 4), "strides": 2},
    # The sum of the layer's units, since a single ReLU unit can be dead on both images.
    **{
        name: {"neuron_selector": lambda value: value.flatten(1).sum(1)}
        for name in ("neuron-gradient", "neuron-integrated-gradients", "neuron-conductance")
    },
}
#: Methods whose probability map is undefined: softmax_attribution must say so.
UNDEFINED = {"cam": "CAM .* undefined", "attention-rollout": "attention rollout explains no score"}
#: Methods whose backward is linear in the output's gradient (or that do not backpropagate): without
#: baselines their map of the contracted scores is their map of the probability itself.
OF_THE_PROBABILITY = {
    "saliency", "input-x-gradient", "simple-taylor", "guided-backprop", "deconvolution", "grad-cam",
    "guided-grad-cam", "occlusion", "lime", "xgrad-cam", "hires-cam", "layer-gradient-x-activation",
}


def gap_net() -> nn.Module:
    """conv → ReLU → max-pool → conv → ReLU → global average pooling → linear (float64), logits sharpened.

    The one architecture every registered method runs on (CAM needs the pooling right before the last
    layer); the sharpened logits put the softmax far from linear between the baseline and the input.
    """
    model = seeded(
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
        ),
        seed=7,
    )
    with torch.no_grad():
        model[-1].weight.mul_(20.0)
    return model


def _images():
    return torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


class Probabilities(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.softmax(self.model(x), dim=1)


class Contracted(nn.Module):
    """``Σ_j w_ij z_j(x)`` with fixed weights per sample; row ``r`` of stacked copies is sample ``r mod N``."""

    def __init__(self, model, weights):
        super().__init__()
        self.model, self.weights = model, weights

    def forward(self, x):
        z = self.model(x)
        return (z * self.weights.repeat(z.shape[0] // self.weights.shape[0], 1)).sum(1, keepdim=True)


def _probability_jacobian(z: torch.Tensor, c: int) -> torch.Tensor:
    """``∂p_c/∂z`` at the logits ``z`` ``(C,)``, by autograd."""
    return torch.autograd.functional.jacobian(lambda logits: torch.softmax(logits, 0)[c], z)


def _weights(model, x, baselines) -> torch.Tensor:
    """The contraction of the probability's change: the Jacobian at ``x``, or its mean on the logits' path."""
    with torch.no_grad():
        z = model(x)
        z0 = None if baselines is None else model(torch.full_like(x, baselines))
    rows = []
    for i, c in enumerate(TARGET):
        if z0 is None:
            rows.append(_probability_jacobian(z[i], c))
        else:
            path = lambda a: _probability_jacobian(z0[i] + a * (z[i] - z0[i]), c).numpy()  # noqa: E731
            rows.append(torch.from_numpy(quad_vec(path, 0.0, 1.0, epsabs=1e-14, epsrel=1e-12)[0]))
    return torch.stack(rows)


def _build(name, model, wrapped, network=None):
    """Method ``name`` on ``model``; ``network`` is the plain network inside it, whose layers are named."""
    method = nni.get_method(name, model, **BUILD.get(name, lambda _: {})(model if network is None else network))
    return nni.SmoothGrad(method, stdevs=0.0, nt_samples=1) if wrapped else method


def _close(actual, expected):
    scale = float(expected.abs().max())
    assert scale > 0, "the reference map is zero: the comparison would show nothing"
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-9 * scale)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "in-smoothgrad"])
@pytest.mark.parametrize("baselines", [None, 0.1], ids=["no-baselines", "constant-baselines"])
@pytest.mark.parametrize("name", nni.available_methods())
def test_softmax_attribution_explains_the_probability_with_every_method(name, baselines, wrapped):
    # Each map of the probability against the same method built on an explicit module: the softmax
    # probabilities for methods that do not backpropagate, else the contracted scores Σ_j w_j z_j whose
    # weights are computed here independently (autograd Jacobians, adaptive quadrature on the path).
    model, x = gap_net(), _images()
    method = _build(name, model, wrapped)
    call = {**CALL.get(name, {}), **({} if baselines is None else {"baselines": baselines})}
    if name in UNDEFINED:
        with pytest.raises(TypeError, match=UNDEFINED[name]):
            softmax_attribution(method, x, target=TARGET, **call)
        return
    if baselines is not None and not method.takes_baselines:
        with pytest.raises(TypeError, match="takes no baselines"):
            softmax_attribution(method, x, target=TARGET, **call)
        return
    maps = softmax_attribution(method, x, target=TARGET, **call)
    assert maps.shape[0] == len(x)  # the input's shape, or the layer's for layer methods: the references check it
    if method.needs_gradients:
        reference = _build(name, Contracted(model, _weights(model, x, baselines)), wrapped, model)
        _close(maps, reference.attribute(x, target=0, **call))
    if name in OF_THE_PROBABILITY and baselines is None or not method.needs_gradients:
        _close(maps, _build(name, Probabilities(model), wrapped, model).attribute(x, target=TARGET, **call))
    if name == "saliency":
        inputs = x.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(torch.softmax(model(inputs), 1)[[0, 1], TARGET].sum(), inputs)
        _close(maps, gradient)


def test_softmax_attribution_with_baselines_sums_to_the_change_of_the_probability():
    model, x = gap_net(), _images()
    with torch.no_grad():
        p, p0 = torch.softmax(model(x), 1), torch.softmax(model(torch.zeros_like(x)), 1)
    change = p[[0, 1], TARGET] - p0[[0, 1], TARGET]
    for method in (nni.DeepLift(model), nni.SmoothGrad(nni.DeepLift(model), stdevs=0.0, nt_samples=1)):
        maps = softmax_attribution(method, x, target=TARGET, baselines=0.0)
        torch.testing.assert_close(maps.flatten(1).sum(1), change)
