"""What a dataset-scale job is: model, dataset, methods, targets and layout, validated and canonical.

A job is written down once, as a YAML file or a dict, and the store remembers it (as canonical JSON) so
that a resumed run can be checked to be the same job. Models, datasets and methods are named, never
pickled: a zoo name or an import path for the model, ``mnist:test`` / an ``ImageFolder`` folder / an
import path for the dataset, registry names with their parameters for the methods.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.batching import CHUNK_ELEMENTS, chunk_size as budget_chunk_size
from ..core.registry import available_methods, get_method
from ..core.validation import positive_int

#: Dataset names besides folders and import paths: the embedded MNIST splits (``all``: train, then test).
MNIST_SPLITS = ("train", "test", "all")
#: What each sample's maps explain.
TARGETS = ("label", "prediction")


@dataclass(frozen=True)
class MethodSpec:
    """One method of a job: a registry name, its ``__init__`` and its ``attribute`` parameters.

    Attributes
    ----------
    method : str
        A name of :func:`nni.available_methods <nn_interpretability.core.registry.available_methods>`.
    init : dict
        Keyword arguments of the method's constructor (JSON values), e.g. ``{"epsilon": 1e-9}``.
    attribute : dict
        Keyword arguments of every ``attribute`` call, e.g. ``{"n_steps": 50}``.
    """

    method: str
    init: dict = field(default_factory=dict)
    attribute: dict = field(default_factory=dict)

    def build(self, model: nn.Module, seed: int | None = None):
        """The configured method on ``model``; ``seed`` goes to the constructor of a stochastic method."""
        init = dict(self.init)
        if seed is not None:
            init["seed"] = seed
        return get_method(self.method, model, **init)


@dataclass(frozen=True)
class JobConfig:
    """A dataset-scale explanation job (:func:`~nn_interpretability.jobs.explain_dataset`).

    Attributes
    ----------
    model : str or dict
        A zoo name (``"mnist_cnn"``, ``"resnet18"``) or ``"package.module:attr"`` naming a module or a
        function that returns one; a dict is the fingerprint of a model passed as an object.
    dataset : str or dict
        ``"mnist:train"``, ``"mnist:test"``, ``"mnist:all"`` (the embedded 5,000 digits), an
        ``ImageFolder`` directory, or ``"package.module:attr"`` naming a ``Dataset`` or a function that
        returns one; a dict is the fingerprint of a dataset passed as an object.
    methods : dict of str to MethodSpec
        Display name -> method; a plain string is a registry name without parameters.
    target : "label", "prediction" or int
        What every map explains: the dataset's label, the model's prediction or one class.
    chunk_size : int
        Samples per chunk: the unit of work, of storage (one file per array) and of resumption.
    limit : int, optional
        Explain only the first ``limit`` samples.
    seed : int
        Base seed; chunk ``i`` runs with a seed derived from ``(seed, i)`` (never from the rank).
    image_size, normalization : int, str
        Preprocessing of ``ImageFolder`` photos (:func:`~nn_interpretability.data.imagenet.preprocess`).
    """

    model: Any
    dataset: Any
    methods: dict
    target: Any = "label"
    chunk_size: int | None = None
    limit: int | None = None
    seed: int = 0
    image_size: int = 224
    normalization: str = "torchvision"

    def canonical(self) -> dict:
        """The config as plain JSON values, keys sorted: what the store keeps and compares."""
        return json.loads(canonical_json(asdict(self)))


def canonical_json(value) -> str:
    """``value`` as JSON with sorted keys and no spaces, so equal configs give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _method_spec(name: str, value) -> MethodSpec:
    if isinstance(value, MethodSpec):
        spec = value
    elif isinstance(value, str):
        spec = MethodSpec(value)
    elif isinstance(value, Mapping):
        unknown = set(value) - {"method", "init", "attribute"}
        if unknown or "method" not in value:
            raise ValueError(
                f"method {name!r}: give a registry name or a mapping with 'method' and optional 'init' and "
                f"'attribute', got keys {sorted(value)}"
            )
        spec = MethodSpec(value["method"], dict(value.get("init") or {}), dict(value.get("attribute") or {}))
    else:
        raise TypeError(f"method {name!r} must be a registry name or a mapping, got {type(value).__name__}")
    known = available_methods()
    key = spec.method.lower().replace("_", "-") if isinstance(spec.method, str) else spec.method
    if key not in known:
        raise ValueError(f"method {name!r}: unknown method {spec.method!r}. Available: {', '.join(known)}")
    if "target" in spec.attribute:
        raise ValueError(f"method {name!r}: the target is the job's ('target'), not an attribute parameter")
    try:
        canonical_json([spec.init, spec.attribute])
    except (TypeError, ValueError) as error:
        raise TypeError(f"method {name!r}: parameters must be JSON values (numbers, strings, lists, dicts): {error}") from None
    return MethodSpec(key, spec.init, spec.attribute)


def make_config(config: JobConfig | Mapping | str | Path) -> JobConfig:
    """A validated :class:`JobConfig` from a config, a dict or a YAML file (whose ``store`` key is ignored here)."""
    if isinstance(config, JobConfig):
        values = asdict(config)
    elif isinstance(config, (str, Path)):
        values = dict(read_yaml(config))
        values.pop("store", None)
    elif isinstance(config, Mapping):
        values = dict(config)
    else:
        raise TypeError(f"a job config is a JobConfig, a dict or a YAML path, got {type(config).__name__}")
    names = {f.name for f in fields(JobConfig)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown job config keys {sorted(unknown)}; known: {sorted(names)}")
    missing = {"model", "dataset", "methods"} - set(values)
    if missing:
        raise ValueError(f"the job config needs {sorted(missing)}")
    methods = values["methods"]
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("methods must be a non-empty mapping {display name: method}")
    for name in methods:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ValueError(f"method display names must be non-empty strings without '/' or a leading '.', got {name!r}")
    values["methods"] = {name: _method_spec(name, spec) for name, spec in methods.items()}
    target = values.get("target", "label")
    if not (target in TARGETS or (isinstance(target, int) and not isinstance(target, bool) and target >= 0)):
        raise ValueError(f"target must be one of {TARGETS} or a class index >= 0, got {target!r}")
    for key in ("chunk_size", "limit"):
        if values.get(key) is not None:
            values[key] = positive_int(values[key], key)
    if isinstance(values.get("seed", 0), bool) or not isinstance(values.get("seed", 0), int):
        raise TypeError(f"seed must be an int, got {values['seed']!r}")
    for key in ("model", "dataset"):
        if not isinstance(values[key], (str, dict)):
            raise TypeError(f"{key} must be a name or an import path (str), got {type(values[key]).__name__}")
    return JobConfig(**values)


def read_yaml(path: str | Path) -> dict:
    """The mapping of a YAML job file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no job config at {path}")
    values = yaml.safe_load(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a job config is a mapping of keys (model, dataset, methods, ...)")
    return values


def import_path(spec: str):
    """The object named by ``"package.module:attr"``."""
    module_name, _, attr = spec.partition(":")
    try:
        value = import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name!r} of {spec!r}: {error}") from None
    for part in attr.split("."):
        if not hasattr(value, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r} (from {spec!r})")
        value = getattr(value, part)
    return value


def _is_import_path(spec: str) -> bool:
    module, sep, attr = spec.partition(":")
    return bool(sep and module and attr) and not Path(spec).exists() and "/" not in module


def resolve_model(spec, device: torch.device, seed: int = 0) -> nn.Module:
    """The model named by a zoo name or an import path, in eval mode on ``device``.

    A factory runs after ``torch.manual_seed(seed)``, so that a randomly initialised model is the same
    in every process of a job.
    """
    from ..models.zoo import available, load_model

    if not isinstance(spec, str):
        raise ValueError("this job's model was passed as an object: pass the same model again")
    if _is_import_path(spec):
        model = import_path(spec)
        if not isinstance(model, nn.Module):
            torch.manual_seed(seed)
            model = model()
        if not isinstance(model, nn.Module):
            raise TypeError(f"{spec!r} must name an nn.Module or a function returning one, got {type(model).__name__}")
        return model.to(device).eval()
    if spec not in available():
        raise ValueError(f"unknown model {spec!r}: give a zoo name ({', '.join(available())}) or 'package.module:attr'")
    return load_model(spec, device=device)


def _imagefolder_transform(image, size: int, normalization: str) -> torch.Tensor:
    from ..data.imagenet import preprocess

    return preprocess(image, size, normalization)[0]


def resolve_dataset(spec, image_size: int = 224, normalization: str = "torchvision", seed: int = 0) -> torch.utils.data.Dataset:
    """The dataset named by ``mnist:<split>``, an ``ImageFolder`` directory or an import path.

    A factory runs after ``torch.manual_seed(seed)`` (the same data in every process).
    """
    if not isinstance(spec, str):
        raise ValueError("this job's dataset was passed as an object: pass the same dataset again")
    name, _, split = spec.partition(":")
    if name == "mnist" and split:
        if split not in MNIST_SPLITS:
            raise ValueError(f"unknown MNIST split {split!r} in {spec!r}; choose mnist:{', mnist:'.join(MNIST_SPLITS)}")
        from ..data.mnist import load_mnist

        parts = [load_mnist(s, source="embedded") for s in (("train", "test") if split == "all" else (split,))]
        return torch.utils.data.TensorDataset(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    if Path(spec).is_dir():
        from torchvision.datasets import ImageFolder

        return ImageFolder(spec, transform=partial(_imagefolder_transform, size=image_size, normalization=normalization))
    known = "give mnist:train, mnist:test, mnist:all, an ImageFolder directory or 'package.module:attr'"
    if _is_import_path(spec):
        try:
            dataset = import_path(spec)
        except ValueError as error:
            raise ValueError(f"unknown dataset {spec!r}: {known} ({error})") from None
        if not isinstance(dataset, torch.utils.data.Dataset):
            torch.manual_seed(seed)
            dataset = dataset()
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"{spec!r} must name a map-style Dataset or a function returning one")
        return dataset
    raise ValueError(f"unknown dataset {spec!r}: {known}")


def _digest(tensors) -> str:
    digest = hashlib.sha256()
    for name, tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def model_fingerprint(model: nn.Module) -> dict:
    """What identifies a model passed as an object: its class and a SHA-256 of its parameters and buffers."""
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}", "sha256": _digest(model.state_dict().items())}


def dataset_fingerprint(dataset) -> dict:
    """What identifies a dataset passed as an object: a SHA-256 of its tensors, or its class and length."""
    if isinstance(dataset, torch.utils.data.TensorDataset):
        return {"class": "TensorDataset", "length": len(dataset), "sha256": _digest(enumerate(dataset.tensors))}
    return {"class": f"{type(dataset).__module__}.{type(dataset).__qualname__}", "length": len(dataset)}


def default_chunk_size(sample: torch.Tensor) -> int:
    """Samples per chunk when none is given: :func:`~nn_interpretability.core.batching.chunk_size` on the CPU.

    The same on every device (it is part of the store's layout): at most
    :data:`~nn_interpretability.core.batching.CPU_ROWS` samples and
    :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` input elements, e.g. 128 MNIST digits or
    6 images at 224².
    """
    return budget_chunk_size(sample.numel(), None, budget=CHUNK_ELEMENTS, rows_per_copy=1, device=torch.device("cpu"))
