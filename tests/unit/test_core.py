"""Target handling, input checks, model borrowing and the method registry."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.core import borrowed, check_inputs, resolve_target, select_target
from toy_models import residual_bn_net

OUTPUT = torch.tensor([[0.1, 0.9, 0.0], [2.0, -1.0, 0.5]])


@pytest.mark.parametrize(
    "target, expected",
    [
        (None, [1, 0]),
        (2, [2, 2]),
        ([0, 2], [0, 2]),
        ((1, 1), [1, 1]),
        (torch.tensor([2, 1]), [2, 1]),
        (torch.tensor(0), [0, 0]),
        (torch.tensor([1, 0], dtype=torch.int32), [1, 0]),
    ],
)
def test_resolve_target_forms(target, expected):
    indices = resolve_target(target, OUTPUT)
    assert indices.dtype == torch.long
    assert indices.tolist() == expected


@pytest.mark.parametrize(
    "target, error, match",
    [
        (3, ValueError, r"out of range.*3 classes"),
        (-1, ValueError, "out of range"),
        ([0, 5], ValueError, r"\[5\] out of range"),
        ([0, 1, 2], ValueError, "3 entries but the batch has N = 2"),
        (torch.tensor([[0, 1]]), ValueError, "1-D tensor"),
        (torch.tensor([0.0, 1.0]), TypeError, "integers"),
        ([0.5, 1], TypeError, "ints only"),
        (True, TypeError, "bool"),
        ("cat", TypeError, "target must be"),
    ],
)
def test_resolve_target_rejects_bad_targets(target, error, match):
    with pytest.raises(error, match=match):
        resolve_target(target, OUTPUT)


def test_select_target_picks_one_score_per_sample():
    assert select_target(OUTPUT, torch.tensor([1, 2])).tolist() == pytest.approx([0.9, 0.5])


@pytest.mark.parametrize(
    "inputs, error, match",
    [
        ([1.0, 2.0], TypeError, "torch.Tensor"),
        (torch.ones(2, 3, dtype=torch.long), TypeError, "floating point"),
        (torch.ones(3), ValueError, "batch-first"),
        (torch.ones(0, 3), ValueError, "empty batch"),
        (torch.tensor([[1.0, float("nan")]]), ValueError, "NaN"),
        (torch.tensor([[1.0, float("inf")]]), ValueError, "infinite"),
    ],
)
def test_check_inputs_names_the_problem(inputs, error, match):
    with pytest.raises(error, match=match):
        check_inputs(inputs)


def _state(model: nn.Module):
    """Everything a method must leave as it was."""
    return {
        "values": {k: v.clone() for k, v in model.state_dict().items()},
        "objects": [id(p) for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks), len(m._backward_pre_hooks))
            for m in model.modules()
        ],
    }


def assert_same_state(before, after):
    assert before["objects"] == after["objects"]
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert before["hooks"] == after["hooks"]
    assert before["values"].keys() == after["values"].keys()
    for key, value in before["values"].items():
        assert torch.equal(value, after["values"][key]), key
    for g0, g1 in zip(before["grads"], after["grads"]):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1)


def _tamper(model, borrow):
    """What a careless method would do to a model."""
    model.fc.register_forward_hook(lambda *args: None)
    model.stem.register_full_backward_hook(lambda *args: None)
    model.conv.register_forward_pre_hook(lambda *args: None)
    borrow.set_training(model.bn1, True)
    borrow.save_parameter_values()
    with torch.no_grad():
        model.fc.weight.mul_(2)
    model.fc.bias = nn.Parameter(torch.zeros(10, dtype=torch.float64))
    model(torch.rand(2, 1, 8, 8, dtype=torch.float64))  # moves bn1's running statistics


def test_borrowed_restores_everything():
    model = residual_bn_net()
    model.fc.weight.requires_grad_(False)
    user_hook = model.conv.register_forward_hook(lambda *args: None)
    before = _state(model)
    with borrowed(model) as borrow:
        assert not any(p.requires_grad for p in model.parameters())
        _tamper(model, borrow)
    assert_same_state(before, _state(model))
    assert user_hook.id in model.conv._forward_hooks


def test_borrowed_restores_when_the_method_raises():
    model = residual_bn_net()
    before = _state(model)
    with pytest.raises(RuntimeError, match="boom"):
        with borrowed(model) as borrow:
            _tamper(model, borrow)
            raise RuntimeError("boom")
    assert_same_state(before, _state(model))


def test_borrowed_enables_gradients_under_no_grad():
    model = residual_bn_net()
    with torch.no_grad(), borrowed(model):
        assert torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_registry_returns_classes_and_instances():
    model = residual_bn_net()
    assert nni.get_method("saliency") is nni.Saliency
    assert isinstance(nni.get_method("Saliency", model), nni.Saliency)
    assert "saliency" in nni.available_methods()


def test_registry_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean saliency"):
        nni.get_method("salency")


def test_set_seed_makes_draws_repeatable():
    nni.set_seed(3)
    first = torch.rand(3)
    nni.set_seed(3)
    assert torch.equal(first, torch.rand(3))


def test_resolve_device_auto_picks_an_available_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert nni.resolve_device("auto").type == expected
    assert nni.resolve_device("cpu") == torch.device("cpu")
