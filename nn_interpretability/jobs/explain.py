"""Explain a whole dataset into a Zarr store, chunk by chunk: bounded memory, resumable, split over ranks."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ..core.base import forward_scores
from ..core.progress import interactive, progress
from ..core.validation import check_map_shape
from .config import (
    JobConfig,
    dataset_fingerprint,
    default_chunk_size,
    make_config,
    model_fingerprint,
    resolve_dataset,
    resolve_model,
)
from .distributed import Processes, processes
from .store import CorruptStoreError, JobStore, differences

#: Per-sample arrays besides the maps, with their dtypes.
PER_SAMPLE = {"index": "int64", "targets": "int64", "predictions": "int64", "scores": "float64", "probabilities": "float64"}


def chunk_seed(seed: int, chunk: int, *more: int) -> int:
    """The seed of chunk ``chunk``: a function of the job's seed and the chunk alone (and ``more``), never of the rank."""
    return int(np.random.SeedSequence([seed, chunk, *more]).generate_state(1)[0])


def _as_dataset(dataset) -> Dataset:
    if isinstance(dataset, (tuple, list)) and dataset and all(isinstance(t, torch.Tensor) for t in dataset):
        return TensorDataset(*dataset)
    if isinstance(dataset, torch.Tensor):
        return TensorDataset(dataset)
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise TypeError(
            f"dataset must be a name, a map-style Dataset or a tuple of tensors (images, labels), got {type(dataset).__name__}"
        )
    return dataset


def _split_item(batch, target) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inputs and labels of a collated batch: ``(x, y, ...)`` or ``x`` alone."""
    if isinstance(batch, torch.Tensor):
        x, y = batch, None
    elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        x, y = batch[0], batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
    else:
        raise TypeError(f"dataset items must be an input tensor or a tuple (input, label, ...), got {type(batch).__name__}")
    if target == "label" and y is None:
        raise ValueError("target='label' but the dataset's items have no label: use target='prediction' or a class")
    return x, y


def _targets(target, labels, predictions: torch.Tensor) -> torch.Tensor:
    if target == "label":
        return labels.to(predictions.device, torch.long).reshape(-1)
    if target == "prediction":
        return predictions
    return torch.full_like(predictions, int(target))


def _build_methods(config: JobConfig, model: nn.Module, chunk: int | None = None) -> dict:
    """The job's methods on ``model``; for a ``chunk``, only the stochastic ones, seeded for that chunk.

    A stochastic method's own ``seed`` (in ``init``) enters the chunk's seed, so two seeds still differ.
    """
    built = {}
    for name, spec in config.methods.items():
        method = spec.build(model)
        if chunk is not None:
            if not getattr(method, "stochastic", False):
                continue
            method = spec.build(model, seed=chunk_seed(config.seed, chunk, spec.init.get("seed") or 0))
        built[name] = method
    return built


def _explain_chunk(model, methods, stochastic, config, x, labels, chunk: int, maps_shapes=None) -> dict:
    """Every output of one chunk, as NumPy arrays by store path."""
    seed = chunk_seed(config.seed, chunk)
    torch.manual_seed(seed)
    per_chunk = {**methods, **_build_methods(config, model, chunk)} if stochastic else methods
    with torch.no_grad():
        output = forward_scores(model, x)
    predictions = output.argmax(1)
    targets = _targets(config.target, labels, predictions)
    if (targets >= output.shape[1]).any():
        raise ValueError(f"target class {int(targets.max())} out of range: the model has {output.shape[1]} classes")
    rows = torch.arange(len(x), device=output.device)
    values = {
        "targets": targets,
        "predictions": predictions,
        "scores": output[rows, targets].double(),
        "probabilities": output.double().softmax(1)[rows, targets],
    }
    for name, method in per_chunk.items():
        spec = config.methods[name]
        out = method.attribute(x, target=targets, **spec.attribute)
        if maps_shapes is not None:
            check_map_shape(out, torch.Size((len(x), *maps_shapes[name])), f"method {name!r}")
        out = out.detach()
        values[f"maps/{name}"] = out
        values[f"sums/{name}"] = out.double().flatten(1).sum(1)
    return {key: value.cpu().numpy() for key, value in values.items()}


def _prepare(path: Path, config: dict, overwrite: bool, create) -> Exception | None:
    """Rank 0: check an existing store against ``config`` or create one; the error for all ranks, if any."""
    try:
        if path.exists() and any(path.iterdir()) and not overwrite:
            store = JobStore(path, mode="r+")
            found = differences(store.config, config)
            if found:
                return ValueError(
                    f"the store {path} holds another job; differences:\n  " + "\n  ".join(found)
                    + "\nUse a new store, or overwrite=True (--overwrite) to discard it"
                )
            store.done()  # readable flags
            store.remove_partial_files()
            return None
        JobStore.remove(path)
        create()
        return None
    except CorruptStoreError as error:
        return CorruptStoreError(f"{error}. Use a new store, or overwrite=True (--overwrite) to discard it")


def explain_dataset(
    model: nn.Module | str,
    dataset,
    methods: Mapping,
    store: str | Path,
    *,
    target="label",
    chunk_size: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    overwrite: bool = False,
    show_progress: bool | None = None,
    image_size: int = 224,
    normalization: str = "torchvision",
) -> JobStore:
    """Run every method over a whole dataset, chunk by chunk, into a Zarr store that a rerun resumes.

    Seed 000's method-agreement study over a validation split, at dataset scale: each chunk of
    ``chunk_size`` samples is read with a ``DataLoader``, explained by every method (each bounding its
    own passes under :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS`), written, and only then
    marked complete (see :mod:`~nn_interpretability.jobs.store` for the layout). Run again with the same
    arguments, a job continues where it stopped; under ``torchrun`` chunk ``i`` goes to rank
    ``i % WORLD_SIZE`` and the store is the same as one process writes.

    Parameters
    ----------
    model : nn.Module or str
        A zoo name, ``"package.module:attr"``, or a model (identified in the store by a hash of its state).
    dataset : str, Dataset or tuple of tensors
        ``"mnist:test"`` / ``"mnist:train"`` / ``"mnist:all"``, an ``ImageFolder`` directory,
        ``"package.module:attr"``, a map-style dataset of ``(input, label)`` items or ``(images, labels)``.
    methods : mapping
        Display name -> registry name or ``{"method": name, "init": {...}, "attribute": {...}}``, e.g.
        ``{"IG": {"method": "integrated-gradients", "attribute": {"n_steps": 50}}, "LRP": "lrp-epsilon"}``.
    store : str or Path
        The store's directory (Zarr v3).
    target : "label", "prediction" or int
        What each map explains: the dataset's label, the predicted class, or one class for all.
    chunk_size : int, optional
        Samples per chunk; default :func:`~nn_interpretability.jobs.config.default_chunk_size`.
    limit : int, optional
        Explain the first ``limit`` samples only.
    seed : int
        Chunk ``i`` seeds torch and the stochastic methods with :func:`chunk_seed` ``(seed, i)``.
    device : str or torch.device
        For models given by name (``"auto"``: CUDA when present); under torchrun on GPUs, ``cuda:LOCAL_RANK``.
        A model given as an object stays where it is.
    num_workers : int
        ``DataLoader`` worker processes (not part of the job's identity).
    overwrite : bool
        Discard an existing store of another job instead of refusing it.
    show_progress : bool, optional
        A tqdm bar with images/s and the time left (rank 0 only); ``None``: in a terminal or notebook.
    image_size, normalization : int, str
        Preprocessing of ``ImageFolder`` photos.

    Returns
    -------
    JobStore
        The complete store.
    """
    with processes(device) as procs:
        return _explain(procs, model, dataset, methods, Path(store), target, chunk_size, limit, seed, num_workers, overwrite, show_progress, image_size, normalization)


def _explain(procs: Processes, model, dataset, methods, path, target, chunk_size, limit, seed, num_workers, overwrite, show_progress, image_size, normalization) -> JobStore:
    model_spec = model if isinstance(model, str) else None
    if model_spec is None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, a zoo name or an import path, got {type(model).__name__}")
    data = resolve_dataset(dataset, image_size, normalization, seed) if isinstance(dataset, str) else _as_dataset(dataset)
    if limit is not None and limit < len(data):
        data = Subset(data, range(limit))
    if len(data) == 0:
        raise ValueError("the dataset is empty")
    first, first_label = _split_item(torch.utils.data.default_collate([data[0]]), target)
    if model_spec is not None:
        # Rank 0 first: a zoo model trained on first use is cached once, then read by the others.
        if procs.rank == 0:
            model = resolve_model(model_spec, procs.device, seed)
        procs.barrier()
        if procs.rank != 0:
            model = resolve_model(model_spec, procs.device, seed)
    device = next(iter(model.parameters()), torch.empty(0, device=procs.device)).device
    config = make_config(
        dict(
            model=model_spec or model_fingerprint(model),
            dataset=dataset if isinstance(dataset, str) else dataset_fingerprint(data.dataset if isinstance(data, Subset) else data),
            methods=methods,
            target=target,
            chunk_size=default_chunk_size(first[0]) if chunk_size is None else chunk_size,
            limit=limit,
            seed=seed,
            image_size=image_size,
            normalization=normalization,
        )
    )
    canonical = config.canonical()
    built = _build_methods(config, model)
    stochastic = any(getattr(m, "stochastic", False) for m in built.values())

    def create() -> None:
        probe = _explain_chunk(model, built, stochastic, config, first.to(device), first_label, 0)
        maps = {name: (probe[f"maps/{name}"].shape[1:], probe[f"maps/{name}"].dtype) for name in config.methods}
        JobStore.create(path, canonical, len(data), config.chunk_size, PER_SAMPLE, maps)

    procs.agree(_prepare(path, canonical, overwrite, create) if procs.rank == 0 else None)
    procs.barrier()
    store = JobStore(path, mode="r+")
    shapes = {name: tuple(store.array(f"maps/{name}").shape[1:]) for name in store.methods}
    done = store.done()
    pending = [i for i in range(store.n_chunks) if procs.owns(i) and not done[i]]
    loader = DataLoader(data, batch_sampler=[list(store.rows(i)) for i in pending], num_workers=num_workers)
    show = (interactive() if show_progress is None else bool(show_progress)) and procs.rank == 0
    label = "explain" + (f" (rank 0 of {procs.world_size})" if procs.distributed else "")
    with progress(None, label, show, total=sum(len(store.rows(i)) for i in pending), unit="img", unit_scale=True) as bar:
        for chunk, batch in zip(pending, loader):
            x, labels = _split_item(batch, target)
            values = _explain_chunk(model, built, stochastic, config, x.to(device), labels, chunk, shapes)
            values["index"] = np.asarray(_dataset_indices(data, store.rows(chunk)), dtype=np.int64)
            store.write_chunk(chunk, values)
            bar.update(len(x))
    procs.barrier()
    return store


def _dataset_indices(data, rows: range) -> list[int]:
    """The indices in the underlying dataset of the job's samples ``rows``."""
    if isinstance(data, Subset):
        return [int(data.indices[r]) for r in rows]
    return list(rows)
