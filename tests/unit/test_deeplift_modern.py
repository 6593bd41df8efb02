"""DeepLIFT on the operations of modern networks: non-monotone activations, products of two activations
(gating, squeeze-excitation, GLU, attention), softmax, LayerNorm / GroupNorm / RMSNorm, division, and
torchvision's EfficientNet, MobileNetV3 and VisionTransformer.

Summation-to-delta must hold to rounding (relative 1e-6) for Rescale and RevealCancel; the rules are
checked against hand computations; what has no rule raises, naming it, and leaves the model as it was."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.convnext import LayerNorm2d

from nn_interpretability.attribution.deeplift import DeepLift
from test_core import _state, assert_same_state
from toy_models import seeded

MODES = ["Rescale", "RevealCancel", "LinearRevealCancel"]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _relative_delta(model, x, baselines, mode, target=1):
    """max |Σ c − Δf| / |Δf| over the batch."""
    _, delta = DeepLift.from_mode(model, mode).attribute(
        x, target=target, baselines=baselines, return_convergence_delta=True
    )
    with torch.no_grad():
        change = model(x)[:, target] - model(baselines)[:, target]
    assert change.abs().min() > 1e-3, "the test needs an output that changes"
    return (delta.abs() / change.abs()).max().item()


# -- small blocks ----------------------------------------------------------------------------------


class _NonMonotoneMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)])
        self.activations = [nn.GELU(), F.silu, nn.Hardswish(), nn.Mish()]
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        for fc, activation in zip(self.fcs, self.activations):
            x = activation(fc(x) * 2)
        return self.out(x)


class _SqueezeExcitation(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.reduce, self.expand = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h = F.silu(self.conv(x))
        scale = torch.sigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(h, 1)))))
        return self.out(F.adaptive_avg_pool2d(h * scale, 1).flatten(1))


class _GatedLinearUnits(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.glu, self.out = nn.Linear(6, 16), nn.GLU(dim=1), nn.Linear(16, 3)

    def forward(self, x):
        h = self.fc(x)
        value, gate = h.chunk(2, dim=1)
        return self.out(torch.cat([self.glu(h), value * torch.sigmoid(gate)], dim=1))


class _TransformerBlock(nn.Module):
    """Pre-norm encoder block on (N, 5, 8) tokens with a class token; attention by hand, by sdpa or by
    nn.MultiheadAttention (also with a causal mask)."""

    def __init__(self, attention: str = "by_hand"):
        super().__init__()
        dim, self.heads, self.attention = 8, 2, attention
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mha = nn.MultiheadAttention(dim, self.heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 16), nn.GELU(), nn.Linear(16, dim))
        self.head = nn.Linear(2 * dim, 3)

    def _attend(self, h):
        if self.attention == "mha":
            return self.mha(h, h, h, need_weights=False)[0]
        if self.attention == "mha_causal":  # masked scores are -inf: their exp has no change and no multiplier
            causal = torch.ones(h.shape[1], h.shape[1], dtype=torch.bool).triu(1)
            return self.mha(h, h, h, attn_mask=causal, need_weights=False)[0]
        n, tokens, dim = h.shape
        q, k, v = (t.reshape(n, tokens, self.heads, -1).transpose(1, 2) for t in self.qkv(h).chunk(3, dim=-1))
        if self.attention == "sdpa":
            mixed = F.scaled_dot_product_attention(q, k, v)
        else:
            weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads), dim=-1)
            mixed = weights @ v
        return self.proj(mixed.transpose(1, 2).reshape(n, tokens, dim))

    def forward(self, x):
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        h = h + self._attend(self.norm1(h))
        h = h + self.mlp(self.norm2(h))
        return self.head(torch.cat([h[:, 0], h[:, 1:].mean(1)], dim=1))


class _ConvNeXtBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.stem_norm = nn.Conv2d(3, 8, 2, stride=2), LayerNorm2d(8)
        self.dwconv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8, eps=1e-6)
        self.up, self.down = nn.Linear(8, 32), nn.Linear(32, 8)
        self.gamma = nn.Parameter(torch.rand(8) + 0.5)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h = self.stem_norm(self.stem(x))
        branch = self.norm(self.dwconv(h).permute(0, 2, 3, 1))
        branch = self.down(F.gelu(self.up(branch))) * self.gamma
        h = h + branch.permute(0, 3, 1, 2)
        return self.out(h.mean((2, 3)))


class _Normalisations(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.group = nn.Conv2d(3, 6, 3, padding=1), nn.GroupNorm(3, 6)
        self.fc, self.rms, self.out = nn.Linear(6 * 4, 10), nn.RMSNorm(10), nn.Linear(10, 3)
        with torch.no_grad():
            for p in (self.group.weight, self.group.bias, self.rms.weight):
                p.normal_()

    def forward(self, x):
        h = F.silu(self.group(self.conv(x)))
        return self.out(torch.tanh(self.rms(self.fc(F.avg_pool2d(h, 2).flatten(1)))))


class _SoftmaxFamily(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(6, 5), nn.Linear(15, 3)

    def forward(self, x):
        h = self.fc(x) * 2
        ratio = h / (1.5 + torch.exp(h))
        return self.out(torch.cat([h.softmax(1) + ratio, F.log_softmax(h, dim=1), F.softmin(h, dim=1)], dim=1))


BLOCKS = {
    "gelu_silu_hardswish_mish": (_NonMonotoneMLP, (6,)),
    "squeeze_excitation": (_SqueezeExcitation, (3, 6, 6)),
    "glu": (_GatedLinearUnits, (6,)),
    "transformer_by_hand": (_TransformerBlock, (4, 8)),
    "transformer_sdpa": (lambda: _TransformerBlock("sdpa"), (4, 8)),
    "transformer_mha": (lambda: _TransformerBlock("mha"), (4, 8)),
    "transformer_mha_causal": (lambda: _TransformerBlock("mha_causal"), (4, 8)),
    "convnext": (_ConvNeXtBlock, (3, 8, 8)),
    "groupnorm_rmsnorm": (_Normalisations, (3, 4, 4)),
    "softmax_log_softmax_softmin_division": (_SoftmaxFamily, (6,)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("block", BLOCKS)
def test_summation_to_delta_on_modern_blocks(block, mode):
    build, shape = BLOCKS[block]
    model = seeded(build, seed=0)
    x = torch.randn(3, *shape, generator=_generator(1), dtype=torch.float64) * 2
    baselines = torch.randn(3, *shape, generator=_generator(2), dtype=torch.float64) * 0.5
    assert _relative_delta(model, x, baselines, mode) < 1e-6
    # The plain gradient misses: the rules are what makes the sum exact.
    assert _relative_delta(model, x, baselines, "NoRule") > 1e-3


def _calibrated(name: str) -> nn.Module:
    """A torchvision network with random weights whose BatchNorm statistics are those of random images."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).double()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # the running statistics become the batch's
    with torch.no_grad():
        model.train()(torch.randn(8, 3, 64, 64, dtype=torch.float64))
    return model.eval()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["efficientnet_b0", "mobilenet_v3_small"])
def test_summation_to_delta_on_torchvision_networks_with_squeeze_excitation(name, mode):
    model = _calibrated(name)
    x = torch.randn(1, 3, 64, 64, generator=_generator(3), dtype=torch.float64)
    assert _relative_delta(model, x, torch.zeros_like(x), mode, target=3) < 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_summation_to_delta_on_a_vision_transformer(mode):
    def build():
        model = torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5
        )
        nn.init.normal_(model.heads.head.weight, std=0.2)  # torchvision starts the head at zero
        return model

    model = seeded(build, seed=0)
    x = torch.randn(2, 3, 32, 32, generator=_generator(4), dtype=torch.float64)
    baselines = torch.randn(2, 3, 32, 32, generator=_generator(5), dtype=torch.float64) * 0.1
    before = _state(model)
    assert _relative_delta(model, x, baselines, mode) < 1e-6
    assert_same_state(before, _state(model))


# -- the rules against hand computations ------------------------------------------------------------


class _Function(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def _contributions(function, x, baselines, rule, target=0):
    return DeepLift(seeded(lambda: _Function(function)), rule=rule).attribute(x, target=target, baselines=baselines)


RULES = ["rescale", "reveal_cancel"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("activation", [F.gelu, F.silu, F.hardswish, F.mish])
def test_a_non_monotone_activation_gets_its_secant(activation, rule):
    # Input and baseline straddle the dip below zero: the secant is negative where the slope at x is not.
    x = torch.tensor([[-0.6, 2.0, -2.5]], dtype=torch.float64)
    baselines = torch.tensor([[-3.0, -0.4, 0.5]], dtype=torch.float64)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    contributions = _contributions(lambda h: (activation(h) * weights).sum(1, keepdim=True), x, baselines, rule)
    secant = (activation(x) - activation(baselines)) / (x - baselines)
    torch.testing.assert_close(contributions / (x - baselines), weights * secant, rtol=1e-12, atol=1e-14)
    assert secant[0, 0] < 0


@pytest.mark.parametrize("rule", RULES)
def test_the_product_of_two_activations_splits_by_shapley(rule):
    # f = a(x) · b(x), a = 2 x0 + x1, b = tanh(x1): c0 = b̄ Δa0, c1 = b̄ Δx1 + ā Δb.
    def product(h):
        return (2 * h[:, :1] + h[:, 1:]) * torch.tanh(h[:, 1:])

    x = torch.tensor([[0.7, -1.2], [1.5, 0.4]], dtype=torch.float64)
    baselines = torch.tensor([[-0.3, 0.9], [0.2, -1.1]], dtype=torch.float64)
    a, a_ref = 2 * x[:, 0] + x[:, 1], 2 * baselines[:, 0] + baselines[:, 1]
    b, b_ref = torch.tanh(x[:, 1]), torch.tanh(baselines[:, 1])
    a_mean, b_mean = (a + a_ref) / 2, (b + b_ref) / 2
    expected = torch.stack(
        [b_mean * 2 * (x[:, 0] - baselines[:, 0]), b_mean * (x[:, 1] - baselines[:, 1]) + a_mean * (b - b_ref)], 1
    )
    torch.testing.assert_close(_contributions(product, x, baselines, rule), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rule", RULES)
def test_the_matrix_product_of_two_activations_splits_by_shapley(rule):
    # f = Σ w ∘ (A B) with A, B the input's two 2×2 halves: c_A = ΔA ∘ (W B̄ᵀ), c_B = ΔB ∘ (Āᵀ W).
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)

    def matrix_product(h):
        first, second = h[:, :4].view(-1, 2, 2), h[:, 4:].view(-1, 2, 2)
        return ((first @ second) * w).sum((1, 2))[:, None]

    x = torch.randn(2, 8, generator=_generator(6), dtype=torch.float64)
    baselines = torch.randn(2, 8, generator=_generator(7), dtype=torch.float64)
    first, second = x[:, :4].view(-1, 2, 2), x[:, 4:].view(-1, 2, 2)
    first_ref, second_ref = baselines[:, :4].view(-1, 2, 2), baselines[:, 4:].view(-1, 2, 2)
    first_mean, second_mean = (first + first_ref) / 2, (second + second_ref) / 2
    expected = torch.cat(
        [
            ((first - first_ref) * (w @ second_mean.transpose(1, 2))).flatten(1),
            ((second - second_ref) * (first_mean.transpose(1, 2) @ w)).flatten(1),
        ],
        1,
    )
    torch.testing.assert_close(_contributions(matrix_product, x, baselines, rule), expected, rtol=1e-12, atol=1e-14)


def _hand_softmax_contributions(x, baselines, c):
    """p_c = exp(log p_c), log p_c = x_c − log S, S = Σ exp(x_j) (the shift cancels in every secant):
    c_j = (Δp_c / Δlog p_c) (Δx_c [j = c] − (Δlog S / ΔS) Δexp(x_j))."""
    log_p, log_p_ref = torch.log_softmax(x, 1)[:, c], torch.log_softmax(baselines, 1)[:, c]
    total, total_ref = x.exp().sum(1), baselines.exp().sum(1)
    exp_secant = (log_p.exp() - log_p_ref.exp()) / (log_p - log_p_ref)
    log_secant = (total.log() - total_ref.log()) / (total - total_ref)
    inner = -log_secant[:, None] * (x.exp() - baselines.exp())
    inner[:, c] += (x - baselines)[:, c]
    return exp_secant[:, None] * inner


def test_softmax_is_the_exp_of_the_log_softmax():
    x = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.1, -1.0]], dtype=torch.float64)
    baselines = torch.tensor([[0.0, 0.5, -1.0], [2.0, -0.7, 0.4]], dtype=torch.float64)
    c = 2
    contributions = _contributions(lambda h: F.softmax(h, dim=1), x, baselines, "rescale", target=c)
    torch.testing.assert_close(contributions, _hand_softmax_contributions(x, baselines, c), rtol=1e-12, atol=1e-14)
    change = torch.softmax(x, 1)[:, c] - torch.softmax(baselines, 1)[:, c]
    torch.testing.assert_close(contributions.sum(1), change, rtol=1e-12, atol=1e-14)


def test_softmax_contributions_stay_at_the_scale_of_the_change_far_from_the_baseline():
    # From a zero baseline, softmax([20, 0, 10]): the product exp(x − 20) · 1/Σ had terms of ±3671 (1/Σ is
    # e^20 / 3 at the baseline) cancelling to a change of 2/3, and summation-to-delta off by 2e-8.
    x = torch.tensor([[20.0, 0.0, 10.0]], dtype=torch.float64)
    baselines = torch.zeros_like(x)
    for c in range(3):
        contributions = _contributions(lambda h: F.softmax(h, dim=1), x, baselines, "rescale", target=c)
        torch.testing.assert_close(contributions, _hand_softmax_contributions(x, baselines, c), rtol=1e-12, atol=1e-14)
        assert contributions.abs().max() < 1
        change = torch.softmax(x, 1)[0, c] - 1 / 3
        assert abs(float(contributions.sum()) - float(change)) < 1e-14


@pytest.mark.parametrize("dtype, span", [(torch.float64, "about 710"), (torch.float32, "about 89")])
@pytest.mark.parametrize("rule", RULES)
def test_a_softmax_row_beyond_exps_range_is_refused_not_nan(rule, dtype, span):
    # The shift is the row's maximum over the input and its baseline: the baseline's row here lies 1000 below
    # it, all its exponentials underflow to 0 and its log-sum-exp would be -inf, every map nan.
    x = torch.tensor([[1000.0, 0.0, 10.0]], dtype=dtype)
    model = seeded(lambda: _Function(lambda h: F.softmax(h, dim=1))).to(dtype)
    before = _state(model)
    with pytest.raises(ValueError, match=rf"torch.softmax: .* differ by more than {dtype}'s exp can span \({span}\)"):
        DeepLift(model, rule=rule).attribute(x, target=0, baselines=torch.zeros_like(x))
    assert_same_state(before, _state(model))


@pytest.mark.parametrize("rule", RULES)
def test_division_and_rms_norm_by_hand(rule):
    # a / b = a · (1/b): c_a = (1/b)‾ Δa, c_b = ā Δ(1/b). RMSNorm of one feature, x / √(x² + ε):
    # the product of x and r = (x² + ε)^(-1/2): c = r̄ Δx + x̄ Δr.
    x = torch.tensor([[0.8, 2.5], [-1.5, 0.6]], dtype=torch.float64)
    baselines = torch.tensor([[-0.4, 1.0], [0.5, 3.0]], dtype=torch.float64)
    delta = x - baselines
    got = _contributions(lambda h: h[:, :1] / h[:, 1:], x, baselines, rule)
    reciprocal, reciprocal_ref = 1 / x[:, 1], 1 / baselines[:, 1]
    dividend_mean = (x[:, 0] + baselines[:, 0]) / 2
    expected = torch.stack(
        [(reciprocal + reciprocal_ref) / 2 * delta[:, 0], dividend_mean * (reciprocal - reciprocal_ref)], 1
    )
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)

    eps = 0.25
    got = _contributions(lambda h: F.rms_norm(h[:, :1], (1,), eps=eps), x, baselines, rule)
    r, r_ref = (x[:, 0] ** 2 + eps).rsqrt(), (baselines[:, 0] ** 2 + eps).rsqrt()
    expected = (r + r_ref) / 2 * delta[:, 0] + (x[:, 0] + baselines[:, 0]) / 2 * (r - r_ref)
    torch.testing.assert_close(got[:, 0], expected, rtol=1e-12, atol=1e-14)
    assert (got[:, 1] == 0).all()


# -- what still has no rule ------------------------------------------------------------------------


def _dense(function) -> nn.Module:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x):
            return self.out(function(self.fc(x)))

    return seeded(Net)


@pytest.mark.parametrize(
    "function, error, match",
    [
        (lambda h: h * h.var(1, keepdim=True), NotImplementedError, r"no rule for Tensor\.var"),
        (lambda h: torch.einsum("bi,bi,bi->bi", h, h, h), NotImplementedError, r"two input-dependent .*torch\.einsum"),
        (lambda h: (h @ h.T) @ h, NotImplementedError, r"two input-dependent .*Tensor\.matmul"),
        (lambda h: torch.pow(h, torch.sigmoid(h)), NotImplementedError, r"torch\.pow to two input-dependent"),
        (lambda h: torch.div(h, 2 + h.exp(), rounding_mode="floor"), NotImplementedError, "divides by an input-dep"),
        (lambda h: torch.div(h, 2, rounding_mode="floor"), NotImplementedError, "divides with rounding_mode='floor'"),
        (lambda h: F.layer_norm(h, (6,), weight=1 + h[:1, :].sum(0)), NotImplementedError, "input-dependent weight"),
        (lambda h: F.softmax(h, dim=0), ValueError, "softmax over dimension 0 mixes the samples"),
    ],
    ids=[
        "var", "three_factors", "matmul_across_samples", "pow_of_two", "floor_division", "floor_by_constant",
        "adaptive_norm", "softmax_dim0",
    ],  # fmt: skip
)
@pytest.mark.parametrize("rule", RULES)
def test_what_has_no_rule_is_a_clear_error(function, error, match, rule):
    model = _dense(function)
    x = torch.randn(2, 4, generator=_generator(8), dtype=torch.float64)
    before = _state(model)
    with pytest.raises(error, match=match):
        DeepLift(model, rule=rule).attribute(x, target=0)
    assert_same_state(before, _state(model))
