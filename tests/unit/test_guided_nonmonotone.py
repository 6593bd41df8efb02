"""Guided backpropagation and deconvolution through non-monotone activations (GELU, SiLU, Hardswish, Mish).

The documented choice: guided backpropagation gives ``f'(x) · relu(g)`` (the incoming gradient ``g``
rectified first, then multiplied by the derivative, which may be negative), deconvolution ``relu(g)``.
The references are written by hand: the forward pass layer by layer, the derivatives in closed form,
the backward pass as matrix products. Captum's GuidedBackprop and Deconvolution leave these
activations with their plain gradient; the last tests show the difference.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from captum.attr import Deconvolution as CaptumDeconvolution
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from torch import nn

import nn_interpretability as nni
from test_core import _state, assert_same_state
from toy_models import seeded


def _gelu_prime(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def _gelu_tanh_prime(x):
    c = math.sqrt(2 / math.pi)
    u = c * (x + 0.044715 * x**3)
    return 0.5 * (1 + torch.tanh(u)) + 0.5 * x * (1 - torch.tanh(u) ** 2) * c * (1 + 3 * 0.044715 * x**2)


def _silu_prime(x):
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _hardswish_prime(x):
    return torch.where(x < -3, 0.0, torch.where(x > 3, 1.0, (2 * x + 3) / 6))


def _mish_prime(x):
    softplus = torch.log1p(torch.exp(x))
    return torch.tanh(softplus) + x * (1 - torch.tanh(softplus) ** 2) * torch.sigmoid(x)


# name: (module, functional spelling, f' in closed form)
ACTIVATIONS = {
    "gelu": (nn.GELU, F.gelu, _gelu_prime),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), lambda h: F.gelu(h, approximate="tanh"), _gelu_tanh_prime),
    "silu": (nn.SiLU, F.silu, _silu_prime),
    "hardswish": (nn.Hardswish, F.hardswish, _hardswish_prime),
    "mish": (nn.Mish, F.mish, _mish_prime),
}
MIXED = ("gelu", "silu", "hardswish", "mish")


class _Net(nn.Module):
    """Linear layers with the given activations between them: (N, 4) -> (N, 3)."""

    def __init__(self, activations):
        super().__init__()
        widths = [4] + [8] * len(activations) + [3]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activations = activations  # modules or functions, in order

    def forward(self, h):
        for linear, activation in zip(self.linears, self.activations):
            h = activation(linear(h))
        return self.linears[-1](h)


def _net(names, functional=False, seed=0):
    def build():
        activations = [ACTIVATIONS[n][1] if functional else ACTIVATIONS[n][0]() for n in names]
        net = _Net(activations)
        if not functional:
            net.modules_ = nn.ModuleList(activations)  # registered, as a model's activation modules are
        with torch.no_grad():  # pre-activations over (-4, 4): the regions where f' < 0 are reached
            for linear in net.linears:
                linear.weight.mul_(3.0)
        return net

    return seeded(build, seed)


def _x(n=5, seed=1):
    return 1.5 * torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _hand(model, primes, x, target, rule):
    """The backward pass by hand: at each activation ``rule(f'(z), g)`` (one rule, or one per activation),
    then the linear layer's transpose."""
    rules = rule if isinstance(rule, list) else [rule] * len(primes)
    pre, h = [], x
    with torch.no_grad():
        for linear, activation in zip(model.linears, model.activations):
            pre.append(linear(h))
            h = activation(pre[-1])
        g = model.linears[-1].weight[target]  # (N, width)
        for linear, z, prime, rule in reversed(list(zip(model.linears, pre, primes, rules))):
            g = rule(prime(z), g) @ linear.weight
    return g


GUIDED = lambda prime, g: prime * g.clamp(min=0)  # noqa: E731  f'(x) · relu(g): the documented choice
RECTIFIED_AFTER = lambda prime, g: (prime * g).clamp(min=0)  # noqa: E731  relu(f'(x) · g): the other order
PLAIN = lambda prime, g: prime * g  # noqa: E731  the plain gradient
DECONV = lambda prime, g: g.clamp(min=0)  # noqa: E731  relu(g), whatever the input


@pytest.mark.parametrize("functional", [False, True], ids=["modules", "functional"])
@pytest.mark.parametrize("names", [MIXED, ("gelu_tanh", "mish")], ids=["gelu-silu-hardswish-mish", "gelu_tanh-mish"])
def test_guided_backprop_is_the_derivative_times_the_rectified_gradient(names, functional):
    model, x, target = _net(names, functional), _x(), torch.tensor([0, 1, 2, 0, 1])
    primes = [ACTIVATIONS[n][2] for n in names]
    before = _state(model)
    ours = nni.GuidedBackprop(model).attribute(x, target=target)
    assert_same_state(before, _state(model))
    expected = _hand(model, primes, x, target, GUIDED)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    # The test tells the orders apart: rectifying after the derivative, or not at all, differs.
    for other in (RECTIFIED_AFTER, PLAIN):
        assert (expected - _hand(model, primes, x, target, other)).abs().max() > 1e-3 * expected.abs().max()


@pytest.mark.parametrize("functional", [False, True], ids=["modules", "functional"])
def test_deconvolution_rectifies_the_gradient_at_non_monotone_activations(functional):
    model, x, target = _net(MIXED, functional), _x(), torch.tensor([2, 1, 0, 2, 1])
    primes = [ACTIVATIONS[n][2] for n in MIXED]
    expected = _hand(model, primes, x, target, DECONV)
    torch.testing.assert_close(nni.Deconvolution(model).attribute(x, target=target), expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(expected, _hand(model, primes, x, target, PLAIN))


def test_one_gelu_below_its_minimum_passes_a_negative_guided_signal():
    # GELU falls below x ~ -0.75: f'(-1.5) = -0.1275. A positive incoming gradient comes back negative
    # (f' · relu(g)); a negative one is stopped; deconvolution passes relu(g) whatever the input.
    def model(w):
        net = nn.Sequential(nn.Linear(1, 1), nn.GELU(), nn.Linear(1, 1)).double()
        with torch.no_grad():
            net[0].weight.fill_(1.0), net[0].bias.fill_(0.0), net[2].weight.fill_(w), net[2].bias.fill_(0.0)
        return net

    x, prime = torch.tensor([[-1.5]], dtype=torch.float64), float(_gelu_prime(torch.tensor(-1.5)))
    assert prime < 0
    assert nni.GuidedBackprop(model(2.0)).attribute(x, target=0).item() == pytest.approx(2.0 * prime)
    assert nni.GuidedBackprop(model(-2.0)).attribute(x, target=0).item() == 0.0
    assert nni.Saliency(model(-2.0)).attribute(x, target=0).item() == pytest.approx(-2.0 * prime)
    assert nni.Deconvolution(model(2.0)).attribute(x, target=0).item() == 2.0
    assert nni.Deconvolution(model(-2.0)).attribute(x, target=0).item() == 0.0


@pytest.mark.parametrize(
    "activation, prime",
    [
        (lambda: nn.PReLU(init=-0.5), lambda z: torch.where(z > 0, 1.0, -0.5)),  # a negative slope: not monotone
        (lambda: nn.Threshold(0.0, 1.0), lambda z: (z > 0).double()),  # value > threshold: not monotone
    ],
)
def test_guided_backprop_applies_the_same_rule_to_prelu_and_threshold_when_not_monotone(activation, prime):
    def build():
        net = _Net([activation()])
        net.modules_ = nn.ModuleList(net.activations)
        return net

    model, x, target = seeded(build), _x(), torch.tensor([0, 1, 2, 1, 0])
    expected = _hand(model, [prime], x, target, GUIDED)
    torch.testing.assert_close(nni.GuidedBackprop(model).attribute(x, target=target), expected, rtol=1e-10, atol=1e-12)


class _GeluThenAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.mha, self.out = nn.Linear(4, 6), nn.MultiheadAttention(6, 2, batch_first=True), nn.Linear(18, 3)

    def forward(self, x):
        h = F.gelu(self.inp(x.view(x.shape[0], 3, 4)))
        return self.out(self.mha(h, h, h, need_weights=False)[0].flatten(1))


class _GeluThenAttentionByHand(_GeluThenAttention):
    def forward(self, x):
        h = F.gelu(self.inp(x.view(x.shape[0], 3, 4)))
        q, k, v = (t.unflatten(-1, (2, 3)).transpose(1, 2) for t in F.linear(h, self.mha.in_proj_weight, self.mha.in_proj_bias).chunk(3, -1))
        weights = torch.softmax(q @ k.transpose(-2, -1) / 3**0.5, dim=-1)
        return self.out(self.mha.out_proj((weights @ v).transpose(1, 2).flatten(2)).flatten(1))


@pytest.mark.parametrize("method", [nni.GuidedBackprop, nni.Deconvolution])
def test_fused_attention_is_written_out_and_equals_attention_by_hand(method):
    model, x = seeded(_GeluThenAttention), torch.randn(2, 12, dtype=torch.float64)
    by_hand = _GeluThenAttentionByHand().double()
    by_hand.load_state_dict(model.state_dict())
    before = _state(model)
    torch.testing.assert_close(method(model).attribute(x, target=0), method(by_hand.eval()).attribute(x, target=0))
    assert_same_state(before, _state(model))


class _GeluThenLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.lstm, self.out = nn.Linear(4, 6), nn.LSTM(6, 6, batch_first=True), nn.Linear(18, 3)

    def forward(self, x):
        return self.out(self.lstm(F.gelu(self.inp(x.view(x.shape[0], 3, 4))))[0].flatten(1))


@pytest.mark.parametrize("method", [nni.GuidedBackprop, nni.Deconvolution])
def test_fused_kernels_and_disguised_activations_still_raise(method):
    model = seeded(_GeluThenLSTM)
    before = _state(model)
    with pytest.raises(NotImplementedError, match=rf"nn\.LSTM runs its gates .* so {method.__name__} cannot"):
        method(model).attribute(torch.randn(2, 12, dtype=torch.float64), target=0)
    assert_same_state(before, _state(model))
    with pytest.raises(NotImplementedError, match=r"torch\.clamp.*use nn\.ReLU or F\.relu"):
        method(seeded(lambda: _Net([F.gelu, lambda h: torch.clamp(h, min=0)]))).attribute(_x(), target=0)


def _relu_gelu():
    """Linear -> nn.ReLU -> Linear -> nn.GELU -> Linear: Captum modifies the ReLU module only."""
    def build():
        net = _Net([nn.ReLU(), nn.GELU()])
        net.modules_ = nn.ModuleList(net.activations)
        with torch.no_grad():
            for linear in net.linears:
                linear.weight.mul_(3.0)
        return net

    return seeded(build)


RELU_PRIME = lambda z: (z > 0).double()  # noqa: E731


def test_captum_leaves_gelu_with_its_plain_gradient():
    model, x, target = _relu_gelu(), _x(), torch.tensor([0, 1, 2, 0, 1])
    primes = [RELU_PRIME, _gelu_prime]
    theirs = CaptumGuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=target).detach()
    ours = nni.GuidedBackprop(model).attribute(x, target=target)
    torch.testing.assert_close(theirs, _hand(model, primes, x, target, [GUIDED, PLAIN]), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours, _hand(model, primes, x, target, GUIDED), rtol=1e-10, atol=1e-12)
    assert (ours - theirs).abs().max() > 1e-2 * theirs.abs().max()
    # Deconvolution: Captum rectifies at the ReLU module only, here at the GELU as well.
    theirs = CaptumDeconvolution(model).attribute(x.clone().requires_grad_(True), target=target).detach()
    ours = nni.Deconvolution(model).attribute(x, target=target)
    torch.testing.assert_close(theirs, _hand(model, primes, x, target, [DECONV, PLAIN]), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours, _hand(model, primes, x, target, DECONV), rtol=1e-10, atol=1e-12)
    assert (ours - theirs).abs().max() > 1e-2 * theirs.abs().max()
