"""Gradient-based attribution: the backpropagation family (report section 2.2.1)."""
from __future__ import annotations

import torch
from torch import nn

from ..core.activations import intercept_activations
from ..core.base import Attribution, Target, check_inputs, forward_scores, resolve_target, select_target
from ..core.hooks import borrowed
from ..core.registry import register_method
from .integrated_gradients import _broadcast_baselines


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


@register_method("input-x-gradient")
class InputXGradient(Attribution):
    """Gradient × input: the textbook's "saliency contribution" (eq. 9.11 and 9.14).

    Shrikumar et al. 2016. For a piecewise-linear, positively homogeneous network (ReLU, no biases)
    it equals the first-order Taylor decomposition at the root point ``εx``, ``ε → 0`` (report eq. 4).
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Return ``x ∘ ∂f_c/∂x`` with the shape of ``inputs``."""
        inputs = check_inputs(inputs)
        with borrowed(self.model):
            gradient, _ = target_gradient(self.model, inputs, target)
        return inputs * gradient


@register_method("simple-taylor")
class SimpleTaylor(Attribution):
    """Simple Taylor decomposition: the first-order term ``∂f_c/∂x(x̃) ∘ (x − x̃)`` (report eq. 4, 11).

    Montavon et al. 2017, "Explaining nonlinear classification decisions with deep Taylor
    decomposition", section 3. The relevance of input ``i`` is its share of the linear term of the
    Taylor expansion of the class score around the root point ``x̃``.

    Parameters
    ----------
    model : nn.Module
        A classifier returning class scores ``(N, C)``.
    root : None, float or Tensor
        The root point ``x̃``: a number, one tensor of the per-sample shape or one per sample. ``None``
        is the limit ``x̃ = εx, ε → 0``, whose gradient is the gradient at ``x`` for a ReLU network
        without biases, so the map is gradient × input.
    """

    def __init__(self, model: nn.Module, root=None):
        super().__init__(model)
        self.root = root

    def attribute(self, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Return ``∂f_c/∂x(x̃) ∘ (x − x̃)``; ``target=None`` explains the class predicted for ``x``."""
        inputs = check_inputs(inputs)
        if self.root is None:
            return InputXGradient(self.model).attribute(inputs, target)
        root = _broadcast_baselines(self.root, inputs)
        with borrowed(self.model):
            if target is None:
                with torch.no_grad():
                    target = forward_scores(self.model, inputs).argmax(1)
            gradient, _ = target_gradient(self.model, root.contiguous(), target)
        return gradient * (inputs - root)

    def __repr__(self) -> str:
        return f"SimpleTaylor({type(self.model).__name__}, root={self.root!r})"


class _RectifyGradient(torch.autograd.Function):
    """Identity forward; the backward passes only the positive part of the incoming gradient."""

    @staticmethod
    def forward(ctx, output):
        return output.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clamp(min=0)


class _DeconvActivation(torch.autograd.Function):
    """The activation forward; backward ``relu(grad)`` regardless of the input (Zeiler & Fergus)."""

    @staticmethod
    def forward(ctx, inputs, activation):
        return activation(inputs)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clamp(min=0), None


# Monotone activations: f' >= 0, so rectifying the gradient before or after f' is the same.
_MONOTONE = ("elu", "hardtanh", "leaky_relu", "relu", "sigmoid", "softplus", "tanh")
_RECTIFIERS = ("hardtanh", "leaky_relu", "relu")


def _modified_backward_gradient(method: Attribution, inputs, target, handler) -> torch.Tensor:
    inputs = check_inputs(inputs)
    with borrowed(method.model), intercept_activations(handler):
        gradient, _ = target_gradient(method.model, inputs, target)
    return gradient


@register_method("guided-backprop")
class GuidedBackprop(Attribution):
    """Guided backpropagation: the gradient with negative signals stopped at every activation.

    Springenberg et al. 2015, "Striving for simplicity: the all convolutional net"; the report's
    section 2.2.1. At a ReLU the backward signal is zero where the forward input *or* the incoming
    gradient is negative: ``R_in = 1[x > 0] · relu(R_out)``. Other monotone activations (ReLU6,
    LeakyReLU, sigmoid, tanh, softplus, ELU) get ``f'(x) · relu(R_out)``. ReLUs are caught in every
    form: modules (nested, reused, ``inplace=True``) and functional calls (``F.relu``, ``torch.relu``,
    ``Tensor.relu``). Non-monotone activations (GELU, SiLU) raise, since the rule is undefined there.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Return the guided gradient of each sample's target score, with the shape of ``inputs``."""

        def guided(name, x, call):
            if name == "max_pool":
                return call(x)
            if name not in _MONOTONE:
                raise NotImplementedError(
                    f"GuidedBackprop is defined for monotone activations ({', '.join(_MONOTONE)}); the model uses {name}"
                )
            return _RectifyGradient.apply(call(x))

        return _modified_backward_gradient(self, inputs, target, guided)


@register_method("deconvolution")
class Deconvolution(Attribution):
    """Deconvolution as a backward pass: ``R_in = relu(R_out)`` at every rectifier, ignoring the input.

    Zeiler & Fergus 2014, in the form of Springenberg et al. 2015 (a DeConvNet's signal equals a
    backward pass whose ReLUs rectify the incoming signal instead of gating it by the forward input);
    the report's section 2.2.2. For the mirrored network with max-unpooling switches see
    :class:`~nn_interpretability.attribution.deconvnet.DeconvNetReconstruction`. Rectifiers (ReLU,
    ReLU6, LeakyReLU) are caught as modules and functional calls; other activations raise.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Return the deconvolution signal at the input for each sample's target score."""

        def deconv(name, x, call):
            if name == "max_pool":
                return call(x)
            if name not in _RECTIFIERS:
                raise NotImplementedError(
                    f"Deconvolution is defined for rectifiers ({', '.join(_RECTIFIERS)}); the model uses {name}"
                )
            return _DeconvActivation.apply(x, call)

        return _modified_backward_gradient(self, inputs, target, deconv)
