"""Gradient-based attribution: the backpropagation family (report section 2.2.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.activations import FUSED, intercept_activations
from ..core.attention import unfused_attention
from ..core.ops import fused_message
from ..core.base import Attribution, Run
from ..core.batching import broadcast_baselines_each, chunk_size, chunks
from ..core.registry import register_method
from ..core.vocabulary import renamed_arguments


def target_gradient(run: Run, x: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, ...]:
    """Gradient of each sample's target score with respect to each input (``x``, default the batch).

    The scores of the batch are summed before one backward pass; since samples do not interact in a
    model in eval mode, row ``i`` of the result is ``d f_{c_i}(x_i) / d x_i``. One gradient per input.
    For every class (``target="all"`` or ``(N, K)`` classes) the gradients are ``(N, K, ...)``: one
    forward, then the K backward passes batched (:func:`_every_class_gradient`).
    """
    xs = tuple(t.detach().requires_grad_(True) for t in (run.inputs_tuple if x is None else x))
    output = run.forward(run.like(xs))
    if run.every_class:
        return _every_class_gradient(output, run.classes_of(output), xs)
    return torch.autograd.grad(run.select(output).sum(), xs)


def _every_class_gradient(output: torch.Tensor, classes: torch.Tensor, xs: tuple) -> tuple[torch.Tensor, ...]:
    """``d f_{c_ik}(x_i) / d x_i`` for the classes ``(N, K)``, as ``(N, K, ...)`` per input.

    One backward of a one-hot seed per column, vectorised over the columns
    (``autograd.grad(..., is_grads_batched=True)``, i.e. ``vmap`` over the backward pass), as many
    columns at once as hold :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` gradient elements.
    """
    n, k = classes.shape
    blocks = list(chunks(k, chunk_size(sum(x.numel() for x in xs), None)))
    parts = []
    for i, columns in enumerate(blocks):
        seeds = F.one_hot(classes[:, columns.start : columns.stop].T, output.shape[1]).to(output.dtype)
        parts.append(
            torch.autograd.grad(output, xs, grad_outputs=seeds, is_grads_batched=True, retain_graph=i < len(blocks) - 1)
        )
    return tuple(torch.cat(column).movedim(0, 1) for column in zip(*parts))


def per_class(run: Run, x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, ...)`` broadcastable against maps ``(N, K, ...)`` when every class is explained."""
    return x.unsqueeze(1) if run.every_class else x


@register_method("saliency")
class Saliency(Attribution):
    """Vanilla backpropagation: the gradient of the target logit w.r.t. the input.

    Simonyan et al. 2013; the report's eq. (4) and the textbook's eq. 9.12–9.13. Unlike Captum, the
    signed gradient is returned unless ``abs=True`` is asked for.
    """

    multiple_inputs = True
    explains_every_class = True

    def _attribute(self, run: Run, abs: bool = False) -> torch.Tensor:
        """Return ``d f_c / d x`` with the shape of ``inputs``; ``abs=True`` gives its magnitude."""
        return run.like(g.abs() if abs else g for g in target_gradient(run))


@register_method("input-x-gradient")
class InputXGradient(Attribution):
    """Gradient × input: the textbook's "saliency contribution" (eq. 9.11 and 9.14).

    Shrikumar et al. 2016. For a piecewise-linear, positively homogeneous network (ReLU, no biases)
    it equals the first-order Taylor decomposition at the root point ``εx``, ``ε → 0`` (report eq. 4).
    """

    multiplies_by_inputs = True
    multiple_inputs = True
    explains_every_class = True

    def _attribute(self, run: Run) -> torch.Tensor:
        """Return ``x ∘ ∂f_c/∂x`` with the shape of ``inputs``."""
        return run.like(per_class(run, x) * g for x, g in zip(run.inputs_tuple, target_gradient(run)))


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
    baselines : None, float or Tensor
        The default root point ``x̃`` (``root`` before 0.2): a number, one tensor of the per-sample shape
        or one per sample; ``attribute(..., baselines=...)`` overrides it. ``None`` is the limit
        ``x̃ = εx, ε → 0``, whose gradient is the gradient at ``x`` for a ReLU network without biases,
        so the map is gradient × input.
    """

    takes_baselines = True
    multiplies_by_inputs = True
    multiple_inputs = True
    explains_every_class = True

    @renamed_arguments(root="baselines")
    def __init__(self, model: nn.Module, baselines=None):
        super().__init__(model)
        self.baselines = baselines

    def _attribute(self, run: Run, baselines=None) -> torch.Tensor:
        """Return ``∂f_c/∂x(x̃) ∘ (x − x̃)``; ``target=None`` explains the class predicted for ``x``."""
        baselines = self.baselines if baselines is None else baselines
        xs = run.inputs_tuple
        if baselines is None:
            return run.like(per_class(run, x) * g for x, g in zip(xs, target_gradient(run)))
        roots = tuple(root.contiguous() for root in broadcast_baselines_each(baselines, xs))
        if not run.every_class:
            run.selector  # the target chosen on x (e.g. its predicted class), not on the root point
        gradients = target_gradient(run, roots)
        return run.like(g * per_class(run, x - root) for g, x, root in zip(gradients, xs, roots))

    def __repr__(self) -> str:
        return f"SimpleTaylor({type(self.model).__name__}, baselines={self.baselines!r})"


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
_MONOTONE = (
    "celu", "elu", "hardshrink", "hardsigmoid", "hardtanh", "leaky_relu", "logsigmoid", "relu", "rrelu", "selu",
    "sigmoid", "softplus", "softshrink", "softsign", "tanh", "tanhshrink",
)  # fmt: skip
# Non-monotone activations (f' < 0 somewhere): smooth or hard rectifiers, ~x for large x, ~0 far below 0.
_NON_MONOTONE = ("gelu", "hardswish", "mish", "silu")
# Activations monotone for some arguments only (threshold with value > threshold, PReLU with a negative slope).
_SOMETIMES_MONOTONE = ("prelu", "threshold")
_RECTIFIERS = ("hardtanh", "leaky_relu", "prelu", "relu", "rrelu")


def _modified_backward_gradient(run: Run, handler) -> torch.Tensor:
    # Fused attention is written out (innermost), so that its activations reach the handler; its softmax
    # and products keep their gradient, as guided backpropagation modifies the activations only.
    with intercept_activations(handler), unfused_attention():
        return run.like(target_gradient(run))


@register_method("guided-backprop")
class GuidedBackprop(Attribution):
    """Guided backpropagation: the gradient with negative signals stopped at every activation.

    Springenberg et al. 2015, "Striving for simplicity: the all convolutional net"; the report's
    section 2.2.1. At a ReLU the backward signal is zero where the forward input *or* the incoming
    gradient is negative: ``R_in = 1[x > 0] · relu(R_out)``; at every other elementwise activation ``f``
    it is ``R_in = f'(x) · relu(R_out)``. For the monotone ones (ReLU6, LeakyReLU, PReLU with a
    non-negative slope, sigmoid, tanh, softplus, ELU, SELU, CELU, ...; ``f' >= 0``) this is the one
    natural extension. For the non-monotone ones (GELU, SiLU, Hardswish, Mish, PReLU with a negative
    slope, threshold with ``value > threshold``) it is a choice: the incoming signal is rectified, then
    multiplied by the derivative, so ``R_in`` is negative where ``f'(x) < 0`` (GELU below about -0.75).
    Captum's GuidedBackprop modifies ``nn.ReLU`` modules only and leaves these activations (and
    functional ReLUs) with their plain gradient ``f'(x) · R_out``, silently.

    Activations are caught in every form: modules (nested, reused, ``inplace=True``) and functional
    calls (``F.relu``, ``torch.relu``, ``Tensor.relu``, ``F.gelu``). ``nn.MultiheadAttention`` and
    ``F.scaled_dot_product_attention`` are written out (their softmax and products keep their
    gradient); fused recurrent kernels that hide their activations (``nn.LSTM``, ``nn.GRU``) and calls
    that may be a ReLU in disguise (``torch.where``, ``clamp``) raise, naming the operation.
    """

    multiple_inputs = True
    explains_every_class = True

    def _attribute(self, run: Run) -> torch.Tensor:
        """Return the guided gradient of each sample's target score, with the shape of ``inputs``."""

        def guided(name, x, call):
            if name == "max_pool":
                return call(x)
            if name in FUSED:
                raise NotImplementedError(fused_message(name, "GuidedBackprop"))
            if name not in _MONOTONE + _NON_MONOTONE + _SOMETIMES_MONOTONE:
                raise NotImplementedError(
                    f"GuidedBackprop has no rule for the model's {name}: a newly catalogued activation must be added to "
                    "_MONOTONE or _NON_MONOTONE in attribution/gradient.py; use Saliency meanwhile"
                )
            # relu(R_out) at the output, then the activation's own backward multiplies it by f'(x).
            return _RectifyGradient.apply(call(x))

        return _modified_backward_gradient(run, guided)


@register_method("deconvolution")
class Deconvolution(Attribution):
    """Deconvolution as a backward pass: ``R_in = relu(R_out)`` at every rectifier, ignoring the input.

    Zeiler & Fergus 2014, in the form of Springenberg et al. 2015 (a DeConvNet's signal equals a
    backward pass whose ReLUs rectify the incoming signal instead of gating it by the forward input);
    the report's section 2.2.2. For the mirrored network with max-unpooling switches see
    :class:`~nn_interpretability.attribution.deconvnet.DeconvNetReconstruction`. Rectifiers (ReLU,
    ReLU6, LeakyReLU, PReLU, RReLU, ``threshold(0, 0)``) are caught as modules and functional calls.
    The non-monotone activations GELU, SiLU, Hardswish and Mish, smooth or hard rectifiers, get the
    same ``relu(R_out)``: a choice, as the deconvnet is defined for ReLUs only. Captum's Deconvolution
    modifies ``nn.ReLU`` modules only and leaves them with their plain gradient, silently. Other
    activations (sigmoid, tanh, ELU, SELU, ...) and fused kernels raise, naming the operation.
    """

    multiple_inputs = True
    explains_every_class = True

    def _attribute(self, run: Run) -> torch.Tensor:
        """Return the deconvolution signal at the input for each sample's target score."""

        def deconv(name, x, call):
            if name == "max_pool":
                return call(x)
            if name in FUSED:
                raise NotImplementedError(fused_message(name, "Deconvolution"))
            relu = name == "threshold" and call.argument("threshold", 1) == 0 and call.argument("value", 2) == 0
            if name not in _RECTIFIERS + _NON_MONOTONE and not relu:
                raise NotImplementedError(
                    f"Deconvolution is defined for rectifiers ({', '.join(_RECTIFIERS + _NON_MONOTONE)}, threshold(0, 0)); "
                    f"the model uses {name}"
                )
            return _DeconvActivation.apply(x, call)

        return _modified_backward_gradient(run, deconv)
