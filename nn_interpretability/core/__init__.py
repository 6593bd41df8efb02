"""Core machinery shared by every method: the base class, model borrowing and the method registry."""
from .base import Attribution, check_inputs, forward_scores, resolve_target, select_target
from .hooks import borrowed
from .registry import available_methods, get_method, register_method

__all__ = [
    "Attribution",
    "available_methods",
    "borrowed",
    "check_inputs",
    "forward_scores",
    "get_method",
    "register_method",
    "resolve_target",
    "select_target",
]
