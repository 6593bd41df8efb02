"""InputXGradient, GuidedBackprop and Deconvolution against Captum on the same float64 models and inputs."""
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum import attr as captum_attr
from torch import nn

import nn_interpretability as nni
from toy_models import ARCHITECTURES, NestedFunctionalCNN, mnist_like_batch, seeded

PAIRS = [
    (nni.InputXGradient, captum_attr.InputXGradient),
    (nni.GuidedBackprop, captum_attr.GuidedBackprop),
    (nni.Deconvolution, captum_attr.Deconvolution),
]
IDS = [ours.__name__ for ours, _ in PAIRS]


def _captum(method, model, x, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns that it sets backward hooks on ReLUs
        return method(model).attribute(x.clone().requires_grad_(True), target=target)


class ModuleReLUTwin(nn.Module):
    """``NestedFunctionalCNN`` with one distinct ``nn.ReLU`` module per activation: Captum's setting."""

    def __init__(self, functional: NestedFunctionalCNN):
        super().__init__()
        self.net = functional
        self.relus = nn.ModuleList([nn.ReLU() for _ in range(4)])

    def forward(self, x):
        blocks, head = self.net.blocks, self.net.head
        x = F.max_pool2d(self.relus[0](blocks[0].conv(x)), 2)
        x = self.relus[2](F.max_pool2d(self.relus[1](blocks[1].conv(x)), 2))
        return head["fc2"](self.relus[3](head["fc1"](x.flatten(1))))


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
@pytest.mark.parametrize("arch", ["mnist_cnn", "residual_bn"])
def test_matches_captum_on_module_relu_models(ours, theirs, arch):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(4, seed=1)
    target = torch.tensor([0, 4, 7, 9])
    torch.testing.assert_close(ours(model).attribute(x, target=target), _captum(theirs, model, x, target))


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
def test_functional_relus_match_captum_on_the_module_twin(ours, theirs):
    functional = ARCHITECTURES["nested_functional"](seed=2)
    twin = ModuleReLUTwin(functional).eval()
    x = mnist_like_batch(3, seed=2)
    target = [1, 2, 3]
    torch.testing.assert_close(functional(x), twin(x))
    expected = _captum(theirs, twin, x, target)
    torch.testing.assert_close(ours(functional).attribute(x, target=target), expected)
    if ours is not nni.InputXGradient:
        # Captum hooks modules only: on functional ReLUs it silently returns the plain gradient.
        assert not torch.allclose(_captum(theirs, functional, x, target), expected)


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
def test_matches_captum_on_resnet18(ours, theirs):
    # Random weights, 64x64: in-place ReLU modules reused within each block, BatchNorm, residual adds.
    model = seeded(lambda: torchvision.models.resnet18(weights=None), seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = [1, 500]
    torch.testing.assert_close(ours(model).attribute(x, target=target), _captum(theirs, model, x, target))


def test_simple_taylor_without_root_is_gradient_times_input_on_a_bias_free_relu_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False)).double()
    x = torch.rand(4, 6, dtype=torch.float64)
    taylor = nni.SimpleTaylor(model).attribute(x, target=1)
    torch.testing.assert_close(taylor, nni.InputXGradient(model).attribute(x, target=1))
    # The ε → 0 limit: the root εx has the same activation pattern, so the first-order term is exact.
    near_zero = nni.SimpleTaylor(model, baselines=1e-6 * x).attribute(x, target=1)
    torch.testing.assert_close(near_zero, taylor, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(taylor.sum(1), model(x)[:, 1])  # homogeneous: the Taylor term is f(x)


def test_simple_taylor_with_a_root_is_the_first_order_term_at_the_root():
    model = ARCHITECTURES["nested_functional"](seed=3)
    x = mnist_like_batch(3, seed=3)
    root = torch.full_like(x[0], 0.5)
    root_batch = root.expand_as(x).clone().requires_grad_(True)
    scores = model(root_batch)[:, 2].sum()
    (gradient,) = torch.autograd.grad(scores, root_batch)
    expected = gradient * (x - root)
    torch.testing.assert_close(nni.SimpleTaylor(model, baselines=root).attribute(x, target=2), expected)
