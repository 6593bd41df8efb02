"""DeepLIFT: contributions of the differences from a baseline, propagated with multipliers (report section 2.2.6).

Shrikumar, Greenside & Kundaje 2017, "Learning important features through propagating activation
differences" (ICML), and the textbook's eq. 9.30–9.49. Every unit ``a`` has a difference from its value
on the baseline, ``Δa = a(x) − a(x')``; DeepLIFT gives each input a contribution ``c_i = m_i Δx_i``
(eq. 9.40–9.41) with multipliers ``m`` that obey the chain rule (eq. 9.38), so that the contributions
sum to the difference of the explained score, ``Σ_i c_i = f_c(x) − f_c(x')`` (summation-to-delta).

How it runs, on any ``nn.Module``, in one forward and one backward pass: the input and its baseline go
through the model as one batch (for RevealCancel with two more copies that carry the positive and
negative parts of every difference). Activations and max-pooling are routed through
:func:`~nn_interpretability.core.activations.intercept_activations` (modules, reused or in-place
modules and functional calls alike), linear layers and dropout through a
:class:`torch.overrides.TorchFunctionMode` of this module; their backward passes return DeepLIFT
multipliers instead of derivatives. Additions, BatchNorm in eval mode, average pooling, padding and
reshaping are affine, so autograd's ordinary backward through them already is the Linear rule.

The operations of modern networks are treated by rules that keep summation-to-delta exact: products of
two input-dependent tensors (gating, squeeze-excitation, GLU, attention's ``q kᵀ`` and ``A v``) by the
product rule ``Δ(ab) = ā Δb + Δa b̄`` (:meth:`_Propagation._product`), softmax in log-sum-exp form
(elementwise secants and linear maps), and LayerNorm, GroupNorm, RMSNorm and division as compositions of
the product rule, elementwise secants and linear maps.
``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention`` run written out
(:func:`~nn_interpretability.core.attention.unfused_attention`) so that these rules see their parts.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..core import ops
from ..core.activations import ACTIVATIONS, FUSED, intercept_activations
from ..core.attention import unfused_attention
from ..core.base import Attribution, Run
from ..core.batching import broadcast_baselines_each
from ..core.registry import register_method

#: Rules for the nonlinearities: the plain derivative, Rescale (eq. 9.47) or RevealCancel.
RULES = ("gradient", "rescale", "reveal_cancel")

#: The report's six modes (section 2.2.6) as ``(rule, linear_rule)``.
MODES = {
    "NoRule": ("gradient", False),
    "Linear": ("gradient", True),
    "Rescale": ("rescale", False),
    "LinearRescale": ("rescale", True),
    "RevealCancel": ("reveal_cancel", False),
    "LinearRevealCancel": ("reveal_cancel", True),
}

_MAX_POOL = "max_pool"
# Activations whose secant slope is exact up to a few ulps (both differences come from the same
# linear pieces); a smooth activation's secant loses its digits to rounding when Δx is tiny.
_PIECEWISE_LINEAR = frozenset(
    {"relu", "leaky_relu", "hardtanh", "prelu", "hardsigmoid", "threshold", "rrelu", "hardshrink", "softshrink"}
)
# Elementwise functions whose domain is not every real number: RevealCancel gives their parts the secant.
_RESTRICTED_DOMAIN = frozenset({"log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal", "pow"})
# Powers and logarithms of x: their curvature is relative to |x|, and so is the secant's tolerance.
_POWER_LAWS = frozenset({"log", "log2", "log10", "sqrt", "rsqrt", "reciprocal", "pow", "square"})
# Elementwise calls that may take a tensor parameter (PReLU's weight per channel, a tensor exponent): their
# derivative is taken on whole tensors, not on a subset.
_CHANNELWISE = frozenset({"prelu", "pow"})


def _smooth_tolerance(dtype: torch.dtype) -> float:
    """|Δx| below which a smooth activation's secant slope gives way to its derivative.

    ``eps^(1/3)`` balances the rounding error of the secant (``eps / Δx``) against the error of the
    midpoint derivative (``Δx²``): about 5e-3 in float32 and 6e-6 in float64, relative to ``max(1, |x|)``,
    or to ``|x|`` for powers and logarithms (:data:`_POWER_LAWS`), whose curvature is relative to ``x``
    (the secant of ``1/x`` from 1e-6 to 2e-6 is half its derivative at the midpoint).
    """
    return torch.finfo(dtype).eps ** (1 / 3)


def _ratio(name: str, numerator, denominator, ends: tuple, fallback: Callable[[torch.Tensor], torch.Tensor]):
    """``numerator / denominator``, or a derivative (never a constant) where the quotient is ill-defined.

    ``ends`` are the two points whose difference is ``denominator``. ``fallback(where)`` returns the
    derivative for the elements selected by the boolean mask ``where`` (activations act element by
    element, so it is evaluated there only).
    """
    if name in _PIECEWISE_LINEAR:
        defined = denominator != 0
    else:
        scale = torch.maximum(ends[0].abs(), ends[1].abs())
        if name not in _POWER_LAWS:
            scale = scale.clamp(min=1)
        defined = denominator.abs() > _smooth_tolerance(denominator.dtype) * scale
    ratio = numerator / torch.where(defined, denominator, torch.ones_like(denominator))
    undefined = ~defined
    if bool(undefined.any()):
        ratio[undefined] = fallback(undefined)
    return ratio


def _pullback(call, t: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` pulled back through ``call`` at ``t`` (vector-Jacobian product); for max-pooling the
    values land on the unit holding each window's maximum."""
    with torch.enable_grad():
        t = t.detach().requires_grad_(True)
        (pulled,) = torch.autograd.grad(call(t), t, values)
    return pulled


class _Multipliers(torch.autograd.Function):
    """A rule's output on the forward pass and the rule's multipliers on the backward pass.

    ``rule(x)`` returns the output and a function that maps the output's gradient (the multipliers of
    the layer above) to the input's.
    """

    @staticmethod
    def forward(ctx, x, rule):
        output, ctx.backward_rule = rule(x)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.backward_rule(grad_output), None


def _depends(value) -> bool:
    """Whether ``value`` (a tensor or a sequence of them) depends on the input, i.e. requires grad."""
    if isinstance(value, torch.Tensor):
        return value.requires_grad
    if isinstance(value, (list, tuple)):
        return any(_depends(v) for v in value)
    return False


def _dependent_count(args: tuple, kwargs: dict) -> int:
    """How many of a call's tensors (also inside lists, as in ``torch.einsum(eq, [a, b])``) depend on the input."""
    return sum(isinstance(value, torch.Tensor) and value.requires_grad for value in tree_flatten((args, kwargs))[0])


def _named_arguments(entry: ops.OpEntry, args: tuple, kwargs: dict) -> dict:
    """A softmax or normalisation call's arguments by name, defaults filled in, whatever its spelling."""
    if entry.spelling.startswith("torch.nn.functional."):
        return ops.bound_arguments(entry.func, args, kwargs)
    named = dict(zip(_BUILTIN_PARAMETERS[entry.name], args))  # trailing flags (cudnn_enable) are dropped
    return ops.bound_arguments(getattr(F, entry.name), (), {**named, **kwargs})


def _einsum_keeps_samples(equation: str, a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``torch.einsum(equation, a, b)`` keeps the samples along the first dimension of ``a``, ``b`` and
    the result: one subscript (or a non-empty ``...`` of the same length) leads all three."""
    inputs, arrow, output = equation.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if not arrow or len(terms) != 2:
        return False
    leads = {term[:3] if term.startswith("...") else term[:1] for term in (*terms, output)}
    if len(leads) != 1 or leads == {""}:
        return False
    if leads != {"..."}:
        return True
    ellipses = [t.dim() - (len(term) - 3) for t, term in zip((a, b), terms)]
    return ellipses[0] == ellipses[1] > 0


# Affine in each input-dependent argument: autograd's backward through these is the Linear rule, and
# applied to the copies x' + Δ+ and x' + Δ− they carry the positive and negative parts along.
_AFFINE = ops.functions(
    ops.RESHAPE, ops.RESAMPLE, ops.AVG_POOL, names=("add", "sub", "rsub", "neg", "positive", "sum", "mean", "cumsum")
) | {F.batch_norm}
# Linear and convolutional layers: the ones the Linear rule re-splits (input, weight, bias come first).
_LINEAR_LAYERS = ops.functions(ops.LINEAR)
# Linear in each factor (layers in input and weight): affine while at most one factor depends on the input.
_PRODUCTS = _LINEAR_LAYERS | ops.functions(ops.PRODUCT, names=("mul",))
# Bilinear in their two operands: the product rule treats them when both depend on the input.
_BILINEAR = ops.functions(names=("mul", "matmul", "bmm", "einsum"))
_MATRIX_PRODUCTS = ops.functions(names=("matmul", "bmm"))
# Quotients a / b: linear in the dividend; a · (1 / b) where the divisor depends on the input.
_QUOTIENTS = ops.functions(names=("div", "rdiv"))
# Elementwise maths (exp, log, pow, sqrt, rsqrt, square, reciprocal, ...): nonlinearities of one tensor.
_ELEMENTWISE_MATH = ops.functions(ops.MATH)
_SOFTMAXES = ops.functions(ops.SOFTMAX)
# Normalisations by statistics of each sample, composed of exact rules.
_STANDARDISATIONS = ops.functions(names=("layer_norm", "group_norm", "rms_norm"))
_SUPPORTED = _AFFINE | _PRODUCTS | _QUOTIENTS
# Positional parameters of the builtin spellings (torch.*, Tensor.*) of the softmaxes and normalisations,
# which have no Python signature; their defaults are those of the torch.nn.functional spelling.
_BUILTIN_PARAMETERS = {
    "softmax": ("input", "dim", "dtype"),
    "log_softmax": ("input", "dim", "dtype"),
    "layer_norm": ("input", "normalized_shape", "weight", "bias", "eps"),
    "group_norm": ("input", "num_groups", "weight", "bias", "eps"),
    "rms_norm": ("input", "normalized_shape", "weight", "eps"),
}
# Dropout whose dropped units take a non-zero value: in training mode not affine in its input.
_ALPHA_DROPOUTS = ("alpha_dropout", "feature_alpha_dropout")
_NON_STRICT = (
    "Pass strict=False to back-propagate the plain gradient through such operations (summation-to-delta may "
    "then fail; check return_convergence_delta)"
)


class _Propagation(TorchFunctionMode):
    """The DeepLIFT rules of one attribution, applied to ``blocks`` stacked copies of ``n`` samples.

    Rescale and the gradient rule stack ``(x, x')``; RevealCancel stacks ``(x, x', x' + Δ+, x' + Δ−)``,
    where the last two copies minus the second hold the positive and negative parts of every unit's
    difference. On the backward pass the first copy collects the multiplier shared by both parts and
    the last two the part-specific ones, so an input's contribution is ``(g_x + g_+) Δx+ + (g_x + g_−) Δx−``.
    """

    def __init__(self, rule: str, linear_rule: bool, blocks: int, n: int, strict: bool):
        super().__init__()
        self.rule = rule
        self.linear_rule = linear_rule
        self.blocks = blocks
        self.n = n
        self.strict = strict and rule != "gradient"
        self._paused = False

    @contextmanager
    def _pause(self) -> Iterator[None]:
        """Let the rules' own computations (derivatives for the fallbacks) through unchecked."""
        paused, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = paused

    def _check_rows(self, x: torch.Tensor, what: str) -> None:
        if x.dim() == 0 or x.shape[0] != self.blocks * self.n:
            raise ValueError(
                f"DeepLIFT runs the inputs and their baselines as one batch of {self.blocks} x {self.n} samples, "
                f"but {what} received a tensor of shape {tuple(x.shape)}: the model must keep the samples "
                "along the first dimension"
            )

    # -- activations and max-pooling ---------------------------------------------------------------

    def activation(self, name: str, x: torch.Tensor, call: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Handler for :func:`intercept_activations`: the nonlinearity with the rule's backward pass."""
        if name in FUSED:
            if self.strict:
                raise NotImplementedError(f"{ops.fused_message(name, 'DeepLIFT')}. {_NON_STRICT}")
            return call(x)
        if not x.requires_grad:
            return call(x)
        self._check_rows(x, f"the nonlinearity {name}")
        if name == _MAX_POOL:
            return _Multipliers.apply(x, partial(self._max_pool, call))
        return self._nonlinearity(name, call, x)

    def _nonlinearity(
        self, name: str, call: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, shared_secant: bool = False
    ) -> torch.Tensor:
        """``call(x)``, an elementwise function named ``name``, with the rule's multipliers on the backward pass.

        ``shared_secant`` asks RevealCancel for :meth:`_shared_secant` whatever the function (see there).
        """
        if self.rule == "rescale":
            rule = self._rescale
        else:
            rule = self._shared_secant if shared_secant or name in _RESTRICTED_DOMAIN else self._reveal_cancel
        return _Multipliers.apply(x, partial(rule, name, call))

    def _slope(self, name: str, call, t: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """The activation's derivative at the elements ``t[at]``."""
        with self._pause():
            if name in _CHANNELWISE:
                return _pullback(call, t, torch.ones_like(t))[at]
            return _pullback(call, t[at], torch.ones_like(t[at]))

    def _rescale(self, name, call, x):
        """Rescale rule, eq. 9.47: ``m = Δy / Δx``; where ``Δx → 0`` the derivative at the midpoint."""
        y = call(x)
        x_in, x_ref = x.chunk(2)
        y_in, y_ref = y.chunk(2)
        multiplier = _ratio(
            name, y_in - y_ref, x_in - x_ref, (x_in, x_ref), partial(self._slope, name, call, (x_in + x_ref) / 2)
        )

        def backward(grad):
            grad_in = grad.chunk(2)[0]
            return torch.cat([grad_in * multiplier, torch.zeros_like(grad_in)])

        return y, backward

    def _shared_secant(self, name, call, x):
        """RevealCancel's treatment of a function of restricted domain (log, sqrt, rsqrt, reciprocal, pow): both
        parts get the secant multiplier of Rescale, ``Δy± = (Δy / Δx) Δx±``.

        RevealCancel would evaluate the function at ``x0 + Δx+`` and ``x0 + Δx−``, which need not lie in its domain
        (a variance minus its negative contributions can be negative); the secant needs only ``x`` and ``x0``.
        The exponential of softmax's log-probabilities takes it too: their parts leave ``(−∞, 0]`` by the
        size of the logits' contributions and ``exp`` of them overflows.
        """
        x_in, x_ref, x_pos, x_neg = x.chunk(4)
        y_in, y_ref = call(torch.cat([x_in, x_ref])).chunk(2)
        multiplier = _ratio(
            name, y_in - y_ref, x_in - x_ref, (x_in, x_ref), partial(self._slope, name, call, (x_in + x_ref) / 2)
        )

        def backward(grad):
            grad_in, _, grad_pos, grad_neg = grad.chunk(4)
            zero = torch.zeros_like(grad_in)
            return torch.cat([zero, zero, (grad_in + grad_pos) * multiplier, (grad_in + grad_neg) * multiplier])

        # A part equal to the reference changes nothing, also where both are infinite (a softmax's masked
        # positions, -inf in every copy), whose difference would be nan.
        parts = [torch.where(x_part == x_ref, y_ref, y_ref + multiplier * (x_part - x_ref)) for x_part in (x_pos, x_neg)]
        return torch.cat([y_in, y_ref, *parts]), backward

    def _reveal_cancel(self, name, call, x):
        """RevealCancel rule (Shrikumar et al. 2017, section 3.5.3; the report's Fig. 14).

        With ``x0`` the activation's reference input and ``Δx+``, ``Δx−`` the positive and negative
        parts of the contributions to its input,
        ``Δy+ = ½ (f(x0 + Δx+) − f(x0)) + ½ (f(x0 + Δx− + Δx+) − f(x0 + Δx−))`` and ``Δy−`` likewise;
        each part gets its own multiplier ``Δy+ / Δx+`` or ``Δy− / Δx−``. Where a part vanishes, its
        multiplier is the limit of the ratio: the mean derivative at the part's two end points.
        """
        y = call(x)  # f(x), f(x0), f(x0 + Δx+), f(x0 + Δx−)
        x_in, x_ref, x_pos, x_neg = x.chunk(4)
        y_in, y_ref, y_pos, y_neg = y.chunk(4)
        # f(x0 + Δx+ + Δx−) is f(x); using it makes Δy+ + Δy− = Δy exactly.
        rise = ((y_pos - y_ref) + (y_in - y_neg)) / 2
        fall = ((y_neg - y_ref) + (y_in - y_pos)) / 2

        def mean_slope(start, end):  # the limit of the part's ratio as the part vanishes
            return lambda at: (self._slope(name, call, start, at) + self._slope(name, call, end, at)) / 2

        m_pos = _ratio(name, rise, x_pos - x_ref, (x_pos, x_ref), mean_slope(x_ref, x_neg))
        m_neg = _ratio(name, fall, x_neg - x_ref, (x_neg, x_ref), mean_slope(x_ref, x_pos))

        def backward(grad):
            grad_in, _, grad_pos, grad_neg = grad.chunk(4)
            zero = torch.zeros_like(grad_in)
            return torch.cat([zero, zero, (grad_in + grad_pos) * m_pos, (grad_in + grad_neg) * m_neg])

        return torch.cat([y_in, y_ref, y_ref + rise, y_ref + fall]), backward

    def _max_pool(self, call, x):
        """Max-pooling as a nonlinearity of many inputs whose shares sum to the output's difference.

        In each window the unit holding the maximum of ``x`` receives ``max(o, o') − o'`` and the unit
        holding the maximum of ``x'`` receives ``o − max(o, o')``: at most one share is non-zero and it
        never exceeds the unit's own difference in magnitude (the rule Captum uses). Multipliers are
        the shares divided by the units' differences; a unit without difference gets the gradient.
        RevealCancel takes the two shares as the output's positive and negative parts (with and
        without the Linear rule).
        """
        chunks = x.chunk(self.blocks)
        x_in, x_ref = chunks[0], chunks[1]
        out_in, out_ref = call(x_in), call(x_ref)
        top = torch.maximum(out_in, out_ref)
        rise, fall = top - out_ref, out_in - top
        difference = x_in - x_ref
        moved = difference != 0

        def backward(grad):
            grads = grad.chunk(self.blocks)
            m_pos, m_neg = (grads[0] + grads[2], grads[0] + grads[3]) if self.blocks == 4 else (grads[0], grads[0])
            shares = _pullback(call, x_in, m_pos * rise) + _pullback(call, x_ref, m_neg * fall)
            gradient = _pullback(call, x_in, (m_pos + m_neg) / 2)
            quotient = shares / torch.where(moved, difference, torch.ones_like(difference))
            multiplier = torch.where(moved, quotient, gradient)
            return torch.cat([multiplier, *[torch.zeros_like(multiplier)] * (self.blocks - 1)])

        parts = [out_ref + rise, out_ref + fall] if self.blocks == 4 else []
        return torch.cat([out_in, out_ref, *parts]), backward

    # -- products, quotients, elementwise maths, softmax and normalisations --------------------------

    def _check_blocks(self, x: torch.Tensor, what: str) -> None:
        """Like :meth:`_check_rows`, but the first dimension may also hold the samples times a factor, sample
        major (attention's ``(N · heads, T, d)``): the copies are then still its ``blocks`` equal chunks."""
        if x.dim() == 0 or x.shape[0] % (self.blocks * self.n) != 0:
            self._check_rows(x, what)

    def _product(self, call, a: torch.Tensor, b: torch.Tensor, ordered: torch.Tensor | None = None) -> torch.Tensor:
        """The product rule for ``call(a, b)``, bilinear in two input-dependent tensors (``a * b``, ``a @ b``, ...).

        ``ab − a'b' = ½ (a + a')(b − b') + ½ (a − a')(b + b')`` exactly, i.e. ``Δ(ab) = ā Δb + Δa b̄`` with
        ``ā = (a + a')/2``: the multiplier of ``a`` is ``b̄`` and that of ``b`` is ``ā`` (for matrix products
        ``Δ(AB) = Ā ΔB + ΔA B̄``). It is the Shapley value of the two-player game whose players are the
        changes of ``a`` and ``b`` (symmetric in the two factors), as DeepSHAP treats operations of two inputs
        (Lundberg & Lee 2017; the shap library's two-input handler); summation-to-delta holds exactly. With
        the multipliers fixed, the product is a linear map of ``(Δa, Δb)``, so RevealCancel carries the parts
        through it like a linear layer: ``Δy± = ā Δb± + Δa± b̄``, or under the Linear rule split anew by the
        sign of each term.

        Where the boolean mask ``ordered`` (broadcast against both factors) holds, the split is the ordered one
        ``Δ(ab) = a' Δb + Δa b``, as exact: :meth:`_standardise` takes it where the baseline's centred values
        vanish, so that the scale's change, which then changes nothing, gets no contribution.
        """
        a_in, a_ref, *a_parts = a.chunk(self.blocks)
        b_in, b_ref, *b_parts = b.chunk(self.blocks)
        a_mean, b_mean = ((a_in + a_ref) / 2).detach(), ((b_in + b_ref) / 2).detach()
        if ordered is not None:
            a_mean, b_mean = torch.where(ordered, a_ref.detach(), a_mean), torch.where(ordered, b_in.detach(), b_mean)

        def linear(a_change, b_change):  # Δ(ab) as the linear map of the two changes
            return call(a_change, b_mean) + call(a_mean, b_change)

        y_in, y_ref = call(a[: 2 * len(a_in)], b[: 2 * len(b_in)]).detach().chunk(2)
        surrogate = linear(a_in, b_in)  # value discarded, backward: the multipliers b̄ of a and ā of b
        outputs = [y_in + (surrogate - surrogate.detach()), y_ref]
        if self.blocks == 4:
            if self.linear_rule:
                total = linear(a_in - a_ref, b_in - b_ref)
                spread = call((a_in - a_ref).abs(), b_mean.abs()) + call(a_mean.abs(), (b_in - b_ref).abs())
                parts = [(total + spread) / 2, (total - spread) / 2]
            else:
                parts = [linear(a_part - a_ref, b_part - b_ref) for a_part, b_part in zip(a_parts, b_parts)]
            outputs += [y_ref + part for part in parts]
        return torch.cat(outputs)

    def _multipliable(self, a, b, matrix: bool) -> bool:
        """Whether two input-dependent factors keep the samples along their first dimension, aligned."""
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.dim() != b.dim():
            return False
        if a.dim() < (3 if matrix else 1) or a.shape[0] != b.shape[0]:
            return False
        return a.shape[0] % (self.blocks * self.n) == 0

    def _bilinear(self, func, entry: ops.OpEntry, args: tuple, kwargs: dict):
        """``a * b``, ``a @ b``, ``torch.bmm(a, b)``, ``torch.einsum(eq, a, b)`` of two input-dependent tensors."""
        if _dependent_count(args, kwargs) != 2:
            return None
        if entry.name == "einsum":
            equation, *operands = args
            if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
                operands = list(operands[0])
            if not isinstance(equation, str) or len(operands) != 2 or kwargs:
                return None
            a, b = operands
            if not (self._multipliable(a, b, False) and _einsum_keeps_samples(equation, a, b)):
                return None
            return self._product(partial(torch.einsum, equation), a, b)
        base, args, kwargs = ops.out_of_place(func, args, kwargs)
        if len(args) + len(kwargs) != 2:
            return None
        a, b = (*args, *kwargs.values())
        if not self._multipliable(a, b, func in _MATRIX_PRODUCTS):
            return None
        return self._product(base, a, b)

    def _quotient(self, func, entry: ops.OpEntry, args: tuple, kwargs: dict):
        """``a / b`` with an input-dependent divisor: ``a · (1 / b)``, the reciprocal's rule then the product rule."""
        if entry.name == "rdiv":  # Tensor.__rtruediv__(b, a) is a / b
            divisor, dividend = args
        else:
            values = {**dict(zip(("input", "other"), args)), **kwargs}
            dividend, divisor = values.get("input"), values.get("other")
            if values.get("rounding_mode") is not None:
                return None
        if not _depends(divisor) or (_depends(dividend) and not self._multipliable(dividend, divisor, False)):
            return None
        self._check_blocks(divisor, ops.describe(func))
        reciprocal = self._nonlinearity("reciprocal", torch.reciprocal, divisor)
        if _depends(dividend):
            return self._product(torch.mul, dividend, reciprocal)
        return torch.mul(dividend, reciprocal)

    def _elementwise(self, func, entry: ops.OpEntry, args: tuple, kwargs: dict):
        """exp, log, pow, sqrt, rsqrt, ... of one input-dependent tensor: a nonlinearity like the activations."""
        base, args, kwargs = ops.out_of_place(func, args, kwargs)
        dependent = [i for i, value in enumerate(args) if _depends(value)]
        if len(dependent) != 1 or _depends(tuple(kwargs.values())):
            return None
        i = dependent[0]
        x = args[i]
        others = [v.shape for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor) and v is not x]
        if torch.broadcast_shapes(x.shape, *others) != x.shape:
            return None  # the call broadcasts its input to a larger shape: not elementwise in it
        self._check_blocks(x, ops.describe(func))
        return self._nonlinearity(entry.name, lambda t: base(*args[:i], t, *args[i + 1 :], **kwargs), x)

    def _softmax_call(self, entry: ops.OpEntry, args: tuple, kwargs: dict):
        """A softmax, log-softmax or softmin call in any spelling, by :meth:`_softmax`."""
        arguments = _named_arguments(entry, args, kwargs)
        x, dim, dtype = arguments["input"], arguments["dim"], arguments["dtype"]
        if not _depends(x):
            return None
        if dtype is not None:
            x = x.to(dtype)
        if dim is None:  # torch's implicit dimension (deprecated)
            dim = 0 if x.dim() in (0, 1, 3) else 1
        return self._softmax(x, dim, entry.name)

    def _softmax(self, x: torch.Tensor, dim: int, name: str) -> torch.Tensor:
        """Softmax, log-softmax or softmin over ``dim`` composed of exact rules, in log-sum-exp form.

        ``log_softmax(x) = (x − c) − log Σ exp(x − c)`` (the secants of ``exp`` and ``log``, a sum and a
        difference, all exact) and ``softmax(x) = exp(log_softmax(x))``; ``softmin(x) = softmax(−x)``. The
        shift ``c`` (against overflow) is the maximum over the row of the input and of its baseline, the same
        constant for both (and for RevealCancel's copies), so that it contributes no difference.

        The form bounds every multiplier: the secant of ``exp`` on ``(−∞, 0]`` is at most 1, that of ``log``
        over the sums at most their reciprocal. The product ``exp(x − c) · (1 / Σ exp(x − c))`` would be as
        exact, but where the baseline's row is far below ``c`` its ``1 / Σ`` is huge (``e^20`` for
        ``softmax([20, 0, 10])`` from a zero baseline) and the product rule's two terms, ``±3671`` there,
        cancel to the difference of at most 1: the contributions would be meaningless and lose precision.
        """
        what = f"torch.{name}"
        self._check_blocks(x, what)
        dim = dim % x.dim()
        if dim == 0:
            raise ValueError(
                f"{what} over dimension 0 mixes the samples of the batch; DeepLIFT runs each input with its baseline "
                "in one batch, so the model must normalise within each sample"
            )
        if name == "softmin":
            x = -x
        peak = x.detach().amax(dim, keepdim=True).unflatten(0, (self.blocks, -1))[:2].amax(0)
        shifted = x - peak.repeat(self.blocks, *[1] * (x.dim() - 1))
        total = self._nonlinearity("exp", torch.exp, shifted).sum(dim, keepdim=True)
        with self._pause():
            # The input's and the baseline's sums: RevealCancel's parts take the secant of these two (see
            # :meth:`_shared_secant`), whatever their own sums are.
            sums = total.detach().unflatten(0, (self.blocks, -1))[:2]
            in_range = bool(sums.amin() > 0)
        if not in_range:
            # The row of the input or of its baseline lies so far below the shared shift that its exponentials
            # all underflow: its log-sum-exp, and so every multiplier behind it, would be nan.
            wider = "" if x.dtype == torch.float64 else ", or run the model in float64"
            raise ValueError(
                f"{what}: the input's and the baseline's values in one row differ by more than {x.dtype}'s exp can "
                f"span (about {math.log(torch.finfo(x.dtype).max):.0f}), so the row of one of them underflows to zeros "
                f"and DeepLIFT's exact shared shift cannot be used; choose a baseline closer to the input (e.g. a "
                f"blurred input){wider}"
            )
        log_probabilities = shifted - self._nonlinearity("log", torch.log, total)
        if name == "log_softmax":
            return log_probabilities
        return self._nonlinearity("exp", torch.exp, log_probabilities, shared_secant=True)

    def _normalisation(self, entry: ops.OpEntry, args: tuple, kwargs: dict):
        """LayerNorm, GroupNorm and RMSNorm: the statistics of each sample, composed of exact rules (see
        :meth:`_standardise`), then the affine weight and bias (linear)."""
        arguments = _named_arguments(entry, args, kwargs)
        x, weight, bias = arguments["input"], arguments["weight"], arguments.get("bias")
        if not _depends(x) or _depends(weight):
            return None
        what = f"torch.nn.functional.{entry.name}"
        self._check_blocks(x, what)
        if entry.name == "group_norm":
            grouped = x.reshape(x.shape[0], arguments["num_groups"], -1)
            y = self._standardise(grouped, (2,), arguments["eps"], centre=True).reshape(x.shape)
            channels = (-1, *[1] * (x.dim() - 2))  # weight and bias per channel
            weight, bias = (None if t is None else t.view(channels) for t in (weight, bias))
        else:
            shape = arguments["normalized_shape"]
            count = 1 if isinstance(shape, int) else len(shape)
            if count >= x.dim():
                raise ValueError(
                    f"{what} over all dimensions normalises across the samples of the batch; DeepLIFT runs each input "
                    "with its baseline in one batch, so the model must normalise within each sample"
                )
            eps = arguments["eps"]
            if eps is None:  # rms_norm's default
                eps = torch.finfo(x.dtype).eps
            dims = tuple(range(x.dim() - count, x.dim()))
            y = self._standardise(x, dims, eps, centre=entry.name != "rms_norm")
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
        return y

    def _standardise(self, x: torch.Tensor, dims: tuple, eps: float, centre: bool) -> torch.Tensor:
        """``(x − μ) / √(σ² + ε)`` over ``dims`` (``x / √(mean x² + ε)`` without ``centre``) by exact rules.

        Centring and means are linear; the square (secant ``Δ(c²) = (c + c') Δc``) and the reciprocal square
        root are elementwise nonlinearities; the centred value times the reciprocal root is a product (product
        rule). Every step keeps summation-to-delta exact, so the composition does. This differs from LRP,
        which holds the normalisation's scale ``1/σ`` constant (Ali et al. 2022, "XAI for Transformers: better
        explanations through conservative propagation"), making it a linear map at the input: DeepLIFT compares
        two points whose scales differ, and their contributions add up to the output's difference only if the
        change of the scale is attributed too.

        Where the baseline is constant over ``dims`` (zero for RMSNorm), its centred values ``c'`` vanish and its
        output is 0 whatever its scale ``r' = 1/√ε``; the product rule then takes the ordered split
        ``Δ(c r) = r Δc + c' Δr`` (:meth:`_product`), as exact, in which the scale's change gets no contribution
        and ``c`` the input's own scale ``r`` (Ali et al.'s constant scale, at the input). Shapley's
        ``r̄ Δc + c̄ Δr`` would pit two contributions of about ``|Δc| / (2√ε)`` against each other: ~500 times
        ``Δy`` for a unit variance and ``ε = 1e-6``, compounding from layer to layer, so that on a network without
        biases explained from a zero baseline (where every normalisation sees a zero baseline) the contributions
        grew to 1e10 (ViT) and 1e32 (Swin) and summation-to-delta drowned in their rounding.
        """
        centred = x - x.mean(dims, keepdim=True) if centre else x
        variance = self._nonlinearity("square", torch.square, centred).mean(dims, keepdim=True) + eps
        reference = x.detach().chunk(self.blocks)[1]
        if centre:  # baselines constant over the normalised dimensions
            degenerate = reference.amax(dims, keepdim=True) == reference.amin(dims, keepdim=True)
        else:  # baselines zero over them
            degenerate = reference.abs().amax(dims, keepdim=True) == 0
        scale = self._nonlinearity("rsqrt", torch.rsqrt, variance)
        return self._product(torch.mul, centred, scale, ordered=degenerate)

    def _composed(self, func, entry: ops.OpEntry | None, args: tuple, kwargs: dict):
        """The calls treated by the rules of this section, or ``None`` where a call is none of them (e.g. a product
        with a constant, affine) or cannot be treated (then :meth:`_unsupported` says why)."""
        if func is F.glu:
            return self._glu(args, kwargs)
        if entry is None:
            return None
        if func in _BILINEAR:
            return self._bilinear(func, entry, args, kwargs)
        if func in _QUOTIENTS:
            return self._quotient(func, entry, args, kwargs)
        if func in _ELEMENTWISE_MATH:
            return self._elementwise(func, entry, args, kwargs)
        if func in _SOFTMAXES:
            return self._softmax_call(entry, args, kwargs)
        if func in _STANDARDISATIONS:
            return self._normalisation(entry, args, kwargs)
        return None

    def _glu(self, args: tuple, kwargs: dict):
        """``F.glu`` (``nn.GLU``, Dauphin et al. 2017): ``a · σ(b)`` for the two halves of the input along ``dim``,
        the sigmoid's rule then the product rule."""
        named = {**dict(zip(("input", "dim"), args)), **kwargs}
        x, dim = named["input"], named.get("dim", -1)
        if not _depends(x):
            return None
        self._check_blocks(x, "torch.nn.functional.glu")
        if dim % x.dim() == 0:
            raise ValueError("torch.nn.functional.glu over dimension 0 splits the batch, not each sample")
        a, b = x.chunk(2, dim)
        return self._product(torch.mul, a, self._nonlinearity("sigmoid", torch.sigmoid, b))

    # -- linear layers, dropout, BatchNorm ---------------------------------------------------------

    def _linear_rule(self, func, args, kwargs):
        """The Linear rule (Shrikumar et al. 2017, section 3.5.1) for a linear or convolutional layer.

        Each term ``w_ji Δx_i`` counts in the positive part ``Δy+`` of output ``j`` or in its negative
        part ``Δy−`` by its sign: ``Δy± = ½ (W Δx ± |W| |Δx|)``. Autograd's backward through this
        expression routes the multipliers of ``Δy+`` and ``Δy−`` to each input by the sign of its term
        and gives both parts of the input one multiplier (half the sum of the two where ``Δx_i = 0``).
        """
        values, kwargs = list(args), dict(kwargs)

        def take(position, name):
            return values[position] if len(values) > position else kwargs.pop(name, None)

        x, weight, bias = take(0, "input"), take(1, "weight"), take(2, "bias")
        rest = values[3:]
        rows = self.blocks * self.n
        if func is F.linear and x.dim() == 3 and x.shape[0] != rows and x.shape[1] == rows:
            # Sequence first, (L, N, E), as in nn.MultiheadAttention's projections: F.linear acts on the last
            # dimension, so it commutes with the transposition.
            return self._linear_rule(func, (x.transpose(0, 1), weight, bias), {}).transpose(0, 1)
        self._check_blocks(x, ops.describe(func))  # also (N · windows, T, C), sample major (Swin)
        x_in, x_ref = x.chunk(self.blocks)[:2]
        difference = x_in - x_ref
        y_in, y_ref = func(x[: 2 * len(x_in)], weight, bias, *rest, **kwargs).chunk(2)
        total = func(difference, weight, None, *rest, **kwargs)
        spread = func(difference.abs(), weight.abs(), None, *rest, **kwargs)
        return torch.cat([y_in, y_ref, y_ref + (total + spread) / 2, y_ref + (total - spread) / 2])

    def _batch_norm_rule(self, bound: dict):
        """BatchNorm (eval mode) under the Linear rule: the two parts of a unit's difference count as two
        terms of weight ``s = γ / σ``, so a negative ``s`` turns the positive part into the negative one
        (the reference implementation's convention). Without the Linear rule the parts keep their origin.
        """
        arguments = dict(bound)
        x = arguments.pop("input")
        self._check_rows(x, "batch_norm")
        x_in, x_ref, x_pos, x_neg = x.chunk(4)
        y_in, y_ref = F.batch_norm(x[: 2 * self.n], **arguments).chunk(2)
        scale = (arguments["running_var"] + arguments["eps"]).rsqrt()
        if arguments.get("weight") is not None:
            scale = scale * arguments["weight"]
        scale = scale.view(1, -1, *[1] * (x.dim() - 2))
        up, down = scale.clamp(min=0), scale.clamp(max=0)
        positive, negative = x_pos - x_ref, x_neg - x_ref
        parts = [y_ref + up * positive + down * negative, y_ref + up * negative + down * positive]
        return torch.cat([y_in, y_ref, *parts])

    def _dropout(self, func, args, kwargs):
        """Dropout in training mode with one mask per sample, shared by the sample's copies."""
        x, p, training = ops.dropout_arguments(func, args, kwargs)
        if not training or p == 0 or not _depends(x):
            return func(*args, **kwargs)
        entry = ops.op_of(func)
        if entry.name in _ALPHA_DROPOUTS:
            raise NotImplementedError(
                f"{ops.describe(func)} in training mode is not affine in its input, so the input and its "
                "baseline cannot share one mask; switch it to eval mode"
            )
        self._check_rows(x, ops.describe(func))
        scale = entry.out_of_place(torch.ones_like(x.chunk(self.blocks)[0]), p, True)  # the mask divided by 1 - p
        return x * scale.repeat(self.blocks, *[1] * (x.dim() - 1))

    def _unsupported(self, func, args, kwargs) -> str | None:
        """Why DeepLIFT has no rule for this call on input-dependent tensors (``None`` if it has one)."""
        if func in _PRODUCTS and _dependent_count(args, kwargs) > 1:
            return (
                f"the model multiplies two input-dependent tensors with {ops.describe(func)}, which DeepLIFT's product "
                "rule does not treat. It treats a * b, torch.matmul (a @ b) and torch.bmm of two tensors with the same "
                "number of dimensions (at least 3 for matrix products) and torch.einsum('b...,b...->b...', a, b), "
                "all with the samples along the first dimension; write the product so"
            )
        if func in _QUOTIENTS:
            divisor = args[0] if ops.op_of(func).name == "rdiv" else (*args[1:2], kwargs.get("other"))
            rounding = kwargs.get("rounding_mode")
            if _depends(divisor) or (rounding is not None and _dependent_count(args, kwargs)):
                how = "by an input-dependent tensor" if _depends(divisor) else f"with rounding_mode={rounding!r}"
                return (
                    f"the model divides {how} ({ops.describe(func)}); DeepLIFT treats a / b as a * (1 / b) for true "
                    "division (no rounding_mode) of tensors that keep the samples along the first dimension"
                )
        if func in _ELEMENTWISE_MATH and _dependent_count(args, kwargs) > 1:
            return (
                f"the model applies {ops.describe(func)} to two input-dependent tensors (e.g. x ** y); DeepLIFT treats "
                "elementwise functions of one input-dependent tensor"
            )
        if func in _STANDARDISATIONS and _depends(_named_arguments(ops.op_of(func), args, kwargs)["weight"]):
            return (
                f"the model calls {ops.describe(func)} with an input-dependent weight; DeepLIFT treats the "
                "normalisation with a constant weight: normalise without weight and multiply by the input-dependent "
                "scale after it"
            )
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._paused or not torch.is_grad_enabled():
            return func(*args, **kwargs)
        entry = ops.op_of(func)
        if entry is not None and entry.category == ops.DROPOUT:
            return self._dropout(func, args, kwargs)
        if func is F.batch_norm:
            bound = ops.bound_arguments(func, args, kwargs)
            if _depends(bound["input"]):
                if bound["training"] or bound["running_var"] is None:
                    raise ValueError(
                        "BatchNorm runs in training mode: it would normalise the inputs and their baselines with "
                        "the statistics of their joint batch. Call model.eval() (for Monte Carlo dropout, switch "
                        "only the dropout layers to training mode)"
                    )
                if self.rule == "reveal_cancel" and self.linear_rule:
                    return self._batch_norm_rule(bound)
        if self.rule != "gradient":
            treated = self._composed(func, entry, args, kwargs)
            if treated is not None:
                return treated
        if self.rule != "gradient" and _depends(args[:1] or kwargs.get("input")):
            # The activation interceptor routes the activations and the max-pooling without switches.
            if entry is not None and entry.category == ops.MAX_POOL and ops.returns_indices(func, args, kwargs):
                raise NotImplementedError(
                    f"{ops.describe(func)} with return_indices=True (max-unpooling) is not supported by DeepLIFT"
                )
            if self.rule == "reveal_cancel" and self.linear_rule and func in _LINEAR_LAYERS:
                problem = self._unsupported(func, args, kwargs) if self.strict else None
                if problem is None and not _depends(args[1:] + tuple(kwargs.values())):
                    return self._linear_rule(func, args, kwargs)
        if not self.strict:
            return func(*args, **kwargs)
        problem = self._unsupported(func, args, kwargs)
        output = func(*args, **kwargs)
        if problem is None and func not in _SUPPORTED and _depends(output) and not ops.is_attribute(func):
            activations = ", ".join(sorted(set(ACTIVATIONS) - {_MAX_POOL}))
            problem = (
                f"DeepLIFT has no rule for {ops.describe(func)}, which the model applies to an input-dependent tensor. "
                "Supported: linear and convolutional layers, BatchNorm in eval mode, LayerNorm, GroupNorm, RMSNorm, "
                "additions, products (a * b, a @ b, torch.bmm, two-operand torch.einsum), division, softmax, "
                "log_softmax, softmin, exp, log, pow, sqrt, rsqrt, square, reciprocal, average and max pooling, "
                f"padding, reshaping, dropout and the activations {activations}"
            )
        if problem is not None:
            raise NotImplementedError(f"{problem}. {_NON_STRICT}")
        return output


@register_method("deeplift")
class DeepLift(Attribution):
    """DeepLIFT: contributions ``m ∘ (x − x')`` of the input's differences from a baseline (eq. 9.40–9.41).

    Shrikumar et al. 2017, "Learning important features through propagating activation differences";
    the report's section 2.2.6 (Fig. 14–15) and the textbook's eq. 9.30–9.49 (solved problem P9.4). The
    multipliers ``m`` are back-propagated with the chain rule (eq. 9.38), each kind of layer by its rule.

    ``rule``, for the nonlinearities (every activation call, however it is written):

    * ``"rescale"``: ``m = Δy / Δx`` (eq. 9.47), the slope of the secant from the baseline to the input.
    * ``"reveal_cancel"``: the contributions reaching the activation are split into their positive and
      negative parts ``Δx+`` and ``Δx−``, and each part gets its own multiplier ``Δy± / Δx±`` with
      ``Δy+ = ½ (f(x0 + Δx+) − f(x0)) + ½ (f(x0 + Δx− + Δx+) − f(x0 + Δx−))`` (report Fig. 14): a
      positive and a negative contribution that cancel in ``Δx`` are both revealed.
    * ``"gradient"``: the derivative ``f'(x)`` at the input, plain backpropagation.

    ``linear_rule``, for linear and convolutional layers (multiplier ``w``, eq. 9.48):

    * ``True``: the Linear rule of Shrikumar et al. (section 3.5.1): each term ``w_ji Δx_i`` counts in the
      positive or the negative part of ``Δy_j`` by its sign, and the multiplier of that part flows back
      to ``x_i``.
    * ``False``: the chain rule ``m_i = Σ_j w_ji m_j`` with the parts passed through; the positive and
      negative parts are then those of the input: the features that rose and those that fell from
      the baseline, followed through the network (only max-pooling, see below, splits anew).

    The split matters only for RevealCancel, the one rule that gives the two parts different
    multipliers: with equal ones ``W+ᵀm + W−ᵀm = Wᵀm``. So of the report's six modes (:data:`MODES`,
    :meth:`from_mode`) ``Linear`` equals ``NoRule`` and ``LinearRescale`` equals ``Rescale``:

    ====================  ================  ====================================================
    mode                  nonlinearities    linear / convolutional layers
    ====================  ================  ====================================================
    NoRule                gradient          chain rule: contributions are gradient × (x − x')
    Linear                gradient          Linear rule; the same maps as NoRule
    Rescale               Rescale           chain rule
    LinearRescale         Rescale           Linear rule; the same maps as Rescale (textbook P9.4)
    RevealCancel          RevealCancel      chain rule: parts = input features that rose / fell
    LinearRevealCancel    RevealCancel      Linear rule: parts re-split at every layer (the paper)
    ====================  ================  ====================================================

    Other layers: additions (residual connections), BatchNorm in eval mode, average pooling, padding,
    reshaping and dropout in eval mode are affine; they pass differences and their parts on and
    multipliers back by their weights (under the Linear rule BatchNorm counts the two parts as two
    terms of its scale ``γ/σ``, so a negative scale swaps them, as in the reference implementation).
    Max-pooling splits each window's difference between the units holding the maxima of the input and
    of the baseline (Captum's rule), so summation-to-delta holds through it; RevealCancel takes the two
    shares as positive and negative parts. Dropout in training
    mode draws one mask per sample, shared by the input and its baseline (one sub-network explained per
    call, for Monte Carlo dropout). Where ``Δx`` vanishes a multiplier is the derivative (for Rescale
    at the midpoint of ``x`` and ``x'``), never a constant.

    Rescale's secant ``Δy / Δx`` and RevealCancel's ``Δy±`` need only the function's values, so both are
    defined for every elementwise function, monotone or not: GELU, SiLU, Mish and Hardswish dip below
    zero, and their secant may be negative where the input and the baseline straddle the dip; the
    contributions still sum to the difference. The same rules treat ``exp``, ``log``, ``pow``, ``sqrt``,
    ``rsqrt``, ``square`` and ``reciprocal`` of an input-dependent tensor; for the ones whose domain is not
    every real number (log, roots, reciprocal, pow) RevealCancel gives both parts the secant, since the
    points ``x0 + Δx±`` it would evaluate them at may lie outside it.

    Operations of modern networks, each exact, so that summation-to-delta holds through them:

    * products of two input-dependent tensors (``a * b``: gating, squeeze-excitation, ``nn.GLU``;
      ``a @ b``, ``torch.bmm``, ``torch.einsum`` of two operands: attention): the product rule
      ``Δ(ab) = ā Δb + Δa b̄`` with ``ā = (a + a')/2``, the Shapley value of the two factors;
    * division ``a / b`` by an input-dependent ``b``: ``a · (1 / b)``, the reciprocal's secant and the
      product rule;
    * softmax, log-softmax and softmin over any dimension but the samples', in log-sum-exp form:
      ``exp((x − c) − log Σ exp(x − c))`` with one shift ``c`` for the input and its baseline, secants of
      ``exp`` and ``log`` only (the product ``exp · 1/Σ`` would be as exact, but its terms cancel at the
      scale of ``e^c`` where the baseline's row lies far below the input's);
    * LayerNorm, GroupNorm, RMSNorm (also torchvision's ``LayerNorm2d``): centring and means (linear),
      the square and the reciprocal square root (secants), their product (product rule), then the affine
      weight and bias. LRP instead holds the normalisation's scale constant (Ali et al. 2022); DeepLIFT
      compares two points whose scales differ, so it attributes the scale's change too, except from a
      baseline constant over the normalised features (zero for RMSNorm), whose output is 0 whatever its
      scale ``1/√ε``: there the product rule takes the ordered split ``r Δc`` with the input's scale, as
      exact, as Shapley's split would pit contributions of about ``|Δc| / (2√ε)`` against each other;
    * ``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention``, written out as their linear
      maps, matrix products and softmax (:func:`~nn_interpretability.core.attention.unfused_attention`).

    What has no rule raises ``NotImplementedError`` naming it (``torch.var``, ``F.local_response_norm``,
    a product of three input-dependent tensors, ``x ** y``, ...). Like the activations, the in-place
    spellings of these operations (``a.mul_(b)``, ``x.exp_()``) run out of place: ``a *= b`` works, code
    that relies on the side effect alone does not.

    Nonlinearities are caught in every form: modules, one module reused at several places, in-place
    modules, ``F.relu``, ``torch.relu``, ``Tensor.relu``, ... (ReLU, LeakyReLU, PReLU, ReLU6/Hardtanh,
    Sigmoid, Tanh, Softplus, ELU, CELU, SELU, GELU, SiLU, Mish, Hardswish, Hardsigmoid, LogSigmoid,
    Softsign, Threshold, RReLU, Hardshrink, Softshrink, Tanhshrink, max-pooling). Fused kernels that
    hide their activations (``nn.LSTM``, ``nn.GRU``, ...) raise. Captum hooks modules only, and raises
    on or silently mis-handles reused and functional ReLUs (Captum issues #1082, #1104).

    Parameters
    ----------
    model : nn.Module
        A classifier returning class scores ``(N, C)`` that treats the samples of a batch independently.
    rule : {"rescale", "reveal_cancel", "gradient"}
        The rule for nonlinearities.
    linear_rule : bool
        Whether linear and convolutional layers split contributions by sign (see above).
    strict : bool
        Raise ``NotImplementedError`` when the model applies an operation DeepLIFT has no rule for to an
        input-dependent tensor (a variance, a product of three input-dependent tensors, ...).
        ``False`` back-propagates their plain gradient instead; summation-to-delta may then fail, which
        ``return_convergence_delta`` shows.
    """

    takes_baselines = True
    has_convergence_delta = True
    multiplies_by_inputs = True
    multiple_inputs = True

    def __init__(self, model: nn.Module, rule: str = "rescale", linear_rule: bool = True, strict: bool = True):
        super().__init__(model)
        key = rule.lower().replace("-", "_") if isinstance(rule, str) else None
        if key not in RULES:
            raise ValueError(f"unknown DeepLIFT rule {rule!r}; choose one of {', '.join(RULES)}")
        if not isinstance(linear_rule, bool):
            raise TypeError(f"linear_rule must be a bool, got {type(linear_rule).__name__}")
        self.rule = key
        self.linear_rule = linear_rule
        self.strict = bool(strict)

    @classmethod
    def from_mode(cls, model: nn.Module, mode: str, strict: bool = True) -> "DeepLift":
        """DeepLIFT in one of the report's six modes: ``NoRule``, ``Linear``, ``Rescale``, ``LinearRescale``,
        ``RevealCancel`` or ``LinearRevealCancel`` (case, ``-`` and ``_`` ignored; see the class docstring)."""
        key = {name.lower(): name for name in MODES}.get(str(mode).lower().replace("_", "").replace("-", ""))
        if key is None:
            raise ValueError(f"unknown DeepLIFT mode {mode!r}; choose one of {', '.join(MODES)}")
        rule, linear_rule = MODES[key]
        return cls(model, rule=rule, linear_rule=linear_rule, strict=strict)

    @property
    def mode(self) -> str:
        """The report's name of this configuration, e.g. ``"LinearRevealCancel"``."""
        return next(name for name, setting in MODES.items() if setting == (self.rule, self.linear_rule))

    def _attribute(self, run: Run, baselines=0.0, return_convergence_delta: bool = False):
        """Contributions of each input element to ``f_c(x) − f_c(x')``, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` explains the class predicted for ``inputs``.
        baselines : float or Tensor
            The reference input ``x'``: a number, one tensor of the per-sample shape or one per sample
            ``(N, ...)``. The report uses a black image (0) for MNIST.
        return_convergence_delta : bool
            Also return, per sample, ``Σ_i c_i − (f_c(x) − f_c(x'))``: zero up to rounding for the
            Rescale and RevealCancel rules (summation-to-delta), the error of the first-order
            approximation for the gradient rule.

        Returns
        -------
        Tensor, or (Tensor, Tensor) with the per-sample delta of shape ``(N,)``
        """
        xs = run.inputs_tuple
        baselines = broadcast_baselines_each(baselines, xs)
        differences = tuple(x - b for x, b in zip(xs, baselines))
        positives = tuple(d.clamp(min=0) for d in differences)
        negatives = tuple(d.clamp(max=0) for d in differences)
        blocks = 4 if self.rule == "reveal_cancel" else 2
        stacked = []
        for x, b, positive, negative in zip(xs, baselines, positives, negatives):
            copies = [x, b] + ([b + positive, b + negative] if self.rule == "reveal_cancel" else [])
            stacked.append(torch.cat(copies).requires_grad_(True))

        propagation = _Propagation(self.rule, self.linear_rule, blocks, run.n, self.strict)
        if self.rule == "gradient":
            nonlinearities, attention = nullcontext(), nullcontext()
        else:  # attention written out innermost, so that the interceptors see its products and softmax
            nonlinearities, attention = intercept_activations(propagation.activation), unfused_attention()
        with propagation, nonlinearities, attention:
            output = run.forward(run.like(stacked))
        outputs = output.chunk(blocks)
        select = run.bind(outputs[0])
        if self.rule == "reveal_cancel":
            objective = select(outputs[2]) + select(outputs[3])
        else:
            objective = select(outputs[0])
        gradients = torch.autograd.grad(objective.sum(), stacked)

        contributions = []
        for gradient, d, positive, negative in zip(gradients, differences, positives, negatives):
            grads = gradient.chunk(blocks)
            if self.rule == "reveal_cancel":
                contributions.append((grads[0] + grads[2]) * positive + (grads[0] + grads[3]) * negative)
            else:
                contributions.append(grads[0] * d)
        if not return_convergence_delta:
            return run.like(contributions)
        with torch.no_grad():
            change = select(outputs[0]) - select(outputs[1])
            delta = sum(c.flatten(1).sum(1) for c in contributions) - change
        return run.like(contributions), delta

    def __repr__(self) -> str:
        return f"DeepLift({type(self.model).__name__}, rule={self.rule!r}, linear_rule={self.linear_rule})"


def _from_mode(mode: str, model: nn.Module, **kwargs) -> DeepLift:
    return DeepLift.from_mode(model, mode, **kwargs)


#: Registry name of each mode, e.g. ``nni.get_method("deeplift-linear-reveal-cancel", model)``.
MODE_NAMES = {
    "NoRule": "deeplift-no-rule",
    "Linear": "deeplift-linear",
    "Rescale": "deeplift-rescale",
    "LinearRescale": "deeplift-linear-rescale",
    "RevealCancel": "deeplift-reveal-cancel",
    "LinearRevealCancel": "deeplift-linear-reveal-cancel",
}
for _mode, _name in MODE_NAMES.items():
    register_method(_name, partial(_from_mode, _mode))
