"""Class activation maps: CAM, Grad-CAM and Guided Grad-CAM (report section 2.2.7).

The explained layer may output channels-first feature maps ``(N, K, h, w)`` (or ``(N, K, l)``), the
token sequence of a vision transformer ``(N, R + h w, D)`` or channels-last maps ``(N, h, w, D)`` (Swin);
:func:`feature_maps` says how each is recognised, and ``reshape=`` overrides it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Attribution, Run
from ..core.layers import find_layer
from ..core.registry import register_method
from .gradient import GuidedBackprop

#: The most extra tokens (class, distillation and register tokens) looked for before a vision
#: transformer's patch tokens; beyond it, or for another arrangement, pass ``reshape=``.
MAX_EXTRA_TOKENS = 16

_RESHAPE_HINT = (
    "pass reshape=, a callable activation -> maps (N, K, h, w), e.g. reshape=lambda a: a[:, 1:].unflatten(1, (h, w))"
    ".movedim(-1, 1) for a class token followed by an h x w grid of patch tokens"
)


def _capture(layer: nn.Module, store: dict, check: bool = True) -> None:
    """Keep the layer's output for the method; the hook goes away with :func:`borrowed`."""

    def hook(module, args, output):
        if not isinstance(output, torch.Tensor) or (check and output.dim() < 3):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                "the layer must output feature maps (N, K, h, w), tokens (N, T, D) or channels-last maps (N, h, w, D) "
                f"for a class activation map, got {shape}; for another tensor {_RESHAPE_HINT}"
            )
        store["maps"] = output
        # The rest of the network gets a copy, so that an in-place operation after the layer (a
        # ReLU(inplace=True)) cannot change the activation whose gradient Grad-CAM needs.
        return output.clone()

    layer.register_forward_hook(hook)


def _scale_factors(n: int, size: int, rounding: str) -> set[int]:
    """The integers ``p >= 1`` for which ``n`` is ``size / p``: ``"exact"``, rounded ``"down"`` or ``"up"``."""
    if not 1 <= n <= size:
        return set()
    low, high = max(1, size // (n + 1)), size if n == 1 else size // (n - 1) + 1
    divided = {
        "exact": lambda p: size // p if size % p == 0 else None,
        "down": lambda p: size // p,
        "up": lambda p: -(-size // p),
    }[rounding]
    return {p for p in range(low, high + 1) if divided(p) == n}


def downscales(grid, spatial, roundings=("down", "up")) -> bool:
    """Whether ``grid`` ``(h, w)`` is the input's spatial size ``(H, W)`` divided by one integer ``p``.

    ``h = H / p`` and ``w = W / p`` with the same ``p >= 1``, both rounded down (a patch embedding or
    strided convolution without padding) or both up (padded): ``(4, 8)`` downscales ``(32, 64)``
    (``p = 8``), ``(8, 4)`` and ``(26, 26)`` do not. ``roundings=("exact",)`` asks for ``p`` dividing both.
    """
    if len(grid) != len(spatial):
        return False
    return any(
        set.intersection(*(_scale_factors(int(n), int(size), rounding) for n, size in zip(grid, spatial)))
        for rounding in roundings
    )


def token_grid(tokens: int, spatial) -> tuple[int, int, int] | None:
    """``(R, h, w)``: ``tokens = R + h w``, the ``R`` leading extra tokens and an ``h × w`` grid of patches.

    The grid is a downscaling of the input's spatial size (:func:`downscales`, so its aspect is the
    input's) with more patches than extra tokens; the fewest extra tokens (at most
    :data:`MAX_EXTRA_TOKENS`) win, a patch size dividing the input before a rounded one. ``None`` if
    there is no such grid; ``ValueError`` if two grids fit the same number of tokens.
    """
    for roundings in (("exact",), ("down", "up")):
        for extra in range(min(MAX_EXTRA_TOKENS, (tokens - 1) // 2) + 1):
            patches = tokens - extra
            grids = [
                (h, patches // h)
                for h in range(1, min(patches, spatial[0]) + 1)
                if patches % h == 0 and downscales((h, patches // h), spatial, roundings)
            ]
            if len(grids) > 1:
                raise ValueError(
                    f"{tokens} tokens for an input of spatial size {tuple(spatial)} fit the grids "
                    f"{' and '.join(map(str, grids))} after {extra} extra tokens; {_RESHAPE_HINT}"
                )
            if grids:
                return (extra, *grids[0])
    return None


def feature_maps(activation: torch.Tensor, spatial, reshape: Callable | None = None, layer: str = "the layer"):
    """How a layer's activation, and its gradient, become maps ``(N, K, *grid)``: a function of either.

    ``spatial`` is the input's spatial size (``inputs.shape[2:]``). ``reshape``, when given, is that
    function (it must only select and rearrange elements: it is applied to the gradient too, as
    pytorch-grad-cam's ``reshape_transform``). Otherwise, for images ``(N, C, H, W)``:

    * ``(N, T, D)``: vision-transformer tokens ``T = R + h w``, :func:`token_grid`; the ``R`` extra
      tokens (class, register) are left out and the ``D`` features are the channels.
    * ``(N, a, b, c)``: channels-last ``(N, h, w, D)`` when ``(a, b)`` downscales ``(H, W)`` and ``(b, c)``
      does not (Swin); channels-first ``(N, K, h, w)`` otherwise; when both do, ``ValueError``.
    * anything else, and every activation of other inputs: channels-first ``(N, K, ...)``.
    """
    if reshape is not None:
        return reshape
    shape = tuple(activation.shape)
    if len(spatial) == 2 and activation.dim() == 3:
        grid = token_grid(shape[1], spatial)
        if grid is None:
            raise ValueError(
                f"cannot find the patch grid of {layer}'s tokens {shape} (N, T, D) for an input of spatial size "
                f"{tuple(spatial)}: no T - R (R <= {MAX_EXTRA_TOKENS} extra tokens) is an h x w downscaling of the "
                f"input; {_RESHAPE_HINT}"
            )
        extra, h, w = grid
        return lambda t: t[:, extra:].unflatten(1, (h, w)).movedim(-1, 1)
    if len(spatial) == 2 and activation.dim() == 4:
        last, first = downscales(shape[1:3], spatial), downscales(shape[2:4], spatial)
        if last and first:
            raise ValueError(
                f"{layer}'s activation {shape} for an input of spatial size {tuple(spatial)} reads both as channels-first "
                f"maps (N, K={shape[1]}, h={shape[2]}, w={shape[3]}) and as channels-last maps (N, h={shape[1]}, "
                f"w={shape[2]}, D={shape[3]}); pass reshape=lambda a: a for the first or "
                "reshape=lambda a: a.permute(0, 3, 1, 2) for the second"
            )
        if last:
            return lambda t: t.movedim(-1, 1)
    return lambda t: t


def _maps(layout: Callable, tensor: torch.Tensor, layer: str) -> torch.Tensor:
    maps = layout(tensor)
    if not isinstance(maps, torch.Tensor) or maps.dim() < 3 or maps.shape[0] != tensor.shape[0]:
        got = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(
            f"reshape must turn {layer}'s activation {tuple(tensor.shape)} into maps (N, K, h, w) with "
            f"N = {tensor.shape[0]}, got {got}"
        )
    return maps


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
    """Shared parts: the layer, its maps (:func:`feature_maps`), upsampling to the input and the optional ReLU."""

    min_input_dim = 3

    def __init__(self, model: nn.Module, layer, relu_attributions: bool, interpolate_mode: str, reshape=None):
        super().__init__(model)
        self.layer_name, self.layer = find_layer(model, layer)
        self.relu_attributions = relu_attributions
        self.interpolate_mode = interpolate_mode
        if reshape is not None and not callable(reshape):
            raise TypeError(f"reshape must be a callable activation -> maps (N, K, h, w), got {type(reshape).__name__}")
        self.reshape = reshape

    def _rebind(self, model: nn.Module) -> None:
        self.layer_name, self.layer = _same_layer(model, self.layer, self.layer_name)

    def _capture(self, store: dict) -> None:
        _capture(self.layer, store, check=self.reshape is None)

    def _layout(self, activation: torch.Tensor, inputs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        layout = feature_maps(activation, inputs.shape[2:], self.reshape, repr(self.layer_name))
        return lambda t: _maps(layout, t, repr(self.layer_name))

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
    layer with class weights ``w_c^k`` (the zoo's ``GAPCNN``; torchvision's Swin from its ``norm``).

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
    reshape : callable, optional
        ``activation -> (N, K, h, w)``. Without it the output is read from its shape and the input's
        spatial size (:func:`feature_maps`), as for :class:`GradCAM`.
    """

    def __init__(
        self, model, feature_layer, fc_layer, relu_attributions: bool = False, interpolate_mode: str = "bilinear",
        reshape=None,
    ):  # fmt: skip
        super().__init__(model, feature_layer, relu_attributions, interpolate_mode, reshape)
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
            self._capture(store)
            self.fc.register_forward_hook(lambda module, args, out: store.update(fc_in=args[0], fc_out=out))
            output = run.forward(run.inputs)
            indices = run.resolve(output)
        features = self._layout(store["maps"], run.inputs)(store["maps"])
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

    Works for any layer with spatial outputs, of any model, vision transformers included (the mean
    is over the patch grid); CAM is the special case of the last layer of a GAP network (there
    ``α_k^c = w_c^k / (h w)``). In a vision transformer whose head reads the class token, pick a layer
    before the last attention (e.g. the last block's first LayerNorm): after it the score depends on
    the class token only, and the patch tokens have no gradient.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
        The layer whose output ``A`` is explained, as a module or dotted name (e.g. ``"layer4"``,
        ``"encoder.layers.encoder_layer_11.ln_1"``).
    relu_attributions : bool
        Apply the ReLU of eq. 25 (default).
    interpolate_mode : str
        Upsampling mode (``"bilinear"``, ``"nearest"``, ...).
    reshape : callable, optional
        ``activation -> (N, K, h, w)``, applied to the layer's output and to its gradient (so it must
        only select and rearrange elements, as pytorch-grad-cam's ``reshape_transform``). Without it the
        output is read from its shape and the input's spatial size (:func:`feature_maps`): channels-first
        maps as they are, vision-transformer tokens ``(N, R + h w, D)`` without their ``R`` leading extra
        tokens (class, register), channels-last maps ``(N, h, w, D)`` (Swin); the features ``D`` are the
        channels ``K``.
    """

    def __init__(self, model, layer, relu_attributions: bool = True, interpolate_mode: str = "bilinear", reshape=None):
        super().__init__(model, layer, relu_attributions, interpolate_mode, reshape)

    def _attribute(self, run: Run, upsample: bool = True) -> torch.Tensor:
        """Grad-CAM maps ``(N, 1, H, W)`` (or at the layer's resolution with ``upsample=False``)."""
        store: dict = {}
        self._capture(store)
        output = run.forward(run.inputs.detach().requires_grad_(True))
        activation = store["maps"]
        layout = self._layout(activation, run.inputs)
        (gradient,) = torch.autograd.grad(run.select(output).sum(), activation)
        gradient_maps = layout(gradient)
        self._check_gradient(gradient, gradient_maps)
        alpha = gradient_maps.flatten(2).mean(2)  # (N, K)
        maps = torch.einsum("nk,nk...->n...", alpha, layout(activation.detach()))
        return self._finish(maps, run.inputs, upsample)

    def _check_gradient(self, gradient: torch.Tensor, gradient_maps: torch.Tensor) -> None:
        """Refuse a layer whose grid has no gradient while the tokens left out have one (after the last attention)."""
        if gradient_maps.count_nonzero() == 0 and gradient.count_nonzero() > 0:
            raise ValueError(
                f"the target depends on {self.layer_name!r} only through the tokens left out of its maps (e.g. the "
                "class token the head reads after the last attention), so the patch grid has no gradient: explain a "
                "layer before the last attention, e.g. the last block's first LayerNorm"
            )


@register_method("guided-grad-cam")
class GuidedGradCAM(Attribution):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backpropagation × the upsampled Grad-CAM map.

    Returns a map with the inputs' shape: the class-discriminative but coarse Grad-CAM gates the
    fine-grained guided gradient (:class:`GuidedBackprop`, with its rule at GELU and the other
    non-monotone activations). ``layer``, ``interpolate_mode`` and ``reshape`` are :class:`GradCAM`'s.
    Token layers work as for Grad-CAM (Swin, ViTs whose attention is written out); torchvision's
    ``VisionTransformer`` runs ``nn.MultiheadAttention`` as one fused kernel, which GuidedBackprop refuses.
    """

    min_input_dim = 3

    def __init__(self, model, layer, interpolate_mode: str = "bilinear", reshape=None):
        super().__init__(model)
        self.grad_cam = GradCAM(model, layer, interpolate_mode=interpolate_mode, reshape=reshape)
        self.guided = GuidedBackprop(model)

    def _attribute(self, run: Run) -> torch.Tensor:
        target, extra = run.selector, run.additional_forward_args
        guided = self.guided.attribute(run.inputs, target, additional_forward_args=extra)
        return guided * self.grad_cam.attribute(run.inputs, target, additional_forward_args=extra)

    def __repr__(self) -> str:
        return f"GuidedGradCAM({type(self.model).__name__}, layer={self.grad_cam.layer_name!r})"
