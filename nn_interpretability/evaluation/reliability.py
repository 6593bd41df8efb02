"""Is a metric reliable? Its ranking of methods should survive minor perturbations and react to disruptive ones.

After MetaQuantus (Hedström, Bommer, Wickstrøm, Samek, Lapuschkin & Höhne 2023, "The meta-evaluation
problem in explainable AI: identifying reliable estimators with MetaQuantus", TMLR). A
metric is scored with several explanation methods on the same inputs, before and after perturbing the
model (or the inputs) K times:

- a **minor** perturbation (small multiplicative noise on the parameters, or small input noise) should
  change neither the explanations' quality nor the metric's verdict: *noise resilience* (NR);
- a **disruptive** perturbation (every parameter layer re-initialised, or large input noise) destroys
  what the explanations explain: the metric should notice, *adversary reactivity* (AR).

Each is measured by the paper's two criteria (our reading of their definitions):

- intra-consistency (IAC), per method: the two-sided Wilcoxon signed-rank p-value between the
  unperturbed and the perturbed scores of the same samples, averaged over methods and perturbations;
  IAC_NR = mean p (high: the score distribution stays), IAC_AR = mean (1 - p) (high: it changes);
- inter-consistency (IEC), across methods: IEC_NR = the share of (perturbation, sample, method) whose
  rank among the methods on that sample is unchanged; IEC_AR = the share whose perturbed score is worse
  than the unperturbed one (lower, or higher for a lower-is-better metric).

Resilience is the mean of IAC_NR and IEC_NR, reactivity that of IAC_AR and IEC_AR, the meta-consistency
score (MC) the mean of all four, each in [0, 1]. Beyond the paper, the Kendall τ between the methods'
mean scores before and after a minor perturbation says whether the leaderboard itself keeps its order.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..core.validation import positive_int
from .metrics import ExplainerScore
from .sanity import parameter_layers, randomize_layer

PERTURBATIONS = ("model", "input")
Explain = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Metric = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ReliabilityResult:
    """A metric's scores of several methods under minor and disruptive perturbations, and the criteria.

    Attributes
    ----------
    methods : tuple of str
        The methods, in the order of the score tensors' method axis.
    scores : Tensor
        ``(M, N)``: every method's per-sample scores on the unperturbed model and inputs.
    minor_scores, disruptive_scores : Tensor
        ``(K, M, N)``: the same after each of the K minor / disruptive perturbations.
    intra_consistency_minor, inter_consistency_minor : float
        IAC_NR and IEC_NR (see the module's docstring).
    intra_consistency_disruptive, inter_consistency_disruptive : float
        IAC_AR and IEC_AR.
    ranking_tau_minor : float
        Kendall τ between the methods' mean scores before and after a minor perturbation, averaged over
        the K perturbations (1: the same order).
    prediction_agreement_minor : float
        The share of samples whose predicted class the minor perturbations keep (averaged over K): how
        minor they are.
    perturbation : str
        ``"model"`` or ``"input"``.
    higher_is_better : bool
        The metric's direction.
    seed : int
        Seed of the perturbations.
    """

    methods: tuple[str, ...]
    scores: torch.Tensor
    minor_scores: torch.Tensor
    disruptive_scores: torch.Tensor
    intra_consistency_minor: float
    inter_consistency_minor: float
    intra_consistency_disruptive: float
    inter_consistency_disruptive: float
    ranking_tau_minor: float
    prediction_agreement_minor: float
    perturbation: str
    higher_is_better: bool
    seed: int

    @property
    def resilience(self) -> float:
        """Mean of IAC_NR and IEC_NR: does the verdict survive minor perturbations?"""
        return (self.intra_consistency_minor + self.inter_consistency_minor) / 2

    @property
    def reactivity(self) -> float:
        """Mean of IAC_AR and IEC_AR: do the scores react to disruptive perturbations?"""
        return (self.intra_consistency_disruptive + self.inter_consistency_disruptive) / 2

    @property
    def meta_consistency(self) -> float:
        """MetaQuantus's MC score: the mean of the four criteria."""
        return (self.resilience + self.reactivity) / 2

    def as_dict(self) -> dict:
        """The criteria by name, for a table."""
        return {
            "IAC minor (NR)": self.intra_consistency_minor,
            "IEC minor (NR)": self.inter_consistency_minor,
            "IAC disruptive (AR)": self.intra_consistency_disruptive,
            "IEC disruptive (AR)": self.inter_consistency_disruptive,
            "resilience": self.resilience,
            "reactivity": self.reactivity,
            "MC": self.meta_consistency,
            "Kendall tau of the method means (minor)": self.ranking_tau_minor,
            "predictions kept (minor)": self.prediction_agreement_minor,
        }


def _wilcoxon_p(before: np.ndarray, after: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 when nothing changed (no difference to test)."""
    if np.all(before == after):
        return 1.0
    return float(stats.wilcoxon(before, after, zero_method="wilcox").pvalue)


def _ranks(scores: torch.Tensor, higher_is_better: bool) -> torch.Tensor:
    """Rank of every method on every sample, ``(..., M, N)`` -> same shape, 0 = best; ties share the lowest."""
    signed = -scores if higher_is_better else scores
    # A method's rank is the number of methods strictly better on that sample, so equal scores tie.
    return (signed.unsqueeze(-2) < signed.unsqueeze(-3)).sum(-3)


def _minor_model(model: nn.Module, sigma: float, generator: torch.Generator) -> nn.Module:
    """A copy of ``model`` with every parameter multiplied by ``1 + sigma * ε``, ε standard normal."""
    noisy = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in noisy.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.mul_(1 + sigma * noise.to(parameter.device))
    return noisy


def _randomized_model(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every parameter layer re-initialised (the last step of cascading randomisation)."""
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    for offset, name in enumerate(parameter_layers(randomized)):
        randomize_layer(modules[name], seed + offset)
    return randomized


def metric_reliability(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    methods: Mapping[str, Explain],
    metric: Metric | Mapping[str, Metric],
    *,
    higher_is_better: bool | Mapping[str, bool] = True,
    perturbation: str = "model",
    n_perturbations: int = 3,
    minor_noise: float | None = None,
    disruptive_noise: float = 0.5,
    seed: int = 0,
) -> ReliabilityResult | dict[str, ReliabilityResult]:
    """Score ``methods`` with ``metric`` before and after minor and disruptive perturbations (MetaQuantus).

    Hedström et al. 2023 ("The meta-evaluation problem in explainable AI", TMLR: the model and input
    perturbation tests and the intra- / inter-consistency criteria IAC and IEC); the computed criteria are
    described in the module's docstring. Every method explains the fixed ``targets`` on every (perturbed)
    model and input, batched over the inputs, once for all metrics; the caller's model is never changed
    (perturbations act on copies).

    Parameters
    ----------
    model : nn.Module
        The model, in eval mode.
    inputs : Tensor
        ``(N, ...)`` inputs, at least 2 (the Wilcoxon test needs pairs).
    targets : Tensor
        ``(N,)`` the explained class of every sample, kept under every perturbation.
    methods : mapping of str to callable
        ``explain(model, inputs, targets) -> attributions`` per method; at least two methods.
    metric : callable or mapping of str to callable
        ``metric(model, inputs, attributions, targets) -> (N,)`` per-sample scores; several by name to
        check them on the same explanations.
    higher_is_better : bool or mapping of str to bool
        The metric's direction (for the ranks and IEC_AR); per metric name for a mapping.
    perturbation : {"model", "input"}
        ``"model"``: minor = each parameter times ``1 + minor_noise * ε`` (default ``minor_noise`` 0.01);
        disruptive = every parameter layer re-initialised. ``"input"``: minor = uniform noise in
        ``± minor_noise`` added to the inputs (default 0.01), disruptive = in ``± disruptive_noise``.
    n_perturbations : int
        K, the perturbations of each kind.
    minor_noise, disruptive_noise : float
        The noise levels (see ``perturbation``).
    seed : int
        Seeds every perturbation (recorded in the result).

    Returns
    -------
    ReliabilityResult
        Or a dict of them by metric name when ``metric`` is a mapping.
    """
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
    if len(methods) < 2:
        raise ValueError(f"a metric's ranking needs at least two methods, got {len(methods)}")
    if inputs.shape[0] < 2 or targets.shape != inputs.shape[:1]:
        raise ValueError(
            f"give at least 2 inputs and one target per input; got inputs {tuple(inputs.shape)}, targets {tuple(targets.shape)}"
        )
    n_perturbations = positive_int(n_perturbations, "n_perturbations")
    minor_noise = 0.01 if minor_noise is None else float(minor_noise)
    metrics = dict(metric) if isinstance(metric, Mapping) else {"metric": metric}
    runs_method = [name for name, fn in metrics.items() if isinstance(fn, ExplainerScore)]
    if runs_method:
        raise ValueError(f"metric_reliability scores given maps; {runs_method} run the method themselves")
    directions = (
        {name: higher_is_better.get(name, True) for name in metrics}
        if isinstance(higher_is_better, Mapping) else dict.fromkeys(metrics, higher_is_better)
    )
    names = tuple(methods)

    def score_all(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rows: dict[str, list[torch.Tensor]] = {m: [] for m in metrics}
        for name in names:
            attributions = methods[name](net, x, targets)
            for m, fn in metrics.items():
                values = torch.as_tensor(fn(net, x, attributions, targets)).detach().double().cpu()
                if values.shape != (len(x),):
                    raise ValueError(
                        f"the metric must return one score per sample ({len(x)},), got {tuple(values.shape)} for {name}"
                    )
                rows[m].append(values)
        return {m: torch.stack(r) for m, r in rows.items()}

    with torch.no_grad():
        predictions = model(inputs).argmax(1)
    generator = torch.Generator().manual_seed(seed)
    scores = score_all(model, inputs)
    minor, disruptive, kept = [], [], []
    for k in range(n_perturbations):
        if perturbation == "model":
            minor_net, minor_x = _minor_model(model, minor_noise, generator), inputs
            disruptive_net, disruptive_x = _randomized_model(model, seed + 1000 * (k + 1)), inputs
        else:
            noise = torch.rand(inputs.shape, generator=generator, dtype=inputs.dtype).to(inputs.device) * 2 - 1
            minor_net, minor_x = model, inputs + minor_noise * noise
            disruptive_net, disruptive_x = model, inputs + disruptive_noise * noise
        with torch.no_grad():
            kept.append(float((minor_net(minor_x).argmax(1) == predictions).double().mean()))
        minor.append(score_all(minor_net, minor_x))
        disruptive.append(score_all(disruptive_net, disruptive_x))

    results = {
        m: _criteria(
            names, scores[m], torch.stack([s[m] for s in minor]), torch.stack([s[m] for s in disruptive]),
            directions[m], float(np.mean(kept)), perturbation, seed,
        )
        for m in metrics
    }
    return results if isinstance(metric, Mapping) else results["metric"]


def _criteria(
    names: tuple[str, ...],
    scores: torch.Tensor,
    minor_scores: torch.Tensor,
    disruptive_scores: torch.Tensor,
    higher_is_better: bool,
    kept: float,
    perturbation: str,
    seed: int,
) -> ReliabilityResult:
    """IAC and IEC under both perturbations, and the Kendall τ of the method means (see the module's docstring)."""
    before = scores.numpy()
    p_minor = [_wilcoxon_p(before[m], s[m].numpy()) for s in minor_scores for m in range(len(names))]
    p_disruptive = [_wilcoxon_p(before[m], s[m].numpy()) for s in disruptive_scores for m in range(len(names))]
    same_rank = _ranks(minor_scores, higher_is_better) == _ranks(scores, higher_is_better)
    worse = disruptive_scores < scores if higher_is_better else disruptive_scores > scores
    means, minor_means = scores.mean(1).numpy(), minor_scores.mean(2).numpy()
    taus = [1.0 if np.all(m == means) else float(stats.kendalltau(means, m).statistic) for m in minor_means]
    return ReliabilityResult(
        methods=names,
        scores=scores,
        minor_scores=minor_scores,
        disruptive_scores=disruptive_scores,
        intra_consistency_minor=float(np.mean(p_minor)),
        inter_consistency_minor=float(same_rank.double().mean()),
        intra_consistency_disruptive=float(1 - np.mean(p_disruptive)),
        inter_consistency_disruptive=float(worse.double().mean()),
        ranking_tau_minor=float(np.nanmean(taus)),
        prediction_agreement_minor=kept,
        perturbation=perturbation,
        higher_is_better=higher_is_better,
        seed=seed,
    )
