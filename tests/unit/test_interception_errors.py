"""Methods that modify activations refuse what hides or disguises them, and apply their rule where it is defined."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lrp.rules import Epsilon
from nn_interpretability.core.activations import intercept_activations
from test_core import _state, assert_same_state
from toy_models import seeded


class _Sequence(nn.Module):
    """(N, 12) -> three steps of 6 features -> a fused layer (or an activation) -> (N, 3) scores."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.inp = nn.Linear(4, 6)
        self.lstm = nn.LSTM(6, 6, batch_first=True)
        self.gru = nn.GRU(6, 6, batch_first=True)
        self.rnn = nn.RNN(6, 6, batch_first=True, nonlinearity="relu")
        self.cell = nn.LSTMCell(6, 6)
        self.mha = nn.MultiheadAttention(6, 2, batch_first=True)
        self.out = nn.Linear(18, 3)

    def forward(self, x):
        h = self.inp(x.view(x.shape[0], 3, 4))
        if self.kind == "lstm":
            h = self.lstm(h)[0]
        elif self.kind == "gru":
            h = self.gru(h)[0]
        elif self.kind == "rnn":
            h = self.rnn(h)[0]
        elif self.kind == "lstm_cell":
            h = torch.stack([self.cell(h[:, t])[0] for t in range(3)], 1)
        elif self.kind == "mha":
            h = self.mha(h, h, h, need_weights=False)[0]
        elif self.kind == "sdpa":
            h = F.scaled_dot_product_attention(h, h, h)
        return self.out(h.flatten(1))


FUSED = {
    "lstm": r"nn\.LSTM runs its gates .*\(torch\.lstm\)",
    "gru": r"nn\.GRU runs its gates .*\(torch\.gru\)",
    "rnn": r"nn\.RNN\(nonlinearity='relu'\) runs its ReLU .*\(torch\.rnn_relu\)",
    "lstm_cell": r"nn\.LSTMCell runs its gates .*\(torch\.lstm_cell\)",
    "mha": r"nn\.MultiheadAttention runs its softmax .*\(torch\.nn\.functional\.multi_head_attention_forward\)",
    "sdpa": r"attention runs its softmax .*\(torch\.nn\.functional\.scaled_dot_product_attention\)",
}
METHODS = {
    "GuidedBackprop": nni.GuidedBackprop,
    "Deconvolution": nni.Deconvolution,
    "DeepLIFT": nni.DeepLift,
    "LRP": lambda model: nni.LRP(model, rule=Epsilon()),
}


def _x(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


# Methods that write attention out as its separate operations (core/attention.py) and explain those.
ATTENTION_WRITTEN_OUT = {"LRP", "DeepLIFT", "GuidedBackprop", "Deconvolution"}
_ATTENTION = ("mha", "sdpa")


@pytest.mark.parametrize(
    "kind, method",
    [(k, m) for k in FUSED for m in METHODS if not (k in _ATTENTION and m in ATTENTION_WRITTEN_OUT)],
)
def test_fused_kernels_are_a_clear_error(kind, method):
    model = seeded(lambda: _Sequence(kind))
    before = _state(model)
    with pytest.raises(NotImplementedError, match=f"{FUSED[kind]}, so {method} cannot modify them.*Saliency"):
        METHODS[method](model).attribute(_x(), target=0)
    assert_same_state(before, _state(model))


@pytest.mark.parametrize("method", sorted(ATTENTION_WRITTEN_OUT))
@pytest.mark.parametrize("kind", _ATTENTION)
def test_fused_attention_is_written_out_for_the_methods_that_explain_it(kind, method):
    model = seeded(lambda: _Sequence(kind))
    before = _state(model)
    maps = METHODS[method](model).attribute(_x(), target=0)
    assert maps.shape == (2, 12) and torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert_same_state(before, _state(model))


def test_non_strict_deeplift_back_propagates_the_gradient_through_fused_kernels():
    model = seeded(lambda: _Sequence("lstm"))
    contributions = nni.DeepLift(model, strict=False).attribute(_x(), target=0)
    assert contributions.shape == (2, 12) and torch.isfinite(contributions).all()


def _dense(activation) -> nn.Module:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, h):
            return self.fc2(activation(self.fc1(h)))

    return seeded(Net)


def _inputs() -> torch.Tensor:
    return torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("method", [nni.GuidedBackprop, nni.Deconvolution])
@pytest.mark.parametrize(
    "relu", [nn.Threshold(0.0, 0.0), lambda h: F.threshold(h, 0.0, 0.0), lambda h: torch.threshold(h, 0, 0)]
)
def test_a_threshold_at_zero_is_a_relu(method, relu):
    x = _inputs()
    expected = method(_dense(nn.ReLU())).attribute(x, target=1)
    torch.testing.assert_close(method(_dense(relu)).attribute(x, target=1), expected)
    assert not torch.equal(expected, nni.Saliency(_dense(nn.ReLU())).attribute(x, target=1))


def test_guided_backprop_applies_its_rule_to_a_monotone_threshold():
    model, x = _dense(nn.Threshold(0.2, -0.5)), _inputs()
    pre = model.fc1(x)
    expected = (model.fc2.weight[1].clamp(min=0) * (pre > 0.2)) @ model.fc1.weight
    torch.testing.assert_close(nni.GuidedBackprop(model).attribute(x, target=1), expected.detach())


@pytest.mark.parametrize(
    "method, activation, match",
    [
        (nni.Deconvolution, nn.Threshold(0.0, 1.0), r"rectifiers .*threshold\(0, 0\)\); the model uses threshold"),
        (nni.Deconvolution, nn.Threshold(0.5, 0.0), r"rectifiers .*threshold\(0, 0\)\); the model uses threshold"),
        (nni.GuidedBackprop, lambda h: torch.where(h > 0, h, 0), r"torch\.where.*use nn\.ReLU or F\.relu"),
        (nni.Deconvolution, lambda h: torch.where(h > 0, h, 0.0), r"torch\.where.*use nn\.ReLU or F\.relu"),
        (nni.GuidedBackprop, lambda h: h.clamp_(min=0), r"torch\.Tensor\.clamp_.*use nn\.ReLU"),
        (nni.Deconvolution, nn.Tanh(), "rectifiers.*the model uses tanh"),
        (nni.Deconvolution, nn.SELU(), "rectifiers.*the model uses selu"),
    ],
)
def test_activations_without_a_defined_rule_are_a_clear_error(method, activation, match):
    model = _dense(activation)
    before = _state(model)
    with pytest.raises(NotImplementedError, match=match):
        method(model).attribute(_inputs(), target=0)
    assert_same_state(before, _state(model))


def test_guided_backprop_on_prelu_is_the_derivative_times_the_rectified_gradient_for_either_sign():
    prelu, x = nn.PReLU(init=0.25).double(), _inputs()
    model = _dense(prelu)
    leaky = nni.GuidedBackprop(_dense(nn.LeakyReLU(0.25))).attribute(x, target=2)
    torch.testing.assert_close(nni.GuidedBackprop(model).attribute(x, target=2), leaky)
    with torch.no_grad():
        prelu.weight.fill_(-0.5)
    # Not monotone with a negative slope: f'(x) · relu(g) all the same (the rule for non-monotone activations).
    pre = model.fc1(x)
    expected = (model.fc2.weight[2].clamp(min=0) * torch.where(pre > 0, 1.0, -0.5)) @ model.fc1.weight
    torch.testing.assert_close(nni.GuidedBackprop(model).attribute(x, target=2), expected.detach())


def test_where_is_refused_only_in_strict_mode():
    h = torch.randn(5)
    with pytest.raises(NotImplementedError, match="torch.where"):
        with intercept_activations(lambda name, t, call: call(t)):
            torch.where(h > 0, h, 0.0)
    with intercept_activations(lambda name, t, call: call(t), strict=False):
        assert torch.equal(torch.where(h > 0, h, 0.0), h.relu())


def test_lrp_passes_relevance_through_every_activation():
    # With LRP-0 and no biases relevance is conserved exactly when it passes through the activation
    # unchanged; the SELU's plain gradient would scale it.
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 6, bias=False), nn.Linear(6, 3, bias=False)

        def forward(self, h):
            return self.fc2(F.selu(self.fc1(h)))

    _, delta = nni.LRP(seeded(Net), rule=Epsilon(0.0, bias=False)).attribute(
        _inputs(), target=0, return_convergence_delta=True
    )
    torch.testing.assert_close(delta, torch.zeros_like(delta))


@pytest.mark.parametrize(
    "layer",
    [nn.Threshold(0.3, -0.5), nn.Softshrink(0.4), nn.AlphaDropout(0.3).eval(), lambda h: torch.dropout(h, 0.3, False)],
)
@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
def test_deeplift_handles_the_newly_catalogued_operations(layer, rule):
    _, delta = nni.DeepLift(_dense(layer), rule=rule).attribute(_inputs(), target=0, return_convergence_delta=True)
    torch.testing.assert_close(delta, torch.zeros_like(delta))
