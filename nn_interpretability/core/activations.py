"""See every activation call of a model, however it is written, and let a method replace it.

Methods that change the backward pass of nonlinearities (guided backpropagation, deconvolution,
DeepLIFT) must catch every activation: modules (``nn.ReLU()``, ``nn.ReLU(inplace=True)``, one module
reused at several places, nested at any depth) *and* functional calls (``F.relu``, ``torch.relu``,
``Tensor.relu``, ``relu_``, ``torch.sigmoid``, ...). Module hooks miss the functional calls, which is how
Captum's guided backpropagation silently returns a plain gradient for them. Here a
:class:`torch.overrides.TorchFunctionMode` sees every call, whatever its form, because ``nn.ReLU`` and
friends are themselves implemented with the functional calls. The calls recognised, in every
spelling, are those of :mod:`~nn_interpretability.core.ops`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from . import ops

#: Name a handler receives for max-pooling (every spelling that returns no switches).
MAX_POOL = "max_pool"

#: Names a handler can be called with for activations. Max-pooling is included: like an activation it
#: is a fixed nonlinearity whose backward some methods replace (DeepLIFT); the others pass it through.
ACTIVATIONS = tuple(sorted((*ops.op_names(ops.ACTIVATION), MAX_POOL)))

#: Names a handler can be called with for fused kernels that hide their activations (``torch.lstm``,
#: attention), when the gradient flows through them: a handler raises or runs ``call(x)``.
FUSED = ops.op_names(ops.FUSED)


class ActivationCall:
    """An intercepted call as a function of a new input: ``call(t)`` runs it out of place on ``t``."""

    def __init__(self, func: Callable, args: tuple, kwargs: dict):
        self.func, self.args, self.kwargs = func, args, kwargs

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return self.func(t, *self.args, **self.kwargs)

    def argument(self, name: str, position: int):
        """The call's argument ``name``, given by keyword or at ``position`` (the input is at 0)."""
        return self.kwargs[name] if name in self.kwargs else self.args[position - 1]


Handler = Callable[[str, torch.Tensor, ActivationCall], torch.Tensor]


def _requires_grad(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(value, torch.Tensor) and value.requires_grad for value in tree_flatten((args, kwargs))[0])


def _handled_as(entry: ops.OpEntry | None, args: tuple, kwargs: dict) -> str | None:
    """The name the handler receives for this call, or ``None`` if the call runs as it is."""
    if entry is None:
        return None
    if entry.category == ops.ACTIVATION:
        return entry.name
    if entry.category == ops.MAX_POOL and not ops.returns_indices(entry.func, args, kwargs):
        return MAX_POOL  # with the switches the caller wants a tuple, not an activation output
    if entry.category == ops.FUSED and _requires_grad(args, kwargs):
        return entry.name
    return None


class _Interceptor(TorchFunctionMode):
    def __init__(self, handler: Handler, strict: bool, observe):
        super().__init__()
        self.handler = handler
        self.strict = strict
        self.observe = observe

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = ops.op_of(func)
        name = _handled_as(entry, args, kwargs)
        if name is None:
            if self.strict and entry is not None and entry.category == ops.AMBIGUOUS:
                raise NotImplementedError(
                    f"the model calls {entry.spelling}, which may act as an activation (e.g. x.clamp(min=0) or "
                    "torch.where(x > 0, x, 0) as a ReLU) but cannot be intercepted reliably; use nn.ReLU or F.relu"
                )
            result = func(*args, **kwargs)
            if self.observe is not None:
                self.observe(func, args, kwargs, result)
            return result
        base, args, kwargs = ops.out_of_place(func, args, kwargs)
        return self.handler(name, args[0], ActivationCall(base, args[1:], kwargs))


@contextmanager
def intercept_activations(handler: Handler, strict: bool = True, observe=None) -> Iterator[None]:
    """Route every activation call made inside the block to ``handler``.

    Parameters
    ----------
    handler : callable
        ``handler(name, x, call) -> Tensor``: ``name`` is one of :data:`ACTIVATIONS` or :data:`FUSED`,
        ``x`` the call's (first) input (not modified), ``call`` an :class:`ActivationCall`: ``call(t)``
        is the original call with its own arguments (e.g. ``negative_slope``) applied out of place to
        ``t``, ``call.argument(name, position)`` one of those arguments. Its return value replaces the
        call's output, e.g. ``MyFunction.apply(x)`` to change the backward pass.
    strict : bool
        Raise ``NotImplementedError`` on calls that may be an activation in disguise (``clamp``,
        ``clamp_min``, ``torch.maximum``, ``torch.where``, ...: :data:`~.ops.AMBIGUOUS` in
        :mod:`~nn_interpretability.core.ops`), so that a method never silently misses one.
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
