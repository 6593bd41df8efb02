"""Speed and peak memory of our IntegratedGradients for several ``internal_batch_size`` values.

Each value runs in a fresh subprocess (spawned, so nothing is inherited): build the model (random
weights), warm up with two plain forward+backward passes of one copy, reset the peak resident memory,
then call IntegratedGradients once (its time is "first", its peak RSS above the state before the call
is "peak") and ``--calls`` more times ("steady", the median wall time; "cpu", the median of the
process's CPU time, steadier on a busy machine with ``--threads 1``). ``None`` is the package's default chunking
(``CHUNK_ELEMENTS`` input elements per pass). ``--captum`` adds Captum's IntegratedGradients with the
same values for comparison. Not part of the test suite. Run with
``python benchmarks/ig_chunks.py [--cases mnist_cnn resnet50_128 ...] [--values None 4 8 16 ...] [--threads N]``.
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _our_default_chunk, input_gradient, reset_resident_peak, resident_peak_mib  # noqa: E402

# name -> (model, input shape, n_steps, default internal_batch_size values)
LARGE = [None, 1, 2, 4, 8, 16, 32, 64, 100]
CASES = {
    "mnist_cnn": ("mnist_cnn", (64, 1, 28, 28), 50, [None, 64, 128, 256, 512, 1024, 3200]),
    "resnet50_128": ("resnet50", (2, 3, 128, 128), 50, LARGE),
    "vgg16_128": ("vgg16", (2, 3, 128, 128), 25, LARGE),
    "resnet50_224": ("resnet50", (1, 3, 224, 224), 32, LARGE),
    "vgg16_224": ("vgg16", (1, 3, 224, 224), 16, LARGE),
    "resnet18_224": ("resnet18", (4, 3, 224, 224), 50, LARGE),
}


def _build(name: str) -> torch.nn.Module:
    if name == "mnist_cnn":
        import nn_interpretability as nni

        return nni.models.MNISTCNN()
    return getattr(torchvision.models, name)(weights=None)  # random weights: nothing is downloaded


def _child(case: str, library: str, value, threads: int, calls: int, queue) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(threads)
    import nn_interpretability as nni
    from captum import attr as captum_attr

    name, shape, steps, _ = CASES[case]
    torch.manual_seed(0)
    model = _build(name).eval()
    x = torch.rand(shape)
    target = torch.arange(shape[0]) % 10
    if library == "ours":
        method = nni.IntegratedGradients(model)
    else:
        method = captum_attr.IntegratedGradients(model)
    for _ in range(2):
        input_gradient(model, x[:1], target[:1])
    reset_resident_peak()
    before = resident_peak_mib()
    start = time.perf_counter()
    method.attribute(x, target=target, n_steps=steps, internal_batch_size=value)
    first = time.perf_counter() - start
    peak = resident_peak_mib() - before
    wall, cpu = [], []
    for _ in range(calls):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        method.attribute(x, target=target, n_steps=steps, internal_batch_size=value)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    queue.put((first, statistics.median(wall) if wall else first, statistics.median(cpu) if cpu else first, peak))


def _per_pass(library: str, value, n: int, steps: int, elements: int) -> int:
    total = n * steps
    if library == "ours":
        default = _our_default_chunk(elements, rows_per_copy=1, device=torch.device("cpu"))
        return min(total, value if value is not None else (default or total))
    if value is None:
        return total
    return min(steps, max(2, value // n)) * n  # Captum: whole steps of all examples, at least 2 steps


def sweep(case: str, libraries: list[str], values: list | None, threads: int, calls: int) -> None:
    name, shape, steps, default_values = CASES[case]
    values = default_values if values is None else values
    n, elements = shape[0], int(torch.Size(shape[1:]).numel())
    total = n * steps
    print(f"\n{name}, batch {n}, {shape[-2]}x{shape[-1]}, {steps} steps = {total} path points; "
          f"{threads} threads; steady = median of {calls} calls after the first", flush=True)
    print(f"{'library':<7} {'internal_batch_size':>19} {'per pass':>8} {'passes':>6} {'first s':>8} "
          f"{'steady s':>8} {'cpu s':>8} {'ms/point':>8} {'peak MiB':>9}")
    context = multiprocessing.get_context("spawn")
    for library in libraries:
        seen = set()
        for value in values:
            if library == "captum" and value is not None and value < n:
                continue
            per_pass = _per_pass(library, value, n, steps, elements)
            if per_pass in seen:
                continue
            seen.add(per_pass)
            queue = context.Queue()
            child = context.Process(target=_child, args=(case, library, value, threads, calls, queue))
            child.start()
            child.join()
            if child.exitcode != 0:
                print(f"{library:<7} {str(value):>19} {per_pass:>8}  failed (exit code {child.exitcode})", flush=True)
                continue
            first, steady, cpu, peak = queue.get()
            print(f"{library:<7} {str(value):>19} {per_pass:>8} {-(-total // per_pass):>6} {first:8.2f} "
                  f"{steady:8.2f} {cpu:8.2f} {1000 * steady / total:8.1f} {peak:9.0f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=["mnist_cnn", "resnet50_128", "vgg16_128", "resnet50_224"],
                        choices=sorted(CASES))
    parser.add_argument("--values", nargs="*", default=None,
                        help="internal_batch_size values (default: per case); None is the default chunking")
    parser.add_argument("--calls", type=int, default=2, help="timed calls after the first (median)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--captum", action="store_true", help="also sweep Captum's IntegratedGradients")
    args = parser.parse_args(argv)
    values = None if args.values is None else [None if v.lower() == "none" else int(v) for v in args.values]
    print(f"torch {torch.__version__}; our default: CHUNK_ELEMENTS input elements per pass "
          f"(= {_our_default_chunk(1)} elements), at most {_our_default_chunk(1, 1, torch.device('cpu'))} "
          "path points per pass on the CPU")
    for case in args.cases:
        sweep(case, ["ours"] + (["captum"] if args.captum else []), values, args.threads, args.calls)


if __name__ == "__main__":
    main()
