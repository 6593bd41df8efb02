"""MNIST canvases for localisation: one full-size digit among smaller distractor digits of other classes.

A small, offline counterpart of CLEVR-XAI (Arras, Osman & Samek 2022, "CLEVR-XAI: A benchmark dataset
for the ground truth evaluation of neural network explanations"): the object the label refers to is
known pixel by pixel, so a map can be scored by how much of its relevance falls on it. The target digit
is drawn at full size (28×28) at a random position of a larger black canvas; the distractors are digits
of other classes, scaled down (14×14 by default) so that the label is unambiguous: "the class of the
large digit". Boxes never overlap, so every stroke pixel belongs to exactly one digit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.validation import positive_int
from .mnist import STROKE_THRESHOLD, load_mnist

MASKS = ("stroke", "box")
#: Random positions tried per distractor before the canvas is declared too crowded.
PLACEMENT_CANDIDATES = 256


def _boxes_overlap(y: torch.Tensor, x: torch.Tensor, side: int, by: torch.Tensor, bx: torch.Tensor, bside: int) -> torch.Tensor:
    """Whether squares ``side`` at ``(y, x)`` and ``bside`` at ``(by, bx)`` share a pixel (broadcasting)."""
    return (y < by + bside) & (by < y + side) & (x < bx + bside) & (bx < x + side)


def _paste(canvas: torch.Tensor, patches: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> None:
    """Write ``patches`` ``(n, p, p)`` into ``canvas`` ``(n, H, W)`` at top-left corners ``(y, x)``, in place."""
    n, p = patches.shape[0], patches.shape[-1]
    offsets = torch.arange(p)
    rows = (y[:, None] + offsets)[:, :, None]
    cols = (x[:, None] + offsets)[:, None, :]
    index = torch.arange(n)[:, None, None]
    canvas[index, rows, cols] = torch.maximum(canvas[index, rows, cols], patches)


def compose_canvases(
    targets: torch.Tensor,
    target_labels: torch.Tensor,
    pool: torch.Tensor,
    pool_labels: torch.Tensor,
    generator: torch.Generator,
    size: int = 64,
    distractors: int = 2,
    distractor_scale: float = 0.5,
    mask: str = "stroke",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place each target digit on a canvas with ``distractors`` smaller digits of other classes from ``pool``.

    Parameters
    ----------
    targets : Tensor
        ``(n, 1, 28, 28)`` digits in [0, 1], drawn at full size.
    target_labels : Tensor
        ``(n,)`` their classes.
    pool, pool_labels : Tensor
        ``(m, 1, 28, 28)`` and ``(m,)``: where the distractors come from; every class must occur.
    generator : torch.Generator
        Draws positions and distractors.
    size : int
        Side of the square canvas; at least 28.
    distractors : int
        Distractor digits per canvas, 0 to 9, of pairwise different classes, none of the target's.
    distractor_scale : float
        Side of a distractor relative to 28 (area-averaged down-scaling), in (0, 1].
    mask : {"stroke", "box"}
        The ground truth: the target's stroke pixels (intensity > :data:`STROKE_THRESHOLD`, the object's
        pixels as in Arras et al. 2022), or the tight bounding box of those pixels.

    Returns
    -------
    images : Tensor
        ``(n, 1, size, size)`` in [0, 1].
    masks : Tensor
        ``(n, size, size)`` bool.
    """
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    size = positive_int(size, "size")
    if size < targets.shape[-1]:
        raise ValueError(f"size must be at least the digits' side {targets.shape[-1]}, got {size}")
    if isinstance(distractors, bool) or not isinstance(distractors, int) or not 0 <= distractors <= 9:
        raise ValueError(f"distractors must be an int from 0 to 9 (each of another class), got {distractors!r}")
    if not 0 < distractor_scale <= 1:
        raise ValueError(f"distractor_scale must be in (0, 1], got {distractor_scale}")
    n, side = targets.shape[0], targets.shape[-1]
    small = max(1, round(side * distractor_scale))
    canvas = torch.zeros(n, size, size, dtype=targets.dtype)
    ty = torch.randint(0, size - side + 1, (n,), generator=generator)
    tx = torch.randint(0, size - side + 1, (n,), generator=generator)
    _paste(canvas, targets[:, 0], ty, tx)
    target_canvas = canvas > STROKE_THRESHOLD

    if distractors:
        counts = torch.bincount(pool_labels, minlength=10)
        if (counts[:10] == 0).any():
            raise ValueError(f"the distractor pool lacks classes {torch.nonzero(counts[:10] == 0).flatten().tolist()}")
        by_class = torch.argsort(pool_labels, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        # Different classes per canvas: the target's class plus distinct offsets 1..9 (mod 10).
        offsets = torch.rand(n, 9, generator=generator).argsort(1)[:, :distractors] + 1
        classes = (target_labels[:, None] + offsets) % 10
        picks = starts[classes] + (torch.rand(n, distractors, generator=generator) * counts[classes]).long()
        chosen = pool[by_class[picks.flatten()]]
        scaled = F.interpolate(chosen, size=(small, small), mode="area")[:, 0].reshape(n, distractors, small, small)
        placed_y, placed_x, placed_side = [ty], [tx], [side]
        for d in range(distractors):
            cy = torch.randint(0, size - small + 1, (n, PLACEMENT_CANDIDATES), generator=generator)
            cx = torch.randint(0, size - small + 1, (n, PLACEMENT_CANDIDATES), generator=generator)
            free = torch.ones_like(cy, dtype=torch.bool)
            for py, px, ps in zip(placed_y, placed_x, placed_side):
                free &= ~_boxes_overlap(cy, cx, small, py[:, None], px[:, None], ps)
            if not free.any(1).all():
                raise ValueError(
                    f"no free place for distractor {d + 1} on a {size}x{size} canvas: use a larger size, fewer or "
                    f"smaller distractors"
                )
            first = free.int().argmax(1, keepdim=True)
            dy, dx = cy.gather(1, first)[:, 0], cx.gather(1, first)[:, 0]
            _paste(canvas, scaled[:, d], dy, dx)
            placed_y.append(dy)
            placed_x.append(dx)
            placed_side.append(small)

    if mask == "box":
        rows, cols = target_canvas.any(2), target_canvas.any(1)
        line = torch.arange(size)
        top = torch.where(rows, line, size).amin(1)
        bottom = torch.where(rows, line, -1).amax(1)
        left = torch.where(cols, line, size).amin(1)
        right = torch.where(cols, line, -1).amax(1)
        inside_rows = (line >= top[:, None]) & (line <= bottom[:, None])
        inside_cols = (line >= left[:, None]) & (line <= right[:, None])
        target_canvas = inside_rows[:, :, None] & inside_cols[:, None, :]
    return canvas[:, None], target_canvas


def mnist_canvas(
    n: int,
    *,
    size: int = 64,
    distractors: int = 2,
    distractor_scale: float = 0.5,
    split: str = "test",
    mask: str = "stroke",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` localisation canvases from the embedded MNIST digits of ``split``, with their ground-truth masks.

    Each canvas holds one full-size target digit (its label is the canvas's label) at a random position
    and ``distractors`` down-scaled digits of other classes at random positions that do not overlap it
    or each other (:func:`compose_canvases`). Targets are drawn without replacement while ``n`` is at most
    the split's size (4,000 train, 1,000 test), else with replacement; deterministic under ``seed``.

    Parameters
    ----------
    n : int
        Number of canvases.
    size, distractors, distractor_scale, mask
        As in :func:`compose_canvases`.
    split : {"train", "test"}
        The embedded split the digits (targets and distractors) come from.
    seed : int
        Seeds the choice of digits and positions.

    Returns
    -------
    images : Tensor
        ``(n, 1, size, size)`` float in [0, 1].
    labels : Tensor
        ``(n,)`` the target digits' classes.
    masks : Tensor
        ``(n, size, size)`` bool: the target's stroke pixels (or bounding box).
    """
    n = positive_int(n, "n")
    digits, labels = load_mnist(split, source="embedded")
    generator = torch.Generator().manual_seed(seed)
    if n <= len(digits):
        chosen = torch.randperm(len(digits), generator=generator)[:n]
    else:
        chosen = torch.randint(0, len(digits), (n,), generator=generator)
    images, masks = compose_canvases(
        digits[chosen], labels[chosen], digits, labels, generator,
        size=size, distractors=distractors, distractor_scale=distractor_scale, mask=mask,
    )
    return images, labels[chosen], masks


def mask_fraction(masks: torch.Tensor) -> float:
    """The mean share of canvas pixels the masks cover: what a map without information scores on average."""
    return float(masks.flatten(1).double().mean())
