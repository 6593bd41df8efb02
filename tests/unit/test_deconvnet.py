"""DeconvNetReconstruction: batching, layer lookup, functional layers, errors and model state."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.deconvnet import DeconvNetReconstruction
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

# A layer of each toy architecture whose path from the input is a chain (residual_bn: stem, BatchNorm,
# in-place ReLU, conv; nested_functional: functional ReLUs, max-pooling and flatten).
CHAINS = [("mnist_cnn", "features.7"), ("nested_functional", "head.fc2"), ("residual_bn", "conv")]


@pytest.mark.parametrize("arch, layer", CHAINS)
@pytest.mark.parametrize("keep", ["all", "max"])
def test_batch_equals_items_one_at_a_time(arch, layer, keep):
    method = DeconvNetReconstruction(ARCHITECTURES[arch](), layer)
    x = mnist_like_batch(3)
    batch = method.reconstruct(x, filter=[5, 0, 3], keep=keep)
    assert batch.shape == x.shape and batch.dtype == x.dtype
    assert batch.abs().sum() > 0
    items = [method.reconstruct(x[i : i + 1], filter=f, keep=keep) for i, f in enumerate([5, 0, 3])]
    torch.testing.assert_close(batch, torch.cat(items))


def test_top_level_name_and_layer_by_module_or_name():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    by_name = nni.DeconvNetReconstruction(model, "features.4").reconstruct(x)
    torch.testing.assert_close(DeconvNetReconstruction(model, model.features[4]).reconstruct(x), by_name)
    method = DeconvNetReconstruction(model, model.features[4])
    assert repr(method) == "DeconvNetReconstruction(MNISTCNN, layer='features.4')"


def test_dtype_and_device_follow_the_inputs():
    model = ARCHITECTURES["mnist_cnn"]().float()
    out = DeconvNetReconstruction(model, "features.4").reconstruct(mnist_like_batch(2, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.device.type == "cpu"


def test_a_container_layer_is_its_last_output():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    torch.testing.assert_close(
        DeconvNetReconstruction(model, "features").reconstruct(x),
        DeconvNetReconstruction(model, "features.7").reconstruct(x),
    )


class FunctionalChain(nn.Module):
    """Conv layers as modules; ReLU, pooling, flatten and input normalisation written in ``forward``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 7 * 7, 10)

    def forward(self, x):
        x = (x - 0.1307) / 0.3081
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x), inplace=True)
        return self.fc(F.max_pool2d(x, 2).view(x.shape[0], -1).relu())


def test_functional_calls_are_mirrored_like_their_modules():
    functional = seeded(FunctionalChain)
    modules = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(), nn.ReLU(),
        nn.Linear(6 * 7 * 7, 10),
    ).double().eval()  # fmt: skip
    for index, original in zip([0, 3, 8], [functional.conv1, functional.conv2, functional.fc]):
        modules[index].load_state_dict(original.state_dict())
    x = mnist_like_batch(3, seed=4)
    normalised = (x - 0.1307) / 0.3081
    torch.testing.assert_close(functional(x), modules(normalised))
    ours = DeconvNetReconstruction(functional, "fc").reconstruct(x, filter=[2, 7, 7])
    # The normalisation's shift is dropped like a bias and its scale is applied on the way back.
    expected = DeconvNetReconstruction(modules, "8").reconstruct(normalised, filter=[2, 7, 7]) / 0.3081
    torch.testing.assert_close(ours, expected)


_PIXELS = torch.linspace(0.5, 2.0, 28 * 28, dtype=torch.float64).view(1, 1, 28, 28)
_SHIFT = torch.full((1, 1, 28, 28), 0.3, dtype=torch.float64)


@pytest.mark.parametrize(
    "prefix, coefficient",
    [
        (lambda x: (x - 0.5) / 0.25, 4.0),
        (lambda x: 2.0 - 3 * x, -3.0),
        (lambda x: torch.add(_SHIFT, x, alpha=2), 2.0),
        (lambda x: torch.sub(_SHIFT, x, alpha=0.5), -0.5),
        (lambda x: x.sub(_SHIFT, alpha=7).mul(_PIXELS), _PIXELS),
    ],
)
def test_arithmetic_with_constants_scales_and_drops_shifts(prefix, coefficient):
    conv = seeded(lambda: nn.Conv2d(1, 3, 3))
    model = nn.Sequential(Lambda(prefix), conv)
    x = mnist_like_batch(2, seed=3)
    expected = DeconvNetReconstruction(conv, conv).reconstruct(prefix(x)) * coefficient
    torch.testing.assert_close(DeconvNetReconstruction(model, "1").reconstruct(x), expected)


def test_model_comes_back_unchanged_and_in_its_mode():
    for arch, layer in CHAINS:
        model = ARCHITECTURES[arch]().train()
        before = _state(model)
        DeconvNetReconstruction(model, layer).reconstruct(mnist_like_batch(2), filter=0)
        assert_same_state(before, _state(model))
        assert all(m.training for m in model.modules())


class Unsupported(nn.Module):
    """One chain, then whichever call ``tail`` adds."""

    def __init__(self, tail):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.tail = tail
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.tail(self.conv(x))


class Lambda(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def _unsupported(tail):
    return lambda seed=0: seeded(lambda: Unsupported(tail), seed)


MODELS = {**ARCHITECTURES, **{
    "upsample": _unsupported(nn.Upsample(scale_factor=2)),
    "relu": _unsupported(nn.ReLU()),
    "sigmoid": _unsupported(nn.Sigmoid()),
    "batch_statistics": _unsupported(nn.BatchNorm2d(3, track_running_stats=False)),
    "mc_dropout": _unsupported(Lambda(lambda x: F.dropout(x, 0.5, training=True))),
    "tuple_layer": _unsupported(Lambda(lambda x: (x, x))),
    "divide_by_path": _unsupported(Lambda(lambda x: 1 / x)),
}}  # fmt: skip


@pytest.mark.parametrize(
    "arch, layer, kwargs, error, match",
    [
        ("mnist_cnn", "features.99", {}, ValueError, "no layer named 'features.99'.*did you mean"),
        ("mnist_cnn", "features.4", {"filter": 20}, ValueError, r"channel index in 0\.\.19 of layer 'features.4'"),
        ("mnist_cnn", "features.4", {"filter": [1, 2, 3]}, ValueError, r"one int per sample \(N = 2\)"),
        ("mnist_cnn", "features.4", {"filter": 1.0}, ValueError, "filter must be an int"),
        ("mnist_cnn", "features.4", {"keep": "top"}, ValueError, "keep must be one of"),
        ("residual_bn", "fc", {}, ValueError, r"add in the forward of ResidualBNNet uses an earlier tensor"),
        ("upsample", "tail", {}, ValueError, r"cannot mirror torch.nn.functional.interpolate in module 'tail' \(Upsample\); supported"),
        ("sigmoid", "tail", {}, ValueError, r"cannot mirror torch.sigmoid in module 'tail' \(Sigmoid\).*rectifies"),
        ("batch_statistics", "tail", {}, ValueError, r"'tail' \(BatchNorm2d\): BatchNorm normalises with the batch"),
        ("mc_dropout", "tail", {}, ValueError, "dropout in training mode is random"),
        ("tuple_layer", "tail", {}, ValueError, "output of layer 'tail' is not the end of the path"),
        ("divide_by_path", "tail", {}, ValueError, r"__rdiv__ in module 'tail' \(Lambda\)"),
        ("relu", "unused", {}, ValueError, "never reached layer 'unused'"),
    ],
)
def test_unsupported_paths_and_bad_arguments_are_clear_errors(arch, layer, kwargs, error, match):
    model = MODELS[arch]()
    before = _state(model)
    with pytest.raises(error, match=match):
        DeconvNetReconstruction(model, layer).reconstruct(mnist_like_batch(2), **kwargs)
    assert_same_state(before, _state(model))


@pytest.mark.parametrize("inputs, error", [(torch.zeros(1, 28, 28, dtype=torch.long), TypeError), ([0.0], TypeError)])
def test_bad_inputs(inputs, error):
    with pytest.raises(error):
        DeconvNetReconstruction(ARCHITECTURES["mnist_cnn"](), "features.0").reconstruct(inputs)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        DeconvNetReconstruction(lambda x: x, "conv")
