"""Pretrained torchvision ImageNet classifiers, loaded from the local torch hub cache when possible."""
from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models
from torchvision.models import WeightsEnum

_MODELS: dict[str, tuple[Callable[..., nn.Module], WeightsEnum]] = {
    "vgg16": (models.vgg16, models.VGG16_Weights.IMAGENET1K_V1),
    "alexnet": (models.alexnet, models.AlexNet_Weights.IMAGENET1K_V1),
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
}


def _lookup(name: str) -> tuple[Callable[..., nn.Module], WeightsEnum]:
    if name not in _MODELS:
        raise ValueError(f"unknown torchvision model {name!r}; choose from {sorted(_MODELS)}")
    return _MODELS[name]


def cached_weights_path(name: str) -> str:
    """Where torchvision caches the ImageNet weights of model ``name``.

    The file is ``<torch.hub.get_dir()>/checkpoints/<file name of the weights URL>``, as written by
    ``torch.hub.load_state_dict_from_url``; it need not exist.
    """
    _, weights = _lookup(name)
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(weights.url).path))


def load_torchvision_model(name: str, download: bool = False) -> nn.Module:
    """A torchvision classifier with its ImageNet-1k weights (``IMAGENET1K_V1``), in eval mode.

    The weights are read offline from the torch hub cache (see :func:`cached_weights_path`). Only when
    they are not there and ``download=True`` does torchvision fetch them (and cache them).
    The models expect inputs with the ``"torchvision"`` normalisation of
    :func:`nn_interpretability.data.imagenet.preprocess`.

    Parameters
    ----------
    name : {"vgg16", "alexnet", "resnet18"}
        The architecture.
    download : bool
        Allow downloading missing weights from download.pytorch.org.

    Returns
    -------
    torch.nn.Module
        The pretrained model in eval mode.

    Raises
    ------
    ValueError
        If ``name`` is not one of the supported models.
    RuntimeError
        If the weights are not cached and ``download`` is False.
    """
    builder, weights = _lookup(name)
    path = cached_weights_path(name)
    if os.path.isfile(path):
        model = builder(weights=None)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    elif download:
        model = builder(weights=weights)
    else:
        raise RuntimeError(
            f"The ImageNet weights of {name!r} are not in the torch hub cache: expected {path}. "
            f"Allow the download with nni.load_model({name!r}, download=True), or place the file "
            f"from {weights.url} at that path."
        )
    return model.eval()


#: One model per torchvision classification family and the smallest input side it accepts (random
#: weights): the architectures the method coverage sweep runs (``tests/unit/test_torchvision_coverage.py``,
#: ``benchmarks/coverage.py``). ViT is a small ``VisionTransformer`` of the same class as ``vit_b_16``.
FAMILIES: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "alexnet": (models.alexnet, 64),
    "vgg": (models.vgg11, 32),
    "resnet": (models.resnet18, 32),
    "resnext": (models.resnext50_32x4d, 32),
    "wide_resnet": (models.wide_resnet50_2, 32),
    "densenet": (models.densenet121, 32),
    "googlenet": (lambda: models.googlenet(init_weights=True), 64),
    "inception_v3": (lambda: models.inception_v3(init_weights=True), 80),
    "squeezenet": (models.squeezenet1_0, 64),
    "shufflenet_v2": (models.shufflenet_v2_x0_5, 32),
    "mnasnet": (models.mnasnet0_5, 32),
    "mobilenet_v2": (models.mobilenet_v2, 32),
    "mobilenet_v3": (models.mobilenet_v3_small, 64),
    "efficientnet": (models.efficientnet_b0, 64),
    "efficientnet_v2": (models.efficientnet_v2_s, 32),
    "regnet": (models.regnet_y_400mf, 32),
    "convnext": (models.convnext_tiny, 32),
    "vit": (
        lambda: models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
        ),
        32,
    ),
    "swin": (models.swin_t, 64),
    "swin_v2": (models.swin_v2_t, 64),
    "maxvit": (models.maxvit_t, 224),
}


def family_model(family: str, dtype: torch.dtype = torch.float64, bias_free: bool = False, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A random-weight model of a torchvision family in eval mode and a seeded input batch of one image.

    ``bias_free`` zeroes every bias, class token and position embedding, so that relevance methods whose
    rules conserve exactly (LRP-0 without biases) can be checked to do so; the classifier's weights are
    drawn anew where torchvision initialises them to zero (ViT's head).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown torchvision family {family!r}; choose from {sorted(FAMILIES)}")
    build, size = FAMILIES[family]
    torch.manual_seed(seed)
    model = build().to(dtype)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if bias_free and name.endswith(("bias", "class_token", "pos_embedding")):
                parameter.zero_()
            elif parameter.dim() > 1 and not parameter.any():
                parameter.normal_(0.0, 0.05)
    generator = torch.Generator().manual_seed(seed)
    return model.eval(), torch.rand(1, 3, size, size, generator=generator, dtype=dtype)
