"""intercept_activations sees every form of activation call and leaves no trace."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nn_interpretability.core.activations import ACTIVATIONS, intercept_activations

FORMS = {
    "nn.ReLU": (nn.ReLU(), "relu"),
    "nn.ReLU(inplace)": (nn.ReLU(inplace=True), "relu"),
    "F.relu": (F.relu, "relu"),
    "F.relu(inplace)": (lambda t: F.relu(t, inplace=True), "relu"),
    "torch.relu": (torch.relu, "relu"),
    "torch.relu_": (torch.relu_, "relu"),
    "Tensor.relu": (lambda t: t.relu(), "relu"),
    "Tensor.relu_": (lambda t: t.relu_(), "relu"),
    "nn.LeakyReLU": (nn.LeakyReLU(0.3), "leaky_relu"),
    "F.leaky_relu(inplace, positional)": (lambda t: F.leaky_relu(t, 0.3, True), "leaky_relu"),
    "nn.ReLU6(inplace)": (nn.ReLU6(inplace=True), "hardtanh"),
    "F.relu6": (F.relu6, "hardtanh"),
    "nn.Hardtanh": (nn.Hardtanh(-2.0, 0.5), "hardtanh"),
    "nn.Sigmoid": (nn.Sigmoid(), "sigmoid"),
    "Tensor.sigmoid": (lambda t: t.sigmoid(), "sigmoid"),
    "nn.Tanh": (nn.Tanh(), "tanh"),
    "Tensor.tanh_": (lambda t: t.tanh_(), "tanh"),
    "nn.Softplus": (nn.Softplus(beta=2.0, threshold=5.0), "softplus"),
    "nn.ELU": (nn.ELU(alpha=0.5), "elu"),
    "nn.GELU": (nn.GELU(approximate="tanh"), "gelu"),
    "nn.SiLU": (nn.SiLU(), "silu"),
    "nn.MaxPool2d": (lambda t: nn.MaxPool2d(2, stride=1)(t.unsqueeze(0)).squeeze(0), "max_pool"),
    "F.max_pool1d": (lambda t: F.max_pool1d(t.unsqueeze(0), 2).squeeze(0), "max_pool"),
    "nn.AdaptiveMaxPool2d": (lambda t: nn.AdaptiveMaxPool2d(2)(t.unsqueeze(0)).squeeze(0), "max_pool"),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_is_seen_with_its_arguments(form):
    activation, expected_name = FORMS[form]
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    reference = activation(x.clone())
    seen = []

    def handler(name, inputs, call):
        seen.append(name)
        return call(inputs)

    with intercept_activations(handler):
        inputs = x.clone()
        output = activation(inputs)
    assert seen == [expected_name] and expected_name in ACTIVATIONS
    torch.testing.assert_close(output, reference)  # ``call`` honours slopes, bounds, beta, ...
    torch.testing.assert_close(inputs, x)  # in-place forms run out of place


def test_the_handler_output_replaces_the_activation():
    with intercept_activations(lambda name, x, call: torch.full_like(x, 7.0)):
        out = nn.Sequential(nn.ReLU(), nn.Identity())(torch.zeros(2))
    assert out.tolist() == [7.0, 7.0]


def test_the_mode_is_gone_afterwards_also_after_an_error():
    calls = []

    def handler(name, x, call):
        calls.append(name)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with intercept_activations(handler):
            torch.relu(torch.ones(1))
    torch.relu(torch.ones(1))
    assert calls == ["relu"]


def test_ambiguous_calls_raise_when_strict_only():
    x = torch.randn(4)
    with pytest.raises(NotImplementedError, match="clamp"):
        with intercept_activations(lambda name, t, call: call(t)):
            x.clamp(min=0)
    with intercept_activations(lambda name, t, call: call(t), strict=False):
        assert torch.equal(x.clamp(min=0), x.clamp(min=0))


def test_other_operations_pass_through_and_are_observed():
    seen, observed = [], []
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    x = torch.randn(2, 1, 8, 8)
    with intercept_activations(lambda name, t, call: seen.append(name) or call(t), observe=lambda f, a, k, r: observed.append(f)):
        out = model(x)
    assert seen == [] and torch.equal(out, model(x))
    assert F.conv2d in observed and F.linear in observed


def test_max_pooling_with_switches_is_not_intercepted():
    with intercept_activations(lambda name, t, call: 1 / 0):
        out, switches = F.max_pool2d(torch.randn(1, 1, 4, 4), 2, return_indices=True)
    assert switches.shape == (1, 1, 2, 2)
