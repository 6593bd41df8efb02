"""Deterministic training of the zoo's small models, with a progress bar."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core.progress import progress
from ..data.mnist import STROKE_THRESHOLD
from ..data.rotate import rotate_images

LossFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def cross_entropy_loss(output: torch.Tensor, labels: torch.Tensor, epoch: int) -> torch.Tensor:
    """Plain cross-entropy on logits (``epoch`` unused; the signature is shared with annealed losses)."""
    return F.cross_entropy(output, labels)


def random_affine(images: torch.Tensor, generator: torch.Generator, max_degrees: float, max_shift: float) -> torch.Tensor:
    """Randomly rotate (± ``max_degrees``) and translate (± ``max_shift`` pixels) each image of a batch."""
    n, _, height, width = images.shape
    angles = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(max_degrees)
    shifts = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift
    cos, sin = torch.cos(angles), torch.sin(angles)
    # affine_grid works in [-1, 1] coordinates: a shift of one pixel is 2 / size.
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shifts[:, 0] * 2 / width], 1),
            torch.stack([sin, cos, shifts[:, 1] * 2 / height], 1),
        ],
        1,
    ).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator, int], torch.Tensor]


def fit(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_loss: BatchLoss,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    desc: str = "training",
) -> nn.Module:
    """Train ``model`` with Adam and a one-cycle learning rate, reproducibly for a given ``seed``.

    ``batch_loss(model, images, labels, generator, epoch)`` returns the loss of one shuffled batch; it
    draws its augmentation from ``generator``. Shuffling, augmentation and dropout draw from seeded
    generators inside a forked RNG, so the caller's global random state is left untouched.
    Returns the model in eval mode.
    """
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2
        )
        model.train()
        with progress(None, desc, total=epochs * steps_per_epoch, unit="batch") as bar:
            for epoch in range(epochs):
                order = torch.randperm(len(images), generator=generator)
                for start in range(0, len(images), batch_size):
                    batch = order[start : start + batch_size]
                    loss = batch_loss(model, images[batch], labels[batch], generator, epoch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    bar.update()
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    return model.eval()


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    loss_fn: LossFn = cross_entropy_loss,
    augment: bool = True,
    desc: str = "training",
) -> nn.Module:
    """Train a classifier with :func:`fit`: ``loss_fn`` on its outputs, small random rotations and shifts.

    Returns the model in eval mode.
    """

    def batch_loss(model, x, y, generator, epoch):
        if augment:
            x = random_affine(x, generator, max_degrees=10.0, max_shift=2.0)
        return loss_fn(model(x), y, epoch)

    return fit(model, images, labels, epochs, batch_loss, batch_size=batch_size, lr=lr, seed=seed, desc=desc)


# --- segmentation: every pixel labelled with its digit, background as one more class ---------------

#: The class of background pixels in the segmentation labels: the 11th class after the ten digits.
BACKGROUND = 10


def segmentation_labels(images: torch.Tensor, labels: torch.Tensor, threshold: float = STROKE_THRESHOLD) -> torch.Tensor:
    """Per-pixel classes ``(N, H, W)``: the image's digit where intensity > ``threshold``, else :data:`BACKGROUND`."""
    stroke = images[:, 0] > threshold
    return torch.where(stroke, labels.reshape(-1, 1, 1), torch.full_like(labels, BACKGROUND).reshape(-1, 1, 1))


def train_segmenter(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    augment: bool = True,
    desc: str = "training segmenter",
) -> nn.Module:
    """Train a dense ``(N, 11, H, W)`` model with per-pixel cross-entropy on :func:`segmentation_labels`.

    The labels follow the augmented (slightly rotated and shifted) image, so they stay aligned with it.
    """

    def batch_loss(model, x, y, generator, epoch):
        if augment:
            x = random_affine(x, generator, max_degrees=10.0, max_shift=2.0)
        return F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), segmentation_labels(x, y))

    # Channels-last convolutions run about twice as fast on CPU for full-resolution (dilated) stacks.
    model.to(memory_format=torch.channels_last)
    fit(model, images, labels, epochs, batch_loss, batch_size=batch_size, lr=lr, seed=seed, desc=desc)
    return model.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int = BACKGROUND + 1, batch_size: int = 500
) -> dict:
    """Pixel accuracy and mean intersection over union (over ``num_classes`` classes) against :func:`segmentation_labels`.

    IoU is computed per class over all pixels of the batch, ``TP / (TP + FP + FN)``, then averaged.
    """
    device = next(model.parameters()).device
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        truth = segmentation_labels(x, labels[start : start + batch_size]).reshape(-1)
        predicted = model(x.to(device)).argmax(dim=1).cpu().reshape(-1)
        confusion += torch.bincount(truth * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, -1)
    true_positive = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - true_positive
    iou = true_positive / union.clamp(min=1)
    return {
        "pixel_accuracy": round(float(true_positive.sum() / confusion.sum()), 4),
        "mean_iou": round(float(iou.mean()), 4),
        "iou": [round(float(v), 3) for v in iou],
    }


# --- regression: the rotation angle of a digit ------------------------------------------------------


def random_rotations(images: torch.Tensor, max_degrees: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image rotated counter-clockwise by its own angle drawn uniformly from ± ``max_degrees``.

    Returns the rotated batch and the angles in degrees ``(N,)``.
    """
    angles = (torch.rand(len(images), generator=generator) * 2 - 1) * max_degrees
    return rotate_images(images, angles), angles


def train_angle_regressor(
    model: nn.Module,
    images: torch.Tensor,
    epochs: int,
    max_degrees: float = 60.0,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    desc: str = "training angle regressor",
) -> nn.Module:
    """Train a ``(N, 1)`` model with MSE to predict the angle of digits rotated by random angles in ± ``max_degrees``.

    Every batch draws new angles. The model learns the angle divided by ``max_degrees`` (targets in
    [-1, 1]); the scale is then folded into its last linear layer (``model.classifier[-1]``), so the
    trained model outputs degrees.
    """

    def batch_loss(model, x, y, generator, epoch):
        rotated, angles = random_rotations(x, max_degrees, generator)
        return F.mse_loss(model(rotated).reshape(-1), angles / max_degrees)

    fit(model, images, torch.zeros(len(images)), epochs, batch_loss, batch_size=batch_size, lr=lr, seed=seed, desc=desc)
    head = model.classifier[-1]
    with torch.no_grad():
        head.weight.mul_(max_degrees)
        head.bias.mul_(max_degrees)
    return model


@torch.no_grad()
def evaluate_regression(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 500) -> dict:
    """Mean absolute and root-mean-square error of a ``(N,)`` / ``(N, 1)`` output against ``targets``."""
    device = next(model.parameters()).device
    errors = torch.cat(
        [
            model(images[start : start + batch_size].to(device)).reshape(-1).cpu() - targets[start : start + batch_size]
            for start in range(0, len(images), batch_size)
        ]
    )
    return {"mae": round(float(errors.abs().mean()), 2), "rmse": round(float(errors.pow(2).mean().sqrt()), 2)}


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on a labelled batch, computed in chunks."""
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        output = model(images[start : start + batch_size].to(device))
        correct += (output.argmax(dim=1).cpu() == labels[start : start + batch_size]).sum().item()
    return correct / len(images)
