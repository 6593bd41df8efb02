"""The Zarr v3 store of a job: one array per output, chunked by samples, with a completion flag per chunk.

Layout (``N`` samples in chunks of ``chunk_size``; every array's chunk ``i`` holds samples
``i * chunk_size`` to ``(i + 1) * chunk_size`` and is one file)::

    zarr.json                 attributes "nni_job": the canonical config, package / torch / zarr versions
    index        (N,)         int64, the dataset index of every sample
    targets      (N,)         int64, the class each map explains
    predictions  (N,)         int64, the model's argmax
    scores       (N,)         the target's logit;  probabilities (N,): its softmax probability
    maps/<name>  (N, ...)     one array per method
    sums/<name>  (N,)         float64, the sum of each map (completeness: compare with the score)
    done         (chunks,)    bool, set for chunk i only after all of chunk i's data are written

Zarr's local store writes every chunk file to a temporary name and renames it, so a file is either
the old or the new one; a process killed between a chunk's arrays and its flag leaves the flag unset
and the chunk is computed again, to the same bytes. Every chunk carries a CRC32C checksum, so a damaged
file is an error when read, never silently other data.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from ..core.version import __version__
from .config import canonical_json

#: Version of the layout above, kept in the store.
LAYOUT = 1
ATTRIBUTE = "nni_job"


def codecs() -> list:
    """Compression and checksum of every chunk: Zstandard, then CRC32C."""
    return [ZstdCodec(level=3), Crc32cCodec()]


def differences(stored, given, path: str = "") -> list[str]:
    """Where two canonical configs differ, one line per leaf: ``"methods.IG.attribute.n_steps: 50 in the store, 100 now"``."""
    if isinstance(stored, dict) and isinstance(given, dict):
        found = []
        for key in sorted(set(stored) | set(given)):
            where = f"{path}.{key}" if path else key
            if key not in stored:
                found.append(f"{where}: not in the store, {canonical_json(given[key])} now")
            elif key not in given:
                found.append(f"{where}: {canonical_json(stored[key])} in the store, not given now")
            else:
                found += differences(stored[key], given[key], where)
        return found
    if stored != given:
        return [f"{path}: {canonical_json(stored)} in the store, {canonical_json(given)} now"]
    return []


class CorruptStoreError(ValueError):
    """A path that should hold a job store holds something else, or a damaged one."""


class JobStore:
    """An open job store (see the module's layout).

    Parameters
    ----------
    path : str or Path
        The store's directory.
    mode : {"r", "r+"}
    """

    def __init__(self, path: str | Path, mode: str = "r"):
        self.path = Path(path)
        if not (self.path / "zarr.json").is_file():
            raise CorruptStoreError(f"{self.path} is not a job store: it has no zarr.json")
        try:
            self.group = zarr.open_group(str(self.path), mode=mode)
            meta = dict(self.group.attrs).get(ATTRIBUTE)
        except Exception as error:  # zarr raises many kinds on damaged metadata
            raise CorruptStoreError(f"{self.path} is a damaged Zarr store: {error}") from error
        if not isinstance(meta, dict) or "config" not in meta or meta.get("layout") != LAYOUT:
            raise CorruptStoreError(
                f"{self.path} is a Zarr group but not a job store of layout {LAYOUT} (no {ATTRIBUTE!r} attributes)"
            )
        self.meta = meta
        self._check_arrays()

    # -- creation ------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: dict, n: int, chunk_size: int, samples: dict, maps: dict) -> "JobStore":
        """A new, empty store for ``n`` samples; ``samples`` maps the per-sample array names to dtypes,
        ``maps`` each method's name to ``(per-sample shape, dtype)``."""
        path = Path(path)
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        n_chunks = -(-n // chunk_size)
        for name, dtype in samples.items():
            _array(group, name, (n,), (chunk_size,), dtype)
        for name, (shape, dtype) in maps.items():
            _array(group, f"maps/{name}", (n, *shape), (chunk_size, *shape), dtype)
            _array(group, f"sums/{name}", (n,), (chunk_size,), "float64")
        _array(group, "done", (n_chunks,), (1,), "bool")
        group.attrs[ATTRIBUTE] = {
            "layout": LAYOUT,
            "config": config,
            "samples": n,
            "chunk_size": chunk_size,
            "methods": list(maps),
            "per_sample": list(samples),
            "nn_interpretability": __version__,
            "torch": torch.__version__,
            "zarr": zarr.__version__,
        }
        return cls(path, mode="r+")

    @staticmethod
    def remove(path: str | Path) -> None:
        """Delete the store at ``path``: only a Zarr store or an empty directory, never other files."""
        path = Path(path)
        if not path.exists():
            return
        if not (path / "zarr.json").is_file() and any(path.iterdir()):
            raise CorruptStoreError(f"{path} is not a Zarr store (no zarr.json); it is not deleted, even with overwrite")
        shutil.rmtree(path)

    # -- reading -------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def samples(self) -> int:
        return int(self.meta["samples"])

    @property
    def chunk_size(self) -> int:
        return int(self.meta["chunk_size"])

    @property
    def methods(self) -> list[str]:
        return list(self.meta["methods"])

    @property
    def n_chunks(self) -> int:
        return -(-self.samples // self.chunk_size)

    def rows(self, chunk: int) -> range:
        """The samples of chunk ``chunk``."""
        return range(chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, self.samples))

    def done(self, flags: str = "done") -> np.ndarray:
        """The completion flag of every chunk (of the explanation, or of ``"evaluation/done"``)."""
        try:
            return np.asarray(self.group[flags][:], dtype=bool)
        except Exception as error:
            raise CorruptStoreError(f"{self.path}: the completion flags {flags!r} cannot be read: {error}") from error

    def array(self, name: str):
        """The Zarr array ``name`` (e.g. ``"maps/IG"``)."""
        return self.group[name]

    def read(self, name: str, rows: range | slice | None = None) -> torch.Tensor:
        """Rows of array ``name`` as a tensor (all rows by default)."""
        rows = slice(None) if rows is None else rows
        if isinstance(rows, range):
            rows = slice(rows.start, rows.stop)
        try:
            return torch.from_numpy(np.asarray(self.group[name][rows]))
        except KeyError:
            raise KeyError(f"{self.path} has no array {name!r}") from None
        except Exception as error:
            raise CorruptStoreError(f"{self.path}: array {name!r} rows {rows} cannot be read: {error}") from error

    def maps(self, name: str, rows: range | slice | None = None) -> torch.Tensor:
        """The maps of method ``name`` (all samples by default)."""
        if name not in self.methods:
            raise KeyError(f"no method {name!r} in {self.path}; it holds {self.methods}")
        return self.read(f"maps/{name}", rows)

    def _check_arrays(self) -> None:
        names = [*self.meta["per_sample"], *(f"maps/{m}" for m in self.meta["methods"]), *(f"sums/{m}" for m in self.meta["methods"])]
        for name in [*names, "done"]:
            try:
                shape = self.group[name].shape
            except Exception as error:
                raise CorruptStoreError(f"{self.path}: the array {name!r} is missing or damaged ({error})") from error
            expected = self.n_chunks if name == "done" else self.samples
            if shape[0] != expected:
                raise CorruptStoreError(f"{self.path}: the array {name!r} has {shape[0]} rows, the job {expected}")

    # -- writing -------------------------------------------------------------------------------
    def write_chunk(self, chunk: int, values: dict[str, np.ndarray], flags: str = "done") -> None:
        """Write chunk ``chunk`` of every array of ``values``, then (and only then) set its flag."""
        rows = self.rows(chunk)
        for name, value in values.items():
            if value.shape[0] != len(rows):
                raise ValueError(f"chunk {chunk} of {name!r} has {value.shape[0]} rows, expected {len(rows)}")
            self.group[name][rows.start : rows.stop] = value
        self.group[flags][chunk] = True

    def remove_partial_files(self) -> int:
        """Delete the temporary files of writes a killed process left behind; returns how many."""
        partial = list(self.path.rglob("*.partial"))
        for file in partial:
            file.unlink(missing_ok=True)
        return len(partial)


def _array(group, name: str, shape: tuple, chunks: tuple, dtype) -> None:
    fill = False if np.dtype(dtype) == np.bool_ else 0
    group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, compressors=codecs(), fill_value=fill)
