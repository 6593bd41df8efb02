"""The 2-2-2 XOR network of the textbook's solved problems P9.1–P9.4 ("Post Training Analysis")."""
from __future__ import annotations

import torch
from torch import nn


def xor_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """Linear(2, 2) -> ReLU (poslin) -> Linear(2, 2) with the weights and biases of problem P9.1.

    W1 = [[1, -1], [-1, 1]], b1 = [-0.5, -0.5], W2 = [[1, 1], [-1, -1]], b2 = [-1, 1]. The outputs are
    the net inputs n^2 of the softmax layer (the class scores the textbook's methods explain).
    """
    network = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)).to(dtype)
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        network[0].bias.copy_(torch.tensor([-0.5, -0.5]))
        network[2].weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        network[2].bias.copy_(torch.tensor([-1.0, 1.0]))
    return network.eval()
