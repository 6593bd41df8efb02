"""InputXGradient, SimpleTaylor, GuidedBackprop, Deconvolution: the rules, activations and errors.

Batching, targets, dtypes and model state of every registered method: ``tests/contract``."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch

def test_registry_names():
    model = ARCHITECTURES["mnist_cnn"]()
    for name in ("input-x-gradient", "simple-taylor", "guided-backprop", "deconvolution"):
        assert nni.get_method(name, model).model is model


@pytest.mark.parametrize("method", [nni.GuidedBackprop, nni.Deconvolution])
def test_functional_and_module_relus_give_the_same_map(method):
    torch.manual_seed(0)
    linear1, linear2 = nn.Linear(5, 7).double(), nn.Linear(7, 3).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    forms = [
        lambda h: nn.ReLU()(h),
        lambda h: nn.ReLU(inplace=True)(h),
        F.relu,
        torch.relu,
        lambda h: h.relu(),
        lambda h: F.relu(h, inplace=True),
    ]

    class Net(nn.Module):
        def __init__(self, relu):
            super().__init__()
            self.linear1, self.linear2, self.relu = linear1, linear2, relu

        def forward(self, h):
            return self.linear2(self.relu(self.linear1(h)))

    maps = [method(Net(form)).attribute(x, target=0) for form in forms]
    for other in maps[1:]:
        torch.testing.assert_close(other, maps[0])
    # The rule is applied: the map differs from the plain gradient.
    assert not torch.allclose(maps[0], nni.Saliency(Net(F.relu)).attribute(x, target=0))


def test_guided_backprop_masks_negative_signals_at_relus():
    # One hidden unit, active, reached by a negative weight: the plain gradient is negative, the
    # guided one is stopped at the ReLU.
    model = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        model[0].weight.fill_(1.0), model[0].bias.fill_(0.0), model[2].weight.fill_(-2.0)
    x = torch.tensor([[1.0]], dtype=torch.float64)
    assert nni.Saliency(model).attribute(x, target=0).item() == -2.0
    assert nni.GuidedBackprop(model).attribute(x, target=0).item() == 0.0
    # Deconvolution ignores the forward gate: an inactive unit still passes positive signal.
    with torch.no_grad():
        model[0].bias.fill_(-5.0), model[2].weight.fill_(3.0)
    assert nni.Saliency(model).attribute(x, target=0).item() == 0.0
    assert nni.Deconvolution(model).attribute(x, target=0).item() == 3.0


@pytest.mark.parametrize(
    "method, activation, match",
    [
        (nni.GuidedBackprop, lambda h: torch.maximum(h, torch.zeros_like(h)), "torch.maximum"),
        (nni.Deconvolution, nn.Sigmoid(), "rectifiers.*sigmoid"),
        (nni.GuidedBackprop, lambda h: h.clamp(min=0), "clamp"),
    ],
)
def test_unsupported_activations_are_a_clear_error(method, activation, match):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, h):
            return self.fc2(activation(self.fc1(h)))

    model = Net().double()
    before = _state(model)
    with pytest.raises(NotImplementedError, match=match):
        method(model).attribute(torch.randn(2, 4, dtype=torch.float64))
    assert_same_state(before, _state(model))


def test_guided_backprop_on_sigmoid_scales_the_rectified_signal_by_the_derivative():
    model = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid(), nn.Linear(2, 2)).double()
    x = torch.randn(1, 3, dtype=torch.float64)
    pre = model[0](x)
    expected = (model[2].weight[1].clamp(min=0) * torch.sigmoid(pre) * (1 - torch.sigmoid(pre))) @ model[0].weight
    torch.testing.assert_close(nni.GuidedBackprop(model).attribute(x, target=1), expected.detach())


def test_simple_taylor_root_shape_is_checked():
    with pytest.raises(ValueError, match="baselines of shape"):
        nni.SimpleTaylor(ARCHITECTURES["mnist_cnn"](), baselines=torch.zeros(3, 3)).attribute(mnist_like_batch(2))


@pytest.mark.parametrize("name", ["saliency", "input-x-gradient", "simple-taylor", "guided-backprop", "deconvolution"])
def test_every_class_is_one_forward_and_equals_one_call_per_class(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 5)).double().eval()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    method = nni.get_method(name, model)
    forwards = []
    handle = model.register_forward_hook(lambda module, args, out: forwards.append(out.shape[0]))
    try:
        maps = method.attribute(x, target="all")
    finally:
        handle.remove()
    assert forwards == [4], "every class must come from one forward of the batch"
    expected = torch.stack([method.attribute(x, target=c) for c in range(5)], 1)
    torch.testing.assert_close(maps, expected, rtol=0, atol=0)
    chosen = torch.tensor([[4, 0], [1, 1], [2, 3], [0, 4]])
    torch.testing.assert_close(method.attribute(x, target=chosen), expected[torch.arange(4)[:, None], chosen])
