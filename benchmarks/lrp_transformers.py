"""LRP on a vision transformer and on resnet50: ours against one forward+backward and against LXT 2.1.

Cases (random weights, float32, eval): torchvision's ``vit_b_16`` at 224 × 224 (batch 2) and the zoo's
``mnist_vit`` architecture (batch 64), and resnet50 at 128 × 128 (batch 2). For each: the median of
interleaved repeats of one forward plus ``autograd.grad`` of the input (parameters frozen, no hooks),
our LRP with its default composite (EpsilonPlusFlat, AttnLRP) and with CP-LRP's attention, and, for the
transformers, LXT's CP-LRP (``lxt.efficient.monkey_patch`` of torchvision's module, Gradient × Input),
which runs in a child process because it patches ``torch.nn`` for the whole process. Not part of the
test suite. Run with ``python benchmarks/lrp_transformers.py [--repeats N] [--threads N]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torchvision

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import EpsilonPlusFlat
from nn_interpretability.models.mnist import mnist_vit

CASES = {
    "vit_b_16, batch 2, 224x224": ("vit_b_16", (2, 3, 224, 224)),
    "mnist_vit, batch 64": ("mnist_vit", (64, 1, 28, 28)),
    "resnet50, batch 2, 128x128": ("resnet50", (2, 3, 128, 128)),
}


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = mnist_vit() if name == "mnist_vit" else getattr(torchvision.models, name)(weights=None)
    if hasattr(model, "heads"):
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)  # torchvision's zero head makes every map 0
    return model.eval()


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _forward_backward(model, x):
    frozen = [p.requires_grad_(False) for p in model.parameters()]
    try:
        inputs = x.clone().requires_grad_(True)
        torch.autograd.grad(model(inputs)[:, 0].sum(), inputs)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _lxt_child(name: str, shape, repeats: int, threads: int) -> None:
    from lxt.efficient import monkey_patch
    from torchvision.models import vision_transformer

    torch.set_num_threads(threads)
    monkey_patch(vision_transformer, verbose=False)
    model, x = _model(name), torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    for p in model.parameters():
        p.requires_grad_(False)

    def explain():
        inputs = x.clone().requires_grad_(True)
        model(inputs)[:, 0].sum().backward()
        return inputs * inputs.grad

    print(json.dumps({"seconds": _median_seconds(explain, repeats)}))


def _lxt_seconds(name: str, shape, repeats: int, threads: int) -> float | None:
    code = f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); import lrp_transformers as b; " \
           f"b._lxt_child({name!r}, {tuple(shape)!r}, {repeats}, {threads})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        print(f"  LXT did not run: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads, median of {args.repeats}")
    print(f"{'case':<30} {'fwd+bwd s':>10} {'AttnLRP s':>10} {'CP-LRP s':>10} {'LXT s':>8} {'AttnLRP/fb':>11} {'CP/fb':>6} {'CP/LXT':>7}")
    for label, (name, shape) in CASES.items():
        model, x = _model(name), torch.rand(*shape, generator=torch.Generator().manual_seed(1))
        attn = nni.LRP(model)
        cp = nni.LRP(model, composite=EpsilonPlusFlat(attention="conservative"))
        base = _median_seconds(lambda: _forward_backward(model, x), args.repeats)
        ours = _median_seconds(lambda: attn.attribute(x, target=0), args.repeats)
        conservative = _median_seconds(lambda: cp.attribute(x, target=0), args.repeats)
        lxt = _lxt_seconds(name, shape, args.repeats, args.threads) if name != "resnet50" else None
        lxt_text, ratio = ("—", "—") if lxt is None else (f"{lxt:.3f}", f"{conservative / lxt:.2f}")
        print(
            f"{label:<30} {base:10.3f} {ours:10.3f} {conservative:10.3f} {lxt_text:>8} {ours / base:11.2f} "
            f"{conservative / base:6.2f} {ratio:>7}",
            flush=True,
        )


if __name__ == "__main__":
    main()
