"""Evaluate a job's store chunk by chunk: agreement, deletion / insertion AUCs and summary statistics.

Per-sample results go back into the store under ``evaluation/`` (resumable like the explanation, with
their own completion flags), then one streaming pass over them gives the summaries, so memory holds a
chunk of maps at a time, never the dataset's:

    evaluation/spearman          (N, k, k)  float64, Spearman's rho of every pair of methods per sample
    evaluation/deletion/<name>   (N,)       float64, deletion AUC per sample (Petsiuk et al. 2018)
    evaluation/insertion/<name>  (N,)       float64, insertion AUC per sample
    evaluation/agreement/mean, std, count   (k, k), as :func:`~nn_interpretability.evaluation.method_agreement`
    evaluation/done              (chunks,)  bool
    attributes "nni_evaluation": the evaluation's config and the summary statistics
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from ..core.progress import interactive, progress
from ..evaluation.agreement import AgreementResult, method_agreement
from ..evaluation.faithfulness import deletion_insertion
from .config import dataset_fingerprint, model_fingerprint, resolve_dataset, resolve_model
from .distributed import Processes, processes
from .explain import _as_dataset, _split_item
from .store import CorruptStoreError, JobStore, _array, differences

METRICS = ("agreement", "deletion", "insertion")
EVALUATION = "nni_evaluation"


@dataclass
class EvaluationResult:
    """The summaries :func:`evaluate` wrote into the store.

    Attributes
    ----------
    agreement : AgreementResult or None
        The Spearman matrix over the store's samples (``per_sample`` ``(k, k, N)`` read from the store).
    deletion_auc, insertion_auc : dict of str to dict
        Per method ``{"mean": ..., "std": ...}`` over the samples (empty when not computed).
    summary : dict
        Everything, as stored in the attributes (JSON values; NaN as ``None``).
    """

    agreement: AgreementResult | None
    deletion_auc: dict
    insertion_auc: dict
    summary: dict


class RunningMoments:
    """Count, mean and sum of squared deviations of NaN-masked values, merged chunk by chunk.

    Chan, Golub & LeVeque 1979 (the pairwise update): merging two parts of ``n_a`` and ``n_b`` values
    adds ``delta² n_a n_b / n`` to the summed squared deviations, so the result does not depend on the
    chunking and keeps the precision of a two-pass computation.
    """

    def __init__(self):
        self.count = self.mean = self.m2 = None

    def add(self, values: torch.Tensor) -> None:
        """Merge ``values`` ``(n, ...)``; NaN entries are left out."""
        values = values.double()
        valid = ~values.isnan()
        count = valid.sum(0).double()
        mean = torch.where(valid, values, 0).sum(0) / count.clamp(min=1)
        m2 = torch.where(valid, values - mean, 0).square().sum(0)
        if self.count is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        share = torch.where(total > 0, count / total.clamp(min=1), 0)
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + m2 + delta.square() * self.count * share
        self.count = total

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, standard deviation (``ddof=0``) and count; NaN where no value was valid."""
        nan = torch.full_like(self.mean, float("nan"))
        mean = torch.where(self.count > 0, self.mean, nan)
        std = torch.where(self.count > 0, (self.m2 / self.count.clamp(min=1)).sqrt(), nan)
        return mean, std, self.count.long()


def _json(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _moments(store: JobStore, name: str) -> dict:
    moments = RunningMoments()
    for chunk in range(store.n_chunks):
        moments.add(store.read(name, store.rows(chunk)))
    mean, std, _ = moments.result()
    return {"mean": _json(float(mean)), "std": _json(float(std))}


def evaluate(
    store: str | Path | JobStore,
    model=None,
    dataset=None,
    *,
    metrics=METRICS,
    steps: int | None = None,
    baselines: float = 0.0,
    output: str = "probability",
    internal_batch_size: int | None = None,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    overwrite: bool = False,
    show_progress: bool | None = None,
) -> EvaluationResult:
    """Deletion / insertion AUCs, the Spearman agreement matrix and summaries of a job's store.

    Seed 000's agreement matrix (:func:`~nn_interpretability.evaluation.method_agreement`, applied
    per chunk) and Petsiuk et al. 2018's deletion and insertion AUCs
    (:func:`~nn_interpretability.evaluation.deletion_insertion`, per chunk, scoring the stored
    targets), reduced over the store in one streaming pass. Resumable and split over torchrun's ranks
    like :func:`~nn_interpretability.jobs.explain_dataset`.

    Parameters
    ----------
    store : str, Path or JobStore
        A complete store of :func:`~nn_interpretability.jobs.explain_dataset`.
    model, dataset : optional
        Needed for deletion / insertion only: by default the job's own, by name; a job run on objects
        needs the same objects again (checked against the fingerprints in the store).
    metrics : sequence of {"agreement", "deletion", "insertion"}
    steps, baselines, output, internal_batch_size :
        Of :func:`~nn_interpretability.evaluation.deletion_insertion` (``baselines``: a number).
    device, num_workers :
        Where the model runs (for a model given by name) and the ``DataLoader``'s workers.
    overwrite : bool
        Discard an earlier evaluation with other settings instead of refusing it.
    show_progress : bool, optional
        A tqdm bar over the chunks (rank 0); ``None``: in a terminal or notebook.

    Returns
    -------
    EvaluationResult
    """
    metrics = tuple(metrics)
    unknown = set(metrics) - set(METRICS)
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {METRICS}, got {metrics!r}")
    if isinstance(baselines, bool) or not isinstance(baselines, (int, float)):
        raise TypeError(f"baselines must be a number here (it is kept in the store's config), got {type(baselines).__name__}")
    settings = {"metrics": sorted(metrics), "steps": steps, "baselines": float(baselines), "output": output}
    with processes(device) as procs:
        path = store.path if isinstance(store, JobStore) else Path(store)
        return _evaluate(procs, path, model, dataset, settings, internal_batch_size, num_workers, overwrite, show_progress)


def _prepare(path: Path, settings: dict, overwrite: bool) -> Exception | None:
    try:
        store = JobStore(path, mode="r+")
    except CorruptStoreError as error:
        return error
    if not store.done().all():
        missing = int((~store.done()).sum())
        return ValueError(f"the store {path} is not complete ({missing} of {store.n_chunks} chunks missing): run the job to the end first")
    group = store.group
    if "evaluation" in group:
        stored = dict(group["evaluation"].attrs).get(EVALUATION, {}).get("config")
        found = differences(stored, settings) if isinstance(stored, dict) else ["no evaluation config in the store"]
        if not found:
            store.remove_partial_files()
            return None
        if not overwrite:
            return ValueError(
                f"the store {path} holds another evaluation; differences:\n  " + "\n  ".join(found)
                + "\nUse overwrite=True (--overwrite) to discard it"
            )
        del group["evaluation"]
    evaluation = group.create_group("evaluation")
    n, k, cs = store.samples, len(store.methods), store.chunk_size
    if "agreement" in settings["metrics"]:
        _array(evaluation, "spearman", (n, k, k), (cs, k, k), "float64")
    for mode in ("deletion", "insertion"):
        if mode in settings["metrics"]:
            for name in store.methods:
                _array(evaluation, f"{mode}/{name}", (n,), (cs,), "float64")
    _array(evaluation, "done", (store.n_chunks,), (1,), "bool")
    evaluation.attrs[EVALUATION] = {"config": settings}
    return None


def _check_objects(store: JobStore, model, dataset) -> None:
    """A model or dataset given as an object must be the one a job on objects was computed with."""
    config = store.config
    if model is not None and isinstance(config["model"], dict) and model_fingerprint(model) != config["model"]:
        raise ValueError(f"this model is not the one the store {store.path} was computed with (its state differs)")
    if dataset is not None and isinstance(config["dataset"], dict) and dataset_fingerprint(_as_dataset(dataset)) != config["dataset"]:
        raise ValueError(f"this dataset is not the one the store {store.path} was computed with")


def _model_and_data(store: JobStore, model, dataset, device: torch.device, procs: Processes):
    config = store.config
    if model is None:
        if procs.rank == 0:
            model = resolve_model(config["model"], device, config["seed"])
        procs.barrier()
        if procs.rank != 0:
            model = resolve_model(config["model"], device, config["seed"])
    if dataset is None:
        return model, resolve_dataset(config["dataset"], config["image_size"], config["normalization"], config["seed"])
    return model, _as_dataset(dataset)


def _evaluate(procs: Processes, path, model, dataset, settings, internal_batch_size, num_workers, overwrite, show_progress) -> EvaluationResult:
    procs.agree(_prepare(path, settings, overwrite) if procs.rank == 0 else None)
    procs.barrier()
    store = JobStore(path, mode="r+")
    _check_objects(store, model, dataset)
    names, metrics = store.methods, settings["metrics"]
    faithfulness = [m for m in ("deletion", "insertion") if m in metrics]
    done = store.done("evaluation/done")
    pending = [i for i in range(store.n_chunks) if procs.owns(i) and not done[i]]
    batches = iter([None] * len(pending))
    if faithfulness and pending:
        model, data = _model_and_data(store, model, dataset, procs.device, procs)
        device = next(iter(model.parameters()), torch.empty(0, device=procs.device)).device
        indices = store.read("index")  # (N,) int64: small beside the maps
        batches = iter(DataLoader(Subset(data, indices.tolist()), batch_sampler=[list(store.rows(i)) for i in pending], num_workers=num_workers))
    show = (interactive() if show_progress is None else bool(show_progress)) and procs.rank == 0
    for chunk in progress(pending, "evaluate", show):
        rows = store.rows(chunk)
        maps = {name: store.maps(name, rows) for name in names}
        values = {}
        if "agreement" in metrics:
            values["evaluation/spearman"] = method_agreement(maps).per_sample.permute(2, 0, 1).numpy()
        batch = next(batches)
        if faithfulness:
            x, _ = _split_item(batch, "prediction")
            x = x.to(device)
            targets = store.read("targets", rows).to(device)
            for mode in faithfulness:
                for name in names:
                    curve = deletion_insertion(
                        model, x, maps[name].to(device), target=targets, mode=mode, baselines=settings["baselines"],
                        steps=settings["steps"], output=settings["output"], internal_batch_size=internal_batch_size,
                        show_progress=False,
                    )
                    values[f"evaluation/{mode}/{name}"] = curve.auc.double().cpu().numpy()
        store.write_chunk(chunk, values, flags="evaluation/done")
    procs.barrier()
    result = _summarise(store, metrics, write=procs.rank == 0)
    if procs.rank == 0:
        group = store.group["evaluation"]
        group.attrs[EVALUATION] = {"config": settings, "summary": result.summary}
    procs.barrier()
    return result


def _summarise(store: JobStore, metrics, write: bool) -> EvaluationResult:
    """One streaming pass over the per-sample results: the summaries (written into the store by one rank)."""
    names = store.methods
    summary: dict = {"samples": store.samples, "methods": names}
    agreement = None
    if "agreement" in metrics:
        moments = RunningMoments()
        for chunk in range(store.n_chunks):
            moments.add(store.read("evaluation/spearman", store.rows(chunk)))
        mean, std, count = moments.result()
        evaluation = store.group["evaluation"]
        for key, value in {"mean": mean, "std": std, "count": count}.items() if write else ():
            if f"agreement/{key}" not in evaluation:
                evaluation.create_array(f"agreement/{key}", shape=value.shape, dtype=value.numpy().dtype, fill_value=0)
            evaluation[f"agreement/{key}"][...] = value.numpy()
        per_sample = store.read("evaluation/spearman").permute(1, 2, 0)
        agreement = AgreementResult(names=names, mean=mean, std=std, per_sample=per_sample, count=count)
        summary["agreement"] = {
            "mean": [[_json(float(v)) for v in row] for row in mean],
            "std": [[_json(float(v)) for v in row] for row in std],
            "count": count.tolist(),
        }
    aucs = {mode: {name: _moments(store, f"evaluation/{mode}/{name}") for name in names} if mode in metrics else {} for mode in ("deletion", "insertion")}
    summary["deletion_auc"], summary["insertion_auc"] = aucs["deletion"], aucs["insertion"]
    summary["map_sums"] = {name: _moments(store, f"sums/{name}") for name in names}
    matches = RunningMoments()
    for chunk in range(store.n_chunks):
        rows = store.rows(chunk)
        matches.add((store.read("predictions", rows) == store.read("targets", rows)).double())
    summary["prediction_is_target"] = _json(float(matches.result()[0]))
    summary["job"] = {key: store.meta[key] for key in ("nn_interpretability", "torch", "zarr")}
    return EvaluationResult(agreement=agreement, deletion_auc=aucs["deletion"], insertion_auc=aucs["insertion"], summary=summary)
