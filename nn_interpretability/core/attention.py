"""Attention spelled out: the fused attention kernels rewritten as the calls they are made of.

``nn.MultiheadAttention`` runs ``F.multi_head_attention_forward`` and many transformers call
``F.scaled_dot_product_attention``; both hide their products and softmax inside one call, so a method
that gives each operation its own backward pass (LRP, DeepLIFT) cannot see them. Under
:func:`unfused_attention` these two calls run as the same arithmetic written out with ``F.linear``,
``torch.matmul``, ``softmax`` and ``dropout``; enter it as the innermost mode, so that those calls
reach the method's interceptors. The outputs equal the fused kernels' to rounding (tested); options
the rewrite does not cover raise, naming them.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .ops import bound_arguments


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"nn.MultiheadAttention with {what} cannot be written out as separate operations here; build the "
        "attention without it"
    )


def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False, *, constant_weights=False
):
    """``F.scaled_dot_product_attention`` as ``softmax(q kᵀ · scale + mask) v`` (Vaswani et al. 2017, eq. 1).

    A boolean mask marks the positions that take part (``True``), a float mask is added to the scores.
    ``constant_weights`` detaches the queries and keys, so that the attention weights are constants.
    """
    if constant_weights:
        query, key = query.detach(), key.detach()
    length, source = query.shape[-2], key.shape[-2]
    if enable_gqa and query.shape[-3] != key.shape[-3]:
        repeats = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(repeats, -3), value.repeat_interleave(repeats, -3)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention takes attn_mask or is_causal=True, not both")
        attn_mask = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:  # an additive mask, so that the scores meet only an addition
            attn_mask = torch.zeros(attn_mask.shape, dtype=scores.dtype, device=scores.device).masked_fill(~attn_mask, float("-inf"))
        scores = scores + attn_mask
    weights = torch.softmax(scores, dim=-1)
    _record(weights)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return torch.matmul(weights, value)


def multi_head_attention_forward(*args, constant_weights=False, **kwargs):
    """``F.multi_head_attention_forward`` (``nn.MultiheadAttention``) written out, sequence-first ``(L, N, E)``.

    ``constant_weights`` projects the queries and keys from detached inputs, so that the attention
    weights are constants and only the value projection is on the backward path.
    """
    a = bound_arguments(F.multi_head_attention_forward, args, kwargs)
    for option in ("bias_k", "bias_v", "static_k", "static_v"):
        if a[option] is not None:
            raise _unsupported(option)
    if a["add_zero_attn"]:
        raise _unsupported("add_zero_attn=True")
    query, key, value, heads = a["query"], a["key"], a["value"], a["num_heads"]
    batched = query.dim() == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
    length, n, embed = query.shape
    source, head_dim = key.shape[0], embed // heads
    if a["use_separate_proj_weight"]:
        weights = (a["q_proj_weight"], a["k_proj_weight"], a["v_proj_weight"])
    else:
        weights = a["in_proj_weight"].chunk(3)
    biases = (None,) * 3 if a["in_proj_bias"] is None else a["in_proj_bias"].chunk(3)
    self_attention = not a["use_separate_proj_weight"] and query is key and key is value
    if self_attention and constant_weights:
        # Queries and keys by the first two thirds of the in_proj weight, off the backward path.
        qk_bias = None if a["in_proj_bias"] is None else a["in_proj_bias"][: 2 * embed]
        q, k = F.linear(query.detach(), a["in_proj_weight"][: 2 * embed], qk_bias).chunk(2, dim=-1)
        v = F.linear(value, weights[2], biases[2])
    elif self_attention:
        # Self-attention: one projection by the whole in_proj weight, as the fused kernel does.
        q, k, v = F.linear(query, a["in_proj_weight"], a["in_proj_bias"]).chunk(3, dim=-1)
    else:
        if constant_weights:
            query, key = query.detach(), key.detach()
        q, k, v = (F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))
    # (L, N, E) -> (N, heads, L, head_dim)
    q, k, v = (t.reshape(t.shape[0], n, heads, head_dim).permute(1, 2, 0, 3) for t in (q, k, v))
    mask = _merged_mask(a["attn_mask"], a["key_padding_mask"], a["is_causal"], n, heads, length, source, query)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(head_dim))
    if mask is not None:
        scores = scores + mask
    attention = torch.softmax(scores, dim=-1)
    _record(attention)
    if a["training"] and a["dropout_p"] > 0:
        attention = F.dropout(attention, a["dropout_p"])
    out = torch.matmul(attention, v).permute(2, 0, 1, 3).reshape(length, n, embed)
    out = F.linear(out, a["out_proj_weight"], a["out_proj_bias"])
    if not a["need_weights"]:  # torchvision's ViT asks for none: no head average to trace and explain
        return (out if batched else out.squeeze(1)), None
    averaged = attention.mean(dim=1) if a["average_attn_weights"] else attention
    if not batched:
        out, averaged = out.squeeze(1), averaged.squeeze(0)
    return out, averaged


def _merged_mask(attn_mask, key_padding_mask, is_causal, n, heads, length, source, like):
    """One additive mask ``(N, heads, L, S)`` (or broadcastable) from nn.MultiheadAttention's two masks."""
    if is_causal and attn_mask is None:
        raise ValueError("nn.MultiheadAttention needs attn_mask when is_causal=True")
    merged = None
    for mask, shape in ((attn_mask, None), (key_padding_mask, (n, 1, 1, source))):
        if mask is None:
            continue
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=like.dtype, device=like.device).masked_fill(mask, float("-inf"))
        mask = mask.to(like.dtype)
        if shape is not None:
            mask = mask.reshape(shape)
        elif mask.dim() == 3:  # (N * heads, L, S)
            mask = mask.reshape(n, heads, length, source)
        merged = mask if merged is None else merged + mask
    return merged


_REWRITES = {
    F.multi_head_attention_forward: multi_head_attention_forward,
    F.scaled_dot_product_attention: scaled_dot_product_attention,
}


#: Where the attention weights of the calls written out go, while :func:`unfused_attention` records them.
_RECORDERS: list[list] = []


def _record(weights: torch.Tensor) -> None:
    """Hand the softmax weights ``(N, heads, L, S)`` of one attention call to the innermost recorder."""
    if _RECORDERS and _RECORDERS[-1] is not None:
        _RECORDERS[-1].append(weights)


class _Unfused(TorchFunctionMode):
    def __init__(self, constant_weights: bool):
        super().__init__()
        self.constant_weights = constant_weights

    def __torch_function__(self, func, types, args=(), kwargs=None):
        rewrite = _REWRITES.get(func)
        if rewrite is not None:
            return rewrite(*args, **(kwargs or {}), constant_weights=self.constant_weights)
        return func(*args, **(kwargs or {}))


@contextmanager
def unfused_attention(record: list | None = None, constant_weights: bool = False):
    """Run ``F.multi_head_attention_forward`` and ``F.scaled_dot_product_attention`` as their separate calls.

    Enter it inside (after) the interceptors that should see those calls. ``record``, a list, receives
    the attention weights ``(N, heads, L, S)`` of every such call in forward order (attention rollout).
    ``constant_weights`` computes the attention weights from detached queries and keys (CP-LRP, Ali et
    al. 2022): no gradient flows through them, and their backward pass is never run.
    """
    _RECORDERS.append(record)
    try:
        with _Unfused(constant_weights):
            yield
    finally:
        _RECORDERS.pop()
