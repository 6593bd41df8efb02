"""Gradient-based attribution: the backpropagation family (report section 2.2.1)."""
from __future__ import annotations

import torch
from torch import nn

from ..core.base import Attribution, Target, check_inputs, forward_scores, resolve_target, select_target
from ..core.hooks import borrowed
from ..core.registry import register_method


def target_gradient(model: nn.Module, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of each sample's target score with respect to its input.

    The scores of the batch are summed before one backward pass; since samples do not interact in a
    model in eval mode, row ``i`` of the result is ``d f_{c_i}(x_i) / d x_i``. Call inside
    :func:`~nn_interpretability.core.hooks.borrowed`.

    Returns
    -------
    (gradient, target indices)
    """
    x = inputs.detach().requires_grad_(True)
    output = forward_scores(model, x)
    indices = resolve_target(target, output)
    (gradient,) = torch.autograd.grad(select_target(output, indices).sum(), x)
    return gradient, indices


@register_method("saliency")
class Saliency(Attribution):
    """Vanilla backpropagation: the gradient of the target logit w.r.t. the input.

    Simonyan et al. 2013; the report's eq. (4) and the textbook's eq. 9.12–9.13. Unlike Captum, the
    signed gradient is returned unless ``abs=True`` is asked for.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None, abs: bool = False) -> torch.Tensor:
        """Return ``d f_c / d x`` with the shape of ``inputs``; ``abs=True`` gives its magnitude."""
        inputs = check_inputs(inputs)
        with borrowed(self.model):
            gradient, _ = target_gradient(self.model, inputs, target)
        return gradient.abs() if abs else gradient
