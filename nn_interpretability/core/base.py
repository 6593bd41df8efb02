"""The attribution base class and the handling of inputs and targets shared by every method."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import nn

Target = Union[None, int, Sequence[int], torch.Tensor]


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


def forward_scores(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on a batch and check that it returns class scores of shape ``(N, C)``.

    A model that cannot run on the inputs raises a ``ValueError`` naming the input shape, since the
    usual cause is a missing batch dimension or a wrong input size.
    """
    try:
        output = model(inputs)
    except NotImplementedError:  # a method meeting a layer it cannot treat: its own message says why
        raise
    except RuntimeError as error:
        raise ValueError(
            f"the model could not run on inputs of shape {tuple(inputs.shape)}: {error}. Inputs must be "
            "batch-first (N, ...) with the size the model expects; for a single sample use inputs.unsqueeze(0)"
        ) from error
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the model must return a tensor of class scores (N, C), got {type(output).__name__}")
    if output.dim() != 2 or output.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"the model must return class scores of shape (N, C) = ({inputs.shape[0]}, C), got "
            f"{tuple(output.shape)}"
        )
    return output


def resolve_target(target: Target, output: torch.Tensor) -> torch.Tensor:
    """Turn a user target into a ``LongTensor`` of shape ``(N,)`` on the output's device.

    Parameters
    ----------
    target : None, int, sequence of int or 1-D integer tensor
        ``None`` picks the predicted class (argmax) of every sample; an int is used for every sample;
        a sequence or tensor gives one class per sample.
    output : Tensor
        Class scores of shape ``(N, C)``.
    """
    n, num_classes = output.shape
    if target is None:
        return output.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise TypeError("target must be None, an int, a sequence of ints or a LongTensor, not a bool")
    if isinstance(target, int):
        indices = torch.full((n,), target, dtype=torch.long, device=output.device)
    else:
        if isinstance(target, torch.Tensor):
            if target.is_floating_point() or target.dtype == torch.bool:
                raise TypeError(f"target tensor must hold integers, got dtype {target.dtype}")
            if target.dim() > 1:
                raise ValueError(f"target must be a 1-D tensor of length N = {n}, got shape {tuple(target.shape)}")
            indices = target.detach().to(device=output.device, dtype=torch.long).reshape(-1)
            if target.dim() == 0:
                indices = indices.expand(n)
        elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
            if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
                raise TypeError("a target sequence must contain ints only")
            indices = torch.tensor(list(target), dtype=torch.long, device=output.device)
        else:
            raise TypeError(
                f"target must be None, an int, a sequence of ints or a LongTensor, got {type(target).__name__}"
            )
        if indices.numel() != n:
            raise ValueError(f"target has {indices.numel()} entries but the batch has N = {n} samples")
    out_of_range = (indices < 0) | (indices >= num_classes)
    if out_of_range.any():
        bad = sorted(set(indices[out_of_range].tolist()))
        raise ValueError(f"target class {bad} out of range: the model has {num_classes} classes (0..{num_classes - 1})")
    return indices


def select_target(output: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pick ``output[i, indices[i]]`` for every sample: the scalar each attribution explains."""
    return output.gather(1, indices.unsqueeze(1)).squeeze(1)


class Attribution:
    """Base class of every decision-based method: configure in ``__init__``, explain with ``attribute``.

    Subclasses implement ``attribute(inputs, target=None, **per_call) -> Tensor`` returning a tensor of
    the shape of ``inputs``. The model is borrowed, never changed (see :mod:`~nn_interpretability.core.hooks`).
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model

    def attribute(self, inputs: torch.Tensor, target: Target = None, **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"
