"""Score-CAM and Ablation-CAM against pytorch-grad-cam 1.5.7: seconds for one explanation, ours / theirs.

*ResNet-18*: torchvision's ResNet-18 (random weights; timing does not need trained ones), float32, a batch
of ``--batch`` images (default 2) of ``--size`` × ``--size`` (default 224) uniform noise, layer4 (512
channels: 512 masked or ablated forwards per image). *EfficientNet-Lite0* (``--efficientnet``): the zoo's
``efficientnet_lite0`` (ImageNet weights) on the first ``--photos`` bundled photos
(``nni.data.sample_images``, resized to ``--size``), Score-CAM at ``_head_act`` (1,280 channels, after ReLU6),
the predicted class.

Both sides run the same rows per forward, ``--rows`` (default 32; pytorch-grad-cam's ``batch_size``, our
``internal_batch_size``; ResNet-18 at 224 px took 121 ms a row at 32 rows against 164 ms at 8 here): the
model's forwards are over 98 % of both sides' time (a profile of ours: 1.3 s of 141 s outside them), so
what decides the ratio is how many rows each runs. Both run one masked input per (channel, image); ours
scores every channel constant over an image (a dead or saturated ReLU channel: its mask is 0, its input
black) with one forward per image, pytorch-grad-cam runs each.
Ablation-CAM: ours runs the layers before layer4 once per pass instead of once per copy. The model is
wrapped to count the time, calls and rows of its forwards, so the table splits each side's wall time into
forwards and the rest. ``--calls`` rounds (ours, then theirs, interleaved), after a warm-up on the first;
the best time of each side and the spread of the per-round ratios are printed. Before the table, each pair
of maps is checked to agree after pytorch-grad-cam's min-max scaling. Not part of the test suite:
``python benchmarks/cam_family.py [--size 112 --batch 1] [--efficientnet --photos 1]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch-grad-cam's progress bars, read when tqdm is imported

import numpy as np
import torch
import torchvision

import nn_interpretability as nni

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Timed  # noqa: E402  (the harness's forward counter)


def _scaled(maps: np.ndarray) -> np.ndarray:
    maps = maps - maps.min((1, 2), keepdims=True)
    return maps / (1e-7 + maps.max((1, 2), keepdims=True))


def workloads(args):
    """(title, model, layer name, inputs, targets, methods) of each workload."""
    found = []
    if not args.efficientnet or args.resnet:
        torch.manual_seed(0)
        model = torchvision.models.resnet18(weights=None).eval()
        x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
        targets = [1, 500, 7, 42][: args.batch]
        title = f"ResNet-18 random weights, {args.batch} x 3 x {args.size} x {args.size} noise, layer4"
        found.append((title, model, "layer4", x, targets, ("ScoreCAM", "AblationCAM")))
    if args.efficientnet:
        model = nni.load_model("efficientnet_lite0").eval()
        x = nni.data.preprocess(list(nni.data.sample_images().values())[: args.photos], size=args.size)
        with torch.no_grad():
            targets = model(x).argmax(1).tolist()
        title = f"EfficientNet-Lite0, {args.photos} photo(s) 3 x {args.size} x {args.size}, _head_act"
        found.append((title, model, "_head_act", x, targets, ("ScoreCAM",)))
    return found


def main() -> None:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--efficientnet", action="store_true")
    parser.add_argument("--resnet", action="store_true", help="with --efficientnet: ResNet-18 too")
    parser.add_argument("--photos", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    for title, network, layer, x, targets, methods in workloads(args):
        model = Timed(network).eval()
        with torch.no_grad():
            model(x)  # warm-up
        print(f"{title}, float32, {args.rows} rows per forward, {args.threads} threads, best of {args.calls}")
        for name in methods:
            ours_method = getattr(nni, name)(model, f"model.{layer}")
            theirs_cls = getattr(pytorch_grad_cam, name)

            def ours():
                return ours_method.attribute(x, target=targets, internal_batch_size=args.rows, show_progress=False)

            def theirs():
                kwargs = {"batch_size": args.rows} if name == "AblationCAM" else {}
                with theirs_cls(model=model, target_layers=[model.model.get_submodule(layer)], **kwargs) as cam:
                    cam.batch_size = args.rows
                    return cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in targets])

            runs = {"ours": [], "theirs": []}
            for _ in range(args.calls):
                for side, call in (("ours", ours), ("theirs", theirs)):
                    model.reset()
                    start = time.perf_counter()
                    maps = call()
                    runs[side].append((time.perf_counter() - start, model.seconds, model.calls, model.rows))
                    if side == "ours":
                        ours_maps = maps[:, 0].numpy()
                    else:
                        difference = float(np.abs(_scaled(ours_maps) - maps).max())
            ratios = [o[0] / t[0] for o, t in zip(runs["ours"], runs["theirs"])]
            best = {side: min(r) for side, r in runs.items()}
            print(
                f"  {name:12s} ours/theirs {best['ours'][0] / best['theirs'][0]:.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}),"
                f" max |scaled difference| {difference:.1e}"
            )
            for side, (total, forwards, calls, rows) in best.items():
                print(f"      {side:7s} {total:8.2f} s = forwards {forwards:8.2f} s ({calls} passes, {rows} rows) + rest {total - forwards:6.2f} s")


if __name__ == "__main__":
    main()
