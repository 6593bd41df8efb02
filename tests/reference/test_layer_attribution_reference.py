"""Layer and neuron attribution against Captum 0.9 on seeded float64 models: a dense MLP, the MNIST CNN,
a residual layer (the skip path bypasses it) and torchvision's ResNet-18 at 16 x 16."""
import pytest
import torch
import torchvision
from captum import attr as captum
from torch import nn

import nn_interpretability as nni
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


def _dense():
    return seeded(lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10)), seed=1)


def _rand(*shape, seed=1):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# name -> (model, inputs, layer, neuron index, targets)
CASES = {
    "dense": (_dense, lambda: _rand(3, 12), "2", (5,), [0, 4, 7]),
    "mnist_cnn": (lambda: ARCHITECTURES["mnist_cnn"](1), lambda: mnist_like_batch(2, seed=1), "features.5", (3, 4, 5), [2, 8]),
    "residual": (lambda: ARCHITECTURES["residual_bn"](1), lambda: mnist_like_batch(3, seed=1), "conv", (2, 3, 4), [0, 4, 7]),
    "resnet18": (
        lambda: seeded(lambda: torchvision.models.resnet18(weights=None, num_classes=10), seed=0),
        lambda: _rand(2, 3, 16, 16),
        "layer2",
        (7, 1, 0),
        [1, 9],
    ),
}

_MODELS = {}


def case(name):
    if name not in _MODELS:
        build, inputs, layer, neuron, target = CASES[name]
        model = build()
        _MODELS[name] = (model, inputs(), layer, dict(model.named_modules())[layer], neuron, torch.tensor(target))
    return _MODELS[name]


def baselines_for(x):
    return _rand(*x.shape, seed=7) * 0.5


def assert_equal_to_captum(ours, theirs):
    """rtol 1e-6; atol 1e-8 of the largest value: Captum's Riemann points come from a float32 linspace (off by ~1e-8)."""
    theirs = theirs.detach()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8 * max(1.0, float(theirs.abs().max())))


def _slice_selector(neuron):
    """A callable neuron selector summing a slice around ``neuron`` (Captum's convention: (N,) per call)."""
    channel = neuron[0]
    return lambda value: value[:, channel : channel + 2].flatten(1).sum(1)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("to_input", [False, True])
def test_layer_activation(name, to_input):
    model, x, layer, module, _, target = case(name)
    ours = nni.LayerActivation(model, layer).attribute(x, target, attribute_to_layer_input=to_input)
    assert_equal_to_captum(ours, captum.LayerActivation(model, module).attribute(x, attribute_to_layer_input=to_input))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("multiply, to_input", [(True, False), (False, False), (True, True)])
def test_layer_gradient_x_activation(name, multiply, to_input):
    model, x, layer, module, _, target = case(name)
    ours = nni.LayerGradientXActivation(model, layer, multiply_by_inputs=multiply).attribute(
        x, target, attribute_to_layer_input=to_input
    )
    theirs = captum.LayerGradientXActivation(model, module, multiply_by_inputs=multiply).attribute(
        x, target, attribute_to_layer_input=to_input
    )
    assert_equal_to_captum(ours, theirs)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(
    "method, internal_batch_size, to_input",
    [("gausslegendre", None, False), ("riemann_trapezoid", 4, False), ("riemann_left", None, True)],
)
def test_layer_integrated_gradients(name, method, internal_batch_size, to_input):
    model, x, layer, module, _, target = case(name)
    b = baselines_for(x)
    ours, delta = nni.LayerIntegratedGradients(model, layer).attribute(
        x, target, baselines=b, n_steps=5, method=method, internal_batch_size=internal_batch_size,
        return_convergence_delta=True, attribute_to_layer_input=to_input,
    )  # fmt: skip
    theirs, their_delta = captum.LayerIntegratedGradients(model, module).attribute(
        x, b, target=target, n_steps=5, method=method, return_convergence_delta=True, attribute_to_layer_input=to_input
    )
    assert_equal_to_captum(ours, theirs)
    assert_equal_to_captum(delta, their_delta)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method, internal_batch_size", [("gausslegendre", None), ("riemann_trapezoid", 4), ("riemann_right", 5)])
def test_layer_conductance(name, method, internal_batch_size):
    model, x, layer, module, _, target = case(name)
    b = baselines_for(x)
    ours, delta = nni.LayerConductance(model, layer).attribute(
        x, target, baselines=b, n_steps=5, method=method, internal_batch_size=internal_batch_size, return_convergence_delta=True
    )
    theirs, their_delta = captum.LayerConductance(model, module).attribute(
        x, b, target=target, n_steps=5, method=method, return_convergence_delta=True
    )
    assert_equal_to_captum(ours, theirs)
    assert_equal_to_captum(delta, their_delta)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method, internal_batch_size", [("gausslegendre", None), ("riemann_middle", 4)])
def test_internal_influence(name, method, internal_batch_size):
    model, x, layer, module, _, target = case(name)
    b = baselines_for(x)
    ours = nni.InternalInfluence(model, layer).attribute(
        x, target, baselines=b, n_steps=5, method=method, internal_batch_size=internal_batch_size
    )
    theirs = captum.InternalInfluence(model, module).attribute(x, b, target=target, n_steps=5, method=method)
    assert_equal_to_captum(ours, theirs)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("selector", ["index", "callable"])
def test_neuron_gradient(name, selector):
    model, x, layer, module, neuron, _ = case(name)
    chosen = neuron if selector == "index" else _slice_selector(neuron)
    ours = nni.NeuronGradient(model, layer).attribute(x, neuron_selector=chosen)
    assert_equal_to_captum(ours, captum.NeuronGradient(model, module).attribute(x, chosen))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("selector, method, internal_batch_size", [("index", "gausslegendre", None), ("callable", "riemann_trapezoid", 4)])
def test_neuron_integrated_gradients(name, selector, method, internal_batch_size):
    model, x, layer, module, neuron, _ = case(name)
    chosen = neuron if selector == "index" else _slice_selector(neuron)
    b = baselines_for(x)
    ours = nni.NeuronIntegratedGradients(model, layer).attribute(
        x, neuron_selector=chosen, baselines=b, n_steps=5, method=method, internal_batch_size=internal_batch_size
    )
    theirs = captum.NeuronIntegratedGradients(model, module).attribute(x, chosen, b, n_steps=5, method=method)
    assert_equal_to_captum(ours, theirs)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(
    "selector, method, multiply, internal_batch_size",
    [("index", "riemann_trapezoid", True, None), ("callable", "gausslegendre", True, 4), ("index", "riemann_left", False, 5)],
)
@pytest.mark.filterwarnings("ignore:The neuron_selector provided is a callable")
def test_neuron_conductance(name, selector, method, multiply, internal_batch_size):
    model, x, layer, module, neuron, target = case(name)
    chosen = neuron if selector == "index" else _slice_selector(neuron)
    b = baselines_for(x)
    ours = nni.NeuronConductance(model, layer, multiply_by_inputs=multiply).attribute(
        x, target, neuron_selector=chosen, baselines=b, n_steps=5, method=method, internal_batch_size=internal_batch_size
    )
    theirs = captum.NeuronConductance(model, module, multiply_by_inputs=multiply).attribute(
        x, chosen, b, target=target, n_steps=5, method=method
    )
    assert_equal_to_captum(ours, theirs)


def test_the_comparisons_can_fail():
    """Another layer, neuron or target gives other maps: the comparisons above are not vacuous."""
    model, x, layer, module, neuron, target = case("mnist_cnn")
    theirs = captum.LayerConductance(model, module).attribute(x, target=target, n_steps=5)
    other_target = nni.LayerConductance(model, layer).attribute(x, (target + 1) % 10, n_steps=5)
    assert not torch.allclose(other_target, theirs)
    other_neuron = nni.NeuronConductance(model, layer).attribute(x, target, neuron_selector=(4, 4, 5), n_steps=5)
    assert not torch.allclose(other_neuron, captum.NeuronConductance(model, module).attribute(x, neuron, target=target, n_steps=5))
