"""Time each method against its Captum / Zennit counterpart on the same model and batch, in one process.

Protocol (so that no method carries another's start-up cost):

1. Every case (model + batch) is warmed up before anything is timed: a few plain forward+backward
   passes, then one untimed call of each selected method, ours and the peer's, so that lazy
   initialisation (oneDNN primitives, autograd caches, imports inside the libraries) is excluded.
2. Batching knobs are tuned as a careful user would: Captum's IntegratedGradients
   ``internal_batch_size``, Occlusion / Lime ``perturbations_per_eval`` and NoiseTunnel
   ``nt_samples_batch_size`` take the fastest of a few values (each timed after the warm-up, best of
   1–3 calls); ours is timed both with its default (``None``: the package's own chunking) and with its
   best value from the same kind of list.
3. The final numbers interleave ours, the peer and a plain forward+backward baseline in every repeat,
   the order reversed on every other repeat (ABC CBA ...), and take medians over the repeats.
   ``gc.collect()`` runs before each timing, ``time.perf_counter`` measures it, and
   ``torch.set_num_threads`` is fixed for the whole run. Calls shorter than ~50 ms are repeated inside
   one timing and averaged.

The baseline "fwd+bwd" is one forward pass and ``torch.autograd.grad`` of the summed target scores
with respect to the input, on a copy of the model whose parameters do not require gradients (the
arithmetic a gradient method cannot avoid; ours freezes the parameters too), no hooks. For the
gradient family, ours / fwd+bwd is the package's bookkeeping overhead (target <= 1.03).

Afterwards the peak memory of Integrated Gradients and SmoothGrad with and without an explicit internal
batch size is measured, each in a fresh subprocess (peak resident memory above the process's state
before the call; on CUDA, peak allocated memory). Not part of the test suite: timings depend on the
machine. Run with ``make benchmarks`` or
``python benchmarks/run.py [--quick] [--models NAME ...] [--only NAME ...] [--repeats N] [--skip-memory]``;
on a machine shared with other jobs add ``--threads 1 --clock cpu`` (wall times with several threads
are then dominated by threads spinning while the others are descheduled). ``benchmarks/ig_chunks.py``
sweeps IntegratedGradients' ``internal_batch_size`` (speed and peak memory, fresh processes).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torchvision
from captum import attr as captum_attr
from captum._utils.models.linear_model import SkLearnRidge
from zennit import composites as zennit_composites
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.torchvision import ResNetCanonizer

import nn_interpretability as nni

# --------------------------------------------------------------------------------------------- cases


class Timed(torch.nn.Module):
    """The model, with the wall time, calls and rows of its forward passes counted."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.seconds, self.calls, self.rows = 0.0, 0, 0

    def forward(self, x):
        start = time.perf_counter()
        output = self.model(x)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.rows += x.shape[0]
        return output


@dataclass
class Case:
    """One model and batch the methods are timed on, with the sizes of the costlier methods."""

    key: str  # what --models selects
    label: str
    build: Callable[[], torch.nn.Module]
    shape: tuple[int, ...]
    extended: bool = False  # the whole method list; otherwise the gradient family (+ IG where ig_steps)
    ig_steps: int | None = None  # Integrated Gradients on this case (None: not timed)
    ig_images: int | None = None  # first images of the batch IG runs on (None: all)
    sg_samples: int | None = None  # SmoothGrad on this case (None: not timed)
    lime_samples: int = 200
    occlusion_images: int | None = None  # first images of the batch Occlusion runs on (None: all)
    occlusion_fraction: int = 8  # window side = image side / this

    def make(self, device: torch.device) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = self.build().eval().to(device)
        x = torch.rand(self.shape, device=device)
        return model, x, torch.arange(self.shape[0], device=device) % 10


def _tv(name: str) -> Callable[[], torch.nn.Module]:
    return lambda: getattr(torchvision.models, name)(weights=None)  # random weights: nothing is downloaded


FULL_CASES = [
    Case("mnist_cnn", "mnist_cnn, batch 64", nni.models.MNISTCNN, (64, 1, 28, 28), extended=True, ig_steps=50,
         sg_samples=10, lime_samples=200),
    Case("resnet18", "resnet18, batch 4, 224x224", _tv("resnet18"), (4, 3, 224, 224), extended=True, ig_steps=20,
         ig_images=2, lime_samples=100, occlusion_images=1, occlusion_fraction=4),
    Case("resnet50", "resnet50, batch 2, 128x128", _tv("resnet50"), (2, 3, 128, 128), ig_steps=32),
    Case("vgg16", "vgg16, batch 2, 128x128", _tv("vgg16"), (2, 3, 128, 128), ig_steps=20),
    Case("densenet121", "densenet121, batch 2, 128x128", _tv("densenet121"), (2, 3, 128, 128)),
]

# --quick: the same models and methods on small inputs, for a sanity run in well under two minutes.
QUICK_CASES = [
    Case("mnist_cnn", "mnist_cnn, batch 16 (quick)", nni.models.MNISTCNN, (16, 1, 28, 28), extended=True,
         ig_steps=16, sg_samples=4, lime_samples=50, occlusion_fraction=4),
    Case("resnet18", "resnet18, batch 2, 64x64 (quick)", _tv("resnet18"), (2, 3, 64, 64), extended=True,
         ig_steps=8, lime_samples=32, occlusion_images=1, occlusion_fraction=4),
    Case("resnet50", "resnet50, batch 1, 64x64 (quick)", _tv("resnet50"), (1, 3, 64, 64), ig_steps=8),
    Case("vgg16", "vgg16, batch 1, 64x64 (quick)", _tv("vgg16"), (1, 3, 64, 64), ig_steps=8),
    Case("densenet121", "densenet121, batch 1, 64x64 (quick)", _tv("densenet121"), (1, 3, 64, 64)),
]

# ------------------------------------------------------------------------------------------- methods


def _captum_input(x: torch.Tensor) -> torch.Tensor:
    # Captum sets requires_grad on the tensor it is given; a detached alias keeps ``x`` untouched
    # without the cost of a copy.
    return x.detach().requires_grad_(True)


def _our_default_chunk(elements_per_copy: int, rows_per_copy: int | None = None, device=None) -> int | None:
    """What our ``None`` batching resolves to (copies per pass), or None if the package no longer says.

    ``rows_per_copy`` and ``device`` reach the CPU row cap (IG and LIME: 1 row per path point or
    perturbed image, SmoothGrad and occlusion: N rows per copy of the batch), where the package has one.
    """
    try:
        from nn_interpretability.core.batching import chunk_size
    except ImportError:
        chunk_size = None
    if chunk_size is not None:
        try:
            return int(chunk_size(int(elements_per_copy), rows_per_copy=rows_per_copy, device=device))
        except TypeError:  # before the row cap
            return int(chunk_size(int(elements_per_copy)))
    try:  # before the batching helpers moved to core.batching
        from nn_interpretability.attribution.integrated_gradients import default_chunk_size

        return int(default_chunk_size(int(elements_per_copy)))
    except Exception:
        return None


def _our_smoothgrad(model, samples: int, batch: int | None):
    """Our SmoothGrad over Saliency; the batching option is ``internal_batch_size`` (new) or
    ``nt_samples_batch_size`` (before the rename)."""
    if batch is None:
        return nni.SmoothGrad(nni.Saliency(model), nt_samples=samples)
    try:
        return nni.SmoothGrad(nni.Saliency(model), nt_samples=samples, internal_batch_size=batch)
    except TypeError:
        return nni.SmoothGrad(nni.Saliency(model), nt_samples=samples, nt_samples_batch_size=batch)


def _occlusion_settings(case: Case, x: torch.Tensor) -> dict:
    """A square window of 1/occlusion_fraction of the image side with half-window strides, on all channels."""
    side = max(4, x.shape[-1] // case.occlusion_fraction)
    return {"sliding_window_shapes": (x.shape[1], side, side), "strides": (x.shape[1], side // 2, side // 2)}


def _occlusion_positions(case: Case, x: torch.Tensor) -> int:
    settings = _occlusion_settings(case, x)
    side, stride = settings["sliding_window_shapes"][-1], settings["strides"][-1]
    per_dim = [-(-(size - side) // stride) + 1 for size in x.shape[-2:]]
    return per_dim[0] * per_dim[1]


def _lime_ours(model, x, target, case, batch):
    lime = nni.Lime(model, segmentation="grid", cell_size=max(2, x.shape[-1] // 8), n_samples=case.lime_samples)
    if batch is None:
        return lime.attribute(x, target=target)
    try:
        return lime.attribute(x, target=target, perturbations_per_eval=batch)
    except TypeError:  # before the rename
        return lime.attribute(x, target=target, batch_size=batch)


def _lime_captum(model, x, target, case, batch):
    cell = max(2, x.shape[-1] // 8)
    segments = torch.as_tensor(nni.attribution.lime.grid_segments(x.shape[-2], x.shape[-1], cell), device=x.device)
    lime = captum_attr.Lime(model, interpretable_model=SkLearnRidge(alpha=1.0))
    return lime.attribute(
        x, target=target, baselines=0.0, feature_mask=segments.expand_as(x), n_samples=case.lime_samples,
        perturbations_per_eval=batch or 1,
    )


def _zennit_epsilon_plus_flat(model, x, target, case, batch):
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


def _unique(values, effective) -> list:
    """``values`` without those whose effective batching repeats an earlier one."""
    seen, kept = set(), []
    for value in values:
        key = effective(value)
        if key is not None and key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


@dataclass
class Method:
    """Our call and the peer library's call of the same method with the same settings.

    ``ours`` and ``peer`` take ``(model, x, target, case, batch)``; ``batch=None`` is the library's
    default batching. Methods with a batching knob list candidate values per case in ``ours_batches``
    / ``peer_batches`` and map each value to the batching it amounts to (``*_effective``, for
    de-duplication and for the table; ``None`` drops a value that does not apply).
    """

    name: str  # formatted with ``c`` = the case
    ours: Callable
    peer: Callable
    peer_name: str = "captum"
    family: str = "other"  # "gradient" ones enter the bookkeeping-overhead report
    applies: Callable[[Case], bool] = lambda case: True
    inputs: Callable = lambda case, x, t: (x, t)  # the part of the batch the method runs on
    knob_ours: str = ""
    knob_peer: str = ""
    ours_batches: Callable = lambda case, x: []
    peer_batches: Callable = lambda case, x: []
    ours_effective: Callable = lambda value, case, x: value
    peer_effective: Callable = lambda value, case, x: value
    peer_default: object = None  # peer batching used when not tuning


def _gradient(name: str, ours, peer) -> Method:
    return Method(name, ours, peer, family="gradient")


def _at_most_passes(values: list, total: int, passes: int = 100) -> list:
    """The candidate batch sizes that need at most ``passes`` passes over ``total`` copies (and None)."""
    return [v for v in values if v is None or -(-total // v) <= passes]


def _ig_inputs(case, x, t):
    k = case.ig_images or len(x)
    return x[:k], t[:k]


def _ig_ours_effective(value, case, x):
    total = case.ig_steps * len(x)
    if value is None:
        auto = _our_default_chunk(x[0].numel(), rows_per_copy=1, device=x.device)
        return "auto" if auto is None else min(auto, total)
    return min(value, total)


def _ig_peer_effective(value, case, x):
    n = len(x)
    if value is None:
        return case.ig_steps * n
    if value < n:
        return None  # Captum requires internal_batch_size >= number of examples
    return min(case.ig_steps, max(2, value // n)) * n  # Captum runs whole steps of all examples, >= 2 steps


def _occ_inputs(case, x, t):
    k = case.occlusion_images or len(x)
    return x[:k], t[:k]


def _occ_ours_effective(value, case, x):
    positions = _occlusion_positions(case, x)
    if value is None:
        auto = _our_default_chunk(x.numel(), rows_per_copy=len(x), device=x.device)
        return "auto" if auto is None else min(auto, positions)
    return min(value, positions)


def _lime_ours_effective(value, case, x):
    if value is None:
        auto = _our_default_chunk(x[0].numel(), rows_per_copy=1, device=x.device)
        return "auto" if auto is None else min(auto, case.lime_samples)
    return min(value, case.lime_samples)


def _sg_ours_effective(value, case, x):
    if value is None:
        auto = _our_default_chunk(x.numel(), rows_per_copy=len(x), device=x.device)
        return "auto" if auto is None else min(auto, case.sg_samples)
    return min(value, case.sg_samples)


METHODS = [
    _gradient(
        "Saliency",
        lambda m, x, t, c, b: nni.Saliency(m).attribute(x, target=t),
        lambda m, x, t, c, b: captum_attr.Saliency(m).attribute(_captum_input(x), target=t, abs=False),
    ),
    _gradient(
        "InputXGradient",
        lambda m, x, t, c, b: nni.InputXGradient(m).attribute(x, target=t),
        lambda m, x, t, c, b: captum_attr.InputXGradient(m).attribute(_captum_input(x), target=t),
    ),
    _gradient(
        "GuidedBackprop",
        lambda m, x, t, c, b: nni.GuidedBackprop(m).attribute(x, target=t),
        lambda m, x, t, c, b: captum_attr.GuidedBackprop(m).attribute(_captum_input(x), target=t),
    ),
    _gradient(
        "Deconvolution",
        lambda m, x, t, c, b: nni.Deconvolution(m).attribute(x, target=t),
        lambda m, x, t, c, b: captum_attr.Deconvolution(m).attribute(_captum_input(x), target=t),
    ),
    Method(
        "IntegratedGradients ({c.ig_steps} steps{ig_images})",
        lambda m, x, t, c, b: nni.IntegratedGradients(m).attribute(x, target=t, n_steps=c.ig_steps,
                                                                   internal_batch_size=b),
        lambda m, x, t, c, b: captum_attr.IntegratedGradients(m).attribute(x, target=t, n_steps=c.ig_steps,
                                                                           internal_batch_size=b),
        family="ig",
        applies=lambda case: case.ig_steps is not None,
        inputs=_ig_inputs,
        knob_ours="internal_batch_size",
        knob_peer="internal_batch_size",
        ours_batches=lambda c, x: _at_most_passes([None, 8, 16, 32, 64, 256, 1024, c.ig_steps * len(x)],
                                                  c.ig_steps * len(x)),
        peer_batches=lambda c, x: [None, 16, 32, 64, 256, 1024],
        ours_effective=_ig_ours_effective,
        peer_effective=_ig_peer_effective,
    ),
    Method(
        "Occlusion ({positions} windows{occ_images})",
        lambda m, x, t, c, b: nni.Occlusion(m).attribute(x, target=t, perturbations_per_eval=b,
                                                         **_occlusion_settings(c, x)),
        lambda m, x, t, c, b: captum_attr.Occlusion(m).attribute(x, target=t, perturbations_per_eval=b or 1,
                                                                 **_occlusion_settings(c, x)),
        applies=lambda case: case.extended,
        inputs=_occ_inputs,
        knob_ours="perturbations_per_eval",
        knob_peer="perturbations_per_eval",
        ours_batches=lambda c, x: [None, 16, 64, 256],
        peer_batches=lambda c, x: [16, 64, 256],
        ours_effective=_occ_ours_effective,
        peer_effective=lambda v, c, x: min(v or 1, _occlusion_positions(c, x)),
        peer_default=1,
    ),
    Method(
        "Lime (1 image, {c.lime_samples} samples)",
        _lime_ours,
        _lime_captum,
        applies=lambda case: case.extended,
        inputs=lambda case, x, t: (x[:1], t[:1]),
        knob_ours="perturbations_per_eval",
        knob_peer="perturbations_per_eval",
        ours_batches=lambda c, x: [None, 16, 64, c.lime_samples],
        peer_batches=lambda c, x: [16, 64, c.lime_samples],
        ours_effective=_lime_ours_effective,
        peer_effective=lambda v, c, x: min(v or 1, c.lime_samples),
        peer_default=1,
    ),
    Method(
        "DeepLift (rescale)",
        lambda m, x, t, c, b: nni.DeepLift(m).attribute(x, target=t, baselines=0.0),
        lambda m, x, t, c, b: captum_attr.DeepLift(m).attribute(_captum_input(x), target=t, baselines=0.0),
        applies=lambda case: case.extended,
    ),
    Method(
        "DeepLift (LinearRevealCancel)",
        lambda m, x, t, c, b: nni.DeepLift.from_mode(m, "LinearRevealCancel").attribute(x, target=t, baselines=0.0),
        lambda m, x, t, c, b: captum_attr.DeepLift(m).attribute(_captum_input(x), target=t, baselines=0.0),
        peer_name="captum (rescale: no RevealCancel there)",
        applies=lambda case: case.extended,
    ),
    Method(
        "LRP EpsilonPlusFlat",
        lambda m, x, t, c, b: nni.LRP(m, composite=nni.attribution.lrp.EpsilonPlusFlat()).attribute(x, target=t),
        _zennit_epsilon_plus_flat,
        peer_name="zennit",
        applies=lambda case: case.extended,
    ),
    Method(
        "SmoothGrad (Saliency, {c.sg_samples} samples)",
        lambda m, x, t, c, b: _our_smoothgrad(m, c.sg_samples, b).attribute(x, target=t),
        lambda m, x, t, c, b: captum_attr.NoiseTunnel(captum_attr.Saliency(m)).attribute(
            _captum_input(x), target=t, nt_type="smoothgrad", nt_samples=c.sg_samples, stdevs=0.15, abs=False,
            nt_samples_batch_size=b,
        ),
        family="smoothgrad",
        applies=lambda case: case.sg_samples is not None,
        knob_ours="internal_batch_size",
        knob_peer="nt_samples_batch_size",
        ours_batches=lambda c, x: [None, 1, 2, 5, c.sg_samples],
        peer_batches=lambda c, x: [None, 1, 2, 5],
        ours_effective=_sg_ours_effective,
        peer_effective=lambda v, c, x: c.sg_samples if v is None else min(v, c.sg_samples),
    ),
]


def _method_name(method: Method, case: Case, x: torch.Tensor) -> str:
    ig_images = f", {case.ig_images} images" if case.ig_images else ""
    occ_images = f", {case.occlusion_images} image" if case.occlusion_images else ""
    positions = _occlusion_positions(case, x) if "{positions}" in method.name else 0
    return method.name.format(c=case, ig_images=ig_images, occ_images=occ_images, positions=positions)


# -------------------------------------------------------------------------------------------- timing


def input_gradient(model, x, target) -> torch.Tensor:
    """The baseline: one forward and the input gradient of the summed target scores, no hooks."""
    inputs = x.detach().requires_grad_(True)
    scores = model(inputs).gather(1, target[:, None]).sum()
    (gradient,) = torch.autograd.grad(scores, inputs)
    return gradient


def _forward_backward(model, x, target) -> None:
    """``.backward()`` on the model as given: also computes (and accumulates) every parameter's gradient."""
    inputs = x.clone().requires_grad_(True)
    model(inputs).gather(1, target[:, None]).sum().backward()


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    frozen = copy.deepcopy(model)
    for param in frozen.parameters():
        param.requires_grad_(False)
    return frozen


@contextlib.contextmanager
def _quiet():
    """Progress bars and library warnings would garble the table (and cost time the first time)."""
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


#: The clock of every timing: wall time (``time.perf_counter``, the default) or, with ``--clock cpu``,
#: this process's CPU time (``time.process_time``), which a shared machine's other jobs barely move
#: when torch runs one thread (with more, it counts the threads' spin-waiting too).
CLOCK = time.perf_counter


def _time(fn: Callable[[], object], number: int = 1) -> float:
    """Seconds per call of ``fn``, over ``number`` back-to-back calls, after a ``gc.collect()``."""
    gc.collect()
    with _quiet():
        start = CLOCK()
        for _ in range(number):
            fn()
        return (CLOCK() - start) / number


def _number_for(seconds: float, floor: float = 0.05) -> int:
    """Calls per timing so that one timing lasts at least ``floor`` seconds (at most 50 calls)."""
    return max(1, min(50, math.ceil(floor / max(seconds, 1e-6))))


def interleaved(entries: dict[str, Callable[[], object]], estimate: dict[str, float], repeats: int) -> dict:
    """Median seconds per call of each entry, timed in turn in each repeat (order reversed every other one)."""
    numbers = {name: _number_for(estimate[name]) for name in entries}
    samples = {name: [] for name in entries}
    order = list(entries)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            samples[name].append(_time(entries[name], numbers[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


#: Timed calls per candidate when tuning a batching knob (best of them), for calls under a second
#: (one call above), and the most candidates tried per knob. ``--quick`` sets 1 and 2.
TUNE_ROUNDS = 3
TUNE_CANDIDATES = 8


def tune(candidates: list, call: Callable, estimate: float) -> tuple[object, dict]:
    """The fastest candidate batching (best of 1 call if a call takes over a second, else of
    :data:`TUNE_ROUNDS`), the candidates interleaved."""
    rounds = 1 if estimate > 1.0 else TUNE_ROUNDS
    number = _number_for(estimate)
    times = {value: [] for value in candidates}
    for _ in range(rounds):
        for value in candidates:
            times[value].append(_time(lambda: call(value), number))
    best = {value: min(values) for value, values in times.items()}
    return min(best, key=best.get), best


def _fmt_batch(value) -> str:
    return "None" if value is None else str(value)


# -------------------------------------------------------------------------------------------- report


@dataclass
class Row:
    case: str
    model: str
    method: str
    family: str
    ours: float | None
    peer: float | None
    baseline: float
    repeats: int
    batching: str = ""
    peer_name: str = ""
    note: str = ""
    variant: str = "default"  # "default" or "tuned" for ours

    @property
    def ours_over_peer(self) -> float | None:
        return None if self.ours is None or self.peer is None else self.ours / self.peer

    @property
    def ours_over_baseline(self) -> float | None:
        return None if self.ours is None else self.ours / self.baseline


HEADER = f"{'method':<44} {'ours s':>9} {'peer s':>9} {'ours/peer':>9} {'ours/fwd+bwd':>12} {'n':>3}  batching used"


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def print_row(row: Row) -> None:
    name = row.method if row.variant == "default" else f"  {row.method} [ours tuned]"
    print(
        f"{name[:44]:<44} {_fmt(row.ours, 9, 4)} {_fmt(row.peer, 9, 4)} {_fmt(row.ours_over_peer, 9, 2)} "
        f"{_fmt(row.ours_over_baseline, 12, 2)} {row.repeats:>3}  {row.batching}"
        + (f"  [{row.note}]" if row.note else ""),
        flush=True,
    )


def _try_call(fn: Callable[[], object]) -> str | None:
    """Run ``fn`` once; the error message if it raised."""
    try:
        with _quiet():
            fn()
        return None
    except Exception as error:  # a library that cannot run this model is a result too
        return f"{type(error).__name__}: {str(error).splitlines()[0][:70] if str(error) else ''}"


def time_case(case: Case, methods: list[Method], repeats: int, budget: float, device: torch.device) -> list[Row]:
    model, x, target = case.make(device)
    frozen = _frozen_copy(model)
    print(f"\n== {case.label}  (peer = Captum unless marked; times are medians, s per call)", flush=True)

    # 1. Warm-up: plain passes, then one untimed call of every method, ours and the peer's.
    started = time.perf_counter()
    with _quiet():
        for _ in range(3):
            input_gradient(frozen, x, target)
            input_gradient(model, x, target)
    selected = []
    for method in methods:
        xm, tm = method.inputs(case, x, target)
        estimate = {}
        errors = {}
        for side, fn in (("ours", method.ours), ("peer", method.peer)):
            start = time.perf_counter()
            # The peer warms up with its first candidate batching where it is tuned (Captum's default
            # of one perturbation per pass is what a careful user avoids).
            peer_first = (method.peer_batches(case, xm) or [method.peer_default])[0]
            default = None if side == "ours" else (peer_first if method.knob_peer else method.peer_default)
            errors[side] = _try_call(lambda: fn(model, xm, tm, case, default))
            estimate[side] = time.perf_counter() - start
        start = time.perf_counter()
        with _quiet():
            input_gradient(frozen, xm, tm)
        estimate["base"] = time.perf_counter() - start
        selected.append((method, xm, tm, estimate, errors))
    print(f"   (warm-up: {time.perf_counter() - started:.1f} s)", flush=True)

    # The baseline row: the arithmetic of a gradient method, and what a user's model costs unfrozen.
    base_variants = interleaved(
        {
            "frozen": lambda: input_gradient(frozen, x, target),
            "grad": lambda: input_gradient(model, x, target),
            "backward": lambda: _forward_backward(model, x, target),
        },
        {"frozen": selected[0][3]["base"] if selected else 0.1, "grad": 0.1, "backward": 0.1},
        max(repeats, 3),
    )
    model.zero_grad(set_to_none=True)
    print(HEADER)
    print("-" * len(HEADER))
    print(
        f"{'fwd+bwd (input grad, frozen params)':<44} {base_variants['frozen']:9.4f}   "
        f"[same, params require grad: {base_variants['grad']:.4f}; .backward() incl. weight grads: "
        f"{base_variants['backward']:.4f}]",
        flush=True,
    )

    rows = []
    for method, xm, tm, estimate, errors in selected:
        name = _method_name(method, case, x)
        if errors["ours"]:
            print(f"{name[:44]:<44} ours failed: {errors['ours']}", flush=True)
            continue
        peer_ok = errors["peer"] is None
        ours_call = lambda b, method=method, xm=xm, tm=tm: method.ours(model, xm, tm, case, b)  # noqa: E731
        peer_call = lambda b, method=method, xm=xm, tm=tm: method.peer(model, xm, tm, case, b)  # noqa: E731

        # 2. Tune the batching of the peer and of ours.
        tuning_notes = []
        ours_best, peer_value = None, method.peer_default
        ours_candidates = _unique(method.ours_batches(case, xm), lambda v: method.ours_effective(v, case, xm))
        ours_candidates = ours_candidates[:TUNE_CANDIDATES]
        if len(ours_candidates) > 1:
            ours_best, times = tune(ours_candidates, ours_call, estimate["ours"])
            tuning_notes.append(
                f"ours {method.knob_ours}: "
                + ", ".join(f"{_fmt_batch(v)}{_eff(method.ours_effective(v, case, xm), v)} {t:.3f}s"
                            for v, t in times.items())
            )
        peer_candidates = _unique(method.peer_batches(case, xm), lambda v: method.peer_effective(v, case, xm))
        peer_candidates = peer_candidates[:TUNE_CANDIDATES]
        if peer_ok and len(peer_candidates) > 1:
            peer_value, times = tune(peer_candidates, peer_call, estimate["peer"])
            tuning_notes.append(
                f"{method.peer_name} {method.knob_peer}: "
                + ", ".join(f"{_fmt_batch(v)} {t:.3f}s" for v, t in times.items())
            )
        elif peer_candidates:
            peer_value = peer_candidates[0]

        # 3. Interleaved timing: ours (default, and tuned if it differs), the peer, the baseline.
        entries = {"ours": lambda: ours_call(None)}
        est = {"ours": estimate["ours"]}
        tuned_differs = ours_best is not None and method.ours_effective(ours_best, case, xm) != method.ours_effective(
            None, case, xm
        )
        if tuned_differs:
            entries["ours tuned"] = lambda b=ours_best: ours_call(b)
            est["ours tuned"] = estimate["ours"]
        if peer_ok:
            entries["peer"] = lambda: peer_call(peer_value)
            est["peer"] = estimate["peer"]
        entries["base"] = lambda: input_gradient(frozen, xm, tm)
        est["base"] = estimate["base"]
        round_seconds = sum(max(v, 0.05) for v in est.values())
        n = max(min(3, repeats), min(repeats, int(budget // max(round_seconds, 1e-3))))
        medians = interleaved(entries, est, n)

        peer_batching = ""
        if method.knob_peer:
            peer_batching = f"{method.peer_name.split()[0]} {method.knob_peer}={_fmt_batch(peer_value)}"
        ours_batching = ""
        if method.knob_ours:
            ours_batching = f"ours default{_eff(method.ours_effective(None, case, xm), None)}"
        note = "" if peer_ok else f"{method.peer_name} failed: {errors['peer']}"
        if peer_ok and method.peer_name != "captum":
            note = method.peer_name
        row = Row(case.label, case.key, name, method.family, medians["ours"], medians.get("peer"), medians["base"],
                  n, "; ".join(filter(None, [ours_batching, peer_batching])), method.peer_name, note)
        rows.append(row)
        print_row(row)
        if ours_best is not None:
            tuned_time = medians["ours tuned"] if tuned_differs else medians["ours"]
            tuned = Row(case.label, case.key, name, method.family, tuned_time, medians.get("peer"), medians["base"],
                        n, f"ours {method.knob_ours}={_fmt_batch(ours_best)}"
                        + ("" if tuned_differs else " (= default)"), method.peer_name, variant="tuned")
            rows.append(tuned)
            print_row(tuned)
        for line in tuning_notes:
            print(f"      tuning {line}", flush=True)
    print(f"   (section: {time.perf_counter() - started:.1f} s)", flush=True)
    return rows


def _eff(effective, value) -> str:
    """`` (=21/pass)`` when a value resolves to another batching than its face value."""
    if value is not None and effective == value:
        return ""
    return f" (={effective}/pass)"


def overhead_report(rows: list[Row], target: float = 1.03) -> None:
    grads = [r for r in rows if r.family == "gradient" and r.variant == "default" and r.ours is not None]
    if not grads:
        return
    models = list(dict.fromkeys(r.model for r in grads))
    methods = list(dict.fromkeys(r.method for r in grads))
    table = {(r.method, r.model): r for r in grads}
    print(f"\nbookkeeping overhead: ours / (one forward + torch.autograd.grad of the input, no hooks); "
          f"target <= {target:.2f} ('*' above it); in brackets ours / captum")
    print(f"{'method':<16}" + "".join(f"{m:>20}" for m in models))
    for method in methods:
        cells = []
        for m in models:
            r = table.get((method, m))
            if r is None:
                cells.append(f"{'-':>20}")
                continue
            mark = "*" if r.ours_over_baseline > target else " "
            peer = f"({r.ours_over_peer:.2f})" if r.ours_over_peer is not None else "(-)"
            cells.append(f"{r.ours_over_baseline:>12.3f}{mark}{peer:>7}")
        print(f"{method:<16}" + "".join(cells))


def time_methods(cases: list[Case], repeats: int, only: list[str] | None, budget: float,
                 device: torch.device) -> list[Row]:
    rows = []
    for case in cases:
        methods = [
            m for m in METHODS
            if m.applies(case) and (not only or any(o.lower() in m.name.lower() for o in only))
        ]
        if methods:
            rows += time_case(case, methods, repeats, budget, device)
    overhead_report(rows)
    return rows


# -------------------------------------------------------------------------------------- peak memory

MEMORY_RUNS = {
    "one forward+backward (for scale)": input_gradient,
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


def resident_peak_mib() -> float:
    """This process's peak resident memory since the last :func:`reset_resident_peak` (Linux: VmHWM)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**10
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_resident_peak() -> None:
    # Writing 5 to clear_refs resets the peak RSS to the current RSS (Linux >= 4.0). ru_maxrss cannot be
    # used: Linux carries it over from the parent process across fork and exec.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_memory_child(case_key: str, quick: bool, run_name: str, device_name: str, queue) -> None:
    device = torch.device(device_name)
    case = next(c for c in (QUICK_CASES if quick else FULL_CASES) if c.key == case_key)
    model, x, target = case.make(device)
    with _quiet():
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            MEMORY_RUNS[run_name](model, x, target)
            queue.put((torch.cuda.max_memory_allocated() - before) / 2**20)
        else:
            reset_resident_peak()
            before = resident_peak_mib()
            MEMORY_RUNS[run_name](model, x, target)
            queue.put(resident_peak_mib() - before)


def peak_memory(case: Case, quick: bool, device: torch.device) -> None:
    print(f"\npeak memory above the process holding the model and batch, {case.label}, IG 50 steps:")
    context = multiprocessing.get_context("spawn")
    for run_name in MEMORY_RUNS:
        queue = context.Queue()
        child = context.Process(target=_peak_memory_child, args=(case.key, quick, run_name, str(device), queue))
        child.start()
        child.join()
        print(f"  {run_name:<42} {queue.get():8.0f} MiB", flush=True)


# ---------------------------------------------------------------------------------------------- main


def _load_average() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, 2 repeats: a sanity run (< 2 min)")
    parser.add_argument("--models", nargs="*", help=f"cases to run, of {[c.key for c in FULL_CASES]}")
    parser.add_argument("--only", nargs="*", help="substrings of method names to time")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per method (default 5; quick 2)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds per method's interleaved timing: slow methods get fewer repeats, >= 3 "
                             "(default 25; quick 3, with 2 repeats at least)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the whole run")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: time.perf_counter (default); cpu: time.process_time, steadier on a busy "
                             "machine with --threads 1")
    parser.add_argument("--skip-memory", action="store_true",
                        help="skip the peak-memory subprocesses (always skipped with --quick)")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = nni.resolve_device(args.device)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    cases = QUICK_CASES if args.quick else FULL_CASES
    global CLOCK, TUNE_ROUNDS, TUNE_CANDIDATES
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.quick:
        TUNE_ROUNDS, TUNE_CANDIDATES = 1, 2
    if args.models:
        unknown = set(args.models) - {c.key for c in cases}
        if unknown:
            parser.error(f"unknown models {sorted(unknown)}; choose from {[c.key for c in cases]}")
        cases = [c for c in cases if c.key in args.models]
    repeats = args.repeats or (2 if args.quick else 5)
    budget = args.budget if args.budget is not None else (3.0 if args.quick else 25.0)
    print(
        f"torch {torch.__version__}, captum {getattr(sys.modules.get('captum'), '__version__', '?')}, device "
        f"{device}, {torch.get_num_threads()} threads, {args.clock} clock, up to {repeats} interleaved repeats "
        f"per method; load average {_load_average()}"
    )
    load, cores = _load_average(), os.cpu_count() or 1
    if load != "?" and float(load) > cores and (torch.get_num_threads() > 1 or args.clock == "wall"):
        print(f"warning: load average {load} on {cores} cores: other jobs share the CPUs, so wall times with "
              f"{torch.get_num_threads()} threads are unreliable (threads spin while the others are "
              "descheduled); --threads 1 --clock cpu gives steadier ratios")
    started = time.perf_counter()
    rows = time_methods(cases, repeats, args.only, budget, device)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) | {"ours_over_peer": r.ours_over_peer, "ours_over_baseline": r.ours_over_baseline}
                       for r in rows], f, indent=1)
    print(f"\ntiming: {time.perf_counter() - started:.0f} s in all")
    print(f"load average at the end: {_load_average()}")
    if not args.skip_memory and not args.quick:
        memory_case = next((c for c in cases if c.key == "resnet18"), None)
        if memory_case is not None:
            peak_memory(memory_case, args.quick, device)


if __name__ == "__main__":
    main()
