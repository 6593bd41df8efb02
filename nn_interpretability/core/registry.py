"""Methods by name, so that one notebook parameter can switch between them."""
from __future__ import annotations

from collections.abc import Callable
from difflib import get_close_matches
from importlib import import_module

from torch import nn

_METHODS: dict[str, Callable[..., object]] = {}
# Packages imported before a lookup, whose modules register their methods when they load. Filled by
# the packages above (the top-level package adds its method packages), since core imports none of them.
_METHOD_PACKAGES: list[str] = []


def register_method(name: str, factory: Callable[..., object] | None = None):
    """Register ``factory(model, **kwargs)`` under ``name``; usable as a class decorator."""

    def add(obj):
        if name in _METHODS and _METHODS[name] is not obj:
            raise ValueError(f"a method is already registered as {name!r}")
        _METHODS[name] = obj
        return obj

    return add if factory is None else add(factory)


def add_method_package(package: str) -> None:
    """Have :func:`get_method` and :func:`available_methods` import ``package`` (absolute name) first."""
    if package not in _METHOD_PACKAGES:
        _METHOD_PACKAGES.append(package)


def _register_all() -> None:
    """Import the method packages, whose classes register themselves when their module loads."""
    for package in _METHOD_PACKAGES:
        import_module(package)


def available_methods() -> list[str]:
    """Names accepted by :func:`get_method`, sorted."""
    _register_all()
    return sorted(_METHODS)


def get_method(name: str, model: nn.Module | None = None, **kwargs):
    """The method registered as ``name``; with ``model`` given, an instance configured with ``kwargs``.

    >>> saliency = get_method("saliency", model)          # doctest: +SKIP
    >>> maps = saliency.attribute(x, target=3)            # doctest: +SKIP
    """
    _register_all()
    key = name.lower().replace("_", "-")
    if key not in _METHODS:
        close = get_close_matches(key, _METHODS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown method {name!r}{hint} Available: {', '.join(available_methods())}")
    factory = _METHODS[key]
    return factory if model is None else factory(model, **kwargs)
