"""DeepLIFT across torchvision: summation-to-delta on one random-weight model per classification family, float64.

Without biases (and class token, position embeddings) every unit of these models is zero at the zero baseline, so
every LayerNorm sees a baseline of zero variance, whose scale ``1/√ε`` is huge. The product rule's Shapley split of
the centred values times that scale then pits contributions of ``~|Δc| / (2√ε)`` against each other, compounding
from layer to layer (up to 1e42 on MaxViT), and summation-to-delta drowned in their rounding (ConvNeXt 1e-4, ViT
4e-5, Swin 5e18, MaxViT 2e30 relative); at such baselines the normalisations take the ordered split instead, as
exact. A family with an operation DeepLIFT has no rule for must raise an error naming it.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.models.torchvision_models import FAMILIES, family_model

#: Families DeepLIFT refuses, and the operation its error must name.
DEEPLIFT_REFUSES = {"swin_v2": "torch.nn.functional.normalize"}
#: Families also checked with RevealCancel (and the Linear rule, which must split Swin's windows too). The
#: families whose explained score barely moves from the zero baseline (EfficientNet 2e-14, MobileNetV3 3e-10)
#: are left out: their delta is at rounding in absolute terms but not relative to such a change.
REVEAL_CANCEL = ["resnet", "convnext", "vit", "swin"]


def _relative_delta(model, x, **options) -> float:
    with torch.no_grad():
        out = model(x)
        target = int(out.argmax())
        change = out[0, target] - model(torch.zeros_like(x))[0, target]
    contributions, delta = nni.DeepLift(model, **options).attribute(x, target=target, return_convergence_delta=True)
    assert torch.isfinite(contributions).all()
    return float(delta.abs().max() / change.abs())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rescale_sums_to_delta_or_names_the_missing_operation(family):
    model, x = family_model(family, bias_free=True)
    if family in DEEPLIFT_REFUSES:
        with pytest.raises(NotImplementedError, match=DEEPLIFT_REFUSES[family]):
            nni.DeepLift(model).attribute(x, target=0)
        return
    assert _relative_delta(model, x) < 1e-6


@pytest.mark.parametrize("linear_rule", [True, False])
@pytest.mark.parametrize("family", REVEAL_CANCEL)
def test_reveal_cancel_sums_to_delta(family, linear_rule):
    model, x = family_model(family, bias_free=True)
    assert _relative_delta(model, x, rule="reveal_cancel", linear_rule=linear_rule) < 1e-6


class _Normalised(nn.Module):
    def __init__(self, normalise):
        super().__init__()
        self.normalise = normalise

    def forward(self, x):
        return self.normalise(x)


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
def test_a_normalisation_of_a_constant_baseline_takes_the_input_scale(rule):
    # At a baseline constant over the normalised features, c' = 0: Δy_k = r Δc_k with the input's scale r, and
    # the scale's change gets nothing. For output k, input j contributes r (δ_jk − 1/N) Δx_j (centring is linear).
    x = torch.tensor([[0.3, -1.2, 2.0, 0.7], [1.5, 0.2, -0.4, 0.9]], dtype=torch.float64)
    baselines = torch.tensor([[0.5] * 4, [-2.0] * 4], dtype=torch.float64)
    eps, k = 1e-6, 2
    model = _Normalised(lambda h: F.layer_norm(h, (4,), eps=eps))
    got = nni.DeepLift(model, rule=rule).attribute(x, target=k, baselines=baselines)
    scale = (x.var(1, unbiased=False, keepdim=True) + eps).rsqrt()
    expected = scale * (torch.eye(4, dtype=x.dtype)[k] - 1 / 4) * (x - baselines)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)

    # RMSNorm at a zero baseline: only x_k contributes, r Δx_k.
    model = _Normalised(lambda h: F.rms_norm(h, (4,), eps=eps))
    got = nni.DeepLift(model, rule=rule).attribute(x, target=k, baselines=0.0)
    scale = (x.square().mean(1, keepdim=True) + eps).rsqrt()
    torch.testing.assert_close(got, scale * torch.eye(4, dtype=x.dtype)[k] * x, rtol=1e-12, atol=1e-14)


def test_contributions_through_many_normalisations_of_a_zero_baseline_stay_small():
    # Twenty bias-free LayerNorm + Linear layers from a zero baseline: the contributions stay of the size of the
    # output's change instead of growing ~1/(2√ε) times per layer.
    torch.manual_seed(0)
    layers = []
    for _ in range(20):
        layers += [nn.LayerNorm(16, bias=False), nn.Linear(16, 16, bias=False)]
    model = nn.Sequential(*layers).double().eval()
    x = torch.randn(1, 16, dtype=torch.float64)
    contributions, delta = nni.DeepLift(model).attribute(x, target=0, return_convergence_delta=True)
    with torch.no_grad():
        change = model(x)[0, 0] - model(torch.zeros_like(x))[0, 0]
    assert float(delta.abs().max() / change.abs()) < 1e-12
    assert float(contributions.abs().max()) < 1e3 * float(change.abs())
