"""Command line of dataset-scale jobs.

    python -m nn_interpretability.jobs explain --config job.yaml [--overwrite]
    torchrun --nproc_per_node=4 -m nn_interpretability.jobs explain --config job.yaml
    python -m nn_interpretability.jobs evaluate --store out.zarr [--metrics agreement deletion insertion]
    torchrun --nproc_per_node=4 -m nn_interpretability.jobs explain --config job.yaml --evaluate  (both, one launch)

``job.yaml`` holds the keys of :class:`~nn_interpretability.jobs.config.JobConfig` plus ``store`` (the
output directory) and, optionally, ``device`` and ``num_workers`` (where and how it runs, not what).
"""
from __future__ import annotations

import argparse
import os
import sys

from .config import make_config, read_yaml
from .distributed import processes
from .evaluation import METRICS, evaluate
from .explain import explain_dataset

RUN_KEYS = ("store", "device", "num_workers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nn_interpretability.jobs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser("explain", help="run a job's methods over its dataset into a Zarr store (resumes)")
    explain.add_argument("--config", required=True, help="the job's YAML file")
    explain.add_argument("--store", help="output store (default: the config's 'store')")
    explain.add_argument("--overwrite", action="store_true", help="discard a store of another job")
    explain.add_argument("--no-progress", action="store_true", help="no progress bar")
    explain.add_argument("--evaluate", action="store_true", help="then evaluate the store (all metrics), in the same processes")
    explain.add_argument("--steps", type=int, default=None, help="with --evaluate: points of each deletion / insertion curve")
    score = commands.add_parser("evaluate", help="agreement and deletion / insertion AUCs of a complete store")
    score.add_argument("--store", required=True)
    score.add_argument("--metrics", nargs="+", choices=METRICS, default=list(METRICS))
    score.add_argument("--steps", type=int, default=None, help="points of each deletion / insertion curve")
    score.add_argument("--baselines", type=float, default=0.0, help="value of a deleted pixel")
    score.add_argument("--device", default="auto")
    score.add_argument("--overwrite", action="store_true", help="discard an evaluation with other settings")
    score.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    show = False if args.no_progress else None
    try:
        if args.command == "explain":
            values = read_yaml(args.config)
            run = {key: values.pop(key) for key in RUN_KEYS if key in values}
            store = args.store or run.pop("store", None)
            run.pop("store", None)
            if store is None:
                parser.error(f"{args.config} names no 'store' and no --store was given")
            make_config(values)  # a clear error for a wrong key before any model is loaded
            with processes(run.get("device", "auto")):  # one process group for both steps
                explain_dataset(values.pop("model", None), values.pop("dataset", None), values.pop("methods", None), store,
                                overwrite=args.overwrite, show_progress=show, **run, **values)
                if args.evaluate:
                    _report(evaluate(store, steps=args.steps, device=run.get("device", "auto"), overwrite=args.overwrite, show_progress=show))
        else:
            _report(evaluate(args.store, metrics=args.metrics, steps=args.steps, baselines=args.baselines,
                             device=args.device, overwrite=args.overwrite, show_progress=show))
    except (ValueError, TypeError, KeyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _report(result) -> None:
    """Print an evaluation's matrix and AUCs (from rank 0 only under torchrun)."""
    if int(os.environ.get("RANK", "0")) == 0:
        if result.agreement is not None:
            print(result.agreement.to_markdown())
        for mode in ("deletion", "insertion"):
            for name, stats in getattr(result, f"{mode}_auc").items():
                print(f"{mode} AUC {name}: {stats['mean']:.4f} ± {stats['std']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
