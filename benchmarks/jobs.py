"""Throughput of dataset-scale jobs (images/s) with 1 and 2 ``torchrun`` processes.

Workloads: IG-50 and LRP-epsilon on the zoo's MNIST CNN over the 5,000 embedded digits (``mnist:all``),
and the same on a seeded, untrained resnet18 at 224² over synthetic images (throughput does not depend
on the weights). Each (workload, processes) pair is one ``torchrun --standalone --nproc_per_node=P``
launch of this file in ``--worker`` mode, which times :func:`nni.jobs.explain_dataset` from a barrier
after the imports and the model's loading to the end of the job (store creation, data loading, the
methods and the writes included) and prints the images per second of all ranks together. Every worker
runs with ``OMP_NUM_THREADS=1`` (torchrun's default), so P processes use P cores.

Not part of the test suite::

    python benchmarks/jobs.py                         # the workloads above, 1 and 2 processes
    python benchmarks/jobs.py --mnist-images 1000 --resnet-images 48 --resnet-ig-images 8   # a quicker run
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "IG-50": {"method": "integrated-gradients", "attribute": {"n_steps": 50}},
    "LRP": {"method": "lrp-epsilon"},
}


def resnet18() -> torch.nn.Module:
    """An untrained torchvision resnet18 (for throughput only; the job seeds it, the same on every rank)."""
    from torchvision.models import resnet18 as build

    return build(num_classes=1000).eval()


def synthetic_images(n: int = 256) -> torch.utils.data.TensorDataset:
    """``n`` seeded random 3 × 224 × 224 images with labels."""
    generator = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(torch.randn(n, 3, 224, 224, generator=generator), torch.randint(0, 1000, (n,), generator=generator))


def worker(args) -> None:
    import torch.distributed as dist

    import nn_interpretability as nni
    from nn_interpretability.jobs.config import resolve_model
    from nn_interpretability.jobs.distributed import processes

    with processes("cpu") as procs:
        if args.model == "mnist_cnn":
            model, dataset = "mnist_cnn", "mnist:all"
            resolve_model(model, torch.device("cpu"))  # trained or cached before the clock starts
        else:
            model, dataset = "jobs:resnet18", "jobs:synthetic_images"
        nni.available_methods()
        procs.barrier()
        start = time.perf_counter()
        store = nni.jobs.explain_dataset(model, dataset, {args.method: METHODS[args.method]}, args.store, limit=args.images,
                                         device="cpu", show_progress=False)
        seconds = time.perf_counter() - start
        if procs.rank == 0:
            print(f"RESULT {store.samples} {seconds:.3f} {store.chunk_size}", flush=True)
        if dist.is_initialized():
            procs.barrier()


def launch(model: str, method: str, images: int, nproc: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}", "PYTHONWARNINGS": "ignore"}
        torchrun = Path(sys.executable).with_name("torchrun")
        command = [str(torchrun), "--standalone", f"--nproc_per_node={nproc}", str(Path(__file__)), "--worker",
                   "--model", model, "--method", method, "--images", str(images), "--store", f"{folder}/job.zarr"]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
        if result.returncode or not lines:
            raise RuntimeError(result.stdout[-2000:] + result.stderr[-2000:])
        n, seconds, chunk = lines[0].split()[1:]
        return int(n) / float(seconds), int(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="mnist_cnn", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="LRP", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--mnist-images", type=int, default=5000)
    parser.add_argument("--resnet-images", type=int, default=256, help="images for LRP on resnet18")
    parser.add_argument("--resnet-ig-images", type=int, default=32, help="images for IG-50 on resnet18")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    cases = [
        ("mnist_cnn", "IG-50", args.mnist_images), ("mnist_cnn", "LRP", args.mnist_images),
        ("resnet18", "IG-50", args.resnet_ig_images), ("resnet18", "LRP", args.resnet_images),
    ]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, OMP_NUM_THREADS=1 per process")
    header = f"{'model':<10} {'method':<6} {'images':>6} {'chunk':>5} " + " ".join(f"{f'{p} proc img/s':>12}" for p in args.processes) + "  speed-up"
    print(header)
    for model, method, images in cases:
        rates = [launch(model, method, images, p) for p in args.processes]
        cells = " ".join(f"{rate:>12.3g}" for rate, _ in rates)
        print(f"{model:<10} {method:<6} {images:>6} {rates[0][1]:>5} {cells}  {rates[-1][0] / rates[0][0]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
