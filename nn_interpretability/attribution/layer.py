"""Layer and neuron attribution: what a hidden layer holds, and how its neurons carry the output.

Layer methods explain the output of one layer (or its input, ``attribute_to_layer_input=True``) and
return maps of that tensor's shape ``(N, ...)``; neuron methods explain one neuron of the layer, given
per call by ``neuron_selector`` (an index into each sample's layer output, or a callable
``layer_output -> (N,)``), and return maps of the input's shape. Names and semantics are Captum's
(``captum.attr.LayerConductance``, ...). The layer is a module of the model or its dotted name.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..core.base import Attribution, Run
from ..core.batching import broadcast_baselines, compute_dtype
from ..core.layers import find_layer, same_layer
from ..core.registry import register_method
from ..core.validation import positive_int
from .integrated_gradients import IntegratedGradients, StraightPath, _along, quadrature


class _LayerProbe:
    """Hooks on the layer for the forwards of one call: keep its output (or input), optionally replace it.

    Only forwards between :meth:`reset` and :meth:`captured` are seen; others (the target's) pass. The
    rest of the network receives a copy, so that an in-place operation after the layer (a
    ``ReLU(inplace=True)``) cannot change the tensor whose gradient is taken. The hooks go away with
    the template's :func:`~nn_interpretability.core.hooks.borrowed`.
    """

    def __init__(self, layer: nn.Module, name: str, to_input: bool):
        self.name, self.to_input = name, to_input
        self.value: torch.Tensor | None = None
        self.replacement: torch.Tensor | None = None
        self.armed = False
        if to_input:
            layer.register_forward_pre_hook(self._before)
        else:
            layer.register_forward_hook(self._after)

    def _keep(self, value, what: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"layer {self.name!r} {what} a {type(value).__name__}, not one tensor; layer attribution explains one "
                "tensor (N, ...): choose a submodule that outputs one"
            )
        if self.value is not None:
            raise ValueError(
                f"layer {self.name!r} runs more than once in one forward pass (a module reused), so which of its "
                "activations to explain is ambiguous; give each place its own module"
            )
        if self.replacement is not None:
            if self.replacement.shape != value.shape:
                raise ValueError(f"layer {self.name!r} gives {tuple(value.shape)}, expected {tuple(self.replacement.shape)}")
            value = self.replacement
        self.value = value
        return value.clone()

    def _after(self, module, args, output):
        return self._keep(output, "outputs") if self.armed else None

    def _before(self, module, args):
        if not self.armed:
            return None
        if len(args) != 1:
            raise ValueError(
                f"layer {self.name!r} takes {len(args)} positional inputs; attribute_to_layer_input explains a layer "
                "with one input tensor"
            )
        return (self._keep(args[0], "receives"),)

    def reset(self, replacement: torch.Tensor | None = None) -> None:
        """Before a forward: forget the last value; ``replacement`` is what the layer gives instead."""
        self.value, self.replacement, self.armed = None, replacement, True

    def captured(self) -> torch.Tensor:
        """After a forward: the layer's value in it."""
        self.armed = False
        if self.value is None:
            raise ValueError(f"layer {self.name!r} did not run in the model's forward pass")
        return self.value

    def forward(self, run: Run, x: torch.Tensor, sample: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's output on ``x`` (see :meth:`Run.forward`) and the layer's value in that forward."""
        self.reset()
        output = run.forward(x, sample)
        return output, self.captured()


class _LayerOutput(nn.Module):
    """The model read at the layer: its output is the layer's value (for Integrated Gradients of a neuron)."""

    def __init__(self, model: nn.Module, probe: _LayerProbe):
        super().__init__()
        self.model, self.probe = model, probe

    def forward(self, *args):
        self.probe.reset()
        self.model(*args)
        return self.probe.captured()


class _ThroughLayer(nn.Module):
    """The model as a function of the layer's value: ``forward(value, x, *extra)`` runs ``model(x, *extra)`` with it."""

    def __init__(self, model: nn.Module, probe: _LayerProbe):
        super().__init__()
        self.model, self.probe = model, probe

    def forward(self, value, x, *extra):
        self.probe.reset(replacement=value)
        output = self.model(x, *extra)
        self.probe.captured()
        return output


def neuron_function(neuron_selector, layer: str = "the layer") -> Callable[[torch.Tensor], torch.Tensor]:
    """``neuron_selector`` as a function ``layer value (N, ...) -> (N,)``, Captum's convention.

    An int indexes the first dimension after the batch, a tuple indexes each sample's value (entries
    that are slices are summed over), a callable is used as given and must return one scalar per sample.
    """
    if callable(neuron_selector):
        return neuron_selector
    index = (neuron_selector,) if isinstance(neuron_selector, int) else neuron_selector
    if not isinstance(index, tuple) or not index or not all(
        isinstance(i, slice) or (isinstance(i, int) and not isinstance(i, bool)) for i in index
    ):
        raise TypeError(
            f"neuron_selector must be an int, a tuple of ints and slices indexing each sample's value of {layer}, or a "
            f"callable layer_value -> (N,), got {neuron_selector!r}"
        )

    def select(value: torch.Tensor) -> torch.Tensor:
        shape = tuple(value.shape[1:])
        if len(index) > len(shape) or any(
            isinstance(i, int) and not -size <= i < size for i, size in zip(index, shape)
        ):
            raise ValueError(
                f"neuron_selector {neuron_selector!r} does not index {layer}'s value of shape (N, {', '.join(map(str, shape))})"
            )
        picked = value[(slice(None), *index)]
        return picked.reshape(value.shape[0], -1).sum(1)

    return select


def _neuron_values(function: Callable, value: torch.Tensor, layer: str) -> torch.Tensor:
    scores = function(value)
    if not isinstance(scores, torch.Tensor) or scores.shape != (value.shape[0],):
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(
            f"neuron_selector must give one scalar per row, shape ({value.shape[0]},), for {layer}'s value of shape "
            f"{tuple(value.shape)}; it gave {got}"
        )
    return scores


def _gradient(scores: torch.Tensor, tensor: torch.Tensor, retain: bool = False) -> torch.Tensor:
    """``∂ Σ scores / ∂ tensor``; zeros where the scores do not depend on it."""
    (gradient,) = torch.autograd.grad(scores.sum(), tensor, retain_graph=retain, materialize_grads=True)
    return gradient


class _LayerAttribution(Attribution):
    """Shared parts: the layer (module or dotted name), rebound by :meth:`with_model`."""

    maps_like_inputs = False

    def __init__(self, model: nn.Module, layer):
        super().__init__(model)
        self.layer_name, self.layer = find_layer(model, layer)

    def _rebind(self, model: nn.Module) -> None:
        self.layer_name, self.layer = same_layer(model, self.layer, self.layer_name)

    def _probe(self, to_input: bool) -> _LayerProbe:
        return _LayerProbe(self.layer, self.layer_name, bool(to_input))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, layer={self.layer_name!r})"


@register_method("layer-activation")
class LayerActivation(_LayerAttribution):
    """The layer's activation itself: the forward pass read at a hidden layer (Captum's ``LayerActivation``).

    Not an explanation of a class score: ``target`` is checked against the model's output as for every
    method but does not change the map.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
        The layer, as a module of ``model`` or its dotted name (``"features.4"``).
    """

    needs_gradients = False

    def _attribute(self, run: Run, attribute_to_layer_input: bool = False) -> torch.Tensor:
        """The layer's output ``(N, ...)`` (its input with ``attribute_to_layer_input=True``)."""
        probe = self._probe(attribute_to_layer_input)
        with torch.no_grad():
            output, activation = probe.forward(run, run.inputs)
        run.bind(output)
        return activation.clone()  # the layer's input may be the user's tensor itself


@register_method("layer-gradient-x-activation")
class LayerGradientXActivation(_LayerAttribution):
    """Gradient × activation at a layer: ``a ∘ ∂f_c/∂a`` (Shrikumar et al. 2016's input × gradient, at a layer).

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
    multiply_by_inputs : bool
        ``False`` returns the layer gradient ``∂f_c/∂a`` alone.
    """

    def __init__(self, model, layer, multiply_by_inputs: bool = True):
        super().__init__(model, layer)
        self.multiplies_by_inputs = bool(multiply_by_inputs)

    def _attribute(self, run: Run, attribute_to_layer_input: bool = False) -> torch.Tensor:
        """``a ∘ ∂f_c/∂a`` with the layer's shape ``(N, ...)``; ``target`` as for every method."""
        probe = self._probe(attribute_to_layer_input)
        output, activation = probe.forward(run, run.inputs.clone().requires_grad_(True))
        gradient = _gradient(run.select(output), activation)
        return gradient * activation.detach() if self.multiplies_by_inputs else gradient


@register_method("layer-integrated-gradients")
class LayerIntegratedGradients(_LayerAttribution):
    """Integrated Gradients at a layer: ``(a − a') ∘ ∫_0^1 ∂f_c/∂a (a' + α(a − a')) dα``.

    Sundararajan et al. 2017 (eq. 1 of the paper, the report's eq. 5) with the layer's activation
    ``a = a(x)`` in place of the input and ``a' = a(x')`` of the baseline; the model runs on ``x`` with
    the layer's value replaced by the path point (paths around the layer, e.g. a residual, see ``x``).
    The quadrature is :class:`~.integrated_gradients.IntegratedGradients`'s.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
    multiply_by_inputs : bool
        ``False`` returns the path-averaged layer gradient alone.
    """

    takes_baselines = True
    has_convergence_delta = True

    def __init__(self, model, layer, multiply_by_inputs: bool = True):
        super().__init__(model, layer)
        self.multiplies_by_inputs = bool(multiply_by_inputs)

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        show_progress: bool | None = None,
    ):
        """Layer integrated gradients ``(N, ...)``, and with ``return_convergence_delta`` the per-sample delta.

        ``baselines`` are input baselines (a number, one per-sample-shaped tensor or one per sample);
        ``n_steps``, ``method``, ``internal_batch_size``, ``show_progress`` as in Integrated Gradients.
        The delta is ``Σ attributions − (f_c(x) − f_c(x'))`` (Captum's), with the attributions multiplied
        by ``a − a'`` whether or not ``multiply_by_inputs`` is set.
        """
        x = run.inputs
        baselines = broadcast_baselines(baselines, x)
        probe = self._probe(attribute_to_layer_input)
        with torch.no_grad():
            output, both = probe.forward(run, torch.cat([x, baselines.contiguous()]))
        selector = run.bind(output)
        activation, baseline_activation = both[: run.n], both[run.n :]
        ig = IntegratedGradients(_ThroughLayer(self.model, probe), multiply_by_inputs=self.multiplies_by_inputs)
        attributions = ig.attribute(
            activation,
            target=selector,
            baselines=baseline_activation,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            additional_forward_args=(x, *run.additional_forward_args),
            show_progress=show_progress,
        )
        if not return_convergence_delta:
            return attributions
        dtype = compute_dtype(x.dtype)
        products = attributions if self.multiplies_by_inputs else attributions * (activation - baseline_activation)
        scores = selector(output).to(dtype)
        return attributions, products.to(dtype).flatten(1).sum(1) - (scores[: run.n] - scores[run.n :])


@register_method("layer-conductance")
class LayerConductance(_LayerAttribution):
    """Conductance of every neuron of a layer: the flow of Integrated Gradients through it.

    Dhamdhere et al. 2018, "How important is a neuron?", eq. 2–3: for neuron ``y``,
    ``Cond^y(x) = Σ_i (x_i − x'_i) ∫_0^1 ∂f/∂y · ∂y/∂x_i dα = ∫_0^1 ∂f/∂y (dy/dα) dα`` along the straight
    path in input space, computed as Captum does: ``Σ_k ∂f/∂y(α_k) (y(α_{k+1}) − y(α_k))`` over the
    ``n_steps + 1`` points of ``method``'s rule. Summed over the layer's neurons it is ``f(x) − f(x')``
    up to the quadrature error when every path from the input to the output passes through the layer
    (completeness).

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
    """

    takes_baselines = True
    has_convergence_delta = True
    multiplies_by_inputs = True

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        show_progress: bool | None = None,
    ):
        """Conductance ``(N, ...)`` of every neuron of the layer, and the delta ``Σ Cond − (f_c(x) − f_c(x'))``.

        ``baselines``, ``method``, ``internal_batch_size`` (path points per pass) and ``show_progress`` as
        in Integrated Gradients; the path has ``n_steps + 1`` points (the points of ``method``'s rule for
        ``n_steps + 1``), ``n_steps`` differences.
        """
        alphas, _ = quadrature(method, positive_int(n_steps, "n_steps") + 1)
        path = StraightPath(run, baselines, alphas)
        probe = self._probe(attribute_to_layer_input)
        selector, n = run.selector, run.n
        total = previous_value = previous_gradient = None
        for rows, step, sample, points in path.passes(internal_batch_size, "layer conductance", show_progress):
            output, value = probe.forward(run, points, sample)
            gradient = _gradient(selector(output, sample), value).to(path.dtype)
            value = value.detach().to(path.dtype)
            if total is None:
                total = value.new_zeros((n, *value.shape[1:]))
                previous_value, previous_gradient = torch.zeros_like(total), torch.zeros_like(total)
            # The rows of one step are consecutive samples: pair each with the same sample's previous step.
            for s in range(rows.start // n, (rows.stop - 1) // n + 1):
                lo, hi = max(rows.start, s * n), min(rows.stop, (s + 1) * n)
                here, samples = slice(lo - rows.start, hi - rows.start), slice(lo - s * n, hi - s * n)
                if s > 0:
                    total[samples] += previous_gradient[samples] * (value[here] - previous_value[samples])
                previous_value[samples], previous_gradient[samples] = value[here], gradient[here]
        if not return_convergence_delta:
            return total
        return total, total.flatten(1).sum(1) - path.output_change(selector)


@register_method("internal-influence")
class InternalInfluence(_LayerAttribution):
    """Internal influence: the layer gradient averaged along the straight input path, ``∫_0^1 ∂f_c/∂a(x' + α(x − x')) dα``.

    Leino et al. 2018, "Influence-directed explanations for deep convolutional networks", eq. 1 with
    the uniform distribution of interest on the path from ``x'`` to ``x`` (Captum's ``InternalInfluence``);
    the integral is :func:`~.integrated_gradients.quadrature`'s rule.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
    """

    takes_baselines = True

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        attribute_to_layer_input: bool = False,
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Internal influence ``(N, ...)`` of every neuron of the layer; arguments as in Integrated Gradients."""
        alphas, weights = quadrature(method, n_steps)
        path = StraightPath(run, baselines, alphas)
        weights = torch.as_tensor(weights, dtype=path.dtype, device=run.inputs.device)
        probe = self._probe(attribute_to_layer_input)
        selector, total = run.selector, None
        for rows, step, sample, points in path.passes(internal_batch_size, "internal influence", show_progress):
            output, value = probe.forward(run, points, sample)
            gradient = _gradient(selector(output, sample), value).to(path.dtype)
            if total is None:
                total = gradient.new_zeros((run.n, *gradient.shape[1:]))
            total.index_add_(0, sample, gradient * _along(weights[step], gradient))
        return total


class _NeuronAttribution(_LayerAttribution):
    """Shared parts of the neuron methods: the neuron, per call, as an index or a callable on the layer's value."""

    maps_like_inputs = True

    def _neuron(self, neuron_selector) -> Callable[[torch.Tensor], torch.Tensor]:
        if neuron_selector is None:
            raise TypeError(
                f"{type(self).__name__}.attribute needs neuron_selector: an index into each sample's value of layer "
                f"{self.layer_name!r} (e.g. (3,) or (2, 4, 4)) or a callable layer_value -> (N,)"
            )
        function = neuron_function(neuron_selector, repr(self.layer_name))
        return lambda value: _neuron_values(function, value, repr(self.layer_name))


@register_method("neuron-gradient")
class NeuronGradient(_NeuronAttribution):
    """The gradient of one neuron of a hidden layer with respect to the input, ``∂y/∂x`` (Captum's ``NeuronGradient``).

    Simonyan et al. 2014's saliency with a hidden neuron ``y`` in place of the class score. ``target``
    is checked against the model's output as for every method but does not change the map.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
        The layer holding the neuron.
    """

    def _attribute(self, run: Run, neuron_selector=None, attribute_to_neuron_input: bool = False) -> torch.Tensor:
        """``∂y/∂x`` with the input's shape; ``neuron_selector`` indexes each sample's layer output (or is a callable)."""
        neuron = self._neuron(neuron_selector)
        probe = self._probe(attribute_to_neuron_input)
        points = run.inputs.clone().requires_grad_(True)
        output, value = probe.forward(run, points)
        run.bind(output)
        return _gradient(neuron(value), points)


@register_method("neuron-integrated-gradients")
class NeuronIntegratedGradients(_NeuronAttribution):
    """Integrated Gradients of one neuron of a hidden layer: ``(x − x') ∘ ∫_0^1 ∂y/∂x (x' + α(x − x')) dα``.

    Sundararajan et al. 2017 (the report's eq. 5) with a hidden neuron ``y`` as the output: it is
    :class:`~.integrated_gradients.IntegratedGradients` of the model read at the layer. ``target`` is
    checked against the model's output as for every method but does not change the map.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
    multiply_by_inputs : bool
        ``False`` returns the path-averaged gradient alone.
    """

    takes_baselines = True

    def __init__(self, model, layer, multiply_by_inputs: bool = True):
        super().__init__(model, layer)
        self.multiplies_by_inputs = bool(multiply_by_inputs)

    def _attribute(
        self,
        run: Run,
        neuron_selector=None,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        attribute_to_neuron_input: bool = False,
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Integrated gradients of the neuron with the input's shape; arguments as in Integrated Gradients."""
        neuron = self._neuron(neuron_selector)
        run.selector  # noqa: B018 -- checks the target, as every method does, though the neuron does not use it
        probe = self._probe(attribute_to_neuron_input)
        ig = IntegratedGradients(_LayerOutput(self.model, probe), multiply_by_inputs=self.multiplies_by_inputs)
        return ig.attribute(
            run.inputs,
            target=neuron,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            additional_forward_args=run.additional_forward_args,
            show_progress=show_progress,
        )


@register_method("neuron-conductance")
class NeuronConductance(_NeuronAttribution):
    """Conductance of one hidden neuron ``y`` for each input: ``(x_i − x'_i) ∫_0^1 ∂f_c/∂y · ∂y/∂x_i dα``.

    Dhamdhere et al. 2018, "How important is a neuron?", eq. 2: the share of input ``i``'s integrated
    gradient that flows through ``y``; summed over the inputs it is the neuron's layer conductance
    (eq. 3) up to the quadrature error. The integral is :func:`~.integrated_gradients.quadrature`'s rule
    (Captum's default here is ``riemann_trapezoid``). For a callable ``neuron_selector`` the same
    callable is applied to the layer gradient to get ``∂f_c/∂y`` (Captum's convention): it should only
    select neurons.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
    multiply_by_inputs : bool
        ``False`` leaves out the factor ``x − x'``.
    """

    takes_baselines = True

    def __init__(self, model, layer, multiply_by_inputs: bool = True):
        super().__init__(model, layer)
        self.multiplies_by_inputs = bool(multiply_by_inputs)

    def _attribute(
        self,
        run: Run,
        neuron_selector=None,
        baselines=0.0,
        n_steps: int = 50,
        method: str = "riemann_trapezoid",
        internal_batch_size: int | None = None,
        attribute_to_neuron_input: bool = False,
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Conductance of the neuron for the target, with the input's shape; arguments as in Integrated Gradients."""
        neuron = self._neuron(neuron_selector)
        alphas, weights = quadrature(method, n_steps)
        path = StraightPath(run, baselines, alphas)
        weights = torch.as_tensor(weights, dtype=path.dtype, device=run.inputs.device)
        probe = self._probe(attribute_to_neuron_input)
        selector = run.selector
        total = torch.zeros_like(path.differences[0])
        for rows, step, sample, points in path.passes(internal_batch_size, "neuron conductance", show_progress):
            output, value = probe.forward(run, points, sample)
            through = neuron(_gradient(selector(output, sample), value, retain=True)).to(path.dtype)  # ∂f_c/∂y
            gradient = _gradient(neuron(value), points).to(path.dtype)  # ∂y/∂x
            total.index_add_(0, sample, gradient * _along(through * weights[step], gradient))
        return total * path.differences[0] if self.multiplies_by_inputs else total
