"""Progress bars: one switch, ``show_progress``, whose default suits where the code runs."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

#: Set by the report runner in every notebook kernel it starts: report builds never show progress.
REPORT_BUILD_VARIABLE = "NNI_REPORT_BUILD"


def report_build() -> bool:
    """Whether this process runs inside a report build (a kernel started by the report runner)."""
    return bool(os.environ.get(REPORT_BUILD_VARIABLE))


def interactive() -> bool:
    """Whether a person is watching: a notebook kernel or a terminal, and not a report build."""
    if report_build():
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and getattr(shell, "kernel", None) is not None:  # a notebook kernel, not pytest's import
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(iterable: Iterable, desc: str, show_progress: bool | None = None, **kwargs):
    """``iterable`` wrapped in a tqdm bar when ``show_progress`` is on (``None``: :func:`interactive`)."""
    show = interactive() if show_progress is None else bool(show_progress)
    return tqdm(iterable, desc=desc, leave=False, disable=not show, **kwargs)
