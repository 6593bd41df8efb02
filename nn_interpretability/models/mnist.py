"""The MNIST models of the report: a general CNN (with or without dropout, optionally evidential),
global-average-pooling CNNs for CAM, and the 0-vs-1 CNN of the method-agreement study; beyond
classification, a per-pixel digit segmenter and a rotation-angle regressor."""
from __future__ import annotations

from torch import nn


class MNISTCNN(nn.Module):
    """Three 3×3 conv layers (10, 20, 40 filters) with two max-pools, then two linear layers.

    The first conv layer has ten filters as in the report's Fig. 8 and the three conv layers are the
    Grad-CAM layers of Fig. 17. ``dropout > 0`` inserts dropout after each pooling stage and before the
    last linear layer (the MC-dropout model of section 3.1); ``evidential=True`` ends in a ReLU so the
    outputs are non-negative evidence (section 3.2, Sensoy et al. 2018).
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.0, evidential: bool = False):
        super().__init__()

        def drop(p: float) -> list[nn.Module]:
            return [nn.Dropout(p)] if dropout > 0 else []

        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(10, 20, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            *drop(dropout / 2),
            nn.Conv2d(20, 40, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            *drop(dropout / 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(40 * 7 * 7, 128),
            nn.ReLU(),
            *drop(dropout),
            nn.Linear(128, num_classes),
            *([nn.ReLU()] if evidential else []),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class GAPCNN(nn.Module):
    """Conv layers, global average pooling and one linear layer: the architecture CAM requires (eq. 24).

    ``map_size`` (3 or 6) is the side of the last conv layer's feature maps for 28×28 inputs; the
    report's Fig. 16 compares the two. ``features[-1]`` is the last conv block's ReLU, ``fc`` the
    class weights w_c^k.
    """

    def __init__(self, map_size: int = 6, num_classes: int = 10):
        super().__init__()
        if map_size == 6:  # 28 -> pool 14 -> valid conv 12 -> pool 6
            layers = [
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            ]
        elif map_size == 3:  # 28 -> pool 14 -> pool 7 -> pool 3
            layers = [
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            ]
        else:
            raise ValueError(f"map_size must be 3 or 6, got {map_size}")
        self.features = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.gap(self.features(x))))


class BinaryCNN(nn.Module):
    """One conv layer and a few small linear layers classifying MNIST 0 vs 1 (seed 000, section 1)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(8 * 12 * 12, 32),
            nn.ReLU(),
            nn.Linear(32, 16),
            nn.ReLU(),
            nn.Linear(16, 2),
        )

    def forward(self, x):
        return self.fc(self.conv(x))


class DigitSegmenter(nn.Module):
    """A fully convolutional net labelling every pixel with its digit, background as class ``num_classes - 1``.

    3×3 convolutions with same padding and growing dilation (1, 2, 4, 8, 16, 1 by default: a receptive
    field of 65 pixels, so every pixel sees the whole 28×28 digit) keep the resolution throughout, so
    no pooling and upsampling are needed; a 1×1 convolution gives the ``(N, 11, 28, 28)`` class
    scores. The hidden convolutions have no bias: a hidden unit is active only where its receptive
    field holds ink, so no unit carries relevance its inputs cannot take, and LRP without the bias in
    its denominators conserves a region's score exactly. ``features[-1]`` is the last hidden ReLU (a
    Grad-CAM layer).
    """

    def __init__(self, width: int = 24, dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1), num_classes: int = 11):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for dilation in dilations:
            conv = nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation, bias=False)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # keeps the signal's scale through the stack
            layers += [conv, nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x):
        return self.head(self.features(x))


class AngleRegressor(MNISTCNN):
    """The general CNN with one output: the counter-clockwise rotation angle of a digit, in degrees ``(N, 1)``.

    ``classifier[-1]`` is the output layer; the zoo trains it on normalised angles and folds the
    scale into its weights, so the output is in degrees without a scaling step.
    """

    def __init__(self):
        super().__init__(num_classes=1)


def mnist_vit(num_classes: int = 10) -> nn.Module:
    """A small vision transformer for MNIST: torchvision's ``VisionTransformer`` with 7×7 patches.

    Dosovitskiy et al. 2021. 16 patch tokens and a class token, width 64, 3 encoder blocks of 4 heads,
    MLP width 128; the patch embedding takes one channel. Being torchvision's class, every method that
    handles ``vit_b_16`` handles it (``nn.MultiheadAttention``, LayerNorm, GELU, the class token).
    """
    from torchvision.models import VisionTransformer

    model = VisionTransformer(
        image_size=28, patch_size=7, num_layers=3, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=num_classes
    )
    model.conv_proj = nn.Conv2d(1, 64, kernel_size=7, stride=7)
    return model
