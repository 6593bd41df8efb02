"""Attention rollout (Abnar & Zuidema 2020): how much each input patch flows into the class token.

A baseline for attention models, class-agnostic by construction: the map depends on the attention
weights only, never on the explained score.
"""
from __future__ import annotations

import torch

from ..core.attention import unfused_attention
from ..core.base import Attribution, Run
from ..core.registry import register_method
from .cam import token_grid, upsample

HEAD_FUSIONS = ("mean", "max", "min")


@register_method("attention-rollout")
class AttentionRollout(Attribution):
    """Attention rollout: ``Ã = Ã_L ⋯ Ã_1`` with ``Ã_l = (1 − r) A_l + r I``, rows renormalised.

    Abnar & Zuidema 2020, "Quantifying attention flow in transformers", section 3 (eq. for
    ``Ã(l_i) = Ã_{l_i} Ã(l_{i−1})``): each layer's attention ``A_l`` (its heads fused by ``head_fusion``)
    is mixed with the identity for the residual connection (``r = residual``, 0.5 in the paper) and
    the products from the first layer up give how much each token of the input reaches each token of
    the output. The map is the row of the class token (``token``) over the patch tokens, on the patch
    grid (found as for Grad-CAM's token layers), upsampled to the input.

    The attention weights are read from ``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention``
    (:func:`~nn_interpretability.core.attention.unfused_attention`), in forward order; attention
    written by hand is not seen, and a model without such calls is refused. The map is the same for
    every target: ``target`` is accepted so that rollout runs beside the other methods.

    Parameters
    ----------
    model : nn.Module
        A vision transformer taking images ``(N, C, H, W)``.
    head_fusion : {"mean", "max", "min"}
        How the heads of a layer are combined (the paper averages; "max" is a common variant).
    residual : float
        Weight ``r`` of the identity in ``Ã_l``.
    discard_ratio : float
        Share of the smallest fused attention weights per row set to 0 before the residual is added
        (a variant of Gildenblat's implementation; 0 keeps the paper's method).
    token : int
        Index of the token whose row is the map (the class token, 0 in torchvision's ViT).
    """

    needs_gradients = False
    min_input_dim = 4

    def __init__(self, model, head_fusion: str = "mean", residual: float = 0.5, discard_ratio: float = 0.0, token: int = 0):
        super().__init__(model)
        if head_fusion not in HEAD_FUSIONS:
            raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
        for value, name in ((residual, "residual"), (discard_ratio, "discard_ratio")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1 + (name == "residual"):
                raise ValueError(f"{name} must be a number in [0, 1{']' if name == 'residual' else ')'}, got {value!r}")
        self.head_fusion, self.residual, self.discard_ratio, self.token = head_fusion, float(residual), float(discard_ratio), token

    def _attribute(self, run: Run, upsample_to_input: bool = True, interpolate_mode: str = "bilinear") -> torch.Tensor:
        """Rollout maps ``(N, 1, H, W)`` (``(N, 1, h, w)`` on the patch grid with ``upsample_to_input=False``)."""
        weights: list[torch.Tensor] = []
        with torch.no_grad(), unfused_attention(record=weights):
            run.bind(run.forward(run.inputs))  # the target is checked like every method's, though not used
        if not weights:
            raise ValueError(
                f"{type(self.model).__name__} has no nn.MultiheadAttention or F.scaled_dot_product_attention call to read "
                "attention weights from; attention rollout needs one of them"
            )
        rollout = None
        for attention in weights:
            fused = self._fuse(attention.reshape(run.n, -1, *attention.shape[-2:]))
            mixed = (1 - self.residual) * fused + self.residual * torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
            mixed = mixed / mixed.sum(-1, keepdim=True)
            if rollout is not None and rollout.shape != mixed.shape:
                raise ValueError(
                    f"the attention calls attend over different numbers of tokens ({rollout.shape[-1]} and "
                    f"{mixed.shape[-1]}); rollout multiplies the attention of consecutive layers of one token sequence"
                )
            rollout = mixed if rollout is None else mixed @ rollout
        tokens, spatial = rollout.shape[-1], run.inputs.shape[2:]
        grid = token_grid(tokens, spatial)
        if grid is None:
            raise ValueError(f"cannot find the patch grid of {tokens} tokens for an input of spatial size {tuple(spatial)}")
        extra, h, w = grid
        if not -tokens <= self.token < tokens:
            raise ValueError(f"token {self.token} is out of range for {tokens} tokens")
        maps = rollout[:, self.token, extra:].reshape(run.n, 1, h, w)
        return upsample(maps, spatial, interpolate_mode) if upsample_to_input else maps

    def _fuse(self, attention: torch.Tensor) -> torch.Tensor:
        """One ``(N, L, L)`` attention per layer from its heads ``(N, heads, L, L)``, the smallest weights discarded."""
        fused = {"mean": attention.mean(1), "max": attention.amax(1), "min": attention.amin(1)}[self.head_fusion]
        if self.discard_ratio > 0:
            drop = int(fused.shape[-1] * self.discard_ratio)
            if drop:
                smallest = fused.topk(drop, dim=-1, largest=False).indices
                fused = fused.scatter(-1, smallest, 0.0)
        return fused

    def __repr__(self) -> str:
        return f"AttentionRollout({type(self.model).__name__}, head_fusion={self.head_fusion!r}, residual={self.residual})"

