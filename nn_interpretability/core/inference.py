"""A copy of the model for the many forwards of a perturbation method: BatchNorm folded, weights channels-last.

Perturbation methods (Shapley sampling, Kernel SHAP, feature ablation, occlusion, LIME, RISE, Score-CAM,
Ablation-CAM) run the model without autograd on hundreds of perturbed copies of a batch. On the CPU two
things of an eval-mode CNN cost time there without changing what it computes: every BatchNorm is one more
pass over its activations, and oneDNN copies every convolution weight to the channels-last layout of the
input at every call. :func:`inference_copy` folds each BatchNorm into the convolution before it
(``torch.fx.experimental.optimization.fuse``: ``W' = W γ/σ``, ``b' = (b − μ) γ/σ + β``, Ioffe & Szegedy
2015, eq. 1, read as an affine map) and stores the weights channels-last, once per ``attribute`` call:
0.88 × the forward time of torchvision's resnet18 (24 × 112², one thread). A one-channel image batch is in
both layouts at once, and there the weights' layout decides the activations': the copy of the MNIST CNN,
which has no BatchNorm, runs every activation channels-last, 0.54 × its forward time (128 × 28², one
thread; its max-pools take a third of the time on NCHW). The outputs equal the model's to rounding; the
copy is checked against the model on its first batch and not used where they differ.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _has_hooks(model: nn.Module) -> bool:
    """Whether any module carries a hook, which a traced copy would not call where the model does."""
    return any(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks
        for module in model.modules()
    )


def worth_a_copy(model: nn.Module, channels_last: bool) -> bool:
    """Whether :func:`inference_copy` may help: an eval-mode model without hooks that has a BatchNorm to fold,
    or, for channels-last inputs, 4-D (convolution) weights to store in that layout."""
    modules = list(model.modules())
    return (
        not any(module.training for module in modules)
        and (
            any(isinstance(module, _BATCH_NORMS) for module in modules)
            or (channels_last and any(parameter.dim() == 4 for parameter in model.parameters()))
        )
        and not _has_hooks(model)
    )


def inference_copy(model: nn.Module, channels_last: bool) -> nn.Module | None:
    """The model with BatchNorm folded into the convolutions before it, or None where it cannot be traced.

    ``channels_last`` also stores the copy's 4-D weights in that layout (for channels-last inputs). The
    model itself is not touched: the copy owns its own parameters.
    """
    try:
        with warnings.catch_warnings():  # tracing warns of what it cannot see (e.g. a Python-level assert)
            warnings.simplefilter("ignore")
            folded = fuse(model, inplace=False)
    except Exception:  # noqa: BLE001 - symbolic tracing refuses data-dependent control flow and more; run the model
        return None
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    return folded


def same_outputs(expected: torch.Tensor, got: torch.Tensor) -> bool:
    """Whether the copy's output matches the model's to rounding (both tensors, as :func:`~.base.forward_output` checks)."""
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    if not expected.is_floating_point():
        return torch.equal(expected, got)
    scale = expected.abs().max().clamp(min=1.0) if expected.numel() else 1.0
    tolerance = 1e3 * torch.finfo(expected.dtype).eps * scale
    return bool(torch.equal(expected.isnan(), got.isnan()) and ((expected - got).nan_to_num().abs() <= tolerance).all())
