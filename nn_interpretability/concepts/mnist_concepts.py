"""Concept image sets for TCAV built offline from the MNIST digits (Kim et al. 2018, section 4).

Each set is a :class:`~.tcav.Concept` of ``n`` digits ``(n, 1, 28, 28)`` in [0, 1], drawn with a seeded
NumPy generator from :func:`~nn_interpretability.data.load_mnist` (by default the embedded digits, the
same on every machine), so equal arguments give equal images:

- :func:`closed_loop`: digits whose stroke encloses a hole (:func:`hole_area`).
- :func:`horizontal_bar`: digits with a synthetic horizontal stroke drawn across them
  (:func:`longest_horizontal_run`).
- :func:`thick_stroke`: digits dilated with a disk whose strokes are then wider than most digits'
  (:func:`stroke_width`).
- :func:`random_concepts`: sets of digits of any class, the random sets of the significance test.

The measurements binarise a digit at :data:`THRESHOLD`.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.morphology import dilation, disk, skeletonize

from ..core.validation import positive_int
from ..data.mnist import load_mnist
from .tcav import Concept

#: Intensity above which a pixel belongs to the stroke.
THRESHOLD = 0.5


def _binary(images: torch.Tensor) -> np.ndarray:
    images = torch.as_tensor(images)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be single-channel digits (N, 1, H, W), got shape {tuple(images.shape)}")
    return images[:, 0].detach().cpu().numpy() > THRESHOLD


def hole_area(images: torch.Tensor) -> torch.Tensor:
    """Pixels enclosed by each digit's stroke, ``(N,)`` int64: the filled area minus the stroke's area."""
    strokes = _binary(images)
    filled = np.stack([ndimage.binary_fill_holes(stroke) for stroke in strokes])
    return torch.from_numpy((filled.sum((1, 2)) - strokes.sum((1, 2))).astype(np.int64))


def longest_horizontal_run(images: torch.Tensor) -> torch.Tensor:
    """The longest run of consecutive stroke pixels in any row of each digit, ``(N,)`` int64."""
    strokes = _binary(images).astype(np.int64)
    run = np.zeros(strokes.shape[:2], dtype=np.int64)
    longest = np.zeros(strokes.shape[:2], dtype=np.int64)
    for column in range(strokes.shape[2]):
        run = (run + 1) * strokes[:, :, column]
        longest = np.maximum(longest, run)
    return torch.from_numpy(longest.max(1))


def stroke_width(images: torch.Tensor) -> torch.Tensor:
    """Mean stroke width of each digit in pixels, ``(N,)`` float64: the stroke's area over its skeleton's length."""
    widths = [stroke.sum() / max(1, skeletonize(stroke).sum()) for stroke in _binary(images)]
    return torch.tensor(widths, dtype=torch.float64)


def _digits(split: str, source: str) -> torch.Tensor:
    return load_mnist(split, source=source)[0]


def _draw(pool: np.ndarray, n: int, rng: np.random.Generator, what: str) -> np.ndarray:
    if n > len(pool):
        raise ValueError(f"{what}: asked for {n} images, but only {len(pool)} digits qualify")
    return np.sort(rng.choice(pool, size=n, replace=False))


def closed_loop(
    n: int = 50, split: str = "train", min_hole: int = 10, seed: int = 0, source: str = "embedded", dtype=torch.float32
) -> Concept:
    """Digits whose stroke encloses a hole of at least ``min_hole`` pixels (0, 6, 8, 9 and closed 2s and 4s)."""
    positive_int(n, "n")
    images = _digits(split, source)
    pool = np.flatnonzero((hole_area(images) >= positive_int(min_hole, "min_hole")).numpy())
    chosen = _draw(pool, n, np.random.default_rng(seed), "closed_loop")
    return Concept("closed_loop", images[chosen].to(dtype))


def horizontal_bar(
    n: int = 50, split: str = "train", length: int = 20, seed: int = 0, source: str = "embedded", dtype=torch.float32
) -> Concept:
    """Digits with a synthetic horizontal stroke, two rows thick and ``length`` pixels long, at a random place."""
    positive_int(n, "n")
    images = _digits(split, source)
    height, width = images.shape[-2:]
    if not 1 <= positive_int(length, "length") <= width - 4:
        raise ValueError(f"length must be at most {width - 4} pixels, got {length}")
    rng = np.random.default_rng(seed)
    chosen = _draw(np.arange(len(images)), n, rng, "horizontal_bar")
    bars = images[chosen].clone()
    rows = rng.integers(4, height - 5, size=n)
    starts = rng.integers(2, width - 2 - length + 1, size=n)
    for image, row, start in zip(bars, rows, starts):
        image[0, row : row + 2, start : start + length] = 1.0
    return Concept("horizontal_bar", bars.to(dtype))


def thick_stroke(
    n: int = 50,
    split: str = "train",
    radius: int = 1,
    quantile: float = 0.9,
    seed: int = 0,
    source: str = "embedded",
    dtype=torch.float32,
) -> Concept:
    """Digits widened by a grey-level dilation with a disk of ``radius`` pixels, kept when their stroke width
    exceeds the ``quantile`` of the undilated digits' widths (:func:`stroke_width`)."""
    positive_int(n, "n")
    footprint = disk(positive_int(radius, "radius"))
    if not 0 <= quantile < 1:
        raise ValueError(f"quantile must be in [0, 1), got {quantile!r}")
    images = _digits(split, source)
    threshold = float(np.quantile(stroke_width(images).numpy(), quantile))
    kept: list[np.ndarray] = []
    for index in np.random.default_rng(seed).permutation(len(images)):
        thick = dilation(images[index, 0].numpy(), footprint)
        if stroke_width(torch.from_numpy(thick)[None, None]).item() > threshold:
            kept.append(thick)
            if len(kept) == n:
                return Concept("thick_stroke", torch.from_numpy(np.stack(kept)).unsqueeze(1).to(dtype))
    raise ValueError(f"thick_stroke: asked for {n} images, but only {len(kept)} dilated digits are wide enough")


def random_concepts(
    n_random: int, n: int = 50, split: str = "train", seed: int = 0, source: str = "embedded", dtype=torch.float32
) -> list[Concept]:
    """``n_random`` sets ``random_0``, ``random_1``, ... of ``n`` digits of any class, each drawn afresh."""
    positive_int(n_random, "n_random")
    positive_int(n, "n")
    images = _digits(split, source)
    rng = np.random.default_rng(seed)
    pool = np.arange(len(images))
    return [Concept(f"random_{i}", images[_draw(pool, n, rng, "random_concepts")].to(dtype)) for i in range(n_random)]
