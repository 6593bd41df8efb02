"""LRP on the operations of modern networks: products of activations, matrix products, softmax,
LayerNorm / GroupNorm / RMSNorm, attention (fused or by hand), layer scale and position embeddings.

Each rule is checked against its formula written out by hand, and relevance conservation on whole
bias-free networks, where the rules conserve it exactly (CP-LRP's attention, the normalisations with
``β = 0``, the uniform product rule)."""
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import Composite, Epsilon, EpsilonPlusFlat
from nn_interpretability.core.attention import unfused_attention
from test_core import _state, assert_same_state

LRP0 = dict(default=Epsilon(0.0, bias=False), stabilizer=0.0)


def _lrp0(model, attention="attnlrp"):
    return nni.LRP(model, composite=Composite(**LRP0, attention=attention))


def _double(n, *shape, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class _Product(nn.Module):
    """Two inputs, ``(a W1) * (b W2)``: the uniform rule gives each operand half of the relevance."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.u, self.v = nn.Linear(4, 3, bias=False), nn.Linear(5, 3, bias=False)

    def forward(self, a, b):
        return self.u(a) * self.v(b)


def test_a_product_of_two_activations_splits_relevance_in_half():
    model = _Product().double().eval()
    a, b = _double(3, 4), _double(3, 5, seed=1)
    (ra, rb), delta = _lrp0(model).attribute((a, b), target=1, return_convergence_delta=True)
    z = model(a, b)[:, 1]
    torch.testing.assert_close(ra.sum(1), z / 2)
    torch.testing.assert_close(rb.sum(1), z / 2)
    assert delta.abs().max() < 1e-12
    # LRP-0 through the linear layers: R_a = a ∘ W1[1] · (z/2) / (a W1)_1
    expected = a * model.u.weight[1] * (z / 2 / model.u(a)[:, 1]).unsqueeze(1)
    torch.testing.assert_close(ra, expected)


class _MatrixProduct(nn.Module):
    def forward(self, a, b):
        return (a @ b).flatten(1)


def test_a_matrix_product_follows_the_uniform_rule_by_hand():
    a, b = _double(2, 3, 4), _double(2, 4, 5, seed=1)
    w = torch.randn(15, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ra, rb = _lrp0(_MatrixProduct()).attribute((a, b), target=lambda out: out @ w)
    # R_z = w ∘ z, then R_a_ij = a_ij Σ_k b_jk R_ik / (2 z_ik) = ½ a_ij Σ_k b_jk w_ik (likewise R_b).
    w = w.view(3, 5)
    torch.testing.assert_close(ra, 0.5 * a * torch.einsum("njk,ik->nij", b, w))
    torch.testing.assert_close(rb, 0.5 * b * torch.einsum("nij,ik->njk", a, w))


@pytest.mark.parametrize("spelling", ["matmul", "operator", "bmm", "einsum"])
def test_every_spelling_of_a_matrix_product_gets_the_rule(spelling):
    products = {
        "matmul": torch.matmul,
        "operator": lambda a, b: a @ b,
        "bmm": torch.bmm,
        "einsum": lambda a, b: torch.einsum("nij,njk->nik", a, b),
    }

    class Net(nn.Module):
        def forward(self, a, b):
            return products[spelling](a, b).flatten(1)

    a, b = _double(2, 3, 4), _double(2, 4, 5, seed=1)
    ra, rb = _lrp0(Net()).attribute((a, b), target=7)
    reference_a, reference_b = _lrp0(_MatrixProduct()).attribute((a, b), target=7)
    torch.testing.assert_close(ra, reference_a)
    torch.testing.assert_close(rb, reference_b)


def test_softmax_rule_by_hand():
    class Softmax(nn.Module):
        def forward(self, x):
            return torch.softmax(x, dim=1)

    x = _double(3, 6) - 0.5
    relevance = _lrp0(Softmax()).attribute(x, target=2)
    s = torch.softmax(x, 1)
    r_out = torch.zeros_like(s)
    r_out[:, 2] = s[:, 2]
    # Achtibat et al. 2024, Proposition 3.1: R_i = x_i (R_i − s_i Σ_j R_j)
    torch.testing.assert_close(relevance, x * (r_out - s * r_out.sum(1, keepdim=True)))


def _normalized(norm: nn.Module, features: int, spatial: bool = False):
    torch.manual_seed(0)
    if spatial:
        return nn.Sequential(nn.Conv2d(2, features, 3, bias=False), norm, nn.Flatten(), nn.LazyLinear(3, bias=False))
    return nn.Sequential(nn.Linear(5, features, bias=False), norm, nn.Linear(features, 3, bias=False))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: _normalized(nn.LayerNorm(6), 6), id="layer_norm"),
        pytest.param(lambda: _normalized(nn.RMSNorm(6), 6), id="rms_norm"),
        pytest.param(lambda: _normalized(nn.GroupNorm(2, 4), 4, spatial=True), id="group_norm"),
    ],
)
def test_normalisations_conserve_relevance_with_zero_shift(build):
    model = build().double()
    spatial = isinstance(model[0], nn.Conv2d)
    x = _double(3, 2, 5, 5) if spatial else _double(3, 5)
    model(x)  # materialise the lazy layer
    norm = model[1]
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)  # γ ≠ 1; β stays 0 as initialised
    model.eval()
    _, delta = _lrp0(model).attribute(x, target=0, return_convergence_delta=True)
    assert delta.abs().max() / model(x)[:, 0].abs().min() < 1e-10


def test_layer_norm_rule_by_hand():
    torch.manual_seed(0)
    norm = nn.LayerNorm(4).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.2, 0.2)
    model = nn.Sequential(norm).eval()
    x = _double(2, 4)
    relevance = _lrp0(model).attribute(x, target=lambda out: out[:, 1] + 2 * out[:, 3])
    y = model(x)
    r_out = torch.zeros_like(y)
    r_out[:, 1], r_out[:, 3] = y[:, 1], 2 * y[:, 3]
    # Ali et al. 2022: σ a constant, J = diag(γ)/σ (I − 11ᵀ/D); R_x = x ∘ Jᵀ (R / y), β in the denominator y.
    sigma = (x.var(1, unbiased=False, keepdim=True) + norm.eps).sqrt()
    centring = torch.eye(4, dtype=torch.float64) - 1 / 4
    jacobian = norm.weight[:, None] * centring / sigma[:, :, None]  # (N, out, in)
    torch.testing.assert_close(relevance, x * torch.einsum("noi,no->ni", jacobian, r_out / y))


def _vit(bias_free: bool = False):
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5
    ).double()
    with torch.no_grad():
        model.heads.head.weight.normal_()  # torchvision initialises the head with zeros
        if bias_free:
            for name, parameter in model.named_parameters():
                if name.endswith("bias") or name.endswith(("class_token", "pos_embedding")):
                    parameter.zero_()
    return model.eval()


def test_cp_lrp_conserves_relevance_exactly_on_a_bias_free_vision_transformer():
    model, x = _vit(bias_free=True), _double(2, 3, 32, 32)
    _, delta = _lrp0(model, attention="conservative").attribute(x, target=3, return_convergence_delta=True)
    assert delta.abs().max() / model(x)[:, 3].abs().min() < 1e-10
    # AttnLRP's softmax rule leaves part of the relevance to the bias term of its Taylor expansion.
    _, delta = _lrp0(model).attribute(x, target=3, return_convergence_delta=True)
    assert delta.abs().min() > 1e-3


def test_cp_lrp_gives_no_relevance_to_queries_and_keys():
    class Attention(nn.Module):
        def forward(self, q, k, v):
            weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
            return (weights @ v).flatten(1)

    q, k, v = (_double(2, 3, 4, seed=s) for s in range(3))
    rq, rk, rv = _lrp0(Attention(), attention="conservative").attribute((q, k, v), target=5)
    assert rq.abs().max() == 0 and rk.abs().max() == 0
    torch.testing.assert_close(rv.flatten(1).sum(1), Attention()(q, k, v)[:, 5])
    rq, rk, rv = _lrp0(Attention()).attribute((q, k, v), target=5)
    assert rq.abs().max() > 0 and rk.abs().max() > 0


def test_cp_lrp_holds_attention_weights_constant_through_their_views():
    """CoaT's factorised attention ``q (softmax(k)ᵀ v)`` uses the weights transposed: still constants."""

    class FactorisedAttention(nn.Module):
        def forward(self, q, k, v):
            weights = torch.softmax(k, dim=1)
            return (q @ (weights.transpose(1, 2).contiguous() @ v)).flatten(1)

    q, k, v = (_double(2, 5, 3, seed=s) for s in range(3))
    rq, rk, rv = _lrp0(FactorisedAttention(), attention="conservative").attribute((q, k, v), target=4)
    assert rk.abs().max() == 0
    output = FactorisedAttention()(q, k, v)[:, 4]
    torch.testing.assert_close(rq.flatten(1).sum(1), output / 2)
    torch.testing.assert_close(rv.flatten(1).sum(1), output / 2)


@pytest.mark.parametrize("attention_rule", ["attnlrp", "conservative"])
def test_fused_and_hand_written_attention_give_the_same_relevance(attention_rule):
    # CP-LRP holds the softmax output of hand-written attention constant, and computes the written-out
    # kernels' queries and keys detached: the two ways must give the same relevance.
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, batch_first=True).double().eval()

    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = attention

        def forward(self, x):
            return self.attention(x, x, x, need_weights=False)[0].flatten(1)

    class ByHand(Fused):
        def heads(self, x):
            q, k, v = F.linear(x, self.attention.in_proj_weight, self.attention.in_proj_bias).chunk(3, -1)
            return (t.unflatten(-1, (2, 4)).transpose(1, 2) for t in (q, k, v))

        def forward(self, x):
            q, k, v = self.heads(x)
            weights = torch.softmax(q @ k.transpose(-2, -1) * 4**-0.5, dim=-1)
            out = (weights @ v).transpose(1, 2).flatten(2)
            return self.attention.out_proj(out).flatten(1)

    class SDPA(ByHand):
        def forward(self, x):
            out = F.scaled_dot_product_attention(*self.heads(x)).transpose(1, 2).flatten(2)
            return self.attention.out_proj(out).flatten(1)

    x = _double(2, 5, 8) - 0.5
    lrp = lambda m: nni.LRP(m, composite=EpsilonPlusFlat(attention=attention_rule)).attribute(x, target=11)  # noqa: E731
    reference = lrp(ByHand())
    torch.testing.assert_close(lrp(Fused()), reference)
    torch.testing.assert_close(lrp(SDPA()), reference)


class _RecordingEpsilon(Epsilon):
    """LRP-0 that counts the layers it is applied to in the backward pass."""

    def __init__(self):
        super().__init__(0.0, bias=False)
        self.calls = 0

    def relevance(self, layer, a, z, r):
        self.calls += 1
        return super().relevance(layer, a, z, r)


class _SeparateProjections(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.k, self.v = (nn.Linear(6, 6, bias=False) for _ in range(3))

    def forward(self, x):
        weights = torch.softmax(self.q(x) @ self.k(x).transpose(-2, -1), dim=-1)
        return (weights @ self.v(x)).flatten(1)


@pytest.mark.parametrize("attention_rule, query_and_key_rules_run", [("attnlrp", 1), ("conservative", 0)])
def test_cp_lrp_runs_no_rule_on_the_query_and_key_path(attention_rule, query_and_key_rules_run):
    model = _SeparateProjections().double().eval()
    recording = _RecordingEpsilon()
    composite = Composite({"q": recording, "k": recording}, **LRP0, attention=attention_rule)
    x = _double(2, 4, 6)
    relevance, delta = nni.LRP(model, composite=composite).attribute(x, target=7, return_convergence_delta=True)
    assert recording.calls == 2 * query_and_key_rules_run
    if attention_rule == "conservative":
        assert delta.abs().max() < 1e-12
        torch.testing.assert_close(relevance.flatten(1).sum(1), model(x)[:, 7])


def test_a_matrix_product_with_a_constant_is_a_linear_map_without_bias():
    class Mixing(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.linear = nn.Linear(5, 5, bias=False)

        def forward(self, x):
            mixing = torch.linspace(0.5, 1.5, 9, dtype=x.dtype).reshape(3, 3)  # not a parameter: a constant
            return (mixing @ self.linear(x)).flatten(1)

    model, x = Mixing().double().eval(), _double(2, 3, 5)
    relevance, delta = _lrp0(model).attribute(x, target=4, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12
    # The product's rule by hand: R_h = h ∘ Mᵀ (R / (M h)) with R the one-hot logit at output (0, 4).
    h = model.linear(x)
    z = h.new_zeros(2, 3, 5)
    z[:, 0, 4] = 1.0
    mixing = torch.linspace(0.5, 1.5, 9, dtype=x.dtype).reshape(3, 3)
    r_h = h * (mixing.T @ z)
    torch.testing.assert_close(r_h.flatten(1).sum(1), model(x)[:, 4])
    torch.testing.assert_close(relevance.flatten(1).sum(1), r_h.flatten(1).sum(1))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(
    "options",
    [{}, {"need_weights": False}, {"key_padding_mask": "padding"}, {"attn_mask": "float"}, {"average_attn_weights": False}],
    ids=["plain", "no-weights", "padding-mask", "float-mask", "per-head-weights"],
)
def test_written_out_multi_head_attention_equals_the_fused_kernel(batch_first, options):
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(16, 4, batch_first=batch_first).double().eval()
    x = torch.randn(3, 5, 16, dtype=torch.float64)  # (N, L, E) or (L, N, E)
    n, length = (3, 5) if batch_first else (5, 3)
    options = dict(options)
    if options.get("key_padding_mask") == "padding":
        options["key_padding_mask"] = torch.zeros(n, length, dtype=torch.bool).index_fill_(1, torch.tensor([length - 1]), True)
    if options.get("attn_mask") == "float":
        options["attn_mask"] = torch.randn(length, length, dtype=torch.float64)
    fused = attention(x, x, x, **options)
    for constant_weights in (False, True):  # CP-LRP's detached queries and keys project separately
        with unfused_attention(constant_weights=constant_weights):
            written_out = attention(x, x, x, **options)
        torch.testing.assert_close(written_out[0], fused[0])
        assert (written_out[1] is None) == (fused[1] is None)
        if fused[1] is not None:
            torch.testing.assert_close(written_out[1], fused[1])


@pytest.mark.parametrize("options", [{}, {"is_causal": True}, {"attn_mask": "bool"}, {"scale": 0.3}])
def test_written_out_scaled_dot_product_attention_equals_the_fused_kernel(options):
    q, k, v = (torch.randn(2, 3, 5, 8, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in range(3))
    options = dict(options)
    if options.get("attn_mask") == "bool":
        options["attn_mask"] = torch.rand(5, 5, generator=torch.Generator().manual_seed(4)) > 0.3
    for constant_weights in (False, True):
        with unfused_attention(constant_weights=constant_weights):
            written_out = F.scaled_dot_product_attention(q, k, v, **options)
        torch.testing.assert_close(written_out, F.scaled_dot_product_attention(q, k, v, **options))


def test_unsupported_attention_options_are_named():
    attention = nn.MultiheadAttention(8, 2, add_bias_kv=True).double().eval()
    x = torch.randn(4, 2, 8, dtype=torch.float64, requires_grad=True)
    with pytest.raises(NotImplementedError, match="bias_k"), unfused_attention():
        attention(x, x, x)


def _bias_free(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).double()
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith("bias"):
                parameter.zero_()
    return model.eval()


@pytest.mark.parametrize("name, size", [("efficientnet_b0", 64), ("mobilenet_v3_small", 64), ("convnext_tiny", 32), ("swin_t", 64)])
def test_gating_layer_norm_and_windowed_attention_conserve_relevance_on_torchvision_models(name, size):
    model, x = _bias_free(name), _double(1, 3, size, size)
    state = _state(model)
    with torch.no_grad():
        output = model(x)
    target = int(output.argmax())
    _, delta = _lrp0(model, attention="conservative").attribute(x, target=target, return_convergence_delta=True)
    assert float(delta.abs().max() / output[0, target].abs()) < 1e-6
    assert_same_state(state, _state(model))
    relevance = nni.LRP(model).attribute(x, target=target)  # the default composite, AttnLRP
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0


def test_quotient_of_two_activations_is_refused_by_name():
    class Ratio(nn.Module):
        def forward(self, x):
            return x / ((x * x).sum(1, keepdim=True) + 1)

    with pytest.raises(NotImplementedError, match="quotient of two activations"):
        nni.LRP(Ratio()).attribute(_double(2, 3), target=0)


def test_attention_rule_name_is_checked():
    with pytest.raises(ValueError, match="attention must be one of"):
        Composite(default=Epsilon(), attention="uniform")


def test_deep_taylor_refuses_hidden_layers_with_negative_inputs_by_name():
    model, x = _vit(), _double(2, 3, 32, 32)
    state = _state(model)
    with pytest.raises(NotImplementedError, match=r"layer 'encoder.layers.encoder_layer_0.self_attention' .* receives negative"):
        nni.DeepTaylor(model, 0.0, 1.0).attribute(x, target=0)
    assert_same_state(state, _state(model))
    relu_net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    assert torch.isfinite(nni.DeepTaylor(relu_net, 0.0, 1.0).attribute(_double(2, 5), target=0)).all()


class _Selections(nn.Module):
    """Patches by ``F.unfold``, causal attention masked by ``masked_fill`` on a ``triu`` mask, ``tril`` and
    ``gather``: operations that only select values or replace them by constants."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3 * 4 * 4, 8, bias=False)
        self.head = nn.Linear(2 * 8, 3, bias=False)

    def forward(self, x):
        h = self.embed(F.unfold(x, 4, stride=4).transpose(1, 2))  # (N, 4 patches, 8)
        future = torch.ones(4, 4, dtype=torch.bool).triu(1)
        weights = (h @ h.transpose(1, 2)).masked_fill(future, float("-inf")).softmax(-1)
        h = (weights @ h).tril()
        picked = h.gather(1, torch.tensor([0, 2]).view(1, 2, 1).expand(len(x), 2, 8))
        return self.head(picked.flatten(1))


def test_selections_and_constant_fills_pass_relevance_and_differences_exactly():
    torch.manual_seed(0)
    model, x = _Selections().double().eval(), _double(2, 3, 8, 8)
    _, delta = _lrp0(model, attention="conservative").attribute(x, target=1, return_convergence_delta=True)
    assert delta.abs().max() / model(x)[:, 1].abs().min() < 1e-10
    baselines = _double(2, 3, 8, 8, seed=1)
    _, delta = nni.DeepLift(model).attribute(x, target=1, baselines=baselines, return_convergence_delta=True)
    assert delta.abs().max() / (model(x) - model(baselines))[:, 1].abs().min() < 1e-10
