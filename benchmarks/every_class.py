"""Every class in one call: ``target="all"`` against a Python loop of K calls and against Captum called K times.

On the MNIST CNN (random weights; timing does not need trained ones) with a batch of 64 and K = 10,
each method's maps of every class are computed three ways, after a warm-up, interleaved over the
repeats (medians, as in ``benchmarks/run.py``):

- ours, one call with ``target="all"`` (maps ``(N, K, ...)``);
- ours, a Python loop of K calls with ``target=c``;
- Captum's counterpart called K times (its batching options at their fastest for the same work).

The maps of the one call are checked to equal the loop's before anything is timed. Not part of the
test suite. Run with ``python benchmarks/every_class.py [--batch N] [--repeats N] [--threads N]``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from captum import attr as captum_attr

import nn_interpretability as nni

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _captum_input, _number_for, _time, interleaved  # noqa: E402  (the harness's timing)

IG_STEPS = 16
SG_SAMPLES = 8


def _cases(model) -> dict:
    """Ours (a method and its per-call arguments) and Captum's (a callable of one class) per method."""
    x_steps = {"n_steps": IG_STEPS, "method": "riemann_trapezoid"}
    return {
        "Saliency": (nni.Saliency(model), {}, lambda x, c: captum_attr.Saliency(model).attribute(x, target=c, abs=False)),
        "InputXGradient": (nni.InputXGradient(model), {}, lambda x, c: captum_attr.InputXGradient(model).attribute(x, target=c)),
        "GuidedBackprop": (nni.GuidedBackprop(model), {}, lambda x, c: captum_attr.GuidedBackprop(model).attribute(x, target=c)),
        "Deconvolution": (nni.Deconvolution(model), {}, lambda x, c: captum_attr.Deconvolution(model).attribute(x, target=c)),
        f"IntegratedGradients ({IG_STEPS} steps)": (
            nni.IntegratedGradients(model),
            {"n_steps": IG_STEPS, "method": "riemann_trapezoid"},
            lambda x, c: captum_attr.IntegratedGradients(model).attribute(x, target=c, **x_steps),
        ),
        f"SmoothGrad ({SG_SAMPLES} samples)": (
            nni.SmoothGrad(nni.Saliency(model), nt_samples=SG_SAMPLES, stdevs=0.1),
            {},
            lambda x, c: captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
                x, target=c, nt_type="smoothgrad", nt_samples=SG_SAMPLES, nt_samples_batch_size=SG_SAMPLES, stdevs=0.1, abs=False
            ),
        ),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="method names (prefixes) to time")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = nni.models.MNISTCNN().eval()
    x = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    classes = range(model(x).shape[1])
    print(f"MNIST CNN, batch {args.batch}, K = {len(classes)} classes, {torch.get_num_threads()} threads")
    print(f"{'method':<30} {'all s':>8} {'loop s':>8} {'captum s':>9} {'all/loop':>9} {'all/captum':>11}")
    for name, (method, kwargs, captum) in _cases(model).items():
        if args.only and not any(name.startswith(p) for p in args.only):
            continue
        everything = method.attribute(x, target="all", **kwargs)
        loop = torch.stack([method.attribute(x, target=c, **kwargs) for c in classes], 1)
        if not method.stochastic:
            torch.testing.assert_close(everything, loop, rtol=1e-4, atol=1e-6)
        entries = {
            "all": lambda: method.attribute(x, target="all", **kwargs),
            "loop": lambda: [method.attribute(x, target=c, **kwargs) for c in classes],
            "captum": lambda: [captum(_captum_input(x), c) for c in classes],
        }
        estimate = {key: _time(fn) for key, fn in entries.items()}  # also the warm-up
        seconds = interleaved(entries, {k: v / _number_for(v) for k, v in estimate.items()}, args.repeats)
        print(
            f"{name:<30} {seconds['all']:8.3f} {seconds['loop']:8.3f} {seconds['captum']:9.3f} "
            f"{seconds['all'] / seconds['loop']:9.2f} {seconds['all'] / seconds['captum']:11.2f}"
        )


if __name__ == "__main__":
    main()
