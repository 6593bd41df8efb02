"""DeconvNet: reconstruct the input from one layer's response through a mirrored network (section 2.2.2)."""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _ntuple
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..core import ops
from ..core.base import check_inputs
from ..core.hooks import borrowed
from ..core.layers import find_layer

#: Values of ``keep``: the whole (selected) response, or only its strongest activation per sample.
KEEP = ("all", "max")

Tensor = torch.Tensor
Mirror = Callable[[Tensor], Tensor]

# Operations (names in :mod:`~nn_interpretability.core.ops`) and their mirrors.
_TRANSPOSED = {"conv1d": F.conv_transpose1d, "conv2d": F.conv_transpose2d, "conv3d": F.conv_transpose3d}
_RECTIFIERS = ("relu", "leaky_relu", "hardtanh")  # F.relu6 is hardtanh(0, 6)
# Calls that only rearrange the values in their order (flatten before a linear layer, ...): mirrored by a reshape.
_RESHAPES = ("view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze", "contiguous")
# Elementwise arithmetic with a constant (e.g. input normalisation inside the model).
_ARITHMETIC = ("add", "sub", "rsub", "mul", "div")

_SUPPORTED = (
    "supported on the path to the layer: conv1d/2d/3d, linear, ReLU / LeakyReLU / ReLU6 (module or functional), "
    "max- and average pooling (also adaptive), flatten / view / reshape, dropout and BatchNorm in eval mode, and adding, "
    "subtracting, multiplying or dividing by a constant"
)


class _LayerReached(Exception):
    """Stops the forward pass at the layer: nothing after it is needed."""


def _module_label(name: str, module: nn.Module) -> str:
    return f"module {name!r} ({type(module).__name__})" if name else f"the forward of {type(module).__name__}"


def _convolution_mirror(func, args, kwargs, current: Tensor, result: Tensor, where: str) -> Mirror:
    """The transposed convolution with the layer's own weight, cropped or padded back to the input size."""
    a = ops.layer_arguments(func, args, kwargs)
    if a["input"] is not current:
        raise ValueError(f"{where}: the convolution's input is not the path to the layer")
    weight, spatial = a["weight"], current.dim() - 2
    kernel = weight.shape[2:]
    stride, dilation = (_ntuple(spatial)(a[k]) for k in ("stride", "dilation"))
    padding = a["padding"]
    if padding == "valid":
        padding = (0,) * spatial
    elif padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        if any(t % 2 for t in total):
            raise ValueError(f"{where}: padding='same' pads this kernel unevenly, which has no transposed convolution")
        padding = tuple(t // 2 for t in total)
    else:
        padding = _ntuple(spatial)(padding)
    # The input size the strides skipped over (rows a strided kernel never reached) comes back as zeros.
    output_padding = tuple(
        size_in - ((size_out - 1) * s - 2 * p + d * (k - 1) + 1)
        for size_in, size_out, s, p, d, k in zip(
            current.shape[2:], result.shape[2:], stride, padding, dilation, kernel
        )
    )
    transpose, groups = _TRANSPOSED[ops.op_of(func).name], a["groups"]
    return lambda signal: transpose(signal, weight, None, stride, padding, output_padding, groups, dilation)


def _unpooling_mirror(func, args, kwargs, current: Tensor, where: str) -> Mirror:
    """Max-unpooling: each value goes back to the position its maximum came from (the switch)."""
    if (args[0] if args else kwargs.get("input")) is not current:
        raise ValueError(f"{where}: the pooling's input is not the path to the layer")
    kwargs = {k: v for k, v in kwargs.items() if k != "return_indices"}
    _, switches = ops.with_indices(func)(*args, **kwargs)
    shape = current.shape
    if switches.dim() != current.dim() or current.dim() < 3:
        raise ValueError(f"{where}: max-pooling needs a batch-first input (N, C, ...), got shape {tuple(shape)}")

    def unpool(signal: Tensor) -> Tensor:
        # Overlapping windows can share a switch: their values add up, as in the pooling's adjoint.
        out = signal.new_zeros(shape[0], shape[1], math.prod(shape[2:]))
        return out.scatter_add_(2, switches.flatten(2), signal.flatten(2)).view(shape)

    return unpool


def _average_pooling_mirror(func, args, kwargs, current: Tensor, where: str) -> Mirror:
    """The transpose of average pooling, taken as the input gradient of this linear map."""
    if (args[0] if args else kwargs.get("input")) is not current:
        raise ValueError(f"{where}: the pooling's input is not the path to the layer")
    shape, rest = current.shape, args[1:]

    def spread(signal: Tensor) -> Tensor:
        with torch.enable_grad():
            probe = signal.new_zeros(shape, requires_grad=True)
            (transposed,) = torch.autograd.grad(func(probe, *rest, **kwargs), probe, signal)
        return transposed

    return spread


def _batch_norm_mirror(args, kwargs, where: str) -> Mirror:
    """BatchNorm in eval mode is a per-channel scale and shift: folded into the mirror as the scale."""
    a = ops.bound_arguments(F.batch_norm, args, kwargs)
    if a["training"] or a["running_var"] is None:
        raise ValueError(
            f"{where}: BatchNorm normalises with the batch's own statistics (training mode or "
            "track_running_stats=False), so samples would not be reconstructed independently"
        )
    scale = torch.rsqrt(a["running_var"] + a["eps"])
    if a["weight"] is not None:
        scale = scale * a["weight"]
    return lambda signal: signal * scale.view(1, -1, *[1] * (signal.dim() - 2))


def _arithmetic_mirror(func, args, kwargs, current: Tensor, result: Tensor, where: str) -> Mirror:
    """Adding a constant is dropped like a bias; multiplying or dividing by one is applied to the signal."""
    kind = ops.op_of(func).name
    first, second = args[0], args[1] if len(args) > 1 else kwargs.get("other")
    alpha = kwargs.get("alpha", 1)
    if (first is current) == (second is current) or result.shape != current.shape or kwargs.get("rounding_mode"):
        raise ValueError(
            f"{where}: {ops.describe(func)} is only mirrored between the path to the layer and a constant of "
            "broadcastable shape"
        )
    other = second if first is current else first
    if kind in ("add", "sub", "rsub"):
        # Coefficient of the path in first + alpha * second, first - alpha * second, second - alpha * first.
        sign = {"add": (1, alpha), "sub": (1, -alpha), "rsub": (-alpha, 1)}[kind][0 if first is current else 1]
        return lambda signal: signal * sign
    if kind == "div" and first is not current:
        raise ValueError(f"{where}: dividing by the path to the layer has no linear mirror")
    return (lambda signal: signal * other) if kind == "mul" else (lambda signal: signal / other)


def _mirror_of(func, args, kwargs, current: Tensor, result, where: str) -> tuple[Mirror, Tensor]:
    """The map that mirrors ``func`` in the DeconvNet, and the tensor the path continues with."""
    output = result[0] if isinstance(result, tuple) else result
    entry = ops.op_of(func)
    name, category = (entry.name, entry.category) if entry is not None else (None, None)
    if name in _TRANSPOSED:
        return _convolution_mirror(func, args, kwargs, current, output, where), output
    if name == "linear":
        a = ops.layer_arguments(func, args, kwargs)
        if a["input"] is not current:
            raise ValueError(f"{where}: the linear layer's input is not the path to the layer")
        weight = a["weight"]
        return (lambda signal: signal @ weight), output
    if name in _RECTIFIERS:
        # Zeiler & Fergus pass the reconstruction through a ReLU, whatever the forward signal was.
        return (lambda signal: signal.clamp(min=0)), output
    if category == ops.MAX_POOL:
        return _unpooling_mirror(func, args, kwargs, current, where), output
    if category == ops.AVG_POOL:
        return _average_pooling_mirror(func, args, kwargs, current, where), output
    if name in _RESHAPES and not entry.in_place:
        if args[0] is not current:
            raise ValueError(f"{where}: {ops.describe(func)} does not reshape the path to the layer")
        shape = current.shape
        return (lambda signal: signal.reshape(shape)), output
    if category == ops.DROPOUT:
        if ops.dropout_arguments(func, args, kwargs)[2]:
            raise ValueError(f"{where}: dropout in training mode is random; call it with training=self.training")
        return (lambda signal: signal), output
    if func is F.batch_norm:
        return _batch_norm_mirror(args, kwargs, where), output
    if name in _ARITHMETIC:
        return _arithmetic_mirror(func, args, kwargs, current, output, where), output
    if category in (ops.ACTIVATION, ops.SOFTMAX):
        raise ValueError(
            f"DeconvNetReconstruction cannot mirror {ops.describe(func)} in {where}: the DeconvNet rectifies the "
            "signal at ReLUs and has no rule for other activations"
        )
    raise ValueError(f"DeconvNetReconstruction cannot mirror {ops.describe(func)} in {where}; {_SUPPORTED}")


class _PathRecorder(TorchFunctionMode):
    """Follows the input through every torch call of the forward pass and notes each call's mirror.

    Seeing calls rather than modules catches functional ReLUs, pooling and flattening written in a
    ``forward`` as well as modules, and any call that combines the path with an earlier tensor of it
    (a residual addition, a concatenation) is refused instead of silently ignored.
    """

    def __init__(self, inputs: Tensor, where: Callable[[], str]):
        super().__init__()
        self.path = [inputs]
        self.mirrors: list[Mirror] = []
        self.where = where

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if not any(isinstance(r, Tensor) for r in tree_flatten(result)[0]):
            return result  # shape and dtype queries
        current, operands = self.path[-1], tree_flatten((args, kwargs))[0]
        if any(o is earlier for o in operands for earlier in self.path[:-1]):
            raise ValueError(
                f"{ops.describe(func)} in {self.where()} uses an earlier tensor of the path to the layer (a residual "
                "connection or a branch): DeconvNetReconstruction needs a chain of layers from the input to the layer"
            )
        if not any(o is current for o in operands):
            return result  # work on parameters or constants, off the path
        mirror, output = _mirror_of(func, args, kwargs, current, result, self.where())
        self.mirrors.append(mirror)
        if output is not current:  # in-place calls continue with the same tensor
            self.path.append(output)
        return result


class DeconvNetReconstruction:
    """Zeiler & Fergus 2014: project a layer's response back to the input space with a mirrored network.

    The report's section 2.2.2 and Fig. 8 (Zeiler & Fergus, *Visualizing and Understanding
    Convolutional Networks*, ECCV 2014, section 2.1). The forward pass runs up to ``layer`` and records
    every call on the way; the DeconvNet then undoes them in reverse order:

    - max-pooling -> max-unpooling with the *switches* (argmax positions) recorded in the forward pass;
      average pooling (not in the paper, but linear) -> its transpose;
    - ReLU -> ReLU of the reconstructed signal (LeakyReLU and ReLU6 are rectified the same way);
    - convolution -> transposed convolution with the model's own weights (``F.conv_transpose2d``),
      linear -> multiplication by the transposed weight matrix;
    - flatten / reshape -> reshape back; dropout (eval mode) -> identity; BatchNorm (eval mode) -> its
      per-channel scale, i.e. folded into the neighbouring transposed convolution.

    Biases (and BatchNorm shifts, constants added to the input) are not added back: the DeconvNet maps a
    feature pattern back to pixels, and a bias is not part of any pattern; Zeiler & Fergus use the
    filters alone. With this choice the mirror of a convolution, linear layer or max-pooling is exactly
    its gradient with respect to its input, so the reconstruction equals the ``Deconvolution``
    backward pass seeded with the layer's response (a property the tests check against Captum).

    The model runs in eval mode. The path from the input to ``layer`` must be a chain: layers given as
    modules or functional calls at any nesting depth, but no residual addition, concatenation or other
    branch. Anything that cannot be mirrored raises ``ValueError`` naming the call and the module it
    runs in. A module used several times is taken at its first call.

    Parameters
    ----------
    model : nn.Module
        The network; left unchanged.
    layer : nn.Module or str
        The layer whose response is reconstructed, as a module of ``model`` or its dotted name
        (e.g. ``"features.1"``). For the paper's setting, choose the ReLU after a convolution (the
        rectified feature maps); a convolution itself gives its raw response, negative values included.

    Examples
    --------
    >>> deconvnet = DeconvNetReconstruction(model, "features.1")          # doctest: +SKIP
    >>> full = deconvnet.reconstruct(images)                              # doctest: +SKIP
    >>> per_filter = deconvnet.reconstruct(images, filter=3)              # doctest: +SKIP
    >>> strongest = deconvnet.reconstruct(images, filter=3, keep="max")   # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, layer: nn.Module | str):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.layer_name, self.layer = find_layer(model, layer)

    def _record(self, inputs: Tensor) -> tuple[list[Mirror], Tensor]:
        """Run the model up to the layer; return the mirrors of the calls on the way and the layer's response."""
        running: list[tuple[str, nn.Module]] = []  # the modules whose forward is running, innermost last
        recorder = _PathRecorder(inputs, lambda: _module_label(*(running[-1] if running else ("", self.model))))
        response: list[Tensor] = []

        def reached(module, args, output):
            if output is not recorder.path[-1]:
                raise ValueError(
                    f"the output of layer {self.layer_name!r} is not the end of the path from the input "
                    "(the layer returns a tuple or a tensor computed beside the path)"
                )
            response.append(output)
            raise _LayerReached

        def enter(module, args, name):
            running.append((name, module))

        def leave(module, args, output):
            running.pop()

        for name, module in self.model.named_modules():
            module.register_forward_pre_hook(partial(enter, name=name))
            module.register_forward_hook(leave, always_call=True)
        self.layer.register_forward_hook(reached, prepend=True)
        self.model.eval()  # dropout off, BatchNorm on its running statistics: samples stay independent
        try:
            with recorder:
                self.model(inputs)
        except _LayerReached:
            return recorder.mirrors, response[0]
        raise ValueError(f"the forward pass never reached layer {self.layer_name!r}")

    @staticmethod
    def _select(response: Tensor, filter, keep: str, layer_name: str) -> Tensor:
        """The part of the response to project: every channel or one per sample, all of it or its maximum."""
        signal = response
        if filter is not None:
            n, channels = response.shape[:2]
            filters = torch.as_tensor(filter, device=response.device).reshape(-1)
            if filters.is_floating_point() or filters.dtype == torch.bool or filters.numel() not in (1, n):
                raise ValueError(f"filter must be an int or one int per sample (N = {n}), got {filter!r}")
            if ((filters < 0) | (filters >= channels)).any():
                raise ValueError(
                    f"filter must be a channel index in 0..{channels - 1} of layer {layer_name!r}, got {filter!r}"
                )
            rows = torch.arange(n, device=response.device)
            filters = filters.expand(n)
            signal = torch.zeros_like(response)
            signal[rows, filters] = response[rows, filters]
        if keep == "max":
            flat = signal.flatten(1)
            strongest = flat.argmax(1, keepdim=True)
            signal = torch.zeros_like(flat).scatter_(1, strongest, flat.gather(1, strongest)).view_as(signal)
        return signal

    def reconstruct(self, inputs: Tensor, filter=None, keep: str = "all") -> Tensor:
        """Project the layer's response, or one filter of it, back to the input space.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``; the samples are reconstructed independently.
        filter : int, sequence of int or LongTensor, optional
            Keep only this channel (feature map, or unit of a linear layer) of the layer's response and
            set the others to zero — the partial reconstruction of one filter (report Fig. 8, right).
            One index for every sample or one per sample (e.g. each sample's predicted class at the
            output layer). ``None`` keeps every channel: the full reconstruction (Fig. 8, left).
        keep : {"all", "max"}
            ``"all"`` projects the whole response (of ``filter`` if given); ``"max"`` only its strongest
            activation per sample, all others set to zero, as Zeiler & Fergus project single
            activations.

        Returns
        -------
        Tensor
            The reconstruction, with the shape, dtype and device of ``inputs``.
        """
        inputs = check_inputs(inputs)
        if keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
        with borrowed(self.model), torch.no_grad():
            mirrors, response = self._record(inputs)
            signal = self._select(response, filter, keep, self.layer_name)
            for mirror in reversed(mirrors):
                signal = mirror(signal)
        return signal

    def __repr__(self) -> str:
        return f"DeconvNetReconstruction({type(self.model).__name__}, layer={self.layer_name!r})"
