"""Canonizers: rewrite a model into the form the LRP rules assume, for the LRP backward pass only.

The LRP rules are defined for layers ``z = W a + b`` followed by an activation. An eval-mode BatchNorm
after a convolution is a second affine map that no rule is meant for; folding it into the convolution,
``W' = diag(s) W`` and ``b' = s b + t`` with ``s = gamma / sqrt(var + eps)`` and ``t = beta - s mean``,
gives the canonical form (Montavon et al. 2019, section 10.2.3; Zennit's ``SequentialMergeBatchNorm``).

Unlike Zennit, which overwrites the parameters of the model and writes them back afterwards, the fold
here is computed on the fly for the rules of the backward pass: the model's parameters are never
written, so they come back bit for bit even if the attribution fails, and the forward pass computes
exactly the model's own outputs. Which BatchNorm follows which layer is read from the forward pass
itself (the BatchNorm's input *is* the layer's output), not from the order of module registration, so
non-Sequential models, reused layers and layers whose output also feeds other branches are folded
correctly: only the path through the BatchNorm sees the folded layer.
"""
from __future__ import annotations

import torch

from .rules import LinearLayer


def batch_norm_layer(running_mean, running_var, weight, bias, eps: float) -> LinearLayer:
    """An eval-mode BatchNorm as the per-channel affine map ``s x + t`` (a ``"scale"`` layer)."""
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return LinearLayer("scale", scale, shift)


class MergeBatchNorm:
    """Canonizer folding every eval-mode BatchNorm into the Linear or Conv layer whose output it normalises.

    Pass ``canonizers=()`` to :class:`~nn_interpretability.attribution.lrp.LRP` to switch it off; then
    every BatchNorm is a layer of its own and gets the rule its composite maps it to (``Pass()`` in the
    built-in composites).
    """

    def merge(self, layer: LinearLayer, batch_norm: LinearLayer, output: torch.Tensor) -> LinearLayer | None:
        """The layer ``batch_norm o layer``, or None if the BatchNorm's channels are not the layer's outputs.

        Parameters
        ----------
        layer : LinearLayer
            The layer whose output ``output`` the BatchNorm normalises.
        batch_norm : LinearLayer
            The BatchNorm as a ``"scale"`` layer (:func:`batch_norm_layer`).
        output : Tensor
            The layer's output, whose dimension 1 the BatchNorm normalises.
        """
        scale, shift = batch_norm.weight, batch_norm.bias
        # A dense layer's features are the BatchNorm's channels only for (N, features) outputs.
        if (layer.kind == "linear" and output.dim() != 2) or layer.weight.shape[0] != scale.numel():
            return None
        bias = shift if layer.bias is None else layer.bias * scale + shift
        return FoldedLayer(layer, scale, bias)

    def __repr__(self) -> str:
        return "MergeBatchNorm()"


class FoldedLayer(LinearLayer):
    """``layer`` with a per-output-channel ``scale`` folded into its weight, ``W' = diag(scale) W``.

    The folded weight is formed when a rule first asks for it, not in the forward pass, so the folded
    weights of the whole model are never held at once. The z+ rule, which needs only ``W'^+``, gets
    ``W^+`` and the scale instead where every scale is >= 0 (then ``W'^+ = diag(scale) W^+``) and
    scaling the outputs costs less than folding the weight; otherwise the positive part of the folded
    weight, formed in place (:meth:`positive_part`).
    """

    def __init__(self, layer: LinearLayer, scale: torch.Tensor, bias: torch.Tensor):  # noqa: D107
        self.kind, self.bias, self.options = layer.kind, bias, dict(layer.options)
        self._base, self._scale = layer.weight, scale
        self._weight = None

    @property
    def weight(self) -> torch.Tensor:
        """The folded weight ``diag(scale) W``."""
        if self._weight is None:
            self._weight = self._base * self._channels(self._scale)
        return self._weight

    def positive_part(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Folding reads and writes the weight once more than clamping it; scaling reads and writes the
        # output twice more (once up, once down): at a small batch the weights of the deep layers are larger.
        if self._weight is None and 2 * z.numel() < self._base.numel() and bool(self._scale.min() >= 0):
            return self._base.clamp(min=0), self._scale
        if self._weight is None:
            return (self._base * self._channels(self._scale)).clamp_(min=0), None
        return self._weight.clamp(min=0), None

    def _channels(self, vector: torch.Tensor) -> torch.Tensor:
        return vector.reshape(-1, *([1] * (self._base.dim() - 1)))
