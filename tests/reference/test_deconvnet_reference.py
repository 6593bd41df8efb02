"""DeconvNet reconstruction against an autograd computation of the same mirrored pass.

The mirrored network of Zeiler & Fergus is the backward pass of the network prefix seeded with the
layer's response, in which every ReLU rectifies the incoming signal instead of gating it by its input:
transposed convolutions are the convolutions' input gradients and max-unpooling with the switches is
max-pooling's gradient. The reference computes that with autograd and a custom ReLU backward, a code
path independent of the explicit mirror.
"""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from toy_models import ARCHITECTURES, mnist_like_batch


class _RectifyingReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _ReLU(nn.Module):
    def forward(self, x):
        return _RectifyingReLU.apply(x)


def autograd_reconstruction(model, layer_name, x, signal_of):
    swapped = {name: m for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
    for name in swapped:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, _ReLU())
    try:
        captured = {}
        layer = model.get_submodule(layer_name)
        handle = layer.register_forward_hook(lambda m, a, out: captured.setdefault("out", out))
        x = x.clone().requires_grad_(True)
        model(x)
        handle.remove()
        (reconstruction,) = torch.autograd.grad(captured["out"], x, grad_outputs=signal_of(captured["out"].detach()))
        return reconstruction
    finally:
        for name, relu in swapped.items():
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, relu)


LAYERS = ["features.0", "features.1", "features.4", "features.7", "classifier.1", "classifier.2"]


@pytest.mark.parametrize("layer", LAYERS)
def test_full_reconstruction_matches_the_autograd_mirror(layer):
    model = ARCHITECTURES["mnist_cnn"](seed=1)
    x = mnist_like_batch(3, seed=1)
    ours = nni.DeconvNetReconstruction(model, layer).reconstruct(x)
    torch.testing.assert_close(ours, autograd_reconstruction(model, layer, x, lambda out: out))


@pytest.mark.parametrize("layer", ["features.1", "features.7"])
def test_one_filter_and_its_strongest_activation_match_the_autograd_mirror(layer):
    model = ARCHITECTURES["mnist_cnn"](seed=2)
    x = mnist_like_batch(2, seed=2)
    method = nni.DeconvNetReconstruction(model, layer)

    def one_filter(out):
        kept = torch.zeros_like(out)
        kept[:, 3] = out[:, 3]
        return kept

    def strongest(out):
        flat = one_filter(out).flatten(1)
        top = flat.argmax(1, keepdim=True)
        return torch.zeros_like(flat).scatter_(1, top, flat.gather(1, top)).view_as(out)

    torch.testing.assert_close(
        method.reconstruct(x, filter=3), autograd_reconstruction(model, layer, x, one_filter)
    )
    torch.testing.assert_close(
        method.reconstruct(x, filter=3, keep="max"), autograd_reconstruction(model, layer, x, strongest)
    )


def test_unpooling_puts_values_back_at_the_switches():
    model = nn.Sequential(nn.MaxPool2d(2)).double()
    x = torch.tensor([[[[1.0, 5.0], [2.0, 3.0]]]], dtype=torch.float64)
    out = nni.DeconvNetReconstruction(model, "0").reconstruct(x)
    assert out.tolist() == [[[[0.0, 5.0], [0.0, 0.0]]]]
