"""LRP-0 in gradient form (``LRP._gradient_form``): the modified gradient ``g = R / value`` gives the same
relevance as the rule form, which divides and multiplies back at every operation.

Both forms run on the same model and input; the gradient form is what ``LRP`` picks for a plain
``Composite(default=Epsilon(0.0), stabilizer=0.0)``, the rule form is forced by switching the choice off.
The models carry biases, BatchNorm statistics, input shifts and activations with ``f(0) != 0``, where the
two forms could part."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import Composite, Epsilon, EpsilonPlusFlat
from nn_interpretability.models.torchvision_models import FAMILIES, family_model
from test_core import _state, assert_same_state
from toy_models import mnist_like_batch, residual_bn_net, seeded


def _both_forms(model, x, target=None, attention="attnlrp", canonizers=None, gradient_form=True):
    """Relevance in gradient form and in rule form; asserts which form the first ran in."""
    composite = Composite(default=Epsilon(0.0), stabilizer=0.0, attention=attention)
    lrp = nni.LRP(model, composite=composite, canonizers=canonizers)
    assert lrp._gradient_form()
    forms, forward = [], lrp._forward

    def spy(run, inputs, gradient_form=False):
        output, tracer = forward(run, inputs, gradient_form)
        forms.append((gradient_form, tracer))
        return output, tracer

    lrp._forward = spy
    fast = lrp.attribute(x, target=target)
    first_form, first_tracer = forms[0]
    assert first_form and first_tracer.inexact is not gradient_form  # inexact: LRP ran again in rule form
    assert len(forms) == 1 + first_tracer.inexact
    lrp._gradient_form = lambda: False
    slow = lrp.attribute(x, target=target)
    return fast, slow


def _assert_same_relevance(fast, slow, rtol=1e-9):
    fast, slow = (t if isinstance(t, tuple) else (t,) for t in (fast, slow))
    for f, s in zip(fast, slow):
        scale = s.abs().max()
        assert scale > 0
        assert float((f - s).abs().max() / scale) < rtol


class _Shifted(nn.Module):
    """An input normalisation (a constant shift and scale), sigmoid, softplus, SiLU, tanh, a standalone
    BatchNorm, GroupNorm, RMSNorm, squeeze-excitation gating, layer scale and a train-free dropout."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.group = nn.GroupNorm(2, 8)
        self.squeeze, self.excite = nn.Linear(8, 4), nn.Linear(4, 8)
        self.scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.rms = nn.RMSNorm(8)
        self.fc = nn.Linear(8 * 7 * 7, 10)
        self.dropout = nn.Dropout(0.3)

    def forward(self, x):
        h = self.conv((x - 0.1307) / 0.3081)
        h = torch.sigmoid(h) + F.softplus(h)
        h = self.bn(F.silu(self.group(h)) + h)  # a BatchNorm after an addition: not folded, Pass()
        gate = torch.sigmoid(self.excite(torch.tanh(self.squeeze(h.mean((2, 3))))))
        h = self.scale * (h * gate[:, :, None, None])
        h = F.avg_pool2d(F.hardswish(h), 4)
        h = self.rms(h.permute(0, 2, 3, 1)).flatten(1)
        return self.fc(self.dropout(F.gelu(h)))


def _shifted() -> nn.Module:
    model = seeded(_Shifted)
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.1, 0.1)
    return model.eval()


def test_input_shifts_saturating_activations_and_normalisations_give_the_rule_forms_relevance():
    x = mnist_like_batch(3)
    _assert_same_relevance(*_both_forms(_shifted(), x))
    # Black rows: zero inputs the shift makes nonzero; the rule form gives them relevance, which the gradient
    # form (R = x g) cannot, so LRP runs in rule form.
    x[:, :, :10] = 0.0
    _assert_same_relevance(*_both_forms(_shifted(), x, gradient_form=False))


@pytest.mark.parametrize("canonizers", [None, ()], ids=["folded", "unfolded"])
def test_batch_norm_folded_or_not_gives_the_rule_forms_relevance(canonizers):
    _assert_same_relevance(*_both_forms(residual_bn_net(), mnist_like_batch(2), target=[1, 7], canonizers=canonizers))


class _Attention(nn.Module):
    """Hand-written single-head attention over the tokens of two inputs, with a mean over the tokens."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 5)

    def forward(self, a, b):
        tokens = self.norm(torch.cat([a, b], dim=1))
        weights = torch.softmax(self.q(tokens) @ self.k(tokens).transpose(1, 2) / 6**0.5, dim=-1)
        return self.head((weights @ self.v(tokens) + tokens).mean(1))


def _attention_inputs():
    return tuple(torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in (1, 2))


@pytest.mark.parametrize("attention", ["attnlrp", "conservative"])
def test_attention_with_two_inputs_gives_the_rule_forms_relevance(attention):
    _assert_same_relevance(*_both_forms(seeded(_Attention), _attention_inputs(), target=2, attention=attention))


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"swin_v2"}))
def test_torchvision_families_with_biases_give_the_rule_forms_relevance(family):
    model, x = family_model(family)
    _assert_same_relevance(*_both_forms(model, x, attention="conservative"), rtol=1e-7)


def test_only_lrp_0_everywhere_runs_in_gradient_form():
    model = seeded(_Attention)
    assert nni.LRP(model, composite=Composite(default=Epsilon(0.0), stabilizer=0.0))._gradient_form()
    for composite in (
        Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0),
        Composite(default=Epsilon(1e-6), stabilizer=0.0),
        Composite(default=Epsilon(0.0), stabilizer=1e-6),
        Composite({nn.Linear: Epsilon(0.0)}, default=Epsilon(0.0), stabilizer=0.0),
        EpsilonPlusFlat(),
    ):
        assert not nni.LRP(model, composite=composite)._gradient_form()


def test_gradient_form_restores_the_model():
    model = _shifted()
    before = _state(model)
    nni.LRP(model, composite=Composite(default=Epsilon(0.0), stabilizer=0.0)).attribute(mnist_like_batch(2), target=0)
    assert_same_state(before, _state(model))


def test_a_selected_scalar_over_all_outputs_gives_the_rule_forms_relevance():
    """A callable target whose gradient is an expanded tensor (the sum of all logits)."""
    fast, slow = _both_forms(seeded(_Attention), _attention_inputs(), target=lambda out: out.sum(1))
    _assert_same_relevance(fast, slow)


class _Upsampling(nn.Module):
    """Bilinear and bicubic upsampling (each output mixes several inputs) and nearest (a copy)."""

    def __init__(self):
        super().__init__()
        self.down, self.up = nn.Conv2d(1, 4, 3, stride=2), nn.Conv2d(4, 4, 3, padding=1)
        self.nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = F.interpolate(F.gelu(self.down(x)), scale_factor=2, mode="bilinear", align_corners=False)
        h = F.interpolate(self.up(h), size=(20, 20), mode="bicubic")
        return self.fc(self.nearest(h).mean((2, 3)))


def test_upsampling_gives_the_rule_forms_relevance():
    _assert_same_relevance(*_both_forms(seeded(_Upsampling), mnist_like_batch(2)))


def test_an_activation_that_maps_zero_to_nonzero_on_the_input_runs_in_rule_form():
    """``hardtanh(x, 0.2, 1)`` on the input gives its zeros relevance, which ``R = x ∘ g`` cannot."""
    model = seeded(lambda: nn.Sequential(nn.Hardtanh(0.2, 1.0), nn.Flatten(), nn.Linear(784, 10)))
    x = mnist_like_batch(2)
    x[:, :, :5] = 0.0
    _assert_same_relevance(*_both_forms(model, x, gradient_form=False))
