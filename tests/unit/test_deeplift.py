"""DeepLift: modes, baselines, every activation form, max-pooling variants, dropout, fallbacks,
clear errors for what DeepLIFT has no rule for, and model-state restoration on those errors.

Batching (with per-sample baselines and deltas), targets, dtypes and model state of every registered
mode: ``tests/contract``."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.deeplift import MODE_NAMES, MODES, DeepLift
from nn_interpretability.models import MNISTCNN
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

RULES = ["rescale", "reveal_cancel"]


def test_baseline_forms():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    method = DeepLift(model)
    scalar = method.attribute(x, target=1, baselines=0.25)
    torch.testing.assert_close(method.attribute(x, target=1, baselines=torch.full((1, 28, 28), 0.25)), scalar)
    torch.testing.assert_close(method.attribute(x, target=1, baselines=torch.full((2, 1, 28, 28), 0.25)), scalar)
    torch.testing.assert_close(method.attribute(x, target=1, baselines=torch.full((1, 1, 28, 28), 0.25)), scalar)
    assert not torch.allclose(method.attribute(x, target=1), scalar)  # the baseline matters


@pytest.mark.parametrize("mode", list(MODES))
def test_input_equal_to_baseline_gives_zero_contributions(mode):
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    contributions, delta = DeepLift.from_mode(model, mode).attribute(
        x, target=2, baselines=x, return_convergence_delta=True
    )
    assert torch.isfinite(contributions).all() and contributions.abs().max() == 0
    assert delta.shape == (2,) and delta.abs().max() == 0


def test_linear_rule_changes_nothing_without_reveal_cancel_and_no_rule_is_gradient_times_delta():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    maps = {mode: DeepLift.from_mode(model, mode).attribute(x, target=1, baselines=0.1) for mode in MODES}
    assert torch.equal(maps["Linear"], maps["NoRule"])
    torch.testing.assert_close(maps["LinearRescale"], maps["Rescale"], rtol=0, atol=1e-15)
    torch.testing.assert_close(maps["NoRule"], nni.Saliency(model).attribute(x, target=1) * (x - 0.1))


def test_modes_names_and_registry():
    model = ARCHITECTURES["mnist_cnn"]()
    assert DeepLift.from_mode(model, "linear_reveal_cancel").mode == "LinearRevealCancel"
    assert DeepLift.from_mode(model, "no-rule").mode == "NoRule"
    method = DeepLift(model)
    assert (method.rule, method.linear_rule, method.mode) == ("rescale", True, "LinearRescale")
    assert repr(method) == "DeepLift(MNISTCNN, rule='rescale', linear_rule=True)"
    assert isinstance(nni.get_method("deeplift", model), DeepLift)
    for mode, name in MODE_NAMES.items():
        assert nni.get_method(name, model).mode == mode
    assert nni.get_method("deeplift-linear-reveal-cancel", model, strict=False).strict is False


class _OneActivation(nn.Module):
    """Linear -> activation (in the given form) -> Linear -> the same activation object again -> Linear."""

    def __init__(self, activation):
        super().__init__()
        self.first, self.second, self.out = nn.Linear(5, 7), nn.Linear(7, 6), nn.Linear(6, 3)
        self.activation = activation

    def forward(self, x):
        return self.out(self.activation(self.second(self.activation(self.first(x)))))


RELU_FORMS = {
    "nn.ReLU (reused)": nn.ReLU(),
    "nn.ReLU(inplace) (reused)": nn.ReLU(inplace=True),
    "F.relu": F.relu,
    "F.relu(inplace)": lambda h: F.relu(h, inplace=True),
    "torch.relu": torch.relu,
    "torch.relu_": torch.relu_,
    "Tensor.relu": lambda h: h.relu(),
    "Tensor.relu_": lambda h: h.relu_(),
}


@pytest.mark.parametrize("rule", RULES)
def test_every_relu_form_gives_the_same_contributions(rule):
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    maps = {}
    for form, relu in RELU_FORMS.items():
        model = seeded(lambda: _OneActivation(relu), seed=0)
        maps[form], delta = DeepLift(model, rule=rule).attribute(
            x, target=0, baselines=0.5, return_convergence_delta=True
        )
        assert delta.abs().max() < 1e-12, form
    for form, contributions in maps.items():
        torch.testing.assert_close(contributions, maps["nn.ReLU (reused)"], msg=form)


ACTIVATION_FORMS = {
    "leaky_relu": lambda h: F.leaky_relu(h, 0.1),
    "relu6": nn.ReLU6(inplace=True),
    "hardtanh": nn.Hardtanh(-0.5, 0.5),
    "sigmoid": torch.sigmoid,
    "tanh": lambda h: h.tanh(),
    "softplus": nn.Softplus(beta=3.0),
    "elu": nn.ELU(0.7),
    "gelu": nn.GELU(),
    "silu": F.silu,
    # Not routed by the shared interceptor; DeepLift catches them itself.
    "prelu": nn.PReLU(init=0.2),
    "hardswish": nn.Hardswish(),
    "hardsigmoid": F.hardsigmoid,
    "mish": nn.Mish(),
    "selu": nn.SELU(inplace=True),
    "celu": lambda h: F.celu(h, 0.5),
    "logsigmoid": nn.LogSigmoid(),
    "softsign": nn.Softsign(),
}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("activation", sorted(ACTIVATION_FORMS))
def test_summation_to_delta_for_every_activation(activation, rule):
    model = seeded(lambda: _OneActivation(ACTIVATION_FORMS[activation]), seed=1)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    contributions, delta = DeepLift(model, rule=rule).attribute(
        x, target=2, baselines=-0.5, return_convergence_delta=True
    )
    assert delta.abs().max() < 1e-12
    assert (contributions - nni.Saliency(model).attribute(x, target=2) * (x + 0.5)).abs().max() > 1e-3


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("activation", ["sigmoid", "softplus", "tanh"])
def test_tiny_differences_fall_back_to_the_derivative_not_a_constant(activation, rule):
    # With x' = x + 1e-13 a smooth activation's secant Δy/Δx keeps only three digits (Δy is a difference of
    # two nearly equal numbers); the multipliers must be the derivatives, whose chain is the gradient.
    model = seeded(lambda: _OneActivation(ACTIVATION_FORMS[activation]), seed=2)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    baselines = x + 1e-13
    contributions = DeepLift(model, rule=rule).attribute(x, target=1, baselines=baselines)
    expected = nni.Saliency(model).attribute(x, target=1) * (x - baselines)
    torch.testing.assert_close(contributions, expected, rtol=1e-7, atol=0)


def test_channelwise_prelu():
    # Three units whose pre-activations do not change (x1 - x2 with x = (1, 1), x' = 0). Rescale falls back
    # to each unit's own PReLU slope (0.1, 1 and 0.3 at pre-activations -0.5, 0.5, -1): the gradient times
    # Δx. RevealCancel reveals +1 and -1 per unit: Δy+ = 0.325, 0.8 and 0.3 (see Fig. 14's formula).
    model = nn.Sequential(nn.Linear(2, 3), nn.PReLU(3), nn.Linear(3, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]] * 3))
        model[0].bias.copy_(torch.tensor([-0.5, 0.5, -1.0]))
        model[1].weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
        model[2].weight.fill_(1.0)
    x = torch.ones(1, 2, dtype=torch.float64)
    rescale = DeepLift(model, rule="rescale").attribute(x, target=0)
    torch.testing.assert_close(rescale, torch.tensor([[1.4, -1.4]], dtype=torch.float64))
    reveal = DeepLift(model, rule="reveal_cancel").attribute(x, target=0)
    torch.testing.assert_close(reveal, torch.tensor([[1.425, -1.425]], dtype=torch.float64))
    # No difference at all: every part falls back to the per-channel derivatives, without error.
    assert DeepLift(model, rule="reveal_cancel").attribute(x, target=0, baselines=x).abs().max() == 0


@pytest.mark.parametrize("rule", RULES)
def test_tiny_differences_through_piecewise_linear_activations_keep_the_secant(rule):
    # ReLU6 keeps the secant, exact up to rounding and bounded by its slopes; the contributions still sum
    # to the output difference up to the rounding of the outputs themselves.
    model = seeded(lambda: _OneActivation(ACTIVATION_FORMS["relu6"]), seed=2)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 4
    baselines = x + 1e-13
    contributions, delta = DeepLift(model, rule=rule).attribute(
        x, target=1, baselines=baselines, return_convergence_delta=True
    )
    gradient = nni.Saliency(model).attribute(x, target=1)
    assert delta.abs().max() < 1e-14
    torch.testing.assert_close(contributions / (x - baselines), gradient, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("rule", RULES)
def test_max_pooling_forms(rule):
    class Pools(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.fc = nn.Linear(3 * 4 + 3 + 1, 4)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            overlapping = F.max_pool2d(h, 3, stride=2, padding=1)  # 14x14, windows overlap
            pooled = nn.AdaptiveMaxPool2d(2)(overlapping).flatten(1)
            builtin = torch.max_pool2d(h, 14).flatten(1)  # the builtin form, not routed as an activation
            volume = F.adaptive_max_pool3d(h.unsqueeze(1), (1, 1, 1)).flatten(1)
            return self.fc(torch.cat([pooled, builtin[:, :3], volume], 1))

    model = seeded(Pools, seed=3)
    x = mnist_like_batch(2, seed=3)
    _, delta = DeepLift(model, rule=rule).attribute(x, target=0, baselines=0.2, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12


def test_max_pooling_with_indices_is_a_clear_error():
    class Unpooling(nn.Module):
        def forward(self, x):
            pooled, indices = F.max_pool2d(x, 2, return_indices=True)
            return F.max_unpool2d(pooled, indices, 2).flatten(1)[:, :3]

    with pytest.raises(NotImplementedError, match="return_indices"):
        DeepLift(Unpooling()).attribute(mnist_like_batch(1))


@pytest.mark.parametrize("rule", RULES)
def test_linear_maps_written_as_matmul_and_subtraction(rule):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(6, 5))
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            h = torch.sigmoid(x @ self.weight.T - 0.5 * x.sum(1, keepdim=True))
            return self.fc(h - 2 * h.mean(1, keepdim=True))

    model = seeded(Custom, seed=4)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    _, delta = DeepLift(model, rule=rule).attribute(x, target=1, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12


@pytest.mark.parametrize("rule", RULES)
def test_float32_inputs(rule):
    model = MNISTCNN().eval()
    x = mnist_like_batch(2, dtype=torch.float32)
    contributions, delta = DeepLift(model, rule=rule).attribute(x, target=3, return_convergence_delta=True)
    assert contributions.dtype == torch.float32
    assert delta.abs().max() < 1e-5


@pytest.mark.parametrize("rule", RULES)
def test_dropout_in_training_mode_shares_one_mask_between_input_and_baseline(rule):
    model = seeded(lambda: MNISTCNN(dropout=0.5), seed=0)
    model.train()  # Monte Carlo dropout: the multi-pass DeepLIFT of the report's section 3.3
    before = _state(model)
    x = mnist_like_batch(2)
    torch.manual_seed(0)
    first, delta = DeepLift(model, rule=rule).attribute(x, target=1, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12  # the input and the baseline went through the same sub-network
    torch.manual_seed(1)
    second = DeepLift(model, rule=rule).attribute(x, target=1)
    assert not torch.allclose(first, second)
    assert_same_state(before, _state(model))


class _Variance(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = self.fc(x)
        return self.out(h * h.var(1, keepdim=True))


class _LocalResponseNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.norm, self.out = nn.Linear(4, 6), nn.LocalResponseNorm(2), nn.Linear(6, 3)

    def forward(self, x):
        return self.out(torch.relu(self.norm(self.fc(x)[:, :, None]).squeeze(2)))


class _Trilinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(4, 6), nn.Linear(1, 3)

    def forward(self, x):
        h = self.fc(x)
        return self.out(torch.einsum("bi,bi,bi->b", h, h, torch.sigmoid(h))[:, None])


class _Ratio(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) / (1 + x.abs().sum(1, keepdim=True))


class _ClampReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.out(self.fc(x).clamp(min=0))


@pytest.mark.parametrize(
    "build, match",
    [
        (_Variance, "Tensor.var"),
        (_LocalResponseNorm, "local_response_norm"),
        (_Trilinear, "multiplies two input-dependent tensors"),
        (_Ratio, "abs"),
        (_ClampReLU, "clamp"),
    ],
)
@pytest.mark.parametrize("rule", RULES)
def test_operations_without_a_rule_are_clear_errors(build, match, rule):
    model = seeded(build, seed=0)
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    before = _state(model)
    with pytest.raises(NotImplementedError, match=match):
        DeepLift(model, rule=rule).attribute(x, target=0)
    assert_same_state(before, _state(model))
    assert torch.equal(x.clamp(min=0), torch.relu(x))  # nothing intercepts anymore


@pytest.mark.parametrize("build", [_Variance, _LocalResponseNorm, _Trilinear])
def test_non_strict_back_propagates_their_gradient(build):
    model = seeded(build, seed=0)
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    contributions, delta = DeepLift(model, strict=False).attribute(x, target=0, return_convergence_delta=True)
    assert torch.isfinite(contributions).all() and delta.abs().max() > 1e-6  # no rule: no summation-to-delta


def test_division_by_an_input_dependent_tensor_is_named():
    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            h = self.fc(x)
            return h / h.detach().norm() + torch.div(h, 2 + h, rounding_mode="floor")

    with pytest.raises(NotImplementedError, match="divides by an input-dependent tensor"):
        DeepLift(seeded(Normalised, 0)).attribute(torch.randn(2, 4, dtype=torch.float64))


def test_samples_must_stay_along_the_first_dimension():
    class Mixing(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(torch.relu(x.reshape(-1, 8))).reshape(x.shape[0], 3)

    with pytest.raises(ValueError, match="samples along the first dimension"):
        DeepLift(seeded(Mixing, 0)).attribute(torch.randn(2, 4, dtype=torch.float64))


@pytest.mark.parametrize(
    "make, kwargs, error, match",
    [
        (lambda m: DeepLift(m, rule="revealcancel"), {}, ValueError, "unknown DeepLIFT rule"),
        (lambda m: DeepLift(m, linear_rule="yes"), {}, TypeError, "linear_rule must be a bool"),
        (lambda m: DeepLift.from_mode(m, "LinearGradient"), {}, ValueError, "unknown DeepLIFT mode"),
        (DeepLift, {"target": 10}, ValueError, "out of range"),
        (DeepLift, {"baselines": torch.zeros(3, 3)}, ValueError, "baselines of shape"),
        (DeepLift, {"baselines": "black"}, TypeError, "baselines must be"),
    ],
)
def test_bad_arguments_are_clear_errors(make, kwargs, error, match):
    model = ARCHITECTURES["residual_bn"]()
    before = _state(model)
    with pytest.raises(error, match=match):
        make(model).attribute(mnist_like_batch(2), **kwargs)
    assert_same_state(before, _state(model))


def test_bad_inputs_are_clear_errors():
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(ValueError, match="unsqueeze"):
        DeepLift(model).attribute(torch.rand(28, 28, dtype=torch.float64))
    with pytest.raises(ValueError, match="could not run on inputs of shape \\(2, 1, 20, 20\\)"):
        DeepLift(model).attribute(torch.rand(2, 1, 20, 20, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"returns \(2, 3, 26, 26\), not class scores \(N, C\)"):
        DeepLift(nn.Conv2d(1, 3, 3).double()).attribute(mnist_like_batch(2))


def test_batchnorm_in_training_mode_is_a_clear_error():
    model = ARCHITECTURES["residual_bn"]().train()
    before = _state(model)
    with pytest.raises(ValueError, match="BatchNorm runs in training mode"):
        DeepLift(model).attribute(mnist_like_batch(2), target=0)
    assert_same_state(before, _state(model))


def test_works_under_no_grad_and_leaves_no_parameter_gradients():
    model = ARCHITECTURES["nested_functional"]()
    with torch.no_grad():
        maps = DeepLift(model, rule="reveal_cancel").attribute(mnist_like_batch(2), target=0)
    assert maps.abs().sum() > 0 and not maps.requires_grad
    assert all(p.grad is None for p in model.parameters())
