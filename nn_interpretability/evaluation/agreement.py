"""How much attribution methods agree: Spearman rank correlation of their maps, image by image.

The method-agreement study of seed 000 ("The Correlations"): run several methods over a whole split,
correlate every pair of maps per image with Spearman's rho and report the mean and the standard
deviation over the images as a k × k matrix. Any methods and any model work, since only the maps
are compared.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..core.base import Target, check_inputs
from ..core.progress import progress
from ..core.targets import target_rows
from ..core.validation import check_map_shape, positive_int
from ..core.vocabulary import renamed_arguments


@renamed_arguments(batch_size="internal_batch_size", progress="show_progress")
def compute_attributions(
    methods: Mapping[str, object],
    inputs: torch.Tensor,
    target: Target = None,
    internal_batch_size: int = 256,
    show_progress: bool | None = None,
    attribute_kwargs: Mapping[str, dict] | None = None,
) -> dict[str, torch.Tensor]:
    """Run every method over a whole split in batches: the maps that :func:`method_agreement` compares.

    Parameters
    ----------
    methods : mapping of str to Attribution
        Configured methods by display name, e.g. ``{"IG": nni.IntegratedGradients(model), ...}``.
    inputs : Tensor
        The split, ``(N, ...)``.
    target : any target of ``attribute``
        What every method explains (see the README's table of targets): a class per sample, an index
        tuple, a selector of :mod:`nn_interpretability.targets` or a callable; per-sample choices are
        sliced with the batches (:func:`~nn_interpretability.core.targets.target_rows`). ``None`` lets
        each method explain the predicted class (the same for all methods, since they share the model).
        ``"all"`` or an ``(N, K)`` tensor gives maps ``(N, K, ...)``.
    internal_batch_size : int
        Samples per ``attribute`` call (``batch_size`` before 0.2); bounds memory (IG and DeepLIFT hold
        several copies per sample).
    show_progress : bool, optional
        A progress bar over methods × batches (``progress`` before 0.2); ``None`` shows it in a
        terminal or notebook only.
    attribute_kwargs : mapping of str to dict, optional
        Per-call arguments for some methods by name, e.g. ``{"IG": {"n_steps": 32}}``.

    Returns
    -------
    dict of str to Tensor
        One detached map of the shape of ``inputs`` (``(N, K, ...)`` for every-class targets) per method,
        in the order of ``methods``.
    """
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("methods must be a non-empty dict {name: Attribution}")
    for name, method in methods.items():
        if not callable(getattr(method, "attribute", None)):
            raise TypeError(f"method {name!r} has no attribute(inputs, target) method: {method!r}")
    attribute_kwargs = dict(attribute_kwargs or {})
    unknown = set(attribute_kwargs) - set(methods)
    if unknown:
        raise ValueError(f"attribute_kwargs names methods that are not given: {sorted(unknown)}")
    internal_batch_size = positive_int(internal_batch_size, "internal_batch_size")
    inputs = check_inputs(inputs)
    n = inputs.shape[0]
    calls = [(name, start) for name in methods for start in range(0, n, internal_batch_size)]
    batches: dict[str, list[torch.Tensor]] = {name: [] for name in methods}
    for name, start in progress(calls, "attributions", show_progress):
        stop = min(start + internal_batch_size, n)
        batch = inputs[start:stop]
        batch_target = target_rows(target, start, stop, n)
        out = methods[name].attribute(batch, target=batch_target, **attribute_kwargs.get(name, {}))
        batches[name].append(check_map_shape(out, _map_shape(batch, batch_target, out), f"method {name!r}").detach())
    return {name: torch.cat(maps) for name, maps in batches.items()}


def _map_shape(batch: torch.Tensor, target, maps) -> tuple[int, ...]:
    """The maps' shape for ``target``: the batch's, with a class axis ``K`` for every-class targets."""
    if isinstance(target, torch.Tensor) and target.dim() == 2:
        return (batch.shape[0], target.shape[1], *batch.shape[1:])
    if isinstance(target, str) and isinstance(maps, torch.Tensor) and maps.dim() == batch.dim() + 1:
        return (batch.shape[0], maps.shape[1], *batch.shape[1:])  # "all": K is the number of classes
    return tuple(batch.shape)


def _flat_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError("spearman_per_sample compares two tensors of maps")
    if a.shape != b.shape:
        raise ValueError(f"the two batches of maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() < 2 or a.shape[0] == 0 or a[0].numel() < 2:
        raise ValueError(
            f"maps must be a non-empty batch (N, ...) of at least 2 elements each, got shape {tuple(a.shape)}"
        )
    return a.flatten(1), b.flatten(1)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks ``1..D`` of every row of ``values`` ``(N, D)``, tied values sharing their mean rank.

    The ``"average"`` method of ``scipy.stats.rankdata``, vectorised: after one sort per row a tie is a
    run of equal neighbours, whose first and last positions are found with cumulative max / min.
    """
    if not torch.isfinite(values).all():
        raise ValueError("maps contain NaN or infinite values, which have no rank")
    values = values.double()
    d = values.shape[1]
    ordered, order = values.sort(dim=1)
    position = torch.arange(d, device=values.device).expand_as(ordered)
    changes = ordered[:, 1:] != ordered[:, :-1]
    starts_run = torch.cat([torch.ones_like(changes[:, :1]), changes], dim=1)
    ends_run = torch.cat([changes, torch.ones_like(changes[:, :1])], dim=1)
    first = torch.where(starts_run, position, 0).cummax(dim=1).values
    last = torch.where(ends_run, position, d).flip(1).cummin(dim=1).values.flip(1)
    mean_rank = (first + last).double() / 2 + 1
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def _pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every row pair; NaN where a row is constant (zero variance)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denominator = (a.square().sum(1) * b.square().sum(1)).sqrt()
    rho = (a * b).sum(1) / denominator
    return torch.where(denominator > 0, rho.clamp(-1.0, 1.0), torch.full_like(rho, float("nan")))


def spearman_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation between the maps ``a[i]`` and ``b[i]`` of every sample (flattened).

    Spearman 1904; equals ``scipy.stats.spearmanr(a[i].ravel(), b[i].ravel())`` with average ranks for
    ties, which matter here: ReLU networks give maps with many exact zeros.

    Parameters
    ----------
    a, b : Tensor
        Two batches of maps of the same shape ``(N, ...)``.

    Returns
    -------
    Tensor
        float64, shape ``(N,)``. A constant map (e.g. all zeros) has no ranking: its correlation is
        NaN, as in SciPy, and :func:`method_agreement` leaves such samples out of the mean.
    """
    a, b = _flat_pair(a, b)
    return _pearson_rows(average_ranks(a), average_ranks(b))


@dataclass
class AgreementResult:
    """Pairwise Spearman correlations of k methods over N samples.

    Attributes
    ----------
    names : list of str
        The methods, in the order of the matrix rows.
    mean, std : Tensor
        ``(k, k)``: mean and standard deviation (NumPy's default ``ddof=0``) over the samples whose
        correlation is defined; the diagonal is 1 and 0 where a method's maps are not constant.
    per_sample : Tensor
        ``(k, k, N)``, NaN for a sample where one of the two maps is constant.
    count : Tensor
        ``(k, k)``: how many samples entered each mean.
    """

    names: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    per_sample: torch.Tensor
    count: torch.Tensor

    def table(self, digits: int = 2) -> list[list[str]]:
        """The matrix as rows of strings ``"mean ± std"``, with a header row and the names as first column."""
        rows = [["", *self.names]]
        for i, name in enumerate(self.names):
            cells = [
                f"{self.mean[i, j]:.{digits}f} ± {self.std[i, j]:.{digits}f}" for j in range(len(self.names))
            ]
            rows.append([name, *cells])
        return rows

    def to_markdown(self, digits: int = 2) -> str:
        """A Markdown table of :meth:`table`."""
        header, *body = self.table(digits)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)

    def __str__(self) -> str:
        rows = self.table()
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows)


def method_agreement(attributions: Mapping[str, torch.Tensor]) -> AgreementResult:
    """Mean and spread of the per-sample Spearman correlation between every pair of methods' maps.

    Seed 000, Fig. 2: "the empirical Spearman correlation between the four [methods]", mean ± standard
    deviation over the validation set. Each method's maps are ranked once; pairs then cost a Pearson
    correlation of ranks.

    Parameters
    ----------
    attributions : mapping of str to Tensor
        Maps of the same shape ``(N, ...)`` per method, e.g. from :func:`compute_attributions`.

    Returns
    -------
    AgreementResult
    """
    if not isinstance(attributions, Mapping) or not attributions:
        raise ValueError("attributions must be a non-empty dict {name: maps (N, ...)}")
    names = list(attributions)
    first = attributions[names[0]]
    for name in names:
        _flat_pair(first, attributions[name])
    ranks = [average_ranks(attributions[name].flatten(1)) for name in names]
    k, n = len(names), first.shape[0]
    per_sample = torch.empty(k, k, n, dtype=torch.float64, device=first.device)
    for i in range(k):
        for j in range(i, k):
            per_sample[i, j] = per_sample[j, i] = _pearson_rows(ranks[i], ranks[j])
    valid = ~per_sample.isnan()
    count = valid.sum(-1)
    mean = per_sample.nansum(-1) / count
    deviation = torch.where(valid, per_sample - mean.unsqueeze(-1), torch.zeros_like(per_sample))
    std = (deviation.square().sum(-1) / count).sqrt()
    return AgreementResult(names=names, mean=mean, std=std, per_sample=per_sample, count=count)
