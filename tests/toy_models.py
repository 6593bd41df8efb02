"""Small seeded models shared by the tests: every architecture family the methods must handle."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nn_interpretability.models import MNISTCNN


def seeded(build, seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    """Build a model under a fixed seed, cast it to ``dtype`` and put it in eval mode."""
    torch.manual_seed(seed)
    return build().to(dtype).eval()


def mnist_cnn(seed: int = 0) -> nn.Module:
    """The zoo's MNIST CNN architecture with random weights (float64)."""
    return seeded(MNISTCNN, seed)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x))


class NestedFunctionalCNN(nn.Module):
    """Not a Sequential: nested blocks, functional ReLUs (F.relu, torch.relu, Tensor.relu), max-pooling."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([ConvBlock(1, 4), ConvBlock(4, 8)])
        self.head = nn.ModuleDict({"fc1": nn.Linear(8 * 7 * 7, 16), "fc2": nn.Linear(16, 10)})

    def forward(self, x):
        x = F.max_pool2d(self.blocks[0](x), 2)
        x = torch.relu(F.max_pool2d(self.blocks[1](x), 2))
        return self.head["fc2"](self.head["fc1"](x.flatten(1)).relu())


class ResidualBNNet(nn.Module):
    """A residual addition, BatchNorm and one in-place ReLU module reused at several places."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(6 * 4, 10)

    def forward(self, x):
        h = self.relu(self.bn1(self.stem(x)))
        h = self.relu(h + self.bn2(self.conv(h)))
        return self.fc(self.pool(h).flatten(1))


def residual_bn_net(seed: int = 0) -> nn.Module:
    """``ResidualBNNet`` with non-trivial BatchNorm statistics (so eval mode differs from identity)."""
    model = seeded(ResidualBNNet, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.copy_(torch.randn(6, generator=generator, dtype=torch.float64) * 0.1)
            bn.running_var.copy_(torch.rand(6, generator=generator, dtype=torch.float64) + 0.5)
            bn.weight.copy_(torch.rand(6, generator=generator, dtype=torch.float64) + 0.5)
            bn.bias.copy_(torch.randn(6, generator=generator, dtype=torch.float64) * 0.1)
    return model


def mnist_like_batch(n: int = 4, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A seeded batch of 28×28 single-channel inputs in [0, 1]."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed), dtype=dtype)


ARCHITECTURES = {
    "mnist_cnn": mnist_cnn,
    "nested_functional": lambda seed=0: seeded(NestedFunctionalCNN, seed),
    "residual_bn": residual_bn_net,
}
