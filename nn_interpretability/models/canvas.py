"""The CNN of the localisation benchmark: classifies the large digit of a 64×64 MNIST canvas among smaller distractors."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.canvas import compose_canvases
from .training import fit


class CanvasCNN(nn.Module):
    """Four 3×3 conv layers (8, 16, 32, 64 filters) with ReLU and three max-pools, global average pooling, one linear layer.

    The architecture CAM is defined for (Zhou et al. 2016, eq. 1-2): ``features[-1]`` is the last conv
    layer's ReLU (64 maps of 8×8 for a 64×64 canvas, a receptive field of 38 pixels, enough to see a
    whole 28×28 digit and tell it from a 14×14 distractor), ``fc`` the class weights.
    """

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64), num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for index, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            if index < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.gap(self.features(x))))


def train_canvas_classifier(
    model: nn.Module,
    digits: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_size: int = 64,
    lr: float = 5e-3,
    seed: int = 0,
    desc: str = "training canvas CNN",
) -> nn.Module:
    """Train on fresh canvases every epoch: each batch's digits become the targets of new random canvases.

    The distractors come from all of ``digits`` (of other classes than each target), positions and
    distractors from :func:`~nn_interpretability.models.training.fit`'s seeded generator, so every epoch
    sees new compositions of the same digits (the augmentation). Convolutions run channels-last (about
    twice as fast on CPU at full resolution). Returns the model in eval mode.
    """

    def batch_loss(model, x, y, generator, epoch):
        canvases, _ = compose_canvases(x, y, digits, labels, generator)
        return F.cross_entropy(model(canvases.contiguous(memory_format=torch.channels_last)), y)

    model.to(memory_format=torch.channels_last)
    fit(model, digits, labels, epochs, batch_loss, batch_size=batch_size, lr=lr, seed=seed, desc=desc)
    return model.to(memory_format=torch.contiguous_format)
