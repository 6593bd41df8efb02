"""Time each method against its Captum / Zennit counterpart on the same model and batch, in one process.

Prints, per model and method, the median wall time of ours and of the reference library, the ratio
ours/reference and the ratio ours / (one plain forward + backward pass); then the peak memory of
Integrated Gradients and SmoothGrad with and without an explicit internal batch size, each measured in
a fresh subprocess (peak resident memory above the process's state before the call; on CUDA, peak
allocated memory). Not part of the test suite: timings depend on the machine. Run with
``make benchmarks`` or ``python benchmarks/run.py [--repeats N] [--only NAME ...] [--skip-memory]``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torchvision
from captum import attr as captum_attr
from captum._utils.models.linear_model import SkLearnRidge
from zennit import composites as zennit_composites
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.torchvision import ResNetCanonizer

import nn_interpretability as nni


@dataclass
class Case:
    """One model and batch the methods are timed on."""

    label: str
    build: Callable[[], torch.nn.Module]
    shape: tuple[int, ...]

    def make(self, device: torch.device) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = self.build().eval().to(device)
        x = torch.rand(self.shape, device=device)
        return model, x, torch.arange(self.shape[0], device=device) % 10


CASES = [
    Case("mnist_cnn, batch 64", nni.models.MNISTCNN, (64, 1, 28, 28)),
    Case("resnet18, batch 4, 224x224", lambda: torchvision.models.resnet18(weights=None), (4, 3, 224, 224)),
]


@dataclass
class Method:
    """Our call and the reference library's call of the same method with the same settings."""

    name: str
    ours: Callable  # (model, x, target) -> attribution
    reference: Callable  # (model, x, target) -> attribution
    reference_name: str = "captum"
    cases: tuple[str, ...] = field(default=tuple(case.label for case in CASES))


def _captum_input(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_(True)


def _smoothgrad_noise(x: torch.Tensor, samples: int) -> torch.Tensor:
    return torch.randn(samples, *x.shape, generator=torch.Generator().manual_seed(0)).to(x.device)


def _occlusion_settings(x: torch.Tensor) -> dict:
    """A window of about an eighth of the image side with half-window strides, on all channels."""
    side = max(4, x.shape[-1] // 8)
    return {"sliding_window_shapes": (x.shape[1], side, side), "strides": (x.shape[1], side // 2, side // 2)}


def _lime_masks(samples: int, segments: int) -> torch.Tensor:
    return torch.randint(0, 2, (samples, segments), generator=torch.Generator().manual_seed(0))


def _lime_ours(model, x, target, samples=200):
    lime = nni.Lime(model, segmentation="grid", cell_size=max(2, x.shape[-1] // 8), n_samples=samples)
    return lime.attribute(x[:1], target=target[:1])


def _lime_captum(model, x, target, samples=200):
    cell = max(2, x.shape[-1] // 8)
    segments = torch.as_tensor(nni.attribution.lime.grid_segments(x.shape[-2], x.shape[-1], cell))
    lime = captum_attr.Lime(model, interpretable_model=SkLearnRidge(alpha=1.0))
    return lime.attribute(
        x[:1], target=target[:1], baselines=0.0, feature_mask=segments.expand_as(x[:1]), n_samples=samples,
        perturbations_per_eval=samples,
    )


def _zennit_epsilon_plus_flat(model, x, target):
    """Zennit's EpsilonPlusFlat with the canonizer its docs prescribe (ResNetCanonizer for torchvision ResNets)."""
    is_resnet = isinstance(model, torchvision.models.ResNet)
    canonizers = [ResNetCanonizer()] if is_resnet else [SequentialMergeBatchNorm()]
    composite = zennit_composites.EpsilonPlusFlat(canonizers=canonizers)
    inputs = _captum_input(x)
    with composite.context(model) as modified:
        output = modified(inputs)
        start = torch.zeros_like(output)
        start[torch.arange(len(x)), target] = output[torch.arange(len(x)), target].detach()
        (relevance,) = torch.autograd.grad(output, inputs, start)
    return relevance


METHODS = [
    Method(
        "Saliency",
        lambda m, x, t: nni.Saliency(m).attribute(x, target=t),
        lambda m, x, t: captum_attr.Saliency(m).attribute(_captum_input(x), target=t, abs=False),
    ),
    Method(
        "InputXGradient",
        lambda m, x, t: nni.InputXGradient(m).attribute(x, target=t),
        lambda m, x, t: captum_attr.InputXGradient(m).attribute(_captum_input(x), target=t),
    ),
    Method(
        "GuidedBackprop",
        lambda m, x, t: nni.GuidedBackprop(m).attribute(x, target=t),
        lambda m, x, t: captum_attr.GuidedBackprop(m).attribute(_captum_input(x), target=t),
    ),
    Method(
        "Deconvolution",
        lambda m, x, t: nni.Deconvolution(m).attribute(x, target=t),
        lambda m, x, t: captum_attr.Deconvolution(m).attribute(_captum_input(x), target=t),
    ),
    Method(
        "IntegratedGradients (50 steps)",
        lambda m, x, t: nni.IntegratedGradients(m).attribute(x, target=t, n_steps=50),
        lambda m, x, t: captum_attr.IntegratedGradients(m).attribute(x, target=t, n_steps=50),
    ),
    Method(
        "Occlusion",
        lambda m, x, t: nni.Occlusion(m).attribute(x, target=t, **_occlusion_settings(x)),
        lambda m, x, t: captum_attr.Occlusion(m).attribute(x, target=t, perturbations_per_eval=64, **_occlusion_settings(x)),
    ),
    Method("Lime (1 image, 200 samples)", _lime_ours, _lime_captum),
    Method(
        "DeepLift (rescale)",
        lambda m, x, t: nni.DeepLift(m).attribute(x, target=t, baselines=0.0),
        lambda m, x, t: captum_attr.DeepLift(m).attribute(_captum_input(x), target=t, baselines=0.0),
    ),
    Method(
        "DeepLift (LinearRevealCancel)",
        lambda m, x, t: nni.DeepLift.from_mode(m, "LinearRevealCancel").attribute(x, target=t, baselines=0.0),
        lambda m, x, t: captum_attr.DeepLift(m).attribute(_captum_input(x), target=t, baselines=0.0),
        reference_name="captum (rescale: no RevealCancel there)",
    ),
    Method(
        "LRP EpsilonPlusFlat",
        lambda m, x, t: nni.LRP(m, composite=nni.attribution.lrp.EpsilonPlusFlat()).attribute(x, target=t),
        _zennit_epsilon_plus_flat,
        reference_name="zennit",
    ),
    Method(
        "SmoothGrad (Saliency, 10 samples)",
        lambda m, x, t: nni.SmoothGrad(nni.Saliency(m), nt_samples=10).attribute(x, target=t),
        lambda m, x, t: captum_attr.NoiseTunnel(captum_attr.Saliency(m)).attribute(
            _captum_input(x), target=t, nt_type="smoothgrad", nt_samples=10, stdevs=0.15, abs=False
        ),
    ),
]


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    # Progress bars of long runs would garble the table.
    with contextlib.redirect_stderr(io.StringIO()):
        fn()  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _forward_backward(model, x, target) -> None:
    inputs = x.clone().requires_grad_(True)
    model(inputs).gather(1, target[:, None]).sum().backward()


def time_methods(repeats: int, only: list[str] | None, device: torch.device) -> None:
    header = f"{'model':<28} {'method':<36} {'ours s':>8} {'ref s':>8} {'ours/ref':>9} {'ours/fwd+bwd':>13}  ref"
    print(header)
    print("-" * len(header))
    for case in CASES:
        model, x, target = case.make(device)
        fwd_bwd = _median_seconds(lambda: _forward_backward(model, x, target), repeats)
        print(f"{case.label:<28} {'one forward+backward':<36} {fwd_bwd:8.4f}")
        for method in METHODS:
            if case.label not in method.cases or (only and not any(o.lower() in method.name.lower() for o in only)):
                continue
            ours = _median_seconds(lambda: method.ours(model, x, target), repeats)
            try:
                reference = _median_seconds(lambda: method.reference(model, x, target), repeats)
            except Exception as error:  # a reference library that cannot run this model is a result too
                print(f"{case.label:<28} {method.name:<36} {ours:8.4f} {'-':>8} {'-':>9} {ours / fwd_bwd:13.2f}  "
                      f"{method.reference_name} failed: {type(error).__name__}: {str(error)[:60]}")
                continue
            print(
                f"{case.label:<28} {method.name:<36} {ours:8.4f} {reference:8.4f} {ours / reference:9.2f} "
                f"{ours / fwd_bwd:13.2f}  {method.reference_name}"
            )


MEMORY_RUNS = {
    "one forward+backward (for scale)": _forward_backward,
    "ours IG, internal_batch_size=None": lambda m, x, t: nni.IntegratedGradients(m).attribute(x, target=t),
    "ours IG, internal_batch_size=8": lambda m, x, t: nni.IntegratedGradients(m).attribute(
        x, target=t, internal_batch_size=8
    ),
    "captum IG, internal_batch_size=None": lambda m, x, t: captum_attr.IntegratedGradients(m).attribute(x, target=t),
    "captum IG, internal_batch_size=8": lambda m, x, t: captum_attr.IntegratedGradients(m).attribute(
        x, target=t, internal_batch_size=8
    ),
    "ours SmoothGrad(IG 10 steps), 10 samples": lambda m, x, t: nni.SmoothGrad(
        nni.IntegratedGradients(m), nt_samples=10
    ).attribute(x, target=t, n_steps=10),
}


def _resident_peak_mib() -> float:
    """This process's peak resident memory since the last :func:`_reset_resident_peak` (Linux: VmHWM)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**10
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_resident_peak() -> None:
    # Writing 5 to clear_refs resets the peak RSS to the current RSS (Linux >= 4.0). ru_maxrss cannot be
    # used: Linux carries it over from the parent process across fork and exec.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_memory_child(run_name: str, device_name: str, queue) -> None:
    device = torch.device(device_name)
    model, x, target = CASES[1].make(device)
    with contextlib.redirect_stderr(io.StringIO()):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            MEMORY_RUNS[run_name](model, x, target)
            queue.put((torch.cuda.max_memory_allocated() - before) / 2**20)
        else:
            _reset_resident_peak()
            before = _resident_peak_mib()
            MEMORY_RUNS[run_name](model, x, target)
            queue.put(_resident_peak_mib() - before)


def peak_memory(device: torch.device) -> None:
    print(f"\npeak memory above the process holding the model and batch, {CASES[1].label}, IG 50 steps:")
    context = multiprocessing.get_context("spawn")
    for run_name in MEMORY_RUNS:
        queue = context.Queue()
        child = context.Process(target=_peak_memory_child, args=(run_name, str(device), queue))
        child.start()
        child.join()
        print(f"  {run_name:<42} {queue.get():8.0f} MiB")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="substrings of method names to time")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = nni.resolve_device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, median of {args.repeats} runs")
    time_methods(args.repeats, args.only, device)
    if not args.skip_memory:
        peak_memory(device)


if __name__ == "__main__":
    main()
