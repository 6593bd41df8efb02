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
