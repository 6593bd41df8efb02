"""Evaluation metrics, ours against Quantus 0.6, on 1,000 MNIST test images, the zoo's MNIST CNN and saliency maps.

The same workload on both sides: the embedded MNIST test split (``nni.data.load_mnist("test")``), the
zoo's ``mnist_cnn`` (float32), its signed gradient maps for the predicted class, and for each metric the
same settings (Quantus with ``normalise=False, abs=False`` except where the metric takes ``abs``, baseline 0,
``batch_size`` = all images, so that its batched metrics run as batched as they can):

- pixel flipping, 28 pixels per step (29 curve points);
- faithfulness correlation, 20 random subsets of 224 pixels;
- sparseness (Gini of the absolute maps);
- max-sensitivity, 5 uniform perturbations of radius 0.02, explained with saliency;
- ROAD with the noisy linear imputer at 10 percentages (Quantus imputes and predicts image by image).

Both sides draw their own random numbers (the reference tests show the scores equal given the same ones).
Warm-up on 10 images, then one timed call per side (``--calls`` for more; the best is printed) with the
ratio Quantus / ours. The last columns are the floor: the model passes the metric cannot avoid (the
unperturbed and every perturbed input forwarded, for max-sensitivity every copy explained), run on
their own in the chunks our metric uses, and our time over it. Where ours is within a few percent of
the floor the metric is forward-bound: both sides run the same forwards, and the ratio to Quantus is
bounded by how much slower Quantus's own passes are, not by anything left to batch. Times are the process's CPU time (``time.process_time``, one thread by default),
which other processes on shared cores do not inflate as they do wall time. Quantus's slowest metrics can be timed on fewer images (``--quantus-images``); their
time is then scaled to ``--images`` and the table says so. Not part of the test suite:
``python benchmarks/metrics.py [--images 1000] [--quantus-images 1000] [--calls 1] [--threads 1] [--only ROAD]``.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import quantus
import torch

import nn_interpretability as nni
from nn_interpretability.core.batching import chunk_size
from nn_interpretability.evaluation import faithfulness_correlation, max_sensitivity, pixel_flipping, road, sparseness
from nn_interpretability.evaluation.faithfulness import PASS_ELEMENTS

ROAD_PERCENTAGES = [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]


def _saliency(network):
    """Quantus's ``explain_func``: our saliency (the same maps on both sides)."""

    def explain(model, inputs, targets, **kwargs):
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        return nni.Saliency(network).attribute(x, target=torch.as_tensor(np.asarray(targets)).long()).numpy()

    return explain


def forward_floor(model, rows_per_image: int):
    """The passes alone: every image forwarded ``rows_per_image`` times, in the metrics' chunks of rows."""

    def run(x, y, a):
        chunk = chunk_size(x[0].numel(), None, budget=PASS_ELEMENTS)
        copies = x.repeat(rows_per_image, 1, 1, 1)
        with torch.no_grad():
            for start in range(0, len(copies), chunk):
                model(copies[start : start + chunk])

    return run


def explain_floor(saliency, copies_per_image: int):
    """Saliency on every image and ``copies_per_image`` copies, in max-sensitivity's chunks."""

    def run(x, y, a):
        chunk = chunk_size(x[0].numel(), None)
        copies, targets = x.repeat(copies_per_image + 1, 1, 1, 1), y.repeat(copies_per_image + 1)
        for start in range(0, len(copies), chunk):
            saliency.attribute(copies[start : start + chunk], target=targets[start : start + chunk])

    return run


def cases(model):
    """``{name: (ours, Quantus, floor or None)}``, each ``call(x, y, a)``."""
    saliency = nni.Saliency(model)

    def quantus_call(metric, needs_explain=False):
        def call(x, y, a):
            extra = {"explain_func": _saliency(model)} if needs_explain else {}
            return metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", batch_size=len(x), **extra)

        return call

    return {
        "pixel flipping (28 px/step)": (
            lambda x, y, a: pixel_flipping(model, x, a, y, features_in_step=28),
            quantus_call(quantus.PixelFlipping(features_in_step=28, perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True)),
            forward_floor(model, 1 + 28),  # the unperturbed image and 28 steps
        ),
        "faithfulness correlation (20 x 224 px)": (
            lambda x, y, a: faithfulness_correlation(model, x, a, y, n_subsets=20, subset_size=224),
            quantus_call(
                quantus.FaithfulnessCorrelation(
                    nr_runs=20, subset_size=224, perturb_baseline=0.0, normalise=False, abs=False,
                    return_aggregate=False, disable_warnings=True,
                )
            ),
            forward_floor(model, 1 + 20),
        ),
        "sparseness": (
            lambda x, y, a: sparseness(a),
            quantus_call(quantus.Sparseness(normalise=False, abs=True, disable_warnings=True)),
            None,  # no model pass
        ),
        "max-sensitivity (5 draws, r = 0.02)": (
            lambda x, y, a: max_sensitivity(saliency, x, y, radius=0.02, n_samples=5),
            quantus_call(
                quantus.MaxSensitivity(nr_samples=5, lower_bound=0.02, normalise=False, abs=False, disable_warnings=True),
                needs_explain=True,
            ),
            explain_floor(saliency, 5),
        ),
        "ROAD (10 percentages)": (
            lambda x, y, a: road(model, x, a, y, percentages=ROAD_PERCENTAGES),
            quantus_call(quantus.ROAD(percentages=ROAD_PERCENTAGES, normalise=False, abs=False, disable_warnings=True)),
            forward_floor(model, 1 + len(ROAD_PERCENTAGES)),
        ),
    }


def best_time(call, x, y, a, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.process_time()
        call(x, y, a)
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--quantus-images", type=int, default=None, help="time Quantus on fewer images and scale")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--only", default=None, help="time only the metrics whose name contains this")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    model = nni.load_model("mnist_cnn", device="cpu").eval()
    images, _ = nni.data.load_mnist("test")
    x = images[: args.images]
    with torch.no_grad():
        y = model(x).argmax(1)
    a = nni.Saliency(model).attribute(x, target=y)
    q = args.quantus_images or args.images
    print(f"MNIST CNN float32, {args.images} test images (Quantus timed on {q}), saliency maps, {args.threads} thread(s)")
    print(f"{'metric':42s} {'ours s':>8s} {'Quantus s':>10s} {'Quantus/ours':>13s} {'floor s':>8s} {'ours/floor':>11s}")
    for name, (ours, theirs, floor) in cases(model).items():
        if args.only and args.only not in name:
            continue
        ours(x[:10], y[:10], a[:10]), theirs(x[:10], y[:10], a[:10])  # warm-up
        ours_s = best_time(ours, x, y, a, args.calls)
        theirs_s = best_time(theirs, x[:q], y[:q], a[:q], args.calls) * args.images / q
        scaled = "" if q == args.images else f" (x{args.images / q:g})"
        floor_s = best_time(floor, x, y, a, args.calls) if floor is not None else None
        floor_text = f"{floor_s:8.3f} {ours_s / floor_s:10.2f}x" if floor_s else f"{'-':>8s} {'-':>11s}"
        print(f"{name:42s} {ours_s:8.3f} {theirs_s:10.3f} {theirs_s / ours_s:12.1f}x {floor_text}{scaled}")


if __name__ == "__main__":
    main()
