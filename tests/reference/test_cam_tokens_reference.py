"""Grad-CAM on torchvision's ViT tokens and Swin's channels-last maps against three references.

* pytorch-grad-cam (``pip install grad-cam``; the anchor) with its ``reshape_transform``, before its
  normalisation: its weighted sum at the layer's resolution, and that map resized with the
  ``cv2.resize`` call it makes (in float64, without the normalisation);
* Captum's ``LayerGradCam`` on a copy of the model in which the same layer's tokens are reshaped into
  a grid by hand, for a module Captum can hook;
* a hand computation: weights = the mean over the grid of the gradient per feature, ReLU of the
  weighted sum of the features.

torchvision zero-initialises the ViT's head (every gradient would be 0): it is re-drawn here.
"""
import copy
from functools import lru_cache

import numpy as np
import pytest
import torch
import torchvision
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

import nn_interpretability as nni
from cam_reference import activation_and_gradient
from toy_models import seeded

VIT_SIZE, PATCH = 32, 8
GRID = (VIT_SIZE // PATCH,) * 2
SWIN_SIZE = 64


@lru_cache(maxsize=None)
def _vit_model() -> nn.Module:
    def build():
        vit = torchvision.models.VisionTransformer(
            image_size=VIT_SIZE, patch_size=PATCH, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5
        )
        nn.init.normal_(vit.heads.head.weight, std=0.5)
        return vit

    return seeded(build)


@lru_cache(maxsize=None)
def _swin_model() -> nn.Module:
    return seeded(lambda: torchvision.models.swin_t(weights=None))


def _vit():
    return copy.deepcopy(_vit_model())


def _swin():
    return copy.deepcopy(_swin_model())


def _images(n, size, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _vit_tokens_to_grid(t):
    """pytorch-grad-cam's reshape_transform for the ViT: drop the class token, tokens -> (N, D, h, w)."""
    return t[:, 1:].reshape(t.shape[0], *GRID, t.shape[2]).permute(0, 3, 1, 2)


def _channels_last_to_first(t):
    return t.permute(0, 3, 1, 2)


# model, layer, input size, targets, reshape_transform for pytorch-grad-cam, grid tap for Captum
CASES = {
    "vit-last-ln_1": (_vit, "encoder.layers.encoder_layer_1.ln_1", VIT_SIZE, [0, 3, 4], _vit_tokens_to_grid, "tokens"),
    "vit-block-0": (_vit, "encoder.layers.encoder_layer_0", VIT_SIZE, [1, 2, 4], _vit_tokens_to_grid, "tokens"),
    "swin-features.5": (_swin, "features.5", SWIN_SIZE, [3, 500], _channels_last_to_first, "channels_last"),
    "swin-features.7": (_swin, "features.7", SWIN_SIZE, [7, 999], _channels_last_to_first, "channels_last"),
}


def _relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert np.abs(theirs).max() > 0
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _ours(model, layer, x, targets, upsample):
    return nni.GradCAM(model, layer).attribute(x, target=targets, upsample=upsample)[:, 0].numpy()


def _pytorch_grad_cam(model, layer, x, targets, reshape_transform):
    """pytorch-grad-cam's map before normalisation: at the layer's resolution, and resized as it resizes."""
    cv2 = pytest.importorskip("cv2", reason="pytorch-grad-cam needs opencv (cv2)")
    from pytorch_grad_cam import GradCAM as TheirGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = model.get_submodule(layer)
    goals = [ClassifierOutputTarget(c) for c in targets]
    with TheirGradCAM(model=model, target_layers=[module], reshape_transform=reshape_transform) as cam:
        normalised = cam(input_tensor=x, targets=goals)
        activations = cam.activations_and_grads.activations[0].numpy()
        gradients = cam.activations_and_grads.gradients[0].numpy()
        raw = np.maximum(cam.get_cam_image(x, module, goals, activations, gradients), 0)
    # scale_cam_image: cv2.resize(img, (width, height)) of the normalised float32 map; here of the raw float64 one.
    size = (x.shape[-1], x.shape[-2])
    resized = np.stack([cv2.resize(m, size) for m in raw])
    return raw, resized, normalised


@pytest.mark.parametrize("case", CASES)
def test_grad_cam_matches_pytorch_grad_cam_before_its_normalisation(case):
    build, layer, size, targets, reshape_transform, _ = CASES[case]
    pytest.importorskip("pytorch_grad_cam", reason="pip install grad-cam")
    x = _images(len(targets), size)
    raw, resized, normalised = _pytorch_grad_cam(build(), layer, x, targets, reshape_transform)
    model = build()
    assert _relative(_ours(model, layer, x, targets, upsample=False), raw) <= 1e-6
    ours = _ours(model, layer, x, targets, upsample=True)
    assert ours.shape == resized.shape == normalised.shape
    assert _relative(ours, resized) <= 1e-6
    # Its normalised output from ours: min-max at the layer's resolution, resized, min-max again (float32).
    scaled = _min_max(_ours(model, layer, x, targets, upsample=False))
    scaled = _min_max(nni.attribution.cam.upsample(torch.from_numpy(scaled)[:, None], (size, size))[:, 0].numpy())
    np.testing.assert_allclose(scaled, normalised, atol=1e-6)


def _min_max(maps):
    maps = maps - maps.min((1, 2), keepdims=True)
    return maps / (1e-7 + maps.max((1, 2), keepdims=True))


class _Tap(nn.Module):
    """``layer`` whose output passes, as a grid (N, D, h, w), through ``self.grid``: a module for Captum to hook."""

    def __init__(self, layer, layout):
        super().__init__()
        self.layer, self.layout = layer, layout
        self.grid = nn.Sequential()  # an empty Sequential returns its input

    def forward(self, t):
        t = self.layer(t)
        if self.layout == "tokens":
            grid = self.grid(t[:, 1:].unflatten(1, GRID).movedim(-1, 1))
            return torch.cat([t[:, :1], grid.movedim(1, -1).flatten(1, 2)], 1)
        return self.grid(t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _tapped(model, layer, layout):
    parent, _, child = layer.rpartition(".")
    owner = model.get_submodule(parent)
    setattr(owner, child, _Tap(getattr(owner, child), layout))
    return model, getattr(owner, child).grid


def _hand(model, layer, x, targets, layout):
    a, gradient = activation_and_gradient(model, layer, x, targets)
    if layout == "tokens":  # (N, 1 + h w, D): the patch tokens, then the grid
        a, gradient = a[:, 1:], gradient[:, 1:]
        weights = gradient.mean(1, keepdim=True)
        return (a * weights).sum(-1).clamp(min=0).unflatten(1, GRID).numpy()
    weights = gradient.mean((1, 2), keepdim=True)  # (N, h, w, D)
    return (a * weights).sum(-1).clamp(min=0).numpy()


@pytest.mark.parametrize("case", CASES)
def test_grad_cam_matches_captum_on_a_grid_made_by_hand_and_the_hand_computation(case):
    build, layer, size, targets, _, layout = CASES[case]
    x = _images(len(targets), size, seed=1)
    model = build()
    ours = _ours(model, layer, x, targets, upsample=False)
    tapped, tap = _tapped(build(), layer, layout)
    torch.testing.assert_close(tapped(x), model(x))
    theirs = LayerGradCam(tapped, tap).attribute(x, target=targets, relu_attributions=True)
    assert _relative(ours, theirs[:, 0].detach().numpy()) <= 1e-10
    assert _relative(ours, _hand(model, layer, x, targets, layout)) <= 1e-10
    upsampled = LayerAttribution.interpolate(theirs, (size, size), "bilinear")[:, 0].detach().numpy()
    assert _relative(_ours(model, layer, x, targets, upsample=True), upsampled) <= 1e-10


def test_conv_proj_of_the_vit_stays_channels_first():
    model, x = _vit(), _images(2, VIT_SIZE)
    ours = _ours(model, "conv_proj", x, [0, 1], upsample=False)
    theirs = LayerGradCam(model, model.conv_proj).attribute(x, target=[0, 1], relu_attributions=True)
    assert ours.shape == (2, *GRID) and _relative(ours, theirs[:, 0].detach().numpy()) <= 1e-10


def test_cam_and_guided_grad_cam_on_swin():
    model, x, targets = _swin(), _images(2, SWIN_SIZE, seed=2), [10, 20]
    store = {}
    handle = model.norm.register_forward_hook(lambda module, args, out: store.update(a=out))
    with torch.no_grad():
        model(x)
    handle.remove()
    # CAM (eq. 24) from swin's norm (channels-last) through permute -> global average -> head.
    expected = torch.einsum("nhwd,nd->nhw", store["a"], model.head.weight.detach()[targets])
    cam = nni.CAM(model, "norm", "head").attribute(x, target=targets, upsample=False)[:, 0]
    assert _relative(cam.numpy(), expected.numpy()) <= 1e-10
    # Guided Grad-CAM: the guided gradient (its rule at swin's GELUs) times the upsampled Grad-CAM.
    ours = nni.GuidedGradCAM(model, "features.5").attribute(x, target=targets)
    grad_cam = nni.GradCAM(model, "features.5").attribute(x, target=targets)
    assert ours.shape == x.shape and grad_cam.abs().max() > 0
    torch.testing.assert_close(ours, nni.GuidedBackprop(model).attribute(x, target=targets) * grad_cam)
