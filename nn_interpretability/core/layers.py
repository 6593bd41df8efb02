"""Find a layer of a model from the module itself or its dotted name."""
from __future__ import annotations

from difflib import get_close_matches

from torch import nn


def find_layer(model: nn.Module, layer: nn.Module | str) -> tuple[str, nn.Module]:
    """The dotted name and the module of ``layer`` in ``model``.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
        A submodule of ``model`` or its dotted name as in ``model.named_modules()``, e.g. ``"features.4"``.

    Raises
    ------
    ValueError
        For a name the model does not have (naming close matches) or a module that is not part of it.
    """
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in modules or not layer:
            close = get_close_matches(layer, [n for n in modules if n], n=5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"no layer named {layer!r} in {type(model).__name__}{hint} (see model.named_modules())")
        return layer, modules[layer]
    for name, module in modules.items():
        if module is layer:
            return name, module
    raise ValueError("layer must be a submodule of the model or its dotted name")


def same_layer(model: nn.Module, layer: nn.Module, name: str) -> tuple[str, nn.Module]:
    """``layer`` inside ``model`` (a wrapper of the old model keeps it), else the layer named ``name``.

    For :meth:`~nn_interpretability.core.base.Attribution.with_model`: a method bound to a layer of one
    model finds the corresponding layer of another.
    """
    for candidate, module in model.named_modules():
        if module is layer:
            return candidate, module
    return find_layer(model, name)
