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
