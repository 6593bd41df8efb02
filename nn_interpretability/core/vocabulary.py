"""One name per concept: old argument names keep working for one release, with a ``DeprecationWarning``."""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping


def translate(kwargs: dict, renamed: Mapping[str, str], where: str, stacklevel: int = 3) -> dict:
    """``kwargs`` with every old name of ``renamed`` (old -> new) replaced by the new one, warning for each.

    ``stacklevel`` counts from the caller of ``translate`` to the user's frame (as ``warnings.warn``).
    """
    for old, new in renamed.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(f"{where} got both {old!r} and its new name {new!r}; pass {new!r} only")
        warnings.warn(
            f"{where}: {old!r} is deprecated and will be removed in the next release; use {new!r}",
            DeprecationWarning,
            stacklevel=stacklevel + 1,
        )
        kwargs[new] = kwargs.pop(old)
    return kwargs


def renamed_arguments(**renamed: str) -> Callable:
    """Decorator: accept the old keyword names ``old=new`` of a function, translated by :func:`translate`."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(*args, **translate(kwargs, renamed, function.__qualname__, stacklevel=2))

        return wrapper

    return decorate
