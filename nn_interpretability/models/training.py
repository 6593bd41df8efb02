"""Deterministic training of the zoo's small models, with a progress bar."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

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
    """Train ``model`` with Adam and a one-cycle learning rate, reproducibly for a given ``seed``.

    Shuffling, augmentation (small random rotations and shifts) and dropout draw from seeded
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
        with tqdm(total=epochs * steps_per_epoch, desc=desc, unit="batch", leave=False) as bar:
            for epoch in range(epochs):
                order = torch.randperm(len(images), generator=generator)
                for start in range(0, len(images), batch_size):
                    batch = order[start : start + batch_size]
                    x = images[batch]
                    if augment:
                        x = random_affine(x, generator, max_degrees=10.0, max_shift=2.0)
                    loss = loss_fn(model(x), labels[batch], epoch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    bar.update()
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on a labelled batch, computed in chunks."""
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        output = model(images[start : start + batch_size].to(device))
        correct += (output.argmax(dim=1).cpu() == labels[start : start + batch_size]).sum().item()
    return correct / len(images)
