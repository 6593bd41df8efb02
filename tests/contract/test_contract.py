"""The contract of every registered attribution method, on every architecture of ``contract_recipes``.

Each property is one test parametrised over (method × architecture), the methods taken from the
registry (``nni.available_methods()``), so a new method is covered as soon as it has a recipe, and a
method without one fails :func:`test_every_registered_method_has_a_recipe`. Pairs a recipe marks as
not applicable are skipped with the recipe's reason and checked to be refused clearly.

The properties: a batch equals its items one at a time; ``target=None`` is the model's prediction;
dtype and device follow the inputs; the model comes back bit-identical after success and after an
error; the input tensor is untouched; ``with_model`` explains the other model (inner methods rebound);
the declared capabilities (``takes_baselines``, ``has_convergence_delta``, ``needs_gradients``) hold.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.core.base import BatchCoupledWarning

from contract_recipes import (
    ARCHITECTURES,
    RECIPES,
    build,
    forget,
    inputs,
    layer,
    model,
    per_call,
    registry_name,
)

N = 2
TARGETS = [1, 9]  # per-sample targets of the batch of N = 2
CUDA = torch.cuda.is_available()


# --------------------------------------------------------------------------------------------------
# Parametrisation
# --------------------------------------------------------------------------------------------------


def _pairs(test: str):
    """Every applicable (method, architecture); the others are :func:`test_not_applicable_pairs_are_refused_clearly`."""
    params = []
    for key, recipe in RECIPES.items():
        for arch in ARCHITECTURES:
            if arch in recipe.not_applicable:
                continue
            marks = []
            if (test, arch) in recipe.xfail:
                marks.append(pytest.mark.xfail(strict=True, reason=recipe.xfail[(test, arch)]))
            params.append(pytest.param(key, arch, marks=marks, id=f"{key}-{arch}"))
    return params


def pairs(func):
    return pytest.mark.parametrize("key, arch", _pairs(func.__name__))(func)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

_REFERENCE: dict[tuple[str, str], torch.Tensor] = {}


def attribute(method, key: str, arch: str, x: torch.Tensor, target=None, **kwargs):
    return method.attribute(x, target=target, **per_call(key, arch), **kwargs)


def reference(key: str, arch: str) -> torch.Tensor:
    """The maps of ``inputs(arch)`` for ``TARGETS`` on the seed-0 model (cached: several tests compare with it)."""
    if (key, arch) not in _REFERENCE:
        maps = attribute(build(key, model(arch), arch), key, arch, inputs(arch, N), target=TARGETS)
        assert isinstance(maps, torch.Tensor), f"{key} returned {type(maps).__name__}"
        _REFERENCE[key, arch] = maps
    return _REFERENCE[key, arch]


def assert_float64_close(actual, expected, **kwargs):
    torch.testing.assert_close(actual, expected, rtol=1e-7, atol=1e-9, **kwargs)


HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def snapshot(model: nn.Module) -> dict:
    """Everything a method must give back as it was: objects, values, flags, ``.grad`` and hooks."""
    return {
        "parameters": [
            (name, p, p.detach().clone(), p.requires_grad, p.grad, None if p.grad is None else p.grad.clone())
            for name, p in model.named_parameters(remove_duplicate=False)
        ],
        "buffers": [(name, b, b.clone()) for name, b in model.named_buffers(remove_duplicate=False)],
        "training": [(name, m.training) for name, m in model.named_modules()],
        "hooks": [
            (
                name,
                {attr: list(getattr(m, attr).items()) for attr in HOOK_DICTS if hasattr(m, attr)},
                getattr(m, "_is_full_backward_hook", None),
            )
            for name, m in model.named_modules()
        ],
        "grad_enabled": torch.is_grad_enabled(),
    }


def assert_same_state(before: dict, after: dict) -> None:
    assert [p[0] for p in before["parameters"]] == [p[0] for p in after["parameters"]]
    for (name, p0, v0, rg0, g0, gv0), (_, p1, v1, rg1, g1, gv1) in zip(before["parameters"], after["parameters"]):
        assert p1 is p0, f"parameter {name} was replaced"
        assert torch.equal(v0, v1), f"parameter {name} changed value"
        assert rg0 == rg1, f"parameter {name}: requires_grad {rg0} -> {rg1}"
        assert g1 is g0, f"parameter {name}: .grad is another object ({g0 is None and 'None' or 'a tensor'} before)"
        assert gv0 is None or torch.equal(gv0, gv1), f"parameter {name}: .grad changed value"
    assert [b[0] for b in before["buffers"]] == [b[0] for b in after["buffers"]]
    for (name, b0, v0), (_, b1, v1) in zip(before["buffers"], after["buffers"]):
        assert b1 is b0, f"buffer {name} was replaced"
        assert torch.equal(v0, v1), f"buffer {name} changed value"
    changed = [(name, t0, t1) for (name, t0), (_, t1) in zip(before["training"], after["training"]) if t0 != t1]
    assert before["training"] == after["training"], f"training flags changed (module, before, after): {changed}"
    for (name, hooks0, full0), (_, hooks1, full1) in zip(before["hooks"], after["hooks"]):
        for attr in hooks0.keys() | hooks1.keys():
            ids0, ids1 = hooks0.get(attr, []), hooks1.get(attr, [])
            assert ids0 == ids1, f"module {name!r}: {attr} changed from {ids0} to {ids1}"
        assert full0 == full1, f"module {name!r}: _is_full_backward_hook {full0} -> {full1}"
    assert before["grad_enabled"] == after["grad_enabled"]


def _noop(*args):
    return None


class UserState:
    """What a user may have on the model: a ``.grad``, a frozen parameter, hooks, mixed training flags."""

    def __init__(self, net: nn.Module, arch: str):
        self.net = net
        self.parameters = list(net.parameters())
        self.first, self.frozen = self.parameters[0], self.parameters[-1]
        self.first.grad = torch.full_like(self.first, 0.5)
        self.frozen.requires_grad_(False)
        middle, last = layer(net, ARCHITECTURES[arch].middle), layer(net, ARCHITECTURES[arch].last)
        self.handles = [
            middle.register_forward_hook(_noop),
            middle.register_forward_pre_hook(_noop),
            last.register_full_backward_hook(_noop),
        ]
        # A flag that changes no computation, so that restoring "eval()" or "train()" wholesale shows.
        net.training = True
        last.training = True

    def add(self, handle):
        self.handles.append(handle)

    def undo(self):
        for handle in self.handles:
            handle.remove()
        self.first.grad = None
        self.frozen.requires_grad_(True)
        self.net.eval()


def run_on_cached_model(key: str, arch: str, body, train: bool = False):
    """``body(method, net, user)`` on the cached model with a user's state; undone afterwards.

    A failure drops the cached model, so that a model a method did not give back cannot leak into
    other tests.
    """
    net = model(arch)
    user = UserState(net, arch)
    if train:
        net.train()
    ok = False
    try:
        body(build(key, net, arch), net, user)
        ok = True
    finally:
        user.undo()
        if not ok:
            forget(arch)


def exception_chain(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


class Boom(Exception):
    """Raised by the test's own hook in the middle of the model's forward pass."""


def _raise_boom(*args):
    raise Boom("the model failed partway through its forward pass")


def modules_of(method) -> list[tuple[str, object]]:
    """Every Attribution and module (with its path) reachable from ``method`` through attributes and containers."""
    found, stack = [], [("method", method)]
    while stack:
        path, obj = stack.pop()
        if isinstance(obj, nni.Attribution):
            found.append((path, obj))
            stack.extend((f"{path}.{k}", v) for k, v in vars(obj).items() if k != "model")
        elif isinstance(obj, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj))
        elif isinstance(obj, dict):
            stack.extend((f"{path}[{k!r}]", v) for k, v in obj.items())
        elif isinstance(obj, nn.Module):
            found.append((path, obj))
    return found


# --------------------------------------------------------------------------------------------------
# The registry and the recipes
# --------------------------------------------------------------------------------------------------


def test_every_registered_method_has_a_recipe():
    missing = sorted(set(nni.available_methods()) - {registry_name(key) for key in RECIPES})
    assert not missing, f"registered methods without a contract recipe in tests/contract/contract_recipes.py: {missing}"


def test_every_recipe_names_a_registered_method():
    stale = sorted(key for key in RECIPES if registry_name(key) not in nni.available_methods())
    assert not stale, f"recipes for names the registry does not have: {stale}"


def test_not_applicable_pairs_give_a_reason_for_known_architectures():
    for key, recipe in RECIPES.items():
        for arch, entry in recipe.not_applicable.items():
            assert arch in ARCHITECTURES, f"{key}: unknown architecture {arch!r}"
            assert entry.reason.strip(), f"{key} on {arch}: not applicable without a reason"
        assert len(recipe.not_applicable) < len(ARCHITECTURES), f"{key} applies to no architecture"


_NOT_APPLICABLE = [
    pytest.param(
        key,
        arch,
        id=f"{key}-{arch}",
        marks=[pytest.mark.skip(reason=f"{key} on {arch}: {entry.reason}")] if entry.attempt is None else [],
    )
    for key, recipe in RECIPES.items()
    for arch, entry in recipe.not_applicable.items()
]


@pytest.mark.parametrize("key, arch", _NOT_APPLICABLE)
def test_not_applicable_pairs_are_refused_clearly(key, arch):
    """The pairs the property tests leave out (``Recipe.not_applicable``): the method must refuse them."""
    entry = RECIPES[key].not_applicable[arch]
    net = model(arch)
    before = snapshot(net)
    with pytest.raises(entry.error, match=entry.match):
        entry.attempt(net, inputs(arch, 2))
    assert_same_state(before, snapshot(net))


@pytest.mark.parametrize("key", list(RECIPES))
def test_capabilities_are_declared(key):
    arch = next(a for a in ARCHITECTURES if a not in RECIPES[key].not_applicable)
    method = build(key, model(arch), arch)
    assert isinstance(method, nni.Attribution)
    for flag in ("takes_baselines", "has_convergence_delta", "multiplies_by_inputs", "needs_gradients", "stochastic"):
        assert isinstance(getattr(method, flag), bool), f"{key}.{flag} = {getattr(method, flag)!r}"
    assert isinstance(method.min_input_dim, int) and method.min_input_dim >= 2


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------


@pairs
def test_batch_equals_items_one_at_a_time(key, arch):
    batch = reference(key, arch)
    x = inputs(arch, N)
    assert batch.shape[0] == N
    method = build(key, model(arch), arch)
    if method.stochastic:
        # A seeded stochastic method draws its noise (SmoothGrad) or masks (LIME) for the whole batch
        # from one generator started afresh per call: item i alone gets other draws than in the batch.
        # Its contract is that identical calls give identical maps; the unit tests compare batch and
        # items with the same explicit noise/masks.
        assert torch.equal(attribute(method, key, arch, x, target=TARGETS), batch)
        return
    items = torch.cat([attribute(method, key, arch, x[i : i + 1], target=t) for i, t in enumerate(TARGETS)])
    assert_float64_close(batch, items)


@pairs
def test_batch_equals_items_with_per_sample_baselines_and_deltas(key, arch):
    method = build(key, model(arch), arch)
    if method.stochastic or not (method.takes_baselines or method.has_convergence_delta):
        pytest.skip("deterministic methods with baselines or a convergence delta only")
    x = inputs(arch, N)
    extra = {"return_convergence_delta": True} if method.has_convergence_delta else {}
    baselines = inputs(arch, N, seed=5) * 0.5 if method.takes_baselines else None

    def call(i=None):
        rows = slice(None) if i is None else slice(i, i + 1)
        target = TARGETS if i is None else TARGETS[i]
        if baselines is not None:
            extra["baselines"] = baselines[rows]
        result = attribute(method, key, arch, x[rows], target=target, **extra)
        return result if isinstance(result, tuple) else (result,)

    batch = call()
    items = [call(i) for i in range(N)]
    for position, part in enumerate(batch):
        assert_float64_close(part, torch.cat([item[position] for item in items]))


@pairs
def test_default_target_is_the_prediction(key, arch):
    net = model(arch)
    x = inputs(arch, N, seed=1)
    with torch.no_grad():
        predicted = net(x).argmax(1)
    method = build(key, net, arch)
    assert_float64_close(attribute(method, key, arch, x), attribute(method, key, arch, x, target=predicted))


@pairs
def test_repeated_calls_give_the_same_maps(key, arch):
    method = build(key, model(arch), arch)
    assert torch.equal(attribute(method, key, arch, inputs(arch, N), target=TARGETS), reference(key, arch))


@pytest.mark.parametrize(
    "dtype, device",
    [
        pytest.param(torch.float64, "cpu", id="float64-cpu"),
        pytest.param(torch.float32, "cpu", id="float32-cpu"),
        pytest.param(torch.float64, "cuda", id="float64-cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device")),
        pytest.param(torch.float32, "cuda", id="float32-cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device")),
    ],
)
@pairs
def test_dtype_and_device_follow_the_inputs(key, arch, dtype, device):
    if dtype == torch.float64 and device == "cpu":
        maps = reference(key, arch)
        x = inputs(arch, N)
        method = build(key, model(arch), arch)
    else:
        net = model(arch, dtype=dtype, device=device)
        x = inputs(arch, N, dtype=dtype).to(device)
        method = build(key, net, arch)
        maps = attribute(method, key, arch, x, target=TARGETS)
    assert maps.shape[0] == N and maps.dtype == dtype and maps.device == x.device
    assert torch.isfinite(maps).all()
    if method.has_convergence_delta:
        _, delta = attribute(method, key, arch, x, target=TARGETS, return_convergence_delta=True)
        assert delta.dtype == dtype and delta.device == x.device


@pairs
def test_model_comes_back_unchanged(key, arch):
    def body(method, net, user):
        before = snapshot(net)
        attribute(method, key, arch, inputs(arch, 2), target=[0, 3])
        assert_same_state(before, snapshot(net))
        assert torch.equal(user.first.grad, torch.full_like(user.first, 0.5))

    run_on_cached_model(key, arch, body)


@pairs
def test_model_in_train_mode_comes_back_unchanged_whether_the_method_runs_or_refuses(key, arch):
    # Train mode: BatchNorm statistics would move; DeepLIFT and LRP refuse BatchNorm in train mode.
    def body(method, net, user):
        before = snapshot(net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BatchCoupledWarning)
            try:
                attribute(method, key, arch, inputs(arch, 2), target=[0, 3])
            except ValueError as error:
                assert "train" in str(error) or "eval()" in str(error), error
        assert_same_state(before, snapshot(net))

    run_on_cached_model(key, arch, body, train=True)


@pairs
def test_model_comes_back_unchanged_when_the_target_is_out_of_range(key, arch):
    def body(method, net, user):
        before = snapshot(net)
        with pytest.raises(ValueError, match="out of range"):
            attribute(method, key, arch, inputs(arch, 2), target=[0, 99])
        assert_same_state(before, snapshot(net))

    run_on_cached_model(key, arch, body)


@pairs
def test_model_comes_back_unchanged_when_the_forward_raises_partway(key, arch):
    def body(method, net, user):
        user.add(layer(net, ARCHITECTURES[arch].middle).register_forward_hook(_raise_boom))
        before = snapshot(net)
        with pytest.raises(Exception) as caught:
            attribute(method, key, arch, inputs(arch, 2), target=[0, 3])
        assert any(isinstance(e, Boom) for e in exception_chain(caught.value)), caught.value
        assert_same_state(before, snapshot(net))

    run_on_cached_model(key, arch, body)


@pairs
def test_input_tensor_is_untouched(key, arch):
    x = inputs(arch, 2)
    values, version = x.clone(), x._version
    attribute(build(key, model(arch), arch), key, arch, x, target=[0, 3])
    assert torch.equal(x, values) and x._version == version
    assert not x.requires_grad and x.grad is None and x.grad_fn is None


@pairs
def test_with_model_explains_the_other_model(key, arch):
    first, other = model(arch), model(arch, seed=1)
    method = build(key, first, arch)
    moved = method.with_model(other)
    assert moved.model is other and method.model is first
    # Every method and module inside the copy belongs to the other model; the original is untouched.
    others = set(map(id, other.modules()))
    for path, obj in modules_of(moved):
        owner = obj.model if isinstance(obj, nni.Attribution) else obj
        assert id(owner) in others, f"{path} of {key}.with_model(other) still refers to the first model"
    firsts = set(map(id, first.modules()))
    for path, obj in modules_of(method):
        owner = obj.model if isinstance(obj, nni.Attribution) else obj
        assert id(owner) in firsts, f"{path} of the original {key} was rebound by with_model"
    x = inputs(arch, N)
    expected = attribute(build(key, other, arch), key, arch, x, target=TARGETS)
    assert_float64_close(attribute(moved, key, arch, x, target=TARGETS), expected)


@pairs
def test_takes_baselines_is_declared_truthfully(key, arch):
    method = build(key, model(arch), arch)
    x = inputs(arch, N)
    if method.takes_baselines:
        # Every recipe's default baseline is the number 0.0 (SimpleTaylor is built with baselines=0.0).
        assert_float64_close(attribute(method, key, arch, x, target=TARGETS, baselines=0.0), reference(key, arch))
        # ... and the baseline is used: another one gives other maps.
        assert not torch.allclose(attribute(method, key, arch, x, target=TARGETS, baselines=0.5), reference(key, arch))
    else:
        with pytest.raises(TypeError):
            attribute(method, key, arch, x, target=TARGETS, baselines=0.0)


@pairs
def test_has_convergence_delta_is_declared_truthfully(key, arch):
    method = build(key, model(arch), arch)
    x = inputs(arch, N)
    if method.has_convergence_delta:
        result = attribute(method, key, arch, x, target=TARGETS, return_convergence_delta=True)
        assert isinstance(result, tuple) and len(result) == 2
        maps, delta = result
        assert delta.shape == (N,) and delta.dtype == x.dtype and torch.isfinite(delta).all()
        assert_float64_close(maps, reference(key, arch))
    else:
        with pytest.raises(TypeError, match="convergence delta"):
            attribute(method, key, arch, x, target=TARGETS, return_convergence_delta=True)


@pairs
def test_inference_mode_is_refused_exactly_when_the_method_needs_gradients(key, arch):
    method = build(key, model(arch), arch)
    x = inputs(arch, N)
    if method.needs_gradients:
        with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
            attribute(method, key, arch, x, target=TARGETS)
    else:
        with torch.inference_mode():
            maps = attribute(method, key, arch, x, target=TARGETS)
        assert_float64_close(maps, reference(key, arch))


@pairs
def test_multiple_inputs_is_declared_truthfully(key, arch):
    method = build(key, model(arch), arch)
    x = inputs(arch, N)
    if method.multiple_inputs:
        # A tuple of one input gives a tuple of one map, equal to the plain call; per-input settings
        # (occlusion's windows and strides) become tuples of one.
        settings = {k: (v,) if k in ("sliding_window_shapes", "strides") else v for k, v in per_call(key, arch).items()}
        maps = method.attribute((x,), target=TARGETS, **settings)
        assert isinstance(maps, tuple) and len(maps) == 1
        assert_float64_close(maps[0], reference(key, arch))
    else:
        with pytest.raises(TypeError, match="explains one input tensor"):
            attribute(method, key, arch, (x,), target=TARGETS)
