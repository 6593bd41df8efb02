"""Grad-CAM, Guided Grad-CAM and CAM on token layers (vision transformers) and channels-last maps (Swin).

The maps are checked against a hand computation of Selvaraju et al.'s eq. (weights = the mean of the
gradient over the patch grid per feature, ReLU of the weighted sum) on the tokens reshaped by hand,
and Guided Grad-CAM against Captum's on a copy of the model whose layer hands Captum the grid.
torchvision's ViT and Swin against pytorch-grad-cam and Captum: ``tests/reference/test_cam_tokens_reference.py``.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import GuidedGradCam as CaptumGuidedGradCam
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.cam import MAX_EXTRA_TOKENS, feature_maps, token_grid
from test_core import _state, assert_same_state
from cam_reference import activation_and_gradient
from toy_models import seeded


class _Block(nn.Module):
    """Pre-norm transformer block with the attention written out (softmax, no fused kernel)."""

    def __init__(self, dim: int, heads: int, activation):
        super().__init__()
        self.heads = heads
        self.ln1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ln2, self.fc1, self.act = nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), activation()
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, t):
        n, length, dim = t.shape
        q, k, v = (z.unflatten(-1, (self.heads, -1)).transpose(1, 2) for z in self.qkv(self.ln1(t)).chunk(3, -1))
        attention = torch.softmax(q @ k.transpose(-2, -1) * (dim // self.heads) ** -0.5, dim=-1)
        t = t + self.proj((attention @ v).transpose(1, 2).reshape(n, length, dim))
        return t + self.fc2(self.act(self.fc1(self.ln2(t))))


class TinyViT(nn.Module):
    """Patch embedding, ``extra`` leading tokens (class, registers; trailing with ``extra_last``), two
    blocks, a head on the class token."""

    def __init__(self, size=(32, 64), patch=8, dim=12, extra=1, classes=4, activation=nn.GELU, extra_last=False):
        super().__init__()
        self.grid = (size[0] // patch, size[1] // patch)
        self.extra_last = extra_last
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.extra = nn.Parameter(torch.randn(1, extra, dim))
        self.pos = nn.Parameter(0.5 * torch.randn(1, extra + self.grid[0] * self.grid[1], dim))
        self.blocks = nn.Sequential(_Block(dim, 2, activation), _Block(dim, 2, activation))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        patches = self.embed(x).flatten(2).transpose(1, 2)
        extra = self.extra.expand(x.shape[0], -1, -1)
        t = torch.cat([patches, extra] if self.extra_last else [extra, patches], 1) + self.pos
        return self.head(self.norm(self.blocks(t))[:, -1 if self.extra_last else 0])


def _vit(seed=0, **kwargs):
    return seeded(lambda: TinyViT(**kwargs), seed)


def _images(n=3, size=(32, 64), seed=0):
    return torch.rand(n, 3, *size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _hand_grad_cam(activation, gradient, tokens):
    """eq. 25 on the grid of patch tokens ``tokens`` (a slice) laid out as ``grid``: ReLU(Σ_d mean(∂y/∂A_d) A_d)."""
    a, g = activation[:, tokens], gradient[:, tokens]  # (N, h w, D)
    weights = g.mean(1, keepdim=True)
    return (a * weights).sum(-1).clamp(min=0)


def _relative(ours, theirs):
    ours, theirs = ours.detach(), theirs.detach()
    return float((ours - theirs).abs().max() / theirs.abs().max())


@pytest.mark.parametrize(
    "tokens, spatial, expected",
    [
        (17, (32, 32), (1, 4, 4)),  # a class token, 8 x 8 patches
        (16, (32, 32), (0, 4, 4)),  # no extra token
        (33, (32, 64), (1, 4, 8)),  # non-square: the factorisation with the input's aspect, not 8 x 4 or 2 x 16
        (37, (32, 64), (5, 4, 8)),  # class + 4 register tokens: a patch size dividing the input wins
        (197, (224, 224), (1, 14, 14)),  # ViT-B/16
        (261, (224, 224), (5, 16, 16)),  # DINOv2-style registers, patch 14
        (10, (30, 30), (1, 3, 3)),
        (2, (32, 32), None),
        (1000, (32, 32), None),  # more tokens than any grid with <= MAX_EXTRA_TOKENS extra
    ],
)
def test_token_grid(tokens, spatial, expected):
    assert token_grid(tokens, spatial) == expected


def test_channels_last_maps_are_recognised_and_ambiguous_shapes_refused():
    swin = torch.randn(2, 2, 2, 768)  # torchvision swin_t's last stage at 64 x 64
    torch.testing.assert_close(feature_maps(swin, (64, 64))(swin), swin.permute(0, 3, 1, 2))
    for conv in (torch.randn(2, 64, 16, 16), torch.randn(2, 6, 26, 26), torch.randn(2, 512, 1, 1)):
        assert feature_maps(conv, (64, 64) if conv.shape[2] != 26 else (28, 28))(conv) is conv
    with pytest.raises(ValueError, match=r"\(2, 8, 8, 8\) .* reads both as channels-first .* reshape=lambda a: a\.permute"):
        feature_maps(torch.randn(2, 8, 8, 8), (64, 64))


@pytest.mark.parametrize("extra, size", [(1, (32, 64)), (5, (32, 64)), (1, (32, 32))])
def test_grad_cam_on_tokens_is_the_hand_computation(extra, size):
    model, x, target = _vit(extra=extra, size=size), _images(size=size), [0, 3, 1]
    h, w = model.grid
    ours = nni.GradCAM(model, "blocks.1.ln1").attribute(x, target=target, upsample=False)
    hand = _hand_grad_cam(*activation_and_gradient(model, "blocks.1.ln1", x, target), slice(extra, None)).view(3, 1, h, w)
    assert ours.shape == (3, 1, h, w) and hand.abs().max() > 0
    assert _relative(ours, hand) < 1e-12
    upsampled = nni.GradCAM(model, "blocks.1.ln1").attribute(x, target=target)
    torch.testing.assert_close(upsampled, F.interpolate(hand, size=size, mode="bilinear", align_corners=False))
    explicit = nni.GradCAM(model, "blocks.1.ln1", reshape=lambda a: a[:, extra:].unflatten(1, (h, w)).movedim(-1, 1))
    torch.testing.assert_close(explicit.attribute(x, target=target, upsample=False), ours)


def test_reshape_overrides_the_automatic_grid():
    # The class token comes last: the automatic reading (leading extra tokens) takes the wrong tokens.
    model, x, target = _vit(extra_last=True), _images(), [2, 0, 1]
    hand = _hand_grad_cam(*activation_and_gradient(model, "blocks.1.ln1", x, target), slice(0, -1)).view(3, 1, 4, 8)
    reshape = lambda a: a[:, :-1].unflatten(1, (4, 8)).movedim(-1, 1)  # noqa: E731
    ours = nni.GradCAM(model, "blocks.1.ln1", reshape=reshape).attribute(x, target=target, upsample=False)
    assert _relative(ours, hand) < 1e-12
    automatic = nni.GradCAM(model, "blocks.1.ln1").attribute(x, target=target, upsample=False)
    assert not torch.allclose(automatic, hand)


class _Flat(nn.Module):
    """An image model with a 3-D activation (N, 1000, 8) that is no token grid."""

    def __init__(self):
        super().__init__()
        self.mix, self.tokens, self.out = nn.Linear(3 * 8 * 8, 8000), nn.Identity(), nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.tokens(self.mix(x.flatten(1)).view(-1, 1000, 8)).mean(1))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: nni.GradCAM(seeded(_Flat), "tokens"), ValueError, r"tokens \(2, 1000, 8\) .* pass reshape="),
        (lambda: nni.GradCAM(_vit(), "blocks.1.ln1", reshape=lambda a: a[:, 0]), ValueError, r"reshape must turn"),
        (lambda: nni.GradCAM(_vit(), "blocks.1"), ValueError, r"only through the tokens left out .* first LayerNorm"),
        (lambda: nni.GradCAM(_vit(), "head"), ValueError, r"feature maps .*tokens \(N, T, D\).* reshape="),
    ],
)
def test_layers_without_a_grid_are_clear_errors(make, error, match):
    method = make()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) if isinstance(method.model, _Flat) else _images(2)
    before = _state(method.model)
    with pytest.raises(error, match=match):
        method.attribute(x, target=1)
    assert_same_state(before, _state(method.model))
    with pytest.raises(TypeError, match="reshape must be a callable"):
        nni.GradCAM(method.model, method.layer_name, reshape="tokens")


def test_every_class_on_tokens_is_one_call_per_class():
    model, x = _vit(), _images(2)
    maps = nni.GradCAM(model, "blocks.1.ln1").attribute(x, target="all")
    assert maps.shape == (2, 4, 1, 32, 64)
    torch.testing.assert_close(maps[:, 2], nni.GradCAM(model, "blocks.1.ln1").attribute(x, target=2))


class _ChannelsLast(nn.Module):
    """conv -> channels-last (N, h, w, D) -> a per-position linear layer -> global average -> fc (a Swin-like head)."""

    def __init__(self):
        super().__init__()
        self.conv, self.mix, self.fc = nn.Conv2d(3, 6, 4, stride=4), nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.mix(self.conv(x).permute(0, 2, 3, 1)).mean((1, 2)))


def test_grad_cam_and_cam_on_channels_last_maps_are_the_hand_computation():
    model, x, target = seeded(_ChannelsLast), _images(2, size=(16, 32)), [2, 1]
    a, g = activation_and_gradient(model, "mix", x, target)  # (N, 4, 8, 5)
    hand = (a * g.mean((1, 2), keepdim=True)).sum(-1).clamp(min=0).unsqueeze(1)
    ours = nni.GradCAM(model, "mix").attribute(x, target=target, upsample=False)
    assert ours.shape == (2, 1, 4, 8) and _relative(ours, hand) < 1e-12
    permuted = nni.GradCAM(model, "mix", reshape=lambda t: t.permute(0, 3, 1, 2))
    torch.testing.assert_close(permuted.attribute(x, target=target, upsample=False), ours)
    # CAM (eq. 24): the class weights of fc on the channels-last features.
    cam = nni.CAM(model, "mix", "fc").attribute(x, target=target, upsample=False)
    expected = torch.einsum("nhwd,nd->nhw", a, model.fc.weight.detach()[target]).unsqueeze(1)
    assert _relative(cam, expected) < 1e-12


def test_guided_grad_cam_on_tokens_gates_the_guided_gradient_through_gelu():
    model, x, target = _vit(), _images(2), [1, 3]
    ours = nni.GuidedGradCAM(model, "blocks.1.ln1").attribute(x, target=target)
    guided = nni.GuidedBackprop(model).attribute(x, target=target)
    grad_cam = nni.GradCAM(model, "blocks.1.ln1").attribute(x, target=target)
    assert ours.shape == x.shape and grad_cam.abs().max() > 0
    torch.testing.assert_close(ours, guided * grad_cam)
    # The guided part applies its rule at the GELUs: not the plain gradient.
    assert not torch.allclose(guided, nni.Saliency(model).attribute(x, target=target))


class _GridTap(nn.Module):
    """``layer`` followed by a tap that sees its patch tokens as a grid (N, D, h, w), for Captum's layer methods."""

    def __init__(self, layer, extra, grid):
        super().__init__()
        self.layer, self.extra, self.h, self.w = layer, extra, *grid
        self.grid = nn.Sequential()  # an empty Sequential: its output is its input, a module Captum can hook

    def forward(self, t):
        t = self.layer(t)
        grid = self.grid(t[:, self.extra :].unflatten(1, (self.h, self.w)).movedim(-1, 1))
        return torch.cat([t[:, : self.extra], grid.movedim(1, -1).flatten(1, 2)], 1)


def test_guided_grad_cam_on_tokens_matches_captum_with_relu_modules():
    # With nn.ReLU modules (Captum modifies those only) both guided backpropagations agree.
    model, x, target = _vit(seed=3, activation=nn.ReLU), _images(2, seed=3), [0, 2]
    tapped = copy.deepcopy(model)
    tapped.blocks[1].ln1 = _GridTap(tapped.blocks[1].ln1, 1, model.grid)
    torch.testing.assert_close(tapped(x), model(x))
    theirs = CaptumGuidedGradCam(tapped, tapped.blocks[1].ln1.grid).attribute(
        x.clone().requires_grad_(True), target=target, interpolate_mode="nearest"
    )
    ours = nni.GuidedGradCAM(model, "blocks.1.ln1", interpolate_mode="nearest").attribute(x, target=target)
    assert theirs.abs().max() > 0 and _relative(ours, theirs) < 1e-10


def test_guided_grad_cam_on_torchvision_vit_is_guided_backprop_times_grad_cam():
    vit = seeded(
        lambda: torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=3
        )
    )
    with torch.no_grad():
        vit.heads.head.weight.normal_()  # torchvision initialises the head with zeros
    x, layer = _images(2, size=(32, 32)), "encoder.layers.encoder_layer_0.ln_1"
    before = _state(vit)
    guided = nni.GuidedGradCAM(vit, layer).attribute(x, target=0)
    assert_same_state(before, _state(vit))
    cam = nni.GradCAM(vit, layer).attribute(x, target=0)
    torch.testing.assert_close(guided, nni.GuidedBackprop(vit).attribute(x, target=0) * cam)
    assert guided.abs().sum() > 0


def test_max_extra_tokens_is_documented_in_the_error():
    assert f"R <= {MAX_EXTRA_TOKENS}" in _error(lambda: feature_maps(torch.zeros(1, 1000, 8), (32, 32)))


def _error(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)
