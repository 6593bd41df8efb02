"""Example photographs bundled with scikit-image, usable offline."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from skimage import data as _skimage_data


def _left_view(loader: Callable[[], tuple]) -> Callable[[], np.ndarray]:
    return lambda: loader()[0]


_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea": _skimage_data.chelsea,
    "coffee": _skimage_data.coffee,
    "rocket": _skimage_data.rocket,
    # Returns (left, right, disparity); one view is enough.
    "stereo_motorcycle": _left_view(_skimage_data.stereo_motorcycle),
}


def sample_images(names: str | Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Photos shipped with scikit-image: a cat, a cup of coffee, a rocket and a motorcycle.

    Parameters
    ----------
    names : str or iterable of str, optional
        Which of ``"chelsea"``, ``"coffee"``, ``"rocket"`` and ``"stereo_motorcycle"`` (the left
        view) to load; all of them by default.

    Returns
    -------
    dict[str, numpy.ndarray]
        Name -> RGB ``uint8`` array of shape ``(H, W, 3)``, in the order requested.

    Raises
    ------
    ValueError
        If a name is not one of the bundled photos.
    """
    if names is None:
        names = list(_LOADERS)
    elif isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in _LOADERS]
    if unknown:
        raise ValueError(f"unknown sample image(s) {unknown}; choose from {sorted(_LOADERS)}")
    return {name: _LOADERS[name]() for name in names}
