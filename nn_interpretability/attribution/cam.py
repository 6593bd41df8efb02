"""Class activation maps: CAM, the Grad-CAM family and Guided Grad-CAM (report section 2.2.7).

The family follows pytorch-grad-cam's layout: :class:`_WeightedMapCAM` captures the layer's activation (and
its gradient when the variant uses one), lays both out as maps ``(N, K, h, w)`` and each variant
overrides one function, the channel weights ``_weights(A, G) -> (N, K)`` (Grad-CAM, Grad-CAM++,
XGrad-CAM, Score-CAM, Ablation-CAM) or the whole per-position map ``_map(A, G) -> (N, h, w)`` where the
method is not a weighted sum of the channels (HiResCAM, LayerCAM, EigenCAM). FullGrad, which explains
every biased layer at once, stands apart.

The explained layer may output channels-first feature maps ``(N, K, h, w)`` (or ``(N, K, l)``), the
token sequence of a vision transformer ``(N, R + h w, D)`` or channels-last maps ``(N, h, w, D)`` (Swin);
:func:`feature_maps` says how each is recognised, and ``reshape=`` overrides it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Attribution, Run
from ..core.batching import chunk_size, chunks
from ..core.layers import find_layer, same_layer
from ..core.progress import progress
from ..core.registry import register_method
from .gradient import GuidedBackprop

#: The most extra tokens (class, distillation and register tokens) looked for before a vision
#: transformer's patch tokens; beyond it, or for another arrangement, pass ``reshape=``.
MAX_EXTRA_TOKENS = 16

_RESHAPE_HINT = (
    "pass reshape=, a callable activation -> maps (N, K, h, w), e.g. reshape=lambda a: a[:, 1:].unflatten(1, (h, w))"
    ".movedim(-1, 1) for a class token followed by an h x w grid of patch tokens"
)


def _capture(layer: nn.Module, store: dict, check: bool = True) -> torch.utils.hooks.RemovableHandle:
    """Keep the layer's output for the method; the hook goes away with :func:`borrowed` (or its handle)."""

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

    return layer.register_forward_hook(hook)


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
        self.layer_name, self.layer = same_layer(model, self.layer, self.layer_name)

    def _capture(self, store: dict) -> torch.utils.hooks.RemovableHandle:
        return _capture(self.layer, store, check=self.reshape is None)

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
        self.fc_name, self.fc = same_layer(model, self.fc, self.fc_name)

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


@dataclass
class _LayerPass:
    """One call's view of the explained layer, for the variants that run further forwards (Score-CAM, Ablation-CAM)."""

    run: Run
    activation: torch.Tensor  # the layer's output as the model produced it (detached)
    layout: Callable[[torch.Tensor], torch.Tensor]  # that output (or its gradient) -> maps (N, K, h, w)
    scores: torch.Tensor  # the explained score of each sample (N,), on the unchanged input
    internal_batch_size: int | None = None
    show_progress: bool | None = None


class _WeightedMapCAM(_ClassActivationMap):
    """The Grad-CAM family: activation maps ``A`` (and gradient maps ``G``) of one layer -> one map per sample.

    ``_attribute`` captures the layer's output (and, when ``needs_gradients``, the gradient of the
    explained score with respect to it), lays both out as maps ``(N, K, h, w)`` with
    :func:`feature_maps`, calls :meth:`_map`, applies the optional ReLU at the layer's resolution and
    upsamples to the input. A variant overrides :meth:`_weights` (the channel weights of the weighted
    sum ``Σ_k w_k A^k``) or :meth:`_map` (the whole per-position map).
    """

    def __init__(self, model, layer, relu_attributions: bool = True, interpolate_mode: str = "bilinear", reshape=None):
        super().__init__(model, layer, relu_attributions, interpolate_mode, reshape)

    def _attribute(self, run: Run, upsample: bool = True) -> torch.Tensor:
        """Maps ``(N, 1, H, W)`` (or at the layer's resolution with ``upsample=False``)."""
        return self._explain(run, upsample)

    def _explain(self, run: Run, upsample: bool, **batching) -> torch.Tensor:
        store: dict = {}
        capture = self._capture(store)
        if self.needs_gradients:
            output = run.forward(run.inputs.detach().requires_grad_(True))
            scores = run.select(output)
            activation = store["maps"]
            layout = self._layout(activation, run.inputs)
            (gradient,) = torch.autograd.grad(scores.sum(), activation)
            gradients = layout(gradient)
            self._check_gradient(gradient, gradients)
        else:
            with torch.no_grad():
                output = run.forward(run.inputs)
                scores = run.select(output)
            # The further forwards (masked or ablated copies) need no activations: no clone of them, and no
            # hook that would keep the forwards from a BatchNorm-folded copy of the model.
            capture.remove()
            activation = store["maps"]
            layout = self._layout(activation, run.inputs)
            gradients = None
        activation = activation.detach()
        context = _LayerPass(run, activation, layout, scores.detach(), **batching)
        return self._finish(self._map(layout(activation), gradients, context), run.inputs, upsample)

    def _map(self, activations: torch.Tensor, gradients: torch.Tensor | None, context: _LayerPass) -> torch.Tensor:
        """The map ``(N, h, w)`` before the ReLU: ``Σ_k w_k A^k`` with the weights of :meth:`_weights`."""
        return torch.einsum("nk,nk...->n...", self._weights(activations, gradients, context), activations)

    def _weights(self, activations: torch.Tensor, gradients: torch.Tensor | None, context: _LayerPass) -> torch.Tensor:
        raise NotImplementedError

    def _check_gradient(self, gradient: torch.Tensor, gradient_maps: torch.Tensor) -> None:
        """Refuse a layer whose grid has no gradient while the tokens left out have one (after the last attention)."""
        if gradient_maps.count_nonzero() == 0 and gradient.count_nonzero() > 0:
            raise ValueError(
                f"the target depends on {self.layer_name!r} only through the tokens left out of its maps (e.g. the "
                "class token the head reads after the last attention), so the patch grid has no gradient: explain a "
                "layer before the last attention, e.g. the last block's first LayerNorm"
            )


def _spatial_sum(maps: torch.Tensor) -> torch.Tensor:
    """``Σ_ij`` of maps ``(N, K, ...)``: ``(N, K)``."""
    return maps.flatten(2).sum(2)


@register_method("grad-cam")
class GradCAM(_WeightedMapCAM):
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

    The other members of the family take the same arguments and differ in one function.
    """

    def _weights(self, activations, gradients, context):
        return gradients.flatten(2).mean(2)


@register_method("grad-cam-plus-plus")
class GradCAMPlusPlus(_WeightedMapCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19): weights ``Σ_ij α_ij^kc ReLU(∂y_c/∂A^k_ij)``.

    ``α_ij = g² / (2 g² + Σ_ab A_ab g³ + ε)`` with ``g = ∂y_c/∂A_ij`` and ``ε = 10⁻⁶``: the closed form of
    eq. 19 for ``Y_c = exp(S_c)`` in which the higher derivatives are powers of the first, as
    pytorch-grad-cam computes it; ``α_ij = 0`` where ``g = 0``. Arguments as :class:`GradCAM`'s.
    """

    def _weights(self, activations, gradients, context):
        squared, cubed = gradients**2, gradients**3
        total = _spatial_sum(activations).view(*activations.shape[:2], *(1,) * (activations.dim() - 2))
        alpha = torch.where(gradients != 0, squared / (2 * squared + total * cubed + 1e-6), torch.zeros_like(gradients))
        return _spatial_sum(alpha * gradients.clamp(min=0))


@register_method("xgrad-cam")
class XGradCAM(_WeightedMapCAM):
    """XGrad-CAM (Fu et al. 2020): weights ``Σ_ij (A^k_ij / Σ_ab A^k_ab) ∂y_c/∂A^k_ij``.

    The gradient averaged with the normalised activation as weights (``10⁻⁷`` is added to the
    denominator, as pytorch-grad-cam does). Arguments as :class:`GradCAM`'s.
    """

    def _weights(self, activations, gradients, context):
        total = _spatial_sum(activations).view(*activations.shape[:2], *(1,) * (activations.dim() - 2))
        return _spatial_sum(gradients * activations / (total + 1e-7))


@register_method("hires-cam")
class HiResCAM(_WeightedMapCAM):
    """HiResCAM (Draelos & Carin 2020): ``ReLU(Σ_k ∂y_c/∂A^k ⊙ A^k)``, elementwise, not averaged.

    Equal to Grad-CAM where the gradient is constant over the positions (a global average pooling
    head). Arguments as :class:`GradCAM`'s.
    """

    def _map(self, activations, gradients, context):
        return (gradients * activations).sum(1)


@register_method("layer-cam")
class LayerCAM(_WeightedMapCAM):
    """LayerCAM (Jiang et al. 2021): ``ReLU(Σ_k ReLU(∂y_c/∂A^k) ⊙ A^k)``. Arguments as :class:`GradCAM`'s."""

    def _map(self, activations, gradients, context):
        return (gradients.clamp(min=0) * activations).sum(1)


@register_method("eigen-cam")
class EigenCAM(_WeightedMapCAM):
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations projected on their first principal component.

    Per sample, the activation maps as a matrix ``(h w, K)`` are centred over the positions and
    projected on their first right singular vector ``v₁``. No gradient, no class: the map is the same
    for every target (the target is still checked). The sign of ``v₁``, which the decomposition leaves
    free, is the one ``numpy.linalg.svd`` (LAPACK's ``gesdd``) returns, as in pytorch-grad-cam, so the
    maps (after the ReLU) are its maps; ``torch.linalg.svd`` returns the opposite sign on some of the
    same matrices. The decomposition therefore runs on the CPU, in numpy, on the matrix pytorch-grad-cam decomposes. Arguments as :class:`GradCAM`'s.
    """

    needs_gradients = False

    def _map(self, activations, gradients, context):
        # numpy, sample by sample, centred there: LAPACK's sign flips with the last bits of a matrix whose
        # components are close, so the matrix must be pytorch-grad-cam's to the bit to get its sign.
        first = []
        for maps in activations.flatten(2).cpu().numpy():  # (K, h w)
            rows = maps.T
            first.append(np.linalg.svd(rows - rows.mean(axis=0), full_matrices=True)[2][0])
        rows = activations.flatten(2).transpose(1, 2)  # (N, h w, K)
        centred = rows - rows.mean(1, keepdim=True)
        projection = torch.einsum("npk,nk->np", centred, torch.from_numpy(np.stack(first)).to(centred))
        return projection.view(activations.shape[0], *activations.shape[2:])


class _PerturbationCAM(_WeightedMapCAM):
    """Score-CAM and Ablation-CAM: channel weights from further forwards, one per (channel, sample), batched."""

    needs_gradients = False
    perturbation_forwards = True

    def _attribute(
        self, run: Run, upsample: bool = True, internal_batch_size: int | None = None, show_progress: bool | None = None
    ) -> torch.Tensor:
        """Maps ``(N, 1, H, W)`` (or at the layer's resolution with ``upsample=False``).

        Parameters
        ----------
        upsample : bool
            Resize the maps to the input's spatial size.
        internal_batch_size : int, optional
            Copies (over all channels and samples) per forward. ``None`` fills one pass with at most
            :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` input elements (on the CPU at most
            :data:`~nn_interpretability.core.batching.CPU_ROWS` copies).
        show_progress : bool, optional
            A progress bar over the forwards; ``None`` shows it in a terminal or notebook only.
        """
        return self._explain(run, upsample, internal_batch_size=internal_batch_size, show_progress=show_progress)

    def _copies(self, context: _LayerPass, rows: torch.Tensor, elements: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The ``(channel, sample)`` of each copy per pass for copy-major ``rows`` (row ``k N + i``: channel ``k`` of sample ``i``).

        A pass holds ``internal_batch_size`` copies, or as many of ``elements`` each as the memory budget allows.
        """
        run = context.run
        per_pass = chunk_size(elements, context.internal_batch_size, rows_per_copy=1, device=run.inputs.device)
        return [(rows[p.start : p.stop] // run.n, rows[p.start : p.stop] % run.n) for p in chunks(len(rows), per_pass)]


@register_method("score-cam")
class ScoreCAM(_PerturbationCAM):
    """Score-CAM (Wang et al. 2020): weights = softmax over the channels of the score of ``x ∘ H^k``.

    ``H^k`` is the activation map ``A^k`` upsampled to the input (bilinear with ``align_corners=True``,
    pytorch-grad-cam's ``UpsamplingBilinear2d``) and min-max normalised per sample and channel
    (``(H - min) / (max - min + 10⁻⁸)``); the score of each masked input is the explained target of its
    sample; the weights are their softmax over the ``K`` channels, as pytorch-grad-cam defines them
    (the paper's baseline-subtracted increase differs from it by a constant per sample, which the
    softmax removes). ``K N`` forwards, batched by ``internal_batch_size``, less those of channels constant
    over a sample's input (their masked input is black, scored once per sample). Arguments as :class:`GradCAM`'s.
    """

    def _weights(self, activations, gradients, context):
        run, x = context.run, context.run.inputs
        if activations.dim() - 2 not in (1, 2, 3) or activations.dim() != x.dim():
            raise ValueError(
                f"Score-CAM masks the input with {self.layer_name!r}'s maps {tuple(activations.shape)}: they need as many "
                f"spatial dimensions as the input {tuple(x.shape)}"
            )
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[activations.dim() - 2]

        def masks(sample, channel):
            """The normalised masks ``H^k`` ``(R, 1, ...)`` of these (sample, channel) rows, made per pass."""
            up = F.interpolate(activations[sample, channel].unsqueeze(1), size=tuple(x.shape[2:]), mode=mode, align_corners=True)
            flat = up.flatten(1)
            low = flat.amin(1).view(-1, *(1,) * (up.dim() - 1))
            return (up - low) / (flat.amax(1).view_as(low) - low + 1e-8)

        k = activations.shape[1]
        scores = torch.empty(k * run.n, dtype=context.scores.dtype, device=x.device)
        # A channel constant over the input (a dead or saturated ReLU channel) has the mask 0: its masked input
        # is black, the same for every such channel of a sample, so one forward per sample scores them all, and
        # its mask is never made. A map of zeros upsamples to zeros; another constant may come out of the
        # interpolation a rounding error off constant (its mask is then not 0), so those are checked upsampled.
        small = activations.flatten(2)
        constant = small.amax(2) == small.amin(2)  # (N, K)
        sample, channel = (constant & (small[..., 0] != 0)).nonzero().unbind(1)
        if len(sample):
            up = F.interpolate(activations[sample, channel].unsqueeze(1), size=tuple(x.shape[2:]), mode=mode, align_corners=True)
            constant[sample, channel] = up.flatten(1).amax(1) == up.flatten(1).amin(1)
        constant_rows = constant.T.flatten()
        rows = torch.arange(k * run.n, device=x.device)
        with torch.no_grad():
            blank = constant.any(1).nonzero().flatten()
            if len(blank):
                first = constant[blank].to(torch.uint8).argmax(1)
                black = torch.empty(run.n, dtype=scores.dtype, device=x.device)
                black[blank] = run.select(run.forward(x[blank] * masks(blank, first), blank), blank)
                scores[constant_rows] = black[rows[constant_rows] % run.n]
            for channel, sample in progress(
                self._copies(context, rows[~constant_rows], x[0].numel()), "Score-CAM", context.show_progress
            ):
                scores[channel * run.n + sample] = run.select(run.forward(x[sample] * masks(sample, channel), sample), sample)
        return scores.view(k, run.n).T.softmax(1)


@register_method("ablation-cam")
class AblationCAM(_PerturbationCAM):
    """Ablation-CAM (Desai & Ramaswamy 2020): weights = relative drop of the score, ``(y_c - y_c^k) / y_c``.

    ``y_c^k`` is the explained score with channel ``k`` of the layer's output set to zero (the paper's
    ablation; pytorch-grad-cam sets it to ``min - 10⁷`` instead where the layer's output has no zero,
    i.e. not after a ReLU). The network after the layer runs on ``K N`` ablated copies of the
    activation, batched by ``internal_batch_size``; the layers before it run once when the model
    allows a longer batch after the layer (checked on the first pass against full forwards of
    repeated inputs), else on every copy. Arguments as :class:`GradCAM`'s.
    """

    def _weights(self, activations, gradients, context):
        run, activation = context.run, context.activation
        # Where each element of the maps sits in the layer's output: the layout only selects and
        # rearranges, so it carries indices as it carries values.
        index = context.layout(torch.arange(activation.numel(), device=activation.device).view(activation.shape))
        k, per_sample = activations.shape[1], activation[0].numel()
        scores = torch.empty(k * run.n, dtype=context.scores.dtype, device=activation.device)
        shortcut = None  # whether the layers after the layer take all copies after one pass of the batch
        with torch.no_grad():
            rows = torch.arange(k * run.n, device=activation.device)
            for channel, sample in progress(self._copies(context, rows, per_sample), "Ablation-CAM", context.show_progress):
                ablated = activation[sample].flatten(1).scatter(1, index[sample, channel].flatten(1) - sample[:, None] * per_sample, 0)
                ablated = ablated.view(-1, *activation.shape[1:])
                if shortcut is None:
                    first = slice(0, min(len(sample), run.n))
                    full = self._after_layer(run, ablated[first], sample[first], repeat=True)
                    suffix = self._after_layer(run, ablated, sample, repeat=False)
                    scale = full.abs().max()
                    shortcut = suffix is not None and torch.allclose(suffix[first], full, rtol=1e-3, atol=1e-3 * scale)
                    values = suffix if shortcut else self._after_layer(run, ablated, sample, repeat=True)
                else:
                    values = self._after_layer(run, ablated, sample, repeat=not shortcut)
                scores[channel * run.n + sample] = values
        drops = context.scores.repeat(k) - scores
        return (drops / context.scores.repeat(k)).view(k, run.n).T

    def _after_layer(self, run: Run, ablated: torch.Tensor, sample: torch.Tensor, repeat: bool) -> torch.Tensor | None:
        """The explained scores with the layer's output replaced by ``ablated`` (copies of samples ``sample``).

        ``repeat``: the model runs on the inputs of those samples, one row per copy. Otherwise on the batch
        once, the layer handing the longer batch of copies on; ``None`` if the model cannot take it.
        """
        handle = self.layer.register_forward_hook(lambda module, args, output: ablated)
        try:
            if repeat:
                return run.select(run.forward(run.inputs[sample], sample), sample)
            try:
                output = self.model(run.inputs, *run.additional_forward_args)
            except (RuntimeError, ValueError, IndexError, TypeError):
                return None
            if not isinstance(output, torch.Tensor) or output.dim() == 0 or output.shape[0] != len(sample):
                return None
            return run.select(output, sample)
        finally:
            handle.remove()


def _min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each map of ``(N, K, ...)`` shifted to minimum 0 and divided by ``10⁻⁷ +`` its maximum (pytorch-grad-cam's scaling)."""
    flat = maps.flatten(2)
    shifted = flat - flat.amin(2, keepdim=True)
    return (shifted / (1e-7 + shifted.amax(2, keepdim=True))).view_as(maps)


@register_method("full-grad")
class FullGrad(Attribution):
    """FullGrad (Srinivas & Fleuret 2019): ``ψ(|∇_x f ⊙ x|) + Σ_l Σ_k ψ(|∇_b f ⊙ b|)`` over every biased layer.

    The full-gradient decomposition (``f(x) = ∇_x f · x + Σ ∇_b f · b`` for piecewise-linear
    networks) made into a saliency map as pytorch-grad-cam does: the input-gradient term per input
    channel and the bias-gradient term per channel of every ``nn.Conv2d`` and ``nn.BatchNorm2d`` with a
    bias (the BatchNorm's bias being ``β - μ γ / √(σ² + ε)``, its running statistics folded in) are
    taken in absolute value, each map min-max scaled (``ψ``: ``(m - min) / (10⁻⁷ + max - min)``),
    upsampled to the input (``interpolate_mode``, after the sum over a layer's channels, which bilinear
    resizing commutes with) and summed. pytorch-grad-cam then min-max scales the sum per image; this
    map is before that scaling. Linear layers' biases have no spatial map and are left out, as there.

    Parameters
    ----------
    model : nn.Module
        With at least one ``nn.Conv2d`` or ``nn.BatchNorm2d`` with a bias, taking images ``(N, C, H, W)``.
    interpolate_mode : str
        Upsampling mode of the layers' maps.
    layer : None
        FullGrad has no layer: it explains all biased layers at once (a layer given is refused).
    """

    min_input_dim = 3

    def __init__(self, model, interpolate_mode: str = "bilinear", *, layer=None):
        super().__init__(model)
        if layer is not None:
            raise TypeError("FullGrad takes no layer: it uses every nn.Conv2d and nn.BatchNorm2d with a bias of the model")
        self.interpolate_mode = interpolate_mode

    def _biased_layers(self) -> list[tuple[str, nn.Module]]:
        layers = [
            (name, module)
            for name, module in self.model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)) and module.bias is not None
        ]
        if not layers:
            raise ValueError(
                f"FullGrad sums the bias-gradients of the nn.Conv2d and nn.BatchNorm2d layers with a bias, and "
                f"{type(self.model).__name__} has none"
            )
        for name, module in layers:
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is None:
                raise ValueError(
                    f"FullGrad folds the running statistics of {name!r} into its bias, and it keeps none "
                    "(track_running_stats=False)"
                )
        return layers

    @staticmethod
    def _bias(module: nn.Module) -> torch.Tensor:
        if isinstance(module, nn.BatchNorm2d):
            scale = module.weight if module.weight is not None else 1.0
            return module.bias - module.running_mean * scale / torch.sqrt(module.running_var + module.eps)
        return module.bias

    def _attribute(self, run: Run) -> torch.Tensor:
        """FullGrad maps ``(N, 1, H, W)`` of images ``(N, C, H, W)``, before pytorch-grad-cam's final min-max scaling."""
        x = run.inputs
        if x.dim() != 4:
            raise ValueError(f"FullGrad explains images (N, C, H, W) through nn.Conv2d layers, got inputs of shape {tuple(x.shape)}")
        calls: list[tuple[nn.Module, torch.Tensor]] = []

        def keep(module, args, output):
            calls.append((module, output))
            return output.clone()  # an in-place operation after the layer must not change the tensor we differentiate by

        for _, module in self._biased_layers():
            module.register_forward_hook(keep)
        x = x.detach().requires_grad_(True)
        scores = run.select(run.forward(x))
        gradients = torch.autograd.grad(scores.sum(), [x] + [output for _, output in calls], allow_unused=True)
        total = _min_max((x * gradients[0]).abs().detach()).sum(1, keepdim=True)
        for (module, output), gradient in zip(calls, gradients[1:]):
            if gradient is None:
                continue
            bias = self._bias(module).detach().view(1, -1, *(1,) * (gradient.dim() - 2))
            layer_map = _min_max((bias * gradient).abs()).sum(1, keepdim=True)
            total = total + upsample(layer_map, x.shape[2:], self.interpolate_mode)
        return total

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
