"""DeconvNet reconstruction against Captum, an autograd mirror, hand-computed cases and BatchNorm folding.

With biases left out, the DeconvNet's transposed convolution / linear layer and its max-unpooling are
exactly the input gradients of the convolution, linear layer and max-pooling; only the ReLU differs
(the DeconvNet rectifies the signal instead of gating it by the forward input). So the reconstruction
of a layer response r equals the gradient of <layer output, r> with respect to the input under the
Deconvolution ReLU rule: Captum's ``Deconvolution`` and an autograd function below compute that on a
code path independent of the explicit mirror.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import Deconvolution as CaptumDeconvolution
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.deconvnet import DeconvNetReconstruction
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


def _response(model, layer_name, x):
    captured = []
    handle = model.get_submodule(layer_name).register_forward_hook(lambda m, a, out: captured.append(out.clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return captured[0]


class ResponseProbe(nn.Module):
    """Scores <layer output, seed> per sample: its Deconvolution attribution is the DeconvNet of ``seed``."""

    def __init__(self, model, layer_name, seed):
        super().__init__()
        self.model, self.layer_name, self.seed = model, layer_name, seed

    def forward(self, x):
        captured = []
        handle = self.model.get_submodule(self.layer_name).register_forward_hook(lambda m, a, out: captured.append(out))
        try:
            self.model(x)
        finally:
            handle.remove()
        return (captured[0] * self.seed).flatten(1).sum(1, keepdim=True)


def captum_reconstruction(model, layer_name, x, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns that it sets backward hooks on ReLUs
        probe = ResponseProbe(model, layer_name, seed)
        return CaptumDeconvolution(probe).attribute(x.clone().requires_grad_(True), target=0)


def one_filter(response, k):
    kept = torch.zeros_like(response)
    kept[:, k] = response[:, k]
    return kept


def strongest(signal):
    flat = signal.flatten(1)
    top = flat.argmax(1, keepdim=True)
    return torch.zeros_like(flat).scatter_(1, top, flat.gather(1, top)).view_as(signal)


LAYERS = [
    ("mnist_cnn", "features.0"),
    ("mnist_cnn", "features.1"),
    ("mnist_cnn", "features.4"),
    ("mnist_cnn", "features.7"),
    ("mnist_cnn", "classifier.2"),
    ("mnist_cnn", "classifier.3"),
    ("residual_bn", "bn1"),  # BatchNorm folded into the mirror
    ("residual_bn", "conv"),  # through the in-place, reused ReLU module
]


@pytest.mark.parametrize("arch, layer", LAYERS)
def test_full_and_partial_reconstruction_match_captum_deconvolution(arch, layer):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(3, seed=1)
    method = DeconvNetReconstruction(model, layer)
    response = _response(model, layer, x)
    torch.testing.assert_close(method.reconstruct(x), captum_reconstruction(model, layer, x, response))
    torch.testing.assert_close(
        method.reconstruct(x, filter=3), captum_reconstruction(model, layer, x, one_filter(response, 3))
    )
    torch.testing.assert_close(
        method.reconstruct(x, filter=3, keep="max"),
        captum_reconstruction(model, layer, x, strongest(one_filter(response, 3))),
    )


def test_output_unit_reconstruction_is_captum_deconvolution_scaled_by_the_logit():
    model = ARCHITECTURES["mnist_cnn"](seed=3)
    x = mnist_like_batch(4, seed=3)
    logits = model(x).detach()
    target = logits.argmax(1)
    chosen = logits.gather(1, target[:, None])
    assert (chosen > 0).all()  # the ReLU rule is positively homogeneous: relu(a g) = a relu(g) for a > 0
    ours = DeconvNetReconstruction(model, "classifier.3").reconstruct(x, filter=target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = CaptumDeconvolution(model).attribute(x.clone().requires_grad_(True), target=target)
    torch.testing.assert_close(ours, theirs * chosen.view(-1, 1, 1, 1))


class _RectifyingReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class RectifyingReLU(nn.Module):
    def forward(self, x):
        return _RectifyingReLU.apply(x)


def autograd_reconstruction(layers, x, seed_of):
    """The gradient of <output, seed> of a Sequential with every ReLU's backward rectifying its signal."""
    mirrored = nn.Sequential(*[RectifyingReLU() if isinstance(m, nn.ReLU) else m for m in layers])
    x = x.clone().requires_grad_(True)
    out = mirrored(x)
    (reconstruction,) = torch.autograd.grad(out, x, grad_outputs=seed_of(out.detach()))
    return reconstruction


# Geometries where a transposed convolution must add back rows the stride skipped, padding strings,
# dilation, groups, overlapping and ceil-mode pooling, adaptive max-pooling and one-dimensional layers.
GEOMETRIES = {
    "stride_uneven": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 4, stride=3, padding=2), nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2)
    ),
    "same_dilated_groups": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same", dilation=2), nn.ReLU(), nn.Conv2d(4, 6, 3, padding="valid", groups=2)
    ),
    "overlapping_pools": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.Conv2d(4, 5, 3, padding=1),
        nn.ReLU(), nn.MaxPool2d(3, stride=1, padding=1), nn.AdaptiveMaxPool2d(5), nn.Flatten(), nn.Linear(125, 7),
    ),
    "average_pools": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.Conv2d(4, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(80, 6),
    ),
    "dropout": lambda: nn.Sequential(nn.Conv2d(1, 3, 5), nn.Dropout(0.5), nn.ReLU(), nn.MaxPool2d(2)),
}  # fmt: skip


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("keep", ["all", "max"])
def test_conv_and_pooling_geometries_match_the_autograd_mirror(geometry, keep):
    model = seeded(GEOMETRIES[geometry], seed=5)
    x = mnist_like_batch(2, seed=5)
    ours = DeconvNetReconstruction(model, str(len(model) - 1)).reconstruct(x, filter=1, keep=keep)
    seed_of = (lambda out: strongest(one_filter(out, 1))) if keep == "max" else (lambda out: one_filter(out, 1))
    torch.testing.assert_close(ours, autograd_reconstruction(model, x, seed_of))


def test_gap_cnn_of_the_zoo_matches_the_autograd_mirror():
    model = seeded(nni.models.GAPCNN, seed=7)
    x = mnist_like_batch(2, seed=7)
    chain = nn.Sequential(*model.features, model.gap, model.flatten, model.fc)

    def units_3_and_8(out):
        kept = torch.zeros_like(out)
        kept[0, 3], kept[1, 8] = out[0, 3], out[1, 8]
        return kept

    ours = DeconvNetReconstruction(model, "fc").reconstruct(x, filter=[3, 8])
    torch.testing.assert_close(ours, autograd_reconstruction(chain, x, units_3_and_8))


def test_conv1d_matches_the_autograd_mirror():
    model = seeded(lambda: nn.Sequential(nn.Conv1d(2, 4, 5, stride=2), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(4, 3, 3)))
    x = torch.rand(3, 2, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = DeconvNetReconstruction(model, "3").reconstruct(x)
    torch.testing.assert_close(ours, autograd_reconstruction(model, x, lambda out: out))


def test_unpooling_puts_each_value_back_at_its_switch():
    x = torch.tensor([[[[1.0, 5.0, 0.0, 2.0], [2.0, 3.0, 7.0, 1.0]]]], dtype=torch.float64)
    out = DeconvNetReconstruction(nn.Sequential(nn.MaxPool2d(2)), "0").reconstruct(x)
    assert out.tolist() == [[[[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 7.0, 0.0]]]]


def test_overlapping_windows_sharing_a_switch_add_up():
    x = torch.tensor([[[[1.0, 9.0, 2.0]]]], dtype=torch.float64)
    out = DeconvNetReconstruction(nn.Sequential(nn.MaxPool2d((1, 2), stride=1)), "0").reconstruct(x)
    assert out.tolist() == [[[[0.0, 18.0, 0.0]]]]  # both windows' maximum came from the 9


def test_hand_computed_linear_relu_linear():
    # x = [1, 1]; h = relu(W1 x + b1) = relu([4, -2]) = [4, 0]; y = W2 h + b2 = [4 - 1, 8] = [3, 8].
    # Mirror of y: W2^T y = [3 + 16, -40] = [19, -40]; the mirrored ReLU rectifies it to [19, 0] (a
    # gradient would gate it by the forward input instead); W1^T [19, 0] = [19, 38]. No bias comes back.
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, -1.0]]))
        model[0].bias.copy_(torch.tensor([1.0, 0.0]))
        model[2].weight.copy_(torch.tensor([[1.0, 0.0], [2.0, -5.0]]))
        model[2].bias.copy_(torch.tensor([-1.0, 0.0]))
    x = torch.ones(1, 2, dtype=torch.float64)
    method = DeconvNetReconstruction(model, "2")
    assert method.reconstruct(x).tolist() == [[19.0, 38.0]]
    # Only unit 0 (value 3): W2^T [3, 0] = [3, 0] -> ReLU [3, 0] -> W1^T [3, 0] = [3, 6].
    assert method.reconstruct(x, filter=0).tolist() == [[3.0, 6.0]]
    # keep="max" keeps the 8 of unit 1: W2^T [0, 8] = [16, -40] -> [16, 0] -> [16, 32].
    assert method.reconstruct(x, keep="max").tolist() == [[16.0, 32.0]]
    # From the first layer's raw response, unit 1 only: W1^T [0, -2] = [2, 2] (no ReLU on that path).
    assert DeconvNetReconstruction(model, "0").reconstruct(x, filter=1).tolist() == [[2.0, 2.0]]


def test_batchnorm_is_folded_into_the_preceding_convolution():
    model = ARCHITECTURES["residual_bn"](seed=6)
    x = mnist_like_batch(2, seed=6)
    folded = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1)).double()
    bn = model.bn1
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        folded[0].weight.copy_(model.stem.weight * scale.view(-1, 1, 1, 1))
        folded[0].bias.copy_((model.stem.bias - bn.running_mean) * scale + bn.bias)
        folded[2].load_state_dict(model.conv.state_dict())
    torch.testing.assert_close(folded(x), _response(model, "conv", x))
    torch.testing.assert_close(
        DeconvNetReconstruction(model, "conv").reconstruct(x, filter=2),
        DeconvNetReconstruction(folded, "2").reconstruct(x, filter=2),
    )
