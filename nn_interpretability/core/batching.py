"""Expanding a batch: baselines, chunks under one memory budget, noisy copies, per-sample arguments.

Methods that run the model on many copies of the batch (path points, noisy copies, occluded or
perturbed images, Monte Carlo passes) lay the copies out copy-major: copy ``j`` of sample ``i`` sits
at row ``j * N + i``, so a per-sample argument repeats whole (``value.repeat(k, 1, ...)``) and the
maps of one copy are one contiguous block.
"""
from __future__ import annotations

from numbers import Real

import torch

from .validation import positive_int

#: Input elements (copies × elements per sample) one forward/backward pass may hold when a method is
#: given no ``internal_batch_size`` / ``perturbations_per_eval``. CNN activations kept for backward are
#: typically 10–100× the input, so a chunk's autograd graph stays around a few hundred MB.
CHUNK_ELEMENTS = 2**20


#: Rows (samples) one pass may hold on the CPU when no batch size is given: past a few hundred rows
#: CPU kernels run slower per row (caches), e.g. Integrated Gradients on the MNIST CNN takes 1.6 s at
#: 128 path points per pass and 3.6 s at 1,337, occlusion 3.7 s at 128-256 rows and 7.8 s at 1,280
#: (``benchmarks/run.py``, ``benchmarks/ig_chunks.py``). GPUs are bounded by :data:`CHUNK_ELEMENTS` alone.
CPU_ROWS = 128


def chunk_size(
    elements_per_copy: int,
    requested: int | None = None,
    name: str = "internal_batch_size",
    budget: int = CHUNK_ELEMENTS,
    rows_per_copy: int | None = None,
    device: torch.device | None = None,
) -> int:
    """Copies per pass: ``requested`` if given (validated), else as many as fit ``budget`` input elements (≥ 1).

    With ``rows_per_copy`` (the samples one copy holds) on a CPU ``device``, at most :data:`CPU_ROWS`
    rows go into one pass.
    """
    if requested is not None:
        return positive_int(requested, name)
    copies = budget // max(1, elements_per_copy)
    if rows_per_copy is not None and (device is None or torch.device(device).type == "cpu"):
        copies = min(copies, CPU_ROWS // max(1, rows_per_copy))
    return max(1, copies)


def chunks(total: int, size: int) -> list[range]:
    """``range(total)`` cut into consecutive ranges of at most ``size``."""
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype for path / noise arithmetic and accumulation: float32 for half precisions, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def broadcast_baselines(baselines, inputs: torch.Tensor, name: str = "baselines") -> torch.Tensor:
    """Baselines as a tensor of the inputs' shape ``(N, ...)`` (an expanded view where possible)."""
    if isinstance(baselines, bool) or not isinstance(baselines, (Real, torch.Tensor)):
        raise TypeError(f"{name} must be a number or a tensor, got {type(baselines).__name__}")
    baselines = torch.as_tensor(baselines, dtype=inputs.dtype, device=inputs.device).detach()
    sample_shape = inputs.shape[1:]
    if baselines.dim() == 0 or baselines.shape == sample_shape:
        baselines = baselines.expand_as(inputs)
    elif baselines.shape[1:] == sample_shape and baselines.shape[0] in (1, inputs.shape[0]):
        baselines = baselines.expand_as(inputs)
    else:
        raise ValueError(
            f"{name} of shape {tuple(baselines.shape)} do not fit inputs of shape {tuple(inputs.shape)}: "
            f"give a number, one baseline of the per-sample shape {tuple(sample_shape)}, or one per sample "
            f"of shape {tuple(inputs.shape)}"
        )
    if not torch.isfinite(baselines).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return baselines


def broadcast_baselines_each(baselines, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """One baseline per input (:func:`broadcast_baselines` each): a number for all, or a tuple matching the inputs."""
    if isinstance(baselines, (tuple, list)):
        if len(baselines) != len(inputs):
            raise ValueError(f"baselines has {len(baselines)} entries but there are {len(inputs)} inputs: give one per input")
        return tuple(broadcast_baselines(b, x, f"baselines[{i}]") for i, (b, x) in enumerate(zip(baselines, inputs)))
    if isinstance(baselines, torch.Tensor) and len(inputs) > 1:
        raise ValueError(f"there are {len(inputs)} inputs: give baselines as a tuple of {len(inputs)}, or one number")
    return tuple(broadcast_baselines(baselines, x) for x in inputs)


def value_range_sigma(inputs: torch.Tensor, stdevs) -> torch.Tensor:
    """Noise σ per sample, ``stdevs × (max x_i − min x_i)`` (SmoothGrad's convention), shape ``(N, 1, ...)``.

    ``stdevs`` is a number or a 1-D tensor with one fraction per sample.
    """
    flat = inputs.flatten(1)
    stdevs = torch.as_tensor(stdevs, dtype=inputs.dtype, device=inputs.device)
    if stdevs.dim() == 1 and stdevs.shape[0] != inputs.shape[0]:
        raise ValueError(f"stdevs has {stdevs.shape[0]} entries but the batch has N = {inputs.shape[0]} samples")
    sigma = stdevs * (flat.amax(1) - flat.amin(1))
    return sigma.view(-1, *(1,) * (inputs.dim() - 1))


def standard_normal_copies(shapes, copies: int, generator: torch.Generator, dtype, device) -> list[torch.Tensor]:
    """Standard-normal draws ``(copies, *shape)`` for each shape of ``shapes`` (one shape or a list of them).

    The draws are made copy by copy (all shapes of copy 0, then of copy 1, ...), so the noise of a copy
    does not depend on how the copies are chunked. One shape gives one tensor, a list gives a list.
    """
    single = isinstance(shapes, torch.Size)
    shapes = [shapes] if single else list(shapes)
    draws = [[torch.randn(shape, generator=generator, dtype=dtype, device=device) for shape in shapes] for _ in range(copies)]
    stacked = [torch.stack([draw[i] for draw in draws]) for i in range(len(shapes))]
    return stacked[0] if single else stacked


def repeat_per_sample(kwargs: dict, n: int, copies: int, like: torch.Tensor) -> dict:
    """``kwargs`` with per-sample tensors (``(N, ...)`` with as many dimensions as ``like``) repeated per copy.

    Copy-major layout: the result's row ``j * N + i`` holds sample ``i``'s value.
    """
    trailing = (1,) * (like.dim() - 1)
    return {
        key: value.repeat(copies, *trailing)
        if isinstance(value, torch.Tensor) and value.dim() == like.dim() and value.shape[0] == n
        else value
        for key, value in kwargs.items()
    }
