"""The textbook's desired properties of an explanation, measured for any method: the axioms table.

Textbook chapter "Post Training Analysis", Summary of Results (seed 004), after Sundararajan, Taly &
Yan 2017, "Axiomatic attribution for deep networks", section 2:

1. Continuity: if ``a_c(p)`` is continuous, so is the contribution ``c(p)``.
2. Implementation invariance: functionally equivalent networks get the same contributions.
3. Sensitivity (a): an input and a baseline that differ in one feature and have different outputs
   give that feature a non-zero contribution; (b): a feature the output does not depend on gets 0.
4. Completeness: the contributions sum to the output, or to the difference between the output and a
   baseline output.

Each property is one function that runs a method on a small network built to test it (by default the
textbook's 2-2-2 XOR network of P9.1–P9.4 and the constructions below, all in float64) and returns a
:class:`PropertyResult`: one number and whether it is within a documented tolerance. Completeness is
reported twice, against ``f(x) − f(x')`` (IG, DeepLIFT; eq. 9.17) and against ``f(x)`` itself
("conservation", LRP's eq. 9.21–9.26), since the textbook's statement allows either.
:func:`axioms_table` runs every property for every method.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.base import Target, check_inputs, forward_output
from ..core.targets import Selector, as_selector
from ..core.hooks import borrowed
from ..core.validation import check_map_shape
from ..models.textbook import xor_network

#: The columns of the axioms table, in the textbook's order of discussion.
PROPERTIES = (
    "completeness",
    "conservation",
    "sensitivity_a",
    "sensitivity_b",
    "implementation_invariance",
    "continuity",
)

#: Default tolerances. Relative errors for completeness and conservation (1 %: IG's quadrature error
#: at 300 steps is 0.1 % on the XOR network); "non-zero" and "zero" for sensitivity and invariance mean
#: beyond float64 rounding of O(1) numbers. Continuity's tolerance depends on ``eps`` (see :func:`continuity`).
TOLERANCES = {
    "completeness": 1e-2,
    "conservation": 1e-2,
    "sensitivity_a": 1e-6,
    "sensitivity_b": 1e-6,
    "implementation_invariance": 1e-6,
}

Factory = Callable[[nn.Module], object]


@dataclass
class PropertyResult:
    """One property of one method: the measured value and whether it passes the tolerance.

    ``passed`` is ``value <= tolerance`` for errors (completeness, conservation, sensitivity (b),
    implementation invariance, continuity) and ``value > tolerance`` for sensitivity (a), whose value
    is the share of the output change given to the differing feature.
    """

    name: str
    value: float
    passed: bool
    tolerance: float

    def __str__(self) -> str:
        return f"{self.value:.3g} {'✓' if self.passed else '✗'}"


def _dense_relu(w1, b1, w2, b2, final_relu: bool = False) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` (``-> ReLU``) in float64 with the given weights, in eval mode."""
    w1, w2 = torch.tensor(w1, dtype=torch.float64), torch.tensor(w2, dtype=torch.float64)
    first, second = nn.Linear(w1.shape[1], w1.shape[0]), nn.Linear(w2.shape[1], w2.shape[0])
    network = nn.Sequential(first, nn.ReLU(), second, *([nn.ReLU()] if final_relu else [])).double()
    with torch.no_grad():
        for layer, weight, bias in ((first, w1, b1), (second, w2, b2)):
            layer.weight.copy_(weight)
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return network.eval()


def dummy_feature_network() -> nn.Sequential:
    """The textbook's XOR network (P9.1) with a third input whose weights are all zero.

    The output does not depend on ``p_3``: sensitivity (b) asks for ``c_3 = 0``.
    """
    return _dense_relu([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], [-0.5, -0.5], [[1.0, 1.0], [-1.0, -1.0]], [-1.0, 1.0])


def invariance_pair() -> tuple[nn.Sequential, nn.Sequential]:
    """Two functionally equal ReLU networks with different internals, after Sundararajan et al.'s 2017
    counterexample to the implementation invariance of DeepLIFT and LRP.

    ``f(x) = ReLU(ReLU(x1) − 1 − ReLU(x2))`` and ``g(x) = ReLU(ReLU(x1 − 1) − ReLU(x2))``: the ``−1``
    sits before or after the first ReLU. Both are 0 for ``x1 < 1`` and equal ``ReLU(x1 − 1 − ReLU(x2))``
    otherwise. Gradients only see the function; rules that propagate through the units need not.
    """
    f = _dense_relu([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], [[1.0, -1.0]], [-1.0], final_relu=True)
    g = _dense_relu([[1.0, 0.0], [0.0, 1.0]], [-1.0, 0.0], [[1.0, -1.0]], [0.0], final_relu=True)
    return f, g


def kink_network() -> nn.Sequential:
    """``f(x) = ReLU(x1 + x2 − 1) + ReLU(x1 − x2 − 0.5)``: a unit that switches on while another stays on.

    Along ``x1 − x2 = 0.5`` the second unit turns on, so the gradient jumps from ``(1, 1)`` to ``(2, 0)``
    while ``f`` stays continuous and well away from 0. The zero baseline lies on no unit's boundary, so
    baseline methods are not put on a kink by construction.
    """
    return _dense_relu([[1.0, 1.0], [1.0, -1.0]], [-1.0, -0.5], [[1.0, 1.0]], [0.0])


def _float64(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _textbook_case() -> tuple[nn.Module, torch.Tensor]:
    """The XOR network of P9.1 at ``p = (0, 3)`` (P9.1 i) and its mirror image ``(3, 0)``."""
    return xor_network(), _float64([[0.0, 3.0], [3.0, 0.0]])


def _explain(factory: Factory, model: nn.Module, inputs, target, attribute_kwargs, baselines=None) -> torch.Tensor:
    """The method's maps, with ``baselines`` passed to methods that take them (``method.takes_baselines``)."""
    if not callable(factory):
        raise TypeError("method_factory must be callable: method_factory(model) -> Attribution")
    method = factory(model)
    kwargs = dict(attribute_kwargs or {})
    if baselines is not None and "baselines" not in kwargs and getattr(method, "takes_baselines", False):
        kwargs["baselines"] = baselines
    maps = method.attribute(inputs, target=target, **kwargs)
    if isinstance(maps, tuple):
        raise TypeError("attribute returned a tuple; do not ask for return_convergence_delta here")
    return check_map_shape(maps, inputs.shape, "the method").detach()


def _scores(model: nn.Module, inputs: torch.Tensor, target: Target) -> tuple[Selector, torch.Tensor]:
    """What is explained, chosen once (any target of ``attribute``), and its value per sample ``f(x)``."""
    with borrowed(model), torch.no_grad():
        output = forward_output(model, inputs)
        selector = as_selector(target, output)
        return selector, selector(output)


def _score_of(model: nn.Module, inputs: torch.Tensor, selector: Selector) -> torch.Tensor:
    with borrowed(model), torch.no_grad():
        return selector(forward_output(model, inputs))


def _defaults(model, inputs, build: Callable[[], tuple], what: str) -> tuple:
    """The textbook case when neither ``model`` nor ``inputs`` is given; both or neither."""
    if model is None and inputs is None:
        return build()
    if model is None or inputs is None:
        raise ValueError(f"give both model and inputs for {what}, or neither to use the textbook's network")
    return model, check_inputs(inputs)


def _as_batch(value, inputs: torch.Tensor, name: str) -> torch.Tensor:
    value = torch.as_tensor(value, dtype=inputs.dtype, device=inputs.device)
    if value.dim() == 0 or value.shape == inputs.shape[1:]:
        return value.expand_as(inputs).clone()
    if value.shape != inputs.shape:
        raise ValueError(f"{name} of shape {tuple(value.shape)} do not fit inputs of shape {tuple(inputs.shape)}")
    return value.clone()


def _relative(error: torch.Tensor, scale: torch.Tensor, what: str) -> float:
    if bool((scale == 0).any()):
        raise ValueError(f"{what} is 0 for some sample, so a relative error is undefined; choose other inputs")
    return float((error.abs() / scale.abs()).max())


def completeness(
    method_factory: Factory,
    model: nn.Module | None = None,
    inputs: torch.Tensor | None = None,
    target: Target = None,
    baselines=0.0,
    tolerance: float = TOLERANCES["completeness"],
    attribute_kwargs: dict | None = None,
) -> PropertyResult:
    """Completeness: ``|Σ_i c_i − (f(x) − f(x'))| / |f(x) − f(x')|``, the largest over the samples.

    Textbook property 4 and eq. 9.17 (IG), summation-to-delta of DeepLIFT (eq. 9.40). ``x'`` is passed
    to methods that take ``baselines``; for the others the sum is compared with ``f(x) − f(0)`` all the
    same, as the textbook states the property. Default case: the XOR network of P9.1 at ``p = (0, 3)``
    and ``(3, 0)`` with the zero baseline, where ``f_1(p) − f_1(0) = 1.5 − (−1) = 2.5``.
    """
    model, inputs = _defaults(model, inputs, _textbook_case, "completeness")
    baselines = _as_batch(baselines, inputs, "baselines")
    selector, output = _scores(model, inputs, target)
    difference = output - _score_of(model, baselines, selector)
    maps = _explain(method_factory, model, inputs, selector, attribute_kwargs, baselines)
    value = _relative(maps.flatten(1).sum(1) - difference, difference, "f(x) - f(x')")
    return PropertyResult("completeness", value, value <= tolerance, tolerance)


def conservation(
    method_factory: Factory,
    model: nn.Module | None = None,
    inputs: torch.Tensor | None = None,
    target: Target = None,
    tolerance: float = TOLERANCES["conservation"],
    attribute_kwargs: dict | None = None,
) -> PropertyResult:
    """Completeness against the output itself: ``|Σ_i c_i − f(x)| / |f(x)|``, the largest over the samples.

    Textbook property 4 in the form LRP satisfies (eq. 9.20–9.26): the relevance starts as the logit and
    every layer conserves it (LRP-0 with the bias left out of the denominators). Methods that take
    ``baselines`` run with their defaults. Default case as in :func:`completeness`, ``f_1 = 1.5``.
    """
    model, inputs = _defaults(model, inputs, _textbook_case, "conservation")
    selector, output = _scores(model, inputs, target)
    maps = _explain(method_factory, model, inputs, selector, attribute_kwargs)
    value = _relative(maps.flatten(1).sum(1) - output, output, "f(x)")
    return PropertyResult("conservation", value, value <= tolerance, tolerance)


def sensitivity_a(
    method_factory: Factory,
    model: nn.Module | None = None,
    inputs: torch.Tensor | None = None,
    baselines: torch.Tensor | None = None,
    target: Target = None,
    tolerance: float = TOLERANCES["sensitivity_a"],
    attribute_kwargs: dict | None = None,
) -> PropertyResult:
    """Sensitivity (a): the one feature in which ``x`` and ``x'`` differ gets a non-zero contribution.

    Textbook property 3(a) (Sundararajan et al. 2017, "Sensitivity(a)"). The value is
    ``|c_k| / |f(x) − f(x')|`` for the differing feature ``k``, the smallest over the samples; it passes
    above ``tolerance``. ``x'`` is passed to methods that take ``baselines``. Default case: P9.1 ii,
    the XOR network at ``p = (3, 3)`` against ``p' = (0, 3)`` and ``(3, 0)``: the outputs differ
    (``f_2 = 1`` vs ``−1.5``) but ``p`` lies in the trough where the gradient is 0 (P9.1 ii, P9.3 ii), so
    saliency and LRP give nothing while IG (P9.2 ii) and DeepLIFT (P9.4 ii) credit the changed input.
    """
    if model is None and inputs is None and baselines is None:
        model, inputs, baselines = xor_network(), _float64([[3.0, 3.0]] * 2), _float64([[0.0, 3.0], [3.0, 0.0]])
    elif model is None or inputs is None or baselines is None:
        raise ValueError("give model, inputs and baselines for sensitivity (a), or none to use the textbook's case")
    inputs = check_inputs(inputs)
    baselines = _as_batch(baselines, inputs, "baselines")
    differs = (inputs != baselines).flatten(1)
    if not bool((differs.sum(1) == 1).all()):
        raise ValueError("sensitivity (a) needs every input to differ from its baseline in exactly one feature")
    selector, output = _scores(model, inputs, target)
    difference = output - _score_of(model, baselines, selector)
    if bool((difference == 0).any()):
        raise ValueError("sensitivity (a) needs inputs whose output differs from the baseline's")
    maps = _explain(method_factory, model, inputs, selector, attribute_kwargs, baselines)
    feature = differs.float().argmax(1, keepdim=True)
    value = float((maps.flatten(1).gather(1, feature).squeeze(1).abs() / difference.abs()).min())
    return PropertyResult("sensitivity_a", value, value > tolerance, tolerance)


def sensitivity_b(
    method_factory: Factory,
    model: nn.Module | None = None,
    inputs: torch.Tensor | None = None,
    feature: int | Sequence[int] | None = None,
    target: Target = None,
    tolerance: float = TOLERANCES["sensitivity_b"],
    attribute_kwargs: dict | None = None,
) -> PropertyResult:
    """Sensitivity (b): a feature the output does not depend on gets no contribution.

    Textbook property 3(b) ("Sensitivity(b)" / dummy axiom of Sundararajan et al. 2017). The value is
    ``Σ_k |c_k| / Σ_i |c_i|`` over the dummy features ``k`` (indices into the flattened sample), the
    largest over the samples (0 where the whole map is 0); it passes at or below ``tolerance``. The
    model is checked not to depend on them. Default case: :func:`dummy_feature_network` with ``p_3 ≠ 0``.
    """
    if model is None and inputs is None and feature is None:
        inputs = _float64([[0.0, 3.0, 2.0], [3.0, 0.0, -1.0], [3.0, 3.0, 5.0]])
        model, feature = dummy_feature_network(), 2
    elif model is None or inputs is None or feature is None:
        raise ValueError("give model, inputs and feature for sensitivity (b), or none to use the textbook's case")
    inputs = check_inputs(inputs)
    features = torch.as_tensor([feature] if isinstance(feature, int) else list(feature), dtype=torch.long)
    size = inputs[0].numel()
    if features.numel() == 0 or bool(((features < 0) | (features >= size)).any()):
        raise ValueError(f"feature must index the flattened sample (0..{size - 1}), got {feature!r}")
    selector, output = _scores(model, inputs, target)
    moved = inputs.flatten(1).clone()
    moved[:, features] += 1.0
    if not torch.allclose(_score_of(model, moved.view_as(inputs), selector), output):
        raise ValueError(
            f"the model's output depends on feature {feature!r}, which sensitivity (b) needs to be a dummy"
        )
    maps = _explain(method_factory, model, inputs, selector, attribute_kwargs).flatten(1).abs()
    dummy, total = maps[:, features.to(maps.device)].sum(1), maps.sum(1)
    value = float(torch.where(total > 0, dummy / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0).max())
    return PropertyResult("sensitivity_b", value, value <= tolerance, tolerance)


def implementation_invariance(
    method_factory: Factory,
    models: tuple[nn.Module, nn.Module] | None = None,
    inputs: torch.Tensor | None = None,
    target: Target = None,
    tolerance: float = TOLERANCES["implementation_invariance"],
    attribute_kwargs: dict | None = None,
) -> PropertyResult:
    """Implementation invariance: functionally equal networks give equal maps.

    Textbook property 2 (Sundararajan et al. 2017, section 2.2). The value is
    ``max |c^f − c^g| / max(|c^f|, |c^g|)`` over all samples and features (0 when both maps are 0);
    it passes at or below ``tolerance``. The two models are checked to agree on ``inputs``. Default case:
    :func:`invariance_pair` at ``x = (3, 1), (2, 0.5), (4, 2.5)``.
    """
    if models is None and inputs is None:
        models, inputs = invariance_pair(), _float64([[3.0, 1.0], [2.0, 0.5], [4.0, 2.5]])
    elif models is None or inputs is None:
        raise ValueError("give models (a pair) and inputs for implementation invariance, or neither")
    if len(models) != 2:
        raise ValueError(f"models must be a pair of functionally equal networks, got {len(models)}")
    inputs = check_inputs(inputs)
    f, g = models
    selector, output = _scores(f, inputs, target)
    try:
        equal = torch.allclose(_score_of(g, inputs, selector), output)
    except ValueError as error:  # outputs of another shape
        raise ValueError(f"the two models are not functionally equal: {error}") from error
    if not equal:
        raise ValueError("the two models give different outputs on inputs: they are not functionally equal")
    maps_f = _explain(method_factory, f, inputs, selector, attribute_kwargs)
    maps_g = _explain(method_factory, g, inputs, selector, attribute_kwargs)
    scale = float(torch.maximum(maps_f.abs().max(), maps_g.abs().max()))
    value = float((maps_f - maps_g).abs().max()) / scale if scale > 0 else 0.0
    return PropertyResult("implementation_invariance", value, value <= tolerance, tolerance)


def continuity(
    method_factory: Factory,
    model: nn.Module | None = None,
    inputs: torch.Tensor | None = None,
    direction: torch.Tensor | None = None,
    eps: float = 1e-3,
    target: Target = None,
    tolerance: float | None = None,
    attribute_kwargs: dict | None = None,
    seed: int = 0,
) -> PropertyResult:
    """Continuity: how much the map moves when the input moves a little, relative to the input's move.

    Textbook property 1. With ``x± = x ± eps ‖x‖ d`` (``d`` a unit direction per sample), the value is
    ``(‖c(x+) − c(x−)‖ / max(‖c(x+)‖, ‖c(x−)‖)) / (2 eps)``, the largest over the samples: O(1) for a
    map that changes continuously with the input, O(1 / eps) for a jump. The default tolerance
    ``eps^(-1/2)`` (≈ 32 for ``eps = 1e-3``) separates the two. The class is that of ``x`` for both
    points. Default case: :func:`kink_network` at ``x = (1.25, 0.75)`` and ``(2.25, 1.75)``, on the
    boundary where its second unit switches on, moved across it along ``(1, −1)``: the output is
    continuous there, the gradient is not.

    Parameters
    ----------
    direction : Tensor, optional
        One direction per sample (or one for all); normalised here. Default for a given model: a seeded
        random direction (``seed``).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
    tolerance = eps**-0.5 if tolerance is None else tolerance
    if model is None and inputs is None and direction is None:
        model, inputs, direction = kink_network(), _float64([[1.25, 0.75], [2.25, 1.75]]), _float64([1.0, -1.0])
    elif model is None or inputs is None:
        raise ValueError("give model and inputs (and optionally direction) for continuity, or none of them")
    inputs = check_inputs(inputs)
    if direction is None:
        generator = torch.Generator().manual_seed(seed)
        direction = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype).to(inputs.device)
    direction = _as_batch(direction, inputs, "direction").flatten(1)
    length = direction.norm(dim=1, keepdim=True)
    if bool((length == 0).any()):
        raise ValueError("direction must be non-zero for every sample")
    step = (eps * inputs.flatten(1).norm(dim=1, keepdim=True) * direction / length).view_as(inputs)
    if bool((step == 0).flatten(1).all(1).any()):
        raise ValueError("continuity needs non-zero inputs: the perturbation is relative to ‖x‖")
    selector, _ = _scores(model, inputs, target)
    plus = _explain(method_factory, model, inputs + step, selector, attribute_kwargs).flatten(1)
    minus = _explain(method_factory, model, inputs - step, selector, attribute_kwargs).flatten(1)
    scale = torch.maximum(plus.norm(dim=1), minus.norm(dim=1))
    change = (plus - minus).norm(dim=1) / scale.clamp(min=torch.finfo(scale.dtype).tiny)
    value = float((change / (2 * eps)).max())
    return PropertyResult("continuity", value, value <= tolerance, tolerance)


_MEASURES = {
    "completeness": completeness,
    "conservation": conservation,
    "sensitivity_a": sensitivity_a,
    "sensitivity_b": sensitivity_b,
    "implementation_invariance": implementation_invariance,
    "continuity": continuity,
}

#: Per-call arguments of the default methods: IG needs enough steps for a 1 % completeness error
#: across the kinks of a ReLU network.
DEFAULT_ATTRIBUTE_KWARGS = {"integrated gradients": {"n_steps": 300}}


def default_methods() -> dict[str, Factory]:
    """The textbook's methods (saliency, gradient × input, IG, DeepLIFT, LRP-0) as factories by name.

    LRP-0 is the textbook's eq. 9.27: ``Epsilon(0)`` with the bias left out of the denominators.
    """
    from ..attribution.deeplift import DeepLift
    from ..attribution.gradient import InputXGradient, Saliency
    from ..attribution.integrated_gradients import IntegratedGradients
    from ..attribution.lrp import LRP, Epsilon

    return {
        "saliency": Saliency,
        "gradient × input": InputXGradient,
        "integrated gradients": IntegratedGradients,
        "DeepLIFT (rescale)": DeepLift,
        "LRP-0": lambda model: LRP(model, rule=Epsilon(0.0, bias=False)),
    }


@dataclass
class AxiomsTable:
    """Methods × properties: the measured values and pass / fail, printable as a table.

    Attributes
    ----------
    rows : list of str
        Method names.
    columns : list of str
        Property names (see :data:`PROPERTIES`).
    values : list of list of float
        ``values[i][j]``: method ``i``, property ``j``; NaN where the method could not run (see ``errors``).
    passed : list of list of bool or None
        ``None`` where the method could not run.
    errors : dict
        ``(row, column) -> message`` for the methods that raised on a test network.
    """

    rows: list[str]
    columns: list[str]
    values: list[list[float]]
    passed: list[list[bool | None]]
    errors: dict[tuple[str, str], str] = field(default_factory=dict)

    def __getitem__(self, key: tuple[str, str]) -> tuple[float, bool | None]:
        """``table[method, property] -> (value, passed)``; ``passed`` is None where the method could not run."""
        row, column = key
        if row not in self.rows or column not in self.columns:
            raise KeyError(f"no cell {key!r}: rows are {self.rows}, columns {self.columns}")
        i, j = self.rows.index(row), self.columns.index(column)
        return self.values[i][j], self.passed[i][j]

    def _cells(self) -> list[list[str]]:
        marks = {True: "✓", False: "✗"}
        return [
            [f"{value:.3g} {marks[ok]}" if ok is not None else "n/a" for value, ok in zip(values, passed)]
            for values, passed in zip(self.values, self.passed)
        ]

    def to_markdown(self) -> str:
        """A Markdown table: one row per method, ``value ✓/✗`` per property."""
        lines = ["| method | " + " | ".join(self.columns) + " |", "|---|" + "---|" * len(self.columns)]
        lines += [f"| {row} | " + " | ".join(cells) + " |" for row, cells in zip(self.rows, self._cells())]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """An HTML table for notebooks: one row per method, ``value ✓/✗`` per property, failures marked."""
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["method", *self.columns])
        body = []
        for row, cells, passed in zip(self.rows, self._cells(), self.passed):
            styled = "".join(
                f'<td style="color:#b00">{html.escape(cell)}</td>' if ok is False else f"<td>{html.escape(cell)}</td>"
                for cell, ok in zip(cells, passed)
            )
            body.append(f"<tr><th>{html.escape(row)}</th>{styled}</tr>")
        return f'<table class="axioms"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'

    def __str__(self) -> str:
        table = [["method", *self.columns]] + [[row, *cells] for row, cells in zip(self.rows, self._cells())]
        widths = [max(len(line[c]) for line in table) for c in range(len(table[0]))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)


def axioms_table(
    methods: Mapping[str, Factory] | None = None,
    attribute_kwargs: Mapping[str, dict] | None = None,
    properties: Sequence[str] = PROPERTIES,
) -> AxiomsTable:
    """Every property of every method on the textbook's test networks: the axioms table.

    Parameters
    ----------
    methods : mapping of str to factory, optional
        ``name -> method_factory(model)``, e.g. ``{"saliency": nni.Saliency}``; default
        :func:`default_methods`.
    attribute_kwargs : mapping of str to dict, optional
        Per-call arguments by method name, on top of :data:`DEFAULT_ATTRIBUTE_KWARGS`.
    properties : sequence of str
        Columns, a subset of :data:`PROPERTIES`.

    Returns
    -------
    AxiomsTable
        With the default methods it reads as the textbook says: saliency fails completeness and
        sensitivity (a) and keeps implementation invariance; IG is complete and sensitive; DeepLIFT is
        complete (summation-to-delta); LRP-0 conserves the output. Beyond the textbook's statements,
        DeepLIFT and LRP-0 break implementation invariance on :func:`invariance_pair` and saliency and
        gradient × input break continuity on :func:`kink_network`.
    """
    methods = default_methods() if methods is None else methods
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("methods must be a non-empty dict {name: method_factory}")
    unknown = [p for p in properties if p not in _MEASURES]
    if unknown or not properties:
        raise ValueError(f"properties must be among {PROPERTIES}, got {list(properties)!r}")
    kwargs = {**DEFAULT_ATTRIBUTE_KWARGS, **(attribute_kwargs or {})}
    values, passed, errors = [], [], {}
    for name, factory in methods.items():
        row_values, row_passed = [], []
        for prop in properties:
            try:
                result = _MEASURES[prop](factory, attribute_kwargs=kwargs.get(name))
            except (NotImplementedError, ValueError) as error:
                errors[(name, prop)] = f"{type(error).__name__}: {error}"
                row_values.append(math.nan)
                row_passed.append(None)
                continue
            row_values.append(result.value)
            row_passed.append(result.passed)
        values.append(row_values)
        passed.append(row_passed)
    return AxiomsTable(rows=list(methods), columns=list(properties), values=values, passed=passed, errors=errors)
