"""Where the package keeps trained models and data sets."""
from __future__ import annotations

import os
from pathlib import Path


def nni_home() -> Path:
    """The cache folder: ``$NNI_HOME``, default ``~/.cache/nn_interpretability``."""
    return Path(os.environ.get("NNI_HOME", Path.home() / ".cache" / "nn_interpretability")).expanduser()


def data_root() -> Path:
    """Where full data sets are looked for: ``$NNI_DATA``, default ``$NNI_HOME/data``."""
    return Path(os.environ.get("NNI_DATA", nni_home() / "data")).expanduser()
