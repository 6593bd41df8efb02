"""Time each method against its Captum counterpart on the same model and batch, in one process.

Prints, per method and model, the median wall time of ours and Captum's, the ratio ours/Captum and
the ratio ours / (one plain forward + backward pass). Not part of the test suite: timings depend on
the machine. Run with ``make benchmarks`` or ``python benchmarks/run.py [--repeats N]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision
from captum import attr as captum_attr

import nn_interpretability as nni


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _forward_backward(model, x, target):
    def run():
        inputs = x.clone().requires_grad_(True)
        model(inputs).gather(1, target[:, None]).sum().backward()

    return run


def _cases():
    torch.manual_seed(0)
    mnist = nni.models.MNISTCNN().eval()
    yield "mnist_cnn, batch 64", mnist, torch.rand(64, 1, 28, 28)
    resnet = torchvision.models.resnet18(weights=None).eval()
    yield "resnet18, batch 4, 224x224", resnet, torch.rand(4, 3, 224, 224)


METHODS = [
    ("Saliency", lambda m: nni.Saliency(m).attribute, lambda m: captum_attr.Saliency(m).attribute, {"abs": False}),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} runs")
    header = f"{'method':<12} {'model':<28} {'ours s':>8} {'captum s':>9} {'ours/captum':>12} {'ours/fwd+bwd':>13}"
    print(header)
    print("-" * len(header))
    for label, model, x in _cases():
        target = torch.arange(len(x)) % 10
        baseline = _median_seconds(_forward_backward(model, x, target), args.repeats)
        for name, ours, theirs, kwargs in METHODS:
            ours_s = _median_seconds(lambda: ours(model)(x, target=target, **kwargs), args.repeats)
            captum_s = _median_seconds(
                lambda: theirs(model)(x.clone().requires_grad_(True), target=target, **kwargs), args.repeats
            )
            print(f"{name:<12} {label:<28} {ours_s:8.4f} {captum_s:9.4f} {ours_s / captum_s:12.2f} {ours_s / baseline:13.2f}")


if __name__ == "__main__":
    main()
