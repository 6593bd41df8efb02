"""Occlusion sensitivity: the drop of the class score when a window of the input is covered (section 2.2.3)."""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from ..core.base import Attribution, Run, Target, check_inputs, forward_scores, resolve_target, select_target
from ..core.batching import broadcast_baselines, broadcast_baselines_each, chunk_size, chunks
from ..core.hooks import borrowed
from ..core.progress import progress
from ..core.registry import register_method

OUTPUTS = ("logit", "probability")


def _per_dim(value, sample_shape: torch.Size, name: str) -> tuple[int, ...]:
    """An int for every dimension of a sample, from an int or a tuple of the sample's rank."""
    values = (value,) * len(sample_shape) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(values, Sequence) or len(values) != len(sample_shape):
        raise ValueError(
            f"{name} must be an int or a tuple with one entry per sample dimension {tuple(sample_shape)}, got {value!r}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name} must hold positive ints, got {value!r}")
    return tuple(values)


def window_positions(sample_shape, sliding_window_shapes, strides=None) -> list[tuple[slice, ...]]:
    """Every placement of the window on a sample, as a tuple of slices (one per sample dimension).

    Windows start at multiples of the stride until the sample's end is covered; the last window of a
    dimension is cut at the border where the stride does not tile it (Captum's ``Occlusion`` convention).
    """
    sample_shape = torch.Size(sample_shape)
    window = _per_dim(sliding_window_shapes, sample_shape, "sliding_window_shapes")
    strides = _per_dim(1 if strides is None else strides, sample_shape, "strides")
    if any(w > s for w, s in zip(window, sample_shape)):
        raise ValueError(f"sliding_window_shapes {window} is larger than the sample shape {tuple(sample_shape)}")
    starts = [
        range(0, -(-(size - w) // stride) * stride + 1, stride) for size, w, stride in zip(sample_shape, window, strides)
    ]
    return [tuple(slice(s, s + w) for s, w in zip(start, window)) for start in itertools.product(*starts)]


def _masks(positions: list[tuple[slice, ...]], sample_shape, like: torch.Tensor) -> torch.Tensor:
    masks = torch.zeros((len(positions), *sample_shape), dtype=like.dtype, device=like.device)
    for k, slices in enumerate(positions):
        masks[(k, *slices)] = 1
    return masks


@register_method("occlusion")
class Occlusion(Attribution):
    """Occlusion sensitivity (Zeiler & Fergus 2014; the report's section 2.2.3, Fig. 9).

    A window slides over the input; at every position the covered elements are replaced by the
    baseline and the drop ``f_c(x) − f_c(x_occluded)`` is credited to each covered element. An element's
    attribution is the mean drop over the windows that cover it (Captum's convention); elements that no
    window covers get 0. Many occluded copies go through the model in one forward pass.
    """

    takes_baselines = True
    needs_gradients = False
    perturbation_forwards = True
    multiple_inputs = True

    def _attribute(
        self,
        run: Run,
        sliding_window_shapes=None,
        strides=None,
        baselines=0.0,
        perturbations_per_eval: int | None = None,
        output: str = "logit",
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Mean score drop per element, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs``.
        sliding_window_shapes : tuple of int
            Window shape over the sample's dimensions, e.g. ``(1, 5, 5)`` for ``(1, 28, 28)`` digits.
        strides : int or tuple of int, optional
            Step between window positions per dimension; default 1.
        baselines : float or Tensor
            What covered elements become: a number, one tensor of the per-sample shape or one per sample.
        perturbations_per_eval : int, optional
            Window positions evaluated per forward pass (each for the whole batch); ``None`` keeps a pass
            at about :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` elements.
        output : str
            ``"logit"`` (score drop) or ``"probability"`` (drop of the softmax probability, as in Fig. 9).
        show_progress : bool, optional
            A progress bar over the forward passes; ``None`` shows it in a terminal or notebook only.
        """
        xs = run.inputs_tuple
        if sliding_window_shapes is None:
            raise ValueError("sliding_window_shapes is required, e.g. (1, 5, 5) for (N, 1, 28, 28) inputs")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        windows, steps = (sliding_window_shapes, strides) if run.multiple else ((sliding_window_shapes,), (strides,))
        if run.multiple and (not isinstance(windows, tuple) or len(windows) != len(xs)):
            raise ValueError(f"with {len(xs)} inputs, sliding_window_shapes must be a tuple of {len(xs)} window shapes")
        if steps is None:
            steps = (None,) * len(xs)
        elif run.multiple and (not isinstance(steps, tuple) or len(steps) != len(xs)):
            raise ValueError(f"with {len(xs)} inputs, strides must be a tuple of {len(xs)} entries (or None)")
        baselines = broadcast_baselines_each(baselines, xs)
        n = run.n
        per_pass = chunk_size(
            sum(x.numel() for x in xs), perturbations_per_eval, "perturbations_per_eval", rows_per_copy=n, device=xs[0].device
        )

        def scores(x) -> torch.Tensor:
            out = run.forward(x)
            return run.select(out.softmax(1) if output == "probability" else out)

        maps = []
        with torch.no_grad():
            clean = scores(run.like(xs))
            for i, (inputs, window, stride) in enumerate(zip(xs, windows, steps)):
                sample_shape = inputs.shape[1:]
                positions = window_positions(sample_shape, window, stride)
                total = torch.zeros_like(inputs)
                counts = torch.zeros(sample_shape, dtype=inputs.dtype, device=inputs.device)
                for block in progress(chunks(len(positions), per_pass), "occlusion", show_progress):
                    masks = _masks(positions[block.start : block.stop], sample_shape, inputs)
                    k = masks.shape[0]
                    # Copy j of sample i sits at row j * N + i; the other inputs repeat unchanged.
                    mask = masks.unsqueeze(1)
                    occluded = (inputs * (1 - mask) + baselines[i] * mask).reshape(k * n, *sample_shape)
                    copies = [x.repeat(k, *(1,) * (x.dim() - 1)) for x in xs]
                    copies[i] = occluded
                    drop = clean.repeat(k) - scores(run.like(copies))
                    total += torch.einsum("kn,k...->n...", drop.view(k, n), masks)
                    counts += masks.sum(0)
                maps.append(total / counts.clamp(min=1))
        return run.like(maps)


def occlusion_sweep(
    model, inputs: torch.Tensor, sliding_window_shapes, strides=None, baselines=0.0, target: Target = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every occluded copy of each input and the target's softmax probability on it (report Fig. 9).

    Returns
    -------
    (occluded, probability)
        ``occluded`` has shape ``(N, P, ...)`` for the ``P`` window positions of
        :func:`window_positions`, ``probability`` shape ``(N, P)``.
    """
    inputs = check_inputs(inputs)
    n, sample_shape = inputs.shape[0], inputs.shape[1:]
    positions = window_positions(sample_shape, sliding_window_shapes, strides)
    baselines = broadcast_baselines(baselines, inputs)
    masks = _masks(positions, sample_shape, inputs).unsqueeze(0)
    occluded = inputs.unsqueeze(1) * (1 - masks) + baselines.unsqueeze(1) * masks
    with borrowed(model), torch.no_grad():
        indices = resolve_target(target, forward_scores(model, inputs))
        flat = occluded.reshape(-1, *sample_shape)
        probability = forward_scores(model, flat).softmax(1)
        probability = select_target(probability, indices.repeat_interleave(len(positions)))
    return occluded, probability.view(n, len(positions))
