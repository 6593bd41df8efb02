"""Conversion of tensors and arrays into 2-D maps and displayable images."""
from __future__ import annotations

import numpy as np

REDUCTIONS = ("sum", "abs_sum", "max_abs")


def to_numpy(x) -> np.ndarray:
    """Return ``x`` (torch tensor, numpy array or nested sequence) as a float numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=float)


def _squeeze_batch(x: np.ndarray, max_ndim: int) -> np.ndarray:
    while x.ndim > max_ndim and x.shape[0] == 1:
        x = x[0]
    if x.ndim > max_ndim:
        raise ValueError(f"expected a single map or image, got shape {x.shape}; use plot.grid for batches")
    return x


def to_map(attribution, reduce: str = "sum") -> np.ndarray:
    """Reduce an attribution to one 2-D map.

    Parameters
    ----------
    attribution : torch.Tensor or array_like
        Shape (H, W), (C, H, W) or a batch of one (1, C, H, W).
    reduce : {"sum", "abs_sum", "max_abs"}
        How channels are combined: signed sum, sum of absolute values, or the
        largest absolute value.

    Returns
    -------
    numpy.ndarray
        The (H, W) map.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    a = _squeeze_batch(to_numpy(attribution), 3)
    if a.ndim == 2:
        return a
    if a.ndim != 3:
        raise ValueError(f"expected shape (H, W) or (C, H, W), got {a.shape}")
    if reduce == "sum":
        return a.sum(axis=0)
    if reduce == "abs_sum":
        return np.abs(a).sum(axis=0)
    return np.abs(a).max(axis=0)


def to_image(img, rescale: bool = False) -> np.ndarray:
    """Convert an image to (H, W) grey or (H, W, 3) RGB values in [0, 1].

    Parameters
    ----------
    img : torch.Tensor or array_like
        Shape (H, W), (1, H, W), (3, H, W), (H, W, 1), (H, W, 3), or a batch of one.
    rescale : bool
        Min-max rescale to [0, 1] first (for images outside that range, such as
        optimised inputs); otherwise values are only clipped.

    Returns
    -------
    numpy.ndarray
        (H, W) or (H, W, 3) array clipped to [0, 1].
    """
    x = _squeeze_batch(to_numpy(img), 3)
    if x.ndim == 3:
        if x.shape[0] in (1, 3):
            x = np.moveaxis(x, 0, -1)
        elif x.shape[-1] not in (1, 3):
            raise ValueError(f"expected 1 or 3 channels, got shape {x.shape}")
        if x.shape[-1] == 1:
            x = x[..., 0]
    elif x.ndim != 2:
        raise ValueError(f"expected an image of shape (H, W), (C, H, W) or (H, W, C), got {x.shape}")
    if rescale:
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.clip(x, 0.0, 1.0)


def to_grey(img) -> np.ndarray:
    """Return an image as an (H, W) luminance map in [0, 1] (see :func:`to_image`)."""
    x = to_image(img)
    if x.ndim == 3:
        x = x @ np.array([0.299, 0.587, 0.114], dtype=x.dtype)
    return x


def color_limit(values: np.ndarray, percentile: float = 99.5) -> float:
    """Robust symmetric colour limit: the ``percentile`` of ``|values|``.

    Falls back to the largest absolute value when the percentile is zero (sparse
    maps) and to 1 for all-zero or non-finite maps, so it is always positive.
    """
    magnitude = np.abs(values[np.isfinite(values)])
    if magnitude.size == 0:
        return 1.0
    v = float(np.percentile(magnitude, percentile))
    if v <= 0:
        v = float(magnitude.max())
    return v if v > 0 else 1.0


def value_range(values: np.ndarray, percentile: float = 99.5) -> tuple[float, float]:
    """Robust colour range of an unsigned map: its ``100 - percentile`` and ``percentile`` percentiles.

    ``(0, 1)`` for a map without finite values.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [100 - percentile, percentile])
    return float(lo), float(hi)
