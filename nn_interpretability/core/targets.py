"""What an attribution explains: the user's ``target`` turned into one scalar per sample."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch

Target = Union[None, int, Sequence[int], torch.Tensor]


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


class Selector:
    """Picks the scalar each attribution explains from the model's output, one per row.

    Subclasses implement :meth:`bind` (check the batch's output ``(N, ...)`` and fix per-sample
    choices) and :meth:`select`. ``sample`` maps each row of an output to its sample: methods that run
    copies of the batch (path points, noisy or occluded copies) pass it; ``None`` means copy-major rows
    (row ``j * N + i`` is sample ``i``). Every ready-made selector is linear in the output, so LRP's
    conservation and DeepLIFT's summation-to-delta hold for them as for a logit.
    """

    linear = True
    n: int = 0

    def bind(self, output: torch.Tensor) -> "Selector":
        """Check ``output`` (the batch's, ``(N, ...)``) and return the selector to use for this call."""
        raise NotImplementedError

    def select(self, output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """The explained scalar of every row of ``output``, shape ``(rows,)``; ``sample[r]`` is row ``r``'s sample."""
        raise NotImplementedError

    def class_indices(self) -> torch.Tensor | None:
        """The class of each sample ``(N,)`` when this selects one class score per sample, else ``None``."""
        return None

    def copies(self, k: int) -> "Selector":
        """This bound selector for ``k`` copy-major copies of its batch (``k * N`` samples)."""
        return _Copies(self, k)

    def rows(self, start: int, stop: int, n: int) -> "Selector":
        """This selector for samples ``start:stop`` of a split of ``n`` (see :func:`target_rows`).

        A bound selector keeps its choices for those samples; an unbound one slices its per-sample
        arguments (subclasses that have some override this) and is bound on each batch.
        """
        return _Rows(self, start, stop) if self.n else self

    #: Each sample's output shape the selector was bound for (set by :func:`as_selector`).
    output_shape: tuple[int, ...] | None = None

    def __call__(self, output: torch.Tensor, sample: torch.Tensor | None = None) -> torch.Tensor:
        if self.output_shape is not None and tuple(output.shape[1:]) != self.output_shape:
            raise ValueError(
                f"the target was chosen for outputs of shape (N, {', '.join(map(str, self.output_shape))}) per batch but "
                f"this model returns {tuple(output.shape)}"
            )
        if sample is None:
            if output.shape[0] % self.n:
                raise ValueError(f"an output of {output.shape[0]} rows is not whole copies of the batch of {self.n}")
            sample = torch.arange(output.shape[0], device=output.device) % self.n
        return self.select(output, sample)


class _Copies(Selector):
    """A bound selector repeated for copies of its batch: sample ``j * N + i`` is sample ``i``."""

    def __init__(self, inner: Selector, k: int):
        self.inner, self.n, self.linear = inner, inner.n * k, inner.linear

    def class_indices(self):
        inner = self.inner.class_indices()
        return None if inner is None else inner.repeat(self.n // self.inner.n)

    def select(self, output, sample):
        return self.inner.select(output, sample % self.inner.n)

    def __repr__(self) -> str:
        return f"{self.inner!r}.copies({self.n // self.inner.n})"


class _Rows(Selector):
    """Samples ``start:stop`` of a bound selector: sample ``i`` of the slice is sample ``start + i``."""

    def __init__(self, inner: Selector, start: int, stop: int):
        if not 0 <= start < stop <= inner.n:
            raise ValueError(f"rows {start}:{stop} are not samples of the batch of {inner.n} the target was chosen for")
        self.inner, self.start, self.n, self.linear = inner, start, stop - start, inner.linear

    def class_indices(self):
        inner = self.inner.class_indices()
        return None if inner is None else inner[self.start : self.start + self.n]

    def select(self, output, sample):
        return self.inner.select(output, sample + self.start)

    def __repr__(self) -> str:
        return f"{self.inner!r}.rows({self.start}, {self.start + self.n})"


def _per_sample_shape(output: torch.Tensor) -> tuple[int, ...]:
    return tuple(output.shape[1:])


class ClassScore(Selector):
    """The score of one class per sample on a classifier's ``(N, C)`` output (``None``: the predicted class)."""

    def __init__(self, classes: Target = None):
        self.classes = classes

    def bind(self, output):
        if output.dim() != 2:
            raise ValueError(
                f"a class target needs class scores (N, C); the model returns {tuple(output.shape)}: "
                f"{_hint(output)}"
            )
        bound = ClassScore(self.classes)
        bound.n, bound.indices = output.shape[0], resolve_target(self.classes, output)
        return bound

    def class_indices(self):
        return self.indices

    def rows(self, start, stop, n):
        return super().rows(start, stop, n) if self.n else ClassScore(target_rows(self.classes, start, stop, n))

    def select(self, output, sample):
        return output.gather(1, self.indices[sample].unsqueeze(1)).squeeze(1)

    def __repr__(self) -> str:
        return f"ClassScore({self.classes!r})"


class OutputIndex(Selector):
    """One element of each sample's output, e.g. ``(c, i, j)`` of a segmentation map ``(N, C, H, W)``.

    ``index`` is one tuple for every sample or a list of ``N`` tuples, one per sample (Captum's tuple
    targets).
    """

    def __init__(self, index):
        self.index = index

    def bind(self, output):
        shape = _per_sample_shape(output)
        n = output.shape[0]
        per_sample = isinstance(self.index, list)
        indices = self.index if per_sample else [self.index] * n
        if per_sample and len(indices) != n:
            raise ValueError(f"target has {len(indices)} index tuples but the batch has N = {n} samples")
        for index in indices:
            if not isinstance(index, tuple) or not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
                raise TypeError(f"an index target must be a tuple of ints (or a list of them, one per sample), got {index!r}")
            if len(index) != len(shape):
                raise ValueError(
                    f"target index {index} has {len(index)} entries but each sample's output has shape {shape} "
                    f"({len(shape)} dimensions)"
                )
            if any(not -size <= i < size for i, size in zip(index, shape)):
                raise ValueError(f"target index {index} is out of range for each sample's output of shape {shape}")
        bound = OutputIndex(self.index)
        bound.n = n
        bound.columns = torch.tensor(indices, dtype=torch.long, device=output.device).reshape(n, len(shape))
        return bound

    def rows(self, start, stop, n):
        return super().rows(start, stop, n) if self.n else OutputIndex(target_rows(self.index, start, stop, n))

    def select(self, output, sample):
        rows = torch.arange(output.shape[0], device=output.device)
        return output[(rows, *self.columns[sample].unbind(1))]

    def __repr__(self) -> str:
        return f"OutputIndex({self.index!r})"


class Regression(Selector):
    """A regression output: ``(N,)`` or ``(N, 1)`` itself, or column ``index`` of ``(N, D)``."""

    def __init__(self, index: int | None = None):
        self.index = index

    def bind(self, output):
        shape = _per_sample_shape(output)
        if self.index is None and shape not in ((), (1,)):
            raise ValueError(
                f"Regression() explains an output of shape (N,) or (N, 1); the model returns {tuple(output.shape)}: "
                "give Regression(index) for one column"
            )
        if self.index is not None and (len(shape) != 1 or not -shape[0] <= self.index < shape[0]):
            raise ValueError(f"Regression index {self.index} does not fit an output of shape {tuple(output.shape)}")
        bound = Regression(self.index)
        bound.n = output.shape[0]
        return bound

    def select(self, output, sample):
        return output.reshape(output.shape[0]) if self.index is None else output[:, self.index]

    def __repr__(self) -> str:
        return f"Regression({self.index!r})"


class SegmentationRegion(Selector):
    """The sum of class ``c``'s scores over a region of a dense output ``(N, C, H, W)``: "why are these pixels a c?".

    ``mask`` (bool or weights) has the spatial shape ``(H, W)`` (shared) or ``(N, H, W)`` (per sample);
    ``None`` takes every pixel.
    """

    def __init__(self, cls: int, mask: torch.Tensor | None = None):
        if isinstance(cls, bool) or not isinstance(cls, int):
            raise TypeError(f"SegmentationRegion's class must be an int, got {type(cls).__name__}")
        self.cls, self.mask = cls, mask

    def bind(self, output):
        if output.dim() < 3:
            raise ValueError(f"SegmentationRegion needs a dense output (N, C, H, W, ...); the model returns {tuple(output.shape)}")
        n, classes, spatial = output.shape[0], output.shape[1], tuple(output.shape[2:])
        if not 0 <= self.cls < classes:
            raise ValueError(f"SegmentationRegion class {self.cls} out of range: the output has {classes} classes")
        mask = torch.ones(spatial) if self.mask is None else torch.as_tensor(self.mask)
        if tuple(mask.shape) == spatial:
            mask = mask.expand(n, *spatial)
        elif tuple(mask.shape) != (n, *spatial):
            raise ValueError(
                f"the region mask has shape {tuple(mask.shape)}; it must be {spatial} or {(n, *spatial)} for an output of "
                f"shape {tuple(output.shape)}"
            )
        bound = SegmentationRegion(self.cls, self.mask)
        bound.n, bound.weights = n, mask.to(device=output.device, dtype=output.dtype)
        return bound

    def rows(self, start, stop, n):
        if self.n or self.mask is None:
            return super().rows(start, stop, n)
        mask = torch.as_tensor(self.mask)
        per_sample = mask.dim() >= 3 and mask.shape[0] == n  # (N, H, W, ...); an (H, W) mask is shared
        return SegmentationRegion(self.cls, mask[start:stop] if per_sample else mask)

    def select(self, output, sample):
        return (output[:, self.cls] * self.weights[sample]).flatten(1).sum(1)

    def __repr__(self) -> str:
        return f"SegmentationRegion({self.cls!r}, mask={'None' if self.mask is None else 'tensor'})"


class TokenScore(Selector):
    """The score of vocabulary entry ``token`` at sequence ``position`` of a token output ``(N, T, V)``.

    ``token`` is one id or one per sample; ``position`` defaults to the last token.
    """

    def __init__(self, token, position: int = -1):
        self.token, self.position = token, position

    def bind(self, output):
        if output.dim() != 3:
            raise ValueError(f"TokenScore needs a token output (N, T, V); the model returns {tuple(output.shape)}")
        n, length, vocabulary = output.shape
        if not -length <= self.position < length:
            raise ValueError(f"TokenScore position {self.position} out of range for {length} tokens")
        tokens = [self.token] * n if isinstance(self.token, int) else list(self.token)
        if len(tokens) != n:
            raise ValueError(f"TokenScore has {len(tokens)} tokens but the batch has N = {n} samples")
        return OutputIndex([(self.position % length, int(t)) for t in tokens]).bind(output)

    def rows(self, start, stop, n):
        return TokenScore(target_rows(self.token, start, stop, n), self.position)


class FunctionOfOutput(Selector):
    """A user callable ``target(output) -> (rows,)``: one scalar per row, each row's from that row alone.

    It is taken as nonlinear: LRP and DeepLIFT start from its gradient times the output (exact for
    linear functions such as a masked sum).
    """

    linear = False

    def __init__(self, function):
        self.function = function

    def bind(self, output):
        bound = FunctionOfOutput(self.function)
        bound.n = output.shape[0]
        value = bound.select(output, torch.arange(bound.n, device=output.device))
        if not isinstance(value, torch.Tensor) or value.shape != (bound.n,):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"a callable target must return one scalar per sample, shape ({bound.n},), for an output of shape "
                f"{tuple(output.shape)}; it returned {shape}"
            )
        return bound

    def select(self, output, sample):
        return self.function(output)

    def __repr__(self) -> str:
        return f"FunctionOfOutput({getattr(self.function, '__name__', self.function)!r})"


def _hint(output: torch.Tensor) -> str:
    if output.dim() <= 1 or output.shape[1:] == (1,):
        return "a regression output is explained with target=None (or nni.targets.Regression())"
    return (
        "give target=(c, i, ...) to explain one element of each sample's output, a list of such tuples (one per "
        "sample), nni.targets.SegmentationRegion(c, mask) for a region, or a callable output -> (N,)"
    )


def as_selector(target, output: torch.Tensor) -> Selector:
    """The selector of a user ``target`` for the batch's ``output``, checked against it.

    ``None`` is the predicted class of a classifier ``(N, C)`` and the output itself for a regression
    ``(N,)`` / ``(N, 1)``; an int, a sequence of ints or a 1-D tensor are classes; a tuple of ints as
    long as each sample's output rank (or a list of them) indexes each sample's output; a
    :class:`Selector` or any callable ``output -> (N,)`` is used as given.
    """
    selector = _as_selector(target, output)
    selector.output_shape = tuple(output.shape[1:])
    return selector


def _as_selector(target, output: torch.Tensor) -> Selector:
    if isinstance(target, Selector):
        if not target.n:
            return target.bind(output)
        if output.shape[0] != target.n:  # already bound (e.g. passed on by a wrapper): keep its choices
            raise ValueError(f"the target was chosen for {target.n} samples but the batch has N = {output.shape[0]}")
        return target
    if target is None:
        if output.dim() == 1 or output.shape[1:] == (1,):
            return Regression().bind(output)
        if output.dim() == 2:
            return ClassScore().bind(output)
        raise ValueError(f"the model returns {tuple(output.shape)}, not class scores (N, C): {_hint(output)}")
    if isinstance(target, tuple) and output.dim() > 2:
        return OutputIndex(target).bind(output)
    if isinstance(target, list) and target and all(isinstance(t, tuple) for t in target):
        return OutputIndex(target).bind(output)
    if callable(target) and not isinstance(target, torch.Tensor):
        return FunctionOfOutput(target).bind(output)
    return ClassScore(target).bind(output)


def target_rows(target, start: int, stop: int, n: int):
    """The target of samples ``start:stop`` of a split of ``n``, for helpers that explain a split batch by batch.

    Per-sample choices (a sequence or tensor of classes, ``(N, K)`` class tensors, a list of index
    tuples, the per-sample arguments of a :class:`Selector`) are sliced; shared ones (``None``, an int,
    ``"all"``, one index tuple, a callable) are returned as given. A bound selector keeps its choices.
    """
    if isinstance(target, Selector):
        return target.rows(start, stop, n)
    per_sample = isinstance(target, torch.Tensor) and target.dim() >= 1
    per_sample |= isinstance(target, (list, range)) or (
        isinstance(target, Sequence) and not isinstance(target, (str, bytes, tuple))
    )
    if not per_sample:
        return target
    if len(target) != n:
        raise ValueError(f"target gives {len(target)} per-sample entries but the split has N = {n} samples")
    return target[start:stop]


def every_class(target, output: torch.Tensor) -> torch.Tensor | None:
    """For ``target="all"`` or an integer ``(N, K)`` tensor, the classes to explain per sample ``(N, K)``; else ``None``."""
    if isinstance(target, str):
        if target != "all":
            raise ValueError(f"the only string target is 'all' (every class), got {target!r}")
        if output.dim() != 2:
            raise ValueError(f"target='all' needs class scores (N, C); the model returns {tuple(output.shape)}")
        n, classes = output.shape
        return torch.arange(classes, device=output.device).expand(n, classes)
    if isinstance(target, torch.Tensor) and target.dim() == 2:
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"a (N, K) target tensor must hold class indices, got dtype {target.dtype}")
        if output.dim() != 2 or target.shape[0] != output.shape[0]:
            raise ValueError(f"a (N, K) target needs class scores (N, C) for N = {target.shape[0]}; got {tuple(output.shape)}")
        resolve_target(target.reshape(-1), output.repeat_interleave(target.shape[1], 0))  # range check
        return target.to(device=output.device, dtype=torch.long)
    return None
