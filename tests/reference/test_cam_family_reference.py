"""The Grad-CAM family against pytorch-grad-cam 1.5.7 (the anchor), before its per-image min-max scaling.

Its raw map is read from the method object: ``get_cam_image`` on the activations and gradients it
recorded (its ``compute_cam_per_layer`` minus ``scale_cam_image``), with the ReLU it applies there;
FullGrad's from ``compute_cam_per_layer`` itself (its own scaling per term is part of the method) and
``aggregate_multi_layers`` without the final scaling. Where pytorch-grad-cam rounds to float32
(``np.float32`` of the SVD projection, of Ablation-CAM's scores and of each FullGrad term,
``torch.Tensor`` of Score-CAM's scores) the test runs it with those casts kept in float64, so that the
comparison holds to rtol 1e-6 on float64 models. Upsampled maps are compared with the ``cv2.resize``
of its raw map (the resize pytorch-grad-cam makes, on the unscaled float64 map).
"""
import types

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import nn_interpretability as nni
from toy_models import seeded

pgc = pytest.importorskip("pytorch_grad_cam", reason="pip install grad-cam")
cv2 = pytest.importorskip("cv2", reason="pytorch-grad-cam needs opencv (cv2)")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

RTOL = 1e-6


def _small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 10, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(40, 5),
    )  # fmt: skip


def _bn_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics, so that FullGrad's folded BatchNorm biases are not just β."""
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator, dtype=torch.float64) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator, dtype=torch.float64) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator, dtype=torch.float64) * 0.1)
    return model


MODELS = {
    "small_cnn": (lambda: _bn_statistics(seeded(_small_cnn)), 12, [0, 3, 4]),
    "resnet18": (lambda: _bn_statistics(seeded(lambda: torchvision.models.resnet18(weights=None, num_classes=10))), 64, [1, 7]),
}
#: Conv outputs and ReLUs; Ablation-CAM only after ReLUs, where pytorch-grad-cam zeroes a channel as we do.
LAYERS = {"small_cnn": ["2", "6"], "resnet18": ["layer3", "layer4"]}
RELU_LAYERS = {"small_cnn": ["4", "6"], "resnet18": ["layer2"]}

# our class, theirs, whether their scores are rounded to float32 (a module to run in float64)
VARIANTS = {
    "grad-cam-plus-plus": ("GradCAMPlusPlus", None),
    "xgrad-cam": ("XGradCAM", None),
    "hires-cam": ("HiResCAM", None),
    "layer-cam": ("LayerCAM", None),
    "eigen-cam": ("EigenCAM", "pytorch_grad_cam.utils.svd_on_activations"),
    "score-cam": ("ScoreCAM", "pytorch_grad_cam.score_cam"),
    "ablation-cam": ("AblationCAM", "pytorch_grad_cam.ablation_cam"),
}


def _images(n, size, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _float64(monkeypatch, module_name):
    """Run ``module_name`` with ``np.float32`` / ``torch.Tensor(list)`` producing float64 instead."""
    import importlib

    module = importlib.import_module(module_name)
    if hasattr(module, "np"):
        monkeypatch.setattr(module, "np", types.SimpleNamespace(**{**vars(np), "float32": np.float64}))
    if hasattr(module, "torch"):
        as_float64 = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
        monkeypatch.setattr(module, "torch", types.SimpleNamespace(**{**vars(torch), "Tensor": as_float64}))


def _relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape and np.abs(theirs).max() > 0
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _theirs(name, model, layer, x, targets, reshape_transform=None):
    """pytorch-grad-cam's map at the layer's resolution (ReLU'd, unscaled) and that map resized as it resizes."""
    module = model.get_submodule(layer)
    goals = [ClassifierOutputTarget(c) for c in targets]
    cls = getattr(pgc, VARIANTS[name][0])
    kwargs = {"batch_size": 40} if name == "ablation-cam" else {}
    with cls(model=model, target_layers=[module], reshape_transform=reshape_transform, **kwargs) as cam:
        cam.batch_size = 48  # Score-CAM reads it; several batches per image
        cam(input_tensor=x, targets=goals)
        activations = cam.activations_and_grads.activations[0].numpy()
        gradients = cam.activations_and_grads.gradients[0].numpy() if cam.uses_gradients else None
        raw = np.maximum(cam.get_cam_image(x, module, goals, activations, gradients, False), 0)
    size = (x.shape[-1], x.shape[-2])
    return raw, np.stack([cv2.resize(m, size) for m in raw])


def _ours(name, model, layer, x, targets, upsample, **kwargs):
    method = nni.get_method(name)(model, layer)
    return method.attribute(x, target=targets, upsample=upsample, **kwargs)[:, 0].numpy()


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("arch", MODELS)
def test_variant_matches_pytorch_grad_cam(name, arch, monkeypatch):
    build, size, targets = MODELS[arch]
    if VARIANTS[name][1]:
        _float64(monkeypatch, VARIANTS[name][1])
    extra, layers = {}, LAYERS[arch]
    if name in ("score-cam", "ablation-cam"):  # K N forwards each side: one 32 x 32 image on ResNet-18 (128 channels)
        extra, layers = {"internal_batch_size": 50}, RELU_LAYERS[arch]
        size, targets = (32, targets[:1]) if arch == "resnet18" else (size, targets)
    x = _images(len(targets), size)
    for layer in layers:
        raw, resized = _theirs(name, build(), layer, x, targets)
        model = build()
        assert _relative(_ours(name, model, layer, x, targets, upsample=False, **extra), raw) <= RTOL, layer
        assert _relative(_ours(name, model, layer, x, targets, upsample=True, **extra), resized) <= RTOL, layer


def test_eigen_cam_sign_is_the_one_pytorch_grad_cams_lapack_gives_here():
    # The test above compares after the ReLU; here the signed projections, which a flipped sign would fail.
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    model, x = MODELS["resnet18"][0](), _images(3, 64, seed=4)
    store = {}
    model.layer3.register_forward_hook(lambda module, args, out: store.update(a=out))
    signed = nni.EigenCAM(model, "layer3", relu_attributions=False).attribute(x, upsample=False)[:, 0]
    with torch.no_grad():
        model(x)
    theirs = get_2d_projection(store["a"].numpy())
    assert (signed > 0).any() and (signed < 0).any()
    assert _relative(signed.numpy(), theirs) <= 1e-6  # theirs is float32


@pytest.mark.parametrize("arch", MODELS)
def test_full_grad_matches_pytorch_grad_cam(arch, monkeypatch):
    build, size, targets = MODELS[arch]
    _float64(monkeypatch, "pytorch_grad_cam.utils.image")
    x = _images(len(targets), size, seed=2)
    with pgc.FullGrad(model=build(), target_layers=[]) as cam:
        cam.aggregate_multi_layers = lambda per_layer: np.sum(per_layer, axis=1)  # its sum, without the final scaling
        theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in targets])
    ours = nni.FullGrad(build()).attribute(x, target=targets)[:, 0].numpy()
    assert _relative(ours, theirs) <= RTOL


def _vit():
    def build():
        vit = torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5
        )
        nn.init.normal_(vit.heads.head.weight, std=0.5)
        return vit

    return seeded(build)


def _tokens_to_grid(t):
    """pytorch-grad-cam's reshape_transform for the ViT: drop the class token, tokens -> (N, D, 4, 4)."""
    return t[:, 1:].reshape(t.shape[0], 4, 4, t.shape[2]).permute(0, 3, 1, 2)


@pytest.mark.parametrize("name", ["grad-cam-plus-plus", "hires-cam", "layer-cam", "eigen-cam", "score-cam"])
def test_vit_tokens_match_pytorch_grad_cam_with_its_reshape_transform(name, monkeypatch):
    if VARIANTS[name][1]:
        _float64(monkeypatch, VARIANTS[name][1])
    layer, targets = "encoder.layers.encoder_layer_1.ln_1", [0, 2, 4]
    x = _images(len(targets), 32, seed=3)
    raw, resized = _theirs(name, _vit(), layer, x, targets, reshape_transform=_tokens_to_grid)
    model = _vit()
    assert _relative(_ours(name, model, layer, x, targets, upsample=False), raw) <= RTOL
    assert _relative(_ours(name, model, layer, x, targets, upsample=True), resized) <= RTOL
