"""Score-CAM and Ablation-CAM against pytorch-grad-cam: seconds for one explanation, ours / theirs.

torchvision's ResNet-18 (random weights; timing does not need trained ones), float32, a batch of 2
images of 224 x 224, layer4 (512 channels: 1,024 masked or ablated forwards), two threads, one run
each after a warm-up. pytorch-grad-cam's ``batch_size`` is set to 32 (``ANCHOR_BATCH``): ResNet-18 forwards
here take 121 ms a row at 32 rows against 164 ms at 8, and its default is 16 (Score-CAM); ours at ``OUR_BATCH`` copies per forward for
Score-CAM and at its default for Ablation-CAM. Before the table, each pair of maps is checked to
agree after pytorch-grad-cam's min-max scaling. Not part of the test suite. Run with
``python benchmarks/cam_family.py``.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torchvision

import nn_interpretability as nni

THREADS = 2
BATCH, SIZE, LAYER = 2, 224, "layer4"
#: pytorch-grad-cam's fastest batch_size here (copies of one image per forward).
ANCHOR_BATCH = {"ScoreCAM": 32, "AblationCAM": 32}
#: Our copies per forward for Score-CAM (over both images); Ablation-CAM keeps its default.
OUR_BATCH = {"ScoreCAM": 64, "AblationCAM": None}


def _seconds(call):
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _scaled(maps: np.ndarray) -> np.ndarray:
    maps = maps - maps.min((1, 2), keepdims=True)
    return maps / (1e-7 + maps.max((1, 2), keepdims=True))


def main() -> None:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    targets = [1, 500]
    with torch.no_grad():
        model(x)  # warm-up
    rows = []
    for name in ("ScoreCAM", "AblationCAM"):
        ours_method = getattr(nni, name)(model, LAYER)
        ours_time, ours = _seconds(
            lambda: ours_method.attribute(x, target=targets, internal_batch_size=OUR_BATCH[name], show_progress=False)
        )
        layer = model.get_submodule(LAYER)
        theirs_cls = getattr(pytorch_grad_cam, name)
        kwargs = {"batch_size": ANCHOR_BATCH[name]} if name == "AblationCAM" else {}
        with theirs_cls(model=model, target_layers=[layer], **kwargs) as cam:
            cam.batch_size = ANCHOR_BATCH[name]
            theirs_time, theirs = _seconds(lambda: cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in targets]))
        difference = float(np.abs(_scaled(ours[:, 0].numpy()) - theirs).max())
        rows.append((name, ours_time, theirs_time, difference))
    print(f"ResNet-18 random weights, {BATCH} x 3 x {SIZE} x {SIZE}, {LAYER}, float32, {THREADS} threads, one run")
    print(f"{'method':<12} {'ours (s)':>9} {'theirs (s)':>11} {'ours/theirs':>12} {'max |scaled diff|':>18}")
    for name, ours_time, theirs_time, difference in rows:
        print(f"{name:<12} {ours_time:>9.2f} {theirs_time:>11.2f} {ours_time / theirs_time:>12.3f} {difference:>18.2e}")


if __name__ == "__main__":
    main()
