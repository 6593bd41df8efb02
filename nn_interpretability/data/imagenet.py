"""ImageNet pre- and post-processing: resizing, normalisation, class names and top-k decoding.

Two input normalisations are supported, each defined once in :data:`NORMALIZATIONS` and shared by
:func:`preprocess`, :func:`normalize`, :func:`denormalize`, :func:`deprocess` and
:func:`input_bounds`:

``"efficientnet_lite"``
    ``(pixel - 127) / 128`` for pixels in 0..255, roughly [-1, 1]; the convention of the TensorFlow
    EfficientNet-Lite models (Tan & Le, 2019) and of :func:`~nn_interpretability.models.
    efficientnet_lite.load_efficientnet_lite0`.
``"torchvision"``
    Per-channel ImageNet mean and standard deviation, as expected by torchvision's classifiers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine normalisation ``(x - mean) / std`` of RGB values ``x`` in [0, 1]."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def _as_tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = like.dtype if like.is_floating_point() else torch.float32
        mean = torch.tensor(self.mean, dtype=dtype, device=like.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=dtype, device=like.device).view(1, 3, 1, 1)
        return mean, std


NORMALIZATIONS: dict[str, Normalization] = {
    "efficientnet_lite": Normalization(mean=(127 / 255,) * 3, std=(128 / 255,) * 3),
    "torchvision": Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
}

# TensorFlow's EfficientNet evaluation crops the central 224/(224+32) of the shorter side.
_CROP_FRACTION = 224 / 256


def _normalization(name: str) -> Normalization:
    if name not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {name!r}; choose from {sorted(NORMALIZATIONS)}")
    return NORMALIZATIONS[name]


def normalize(images: torch.Tensor, normalization: str = "efficientnet_lite") -> torch.Tensor:
    """Map RGB images ``(N, 3, H, W)`` with values in [0, 1] to the model's input space."""
    mean, std = _normalization(normalization)._as_tensors(images)
    return (images - mean) / std


def denormalize(inputs: torch.Tensor, normalization: str = "efficientnet_lite") -> torch.Tensor:
    """Inverse of :func:`normalize`: model inputs ``(N, 3, H, W)`` back to RGB values in [0, 1]."""
    mean, std = _normalization(normalization)._as_tensors(inputs)
    return inputs * std + mean


def input_bounds(normalization: str = "efficientnet_lite") -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest and largest valid model input per channel, the images of black and white pixels.

    Returns
    -------
    low, high : torch.Tensor
        ``float32`` tensors of shape ``(1, 3, 1, 1)``, e.g. for the bounds of LRP's z^B rule.
    """
    return (
        normalize(torch.zeros(1, 3, 1, 1), normalization),
        normalize(torch.ones(1, 3, 1, 1), normalization),
    )


def _center_crop_resize(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    crop = int(_CROP_FRACTION * min(width, height))
    left = (width - crop) // 2
    top = (height - crop) // 2
    return image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BICUBIC)


def _to_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels in 0..255, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB array of shape (H, W, 3), got {array.shape}")
    return Image.fromarray(array)


def preprocess(images, size: int = 224, normalization: str = "efficientnet_lite") -> torch.Tensor:
    """Turn photos into a normalised batch for an ImageNet classifier.

    Each image is center-cropped to a square of 0.875 times its shorter side and resized to
    ``size`` with bicubic interpolation (the evaluation preprocessing of TensorFlow's EfficientNet;
    geometrically the same region as torchvision's resize-256/crop-224), then normalised.

    Parameters
    ----------
    images : numpy.ndarray, PIL.Image.Image or list of them
        RGB ``uint8`` array(s) of shape ``(H, W, 3)`` or PIL image(s).
    size : int
        Side of the square output.
    normalization : {"efficientnet_lite", "torchvision"}
        Which normalisation to apply (see :data:`NORMALIZATIONS`).

    Returns
    -------
    torch.Tensor
        ``float32`` tensor of shape ``(N, 3, size, size)``.
    """
    if isinstance(images, (np.ndarray, Image.Image)):
        images = [images]
    arrays = [np.asarray(_center_crop_resize(_to_pil(image), size)) for image in images]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    return normalize(batch, normalization)


def deprocess(inputs: torch.Tensor, normalization: str = "efficientnet_lite") -> np.ndarray:
    """Model inputs back to displayable images.

    Parameters
    ----------
    inputs : torch.Tensor
        ``(N, 3, H, W)`` or ``(3, H, W)`` in the model's input space.
    normalization : {"efficientnet_lite", "torchvision"}
        The normalisation the inputs were made with.

    Returns
    -------
    numpy.ndarray
        Float array ``(N, H, W, 3)`` clipped to [0, 1], e.g. for ``matplotlib.pyplot.imshow``.
    """
    inputs = inputs.detach()
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(0)
    images = denormalize(inputs, normalization).clamp(0, 1)
    return images.permute(0, 2, 3, 1).cpu().numpy()


@lru_cache(maxsize=1)
def _class_names() -> tuple[str, ...]:
    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, in index order (from torchvision's weight metadata)."""
    return list(_class_names())


def decode_predictions(logits: torch.Tensor, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """The ``top`` most probable classes of each sample.

    Parameters
    ----------
    logits : torch.Tensor
        ``(N, 1000)`` unnormalised class scores.
    top : int
        Number of classes per sample.

    Returns
    -------
    list of list of (int, str, float)
        Per sample, ``(class index, class name, softmax probability)`` sorted by probability.
    """
    names = _class_names()
    probabilities, indices = torch.softmax(logits.detach().float(), dim=1).topk(top, dim=1)
    return [
        [(index, names[index], probability) for probability, index in zip(row_p, row_i)]
        for row_p, row_i in zip(probabilities.tolist(), indices.tolist())
    ]
