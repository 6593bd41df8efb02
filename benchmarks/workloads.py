"""Time the package's whole-dataset workloads that have no counterpart in Captum or Zennit.

- deletion + insertion curves for 1,000 MNIST test images and every attribution method (mnist_cnn);
- method agreement (seed 000) over the whole validation split of the binary 0-vs-1 CNN;
- MC dropout x LRP, Algorithm 1: 1,000 passes with a map for each of the 10 classes of one image,
  batched, against the same work as a Python loop of one pass at a time (timed on a sample of passes
  and scaled up).

Each figure is the wall time of one run after a warm-up on a small input. Not part of the test suite.
Run with ``python benchmarks/workloads.py [--images N] [--passes N] [--threads N]``.
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import EpsilonPlusFlat, ReportComposite
from nn_interpretability.evaluation import compute_attributions, deletion_insertion, method_agreement
from nn_interpretability.uncertainty import mc_dropout_class_relevance


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _methods(model) -> dict:
    return {
        "saliency": nni.Saliency(model),
        "gradient x input": nni.InputXGradient(model),
        "guided backprop": nni.GuidedBackprop(model),
        "integrated gradients (32 steps)": nni.IntegratedGradients(model),
        "DeepLIFT": nni.DeepLift(model),
        "LRP": nni.LRP(model, composite=EpsilonPlusFlat()),
        "SmoothGrad (16)": nni.SmoothGrad(nni.Saliency(model), nt_samples=16),
        "Grad-CAM": nni.GradCAM(model, "features.5"),
    }


def faithfulness(images: int) -> None:
    model = nni.load_model("mnist_cnn")
    x, y = nni.data.load_mnist("test", source="embedded")
    x, y = x[:images], y[:images]
    maps = compute_attributions(_methods(model), x, target=y, attribute_kwargs={"integrated gradients (32 steps)": {"n_steps": 32}})
    maps["random"] = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    deletion_insertion(model, x[:8], maps["random"][:8], target=y[:8])  # warm-up
    total = 0.0
    for name, relevance in maps.items():
        seconds = _seconds(lambda: [deletion_insertion(model, x, relevance, target=y, mode=m) for m in ("deletion", "insertion")])
        total += seconds
        print(f"  {name:<34} deletion + insertion, {images} images: {seconds:6.1f} s")
    print(f"faithfulness: {len(maps)} maps x {images} images, deletion + insertion: {total:.1f} s in all")


def agreement() -> None:
    model = nni.load_model("mnist_binary_01")
    x, y = nni.models.mnist_split("mnist_binary_01", "test")
    methods = {
        "IG": nni.IntegratedGradients(model),
        "LRP": nni.LRP(model, rule=nni.attribution.lrp.Epsilon(1e-9)),
        "DeepLIFT": nni.DeepLift(model),
        "GBP": nni.GuidedBackprop(model),
    }
    seconds = _seconds(lambda: method_agreement(compute_attributions(methods, x, target=y)))
    print(f"agreement: four methods over the {len(y)} validation images and the Spearman matrix: {seconds:.1f} s")


def algorithm_1(passes: int, loop_sample: int) -> None:
    model = nni.load_model("mnist_dropout_cnn")
    x, y = nni.data.load_mnist("test", source="embedded")
    image = nni.data.class_representatives(x, y)[[1]]
    lrp = nni.LRP(model, composite=ReportComposite(low=0.0, high=1.0))
    mc_dropout_class_relevance(lrp, image, passes=4)  # warm-up
    batched = _seconds(lambda: mc_dropout_class_relevance(lrp, image, passes=passes))
    looped = _seconds(lambda: [mc_dropout_class_relevance(lrp, image, passes=1, seed=k) for k in range(loop_sample)])
    per_pass_loop = looped / loop_sample * passes
    print(
        f"Algorithm 1: {passes} passes x 10 classes, one image: batched {batched:.1f} s; one pass per call "
        f"{per_pass_loop:.1f} s (from {loop_sample} passes); speed-up {per_pass_loop / batched:.1f}x"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=1000)
    parser.add_argument("--loop-sample", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before timing")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    nni.set_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    faithfulness(args.images)
    agreement()
    algorithm_1(args.passes, args.loop_sample)


if __name__ == "__main__":
    main()
