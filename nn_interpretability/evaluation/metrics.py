"""The table of per-sample evaluation metrics: name -> function, what it takes, which direction is better.

Every function returns one score per sample, a float tensor ``(N,)``. ``takes`` says how it is called:

- ``"attributions"``: ``function(attributions)``;
- ``"model"``: ``function(model, inputs, attributions, target)``;
- ``"explain"``: ``function(explain, inputs, target)`` with ``explain`` an ``Attribution``;
- ``"method_factory"``: ``function(model, method_factory, inputs, target)``.

:func:`score_function` turns a metric into the form the leaderboard calls.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .complexity import complexity, sparseness
from .perturbation import aopc, faithfulness_correlation, infidelity, pixel_flipping, road
from .randomisation import efficient_mprt, random_logit, smooth_mprt
from .robustness import local_lipschitz_estimate, max_sensitivity


class Metric(NamedTuple):
    """One metric: its function, ``"higher"`` or ``"lower"`` is better, and how it is called (see the module)."""

    function: Callable
    better: str
    takes: str


METRICS: dict[str, Metric] = {
    "pixel_flipping": Metric(pixel_flipping, "lower", "model"),
    "aopc": Metric(aopc, "higher", "model"),
    "faithfulness_correlation": Metric(faithfulness_correlation, "higher", "model"),
    "road": Metric(road, "lower", "model"),
    "infidelity": Metric(infidelity, "lower", "model"),
    "max_sensitivity": Metric(max_sensitivity, "lower", "explain"),
    "local_lipschitz_estimate": Metric(local_lipschitz_estimate, "lower", "explain"),
    "sparseness": Metric(sparseness, "higher", "attributions"),
    "complexity": Metric(complexity, "lower", "attributions"),
    "random_logit": Metric(random_logit, "lower", "explain"),
    "smooth_mprt": Metric(smooth_mprt, "lower", "method_factory"),
    "efficient_mprt": Metric(efficient_mprt, "higher", "method_factory"),
}


class ExplainerScore:
    """A metric that runs the method itself, as the leaderboard calls it: ``score(model, method_factory, inputs, target) -> (N,)``.

    ``method_factory(model) -> Attribution`` builds the method on any model (the metrics of
    ``takes="method_factory"`` build it on a randomised copy too); ``takes="explain"`` metrics get
    ``method_factory(model)``. Made by :func:`score_function`; the leaderboard tells it from a map metric
    by its type.
    """

    def __init__(self, metric: Metric, settings: dict):
        self.metric, self.settings = metric, settings

    def __call__(self, model, method_factory: Callable, inputs, target):
        if self.metric.takes == "explain":
            return self.metric.function(method_factory(model), inputs, target, **self.settings)
        return self.metric.function(model, method_factory, inputs, target, **self.settings)

    def __repr__(self) -> str:
        return f"ExplainerScore({self.metric.function.__name__}, {self.settings})"


def score_function(name: str, **settings) -> Callable:
    """Metric ``name`` of :data:`METRICS` with ``settings``, in the form :func:`~nn_interpretability.evaluation.leaderboard` calls.

    Metrics that read the model and the maps (``takes="model"``) or the maps alone (``"attributions"``)
    become ``score(model, inputs, attributions, target) -> (N,)``, the form
    :func:`~nn_interpretability.evaluation.metric_reliability` scores maps with too. Those that run the
    explainer themselves (``"explain"``, ``"method_factory"``) become an :class:`ExplainerScore`,
    ``score(model, method_factory, inputs, target)``, to which the leaderboard hands each method's factory.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    metric = METRICS[name]
    if metric.takes == "model":
        return lambda model, inputs, attributions, target: metric.function(model, inputs, attributions, target, **settings)
    if metric.takes == "attributions":
        return lambda model, inputs, attributions, target: metric.function(attributions, **settings)
    return ExplainerScore(metric, settings)
