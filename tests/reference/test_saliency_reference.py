"""Saliency against Captum on the same float64 models and inputs, and the textbook's problem P9.1."""
import pytest
import torch
import torchvision
from captum.attr import Saliency as CaptumSaliency

import nn_interpretability as nni
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


def _captum(model, x, target):
    return CaptumSaliency(model).attribute(x.clone().requires_grad_(True), target=target, abs=False)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_matches_captum(arch):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(4, seed=1)
    target = torch.tensor([0, 4, 7, 9])
    torch.testing.assert_close(nni.Saliency(model).attribute(x, target=target), _captum(model, x, target))


def test_matches_captum_on_resnet18():
    # Random weights, 64x64 input: in-place ReLU modules reused within blocks, BatchNorm, residual adds.
    model = seeded(lambda: torchvision.models.resnet18(weights=None), seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = [1, 500]
    torch.testing.assert_close(nni.Saliency(model).attribute(x, target=target), _captum(model, x, target))


@pytest.mark.parametrize(
    "p, target, gradient, contribution",
    [
        ([0.0, 3.0], 0, [-1.0, 1.0], [0.0, 3.0]),  # P9.1 i: c = 1 (index 0)
        ([3.0, 3.0], 1, [0.0, 0.0], [0.0, 0.0]),  # P9.1 ii: c = 2, the gradient vanishes in the trough
    ],
)
def test_textbook_p9_1(p, target, gradient, contribution):
    network = nni.models.xor_network()
    x = torch.tensor([p], dtype=torch.float64)
    assert network(x).argmax(1).item() == target  # the class the book explains is the predicted one
    saliency = nni.Saliency(network).attribute(x)
    assert saliency.tolist() == [gradient]
    assert (saliency * x).tolist() == [contribution]  # the book's "saliency contribution", eq. 9.14
