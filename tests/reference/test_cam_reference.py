"""CAM equals Grad-CAM on GAP networks; Grad-CAM equals Captum's LayerGradCam with the same upsampling."""
import pytest
import torch
import torchvision
from captum.attr import GuidedGradCam as CaptumGuidedGradCam
from captum.attr import LayerAttribution, LayerGradCam

import nn_interpretability as nni
from nn_interpretability.models import GAPCNN
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


@pytest.mark.parametrize("map_size", [3, 6])
def test_cam_is_grad_cam_times_the_map_area_on_gap_networks(map_size):
    # On conv -> global average pooling -> linear, dy_c/dA^k = w_c^k / (h w) everywhere: alpha_k = w_c^k / (h w).
    model = seeded(lambda: GAPCNN(map_size=map_size))
    x = mnist_like_batch(3)
    cam = nni.CAM(model, model.features[-1], "fc").attribute(x, target=[1, 2, 3], upsample=False)
    grad_cam = nni.GradCAM(model, model.features[-1], relu_attributions=False).attribute(x, target=[1, 2, 3], upsample=False)
    assert cam.shape == (3, 1, map_size, map_size)
    torch.testing.assert_close(cam, grad_cam * map_size**2)
    relu_cam = nni.CAM(model, model.features[-1], "fc", relu_attributions=True).attribute(x, target=[1, 2, 3])
    torch.testing.assert_close(relu_cam, nni.GradCAM(model, model.features[-1]).attribute(x, target=[1, 2, 3]) * map_size**2)


def _captum(model, layer, x, target, mode="bilinear"):
    maps = LayerGradCam(model, model.get_submodule(layer)).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(maps, tuple(x.shape[2:]), mode)


@pytest.mark.parametrize("layer", ["features.0", "features.3", "features.6"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grad_cam_matches_captum_on_the_mnist_cnn(layer, mode):
    model = ARCHITECTURES["mnist_cnn"](seed=1)
    x = mnist_like_batch(3, seed=1)
    ours = nni.GradCAM(model, layer, interpolate_mode=mode).attribute(x, target=[0, 4, 7])
    torch.testing.assert_close(ours, _captum(model, layer, x, [0, 4, 7], mode))


@pytest.mark.parametrize("layer", ["layer4", "layer3.1.conv2", "layer1.0.bn1"])
def test_grad_cam_matches_captum_on_resnet18(layer):
    # layer1.0.bn1 is followed by an in-place ReLU: the activation must survive it.
    model = seeded(lambda: torchvision.models.resnet18(weights=None))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(nni.GradCAM(model, layer).attribute(x, target=[1, 500]), _captum(model, layer, x, [1, 500]))


def test_guided_grad_cam_matches_captum():
    model = ARCHITECTURES["mnist_cnn"](seed=2)
    x = mnist_like_batch(2, seed=2)
    ours = nni.GuidedGradCAM(model, "features.6").attribute(x, target=[3, 8])
    theirs = CaptumGuidedGradCam(model, model.features[6]).attribute(x.clone().requires_grad_(True), target=[3, 8])
    torch.testing.assert_close(ours, theirs)
