"""The activation and the class-score gradient of one layer, read by a hook: the raw material of a
hand-computed Grad-CAM (Selvaraju et al. 2017, eq. 1). Test helper shared by the unit and reference tests."""
from __future__ import annotations

import torch
from torch import nn


def activation_and_gradient(model: nn.Module, layer: str, x: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
    """The output of ``layer`` on ``x`` and the gradient of each sample's ``target`` score with respect to it."""
    store = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda module, args, out: store.update(a=out))
    try:
        scores = model(x)[torch.arange(len(x)), torch.as_tensor(target)]
        (gradient,) = torch.autograd.grad(scores.sum(), store["a"])
    finally:
        handle.remove()
    return store["a"].detach(), gradient
