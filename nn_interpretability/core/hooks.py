"""Borrow a model for one attribution and give it back exactly as it was.

Every method installs its hooks, switches dropout or folds BatchNorm inside :func:`borrowed`, which
restores in ``finally`` (so also when the method raises): the parameter and buffer objects of every
module, their ``requires_grad`` flags and ``.grad``, buffer values (BatchNorm statistics move when a
model in train mode runs forward), parameter values when asked to, every module's ``training`` flag and
every hook dictionary. Hooks registered while borrowed therefore never outlive the method.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

# The per-module dictionaries in which torch.nn.Module keeps hooks; restored by content so that the
# dictionaries keep their identity (RemovableHandle holds weak references to them).
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


@dataclass
class _ModuleState:
    module: nn.Module
    training: bool
    hooks: dict[str, dict]
    full_backward_hook: object
    parameters: dict
    buffers: dict


@dataclass
class Borrow:
    """Handle given to a method while it holds the model; changes made through it are undone on exit."""

    model: nn.Module
    _states: list[_ModuleState] = field(default_factory=list)
    _requires_grad: dict = field(default_factory=dict)
    _grads: dict = field(default_factory=dict)
    _buffer_values: dict = field(default_factory=dict)
    _parameter_values: dict | None = None

    def save_parameter_values(self) -> None:
        """Keep a copy of every parameter's values, restored on exit (for methods that edit weights)."""
        if self._parameter_values is None:
            self._parameter_values = {p: p.detach().clone() for p in self._requires_grad}

    def set_training(self, modules, mode: bool) -> None:
        """Switch only ``modules`` (one module or an iterable) to train (``True``) or eval mode."""
        for module in [modules] if isinstance(modules, nn.Module) else modules:
            module.training = mode


def _snapshot(model: nn.Module) -> Borrow:
    borrow = Borrow(model)
    for module in model.modules():
        borrow._states.append(
            _ModuleState(
                module=module,
                training=module.training,
                hooks={name: dict(getattr(module, name)) for name in _HOOK_DICTS if hasattr(module, name)},
                full_backward_hook=getattr(module, "_is_full_backward_hook", None),
                parameters=dict(module._parameters),
                buffers=dict(module._buffers),
            )
        )
    for param in model.parameters():
        borrow._requires_grad[param] = param.requires_grad
        borrow._grads[param] = param.grad
    for buffer in model.buffers():
        borrow._buffer_values[buffer] = buffer.detach().clone()
    return borrow


def _restore(borrow: Borrow) -> None:
    for state in borrow._states:
        module = state.module
        module.training = state.training
        for name, saved in state.hooks.items():
            current = getattr(module, name)
            current.clear()
            current.update(saved)
        module._is_full_backward_hook = state.full_backward_hook
        module._parameters.clear()
        module._parameters.update(state.parameters)
        module._buffers.clear()
        module._buffers.update(state.buffers)
    with torch.no_grad():
        for param, requires_grad in borrow._requires_grad.items():
            if borrow._parameter_values is not None:
                param.copy_(borrow._parameter_values[param])
            param.requires_grad_(requires_grad)
            param.grad = borrow._grads[param]
        for buffer, value in borrow._buffer_values.items():
            buffer.copy_(value)


@contextmanager
def borrowed(model: nn.Module, freeze_parameters: bool = True) -> Iterator[Borrow]:
    """Borrow ``model`` for the duration of a ``with`` block and restore it afterwards.

    Parameters
    ----------
    model : nn.Module
        The model to borrow.
    freeze_parameters : bool
        Set ``requires_grad=False`` on every parameter while borrowed, so that backward passes compute
        input gradients only (faster, and no ``.grad`` is written into the user's model).

    Yields
    ------
    Borrow
        A handle for the changes the restore must know about (parameter edits, mode switches).
        Gradients are enabled inside the block even if the caller runs under ``torch.no_grad()``.
    """
    borrow = _snapshot(model)
    try:
        if freeze_parameters:
            for param in borrow._requires_grad:
                param.requires_grad_(False)
        with torch.enable_grad():
            yield borrow
    finally:
        _restore(borrow)
