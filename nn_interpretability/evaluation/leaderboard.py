"""A leaderboard: every registered attribution method scored by per-sample metrics, with confidence intervals.

The localisation benchmark (a small, offline counterpart of CLEVR-XAI, Arras, Osman & Samek 2022) runs
every method of the registry on :func:`~nn_interpretability.data.mnist_canvas` canvases and the zoo's
``mnist_canvas_cnn``, scores the maps with the localisation metrics (pointing game, relevance mass and
rank accuracy) and summarises each method's per-sample scores by their mean and a bootstrap interval
(:func:`~nn_interpretability.evaluation.statistics.summarize`). Two maps without information are scored
too: a seeded random map (chance) and a map that prefers the image centre (a prior, no model).

A metric either scores the maps (``metric(model, inputs, attributions, targets)``) or runs the method
itself (an :class:`~nn_interpretability.evaluation.metrics.ExplainerScore` from
:func:`~nn_interpretability.evaluation.score_function`: robustness, random logit, sMPRT / eMPRT), to
which the leaderboard hands each method built by :func:`configured_method`. The baselines run as
methods too (:class:`BaselineMap`).

Methods that do not give a class's map over the input pixels are listed with the reason instead of a
score (:data:`SKIPPED`); a method that fails is listed with its error, never left out silently.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.base import Attribution, Run
from ..core.registry import available_methods, get_method
from .localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy
from .metrics import ExplainerScore
from .statistics import DEFAULT_RESAMPLES, Summary, summarize

#: ``metric(model, inputs, attributions, targets) -> (N,)`` per-sample scores of given maps (or an
#: :class:`~nn_interpretability.evaluation.metrics.ExplainerScore`, which runs the method itself).
ScoreFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
PROFILES = ("fast", "full")
BASELINES = ("random", "centre")

_LAYER = "explains a hidden layer's units (maps of the layer's shape), not the input pixels"
_NEURON = "explains one chosen hidden neuron, not the class score"
#: Registered methods the leaderboard does not score, and why.
SKIPPED: dict[str, str] = {
    "layer-activation": _LAYER,
    "layer-gradient-x-activation": _LAYER,
    "layer-integrated-gradients": _LAYER,
    "layer-conductance": _LAYER,
    "internal-influence": _LAYER,
    "neuron-gradient": _NEURON,
    "neuron-integrated-gradients": _NEURON,
    "neuron-conductance": _NEURON,
    "attention-rollout": "reads the attention weights of a transformer; a CNN has none",
}


def localisation_metrics(masks: torch.Tensor) -> dict[str, ScoreFn]:
    """The three localisation metrics against ``masks`` as leaderboard metrics (higher is better)."""
    return {
        "pointing game": lambda model, x, a, y: pointing_game(a, masks),
        "relevance mass accuracy": lambda model, x, a, y: relevance_mass_accuracy(a, masks),
        "relevance rank accuracy": lambda model, x, a, y: relevance_rank_accuracy(a, masks),
    }


def _grid_features(height: int, width: int, cell: int) -> torch.Tensor:
    """Square cells of ``cell`` pixels as one feature group each, ``(1, 1, H, W)`` long."""
    rows = torch.arange(height) // cell
    cols = torch.arange(width) // cell
    return (rows[:, None] * ((width + cell - 1) // cell) + cols[None, :]).view(1, 1, height, width)


def method_settings(
    name: str, inputs: torch.Tensor, layer: str, fc_layer: str | None, profile: str, seed: int
) -> tuple[dict, dict]:
    """``(construction kwargs, per-call kwargs)`` of method ``name`` for the leaderboard on ``inputs``.

    The ``"fast"`` profile keeps every method to seconds on a CPU core for 50 canvases of 64×64: 16 path
    points, 8 noisy copies, perturbations of 8×8 cells (occlusion: 16×16 windows at stride 8), 50 LIME /
    Kernel SHAP samples, 100 RISE masks, one Shapley permutation; ``"full"`` uses 50 points, 32 copies,
    4×4 cells (occlusion: 8×8 windows at stride 4), 500 samples, 2,000 masks, ten permutations. Methods
    not named here run with the registry's defaults.
    """
    fast = profile == "fast"
    height, width = inputs.shape[-2:]
    cell = 8 if fast else 4
    features = {"feature_mask": _grid_features(height, width, cell).to(inputs.device)}
    noisy = {"nt_samples": 8 if fast else 32, "seed": seed}
    window = 16 if fast else 8
    table: dict[str, tuple[dict, dict]] = {
        "integrated-gradients": ({}, {"n_steps": 16 if fast else 50}),
        "smoothgrad": (noisy, {}),
        "smoothgrad-sq": (noisy, {}),
        "vargrad": (noisy, {}),
        "gradient-shap": ({"n_samples": 8 if fast else 32, "seed": seed}, {}),
        "occlusion": ({}, {"sliding_window_shapes": (inputs.shape[1], window, window), "strides": window // 2}),
        "lime": ({"segmentation": "grid", "cell_size": cell, "n_samples": 50 if fast else 500, "seed": seed}, {}),
        "feature-ablation": ({}, features),
        "shapley-value-sampling": ({"n_samples": 1 if fast else 10, "seed": seed}, features),
        "kernel-shap": ({"n_samples": 50 if fast else 500, "seed": seed}, features),
        "rise": ({"n_masks": 100 if fast else 2000, "mask_resolution": 8, "seed": seed}, {}),
        "deep-taylor": ({"low": 0.0, "high": 1.0}, {}),
        "cam": ({"feature_layer": layer, "fc_layer": fc_layer}, {}),
        "score-cam": ({"layer": layer}, {"internal_batch_size": 256}),
        "ablation-cam": ({"layer": layer}, {"internal_batch_size": 256}),
    }
    for cam_method in ("grad-cam", "grad-cam-plus-plus", "xgrad-cam", "hires-cam", "layer-cam", "eigen-cam", "guided-grad-cam"):
        table[cam_method] = ({"layer": layer}, {})
    return table.get(name, ({}, {}))


def baseline_map(name: str, inputs: torch.Tensor, seed: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A map without information, ``(N, 1, H, W)``: ``"random"`` (uniform noise, seeded) or ``"centre"``.

    ``"centre"`` is minus the distance to the image centre: its maximum is the centre, its mass (after
    the positive part, :func:`~nn_interpretability.evaluation.relevance_mass_accuracy`) is spread
    around it. It tells how much a prior on the object's position alone scores. ``"random"`` draws from
    ``generator`` when given (the next draws of a running sequence), else from a new one seeded ``seed``.
    """
    n, height, width = inputs.shape[0], inputs.shape[-2], inputs.shape[-1]
    if name == "random":
        generator = torch.Generator().manual_seed(seed) if generator is None else generator
        return torch.rand(n, 1, height, width, generator=generator, dtype=torch.float64).to(inputs.device)
    if name == "centre":
        rows = torch.arange(height, dtype=torch.float64) - (height - 1) / 2
        cols = torch.arange(width, dtype=torch.float64) - (width - 1) / 2
        distance = (rows[:, None] ** 2 + cols[None, :] ** 2).sqrt()
        return (distance.max() - distance).expand(n, 1, height, width).to(inputs.device)
    raise ValueError(f"unknown baseline {name!r}; choose one of {BASELINES}")


class BaselineMap(Attribution):
    """A baseline of :func:`baseline_map` as a method, so that the metrics that run the method score it too.

    The map ignores the model and the target: ``"centre"`` is the same on every call; ``"random"`` is
    redrawn on every call from one generator seeded ``seed`` when the method is built (its first map is
    ``baseline_map("random", inputs, seed)``), so a method built anew with the same seed repeats the
    draws. What the explainer metrics then score, by construction:

    - max-sensitivity and the local Lipschitz estimate: ``"centre"`` 0 (a constant map never moves);
      ``"random"`` the change between independent noise maps, about ``sqrt(1/2)`` relative for
      max-sensitivity (``E|U - U'|² / E|U|² = (1/6) / (1/3)`` for uniform noise);
    - random logit: ``"centre"`` similarity 1 (the same map for every class, the worst score);
      ``"random"`` about 0 (redrawn noise differs between classes: the test cannot tell noise from a
      class-specific map);
    - sMPRT and eMPRT: the factory builds one method per model with the same seed, so the trained and
      the randomised model get identical maps: similarity 1 (sMPRT's worst) and an entropy rise of 0
      (eMPRT's no-change), for both baselines: a map that does not depend on the model fails the test.

    The map, ``(N, 1, H, W)``, is repeated over the input's channels.
    """

    needs_gradients = False

    def __init__(self, model: nn.Module, baseline: str, seed: int = 0):
        super().__init__(model)
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; choose one of {BASELINES}")
        self.baseline, self.seed = baseline, seed
        self.stochastic = baseline == "random"
        self._generator = torch.Generator().manual_seed(seed)

    def _attribute(self, run: Run) -> torch.Tensor:
        inputs = run.inputs
        return baseline_map(self.baseline, inputs, generator=self._generator).to(inputs.dtype).expand_as(inputs).contiguous()


class BoundMethod(Attribution):
    """A method with per-call arguments fixed: ``attribute(x, target)`` is ``method.attribute(x, target, **arguments)``.

    What a metric that runs the method itself needs when the method's settings include per-call ones
    (IG's ``n_steps``, a ``feature_mask``, occlusion's windows): the metric calls ``attribute(x, target=...)``
    only. The capabilities are the method's; :meth:`with_model` rebinds the method.
    """

    def __init__(self, method: Attribution, **arguments):
        if not isinstance(method, Attribution):
            raise TypeError(f"method must be an attribution method of this package, got {type(method).__name__}")
        super().__init__(method.model)
        self.method, self.arguments = method, arguments
        for capability in ("takes_baselines", "has_convergence_delta", "multiplies_by_inputs", "needs_gradients", "stochastic",
                           "explains_every_class", "maps_like_inputs"):
            setattr(self, capability, getattr(method, capability))

    def attribute(self, inputs: torch.Tensor, target=None, **kwargs):
        return self.method.attribute(inputs, target=target, **(self.arguments | kwargs))

    def __repr__(self) -> str:
        return f"BoundMethod({self.method!r}, {sorted(self.arguments)})"


def configured_method(
    name: str, model: nn.Module, inputs: torch.Tensor, layer: str, fc_layer: str | None, profile: str, seed: int
) -> Attribution:
    """Method ``name`` on ``model`` as the leaderboard runs it: :func:`method_settings`, per-call ones bound.

    ``"baseline: random"`` and ``"baseline: centre"`` give the :class:`BaselineMap`. ``lambda m:
    configured_method(name, m, ...)`` is the ``method_factory`` of the metrics that run the method.
    """
    if name.startswith("baseline: "):
        return BaselineMap(model, name.removeprefix("baseline: "), seed)
    construct, per_call = method_settings(name, inputs, layer, fc_layer, profile, seed)
    method = get_method(name, model, **construct)
    return BoundMethod(method, **per_call) if per_call else method


@dataclass
class Leaderboard:
    """Methods × metrics: per-sample scores, their summaries, and the methods not scored.

    Attributes
    ----------
    rows : list of dict
        One row per scored method, sorted by ``sort_by`` (best first): ``{"method": name, "<metric>":
        mean, "<metric> low": ..., "<metric> high": ..., "seconds": time to compute the maps, "metric seconds":
        time of the metrics that run the method}``;
        baseline rows are named ``"baseline: random"`` and ``"baseline: centre"``.
    scores : dict
        ``{method: {metric: Tensor (N,)}}`` (NaN where a score is undefined).
    summaries : dict
        ``{method: {metric: Summary}}`` of the defined scores.
    skipped : dict
        ``{method: reason}`` for the registered methods not scored (:data:`SKIPPED`).
    failed : dict
        ``{method: error message}`` for methods that raised.
    better : dict
        ``{metric: "higher" or "lower"}``.
    sort_by : str
        The metric the rows are sorted by.
    undefined : dict
        ``{method: {metric: count}}``: samples whose score is NaN (e.g. a constant map has no rank
        correlation, sMPRT; no entropy rise, eMPRT), left out of the summary.
    not_applicable : dict
        ``{method: {metric: error}}``: metrics that raised for the method (e.g. a ZBox rule refuses the
        perturbed inputs of max-sensitivity outside its bounds) or are NaN on every sample; the row
        holds NaN for them and ``scores`` / ``summaries`` leave them out.
    settings : dict
        How the table was made: profile, number of inputs ``n``, the number each metric scored
        (``samples``: the first ones), seed, confidence, bootstrap resamples.
    """

    rows: list[dict]
    scores: dict[str, dict[str, torch.Tensor]]
    summaries: dict[str, dict[str, Summary]]
    skipped: dict[str, str]
    failed: dict[str, str]
    better: dict[str, str]
    sort_by: str
    undefined: dict[str, dict[str, int]] = field(default_factory=dict)
    not_applicable: dict[str, dict[str, str]] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def cells(self, metrics: Sequence[str] | None = None, digits: int = 3) -> dict[str, dict[str, str]]:
        """``{method: {"<metric> (↑ or ↓)": "mean [low, high]"}}`` in the rows' order, for a table (``nni.plot.table``)."""
        metrics = list(self.better) if metrics is None else list(metrics)
        unknown = [m for m in metrics if m not in self.better]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; the board has {list(self.better)}")
        return {
            row["method"]: {
                f"{m} ({'↑' if self.better[m] == 'higher' else '↓'})": "n/a" if row[m] != row[m]
                else f"{row[m]:.{digits}f} [{row[m + ' low']:.{digits}f}, {row[m + ' high']:.{digits}f}]"
                for m in metrics
            }
            for row in self.rows
        }

    def to_markdown(self, digits: int = 3) -> str:
        """The table as Markdown: ``mean [low, high]`` per metric, then the skipped and failed methods."""
        metrics = list(self.better)
        lines = [
            "| method | " + " | ".join(f"{m} ({'↑' if self.better[m] == 'higher' else '↓'})" for m in metrics) + " | seconds (maps) | seconds (metrics) |",
            "|---|" + "---|" * (len(metrics) + 2),
        ]
        for row in self.rows:
            cells = [f"{row[m]:.{digits}f} [{row[m + ' low']:.{digits}f}, {row[m + ' high']:.{digits}f}]" for m in metrics]
            lines.append(f"| {row['method']} | " + " | ".join(cells) + f" | {row['seconds']:.1f} | {row['metric seconds']:.1f} |")
        lines += [f"\nnot scored: **{name}**: {reason}" for name, reason in self.skipped.items()]
        lines += [f"\nfailed: **{name}**: {error}" for name, error in self.failed.items()]
        return "\n".join(lines)


def leaderboard(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    metrics: Mapping[str, ScoreFn],
    *,
    layer: str,
    fc_layer: str | None = None,
    better: Mapping[str, str] | None = None,
    methods: Sequence[str] | None = None,
    baselines: Sequence[str] = BASELINES,
    profile: str = "fast",
    samples: Mapping[str, int] | None = None,
    sort_by: str | None = None,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Leaderboard:
    """Score every method (default: every registered one) on ``inputs`` with every metric, with intervals.

    Each method explains ``targets`` on the whole batch (methods chunk internally) and the map metrics
    score these maps; the metrics that run the method themselves (:class:`~.metrics.ExplainerScore`) get
    its factory, ``model -> configured_method(name, model, ...)``, the baselines included
    (:class:`BaselineMap` says what they score). Each metric gives per-sample scores, summarised by
    :func:`~nn_interpretability.evaluation.summarize` (BCa bootstrap, ``seed``). CAM needs ``fc_layer``
    (the linear layer after global average pooling) and is skipped with that reason without it. A
    method whose map raises is listed in ``failed`` with the error, without a row; a metric that raises
    for a method (or is NaN on every sample) is listed in ``not_applicable`` with the error and the row
    holds NaN for it; a score that is NaN on some samples is left out of its summary and counted in
    ``undefined``. Rows with NaN in ``sort_by`` come last.

    Parameters
    ----------
    model : nn.Module
        The model, in eval mode (left unchanged: every method borrows it).
    inputs : Tensor
        ``(N, C, H, W)``.
    targets : Tensor
        ``(N,)`` the explained classes (for a localisation benchmark: the labels the masks belong to).
    metrics : mapping of str to callable
        ``metric(model, inputs, attributions, targets) -> (N,)``, e.g. :func:`localisation_metrics` or
        :func:`~nn_interpretability.evaluation.score_function`, whose metrics that run the method are
        :class:`~.metrics.ExplainerScore`: ``metric(model, method_factory, inputs, targets)``.
    layer : str
        The feature layer of the CAM family (the last conv block).
    fc_layer : str, optional
        CAM's linear layer after the global average pooling.
    better : mapping of str to {"higher", "lower"}, optional
        Each metric's direction; default "higher" for all.
    methods : sequence of str, optional
        Registry names to score; default every registered method not in :data:`SKIPPED`.
    baselines : sequence of str
        Maps without information scored as rows too (:func:`baseline_map`).
    profile : {"fast", "full"}
        The methods' sample and step counts (:func:`method_settings`).
    samples : mapping of str to int, optional
        ``{metric: k}``: the metric scores the first ``k`` inputs only (for the expensive ones: those that
        run the method explain each input many times); the others score all.
    sort_by : str, optional
        The metric the rows are sorted by (default the first), best first.
    confidence, n_resamples, seed
        Of the bootstrap intervals; ``seed`` also seeds the stochastic methods and the random baseline.

    Returns
    -------
    Leaderboard
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if not metrics:
        raise ValueError("give at least one metric")
    better = {name: "higher" for name in metrics} | dict(better or {})
    unknown = sorted(set(better) - set(metrics))
    if unknown or any(v not in ("higher", "lower") for v in better.values()):
        raise ValueError(f"better must map the metrics {list(metrics)} to 'higher' or 'lower', got {dict(better)}")
    sort_by = next(iter(metrics)) if sort_by is None else sort_by
    if sort_by not in metrics:
        raise ValueError(f"sort_by must be one of the metrics {list(metrics)}, got {sort_by!r}")
    n = len(inputs)
    samples = dict(samples or {})
    if set(samples) - set(metrics) or any(not isinstance(k, int) or not 1 <= k <= n for k in samples.values()):
        raise ValueError(f"samples must map metrics of {list(metrics)} to a number of inputs between 1 and {n}, got {samples}")
    first = {m: samples.get(m, n) for m in metrics}
    registered = available_methods()
    if methods is None:
        names = [name for name in registered if name not in SKIPPED]
        skipped = {name: SKIPPED[name] for name in registered if name in SKIPPED}
    else:
        missing = [name for name in methods if name not in registered]
        if missing:
            raise ValueError(f"unknown methods {missing}; registered: {', '.join(registered)}")
        names, skipped = list(methods), {}
    if "cam" in names and fc_layer is None:
        names.remove("cam")
        skipped["cam"] = "CAM needs fc_layer, the linear layer after the global average pooling"

    names += [f"baseline: {name}" for name in baselines]
    unknown_baselines = [name for name in baselines if name not in BASELINES]
    if unknown_baselines:
        raise ValueError(f"unknown baselines {unknown_baselines}; choose from {BASELINES}")
    scores, summaries, rows, failed, undefined, not_applicable = {}, {}, [], {}, {}, {}
    for name in names:
        def factory(network: nn.Module, name=name) -> Attribution:
            return configured_method(name, network, inputs, layer, fc_layer, profile, seed)

        try:
            start = time.perf_counter()
            attributions = factory(model).attribute(inputs, target=targets).detach()
            seconds = time.perf_counter() - start
        except Exception as error:  # one failing method must not hide the others' scores; it is reported
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        start = time.perf_counter()
        scores[name], summaries[name], row = {}, {}, {"method": name}
        for m, fn in metrics.items():
            k = first[m]
            try:
                values = torch.as_tensor(
                    fn(model, factory, inputs[:k], targets[:k]) if isinstance(fn, ExplainerScore) else fn(model, inputs[:k], attributions[:k], targets[:k])
                ).detach().double().cpu()
                if values.isnan().all():
                    raise ValueError("the metric is undefined (NaN) on every sample")
                summary = summarize(values[~values.isnan()], confidence=confidence, n_resamples=n_resamples, seed=seed)
            except Exception as error:  # the metric does not apply to this method; the others still score it
                not_applicable.setdefault(name, {})[m] = f"{type(error).__name__}: {error}"
                row |= {m: float("nan"), f"{m} low": float("nan"), f"{m} high": float("nan")}
                continue
            if values.isnan().any():
                undefined.setdefault(name, {})[m] = int(values.isnan().sum())
            scores[name][m], summaries[name][m] = values, summary
            row |= {m: summary.mean, f"{m} low": summary.low, f"{m} high": summary.high}
        rows.append(row | {"seconds": seconds, "metric seconds": time.perf_counter() - start})
    rows.sort(key=lambda row: (row[sort_by] != row[sort_by], -row[sort_by] if better[sort_by] == "higher" else row[sort_by]))
    settings = {"profile": profile, "n": n, "samples": first, "seed": seed, "confidence": confidence, "n_resamples": n_resamples}
    return Leaderboard(rows, scores, summaries, skipped, failed, dict(better), sort_by, undefined, not_applicable, settings)
