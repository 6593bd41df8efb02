"""One catalogue of the torch operations that the interceptors recognise, with every spelling torch offers.

A :class:`torch.overrides.TorchFunctionMode` sees the callable a model actually invoked: ``F.relu``,
``torch.relu_``, ``Tensor.relu``, ``Tensor.__iadd__``, ... Modules are implemented through these calls,
so knowing every spelling of an operation is what makes an interceptor complete. Each spelling has one
:class:`OpEntry` here, with the operation's name, its category, whether the spelling works in place and
the out-of-place spelling that takes the same arguments. Spellings missing from the installed torch
are left out.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Elementwise activations.
ACTIVATION = "activation"
#: Softmax and its relatives: normalising activations over a dimension.
SOFTMAX = "softmax"
#: Dropout of every kind.
DROPOUT = "dropout"
#: Max-pooling (also adaptive, and the variants returning the switches).
MAX_POOL = "max_pool"
#: Average pooling (also adaptive).
AVG_POOL = "avg_pool"
#: Linear and convolutional layers, transposed convolutions included.
LINEAR = "linear"
#: Normalisation layers.
NORMALIZATION = "normalization"
#: Elementwise arithmetic, Tensor operators included.
ARITHMETIC = "arithmetic"
#: Matrix and tensor products.
PRODUCT = "product"
#: Sums and means.
REDUCTION = "reduction"
#: Reshaping, indexing, copying and type conversion: values move (or, for ``masked_fill``, ``tril`` and ``triu``,
#: are replaced by constants), their order or dtype may change; no value is computed from others.
RESHAPE = "reshape"
#: Padding and interpolation.
RESAMPLE = "resample"
#: Nonlinear elementwise maths (exp, log, powers, roots).
MATH = "math"
#: Kernels that hide activations inside one call (recurrent layers, attention).
FUSED = "fused"
#: Calls that may act as an activation in disguise (``x.clamp(min=0)``, ``torch.where(x > 0, x, 0)``).
AMBIGUOUS = "ambiguous"

CATEGORIES = (
    ACTIVATION, SOFTMAX, DROPOUT, MAX_POOL, AVG_POOL, LINEAR, NORMALIZATION, ARITHMETIC, PRODUCT, REDUCTION,
    RESHAPE, RESAMPLE, MATH, FUSED, AMBIGUOUS,
)  # fmt: skip

_NAMESPACES = {"torch": (torch, "torch"), "F": (F, "torch.nn.functional"), "Tensor": (torch.Tensor, "torch.Tensor")}

# category -> operation -> its spellings. The first spelling of a callable names its entry (F.conv2d is
# torch.conv2d); an in-place spelling runs out of place as the same name without ``_`` (``__iadd__``: ``__add__``).
_CATALOGUE: dict[str, dict[str, str]] = {
    ACTIVATION: {
        "relu": "F.relu F.relu_ torch.relu torch.relu_ Tensor.relu Tensor.relu_",
        "leaky_relu": "F.leaky_relu F.leaky_relu_",
        "hardtanh": "F.hardtanh F.hardtanh_ F.relu6",  # F.relu6 is hardtanh(0, 6)
        "sigmoid": "F.sigmoid torch.sigmoid torch.sigmoid_ Tensor.sigmoid Tensor.sigmoid_",
        "tanh": "F.tanh torch.tanh torch.tanh_ Tensor.tanh Tensor.tanh_",
        "softplus": "F.softplus",
        "elu": "F.elu F.elu_",
        "selu": "F.selu F.selu_ torch.selu torch.selu_",
        "celu": "F.celu F.celu_ torch.celu torch.celu_",
        "gelu": "F.gelu",
        "silu": "F.silu",
        "hardswish": "F.hardswish",
        "hardsigmoid": "F.hardsigmoid",
        "mish": "F.mish",
        "threshold": "F.threshold F.threshold_ torch.threshold torch.threshold_",
        "prelu": "F.prelu torch.prelu Tensor.prelu",
        "rrelu": "F.rrelu F.rrelu_ torch.rrelu torch.rrelu_",
        "logsigmoid": "F.logsigmoid",
        "softsign": "F.softsign",
        "hardshrink": "F.hardshrink torch.hardshrink Tensor.hardshrink",
        "softshrink": "F.softshrink",
        "tanhshrink": "F.tanhshrink",
    },
    SOFTMAX: {
        "softmax": "F.softmax torch.softmax Tensor.softmax",
        "log_softmax": "F.log_softmax torch.log_softmax Tensor.log_softmax",
        "softmin": "F.softmin",
    },
    DROPOUT: {
        "dropout": "F.dropout torch.dropout torch.dropout_",
        "dropout1d": "F.dropout1d",
        "dropout2d": "F.dropout2d",
        "dropout3d": "F.dropout3d",
        "feature_dropout": "torch.feature_dropout torch.feature_dropout_",
        "alpha_dropout": "F.alpha_dropout torch.alpha_dropout torch.alpha_dropout_",
        "feature_alpha_dropout": "F.feature_alpha_dropout torch.feature_alpha_dropout torch.feature_alpha_dropout_",
    },
    MAX_POOL: {
        "max_pool1d": "F.max_pool1d torch.max_pool1d",
        "max_pool2d": "F.max_pool2d torch.max_pool2d",
        "max_pool3d": "F.max_pool3d torch.max_pool3d",
        "adaptive_max_pool1d": "F.adaptive_max_pool1d",
        "adaptive_max_pool2d": "F.adaptive_max_pool2d",
        "adaptive_max_pool3d": "F.adaptive_max_pool3d",
        "max_pool1d_with_indices": "F.max_pool1d_with_indices torch.max_pool1d_with_indices",
        "max_pool2d_with_indices": "F.max_pool2d_with_indices",
        "max_pool3d_with_indices": "F.max_pool3d_with_indices",
        # torch.adaptive_max_pool1d returns the switches too, unlike F.adaptive_max_pool1d.
        "adaptive_max_pool1d_with_indices": "F.adaptive_max_pool1d_with_indices torch.adaptive_max_pool1d",
        "adaptive_max_pool2d_with_indices": "F.adaptive_max_pool2d_with_indices",
        "adaptive_max_pool3d_with_indices": "F.adaptive_max_pool3d_with_indices",
    },
    AVG_POOL: {
        "avg_pool1d": "F.avg_pool1d torch.avg_pool1d",
        "avg_pool2d": "F.avg_pool2d",
        "avg_pool3d": "F.avg_pool3d",
        "adaptive_avg_pool1d": "F.adaptive_avg_pool1d torch.adaptive_avg_pool1d",
        "adaptive_avg_pool2d": "F.adaptive_avg_pool2d",
        "adaptive_avg_pool3d": "F.adaptive_avg_pool3d",
    },
    LINEAR: {
        "linear": "F.linear",
        "conv1d": "F.conv1d torch.conv1d",
        "conv2d": "F.conv2d torch.conv2d",
        "conv3d": "F.conv3d torch.conv3d",
        "conv_transpose1d": "F.conv_transpose1d torch.conv_transpose1d",
        "conv_transpose2d": "F.conv_transpose2d torch.conv_transpose2d",
        "conv_transpose3d": "F.conv_transpose3d torch.conv_transpose3d",
    },
    NORMALIZATION: {
        "batch_norm": "F.batch_norm torch.batch_norm",
        "layer_norm": "F.layer_norm torch.layer_norm",
        "group_norm": "F.group_norm torch.group_norm",
        "instance_norm": "F.instance_norm torch.instance_norm",
        "rms_norm": "F.rms_norm torch.rms_norm",
        "local_response_norm": "F.local_response_norm",
    },
    ARITHMETIC: {
        "add": "torch.add Tensor.add Tensor.add_ Tensor.__add__ Tensor.__iadd__ Tensor.__radd__",
        "sub": "torch.sub torch.subtract Tensor.sub Tensor.sub_ Tensor.subtract Tensor.subtract_ Tensor.__sub__ "
        "Tensor.__isub__",
        "rsub": "torch.rsub Tensor.__rsub__",  # other - input
        "mul": "torch.mul torch.multiply Tensor.mul Tensor.mul_ Tensor.multiply Tensor.multiply_ Tensor.__mul__ "
        "Tensor.__imul__ Tensor.__rmul__",
        "div": "torch.div torch.divide torch.true_divide Tensor.div Tensor.div_ Tensor.divide Tensor.divide_ "
        "Tensor.true_divide Tensor.true_divide_ Tensor.__truediv__ Tensor.__itruediv__ Tensor.__div__ Tensor.__idiv__",
        "rdiv": "Tensor.__rtruediv__ Tensor.__rdiv__",  # other / input
        "neg": "torch.neg torch.neg_ torch.negative torch.negative_ Tensor.neg Tensor.neg_ Tensor.negative "
        "Tensor.negative_ Tensor.__neg__",
        "positive": "torch.positive Tensor.positive Tensor.__pos__",
    },
    PRODUCT: {
        "matmul": "torch.matmul Tensor.matmul Tensor.__matmul__ Tensor.__rmatmul__",
        "mm": "torch.mm Tensor.mm",
        "bmm": "torch.bmm Tensor.bmm",
        "mv": "torch.mv Tensor.mv",
        "einsum": "torch.einsum",
        "tensordot": "torch.tensordot",
    },
    REDUCTION: {
        "sum": "torch.sum Tensor.sum",
        "mean": "torch.mean Tensor.mean",
        "cumsum": "torch.cumsum Tensor.cumsum Tensor.cumsum_",
    },
    RESHAPE: {
        "view": "Tensor.view",
        "view_as": "Tensor.view_as",
        "reshape": "torch.reshape Tensor.reshape",
        "reshape_as": "Tensor.reshape_as",
        "flatten": "torch.flatten Tensor.flatten",
        "unflatten": "torch.unflatten Tensor.unflatten",
        "squeeze": "torch.squeeze Tensor.squeeze Tensor.squeeze_",
        "unsqueeze": "torch.unsqueeze Tensor.unsqueeze Tensor.unsqueeze_",
        "transpose": "torch.transpose torch.swapaxes torch.swapdims Tensor.transpose Tensor.transpose_ Tensor.swapaxes "
        "Tensor.swapaxes_ Tensor.swapdims Tensor.swapdims_",
        "t": "torch.t Tensor.t Tensor.t_",
        "permute": "torch.permute Tensor.permute",
        "movedim": "torch.movedim torch.moveaxis Tensor.movedim Tensor.moveaxis",
        "cat": "torch.cat torch.concat torch.concatenate",
        "stack": "torch.stack",
        "hstack": "torch.hstack",
        "vstack": "torch.vstack",
        "getitem": "Tensor.__getitem__",
        "narrow": "torch.narrow Tensor.narrow",
        "select": "torch.select Tensor.select",
        "index_select": "torch.index_select Tensor.index_select",
        "gather": "torch.gather Tensor.gather",
        "take_along_dim": "torch.take_along_dim Tensor.take_along_dim",
        "masked_select": "torch.masked_select Tensor.masked_select",
        "masked_fill": "torch.masked_fill Tensor.masked_fill Tensor.masked_fill_",
        "tril": "torch.tril Tensor.tril Tensor.tril_",
        "triu": "torch.triu Tensor.triu Tensor.triu_",
        "diagonal": "torch.diagonal Tensor.diagonal",
        "unfold": "Tensor.unfold",  # sliding windows: copies
        "im2col": "F.unfold",  # the patches of a convolution: copies
        "repeat_interleave": "torch.repeat_interleave Tensor.repeat_interleave",
        "rot90": "torch.rot90 Tensor.rot90",
        "split": "torch.split Tensor.split",
        "split_with_sizes": "torch.split_with_sizes Tensor.split_with_sizes",
        "tensor_split": "torch.tensor_split Tensor.tensor_split",
        "chunk": "torch.chunk Tensor.chunk",
        "unbind": "torch.unbind Tensor.unbind",
        "flip": "torch.flip Tensor.flip",
        "roll": "torch.roll Tensor.roll",
        "expand": "Tensor.expand",
        "expand_as": "Tensor.expand_as",
        "repeat": "Tensor.repeat",
        "tile": "torch.tile Tensor.tile",
        "contiguous": "Tensor.contiguous",
        "clone": "torch.clone Tensor.clone",
        "to": "Tensor.to",
        "type_as": "Tensor.type_as",
        "float": "Tensor.float",
        "double": "Tensor.double",
        "half": "Tensor.half",
        "bfloat16": "Tensor.bfloat16",
        "pixel_shuffle": "F.pixel_shuffle torch.pixel_shuffle",
        "pixel_unshuffle": "F.pixel_unshuffle torch.pixel_unshuffle",
        "channel_shuffle": "F.channel_shuffle torch.channel_shuffle",
    },
    RESAMPLE: {
        "pad": "F.pad",
        "interpolate": "F.interpolate",
        "upsample": "F.upsample",
        "upsample_nearest": "F.upsample_nearest",
        "upsample_bilinear": "F.upsample_bilinear",
    },
    MATH: {
        "exp": "torch.exp torch.exp_ Tensor.exp Tensor.exp_",
        "exp2": "torch.exp2 torch.exp2_ Tensor.exp2 Tensor.exp2_",
        "expm1": "torch.expm1 torch.expm1_ Tensor.expm1 Tensor.expm1_",
        "log": "torch.log torch.log_ Tensor.log Tensor.log_",
        "log2": "torch.log2 torch.log2_ Tensor.log2 Tensor.log2_",
        "log10": "torch.log10 torch.log10_ Tensor.log10 Tensor.log10_",
        "log1p": "torch.log1p torch.log1p_ Tensor.log1p Tensor.log1p_",
        "pow": "torch.pow Tensor.pow Tensor.pow_ Tensor.__pow__ Tensor.__ipow__ Tensor.__rpow__",
        "sqrt": "torch.sqrt torch.sqrt_ Tensor.sqrt Tensor.sqrt_",
        "rsqrt": "torch.rsqrt torch.rsqrt_ Tensor.rsqrt Tensor.rsqrt_",
        "square": "torch.square torch.square_ Tensor.square Tensor.square_",
        "reciprocal": "torch.reciprocal torch.reciprocal_ Tensor.reciprocal Tensor.reciprocal_",
    },
    FUSED: {
        "lstm": "torch.lstm",
        "gru": "torch.gru",
        "rnn_tanh": "torch.rnn_tanh",
        "rnn_relu": "torch.rnn_relu",
        "lstm_cell": "torch.lstm_cell",
        "gru_cell": "torch.gru_cell",
        "rnn_tanh_cell": "torch.rnn_tanh_cell",
        "rnn_relu_cell": "torch.rnn_relu_cell",
        "multi_head_attention_forward": "F.multi_head_attention_forward",
        "scaled_dot_product_attention": "F.scaled_dot_product_attention",
        "_native_multi_head_attention": "torch._native_multi_head_attention",
        "_transformer_encoder_layer_fwd": "torch._transformer_encoder_layer_fwd",
    },
    AMBIGUOUS: {
        "clamp": "torch.clamp torch.clamp_ torch.clip torch.clip_ Tensor.clamp Tensor.clamp_ Tensor.clip Tensor.clip_",
        "clamp_min": "torch.clamp_min torch.clamp_min_ Tensor.clamp_min Tensor.clamp_min_",
        "clamp_max": "torch.clamp_max torch.clamp_max_ Tensor.clamp_max Tensor.clamp_max_",
        "maximum": "torch.maximum Tensor.maximum",
        "minimum": "torch.minimum Tensor.minimum",
        "fmax": "torch.fmax Tensor.fmax",
        "fmin": "torch.fmin Tensor.fmin",
        "where": "torch.where Tensor.where",
    },
}

# The layer each fused operation implements, and the activations it hides.
_FUSED_LAYERS = {
    "lstm": ("nn.LSTM", "its gates (sigmoid, tanh)"),
    "gru": ("nn.GRU", "its gates (sigmoid, tanh)"),
    "rnn_tanh": ("nn.RNN", "its tanh"),
    "rnn_relu": ("nn.RNN(nonlinearity='relu')", "its ReLU"),
    "lstm_cell": ("nn.LSTMCell", "its gates (sigmoid, tanh)"),
    "gru_cell": ("nn.GRUCell", "its gates (sigmoid, tanh)"),
    "rnn_tanh_cell": ("nn.RNNCell", "its tanh"),
    "rnn_relu_cell": ("nn.RNNCell(nonlinearity='relu')", "its ReLU"),
    "multi_head_attention_forward": ("nn.MultiheadAttention", "its softmax"),
    "scaled_dot_product_attention": ("scaled dot-product attention", "its softmax"),
    "_native_multi_head_attention": ("nn.MultiheadAttention (fast path)", "its softmax"),
    "_transformer_encoder_layer_fwd": ("nn.TransformerEncoderLayer (fast path)", "its softmax and activation"),
}

# Parameters of the linear and convolutional layers in call order, and their defaults: torch's builtins
# (F.conv2d, F.linear, ...) have no Python signature to bind a call against.
_LINEAR_PARAMETERS = ("input", "weight", "bias")
_CONV_PARAMETERS = (*_LINEAR_PARAMETERS, "stride", "padding", "dilation", "groups")
_CONV_TRANSPOSE_PARAMETERS = (*_LINEAR_PARAMETERS, "stride", "padding", "output_padding", "groups", "dilation")
_LAYER_PARAMETERS = {
    "linear": _LINEAR_PARAMETERS,
    **dict.fromkeys(("conv1d", "conv2d", "conv3d"), _CONV_PARAMETERS),
    **dict.fromkeys(("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"), _CONV_TRANSPOSE_PARAMETERS),
}
#: Defaults of the optional arguments of linear and convolutional layers.
CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1}

# torch.dropout and its relatives are builtins taking (input, p, train), all required.
_TORCH_DROPOUT_PARAMETERS = ("input", "p", "train")


@dataclass(frozen=True)
class OpEntry:
    """One spelling of a torch operation.

    Attributes
    ----------
    name : str
        The operation, shared by all its spellings (``"relu"`` for ``F.relu_`` and ``Tensor.relu``).
    category : str
        One of :data:`CATEGORIES`.
    spelling : str
        Where torch offers it, e.g. ``"torch.nn.functional.relu_"``.
    func : callable
        The callable a :class:`~torch.overrides.TorchFunctionMode` receives.
    in_place : bool
        Whether the spelling always works in place (``relu_``, ``__iadd__``); flags such as
        ``inplace=True`` are the call's, not the spelling's.
    out_of_place : callable
        ``func`` itself, or for an in-place spelling the out-of-place one taking the same arguments.
    """

    name: str
    category: str
    spelling: str
    func: Callable
    in_place: bool
    out_of_place: Callable


def _out_of_place_attribute(attribute: str) -> str | None:
    """The out-of-place attribute of an in-place one (``relu_``: ``relu``, ``__iadd__``: ``__add__``)."""
    if attribute.startswith("__i") and attribute.endswith("__"):
        return f"__{attribute[3:]}"
    if attribute.endswith("_") and not attribute.endswith("__"):
        return attribute[:-1]
    return None


def _entries() -> tuple[OpEntry, ...]:
    entries = []
    for category, operations in _CATALOGUE.items():
        for name, spelled in operations.items():
            for spelling in spelled.split():
                prefix, attribute = spelling.split(".", 1)
                namespace, module = _NAMESPACES[prefix]
                func = getattr(namespace, attribute, None)
                if func is None:  # not in this version of torch
                    continue
                partner = _out_of_place_attribute(attribute)
                out_of_place = func if partner is None else getattr(namespace, partner)
                where = f"{module}.{attribute}"
                entries.append(OpEntry(name, category, where, func, partner is not None, out_of_place))
    return tuple(entries)


_ENTRIES = _entries()
_BY_FUNC = {entry.func: entry for entry in reversed(_ENTRIES)}  # the first spelling of a callable names it
_PRESENT = frozenset(entry.name for entry in _ENTRIES)


def entries(category: str | None = None) -> tuple[OpEntry, ...]:
    """Every spelling in the catalogue, or every spelling of the operations of ``category``."""
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    return tuple(entry for entry in _ENTRIES if category in (None, entry.category))


def describe(func) -> str:
    """A readable name of a torch function for messages, e.g. ``Tensor.mul`` or ``torch.nn.functional.softmax``."""
    name = getattr(func, "__name__", None) or repr(func)
    qualname = getattr(func, "__qualname__", "") or ""
    if qualname.startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{name}"
    if (getattr(func, "__module__", "") or "").startswith("torch.nn.functional"):
        return f"torch.nn.functional.{name}"
    return f"torch.{name}"


def is_attribute(func) -> bool:
    """Whether ``func`` is an attribute read such as ``x.T``, ``x.shape`` or ``x.data``: a view or metadata,
    never arithmetic (the catalogue lists callables, not attributes)."""
    return getattr(func, "__name__", None) == "__get__"


def op_of(func) -> OpEntry | None:
    """The catalogue entry of the callable ``func``, or ``None`` if the catalogue does not know it."""
    try:
        return _BY_FUNC.get(func)
    except TypeError:  # unhashable
        return None


def spellings(name: str) -> tuple[OpEntry, ...]:
    """Every spelling of the operation ``name``, e.g. ``spellings("relu")``."""
    return tuple(entry for entry in _ENTRIES if entry.name == name)


def op_names(category: str) -> tuple[str, ...]:
    """The operations of ``category``, in catalogue order."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    return tuple(name for name in _CATALOGUE[category] if name in _PRESENT)


def functions(*categories: str, names=()) -> frozenset:
    """The callables of every spelling of the operations in ``categories`` and of the operations ``names``."""
    unknown = set(categories) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; choose from {', '.join(CATEGORIES)}")
    names = set(names)
    return frozenset(entry.func for entry in _ENTRIES if entry.category in categories or entry.name in names)


@functools.lru_cache(maxsize=None)
def _signature(func) -> inspect.Signature | None:
    """``inspect.signature(func)``, cached (it is slow and asked for at every intercepted call); ``None`` for builtins."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def out_of_place(func, args: tuple, kwargs: dict) -> tuple[Callable, tuple, dict]:
    """The call ``func(*args, **kwargs)`` run out of place: its out-of-place spelling and arguments.

    The input comes first in the returned positional arguments and an ``inplace`` flag is turned off.
    """
    entry = op_of(func)
    base = func if entry is None else entry.out_of_place
    if not args and "input" in kwargs:
        kwargs = dict(kwargs)
        args = (kwargs.pop("input"),)
    signature = _signature(base)
    if signature is None or "inplace" not in signature.parameters:  # builtins take no ``inplace``
        return base, tuple(args), dict(kwargs)
    bound = signature.bind(*args, **kwargs)
    bound.arguments["inplace"] = False
    return base, bound.args, bound.kwargs


@functools.lru_cache(maxsize=None)
def _plain_parameters(func) -> tuple[tuple[str, ...], dict, int] | None:
    """``(names, defaults, positional count)`` of a signature without ``*args``, ``**kwargs`` or positional-only
    parameters, whose calls :func:`bound_arguments` binds without ``inspect``; None for any other."""
    signature = _signature(func)
    if signature is None:
        return None
    kinds = {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
    parameters = signature.parameters.values()
    if any(parameter.kind not in kinds for parameter in parameters):
        return None
    names = tuple(parameter.name for parameter in parameters)
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    positional = sum(parameter.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD for parameter in parameters)
    return names, defaults, positional


def bound_arguments(func, args: tuple, kwargs: dict) -> dict:
    """The arguments of a call of a Python-level function (``F.batch_norm``, ...) by name, defaults filled in.

    In parameter order, as ``inspect.BoundArguments.arguments``; calls of a plain signature are bound
    directly (``Signature.bind`` takes about 30 µs, and the methods ask at every intercepted call).
    """
    plain = _plain_parameters(func)
    if plain is not None:
        names, defaults, positional = plain
        given = {**dict(zip(names, args)), **kwargs}
        if len(args) <= positional and len(given) == len(args) + len(kwargs) and given.keys() <= set(names):
            if all(name in given or name in defaults for name in names):
                return {name: given[name] if name in given else defaults[name] for name in names}
    bound = _signature(func).bind(*args, **kwargs)  # raises the TypeError of a wrong call
    bound.apply_defaults()
    return bound.arguments


def layer_arguments(func, args: tuple, kwargs: dict) -> dict:
    """The arguments of a linear or convolutional call by name, in call order, defaults filled in."""
    parameters = _LAYER_PARAMETERS[op_of(func).name]
    given = {**dict(zip(parameters, args)), **kwargs}
    return {name: given[name] if name in given else CONV_DEFAULTS[name] for name in parameters}


def dropout_arguments(func, args: tuple, kwargs: dict) -> tuple[torch.Tensor, float, bool]:
    """The input, the probability and the training flag of a dropout call, whatever its spelling."""
    signature = _signature(func)
    if signature is None:  # torch.dropout and its relatives
        given = {**dict(zip(_TORCH_DROPOUT_PARAMETERS, args)), **kwargs}
        return given["input"], given["p"], given["train"]
    bound = bound_arguments(func, args, kwargs)
    return bound["input"], bound["p"], bound["training"]


def with_indices(func) -> Callable:
    """The spelling of a max-pooling call that also returns the switches (argmax positions)."""
    name = op_of(func).name
    return getattr(F, name if name.endswith("_with_indices") else f"{name}_with_indices")


def returns_indices(func, args: tuple, kwargs: dict) -> bool:
    """Whether a max-pooling call returns its switches along with its output (a tuple)."""
    if op_of(func).name.endswith("_with_indices"):
        return True
    try:
        bound = _signature(with_indices(func)).bind(*args, **kwargs)
    except TypeError:  # the call itself will say what is wrong with its arguments
        return False
    return bool(bound.arguments.get("return_indices", False))


def fused_message(name: str, method: str) -> str:
    """Why ``method`` cannot explain through the fused operation ``name``, and what to do instead."""
    layer, hidden = _FUSED_LAYERS[name]
    return (
        f"{layer} runs {hidden} inside one fused kernel ({spellings(name)[0].spelling}), so {method} cannot "
        "modify them; build the layer from modules or functional calls (nn.Linear, torch.sigmoid, torch.tanh, "
        "torch.softmax, ...) or use a method that needs only the gradient (e.g. Saliency, IntegratedGradients)"
    )
