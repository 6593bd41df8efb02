"""See every activation call of a model, however it is written, and let a method replace it.

Methods that change the backward pass of nonlinearities (guided backpropagation, deconvolution,
DeepLIFT) must catch every activation: modules (``nn.ReLU()``, ``nn.ReLU(inplace=True)``, one module
reused at several places, nested at any depth) *and* functional calls (``F.relu``, ``torch.relu``,
``Tensor.relu``, ``relu_``, ``torch.sigmoid``, ...). Module hooks miss the functional calls, which is how
Captum's guided backpropagation silently returns a plain gradient for them. Here a
:class:`torch.overrides.TorchFunctionMode` sees every call, whatever its form, because ``nn.ReLU`` and
friends are themselves implemented with the functional calls.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Handler = Callable[[str, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]

# Each recognised callable -> the activation's name. F.relu6 is F.hardtanh(0, 6).
_ACTIVATION_CALLS: dict[object, str] = {
    **dict.fromkeys([torch.relu, torch.relu_, F.relu, F.relu_, torch.Tensor.relu, torch.Tensor.relu_], "relu"),
    **dict.fromkeys([F.leaky_relu, F.leaky_relu_], "leaky_relu"),
    **dict.fromkeys([F.hardtanh, F.hardtanh_, F.relu6], "hardtanh"),
    **dict.fromkeys(
        [torch.sigmoid, torch.sigmoid_, torch.Tensor.sigmoid, torch.Tensor.sigmoid_, F.sigmoid], "sigmoid"
    ),
    **dict.fromkeys([torch.tanh, torch.tanh_, torch.Tensor.tanh, torch.Tensor.tanh_, F.tanh], "tanh"),
    F.softplus: "softplus",
    **dict.fromkeys([F.elu, F.elu_], "elu"),
    F.gelu: "gelu",
    F.silu: "silu",
    **dict.fromkeys([F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d], "max_pool"),
}

# In-place and method forms -> the out-of-place function taking the same remaining arguments.
_OUT_OF_PLACE = {
    **dict.fromkeys([torch.relu_, F.relu_, torch.Tensor.relu, torch.Tensor.relu_], torch.relu),
    F.leaky_relu_: F.leaky_relu,
    F.hardtanh_: F.hardtanh,
    **dict.fromkeys([torch.sigmoid_, torch.Tensor.sigmoid, torch.Tensor.sigmoid_], torch.sigmoid),
    **dict.fromkeys([torch.tanh_, torch.Tensor.tanh, torch.Tensor.tanh_], torch.tanh),
    F.elu_: F.elu,
}

#: Names a handler can be called with. Max-pooling is included: like an activation it is a fixed
#: nonlinearity whose backward some methods replace (DeepLIFT); the others pass it through.
ACTIVATIONS = tuple(sorted(set(_ACTIVATION_CALLS.values())))

# Calls that act as an activation but cannot be told apart from ordinary arithmetic reliably.
_AMBIGUOUS = {torch.clamp, torch.Tensor.clamp, torch.clamp_min, torch.Tensor.clamp_min, torch.maximum}


def _out_of_place(func, args: tuple, kwargs: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    """``func`` with its other arguments bound (``inplace`` forced off), as a function of a new input."""
    base = _OUT_OF_PLACE.get(func, func)
    rest = args[1:]
    try:
        signature = inspect.signature(base)
    except (TypeError, ValueError):  # builtins without a Python signature take no ``inplace``
        signature = None
    if signature is None or "inplace" not in signature.parameters:
        return lambda t: base(t, *rest, **kwargs)

    def call(t: torch.Tensor) -> torch.Tensor:
        bound = signature.bind(t, *rest, **kwargs)
        bound.arguments["inplace"] = False
        return base(*bound.args, **bound.kwargs)

    return call


class _Interceptor(TorchFunctionMode):
    def __init__(self, handler: Handler, strict: bool, observe):
        super().__init__()
        self.handler = handler
        self.strict = strict
        self.observe = observe

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = _ACTIVATION_CALLS.get(func)
        if entry == "max_pool" and (kwargs.get("return_indices") or (len(args) > 6 and args[6] is True)):
            entry = None  # the caller wants the switches: a tuple, not an activation output
        if entry is None:
            if self.strict and func in _AMBIGUOUS:
                raise NotImplementedError(
                    f"the model calls {getattr(func, '__qualname__', func)}, which may act as an activation "
                    "(e.g. x.clamp(min=0) as a ReLU) but cannot be intercepted reliably; use nn.ReLU or F.relu"
                )
            result = func(*args, **kwargs)
            if self.observe is not None:
                self.observe(func, args, kwargs, result)
            return result
        name = entry
        x = args[0] if args else kwargs.pop("input")
        return self.handler(name, x, _out_of_place(func, args, kwargs))


@contextmanager
def intercept_activations(handler: Handler, strict: bool = True, observe=None) -> Iterator[None]:
    """Route every activation call made inside the block to ``handler``.

    Parameters
    ----------
    handler : callable
        ``handler(name, x, call) -> Tensor``: ``name`` is one of :data:`ACTIVATIONS`, ``x`` the
        activation's input (not modified), ``call(t)`` the original activation with its own arguments
        (e.g. ``negative_slope``) applied out of place to ``t``. Its return value replaces the
        activation's output, e.g. ``MyFunction.apply(x)`` to change the backward pass.
    strict : bool
        Raise ``NotImplementedError`` on calls that may be an activation in disguise (``clamp``,
        ``clamp_min``, ``torch.maximum``), so that a method never silently misses one.
    observe : callable, optional
        ``observe(func, args, kwargs, result)`` is called after every other torch call, e.g. to note which
        linear layer produced an activation's input (DeepLIFT's RevealCancel rule needs it).

    Notes
    -----
    In-place activations (``nn.ReLU(inplace=True)``, ``relu_``) run out of place: their input is left
    as it was and the result is returned. Every torchvision model and ordinary module uses the
    returned value; code that relies on the side effect alone (``F.relu_(x); return x``) is not
    supported.
    """
    with _Interceptor(handler, strict, observe):
        yield
