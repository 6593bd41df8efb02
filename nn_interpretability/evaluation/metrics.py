"""The table of per-sample evaluation metrics: name -> function, what it takes, which direction is better.

Every function returns one score per sample, a float tensor ``(N,)``. ``takes`` says how it is called:

- ``"attributions"``: ``function(attributions)``;
- ``"model"``: ``function(model, inputs, attributions, target)``;
- ``"explain"``: ``function(explain, inputs, target)`` with ``explain`` an ``Attribution``;
- ``"method_factory"``: ``function(model, method_factory, inputs, target)``.
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


def score_function(name: str, **settings) -> Callable:
    """Metric ``name`` of :data:`METRICS` as ``score(model, inputs, attributions, target) -> (N,)``, with ``settings``.

    The form :func:`~nn_interpretability.evaluation.leaderboard` and
    :func:`~nn_interpretability.evaluation.metric_reliability` score maps with: metrics that read the model
    and the maps (``takes="model"``) or the maps alone (``"attributions"``). Those that run an explainer
    themselves (``"explain"``, ``"method_factory"``) do not score given maps and are refused.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    metric = METRICS[name]
    if metric.takes == "model":
        return lambda model, inputs, attributions, target: metric.function(model, inputs, attributions, target, **settings)
    if metric.takes == "attributions":
        return lambda model, inputs, attributions, target: metric.function(attributions, **settings)
    raise ValueError(
        f"metric {name!r} runs an explainer itself ({metric.takes!r}): call {metric.function.__name__} with the "
        "method, it does not score given maps"
    )
