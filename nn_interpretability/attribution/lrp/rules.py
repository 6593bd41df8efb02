"""LRP rules: how the relevance of a layer's outputs is shared among its inputs.

Each rule fills one contribution matrix of the textbook's eq. 9.18–9.19,
``c(a^m) = C(a^m | a^{m+1}) c(a^{m+1})``, without forming it: for a layer ``z = W a + b`` it maps
the relevance ``R`` of the outputs to the relevance of the inputs with a few convolutions (or matrix
products) of modified weights. :class:`~nn_interpretability.attribution.lrp.LRP` calls
:meth:`Rule.relevance` from the backward pass of every layer, so the modified backward pass *is* the
rule and one backward pass explains any graph.

The bias switch
---------------
Every rule whose denominator can contain the bias takes ``bias``:

- ``bias=True`` (default; Bach et al. 2015, Montavon et al. 2019, Zennit, Captum): the bias is one
  more contributor in the denominator, so it absorbs its share of the relevance. LRP-0 on every layer
  of a ReLU network then equals gradient × input.
- ``bias=False`` (the textbook's eq. 9.27): denominators sum only the inputs' contributions, every
  column of ``C`` sums to one (eq. 9.22) and relevance is conserved exactly (eq. 9.21–9.26): the input
  relevance sums to the explained logit.

Denominators are stabilised as in Zennit: ``z + epsilon * sign(z)`` with ``sign(0) = +1``, so they
never change sign. With a stabiliser of exactly 0, a zero denominator passes no relevance
(0/0 is read as 0) instead of producing NaN.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_INPUT = {1: torch.nn.grad.conv1d_input, 2: torch.nn.grad.conv2d_input, 3: torch.nn.grad.conv3d_input}


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1``: moves a denominator away from zero, keeping its sign."""
    if epsilon == 0:
        return z
    # copysign of z + 0.0 turns -0.0 into +0.0, so zeros move up; much cheaper than torch.where on CPU.
    # Both steps write into the one temporary (the sum is the same either way round).
    signed = z + 0.0
    if torch.is_grad_enabled():  # out= is not differentiable
        return z + torch.copysign(z.new_tensor(epsilon), signed)
    return torch.copysign(z.new_tensor(epsilon), signed, out=signed).add_(z)


def quotient(r: torch.Tensor, z: torch.Tensor, epsilon: float, nonnegative: bool = False) -> torch.Tensor:
    """``r / stabilize(z, epsilon)``, and 0 where an unstabilised denominator is exactly 0 (0/0 read as 0).

    ``nonnegative`` promises ``z >= 0`` (z+ denominators of inputs >= 0): ``stabilize`` is then ``z + epsilon``,
    one pass over ``z`` instead of three, with the same values (-0.0 included).
    """
    if epsilon > 0:
        # a temporary: the quotient can overwrite it
        denominator = z + epsilon if nonnegative else stabilize(z, epsilon)
        if denominator.shape == r.shape and denominator.dtype == r.dtype and not torch.is_grad_enabled():
            return torch.div(r, denominator, out=denominator)
        return r / denominator
    ratios = r / z
    # A zero denominator makes its ratio inf or nan, and so the sum; on the CPU a sum costs a quarter of the
    # comparison with 0 and the fill, which run only where a ratio is not finite.
    if ratios.device.type == "cpu" and torch.isfinite(ratios.sum()):
        return ratios
    return ratios.masked_fill_(z == 0, 0.0)


def _patch_transpose(s: torch.Tensor, weight: torch.Tensor, input_shape: Sequence[int]) -> torch.Tensor:
    """``weight^T s`` of a patchify convolution (stride = kernel; a ViT's patch embedding) as one matrix product.

    Every output position reads its own patch, so the transposed convolution writes ``s`` at each position
    times the flattened kernel into that patch; PyTorch's general ``convolution_backward`` takes 7–14×
    longer for these shapes on the CPU. Input elements no patch covers (a remainder) get 0. A pointwise
    (1 × 1) convolution on channels-first ``s`` is one product ``W^T s_n`` per sample, with no layout copy
    (3× faster than the copy on resnet50's 32 × 32 maps at batch 2).
    """
    n, c_out, *grid = s.shape
    c_in, *kernel = weight.shape[1:]
    if all(k == 1 for k in kernel) and s.is_contiguous():
        return torch.matmul(weight.reshape(c_out, c_in).t(), s.reshape(n, c_out, -1)).view(n, c_in, *grid)
    d = len(grid)
    patches = s.movedim(1, -1).reshape(-1, c_out) @ weight.reshape(c_out, -1)  # (N * positions, C_in * kernel)
    patches = patches.view(n, *grid, c_in, *kernel)
    # (N, L_1..L_d, C_in, k_1..k_d) -> (N, C_in, L_1, k_1, ..., L_d, k_d) -> (N, C_in, L_1 k_1, ..., L_d k_d)
    order = [0, d + 1] + [i for pair in zip(range(1, d + 1), range(d + 2, 2 * d + 2)) for i in pair]
    full = patches.permute(order).reshape(n, c_in, *(g * k for g, k in zip(grid, kernel)))
    remainder = [size - g * k for size, g, k in zip(input_shape[2:], grid, kernel)]
    if any(remainder):
        full = F.pad(full, [value for r in reversed(remainder) for value in (0, r)])
    return full


@dataclass
class LinearLayer:
    """A layer ``z = W a + b`` as the rules see it.

    ``kind`` is ``"linear"`` (``F.linear``), ``"conv1d"``/``"conv2d"``/``"conv3d"`` (with the call's
    ``stride``, ``padding``, ``dilation``, ``groups`` in ``options``) or ``"scale"`` (an eval-mode
    BatchNorm: one weight per channel along dimension 1). A BatchNorm folded into the layer before it
    (:class:`~nn_interpretability.attribution.lrp.canonizers.MergeBatchNorm`) is already part of
    ``weight`` and ``bias``.
    """

    kind: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    options: dict = field(default_factory=dict)

    def forward(self, a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``weight a + bias`` with this layer's structure (convolution geometry, feature axis)."""
        if self.kind == "linear":
            return F.linear(a, weight, bias)
        if self.kind == "scale":
            out = a * self._channel(weight, a.dim())
            return out if bias is None else out + self._channel(bias, a.dim())
        return _CONV[self._dims](a, weight, bias, **self.options)

    def transpose(self, s: torch.Tensor, weight: torch.Tensor, input_shape: Sequence[int]) -> torch.Tensor:
        """``weight^T s``: the backward map of :meth:`forward`, for an input of shape ``input_shape``."""
        if self.kind == "linear":
            return s @ weight
        if self.kind == "scale":
            return s * self._channel(weight, s.dim())
        padding = self.options.get("padding", 0)
        if isinstance(padding, str):
            # 'same' may pad asymmetrically, which the transposed convolution cannot express.
            with torch.enable_grad():
                probe = s.new_zeros(input_shape).requires_grad_(True)
                (gradient,) = torch.autograd.grad(self.forward(probe, weight), probe, s)
            return gradient
        if self._is_patchify(weight):
            return _patch_transpose(s, weight, input_shape)
        return _CONV_INPUT[self._dims](tuple(input_shape), weight, s, **self.options)

    def _is_patchify(self, weight: torch.Tensor) -> bool:
        """Whether the convolution cuts its input into disjoint patches (stride = kernel, no padding, dilation, groups)."""
        d = self._dims
        options = self.options

        def sizes(name, default):
            value = options.get(name, default)
            return tuple(value) if isinstance(value, (tuple, list)) else (value,) * d

        return (
            sizes("stride", 1) == tuple(weight.shape[2:])
            and sizes("padding", 0) == (0,) * d
            and sizes("dilation", 1) == (1,) * d
            and options.get("groups", 1) == 1
        )

    def positive_part(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``weight^+`` as ``(w, scale)``: ``weight^+ = diag(scale) w``, ``scale`` None for the identity.

        ``z`` is the layer's output, whose size tells a folded layer where a per-channel scale is cheaper.
        """
        return self.weight.clamp(min=0), None

    def bias_term(self, bias: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``bias`` shaped to broadcast against an output ``z``."""
        return bias if self.kind == "linear" else self._channel(bias, z.dim())

    def without_bias(self, z: torch.Tensor) -> torch.Tensor:
        """``W a`` from the layer's output ``z = W a + b``."""
        return z if self.bias is None else z - self.bias_term(self.bias, z)

    @property
    def _dims(self) -> int:
        return int(self.kind[-2])

    @staticmethod
    def _channel(vector: torch.Tensor, dims: int) -> torch.Tensor:
        return vector.reshape(-1, *([1] * (dims - 2)))


@dataclass
class OpaqueLayer:
    """A call of a parametrised operation no rule can see inside (LayerNorm, PReLU-like custom code, ...).

    Only :class:`Pass` applies to it.
    """

    operation: str


class Rule:
    """Base class of the LRP rules.

    Subclasses implement :meth:`relevance`; they are stateless and may be shared by many layers.
    """

    def relevance(self, layer, a: torch.Tensor, z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Relevance of the inputs ``a`` given the layer's outputs ``z`` and their relevance ``r``."""
        raise NotImplementedError

    def _require_linear(self, layer) -> LinearLayer:
        if not isinstance(layer, LinearLayer):
            raise TypeError(
                f"{self!r} needs a linear layer (Linear, Conv, BatchNorm) but got {layer.operation}; only Pass() "
                "applies to other operations"
            )
        return layer

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({settings})"


def _check_stabilizer(value: float, name: str = "stabilizer") -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_bias(value: bool) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"bias must be True (the bias enters the denominator) or False, got {value!r}")
    return value


class Epsilon(Rule):
    """LRP-epsilon, ``R_i = a_i sum_j w_ji R_j / (z_j + eps sign(z_j))``; ``epsilon=0`` is LRP-0.

    Bach et al. 2015; the textbook's eq. 9.27 (LRP-0) and 9.28, the report's eq. 18–19. A larger
    epsilon absorbs the relevance of weakly or contradictorily activated neurons: sparser, less noisy
    maps at the cost of conservation.

    Parameters
    ----------
    epsilon : float
        Added to each denominator with its sign. 0 gives LRP-0 (zero denominators pass no relevance).
    bias : bool
        Whether the bias enters the denominator (see the module notes).
    """

    def __init__(self, epsilon: float = 1e-6, bias: bool = True):
        self.epsilon = _check_stabilizer(epsilon, "epsilon")
        self.bias = _check_bias(bias)

    def relevance(self, layer, a, z, r):
        layer = self._require_linear(layer)
        s = quotient(r, z if self.bias else layer.without_bias(z), self.epsilon)
        return a * layer.transpose(s, layer.weight, a.shape)


class Gamma(Rule):
    """LRP-gamma, ``R_i = a_i sum_j (w_ji + gamma w_ji^+) R_j / sum_k a_k (w_jk + gamma w_jk^+)``.

    Montavon et al. 2019; the textbook's eq. 9.29, the report's eq. 20. Favours positive contributions;
    as gamma grows it tends to LRP-alpha1-beta0. Inputs of either sign are handled as in Andéol et al.
    2021 (and Zennit): for a neuron with positive output the weights that agree with the sign of their
    input are boosted, for a negative output those that disagree; the output's sign picks the case.

    Parameters
    ----------
    gamma : float
        Weight of the added positive part, >= 0 (0 gives LRP-0).
    stabilizer : float
        Added to the denominators with their sign.
    bias : bool
        Whether the bias (``b + gamma b^+`` resp. ``b + gamma b^-``) enters the denominator.
    """

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6, bias: bool = True):
        self.gamma = _check_stabilizer(gamma, "gamma")
        self.stabilizer = _check_stabilizer(stabilizer)
        self.bias = _check_bias(bias)

    def relevance(self, layer, a, z, r):
        layer = self._require_linear(layer)
        g = self.gamma
        w = layer.weight
        w_pos, w_neg = w.clamp(min=0), w.clamp(max=0)
        bias = layer.bias if self.bias else None
        # The output's sign picks the denominator and the boosted weights; an output of 0 passes nothing.
        up_mask, down_mask = (z > 0).to(z.dtype), (z < 0).to(z.dtype)
        mixed_signs = bool(a.min() < 0)
        if mixed_signs:
            a_pos, a_neg = a.clamp(min=0), a.clamp(max=0)
            w_up, w_down = w + g * w_pos, w + g * w_neg
            up = layer.forward(a_pos, w_up) + layer.forward(a_neg, w_down)
            down = layer.forward(a_pos, w_down) + layer.forward(a_neg, w_up)
            if bias is not None:
                up = up + layer.bias_term(bias + g * bias.clamp(min=0), z)
                down = down + layer.bias_term(bias + g * bias.clamp(max=0), z)
        else:
            # With a >= 0: (w + g w+) a + b + g b+ = z + g q and (w + g w-) a + b + g b- = z + g (z - q),
            # q = w+ a + b+ (z and b without the bias when it stays out of the denominator).
            base = z if bias is not None or layer.bias is None else layer.without_bias(z)
            q = layer.forward(a, w_pos, None if bias is None else bias.clamp(min=0))
            up = torch.add(base, q, alpha=g)
            down = torch.add(base, base - q, alpha=g)
        s = quotient(r, up * up_mask + down * down_mask, self.stabilizer)
        s_up, s_down = s * up_mask, s * down_mask
        # (w + g w+)^T s_up + (w + g w-)^T s_down, regrouped into two products with w+ and w-.
        t_pos, t_neg = torch.add(s_down, s_up, alpha=1 + g), torch.add(s_up, s_down, alpha=1 + g)
        if not mixed_signs:
            return a * (layer.transpose(t_pos, w_pos, a.shape) + layer.transpose(t_neg, w_neg, a.shape))
        return a_pos * (layer.transpose(t_pos, w_pos, a.shape) + layer.transpose(t_neg, w_neg, a.shape)) + a_neg * (
            layer.transpose(t_neg, w_pos, a.shape) + layer.transpose(t_pos, w_neg, a.shape)
        )


class AlphaBeta(Rule):
    """LRP-alpha-beta: positive and negative contributions propagated separately, weighted alpha and beta.

    Bach et al. 2015; the report's eq. 21:
    ``R_i = sum_j (alpha (a_i w_ji)^+ / sum_k (a_k w_jk)^+ - beta (a_i w_ji)^- / sum_k (a_k w_jk)^-) R_j``.
    ``AlphaBeta(1, 0)`` is the z+ rule of deep Taylor decomposition (the report's eq. 13).

    Parameters
    ----------
    alpha, beta : float
        Weights of the excitatory and inhibitory flows, ``alpha - beta = 1`` and ``beta >= 0``.
    stabilizer : float
        Added to the denominators with their sign.
    bias : bool
        Whether the positive (negative) part of the bias enters the positive (negative) denominator.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = 1e-6, bias: bool = True):
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if beta < 0 or not math.isclose(alpha - beta, 1.0, rel_tol=0, abs_tol=1e-12):
            raise ValueError(
                f"AlphaBeta needs alpha - beta = 1 and beta >= 0 (e.g. alpha=2, beta=1), got alpha={alpha}, beta={beta}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.stabilizer = _check_stabilizer(stabilizer)
        self.bias = _check_bias(bias)

    def relevance(self, layer, a, z, r):
        layer = self._require_linear(layer)
        bias = layer.bias if self.bias else None
        bias_pos = None if bias is None else bias.clamp(min=0)
        if bool(a.min() < 0):
            w = layer.weight
            w_pos, w_neg = w.clamp(min=0), w.clamp(max=0)
            a_pos, a_neg = a.clamp(min=0), a.clamp(max=0)
            excitation = layer.forward(a_pos, w_pos, bias_pos) + layer.forward(a_neg, w_neg)
            s = quotient(r, excitation, self.stabilizer, nonnegative=True)
            relevance = self.alpha * (
                a_pos * layer.transpose(s, w_pos, a.shape) + a_neg * layer.transpose(s, w_neg, a.shape)
            )
            if self.beta == 0:
                return relevance
            inhibition = layer.forward(a_pos, w_neg, None if bias is None else bias.clamp(max=0))
            s = quotient(r, inhibition + layer.forward(a_neg, w_pos), self.stabilizer)
            return relevance - self.beta * (
                a_pos * layer.transpose(s, w_neg, a.shape) + a_neg * layer.transpose(s, w_pos, a.shape)
            )
        # With a >= 0 the inhibitory denominator w- a + b- is the output minus the excitatory one.
        w_pos, scale = layer.positive_part(z) if self.beta == 0 else (layer.weight.clamp(min=0), None)
        if scale is None:
            excitation = layer.forward(a, w_pos, bias_pos)
            s = quotient(r, excitation, self.stabilizer, nonnegative=True)
        else:  # w+ = diag(scale) w: the scale multiplies the outputs, on the way up and on the way down
            scale = layer.bias_term(scale, z)
            excitation = layer.forward(a, w_pos)
            excitation = excitation * scale if bias_pos is None else torch.addcmul(layer.bias_term(bias_pos, z), excitation, scale)
            s = quotient(r, excitation, self.stabilizer, nonnegative=True).mul_(scale)
        share = layer.transpose(s, w_pos, a.shape)
        if self.alpha != 1:
            share = self.alpha * share
        if self.beta != 0:
            base = z if bias is not None or layer.bias is None else layer.without_bias(z)
            inhibition = quotient(r, base - excitation, self.stabilizer)
            share = share - self.beta * layer.transpose(inhibition, layer.weight.clamp(max=0), a.shape)
        return a * share


class ZPlus(AlphaBeta):
    """The z+ rule, ``R_i = sum_j (a_i w_ji)^+ / sum_k (a_k w_jk)^+ R_j``: LRP-alpha1-beta0.

    Montavon et al. 2017 (deep Taylor decomposition); the report's eq. 12–13.
    """

    def __init__(self, stabilizer: float = 1e-6, bias: bool = True):
        super().__init__(alpha=1.0, beta=0.0, stabilizer=stabilizer, bias=bias)

    def __repr__(self) -> str:
        return f"ZPlus(stabilizer={self.stabilizer!r}, bias={self.bias!r})"


def _bounds(value, a: torch.Tensor, name: str) -> torch.Tensor:
    """A ZBox bound as a tensor of ``a``'s dtype and device, shaped ``(1 or N, *a.shape[1:])``."""
    bound = torch.as_tensor(value, dtype=a.dtype, device=a.device)
    if bound.dim() > a.dim():
        raise ValueError(f"ZBox {name} of shape {tuple(bound.shape)} has more dimensions than the input {tuple(a.shape)}")
    bound = bound.reshape(*([1] * (a.dim() - bound.dim())), *bound.shape)
    try:
        torch.broadcast_shapes(bound.shape, a.shape)
    except RuntimeError:
        raise ValueError(
            f"ZBox {name} of shape {tuple(bound.shape)} does not broadcast to the layer input of shape "
            f"{tuple(a.shape)}; use a scalar, a per-channel tensor such as (C, 1, 1), or the input's shape"
        ) from None
    if bound.shape[0] not in (1, a.shape[0]):
        raise ValueError(f"ZBox {name} has {bound.shape[0]} samples but the batch has {a.shape[0]}")
    return bound.expand(bound.shape[0], *a.shape[1:])


class ZBox(Rule):
    """The z^B rule for inputs known to lie in a box ``low <= x <= high`` (the input layer's rule).

    Montavon et al. 2017; the report's eq. 22:
    ``R_i = sum_j (x_i w_ji - l_i w_ji^+ - h_i w_ji^-) / sum_k (x_k w_jk - l_k w_jk^+ - h_k w_jk^-) R_j``.
    The denominator is the sum of the numerators, so the rule conserves relevance; the bias never enters
    it (there is no ``bias`` switch).

    Parameters
    ----------
    low, high : float or Tensor
        Bounds of the values entering the layer, broadcastable to its input: scalars (``0, 1`` for
        MNIST), per-channel tensors of shape ``(C, 1, 1)`` (the normalised range of each ImageNet
        channel), full ``(C, H, W)`` or per-sample ``(N, C, H, W)`` tensors.
    stabilizer : float
        Added to the denominator with its sign.

    Raises
    ------
    ValueError
        At attribution time, if an input lies outside ``[low, high]``: the rule would then assign
        relevance of the wrong sign.
    """

    def __init__(self, low, high, stabilizer: float = 1e-6):
        for name, value in (("low", low), ("high", high)):
            if not isinstance(value, (int, float, torch.Tensor)) or isinstance(value, bool):
                raise TypeError(f"ZBox {name} must be a number or a tensor, got {type(value).__name__}")
            if not torch.isfinite(torch.as_tensor(value)).all():
                raise ValueError(f"ZBox {name} must be finite")
        if (torch.as_tensor(low) > torch.as_tensor(high)).any():
            raise ValueError("ZBox needs low <= high")
        self.low = low
        self.high = high
        self.stabilizer = _check_stabilizer(stabilizer)

    def relevance(self, layer, a, z, r):
        layer = self._require_linear(layer)
        low, high = _bounds(self.low, a, "low"), _bounds(self.high, a, "high")
        if bool((a - low).min() < 0) or bool((high - a).min() < 0):
            raise ValueError(
                f"inputs outside the ZBox bounds: the layer's input spans [{a.min().item():.4g}, {a.max().item():.4g}]; "
                "pass the lowest and highest values its input can take as ZBox(low, high)"
            )
        w_pos, w_neg = layer.weight.clamp(min=0), layer.weight.clamp(max=0)
        denominator = layer.without_bias(z) - layer.forward(low, w_pos) - layer.forward(high, w_neg)
        s = quotient(r, denominator, self.stabilizer)
        return (a - low) * layer.transpose(s, w_pos, a.shape) + (a - high) * layer.transpose(s, w_neg, a.shape)


class Flat(Rule):
    """The flat rule: every output spreads its relevance uniformly over the inputs it is connected to.

    Lapuschkin et al. 2019 (WSquare with all weights set to one); used on the input layer when the
    explanation should not depend on the input values.

    Parameters
    ----------
    stabilizer : float
        Added to the denominator (the number of connected inputs) with its sign.
    """

    def __init__(self, stabilizer: float = 1e-6):
        self.stabilizer = _check_stabilizer(stabilizer)

    def relevance(self, layer, a, z, r):
        layer = self._require_linear(layer)
        ones = torch.ones_like(layer.weight)
        connections = layer.forward(a.new_ones(1, *a.shape[1:]), ones)
        return layer.transpose(quotient(r, connections, self.stabilizer, nonnegative=True), ones, a.shape)


class WSquare(Rule):
    """The w^2 rule, ``R_i = sum_j w_ji^2 / sum_k w_jk^2 R_j``, independent of the input values.

    Montavon et al. 2017; for input layers whose values are unbounded.

    Parameters
    ----------
    stabilizer : float
        Added to the denominator with its sign.
    bias : bool
        Whether ``b_j^2`` enters the denominator (as in Zennit).
    """

    def __init__(self, stabilizer: float = 1e-6, bias: bool = True):
        self.stabilizer = _check_stabilizer(stabilizer)
        self.bias = _check_bias(bias)

    def relevance(self, layer, a, z, r):
        layer = self._require_linear(layer)
        squared = layer.weight**2
        bias = layer.bias**2 if self.bias and layer.bias is not None else None
        denominator = layer.forward(a.new_ones(1, *a.shape[1:]), squared, bias)
        return layer.transpose(quotient(r, denominator, self.stabilizer, nonnegative=True), squared, a.shape)


class Pass(Rule):
    """Pass the relevance through unchanged, ``R_in = R_out`` (for layers that keep the shape).

    Zennit's convention for activations and for BatchNorm layers that cannot be folded; also the way
    to let relevance through a parametrised layer LRP has no rule for (e.g. a LayerNorm).
    """

    def relevance(self, layer, a, z, r):
        if r.shape != a.shape:
            name = layer.operation if isinstance(layer, OpaqueLayer) else layer.kind
            raise ValueError(
                f"Pass() needs a layer whose output has the shape of its input, but {name} maps "
                f"{tuple(a.shape)} to {tuple(r.shape)}"
            )
        return r
