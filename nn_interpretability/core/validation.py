"""Checks of user arguments shared by every method: one clear error naming the problem, never a wrong map."""
from __future__ import annotations

from numbers import Real

import torch
from torch import nn


def positive_int(value, name: str, allow_none: bool = False) -> int | None:
    """``value`` if it is an int ≥ 1 (or ``None`` where allowed); else a ``TypeError``/``ValueError`` naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an int or None" if allow_none else "an int"
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_seed(seed) -> int | None:
    """``seed`` if it is an int or ``None``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    return seed


def non_negative_number(value, name: str) -> float:
    """``value`` as a float if it is a finite number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def check_inputs(inputs: torch.Tensor, min_dim: int = 2) -> torch.Tensor:
    """Validate a batch-first floating point input tensor and return it detached.

    Raises ``TypeError`` for a non-tensor or an integer tensor and ``ValueError`` for a missing batch
    dimension, an empty batch or non-finite values, so that no method silently returns a wrong map.
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor of shape (N, ...), got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be a floating point tensor, got dtype {inputs.dtype}")
    if inputs.dim() < min_dim:
        raise ValueError(
            f"inputs must be batch-first with at least {min_dim} dimensions (N, ...), got shape "
            f"{tuple(inputs.shape)}; add a batch dimension with inputs.unsqueeze(0)"
        )
    if inputs.shape[0] == 0:
        raise ValueError("inputs is an empty batch (N = 0)")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or infinite values")
    return inputs.detach()


def check_batch(inputs, min_dim: int = 2):
    """:func:`check_inputs` for one tensor, or for each tensor of a tuple of inputs with one batch size.

    Returns the detached tensor, or a tuple of them.
    """
    if not isinstance(inputs, (tuple, list)):
        return check_inputs(inputs, min_dim)
    if not inputs:
        raise ValueError("inputs is an empty tuple: give one tensor or a tuple of tensors (N, ...)")
    checked = tuple(check_inputs(x, min_dim) for x in inputs)
    sizes = [x.shape[0] for x in checked]
    if len(set(sizes)) > 1:
        raise ValueError(f"the inputs have different batch sizes {sizes}: every input needs one row per sample")
    return checked


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating dtype of the model's first floating parameter or buffer (``None`` if it has none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def check_dtype(model: nn.Module, inputs: torch.Tensor) -> None:
    """Refuse inputs whose dtype differs from the model's, naming both (torch's own error blames the shape)."""
    dtype = model_dtype(model)
    if dtype is not None and dtype != inputs.dtype:
        raise TypeError(
            f"the inputs are {inputs.dtype} but the model's parameters are {dtype}: convert one of them, e.g. "
            f"inputs.to({dtype}) or model.to({inputs.dtype})"
        )


def check_map_shape(maps, expected: torch.Size, who: str) -> torch.Tensor:
    """``maps`` if it is a tensor of shape ``expected``; else a ``TypeError`` saying what ``who`` returned."""
    if not isinstance(maps, torch.Tensor) or maps.shape != expected:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise TypeError(f"{who} must return one map of the inputs' shape {tuple(expected)}, got {shape}")
    return maps
