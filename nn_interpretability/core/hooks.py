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
    # Keyed by id(): Tensor.__hash__ is a Python call, and a large model has hundreds of parameters.
    _parameters: dict = field(default_factory=dict)  # id -> (parameter, requires_grad, grad)
    _buffer_values: list = field(default_factory=list)
    _parameter_values: dict | None = None

    def save_parameter_values(self) -> None:
        """Keep a copy of every parameter's values, restored on exit (for methods that edit weights)."""
        if self._parameter_values is None:
            self._parameter_values = {key: p.detach().clone() for key, (p, _, _) in self._parameters.items()}

    def set_training(self, modules, mode: bool) -> None:
        """Switch only ``modules`` (one module or an iterable) to train (``True``) or eval mode."""
        for module in [modules] if isinstance(modules, nn.Module) else modules:
            module.training = mode


def _snapshot(model: nn.Module) -> Borrow:
    borrow = Borrow(model)
    buffers: dict[int, torch.Tensor] = {}
    for module in model.modules():  # one traversal: model.parameters() and .buffers() would walk it again
        borrow._states.append(
            _ModuleState(
                module=module,
                training=module.training,
                # Only the non-empty hook dictionaries are copied: most modules have none.
                hooks={name: dict(hooks) for name in _HOOK_DICTS if (hooks := getattr(module, name, None))},
                full_backward_hook=getattr(module, "_is_full_backward_hook", None),
                parameters=dict(module._parameters),
                buffers=dict(module._buffers),
            )
        )
        for param in module._parameters.values():
            if param is not None and id(param) not in borrow._parameters:
                borrow._parameters[id(param)] = (param, param.requires_grad, param.grad)
        for buffer in module._buffers.values():
            if buffer is not None:
                buffers.setdefault(id(buffer), buffer)
    borrow._buffer_values = _pack(list(buffers.values()))
    return borrow


def _pack(tensors: list[torch.Tensor]) -> list:
    """Copies of ``tensors`` in one flat tensor per dtype and device.

    One concatenation per group instead of one clone per buffer: a densenet has hundreds of buffers.
    (Version counters cannot tell which changed: BatchNorm updates its statistics without bumping them.)
    """
    groups: dict = {}
    for tensor in tensors:
        groups.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    return [(torch.cat([t.detach().reshape(-1) for t in group]), group) for group in groups.values()]


def _unpack(packed: list) -> None:
    """Copy the packed values back into their tensors."""
    for flat, group in packed:
        for tensor, value in zip(group, flat.split([t.numel() for t in group])):
            tensor.copy_(value.view_as(tensor))


def _restore(borrow: Borrow) -> None:
    for state in borrow._states:
        module = state.module
        # Through __dict__: nn.Module.__setattr__'s checks cost more than the whole restore of a plain attribute.
        if module.training is not state.training:
            module.__dict__["training"] = state.training
        for name in _HOOK_DICTS:
            current = getattr(module, name, None)
            saved = state.hooks.get(name)
            if current is None or (saved is None and not current):
                continue
            current.clear()
            if saved:
                current.update(saved)
        if getattr(module, "_is_full_backward_hook", None) is not state.full_backward_hook:
            module.__dict__["_is_full_backward_hook"] = state.full_backward_hook
        module._parameters.clear()
        module._parameters.update(state.parameters)
        module._buffers.clear()
        module._buffers.update(state.buffers)
    with torch.no_grad():
        for key, (param, requires_grad, grad) in borrow._parameters.items():
            if borrow._parameter_values is not None:
                param.copy_(borrow._parameter_values[key])
            if param.requires_grad != requires_grad:
                param.requires_grad_(requires_grad)
            if param.grad is not grad:
                param.grad = grad
        _unpack(borrow._buffer_values)


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
            for param, _, _ in borrow._parameters.values():
                param.requires_grad_(False)
        with torch.enable_grad():
            yield borrow
    finally:
        _restore(borrow)
