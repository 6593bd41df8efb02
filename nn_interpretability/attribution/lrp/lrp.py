"""Layer-wise relevance propagation and deep Taylor decomposition in one modified backward pass.

Bach et al. 2015, Montavon et al. 2017 and 2019; the textbook's eq. 9.18–9.29, the report's section
2.2.4–2.2.5 (eq. 9–22). The relevance of the explained class starts as the class's logit (eq. 9.20)
and flows backward layer by layer (eq. 9.18); each layer's modified backward pass is its rule, so a
single ``torch.autograd.grad`` call explains any graph: nested modules, reused modules, functional and
in-place activations, residual additions.

How each operation of the forward pass is treated
-------------------------------------------------
The forward pass runs under a :class:`torch.overrides.TorchFunctionMode` that sees every call,
whatever its form (module, ``F.*``, ``torch.*`` or tensor method):

- ``F.linear`` / ``F.conv1d/2d/3d`` with a weight of the model (``nn.Linear``, ``nn.Conv*`` and
  subclasses such as TensorFlow-style 'SAME' convolutions): the rule its composite assigns.
- eval-mode ``F.batch_norm``: folded into the layer whose output it normalises
  (:class:`~nn_interpretability.attribution.lrp.canonizers.MergeBatchNorm`), otherwise a per-channel
  affine layer with the composite's rule (``Pass()`` by default).
- activations (ReLU, ReLU6, LeakyReLU, sigmoid, tanh, PReLU, GELU, SiLU, Hardswish, Mish, ...; the
  identity rule of Zennit and AttnLRP for the non-monotone ones), dropout, scaling by a constant or a
  parameter (``x * c``, ``x / c``, layer scale) and adding a constant: relevance passes through
  unchanged, as for a diagonal layer; adding a parameter (a learned bias such as position embeddings)
  shares the relevance in proportion, the parameter keeping its share, as a layer's bias does
  (:mod:`~nn_interpretability.core.activations` finds every activation call).
- products of two activations (gating, squeeze-excitation, GLU) and matrix products (``q @ kᵀ``,
  ``attn @ v``, ``bmm``, ``einsum``): AttnLRP's uniform rule, half of the relevance to each operand
  (:class:`_Bilinear`); with the composite's ``attention="conservative"`` (CP-LRP, Ali et al. 2022) the
  attention weights are constants and the values get all of it (the written-out attention then computes
  queries and keys detached, so no backward pass runs through them). A matrix product of an activation
  and a constant that is no parameter is a linear map without bias: the activation gets all the relevance.
- softmax: AttnLRP's rule (:class:`_Softmax`). ``nn.MultiheadAttention`` and
  ``F.scaled_dot_product_attention`` are written out as these operations
  (:func:`~nn_interpretability.core.attention.unfused_attention`).
- ``F.layer_norm``, ``F.group_norm``, ``F.rms_norm`` (LayerNorm, ConvNeXt's LayerNorm2d, GroupNorm,
  RMSNorm): the statistics are constants and the rest is linear (:class:`_Normalization`).
- max-pooling: winner-take-all (its gradient routes the relevance to the maximum).
- average pooling, ``sum`` and ``mean``, and residual additions ``a + b`` of two activations: the sum
  rule ``R_i = x_i R / sum_k x_k`` (stabilised with the composite's ``stabilizer``), i.e. every summand
  gets relevance in proportion to its contribution (Zennit's ``Norm``); ``a - b`` is ``a + (-b)``.
- reshaping, flattening, concatenation, slicing, padding, upsampling: their gradient, which moves the
  relevance without changing its sum.
- anything with no rule raises instead of returning a wrong map: a parametrised operation the package
  does not know (map it in a composite, e.g. to ``Pass()``), quotients of two activations, ``exp``,
  ``log``, ``pow``, ``log_softmax``, fused recurrent kernels (``nn.LSTM``, ``nn.GRU``).

LRP-0 everywhere (``Composite(default=Epsilon(0.0), stabilizer=0.0)``, either attention rule) runs in
gradient form: the backward pass carries ``g = R / value``, so layers, sums, additions, scalings and
softmax run their plain gradients and only activations, products, normalisations and mixing upsampling
are modified (:meth:`LRP._gradient_form`); relevance is the same up to rounding, two elementwise passes a
layer cheaper.

In-place additions, scalings and activations (``out += identity``, ``relu_``) run out of place while
LRP holds the model: their results are used as Python's augmented assignment and ``nn.ReLU(inplace=True)``
use them; code that relies on the side effect alone is not supported.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ...core import ops
from ...core.activations import intercept_activations
from ...core.attention import unfused_attention
from ...core.base import Attribution, Run
from ...core.registry import register_method
from .canonizers import MergeBatchNorm, batch_norm_layer
from .composites import Composite, EpsilonPlusFlat, Layer, ReportComposite
from .rules import AlphaBeta, Epsilon, Gamma, LinearLayer, OpaqueLayer, Pass, Rule, ZBox, quotient

# Operations (names in :mod:`~nn_interpretability.core.ops`) LRP gives a rule of its own.
_LINEAR_KINDS = ("linear", "conv1d", "conv2d", "conv3d")
_SUMS = ("sum", "mean")  # and average pooling: the sum rule
# Additions and subtractions: op -> (index of the left operand, index of the right one, sign of the right).
_ADDITIONS = {"add": (0, 1, 1.0), "sub": (0, 1, -1.0), "rsub": (1, 0, -1.0)}
_SCALINGS = ("mul", "div")
# Products of two activations and matrix products: the bilinear rule (:class:`_Bilinear`).
_PRODUCTS = ("mul", *ops.op_names(ops.PRODUCT))
# Normalisations whose statistics are taken as constants (:class:`_Normalization`).
_NORMALIZATIONS = ("layer_norm", "group_norm", "rms_norm")
#: The category of the calls the catalogue does not know (:meth:`_Tracer._uncatalogued`).
_UNCATALOGUED = "uncatalogued"
# Categories (and attribute reads such as ``x.T``, None) that run as they are, relevance passing by their
# gradient, unless they take a parameter of the model (:meth:`_Tracer._opaque`); activations are handled by
# the interceptor.
_AS_THEY_ARE = frozenset((None, ops.RESHAPE, ops.RESAMPLE, ops.AMBIGUOUS, ops.MAX_POOL, ops.ACTIVATION))
# Refused rather than passed with the plain gradient: negation and the nonlinear arithmetic (and, below,
# the other normalisations without parameters).
_NO_RULE = ops.functions(ops.SOFTMAX, ops.MATH, ops.PRODUCT, names=("rdiv", "neg"))


def _requires_grad(value) -> bool:
    if not isinstance(value, torch.Tensor):
        return False
    # Under the tracer every tensor property read is itself a torch-function call through the modes
    # below it (about 1 µs each); the tracer reads this one for every argument of every call.
    with torch._C.DisableTorchFunction():
        return value.requires_grad


def _past_the_modes(handler: Callable) -> Callable:
    """Run a tracer method with torch functions off: its own calls (the layer's, a rule's forward, a fold)
    need none of the modes below the tracer, and each would cost a Python call through every one of them.

    Only the treatments of known operations take it; activations, unknown calls and opaque layers, whose
    insides the activation interceptor must see, keep the modes.
    """

    @functools.wraps(handler)
    def untraced(*args, **kwargs):
        with torch._C.DisableTorchFunction():
            return handler(*args, **kwargs)

    return untraced


def _flat(args, kwargs) -> list:
    values = []
    for value in (*args, *kwargs.values()):
        values.extend(value if isinstance(value, (list, tuple)) else [value])
    return values


@dataclass
class _Call:
    """One call of a layer in the forward pass and, once assigned, its rule."""

    name: str
    module: nn.Module
    kind: str
    position: int | None
    layer: LinearLayer | OpaqueLayer
    rule: Rule | None = None
    negative_input: bool = False  # recorded only when the tracer checks for it (deep Taylor's root points)


def _traced(call: Callable, *xs: torch.Tensor, wanted: Sequence[bool] | None = None):
    """``call(*xs)`` evaluated on detached copies, keeping its graph for :func:`_vjp`: ``(output, graph)``.

    The rules of parameter-free operations need the operation's vector-Jacobian product; building the
    graph once in the forward pass saves evaluating the operation a second time in the backward pass.
    ``wanted`` marks the inputs whose product is needed (all by default).
    """
    wanted = tuple(wanted if wanted is not None else (True,) * len(xs))
    with torch.enable_grad():
        probes = [x.detach().requires_grad_(w) for x, w in zip(xs, wanted)]
        y = call(*probes)
    return y.detach(), (y, wanted, [p for p in probes if p.requires_grad])


def _vjp(graph, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(∂y/∂x)ᵀ s`` for the inputs ``x`` that :func:`_traced` marked, from the graph it kept."""
    y, _, probes = graph
    return torch.autograd.grad(y, probes, s)


def _no_relevance_no_work(function: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """Class decorator: an output that receives no relevance gives none to its inputs, computing nothing.

    Autograd would hand such a backward pass zeros (CP-LRP's attention weights get no relevance, nor then
    the softmax, ``q kᵀ`` and the query and key projections) and every rule would run on them; with
    ``set_materialize_grads(False)`` the backward pass sees ``None`` and passes ``None`` on.
    """
    forward, backward = function.forward, function.backward

    def forward_without_zeros(ctx, *args):
        ctx.set_materialize_grads(False)
        return forward(ctx, *args)

    def backward_of_none(ctx, relevance):
        return (None,) * len(ctx.needs_input_grad) if relevance is None else backward(ctx, relevance)

    function.forward, function.backward = staticmethod(forward_without_zeros), staticmethod(backward_of_none)
    return function


@_no_relevance_no_work
class _LayerRule(torch.autograd.Function):
    """Forward: the layer's own output. Backward: the relevance its rule gives the layer's input."""

    @staticmethod
    def forward(ctx, a, call, compute):
        output = compute()
        if not isinstance(output, torch.Tensor):
            raise NotImplementedError(f"{call.layer} returns {type(output).__name__}; LRP supports tensor outputs")
        ctx.call = call
        ctx.save_for_backward(a, output)
        return output

    @staticmethod
    def backward(ctx, relevance):
        a, z = ctx.saved_tensors
        return ctx.call.rule.relevance(ctx.call.layer, a, z, relevance), None, None


@_no_relevance_no_work
class _PassThrough(torch.autograd.Function):
    """Forward: ``call(x)``. Backward: relevance passes through unchanged (activations, dropout, scaling)."""

    @staticmethod
    def forward(ctx, x, call):
        return call(x)

    @staticmethod
    def backward(ctx, relevance):
        return relevance, None


@_no_relevance_no_work
class _LayerGradient(torch.autograd.Function):
    """Gradient form of LRP-0 on a layer: forward, the layer's output; backward, ``Wᵀ g`` by the layer's own
    transpose (a patchify convolution's is 7–14× faster than PyTorch's ``convolution_backward``)."""

    @staticmethod
    def forward(ctx, a, call, compute):
        ctx.call, ctx.shape = call, a.shape
        return compute()

    @staticmethod
    def backward(ctx, gradient):
        layer = ctx.call.layer
        return layer.transpose(gradient, layer.weight, ctx.shape), None, None


@_no_relevance_no_work
class _Ratio(torch.autograd.Function):
    """Gradient form of passing relevance as it is: ``g_x = R_x / x`` with ``R_x = Jᵀ (y ∘ g_y)``, 0 where ``x = 0``.

    ``J`` is the identity for an elementwise operation (``R_x = R_y``: activations, shifts, layers with
    ``Pass()``), ``y = call(x)``'s Jacobian where ``mixes`` (bilinear upsampling, whose outputs mix several
    inputs). Relevance on a zero of ``x``, which an operation that maps 0 to nonzero (a shift, sigmoid,
    softplus, a BatchNorm) or a mixing one leaves, reaches the input if ``x`` is the input or passes to it
    as it is, but not ``g``; with a ``tracer`` given, such relevance marks it :attr:`_Tracer.inexact`, and
    LRP runs again in rule form.
    """

    @staticmethod
    def forward(ctx, x, call, tracer=None, mixes=False):
        if mixes:
            y, ctx.graph = _traced(call, x)
        else:
            y, ctx.graph = call(x), None
        ctx.tracer = tracer
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gradient):
        x, y = ctx.saved_tensors
        relevance = gradient * y
        if ctx.graph is not None:
            (relevance,) = _vjp(ctx.graph, relevance)
        tracer = ctx.tracer
        if tracer is not None and not tracer.inexact:
            tracer.inexact = bool(((x == 0) & (relevance != 0)).any())
        return quotient(relevance, x, 0.0), None, None, None


@_no_relevance_no_work
class _Scaled(torch.autograd.Function):
    """Forward: ``y``. Backward: the gradient times ``share`` (the uniform rule's half, in gradient form)."""

    @staticmethod
    def forward(ctx, y, share):
        ctx.share = share
        return y.view_as(y)

    @staticmethod
    def backward(ctx, gradient):
        return gradient * ctx.share, None


@_no_relevance_no_work
class _SumRule(torch.autograd.Function):
    """The epsilon rule of a linear map without parameters: ``R_i = x_i sum_j dy_j/dx_i R_j / y_j``.

    The sum rule of pooling and reductions (Zennit's ``Norm``) and of adding a learned bias; the
    normalisations apply the same rule with their own Jacobian (:class:`_Normalization`).
    """

    @staticmethod
    def forward(ctx, x, call, stabilizer):
        y, ctx.graph = _traced(call, x)
        ctx.stabilizer = stabilizer
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, relevance):
        x, y = ctx.saved_tensors
        s = quotient(relevance, y, ctx.stabilizer)
        (share,) = _vjp(ctx.graph, s)
        return x * share, None, None


@_no_relevance_no_work
class _ResidualSum(torch.autograd.Function):
    """``y = a + sign b``; relevance split by contributions: ``R_a = a R / y``, ``R_b = sign b R / y``."""

    @staticmethod
    def forward(ctx, a, b, sign, stabilizer):
        y = torch.add(a, b, alpha=sign)
        ctx.sign, ctx.stabilizer = sign, stabilizer
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, relevance):
        a, b, y = ctx.saved_tensors
        s = quotient(relevance, y, ctx.stabilizer)
        signed = b if ctx.sign == 1 else ctx.sign * b
        return (a * s).sum_to_size(a.shape), (signed * s).sum_to_size(b.shape), None, None


@_no_relevance_no_work
class _Bilinear(torch.autograd.Function):
    """``z = f(a, b)`` bilinear (``a * b``, ``a @ b``, ``einsum``): AttnLRP's uniform rule.

    Achtibat et al. 2024, eq. 9–10 (elementwise products) and Proposition 3.3 (matrix products): each
    operand is explained by the epsilon rule with the other held constant and gets half the relevance,
    ``R_a = a ∘ ∂_a <f(a, b), R / 2z>``, likewise ``R_b``; so ``ΣR_a + ΣR_b = ΣR``. With ``constant``
    set (CP-LRP, Ali et al. 2022) that operand is a constant and the other gets all of it.
    """

    @staticmethod
    def forward(ctx, a, b, call, stabilizer, constant):
        z, ctx.graph = _traced(call, a, b, wanted=(constant != 0, constant != 1))
        ctx.stabilizer, ctx.constant = stabilizer, constant
        ctx.save_for_backward(a, b, z)
        return z

    @staticmethod
    def backward(ctx, relevance):
        a, b, z = ctx.saved_tensors
        share = 1.0 if ctx.constant is not None else 0.5
        s = quotient(relevance * share, z, ctx.stabilizer)
        grads = iter(_vjp(ctx.graph, s))
        return *(x * next(grads) if wanted else None for x, wanted in zip((a, b), ctx.graph[1])), None, None, None


@_no_relevance_no_work
class _Softmax(torch.autograd.Function):
    """Softmax's rule in AttnLRP: ``R_i = x_i (R_i − s_i Σ_j R_j)`` along the softmax dimension.

    Achtibat et al. 2024, Proposition 3.1: the first-order Taylor decomposition at ``x`` with the bias
    term left out, i.e. the epsilon rule's ``x ∘ Jᵀ (R / s)``. It does not conserve relevance (the
    bias term absorbs its share).
    """

    @staticmethod
    def forward(ctx, x, dim):
        y = torch.softmax(x, dim)
        ctx.dim = dim
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, relevance):
        x, y = ctx.saved_tensors
        return x * (relevance - y * relevance.sum(ctx.dim, keepdim=True)), None


@_no_relevance_no_work
class _Normalization(torch.autograd.Function):
    """LayerNorm, GroupNorm and RMSNorm with their statistics taken as constants: the sum rule's epsilon rule.

    Ali et al. 2022, section 3.2: with ``σ`` fixed, ``y = γ (x − μ(x)) / σ + β`` is linear in ``x``, so
    ``R_x = x ∘ Jᵀ (R / y)`` with ``Jᵀ s = (u − mean(u)) / σ``, ``u = γ s`` (without the centring for
    RMSNorm); ``β`` is a contributor of the denominator, so relevance is conserved where ``β = 0``. The
    forward is PyTorch's own normalisation, which also returns ``1 / σ``; the backward applies ``Jᵀ``
    directly instead of differentiating a written-out normalisation. With ``gradient`` (LRP's gradient
    form, ``g = R / value``) the backward is ``g_x = Jᵀ g_y``.
    """

    @staticmethod
    def forward(ctx, x, name, bound, stabilizer, gradient):
        weight, bias, eps = bound.get("weight"), bound.get("bias"), bound.get("eps")
        if name == "layer_norm":
            shape = tuple(bound["normalized_shape"])
            y, _, rstd = torch.native_layer_norm(x, shape, weight, bias, eps)
            ctx.grouped, ctx.affine = (*x.shape[: x.dim() - len(shape)], -1), (-1,)
        elif name == "group_norm":
            groups = bound["num_groups"]
            y, _, rstd = torch.native_group_norm(x, weight, bias, x.shape[0], x.shape[1], math.prod(x.shape[2:]), groups, eps)
            rstd = rstd.unsqueeze(-1)
            ctx.grouped, ctx.affine = (x.shape[0], groups, -1), (-1, *[1] * (x.dim() - 2))
        else:
            dims = tuple(range(-len(bound["normalized_shape"]), 0))
            epsilon = torch.finfo(x.dtype).eps if eps is None else eps
            rstd = torch.rsqrt(x.square().mean(dims, keepdim=True).add_(epsilon))
            y = x * rstd
            if weight is not None:
                y.mul_(weight)
            ctx.affine = None
        ctx.name, ctx.stabilizer, ctx.weight, ctx.gradient = name, stabilizer, weight, gradient
        ctx.save_for_backward(x, y, rstd)
        return y

    @staticmethod
    def backward(ctx, relevance):
        x, y, rstd = ctx.saved_tensors
        u = relevance if ctx.gradient else quotient(relevance, y, ctx.stabilizer)
        if ctx.name == "rms_norm":
            if ctx.weight is not None:
                u = u * ctx.weight
            share = u * rstd
        else:
            if ctx.weight is not None:
                u = u * ctx.weight.reshape(ctx.affine)
            grouped = u.reshape(ctx.grouped)
            share = (grouped - grouped.mean(-1, keepdim=True)).mul_(rstd.reshape(*rstd.shape[: len(ctx.grouped) - 1], 1))
            share = share.reshape(x.shape)
        return share if ctx.gradient else share.mul_(x), None, None, None, None


def _pass_activation(name: str, x: torch.Tensor, call: Callable) -> torch.Tensor:
    # Max-pooling is intercepted with the activations; its own gradient is the winner-take-all rule.
    if name == "max_pool" or not x.requires_grad:
        return call(x)
    return _PassThrough.apply(x, call)


#: Activations ``f`` with ``f(x) / x = f'(x)`` (and max-pooling): in gradient form they run as they are.
_GRADIENT_IS_RATIO = ("relu", "leaky_relu", "prelu", "max_pool")
#: Activations with ``f(0) != 0`` (``hardtanh`` and ``threshold`` can be): :class:`_Ratio` watches their zeros.
_NONZERO_AT_ZERO = ("sigmoid", "softplus", "hardsigmoid", "logsigmoid", "hardtanh", "threshold")


def _ratio_activation(tracer: _Tracer, name: str, x: torch.Tensor, call: Callable) -> torch.Tensor:
    """:func:`_pass_activation` in gradient form."""
    if name in _GRADIENT_IS_RATIO or not x.requires_grad:
        return call(x)
    return _Ratio.apply(x, call, tracer if name in _NONZERO_AT_ZERO else None)


class _Tracer(TorchFunctionMode):
    """Sees every call of one forward pass and gives each the backward pass of its LRP treatment."""

    def __init__(
        self,
        model: nn.Module,
        stabilizer: float,
        merge: MergeBatchNorm | None,
        attention: str = "attnlrp",
        gradient_form: bool = False,
    ):
        super().__init__()
        self.stabilizer = stabilizer
        # Propagate g = R / value instead of R (:meth:`LRP._gradient_form`): the treatments that then equal
        # the plain gradient run as they are.
        self.gradient_form = gradient_form
        self.inexact = False  # set by :class:`_Ratio`: a zero made nonzero, which the gradient form loses
        self.merge = merge
        self.attention = attention
        self.check_signs = False
        # Softmax outputs, and their reshapes, by identity: the attention weights CP-LRP takes as constants.
        self.weights: dict[int, torch.Tensor] = {}
        self.owners: dict[int, tuple[str, nn.Module]] = {}
        for name, module in model.named_modules():
            for tensor in (*module._parameters.values(), *module._buffers.values()):
                if tensor is not None:
                    self.owners.setdefault(id(tensor), (name, module))
        self.calls: list[_Call] = []
        self.positions = 0
        # Outputs of layer calls, by identity, so that a BatchNorm can find the layer it follows.
        self.outputs: dict[int, tuple[torch.Tensor, _Call, torch.Tensor]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # One scan of the arguments with torch functions off (under the tracer every tensor property read
        # is itself a call through the modes below it): most calls need no rule and run as they are.
        with torch._C.DisableTorchFunction():
            values = _flat(args, kwargs)
            entry = ops.op_of(func)
            category = entry.category if entry is not None else None if ops.is_attribute(func) else _UNCATALOGUED
            as_it_is = not any(isinstance(value, torch.Tensor) and value.requires_grad for value in values) or (
                category in _AS_THEY_ARE and not any(id(value) in self.owners for value in values)
            )
        if as_it_is:
            if self.gradient_form and category == ops.RESAMPLE and args and _requires_grad(args[0]):
                return self._resample(func, entry.name, args, kwargs)
            output = func(*args, **kwargs)
            # A view or copy of attention weights (CoaT's softmax(k).transpose(1, 2)) is attention weights too.
            held = self.weights and self.attention == "conservative" and category in (None, ops.RESHAPE)
            if held and self._of_weights(values):
                self.weights[id(output)] = output
            return output
        if category is _UNCATALOGUED:
            return self._uncatalogued(func, args, kwargs, values)
        name = entry.name if entry is not None else None
        if category == ops.FUSED:
            raise NotImplementedError(ops.fused_message(name, "LRP"))
        if name in _LINEAR_KINDS:
            return self._linear(func, args, kwargs)
        if func is F.batch_norm:
            return self._batch_norm(func, args, kwargs)
        if (category == ops.AVG_POOL or name in _SUMS) and _requires_grad(args[0] if args else kwargs.get("input")):
            return self._sum(func, args, kwargs)
        if name in _ADDITIONS:
            return self._addition(entry, args, kwargs)
        product = self._binary_product(entry, args, kwargs) if name in _PRODUCTS else None
        if product is not None:
            return self._product(*product)
        if name in _SCALINGS:
            return self._scaling(entry, args, kwargs)
        if name == "softmax":
            return self._softmax(func, args, kwargs)
        if name in _NORMALIZATIONS:
            return self._normalization(func, name, args, kwargs)
        if category == ops.DROPOUT:
            return self._dropout(func, args, kwargs)
        if category == ops.ACTIVATION:  # passed through by intercept_activations; PReLU's weight is no layer
            return func(*args, **kwargs)
        if func in _NO_RULE:
            raise NotImplementedError(
                f"LRP has no rule for {ops.describe(func)} inside the model. LRP explains the logits of a network of "
                "linear layers, activations, pooling, additions, products, softmax and normalisations: remove a "
                "final softmax from the model; other nonlinear arithmetic (exp, log, powers, log_softmax) is not "
                "supported"
            )
        owned = self._owned(values)
        if owned is not None:
            return self._opaque(func, args, kwargs, owned)
        if category == ops.NORMALIZATION:
            raise NotImplementedError(
                f"LRP has no rule for {ops.describe(func)} (a normalisation without parameters) inside the model; "
                "BatchNorm (folded into the layer before it), LayerNorm, GroupNorm and RMSNorm are supported"
            )
        return func(*args, **kwargs)

    def _uncatalogued(self, func, args, kwargs, values):
        """A call the operation catalogue does not know: a layer's opaque use of its parameters, or a call
        whose result carries no relevance (``x.size()``, ``x.dim()``); any other is refused, since passing it
        with the plain gradient would break conservation unnoticed (``F.normalize``, ``torch.abs``, ...)."""
        owned = self._owned(values)
        if owned is not None:
            return self._opaque(func, args, kwargs, owned)
        output = func(*args, **kwargs)
        if any(_requires_grad(value) for value in _flat((output,), {})):
            raise NotImplementedError(
                f"LRP has no rule for {ops.describe(func)}, which the model applies to a tensor that relevance flows "
                "through, and which the operation catalogue (nn_interpretability.core.ops) does not know. Write it "
                "with catalogued calls (linear layers, activations, pooling, additions, products, softmax, "
                "normalisations, reshaping) or explain the model with a gradient method"
            )
        return output

    def _of_weights(self, values) -> bool:
        """Whether every relevance-carrying tensor among a call's values is an attention weight (a softmax output)."""
        carried = [v for v in values if _requires_grad(v)]
        return bool(carried) and all(self.weights.get(id(v)) is v for v in carried)

    def _owned(self, values) -> torch.Tensor | None:
        """The first of a call's values that is a parameter or buffer of the model, if any."""
        return next((v for v in values if isinstance(v, torch.Tensor) and id(v) in self.owners), None)

    def _owner(self, tensor) -> tuple[str, nn.Module] | None:
        """The module whose parameter or buffer ``tensor`` is (or is a view of, e.g. a chunk of ``in_proj_weight``)."""
        if not isinstance(tensor, torch.Tensor):
            return None
        return self.owners.get(id(tensor)) or (self.owners.get(id(tensor._base)) if tensor._base is not None else None)

    def _record(self, call: _Call, a: torch.Tensor, compute: Callable) -> torch.Tensor:
        if self.check_signs:
            call.negative_input = bool((a < 0).any())
        self.calls.append(call)
        if not self.gradient_form:
            output = _LayerRule.apply(a, call, compute)
        elif call.kind not in ("linear", "conv"):
            output = _Ratio.apply(a, lambda _: compute(), self)  # a BatchNorm or an opaque layer, with Pass()
        elif type(call.layer) is LinearLayer and call.layer.kind == "linear":
            output = compute()  # LRP-0 of a dense layer is its gradient
        else:
            output = _LayerGradient.apply(a, call, compute)
        self.outputs[id(output)] = (output, call, a)
        return output

    @_past_the_modes
    def _resample(self, func, name: str, args, kwargs):
        """Padding and upsampling in gradient form: nearest-neighbour and padding copy their inputs, so the
        gradient is the rule form's; the other modes mix them (:class:`_Ratio` with ``mixes``)."""
        mode = "bilinear" if name == "upsample_bilinear" else ops.bound_arguments(func, args, kwargs).get("mode")
        if name in ("pad", "upsample_nearest") or mode in (None, "nearest", "nearest-exact"):
            return func(*args, **kwargs)
        rest = args[1:]
        return _Ratio.apply(args[0], lambda t: func(t, *rest, **kwargs), self, True)

    @_past_the_modes
    def _sum(self, func, args, kwargs):
        if self.gradient_form:
            return func(*args, **kwargs)
        rest = args[1:]
        return _SumRule.apply(args[0], lambda t: func(t, *rest, **kwargs), self.stabilizer)

    @_past_the_modes
    def _linear(self, func, args, kwargs):
        bound = ops.layer_arguments(func, args, kwargs)
        a, weight, bias = bound["input"], bound["weight"], bound["bias"]
        owner = self._owner(weight)
        if owner is None or not _requires_grad(a) or _requires_grad(bias):
            raise NotImplementedError(
                f"the model calls {ops.describe(func)} with a weight that is not a parameter of the model (or on a "
                "computed weight); LRP finds layers by their parameters: use nn.Linear / nn.Conv modules"
            )
        kind = ops.op_of(func).name
        options = {n: value for n, value in bound.items() if n not in ("input", "weight", "bias")}
        call = _Call(*owner, "linear" if kind == "linear" else "conv", self.positions, LinearLayer(kind, weight, bias, options))
        self.positions += 1
        return self._record(call, a, lambda: func(*args, **kwargs))

    @_past_the_modes
    def _batch_norm(self, func, args, kwargs):
        bound = ops.bound_arguments(func, args, kwargs)
        x = bound["input"]
        owner = self._owner(bound["weight"]) or self._owner(bound["running_mean"])
        label = f"{owner[0] or '<model>'!r} ({type(owner[1]).__name__})" if owner else "F.batch_norm"
        if bound["training"] or bound["running_mean"] is None:
            raise ValueError(
                f"BatchNorm {label} normalises with batch statistics; LRP folds BatchNorm with its running "
                "statistics, so put the model in eval mode (model.eval()) first"
            )
        if owner is None or not _requires_grad(x):
            raise NotImplementedError(f"LRP cannot place the batch_norm call {label}; use nn.BatchNorm modules")
        scale = batch_norm_layer(
            bound["running_mean"], bound["running_var"], bound["weight"], bound["bias"], bound["eps"]
        )
        compute = lambda: func(*args, **kwargs)  # noqa: E731
        produced = self.outputs.get(id(x))
        if self.merge is not None and produced is not None and produced[0] is x:
            _, before, a = produced
            merged = self.merge.merge(before.layer, scale, x)
            if merged is not None:
                return self._record(_Call(before.name, before.module, before.kind, before.position, merged), a, compute)
        return self._record(_Call(*owner, "batch_norm", None, scale), x, compute)

    @_past_the_modes
    def _addition(self, entry: ops.OpEntry, args, kwargs):
        left, right, sign = _ADDITIONS[entry.name]
        operands = list(args) + [kwargs.get("other")] * (len(args) < 2)
        a, b = operands[left], operands[right]
        if _requires_grad(a) and _requires_grad(b):
            if self.gradient_form:
                return entry.out_of_place(*args, **kwargs)
            sign *= kwargs.get("alpha", 1)
            return _ResidualSum.apply(a, b, sign, self.stabilizer)
        activation = a if _requires_grad(a) else b
        learned = self._owner(b if activation is a else a) is not None
        if self.gradient_form and learned:
            return entry.out_of_place(*args, **kwargs)

        def call(t):
            swap = lambda v: t if v is activation else v  # noqa: E731
            return entry.out_of_place(*map(swap, args), **{k: swap(v) for k, v in kwargs.items()})

        if learned:  # a learned bias (position embeddings): it takes its share of the relevance, as a layer's bias
            return _SumRule.apply(activation, call, self.stabilizer)
        # A constant (e.g. an input shift): the activation keeps its relevance.
        if self.gradient_form:
            return _Ratio.apply(activation, call, self)
        return entry.out_of_place(*args, **kwargs)

    def _binary_product(self, entry: ops.OpEntry, args, kwargs) -> tuple[Callable, torch.Tensor, torch.Tensor, int | None] | None:
        """``(call, a, b, constant)`` for a product the bilinear rule treats, or None; ``constant`` indexes
        an operand that is no activation (None: both are).

        That is a product of two activations, or a matrix product (``@``, ``bmm``, ``einsum``) of an
        activation and a constant that is no parameter of the model (CP-LRP's attention weights computed
        from detached queries and keys): a linear map without bias. An elementwise product with a constant
        is a scaling (:meth:`_scaling`).
        """
        if entry.name == "einsum":
            equation, operands = args[0], (args[1:] if len(args) > 2 else tuple(args[1]) if len(args) == 2 else ())
            if len(operands) != 2:
                return None
            call = lambda a, b: torch.einsum(equation, a, b)  # noqa: E731
        else:
            operands = (list(args) + [kwargs.get("other")] * (len(args) < 2))[:2]
            if len(operands) < 2:
                return None
            base = entry.out_of_place
            call = lambda a, b: base(a, b)  # noqa: E731
        a, b = operands
        grads = (_requires_grad(a), _requires_grad(b))
        if all(grads):
            return call, a, b, None
        constant = grads.index(False)
        value = operands[constant]
        if any(grads) and entry.name != "mul" and isinstance(value, torch.Tensor) and self._owner(value) is None:
            return call, a, b, constant
        return None

    @_past_the_modes
    def _product(self, call: Callable, a: torch.Tensor, b: torch.Tensor, constant: int | None):
        """A product for :class:`_Bilinear`: a constant operand, or one CP-LRP holds constant, gets no relevance."""
        if constant is None and self.attention == "conservative":
            held = [i for i, t in enumerate((a, b)) if self.weights.get(id(t)) is t]
            constant = held[0] if len(held) == 1 else None
        if self.gradient_form:
            if constant is not None:
                return call(*(t.detach() if i == constant else t for i, t in enumerate((a, b))))
            return _Scaled.apply(call(a, b), 0.5)
        return _Bilinear.apply(a, b, call, self.stabilizer, constant)

    @_past_the_modes
    def _softmax(self, func, args, kwargs):
        bound = ops.bound_arguments(torch.nn.functional.softmax, args, kwargs) if func is F.softmax else None
        x = args[0]
        dim = bound["dim"] if bound is not None else (args[1] if len(args) > 1 else kwargs.get("dim"))
        dtype = bound["dtype"] if bound is not None else kwargs.get("dtype")
        if dim is None or dtype is not None:
            raise NotImplementedError("LRP's softmax rule needs softmax(x, dim) with an explicit dim and no dtype")
        y = torch.softmax(x, dim) if self.gradient_form else _Softmax.apply(x, dim)
        self.weights[id(y)] = y
        return y

    @_past_the_modes
    def _normalization(self, func, name: str, args, kwargs):
        bound = ops.bound_arguments(func, args, kwargs) if func in (F.layer_norm, F.group_norm, F.rms_norm) else None
        if bound is None:
            raise NotImplementedError(f"LRP treats {name} called as F.{name}; the model calls {ops.describe(func)}")
        if _requires_grad(bound.get("weight")) or _requires_grad(bound.get("bias")):
            raise NotImplementedError(f"LRP cannot treat {name} with computed (input-dependent) weights")
        return _Normalization.apply(bound["input"], name, bound, self.stabilizer, self.gradient_form)

    @_past_the_modes
    def _scaling(self, entry: ops.OpEntry, args, kwargs):
        func = entry.func
        operands = list(args) + [kwargs.get("other")] * (len(args) < 2)
        x, c = operands[0], operands[1]
        if _requires_grad(x) and _requires_grad(c):
            raise NotImplementedError(
                f"LRP has no rule for the quotient of two activations ({ops.describe(func)}); write it as a product"
            )
        if entry.name == "mul" and _requires_grad(c):
            x, c = c, x
        if not _requires_grad(x) or kwargs.get("rounding_mode") is not None:
            raise NotImplementedError(f"LRP has no rule for {ops.describe(func)} with an activation in the denominator")
        # A constant or a parameter (layer scale): a diagonal layer, through which relevance passes unchanged.
        if self.gradient_form:
            return entry.out_of_place(*args, **kwargs)
        return _PassThrough.apply(x, lambda t: entry.out_of_place(t, c))

    @_past_the_modes
    def _dropout(self, func, args, kwargs):
        if not ops.dropout_arguments(func, args, kwargs)[2]:
            return func(*args, **kwargs)  # eval-mode dropout is the identity
        base, args, kwargs = ops.out_of_place(func, args, kwargs)
        if self.gradient_form:
            return base(*args, **kwargs)
        rest = args[1:]
        return _PassThrough.apply(args[0], lambda t: base(t, *rest, **kwargs))

    def _opaque(self, func, args, kwargs, parameter):
        name, module = self.owners[id(parameter)]
        inputs = [value for value in _flat(args, kwargs) if _requires_grad(value)]
        if len(inputs) != 1:
            raise NotImplementedError(
                f"module {name or '<model>'!r} ({type(module).__name__}) combines several activations in "
                f"{ops.describe(func)}; LRP has no rule for it"
            )
        call = _Call(name, module, "other", None, OpaqueLayer(ops.describe(func)))
        return self._record(call, inputs[0], lambda: func(*args, **kwargs))


def _as_layers(calls: Sequence[_Call], count: int) -> list[Layer]:
    return [Layer(call.name, call.module, call.kind, call.position, count) for call in calls]


@register_method("lrp")
class LRP(Attribution):
    """Layer-wise relevance propagation: the target logit redistributed layer by layer to the input.

    Bach et al. 2015; the textbook's eq. 9.18–9.29 and the report's section 2.2.5 (eq. 14–22). The
    relevance starts as the target logit on the target class (eq. 9.20) and every layer shares the
    relevance of its outputs among its inputs by its rule (eq. 9.18); the result has the input's shape.
    Relevance is conserved layer by layer (eq. 9.21, 14–16) for rules with ``bias=False`` and zero
    stabilisers; the ``return_convergence_delta`` of :meth:`attribute` reports how far from it a
    configuration is.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits ``(N, C)``, built from the layers listed in the module
        documentation (any nesting, functional or in-place activations, residual additions, BatchNorm).
    rule : Rule, optional
        One rule for every linear and convolutional layer, e.g. ``Epsilon(0)`` for LRP-0.
    composite : Composite, optional
        Rules per layer (:mod:`~nn_interpretability.attribution.lrp.composites`). Give ``rule`` or
        ``composite``, not both; with neither, :class:`EpsilonPlusFlat` is used.
    canonizers : sequence of MergeBatchNorm, optional
        Model rewrites for the LRP backward pass; default ``(MergeBatchNorm(),)``, ``()`` for none.

    Examples
    --------
    >>> lrp = LRP(model, composite=EpsilonGammaBox(low=0.0, high=1.0))     # doctest: +SKIP
    >>> relevance = lrp.attribute(images, target=labels)                     # doctest: +SKIP
    """

    has_convergence_delta = True
    multiplies_by_inputs = True
    multiple_inputs = True
    #: Refuse models whose hidden layers receive negative inputs (deep Taylor's root-point assumption).
    nonnegative_hidden_inputs = False

    def __init__(self, model: nn.Module, rule: Rule | None = None, composite: Composite | None = None, canonizers=None):
        super().__init__(model)
        if rule is not None and composite is not None:
            raise ValueError("give LRP either one rule for every layer (rule=...) or a composite (composite=...), not both")
        if rule is not None and not isinstance(rule, Rule):
            raise TypeError(f"rule must be an LRP rule such as Epsilon(0.25), got {rule!r}")
        if composite is not None and not isinstance(composite, Composite):
            raise TypeError(
                f"composite must be a nn_interpretability LRP composite (Composite, EpsilonGammaBox, ...), got {composite!r}"
            )
        if composite is None:
            composite = Composite(default=rule) if rule is not None else EpsilonPlusFlat()
        self.composite = composite
        self.canonizers = (MergeBatchNorm(),) if canonizers is None else tuple(canonizers)
        for canonizer in self.canonizers:
            if not isinstance(canonizer, MergeBatchNorm):
                raise TypeError(f"canonizers must be MergeBatchNorm instances, got {canonizer!r}")

    def _attribute(self, run: Run, return_convergence_delta: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Relevance of every input feature for the target logit, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; None explains the predicted class.
        return_convergence_delta : bool
            Also return ``sum(relevance) - f_c(x)`` per sample: 0 where relevance is conserved.
        """
        xs = tuple(x.detach().requires_grad_(True) for x in run.inputs_tuple)
        relevance, scalar, inexact = self._relevance(run, xs, self._gradient_form())
        if inexact:  # the gradient form lost relevance at a zero that a shift or sigmoid made nonzero
            relevance, scalar, _ = self._relevance(run, xs, False)
        if not all(torch.isfinite(r).all() for r in relevance):
            raise RuntimeError(
                "LRP produced non-finite relevance (a denominator vanished or overflowed); use epsilon or "
                "stabilizer > 0 in the rules"
            )
        if return_convergence_delta:
            return run.like(relevance), sum(r.flatten(1).sum(1) for r in relevance) - scalar.detach()
        return run.like(relevance)

    def _relevance(self, run: Run, xs: tuple, gradient_form: bool) -> tuple[tuple, torch.Tensor, bool]:
        """One forward and backward pass: the relevance of ``xs``, the explained scalar and whether the
        gradient form was inexact (:class:`_Ratio`)."""
        output, tracer = self._forward(run, run.like(xs), gradient_form)
        # The relevance starts as the explained scalar spread over the output by its gradient (eq. 9.20 for a
        # logit: the one-hot times the logit), so that it sums to the scalar for every linear target.
        scalar_of = run.bind(output)
        y = output.detach().requires_grad_(True)
        with torch.enable_grad():
            scalar = scalar_of(y)
            (weights,) = torch.autograd.grad(scalar.sum(), y)
        # In gradient form the backward pass carries R / value: the start is R / y, 0 where y = 0 (0/0 as 0).
        start = weights.masked_fill(y == 0, 0.0) if gradient_form else weights * y.detach()
        try:
            relevance = torch.autograd.grad(output, xs, start, allow_unused=True)
        except RuntimeError as error:
            if "modified by an inplace operation" not in str(error):
                raise
            raise ValueError(
                "the model modifies a layer's output in place (e.g. x.clamp_(), x[...] = v), which LRP needs "
                "for its backward pass; write the operation out of place"
            ) from error
        if all(r is None for r in relevance):
            raise ValueError("the model's output does not depend on its input")
        relevance = tuple(
            torch.zeros_like(x) if r is None else x.detach() * r if gradient_form else r for r, x in zip(relevance, xs)
        )
        return relevance, scalar, tracer.inexact

    def layer_rules(self, inputs: torch.Tensor) -> list[tuple[str, str, int | None, Rule]]:
        """The rule each layer call gets on ``inputs``: ``(name, kind, position, rule)`` in forward order.

        A BatchNorm folded into the layer before it appears with that layer's name; one forward pass,
        no backward pass.
        """
        return self._call(self._layer_rules, inputs, None, {})

    def _layer_rules(self, run: Run) -> list[tuple[str, str, int | None, Rule]]:
        _, tracer = self._forward(run, run.like(x.detach().requires_grad_(True) for x in run.inputs_tuple))
        seen, table = set(), []
        for call in tracer.calls:
            key = (call.name, call.kind, call.position)
            if key not in seen:
                seen.add(key)
                table.append((call.name, call.kind, call.position, call.rule))
        return table

    def _gradient_form(self) -> bool:
        """Whether the composite is LRP-0 everywhere, so that LRP can run as a modified gradient.

        With LRP-0 (bias in the denominator) on every layer and zero stabilisers, every rule divides by
        its own output, so ``g = R / value`` propagates by ``g_a = Wᵀ g_z`` through layers, BatchNorm,
        sums, additions, scalings and softmax (their plain gradients), by ``g_x = g_y f(x) / x`` through
        activations and other relevance-passing operations, by half the gradient through products of two
        activations (the uniform rule), by the gradient at constant statistics through normalisations and
        by ``Jᵀ (y ∘ g) / x`` through upsampling that mixes its inputs; ``R = x ∘ g`` at the input. That is
        Gradient × Input with the nonlinearities modified, the way LXT implements AttnLRP (Achtibat et al.
        2024), and it spares the two elementwise passes per layer of dividing and multiplying back.
        Relevance equals the rule form's up to rounding.
        """
        composite = self.composite
        rule = composite.default
        return (
            type(composite) is Composite
            and not composite.rules
            and composite.stabilizer == 0
            and type(rule) is Epsilon
            and rule.epsilon == 0
            and rule.bias
            and not self.nonnegative_hidden_inputs
        )

    def _forward(self, run: Run, x, gradient_form: bool = False) -> tuple[torch.Tensor, _Tracer]:
        merge = next(iter(self.canonizers), None)
        tracer = _Tracer(self.model, self.composite.stabilizer, merge, self.composite.attention, gradient_form)
        tracer.check_signs = self.nonnegative_hidden_inputs
        constant = self.composite.attention == "conservative"
        activations = functools.partial(_ratio_activation, tracer) if gradient_form else _pass_activation
        with intercept_activations(activations), tracer, unfused_attention(constant_weights=constant):
            output = run.forward(x)
        tracer.outputs.clear()
        layers = _as_layers(tracer.calls, tracer.positions)
        for call, layer, rule in zip(tracer.calls, layers, self.composite.assign(layers)):
            if rule is None:
                raise ValueError(_missing_rule(layer))
            if not isinstance(rule, Rule):
                raise TypeError(f"the composite gave {layer.label} {rule!r}, which is not an LRP rule")
            if isinstance(call.layer, OpaqueLayer) and not isinstance(rule, Pass):
                raise ValueError(
                    f"{layer.label} calls {call.layer.operation}, which only Pass() can handle, but the composite gave it {rule!r}"
                )
            call.rule = rule
        if self.nonnegative_hidden_inputs:
            _check_root_points(tracer.calls)
        return output, tracer

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, composite={self.composite!r})"


def _missing_rule(layer: Layer) -> str:
    if layer.kind in ("linear", "conv"):
        return (
            f"LRP has no rule for layer {layer.label} at layer position {layer.position} of {layer.count}; "
            f"map it in the composite, e.g. Composite({{nn.{type(layer.module).__name__}: Epsilon()}}), "
            f"Composite({{{layer.name!r}: Epsilon()}}) or Composite(..., default=Epsilon())"
        )
    return (
        f"LRP has no rule for module {layer.label}; map it in a composite, e.g. "
        f"LRP(model, composite=Composite({{{layer.name!r}: Pass()}}, default=Epsilon())) to pass relevance "
        "through it unchanged"
    )


def _check_root_points(calls: Sequence[_Call]) -> None:
    """Deep Taylor's z+ root points exist only for non-negative inputs: refuse a hidden layer that gets negative ones."""
    for call in calls:
        if call.negative_input and call.kind in ("linear", "conv") and call.position != 0:
            raise NotImplementedError(
                f"deep Taylor decomposition's z+ rule takes its root point in the positive orthant, which assumes "
                f"non-negative inputs at every hidden layer (ReLU activations; Montavon et al. 2017, section 4); "
                f"layer {call.name or '<model>'!r} ({type(call.module).__name__}) receives negative inputs (after a "
                "LayerNorm, GELU, SiLU, Hardswish, ...). Use LRP, e.g. nni.LRP(model) (EpsilonPlusFlat), whose "
                "rules do not need it"
            )


@register_method("deep-taylor")
class DeepTaylor(LRP):
    """Deep Taylor decomposition: the z+ rule (LRP-alpha1-beta0) on hidden layers, z^B on the input layer.

    Montavon et al. 2017; the report's section 2.2.4, eq. 9–13: a first-order Taylor expansion of each
    neuron's relevance at a root point on the layer below gives ``R_j = sum_k a_j w_jk^+ / sum_j a_j
    w_jk^+ R_k``, the z+ rule, and the box-constrained root point of the input layer gives the z^B
    rule (eq. 22). Equal to ``LRP(model, composite=Composite({0: ZBox(low, high)}, default=AlphaBeta(1, 0)))``
    where its assumption holds: every hidden layer's inputs are non-negative (ReLU networks). A model whose
    hidden layers receive negative inputs (transformers, SiLU or Hardswish nets) is refused, naming the layer.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits ``(N, C)``.
    low, high : float or Tensor
        Bounds of the input (see :class:`~nn_interpretability.attribution.lrp.rules.ZBox`).
    stabilizer : float
        Stabiliser of the denominators.
    bias : bool
        Whether the positive part of the bias enters the z+ denominators (eq. 13 leaves it out).
    canonizers : sequence of MergeBatchNorm, optional
        As for :class:`LRP`.
    """

    nonnegative_hidden_inputs = True

    def __init__(self, model: nn.Module, low, high, stabilizer: float = 1e-6, bias: bool = True, canonizers=None):
        composite = Composite(
            {0: ZBox(low, high, stabilizer)}, default=AlphaBeta(1.0, 0.0, stabilizer, bias), stabilizer=stabilizer
        )
        super().__init__(model, composite=composite, canonizers=canonizers)


@register_method("lrp-0")
def lrp_0(model: nn.Module, bias: bool = True, canonizers=None) -> LRP:
    """LRP-0 on every layer (textbook eq. 9.27, report eq. 18)."""
    return LRP(model, rule=Epsilon(0.0, bias), canonizers=canonizers)


@register_method("lrp-epsilon")
def lrp_epsilon(model: nn.Module, epsilon: float = 0.25, bias: bool = True, canonizers=None) -> LRP:
    """LRP-epsilon on every layer (textbook eq. 9.28, report eq. 19)."""
    return LRP(model, rule=Epsilon(epsilon, bias), canonizers=canonizers)


@register_method("lrp-gamma")
def lrp_gamma(model: nn.Module, gamma: float = 0.25, bias: bool = True, canonizers=None) -> LRP:
    """LRP-gamma on every layer (textbook eq. 9.29, report eq. 20)."""
    return LRP(model, rule=Gamma(gamma, bias=bias), canonizers=canonizers)


@register_method("lrp-alpha2-beta1")
def lrp_alpha2_beta1(model: nn.Module, bias: bool = True, canonizers=None) -> LRP:
    """LRP-alpha2-beta1 on every layer (report eq. 21)."""
    return LRP(model, rule=AlphaBeta(2.0, 1.0, bias=bias), canonizers=canonizers)


@register_method("lrp-composite")
def lrp_composite(model: nn.Module, low=0.0, high=1.0, canonizers=None, **settings) -> LRP:
    """The report's composite LRP (:class:`ReportComposite`); ``low``/``high`` bound the input, [0, 1] by default."""
    return LRP(model, composite=ReportComposite(low, high, **settings), canonizers=canonizers)
