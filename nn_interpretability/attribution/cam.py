"""Class activation maps: CAM, Grad-CAM and Guided Grad-CAM (report section 2.2.7)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Attribution, Run
from ..core.layers import find_layer
from ..core.registry import register_method
from .gradient import GuidedBackprop


def _capture(layer: nn.Module, store: dict) -> None:
    """Keep the layer's output for the method; the hook goes away with :func:`borrowed`."""

    def hook(module, args, output):
        if not isinstance(output, torch.Tensor) or output.dim() < 3:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"the layer must output feature maps (N, K, ...) for a class activation map, got {shape}")
        store["maps"] = output
        # The rest of the network gets a copy, so that an in-place operation after the layer (a
        # ReLU(inplace=True)) cannot change the activation whose gradient Grad-CAM needs.
        return output.clone()

    layer.register_forward_hook(hook)


def upsample(maps: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    """Resize maps ``(N, 1, h, w)`` (or 1-D ``(N, 1, l)``) to the input's spatial size."""
    if tuple(maps.shape[2:]) == tuple(size):
        return maps
    aligned = {} if mode in ("nearest", "area") else {"align_corners": False}
    return F.interpolate(maps, size=tuple(size), mode=mode, **aligned)


def _same_layer(model: nn.Module, layer: nn.Module, name: str) -> tuple[str, nn.Module]:
    """``layer`` inside ``model`` (a wrapper of the old model keeps it), else the layer of the same name."""
    for candidate, module in model.named_modules():
        if module is layer:
            return candidate, module
    return find_layer(model, name)


class _ClassActivationMap(Attribution):
    """Shared parts: the layer, upsampling to the input and the optional ReLU."""

    min_input_dim = 3

    def __init__(self, model: nn.Module, layer, relu_attributions: bool, interpolate_mode: str):
        super().__init__(model)
        self.layer_name, self.layer = find_layer(model, layer)
        self.relu_attributions = relu_attributions
        self.interpolate_mode = interpolate_mode

    def _rebind(self, model: nn.Module) -> None:
        self.layer_name, self.layer = _same_layer(model, self.layer, self.layer_name)

    def _finish(self, maps: torch.Tensor, inputs: torch.Tensor, upsample_to_input: bool) -> torch.Tensor:
        maps = maps.unsqueeze(1)
        if self.relu_attributions:
            maps = maps.clamp(min=0)
        return upsample(maps, inputs.shape[2:], self.interpolate_mode) if upsample_to_input else maps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, layer={self.layer_name!r})"


@register_method("cam")
class CAM(_ClassActivationMap):
    """Class activation mapping (Zhou et al. 2016; report eq. 24): ``M_c = Σ_k w_c^k f_k``.

    For networks whose last feature maps ``f_k`` go through global average pooling into one linear
    layer with class weights ``w_c^k`` (the zoo's ``GAPCNN``).

    Parameters
    ----------
    model : nn.Module
    feature_layer : nn.Module or str
        The layer whose output are the feature maps ``f_k`` (before the global average pooling).
    fc_layer : nn.Linear or str
        The linear layer after the pooling; its ``weight[c]`` are the ``w_c^k``.
    relu_attributions : bool
        Keep only the positive evidence (off by default: eq. 24 has no ReLU).
    interpolate_mode : str
        ``torch.nn.functional.interpolate`` mode used to upsample the map to the input size.
    """

    def __init__(self, model, feature_layer, fc_layer, relu_attributions: bool = False, interpolate_mode: str = "bilinear"):
        super().__init__(model, feature_layer, relu_attributions, interpolate_mode)
        self.fc_name, self.fc = find_layer(model, fc_layer)
        if not isinstance(self.fc, nn.Linear):
            raise ValueError(f"fc_layer must be the nn.Linear after global average pooling, got {type(self.fc).__name__}")

    needs_gradients = False

    def _rebind(self, model: nn.Module) -> None:
        super()._rebind(model)
        self.fc_name, self.fc = _same_layer(model, self.fc, self.fc_name)

    def _check_structure(self, features: torch.Tensor, store: dict, output: torch.Tensor) -> None:
        """Refuse a model that is not feature maps → global average pooling → ``fc`` → class scores (eq. 24)."""
        if "fc_in" not in store:
            raise ValueError(f"{self.fc_name!r} did not run in the forward pass; CAM needs the linear layer after pooling")
        pooled = features.flatten(2).mean(2)
        fc_in = store["fc_in"].flatten(1)
        tolerance = dict(rtol=1e-4, atol=1e-5 * max(1.0, float(pooled.abs().max())))
        if fc_in.shape != pooled.shape or not torch.allclose(fc_in, pooled, **tolerance):
            raise ValueError(
                f"the input of {self.fc_name!r} is not the global average of {self.layer_name!r}'s feature maps "
                "(global max pooling, or layers in between): CAM (eq. 24) is defined only for feature maps → global "
                "average pooling → one linear layer; use GradCAM for other models"
            )
        if store["fc_out"].shape != output.shape or not torch.allclose(store["fc_out"], output):
            raise ValueError(
                f"the output of {self.fc_name!r} is not the model's class scores (layers follow it, e.g. fc → ReLU → "
                "fc): CAM (eq. 24) needs the linear layer right after the pooling to produce the scores; point "
                "fc_layer at the last linear layer, or use GradCAM"
            )

    def _attribute(self, run: Run, upsample: bool = True) -> torch.Tensor:
        """Class activation maps ``(N, 1, H, W)`` (or ``(N, 1, h, w)`` with ``upsample=False``)."""
        store: dict = {}
        with torch.no_grad():
            _capture(self.layer, store)
            self.fc.register_forward_hook(lambda module, args, out: store.update(fc_in=args[0], fc_out=out))
            output = run.forward(run.inputs)
            indices = run.resolve(output)
        features = store["maps"]
        if features.shape[1] != self.fc.in_features:
            raise ValueError(
                f"layer {self.layer_name!r} has {features.shape[1]} channels but {self.fc_name!r} expects "
                f"{self.fc.in_features}: CAM needs the feature maps right before global average pooling"
            )
        self._check_structure(features, store, output)
        weights = self.fc.weight.detach()[indices]  # (N, K)
        maps = torch.einsum("nk,nk...->n...", weights, features)
        return self._finish(maps, run.inputs, upsample)


@register_method("grad-cam")
class GradCAM(_ClassActivationMap):
    """Grad-CAM (Selvaraju et al. 2017; report eq. 25): ``ReLU(Σ_k α_k^c A^k)``, ``α_k^c`` = mean of ``∂y_c/∂A^k``.

    Works for any layer with spatial outputs, of any model; CAM is the special case of the last layer
    of a GAP network (there ``α_k^c = w_c^k / (h w)``).

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
        The layer whose output ``A`` is explained, as a module or dotted name (e.g. ``"layer4"``).
    relu_attributions : bool
        Apply the ReLU of eq. 25 (default).
    interpolate_mode : str
        Upsampling mode (``"bilinear"``, ``"nearest"``, ...).
    """

    def __init__(self, model, layer, relu_attributions: bool = True, interpolate_mode: str = "bilinear"):
        super().__init__(model, layer, relu_attributions, interpolate_mode)

    def _attribute(self, run: Run, upsample: bool = True) -> torch.Tensor:
        """Grad-CAM maps ``(N, 1, H, W)`` (or at the layer's resolution with ``upsample=False``)."""
        store: dict = {}
        _capture(self.layer, store)
        output = run.forward(run.inputs.detach().requires_grad_(True))
        activation = store["maps"]
        (gradient,) = torch.autograd.grad(run.select(output).sum(), activation)
        alpha = gradient.flatten(2).mean(2)  # (N, K)
        maps = torch.einsum("nk,nk...->n...", alpha, activation.detach())
        return self._finish(maps, run.inputs, upsample)


@register_method("guided-grad-cam")
class GuidedGradCAM(Attribution):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backpropagation × the upsampled Grad-CAM map.

    Returns a map with the inputs' shape: the class-discriminative but coarse Grad-CAM gates the
    fine-grained guided gradient.
    """

    min_input_dim = 3

    def __init__(self, model, layer, interpolate_mode: str = "bilinear"):
        super().__init__(model)
        self.grad_cam = GradCAM(model, layer, interpolate_mode=interpolate_mode)
        self.guided = GuidedBackprop(model)

    def _attribute(self, run: Run) -> torch.Tensor:
        target, extra = run.selector, run.additional_forward_args
        guided = self.guided.attribute(run.inputs, target, additional_forward_args=extra)
        return guided * self.grad_cam.attribute(run.inputs, target, additional_forward_args=extra)

    def __repr__(self) -> str:
        return f"GuidedGradCAM({type(self.model).__name__}, layer={self.grad_cam.layer_name!r})"
