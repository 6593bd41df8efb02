"""The operation catalogue knows every spelling torch offers of each operation it names."""
import inspect

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import get_overridable_functions, get_testing_overrides

from nn_interpretability.core import ops
from nn_interpretability.core.activations import ACTIVATIONS, intercept_activations

NAMESPACES = {"torch": torch, "torch.nn.functional": F, "torch.Tensor": torch.Tensor}
# Named like a catalogued operation but something else: Tensor.__float__ converts to a Python number.
NOT_OPERATIONS = {"__float__"}


def _base(attribute: str) -> str:
    """``relu`` for ``relu_``, ``add`` for ``__iadd__`` and ``__radd__``, ``getitem`` for ``__getitem__``."""
    if attribute.startswith("__") and attribute.endswith("__"):
        core = attribute[2:-2]
        return core[1:] if core[:1] in "ir" and hasattr(torch.Tensor, f"__{core[1:]}__") else core
    return attribute[:-1] if attribute.endswith("_") and not attribute.startswith("_") else attribute


def _variants() -> dict[str, str]:
    """Every name an operation of the catalogue goes by (its own, in place, dunder) -> the category.

    The names are those of the operations and the bases of their spellings (``relu6``, ``truediv``, ...).
    """
    bases: dict[str, set] = {}
    for entry in ops.entries():
        bases.setdefault(entry.name, set()).add(entry.category)
        bases.setdefault(_base(entry.spelling.rsplit(".", 1)[1]), set()).add(entry.category)
    assert all(len(categories) == 1 for categories in bases.values()), bases
    return {
        variant: category
        for base, (category,) in bases.items()
        for variant in (base, f"{base}_", f"__{base}__", f"__i{base}__", f"__r{base}__")
    }


def _named_spellings(variants: dict[str, str]) -> list[tuple[str, object, str]]:
    """``(spelling, callable, category)`` of every callable of torch, F and Tensor with such a name."""
    found = []
    for prefix, namespace in NAMESPACES.items():
        for attribute in dir(namespace):
            func = getattr(namespace, attribute)
            if attribute in variants and attribute not in NOT_OPERATIONS and callable(func):
                found.append((f"{prefix}.{attribute}", func, variants[attribute]))
    return found


def test_every_spelling_torch_offers_is_catalogued_with_its_category():
    wrong = []
    for spelling, func, category in _named_spellings(_variants()):
        entry = ops.op_of(func)
        if entry is None or entry.category != category:
            wrong.append((spelling, category, entry and entry.category))
    assert wrong == []


def test_those_spellings_include_every_overridable_function_of_those_names():
    variants = _variants()
    checked = {func for _, func, _ in _named_spellings(variants)}
    overridable = [f for functions in get_overridable_functions().values() for f in functions]
    overridable += list(get_testing_overrides())
    # torch.distributed's collectives (gather, ...) share names with operations but are none.
    named = [
        f for f in overridable
        if getattr(f, "__name__", None) in set(variants) - NOT_OPERATIONS
        and not (getattr(f, "__module__", None) or "").startswith("torch.distributed")
    ]
    assert named and [f for f in named if f not in checked] == []


def test_the_catalogue_covers_the_operations_the_interceptors_need():
    needed = {
        ops.ACTIVATION: {"relu", "leaky_relu", "hardtanh", "sigmoid", "tanh", "softplus", "elu", "selu", "celu",
                         "gelu", "silu", "hardswish", "hardsigmoid", "mish", "threshold", "prelu"},
        ops.DROPOUT: {"dropout", "dropout1d", "dropout2d", "dropout3d", "feature_dropout", "alpha_dropout",
                      "feature_alpha_dropout"},
        ops.LINEAR: {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d"},
        ops.NORMALIZATION: {"batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm"},
        ops.ARITHMETIC: {"add", "sub", "rsub", "mul", "div", "rdiv", "neg"},
        ops.RESHAPE: {"view", "reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze", "cat", "stack",
                      "getitem", "expand", "contiguous"},
        ops.FUSED: {"lstm", "gru", "rnn_tanh", "rnn_relu", "multi_head_attention_forward",
                    "scaled_dot_product_attention"},
        ops.AMBIGUOUS: {"clamp", "clamp_min", "maximum", "where"},
    }  # fmt: skip
    for category, names in needed.items():
        assert names <= set(ops.op_names(category)), category
    for pool in ("max_pool", "adaptive_max_pool", "avg_pool", "adaptive_avg_pool"):
        category = ops.MAX_POOL if "max" in pool else ops.AVG_POOL
        assert {f"{pool}{d}d" for d in (1, 2, 3)} <= set(ops.op_names(category))
    spelled = {entry.spelling for entry in ops.entries()}
    in_place = {"torch.dropout_", "torch.feature_dropout_", "torch.alpha_dropout_", "torch.feature_alpha_dropout_"}
    assert in_place <= spelled
    assert {"torch.Tensor.__add__", "torch.Tensor.__radd__", "torch.Tensor.__iadd__"} <= spelled


def test_every_entry_is_what_its_spelling_names():
    for entry in ops.entries():
        module, attribute = entry.spelling.rsplit(".", 1)
        assert getattr(NAMESPACES[module], attribute) is entry.func
        assert entry.category in ops.CATEGORIES
        canonical = ops.op_of(entry.out_of_place)
        assert canonical.name == entry.name and not canonical.in_place, entry.spelling
        assert entry.in_place == (entry.out_of_place is not entry.func), entry.spelling


def test_op_of():
    entry = ops.op_of(F.relu_)
    assert (entry.name, entry.category, entry.in_place, entry.out_of_place) == ("relu", ops.ACTIVATION, True, F.relu)
    assert ops.op_of(torch.Tensor.__iadd__).out_of_place is torch.Tensor.__add__
    assert ops.op_of(torch.relu).in_place is False and ops.op_of(torch.relu).out_of_place is torch.relu
    assert ops.op_of(F.relu6).name == "hardtanh"
    assert ops.op_of(torch.conv2d) is ops.op_of(F.conv2d)  # one callable, two spellings
    assert ops.op_of(torch.adaptive_max_pool1d).name == "adaptive_max_pool1d_with_indices"  # returns the switches
    assert ops.op_of(lambda t: t) is None and ops.op_of(torch.Tensor.abs) is None


def test_spellings_and_functions():
    assert {e.spelling for e in ops.spellings("relu")} == {
        "torch.nn.functional.relu", "torch.nn.functional.relu_", "torch.relu", "torch.relu_",
        "torch.Tensor.relu", "torch.Tensor.relu_",
    }  # fmt: skip
    assert ops.spellings("no_such_op") == ()
    dropout = ops.functions(ops.DROPOUT)
    assert {F.dropout, torch.dropout, torch.dropout_, torch.feature_dropout, F.alpha_dropout} <= dropout
    assert F.relu not in dropout
    assert ops.functions(names=("mul",)) >= {torch.mul, torch.Tensor.__rmul__, torch.Tensor.mul_, torch.multiply}
    assert ops.functions(ops.FUSED, names=("relu",)) >= {torch.lstm, F.relu}
    with pytest.raises(ValueError, match="unknown categories"):
        ops.functions("activations")
    with pytest.raises(ValueError, match="unknown category"):
        ops.op_names("activations")
    assert {e.category for e in ops.entries(ops.FUSED)} == {ops.FUSED} and len(ops.entries()) > 300


def test_out_of_place():
    x = torch.randn(5)
    func, args, kwargs = ops.out_of_place(F.relu, (x,), {"inplace": True})
    assert func is F.relu and torch.equal(func(*args, **kwargs), x.relu()) and not (x >= 0).all()
    func, args, kwargs = ops.out_of_place(torch.Tensor.add_, (x, 1.0), {"alpha": 2})
    assert func is torch.Tensor.add and torch.equal(func(*args, **kwargs), x + 2.0)
    func, args, _ = ops.out_of_place(torch.sigmoid, (), {"input": x})
    assert func is torch.sigmoid and args == (x,)


def test_layer_arguments_fill_in_the_defaults():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    assert ops.layer_arguments(F.conv2d, (x, w), {"padding": 1}) == {
        "input": x, "weight": w, "bias": None, "stride": 1, "padding": 1, "dilation": 1, "groups": 1,
    }  # fmt: skip
    arguments = ops.layer_arguments(torch.conv_transpose2d, (x, w.transpose(0, 1), None, 2), {})
    assert list(arguments) == ["input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"]
    assert arguments["stride"] == 2 and arguments["output_padding"] == 0
    assert list(ops.layer_arguments(F.linear, (x, w), {})) == ["input", "weight", "bias"]


def test_dropout_arguments_for_every_spelling():
    x = torch.randn(2, 3, 4)
    for entry in ops.spellings("dropout") + ops.spellings("feature_alpha_dropout"):
        assert ops.dropout_arguments(entry.func, (x, 0.25, True), {}) == (x, 0.25, True)
    assert ops.dropout_arguments(F.dropout, (x,), {}) == (x, 0.5, True)
    assert ops.dropout_arguments(F.alpha_dropout, (x,), {}) == (x, 0.5, False)
    assert ops.dropout_arguments(torch.dropout, (x,), {"p": 0.2, "train": False}) == (x, 0.2, False)


def test_max_pooling_switches():
    x = torch.randn(1, 1, 4, 4)
    assert ops.with_indices(torch.max_pool2d) is F.max_pool2d_with_indices
    assert ops.with_indices(F.max_pool2d_with_indices) is F.max_pool2d_with_indices
    assert ops.with_indices(torch.adaptive_max_pool1d) is F.adaptive_max_pool1d_with_indices
    assert not ops.returns_indices(F.max_pool2d, (x, 2), {})
    assert ops.returns_indices(F.max_pool2d, (x, 2), {"return_indices": True})
    assert ops.returns_indices(F.adaptive_max_pool2d, (x, 2, True), {})  # positional
    assert ops.returns_indices(F.max_pool2d_with_indices, (x, 2), {})
    assert ops.returns_indices(torch.adaptive_max_pool1d, (x[0], 2), {})


def test_every_fused_operation_has_a_message():
    for name in ops.op_names(ops.FUSED):
        assert "Saliency" in ops.fused_message(name, "GuidedBackprop")
    message = ops.fused_message("lstm", "GuidedBackprop")
    assert message.startswith("nn.LSTM runs its gates") and "(torch.lstm)" in message and "GuidedBackprop" in message


# Arguments besides the input for activations that need them.
_ARGUMENTS = {"threshold": (0.1, -1.0), "prelu": (torch.tensor([0.25]),)}


@pytest.mark.parametrize("entry", ops.entries(ops.ACTIVATION), ids=lambda e: e.spelling)
def test_every_activation_spelling_is_intercepted(entry):
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    rest = _ARGUMENTS.get(entry.name, ())
    seen = []

    def handler(name, inputs, call):
        seen.append(name)
        return call(inputs)

    with intercept_activations(handler):
        inputs = x.clone()
        output = entry.func(inputs, *rest)
    assert seen == [entry.name] and entry.name in ACTIVATIONS
    torch.testing.assert_close(output, entry.out_of_place(x.clone(), *rest))
    torch.testing.assert_close(inputs, x)  # in-place spellings run out of place


@pytest.mark.parametrize(
    "func, args, kwargs",
    [
        (F.dropout, (0.1,), {"training": False}),
        (F.layer_norm, ((3,),), {"eps": 1e-3}),
        (F.batch_norm, (None, None), {"training": True}),
        (F.softmax, (), {"dim": 1}),
        (F.group_norm, (1,), {}),
    ],
)
def test_bound_arguments_equal_inspect_binding_in_order_and_values(func, args, kwargs):
    x = torch.rand(2, 3)
    reference = inspect.signature(func).bind(x, *args, **kwargs)
    reference.apply_defaults()
    bound = ops.bound_arguments(func, (x, *args), kwargs)
    assert list(bound) == list(reference.arguments)
    assert all(bound[name] is value for name, value in reference.arguments.items())


def test_bound_arguments_raise_on_a_wrong_call_as_inspect_does():
    x = torch.rand(2, 3)
    with pytest.raises(TypeError):
        ops.bound_arguments(F.dropout, (x, 0.1), {"p": 0.2})  # p twice
    with pytest.raises(TypeError):
        ops.bound_arguments(F.layer_norm, (x,), {})  # normalized_shape missing
