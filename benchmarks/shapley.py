"""Shapley value sampling and Kernel SHAP, ours against Captum 0.9, on MNIST CNNs and ResNet-18 (float32, batch 8).

Three workloads. *Random inputs*: the seeded toy MNIST CNN of the tests on uniform noise in [0, 1]
(``tests/toy_models.mnist_like_batch``), where no pixel equals the baseline 0. *Real digits*: the zoo's
trained ``mnist_cnn`` (``nni.load_model``; cached under ``$NNI_HOME``, trained there on first use: run with
``NNI_HOME=/tmp/nnihome_figures``) on the first 8 embedded test digits (``nni.data.load_mnist("test",
source="embedded")``), whose blank background equals the baseline 0 in many cells. *Photos*: torchvision's
ResNet-18 (random weights) on the four bundled photos and their mirror images (``nni.data.sample_images``,
112 × 112, contiguous as torchvision's transforms give them), where our perturbed copies reach the model
channels-last (``Run.forward``) and Captum's keep the inputs' layout.

The feature mask is a 7 × 7 grid of square cells (4 × 4 pixels on digits, 16 × 16 on photos; 49 features,
shared by the batch), the baseline 0.
Both sides run at most the same number of rows per forward pass: ours at its CPU default (at most
:data:`~nn_interpretability.core.batching.CPU_ROWS` rows and ``CHUNK_ELEMENTS`` input elements: 16
perturbations of the 8 digits, 6 of the 4 photos), Captum with ``perturbations_per_eval`` giving the same
rows (for Shapley sampling, which evaluates the whole batch per perturbation; for Kernel SHAP, which
explains one sample at a time, 128 digits or 27 photos).

What each side runs for Shapley sampling (10 orderings of 49 features): Captum chunks each ordering
separately (passes of 16, 16, 16 and 1 steps) and evaluates all 49 steps of it, i.e. 1 + 40 forwards of
3,928 rows; ours fills every pass with steps of any ordering, takes the last step of each ordering (the
input itself) from the target's forward on the batch, and skips the steps that switch on a cell equal to
its baseline (the input is unchanged, so is its score): 2 + 30 forwards of 3,856 rows on noise, far fewer
rows on digits (their blank cells). For Kernel SHAP (200 coalitions) Captum scores every coalition of every
sample; ours scores each distinct coalition of a sample's changing cells once and the input and the
baseline by one forward each (1,496 of 1,608 rows on noise, 748 of 804 on photos). The model forwards
are the bulk of both, so the printed split (time inside the model's forward vs the rest) shows where a ratio comes from;
Captum's are all counted, but ours after the first pass run in a copy of the model (BatchNorm folded,
weights channels-last: ``Run.forward``) which the counter does not see, so ours shows that first pass
only. Warm-up, then ``--calls``
interleaved calls (ours, Captum, ours, ...); the best wall time of each side is printed with the ratio
ours / Captum, and the spread of the per-round ratios. Not part of the test suite:
``NNI_HOME=/tmp/nnihome_figures python benchmarks/shapley.py [--calls 3] [--only photos]``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
import torchvision
from captum.attr import KernelShap as CaptumKernelShap
from captum.attr import ShapleyValueSampling as CaptumShapleyValueSampling

import nn_interpretability as nni
from nn_interpretability.attribution.lime import grid_segments
from nn_interpretability.core.batching import chunk_size

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from toy_models import mnist_cnn, mnist_like_batch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Timed  # noqa: E402  (the harness's forward counter)

N = 8


def perturbations_per_pass(x: torch.Tensor) -> int:
    """Our default copies of the batch ``x`` per forward (Shapley sampling), which Captum is given too."""
    return chunk_size(x[0].numel() * x.shape[0], rows_per_copy=x.shape[0])


def cases(model, x):
    size = x.shape[-1]
    mask = torch.as_tensor(grid_segments(size, size, size // 7)).view(1, 1, size, size)
    target = list(range(x.shape[0]))
    copies = perturbations_per_pass(x)
    ours_svs = nni.ShapleyValueSampling(model, n_samples=10, seed=0)
    ours_ks = nni.KernelShap(model, n_samples=200, seed=0)
    return {
        "shapley-value-sampling (10 orderings)": (
            lambda x: ours_svs.attribute(x, target=target, feature_mask=mask),
            lambda x: CaptumShapleyValueSampling(model).attribute(x, target=target, feature_mask=mask, n_samples=10, perturbations_per_eval=copies),
        ),
        "kernel-shap (200 coalitions)": (
            lambda x: ours_ks.attribute(x, target=target, feature_mask=mask),
            lambda x: CaptumKernelShap(model).attribute(x, target=target, feature_mask=mask, n_samples=200, perturbations_per_eval=chunk_size(x[0].numel(), rows_per_copy=1)),
        ),
    }


def timed(call, x, model: Timed) -> tuple[float, float, int, int]:
    """Wall time of one call, and the time, calls and rows of the model's forwards in it."""
    model.reset()
    start = time.perf_counter()
    call(x)
    return time.perf_counter() - start, model.seconds, model.calls, model.rows


def workloads():
    """(name, model, batch) of the three workloads, float32."""
    images, _ = nni.data.load_mnist("test", source="embedded")
    # contiguous, as torchvision's transforms and a DataLoader give them (preprocess keeps the photos' HWC strides)
    photos = nni.data.preprocess(list(nni.data.sample_images().values()), size=112).contiguous()
    torch.manual_seed(0)
    return [
        ("random inputs, toy MNIST CNN", mnist_cnn(seed=0).float(), mnist_like_batch(N, seed=0, dtype=torch.float32)),
        ("real digits, zoo mnist_cnn", nni.load_model("mnist_cnn"), images[:N]),
        ("photos, ResNet-18 random weights", torchvision.models.resnet18(weights=None), photos),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", help="run the workloads whose title contains this, e.g. photos")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    for title, network, x in workloads():
        if args.only and args.only not in title:
            continue
        model = Timed(network).eval()
        c, cell = x.shape[1], x.shape[-1] // 7
        n = x.shape[0]
        rows = perturbations_per_pass(x) * n
        blank = float((x.reshape(n, c, 7, cell, 7, cell) == 0).all(5).all(3).all(1).float().mean())
        print(f"{title}: float32, batch {n}, 49 grid cells ({blank:.0%} blank), {rows} rows per forward, {args.threads} thread(s)")
        for name, (ours, theirs) in cases(model, x).items():
            ours(x), theirs(x)  # warm-up
            times = {"ours": [], "captum": []}
            for _ in range(args.calls):
                times["ours"].append(timed(ours, x, model))
                times["captum"].append(timed(theirs, x, model))
            best = {side: min(runs) for side, runs in times.items()}
            ratios = [o[0] / c[0] for o, c in zip(times["ours"], times["captum"])]
            print(f"  {name:38s} ours/Captum {best['ours'][0] / best['captum'][0]:.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})")
            for side, (total, forwards, calls, rows) in best.items():
                print(
                    f"      {side:7s} {total:7.3f} s = forwards {forwards:7.3f} s ({calls} passes, {rows} rows)"
                    f" + overhead {total - forwards:6.3f} s"
                )


if __name__ == "__main__":
    main()
