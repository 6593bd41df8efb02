"""Layer and neuron attribution: completeness of conductance and layer IG, shapes, options and clear errors."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


def _tanh_mlp():
    """Smooth, so that the quadrature errors shrink fast; every path to the output passes through layer "2"."""
    return seeded(lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)), seed=3)


def _x(n=3, d=6, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _change(model, x, baselines, target):
    with torch.no_grad():
        return (model(x) - model(baselines)).gather(1, target.unsqueeze(1)).squeeze(1)


def test_layer_conductance_sums_to_the_output_change():
    model, x, target = _tanh_mlp(), _x(), torch.tensor([0, 2, 1])
    b = _x(seed=1) * 0.3
    change = _change(model, x, b, target)
    coarse, coarse_delta = nni.LayerConductance(model, "2").attribute(
        x, target, baselines=b, n_steps=4, method="riemann_trapezoid", return_convergence_delta=True
    )
    fine, delta = nni.LayerConductance(model, "2").attribute(
        x, target, baselines=b, n_steps=400, method="riemann_trapezoid", return_convergence_delta=True
    )
    torch.testing.assert_close(delta, fine.sum(1) - change, rtol=0, atol=1e-14)
    # Σ_k ∂f/∂y(α_k) (y(α_{k+1}) − y(α_k)) is a left Riemann sum: its error falls as 1 / n_steps.
    torch.testing.assert_close(fine.sum(1), change, rtol=0, atol=1e-3 * float(change.abs().max()))
    assert delta.abs().max() < coarse_delta.abs().max() / 50


def test_neuron_conductance_sums_to_the_neurons_layer_conductance():
    model, x, target = _tanh_mlp(), _x(), torch.tensor([0, 2, 1])
    layer = nni.LayerConductance(model, "2").attribute(x, target, n_steps=1000, method="riemann_trapezoid")
    for neuron in range(8):
        # Gauss-Legendre: converged at 32 points (Captum's trapezoid weights sum to 1 - 1/n, a bias of 1/n).
        ours = nni.NeuronConductance(model, "2").attribute(x, target, neuron_selector=neuron, n_steps=32, method="gausslegendre")
        # Eq. 3 is eq. 2 summed over the inputs; the layer conductance's left Riemann sum errs by O(1 / n_steps).
        torch.testing.assert_close(ours.sum(1), layer[:, neuron], rtol=0, atol=1e-3 * float(layer.abs().max()))


def test_layer_integrated_gradients_completeness():
    model, x, target = _tanh_mlp(), _x(), torch.tensor([1, 0, 2])
    b = _x(seed=2) * 0.5
    attributions, delta = nni.LayerIntegratedGradients(model, "1").attribute(
        x, target, baselines=b, n_steps=32, return_convergence_delta=True
    )
    change = _change(model, x, b, target)
    torch.testing.assert_close(delta, attributions.sum(1) - change, rtol=0, atol=1e-14)
    assert delta.abs().max() < 1e-10 * float(change.abs().max())


def test_layer_methods_give_the_layer_shape_and_neuron_methods_the_input_shape():
    model, x = ARCHITECTURES["mnist_cnn"](0), mnist_like_batch(2)
    layer_shape = (2, 20, 28, 28)
    layer_methods = (nni.LayerIntegratedGradients, nni.LayerConductance, nni.InternalInfluence)
    for method in (nni.LayerActivation, nni.LayerGradientXActivation, *layer_methods):
        extra = {} if method in (nni.LayerActivation, nni.LayerGradientXActivation) else {"n_steps": 2}
        assert method(model, "features.2").attribute(x, 3, **extra).shape == layer_shape
    input_layer = nni.LayerActivation(model, model.features[2]).attribute(x, attribute_to_layer_input=True)
    assert input_layer.shape == (2, 10, 28, 28)
    for method in (nni.NeuronGradient, nni.NeuronIntegratedGradients, nni.NeuronConductance):
        extra = {} if method is nni.NeuronGradient else {"n_steps": 2}
        assert method(model, "features.2").attribute(x, 3, neuron_selector=(1, 2, 3), **extra).shape == x.shape


def test_chunking_does_not_change_the_maps():
    model, x, target = _tanh_mlp(), _x(5), torch.tensor([0, 1, 2, 0, 1])
    for method, extra in [
        (nni.LayerConductance, {}),
        (nni.InternalInfluence, {}),
        (nni.LayerIntegratedGradients, {}),
        (nni.NeuronConductance, {"neuron_selector": 3}),
        (nni.NeuronIntegratedGradients, {"neuron_selector": 3}),
    ]:
        whole = method(model, "2").attribute(x, target, n_steps=7, **extra)
        for size in (1, 3, 8):
            chunked = method(model, "2").attribute(x, target, n_steps=7, internal_batch_size=size, **extra)
            torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-15)


def test_neuron_selector_forms_agree():
    model, x = ARCHITECTURES["mnist_cnn"](0), mnist_like_batch(2)
    method = nni.NeuronGradient(model, "features.2")
    by_index = method.attribute(x, neuron_selector=(4, 5, 6))
    by_callable = method.attribute(x, neuron_selector=lambda a: a[:, 4, 5, 6])
    torch.testing.assert_close(by_index, by_callable, rtol=0, atol=0)
    sliced = method.attribute(x, neuron_selector=(4, slice(5, 7), 6))
    torch.testing.assert_close(sliced, method.attribute(x, neuron_selector=(4, 5, 6)) + method.attribute(x, neuron_selector=(4, 6, 6)))
    dense = _tanh_mlp()
    torch.testing.assert_close(
        nni.NeuronGradient(dense, "2").attribute(_x(), neuron_selector=3),
        nni.NeuronGradient(dense, "2").attribute(_x(), neuron_selector=(3,)),
    )


def test_target_is_checked_by_the_target_free_methods_but_does_not_change_them():
    model, x = _tanh_mlp(), _x()
    for method, extra in [
        (nni.LayerActivation, {}),
        (nni.NeuronGradient, {"neuron_selector": 1}),
        (nni.NeuronIntegratedGradients, {"neuron_selector": 1, "n_steps": 3}),
    ]:
        a = method(model, "2").attribute(x, 0, **extra)
        torch.testing.assert_close(a, method(model, "2").attribute(x, 2, **extra), rtol=0, atol=0)
        with pytest.raises(ValueError, match="out of range"):
            method(model, "2").attribute(x, 7, **extra)


def test_capabilities_are_declared():
    model = _tanh_mlp()
    assert not nni.LayerActivation(model, "2").needs_gradients
    assert nni.LayerConductance(model, "2").has_convergence_delta and nni.LayerIntegratedGradients(model, "2").has_convergence_delta
    assert not nni.InternalInfluence(model, "2").multiplies_by_inputs
    assert not nni.LayerGradientXActivation(model, "2", multiply_by_inputs=False).multiplies_by_inputs
    for name, cls in [
        ("layer-activation", nni.LayerActivation),
        ("layer-gradient-x-activation", nni.LayerGradientXActivation),
        ("layer-integrated-gradients", nni.LayerIntegratedGradients),
        ("layer-conductance", nni.LayerConductance),
        ("internal-influence", nni.InternalInfluence),
        ("neuron-gradient", nni.NeuronGradient),
        ("neuron-integrated-gradients", nni.NeuronIntegratedGradients),
        ("neuron-conductance", nni.NeuronConductance),
    ]:
        assert isinstance(nni.get_method(name, model, layer="2"), cls)
    with pytest.raises(TypeError, match="convergence delta"):
        nni.InternalInfluence(model, "2").attribute(_x(), 0, return_convergence_delta=True)


def test_with_model_rebinds_the_layer():
    first, other = _tanh_mlp(), seeded(lambda: _tanh_mlp(), seed=5)
    with torch.no_grad():
        other[2].weight.mul_(2)
    method = nni.LayerConductance(first, first[2])
    moved = method.with_model(other)
    assert moved.layer is other[2] and method.layer is first[2]
    torch.testing.assert_close(moved.attribute(_x(), 0, n_steps=3), nni.LayerConductance(other, "2").attribute(_x(), 0, n_steps=3))


class _TwoOutputs(nn.Module):
    def forward(self, x):
        return x, x * 2


class _TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.split, self.fc = _TwoOutputs(), nn.Linear(12, 3)

    def forward(self, x):
        a, b = self.split(x)
        return self.fc(torch.cat([a, b], 1))


class _ReusedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act, self.out = nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2)

    def forward(self, x):
        return self.out(self.act(self.fc(self.act(x))))


def test_clear_errors():
    model, x = _tanh_mlp(), _x()
    with pytest.raises(ValueError, match="no layer named"):
        nni.LayerConductance(model, "9")
    with pytest.raises(TypeError, match="needs neuron_selector"):
        nni.NeuronGradient(model, "2").attribute(x)
    with pytest.raises(TypeError, match="neuron_selector must be"):
        nni.NeuronGradient(model, "2").attribute(x, neuron_selector=[1])
    with pytest.raises(ValueError, match="does not index"):
        nni.NeuronGradient(model, "2").attribute(x, neuron_selector=(8,))
    with pytest.raises(ValueError, match="one scalar per row"):
        nni.NeuronGradient(model, "2").attribute(x, neuron_selector=lambda a: a)
    tuple_net = seeded(_TupleNet)
    with pytest.raises(ValueError, match="not one tensor"):
        nni.LayerGradientXActivation(tuple_net, "split").attribute(_x(2, 6), 0)
    with pytest.raises(ValueError, match="more than once"):
        nni.LayerConductance(seeded(_ReusedNet), "act").attribute(_x(), 0, n_steps=2)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        nni.LayerConductance(model, "2").attribute(x, 0, n_steps=0)
