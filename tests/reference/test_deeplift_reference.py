"""DeepLIFT against independent references: the slow unit-by-unit implementation, Captum (Rescale),
the textbook's problem P9.4 and summation-to-delta on every architecture, resnet18 included."""
import warnings

import pytest
import torch
import torchvision
from captum.attr import DeepLift as CaptumDeepLift
from torch import nn

import nn_interpretability as nni
from deeplift_reference import deeplift_reference
from nn_interpretability.attribution.deeplift import MODES, DeepLift
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

# Modes whose contributions sum to the output difference (the gradient rule's do not).
CONSERVING = [mode for mode, (rule, _) in MODES.items() if rule != "gradient"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": lambda: nn.Softplus(beta=2.0),
    "elu": nn.ELU,
}


def _dense(activation, batch_norm: bool, seed: int) -> nn.Sequential:
    def build():
        layers = [nn.Linear(6, 8)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(8))
        layers += [ACTIVATIONS[activation](), nn.Linear(8, 7), ACTIVATIONS[activation](), nn.Linear(7, 4)]
        return nn.Sequential(*layers)

    model = seeded(build, seed)
    if batch_norm:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # some negative scales: the positive and negative parts swap there
            model[1].weight.copy_(torch.randn(8, generator=generator, dtype=torch.float64))
            model[1].running_mean.copy_(torch.randn(8, generator=generator, dtype=torch.float64) * 0.3)
            model[1].running_var.copy_(torch.rand(8, generator=generator, dtype=torch.float64) + 0.5)
    return model


def _dense_inputs(seed: int, scale: float = 2.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, generator=generator, dtype=torch.float64) * scale
    baselines = torch.randn(3, 6, generator=generator, dtype=torch.float64) * scale
    return x, baselines


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("mode", list(MODES))
def test_matches_the_slow_unit_by_unit_reference_on_dense_nets(mode, activation, batch_norm):
    model = _dense(activation, batch_norm, seed=len(activation))
    x, baselines = _dense_inputs(seed=3)
    target = [0, 2, 3]
    ours = DeepLift.from_mode(model, mode).attribute(x, target=target, baselines=baselines)
    rule, linear_rule = MODES[mode]
    slow = torch.tensor(
        [deeplift_reference(model, x[i], baselines[i], target[i], rule, linear_rule) for i in range(3)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(ours, slow, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", list(MODES))
def test_matches_the_slow_reference_through_max_pooling(mode):
    # Max-pooling after a ReLU (exact zeros, ties) and before a sigmoid; windows of 3 with stride 2 overlap.
    def build():
        return nn.Sequential(
            nn.Linear(6, 9), nn.ReLU(), nn.MaxPool1d(3, stride=2), nn.Linear(4, 6), nn.MaxPool1d(2), nn.Sigmoid(),
            nn.Linear(3, 4),
        )

    model = seeded(build, seed=7)
    x, baselines = _dense_inputs(seed=8)
    ours = DeepLift.from_mode(model, mode).attribute(x, target=1, baselines=baselines)
    rule, linear_rule = MODES[mode]
    slow = torch.tensor(
        [deeplift_reference(model, x[i], baselines[i], 1, rule, linear_rule) for i in range(3)], dtype=torch.float64
    )
    torch.testing.assert_close(ours, slow, rtol=1e-9, atol=1e-12)


def test_reveal_cancel_differs_from_rescale_and_the_linear_rule_matters_for_it():
    model = _dense("relu", batch_norm=False, seed=1)
    x, baselines = _dense_inputs(seed=5)
    maps = {mode: DeepLift.from_mode(model, mode).attribute(x, target=1, baselines=baselines) for mode in MODES}
    assert not torch.allclose(maps["LinearRevealCancel"], maps["LinearRescale"])
    assert not torch.allclose(maps["LinearRevealCancel"], maps["RevealCancel"])
    # Same totals (summation-to-delta), distributed differently.
    torch.testing.assert_close(maps["LinearRevealCancel"].sum(1), maps["Rescale"].sum(1))


def test_reveal_cancel_reveals_what_rescale_hides():
    # y = relu(x1 - x2) at x = (1, 1), baseline 0: the two differences cancel in the pre-activation, so
    # Rescale gives both inputs 0; RevealCancel gives them +1/2 and -1/2 (Δy+ = ½ relu(1) + ½ (relu(0) -
    # relu(-1))), still summing to Δy = 0.
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.ReLU(), nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].weight.fill_(1.0)
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    rescale = DeepLift(model, rule="rescale").attribute(x, target=0)
    reveal = DeepLift(model, rule="reveal_cancel").attribute(x, target=0)
    assert rescale.tolist() == [[0.0, 0.0]]
    assert reveal.tolist() == [[0.5, -0.5]]


@pytest.mark.parametrize("mode", CONSERVING)
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_summation_to_delta(arch, mode):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(3, seed=1)
    baselines = mnist_like_batch(3, seed=2) * 0.5
    target = torch.tensor([0, 4, 7])
    contributions, delta = DeepLift.from_mode(model, mode).attribute(
        x, target=target, baselines=baselines, return_convergence_delta=True
    )
    with torch.no_grad():
        change = model(x).gather(1, target[:, None]) - model(baselines).gather(1, target[:, None])
    torch.testing.assert_close(contributions.flatten(1).sum(1), change.squeeze(1), rtol=0, atol=1e-12)
    assert delta.abs().max() < 1e-12


@pytest.fixture(scope="module")
def resnet18():
    # Random weights, 64x64 input: in-place ReLU modules reused within each block, BatchNorm, residual adds.
    return seeded(lambda: torchvision.models.resnet18(weights=None), seed=0)


@pytest.mark.parametrize("mode", CONSERVING)
def test_summation_to_delta_on_resnet18(resnet18, mode):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=generator, dtype=torch.float64)
    baselines = torch.rand(2, 3, 64, 64, generator=generator, dtype=torch.float64) * 0.2
    contributions, delta = DeepLift.from_mode(resnet18, mode).attribute(
        x, target=[1, 500], baselines=baselines, return_convergence_delta=True
    )
    with torch.no_grad():
        change = resnet18(x)[[0, 1], [1, 500]] - resnet18(baselines)[[0, 1], [1, 500]]
    assert change.abs().min() > 1e-3  # the check below is not vacuous
    torch.testing.assert_close(contributions.flatten(1).sum(1), change, rtol=0, atol=1e-10)
    assert delta.abs().max() < 1e-10


def _captum(model, x, target, baselines):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns about in-place/reused modules and hooks
        return CaptumDeepLift(model).attribute(x.clone(), target=target, baselines=baselines)


def _convolutional():
    # Module activations, each used once, of every kind Captum's DeepLift handles exactly.
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ELU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * 49, 24), nn.Sigmoid(), nn.Linear(24, 16), nn.Tanh(), nn.Linear(16, 10),
    )


def _max_pooled():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))


@pytest.mark.parametrize("build", [_convolutional, _max_pooled])
@pytest.mark.parametrize("baselines", ["zero", "per_sample"])
def test_rescale_matches_captum(build, baselines):
    model = seeded(build, seed=2)
    x = mnist_like_batch(3, seed=3)
    reference = 0.0 if baselines == "zero" else mnist_like_batch(3, seed=4) * 0.5
    target = [1, 2, 3]
    ours = DeepLift(model, rule="rescale").attribute(x, target=target, baselines=reference)
    torch.testing.assert_close(ours, _captum(model, x, target, reference), rtol=1e-7, atol=1e-12)


def test_where_captum_breaks_summation_to_delta_we_do_not():
    # A ReLU followed by max-pooling (the MNIST CNN): Captum's hooks lose part of the difference there.
    model = ARCHITECTURES["mnist_cnn"](seed=2)
    x = mnist_like_batch(3, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, theirs = CaptumDeepLift(model).attribute(x.clone(), target=1, baselines=0.1, return_convergence_delta=True)
    _, ours = DeepLift(model).attribute(x, target=1, baselines=0.1, return_convergence_delta=True)
    assert theirs.abs().max() > 1e-5 and ours.abs().max() < 1e-12


@pytest.mark.parametrize(
    "p, baseline, target, expected",
    [
        ([0.0, 3.0], [0.0, 0.0], 0, [0.0, 2.5]),  # P9.4 i: c = 1 (index 0), eq. 9.50
        ([3.0, 3.0], [0.0, 3.0], 1, [2.5, 0.0]),  # P9.4 ii: c = 2 (index 1), eq. 9.51
    ],
)
@pytest.mark.parametrize("mode", CONSERVING)
def test_textbook_p9_4(mode, p, baseline, target, expected):
    # The book uses Rescale + the linear rule; every contribution into a hidden unit has one sign here,
    # so RevealCancel gives the same numbers.
    network = nni.models.xor_network()
    x = torch.tensor([p], dtype=torch.float64)
    contributions = DeepLift.from_mode(network, mode).attribute(
        x, target=target, baselines=torch.tensor(baseline, dtype=torch.float64)
    )
    torch.testing.assert_close(contributions, torch.tensor([expected], dtype=torch.float64), rtol=0, atol=1e-15)


def test_textbook_p9_4_no_rule_is_the_saliency_contribution():
    # Without rules DeepLIFT is gradient x (p - baseline): P9.1's [-1, 1] x [0, 3] for case i, and in the
    # trough of case ii the gradient -- and with it the contribution -- vanishes (the book's point).
    network = nni.models.xor_network()
    no_rule = DeepLift.from_mode(network, "NoRule")
    first = no_rule.attribute(torch.tensor([[0.0, 3.0]], dtype=torch.float64), target=0)
    second = no_rule.attribute(
        torch.tensor([[3.0, 3.0]], dtype=torch.float64), target=1, baselines=torch.tensor([0.0, 3.0]).double()
    )
    assert first.tolist() == [[0.0, 3.0]] and second.tolist() == [[0.0, 0.0]]
