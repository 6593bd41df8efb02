"""A package's public names from one table: ``{module: [names]}`` gives both ``__all__`` and lazy loading.

>>> lazy_exports(__name__, {".evidential": ["dirichlet_opinion"]}, globals())   # doctest: +SKIP

installs ``__all__``, ``_LAZY`` (name -> defining module), a module-level ``__getattr__`` that imports
a name's module on first use (PEP 562) and a ``__dir__`` that lists every public name, so that a name
is written down once and ``import`` of the package stays cheap.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from importlib import import_module
from importlib.util import find_spec
from typing import Any


def lazy_exports(
    package: str,
    table: Mapping[str, Iterable[str]],
    namespace: MutableMapping[str, Any],
    *,
    submodules: Iterable[str] = (),
    eager: bool = False,
) -> None:
    """Export the names of ``table`` (``{module: [names]}``) and ``submodules`` from ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``; relative modules of ``table`` (``".evidential"``) resolve against it.
    table : mapping
        Module -> the public names it defines, each name in exactly one module.
    namespace : dict
        The package's ``globals()``; receives ``__all__``, ``_LAZY``, ``_SUBMODULES``, ``__getattr__``
        and ``__dir__``.
    submodules : iterable of str
        Subpackages or submodules exported under their own name (``nni.plot``), imported on first use.
        Other submodules are still reachable as attributes, but not listed in ``__all__``.
    eager : bool
        Import every module now (for packages whose modules must run on import, e.g. to register
        methods); the names are then plain attributes and ``__getattr__`` is never reached.
    """
    lazy: dict[str, str] = {}
    for module, names in table.items():
        if isinstance(names, str):
            raise TypeError(f"{package}: the names of {module!r} must be a list, not the string {names!r}")
        for name in names:
            if name in lazy:
                raise ValueError(f"{package}: {name!r} is listed under both {lazy[name]!r} and {module!r}")
            lazy[name] = module
    subs = tuple(submodules)
    for name in subs:
        if name in lazy or subs.count(name) > 1:
            raise ValueError(f"{package}: {name!r} is listed twice")
    if "_LAZY" not in namespace:  # (a reload finds the names it loaded the first time)
        for name in (*lazy, *subs):
            if name in namespace:
                raise ValueError(f"{package}: {name!r} is already defined in the package; list it only once")

    def __getattr__(name: str):
        if name in lazy:
            value = getattr(import_module(lazy[name], package), name)
        elif name in subs or (not name.startswith("__") and find_spec(f"{package}.{name}") is not None):
            # Any submodule, exported or not, as an attribute (``nni.models.zoo``), as eager imports gave.
            value = import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(lazy) | set(subs))

    namespace.update(
        __all__=sorted({*lazy, *subs}),
        _LAZY=lazy,
        _SUBMODULES=subs,
        __getattr__=__getattr__,
        __dir__=__dir__,
    )
    if eager:
        for name in (*lazy, *subs):
            __getattr__(name)
