"""LRP on a vision transformer and on resnet50: ours against one forward+backward and against LXT 2.1.

Cases (random weights, float32, eval): torchvision's ``vit_b_16`` at 224 × 224 (batch 1: at batch 2 the
plain backward of ``nn.MultiheadAttention``'s input projection takes a slow batched-matmul path, 197
products with an expanded weight, which makes forward+backward slower than LRP and the ratio
meaningless) and the zoo's ``mnist_vit`` architecture (batch 64), and resnet50 at 128 × 128 (batch 2: the per-call work on
the weights weighs most) and at 224 × 224 (batch 8). For each: the median of
interleaved repeats (round-robin, so that a busy machine slows every contender alike) of one forward
plus ``autograd.grad`` of the input (parameters frozen, no hooks), our LRP with its default composite
(EpsilonPlusFlat, AttnLRP) and with CP-LRP's attention, and, for the transformers, LXT's CP-LRP
(``lxt.efficient.monkey_patch`` of torchvision's module, Gradient × Input). LXT runs in a child process
because it patches ``torch.nn`` for the whole process; the child restores the original forwards for
everything but LXT and times LXT, our LRP with LXT's rules (:data:`LXT_RULES`, the composite that
``tests/reference/test_lxt_reference.py`` shows equal to LXT) and forward+backward interleaved, and the
LXT column is the ratio of its medians for ours and LXT's (the same process, the same load, the same rules). Not part of the test suite. Run with
``python benchmarks/lrp_transformers.py [--repeats N] [--threads N] [--clock cpu] [--cases resnet50 ...]``; on
cores shared with other jobs ``--threads 1 --clock cpu`` (process time) gives steadier ratios than wall time.
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
from nn_interpretability.attribution.lrp import Composite, Epsilon, EpsilonPlusFlat
from nn_interpretability.models.mnist import mnist_vit

CASES = {
    "vit_b_16, batch 1, 224x224": ("vit_b_16", (1, 3, 224, 224)),
    "mnist_vit, batch 64": ("mnist_vit", (64, 1, 28, 28)),
    "resnet50, batch 2, 128x128": ("resnet50", (2, 3, 128, 128)),
    "resnet50, batch 8, 224x224": ("resnet50", (8, 3, 224, 224)),
}
#: The clock of every timing: ``time.perf_counter`` or, with ``--clock cpu``, ``time.process_time``.
CLOCK = time.perf_counter
#: LXT's CP-LRP as our composite: LRP-0 (gradient × input) everywhere, attention weights and LayerNorm
#: statistics held constant.
LXT_RULES = Composite(default=Epsilon(0.0), stabilizer=0.0, attention="conservative")


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = mnist_vit() if name == "mnist_vit" else getattr(torchvision.models, name)(weights=None)
    if hasattr(model, "heads"):
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)  # torchvision's zero head makes every map 0
    return model.eval()


def _median_seconds(fns: dict, repeats: int) -> dict:
    """Median seconds of every function, run round-robin ``repeats`` times after one warm-up each."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = CLOCK()
            fn()
            times[name].append(CLOCK() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _forward_backward(model, x):
    frozen = [p.requires_grad_(False) for p in model.parameters() if p.requires_grad]
    try:
        inputs = x.clone().requires_grad_(True)
        torch.autograd.grad(model(inputs)[:, 0].sum(), inputs)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _lxt_child(name: str, shape, repeats: int, threads: int, clock: str) -> None:
    from lxt.efficient import monkey_patch
    from torchvision.models import vision_transformer

    global CLOCK
    CLOCK = time.process_time if clock == "cpu" else time.perf_counter
    torch.set_num_threads(threads)
    # LXT's patch replaces the forward of these classes; the plain forward+backward runs the originals.
    patched_classes = (torch.nn.GELU, torch.nn.LayerNorm, torch.nn.MultiheadAttention)
    original = {cls: cls.forward for cls in patched_classes}
    monkey_patch(vision_transformer, verbose=False)
    patched = {cls: cls.forward for cls in patched_classes}
    model, x = _model(name), torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    for p in model.parameters():
        p.requires_grad_(False)

    def run_with(forwards, fn):
        for cls, forward in forwards.items():
            cls.forward = forward
        return fn()

    def explain():
        inputs = x.clone().requires_grad_(True)
        model(inputs)[:, 0].sum().backward()
        return inputs * inputs.grad

    same_rules = nni.LRP(model, composite=LXT_RULES)
    seconds = _median_seconds(
        {
            "lxt": lambda: run_with(patched, explain),
            "base": lambda: run_with(original, lambda: _forward_backward(model, x)),
            "same rules": lambda: run_with(original, lambda: same_rules.attribute(x, target=0)),
        },
        repeats,
    )
    print(json.dumps(seconds))


def _lxt_seconds(name: str, shape, repeats: int, threads: int, clock: str) -> dict | None:
    code = f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); import lrp_transformers as b; " \
           f"b._lxt_child({name!r}, {tuple(shape)!r}, {repeats}, {threads}, {clock!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        print(f"  LXT did not run: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--cases", nargs="+", default=None, help="models to run (vit_b_16, mnist_vit, resnet50); all by default")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads, {args.clock} clock, median of {args.repeats}")
    print(f"{'case':<30} {'fwd+bwd s':>10} {'AttnLRP s':>10} {'CP-LRP s':>10} {'LXT s':>8} {'AttnLRP/fb':>11} {'CP/fb':>6} {'LXT rules/LXT':>14}")
    for label, (name, shape) in CASES.items():
        if args.cases is not None and name not in args.cases:
            continue
        model, x = _model(name), torch.rand(*shape, generator=torch.Generator().manual_seed(1))
        attn = nni.LRP(model)
        cp = nni.LRP(model, composite=EpsilonPlusFlat(attention="conservative"))
        seconds = _median_seconds(
            {
                "base": lambda: _forward_backward(model, x),
                "ours": lambda: attn.attribute(x, target=0),
                "conservative": lambda: cp.attribute(x, target=0),
            },
            args.repeats,
        )
        base, ours, conservative = seconds["base"], seconds["ours"], seconds["conservative"]
        lxt = _lxt_seconds(name, shape, args.repeats, args.threads, args.clock) if name != "resnet50" else None
        lxt_text, ratio = ("—", "—")
        if lxt is not None:
            lxt_text, ratio = f"{lxt['lxt']:.3f}", f"{lxt['same rules'] / lxt['lxt']:.2f}"
        print(
            f"{label:<30} {base:10.3f} {ours:10.3f} {conservative:10.3f} {lxt_text:>8} {ours / base:11.2f} "
            f"{conservative / base:6.2f} {ratio:>14}",
            flush=True,
        )


if __name__ == "__main__":
    main()
