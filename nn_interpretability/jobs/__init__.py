"""Dataset-scale explanation jobs: a Zarr store written chunk by chunk, resumable, sharded with torchrun.

- :func:`explain_dataset` (CLI ``python -m nn_interpretability.jobs explain --config job.yaml``): every
  method over a whole dataset into a Zarr v3 store, resumed where it stopped, split over the ranks of
  ``torchrun``.
- :func:`evaluate` (CLI ``... evaluate --store out.zarr``): deletion / insertion AUCs, the Spearman
  agreement matrix and summary statistics from the store, chunk by chunk, written back into it.
- :class:`JobStore`: reading a store (``store.maps("IG")``).
"""
from ..core.lazy import lazy_exports

_EXPORTS = {
    ".config": ["JobConfig", "MethodSpec", "make_config"],
    ".evaluation": ["EvaluationResult", "evaluate"],
    ".explain": ["explain_dataset"],
    ".store": ["CorruptStoreError", "JobStore"],
}

lazy_exports(__name__, _EXPORTS, globals())
