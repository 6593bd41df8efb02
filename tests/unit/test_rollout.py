"""Attention rollout against a hand computation from the weights torch's own attention kernel returns."""
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import nn_interpretability as nni
from test_core import _state, assert_same_state


def _vit(image_size=32, patch_size=8, layers=2):
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(
        image_size=image_size, patch_size=patch_size, num_layers=layers, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=4
    ).double()
    return model.eval()


def _x(n=3, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _kernel_weights(model, x):
    """Each nn.MultiheadAttention's per-head weights (N, heads, L, L) from torch's fused kernel."""
    weights = []

    def hook(module, args, output):
        weights.append(nn.MultiheadAttention.forward(module, *args[:3], need_weights=True, average_attn_weights=False)[1])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return weights


def _hand_rollout(weights, fuse, residual=0.5, discard=0.0):
    rollout = torch.eye(weights[0].shape[-1], dtype=torch.float64).expand(weights[0].shape[0], -1, -1)
    for attention in weights:
        fused = fuse(attention)
        if discard:
            k = int(fused.shape[-1] * discard)
            threshold = fused.sort(-1).values[..., k - 1 : k]
            fused = torch.where(fused <= threshold, 0.0, fused)
        mixed = (1 - residual) * fused + residual * torch.eye(fused.shape[-1], dtype=torch.float64)
        rollout = (mixed / mixed.sum(-1, keepdim=True)) @ rollout
    return rollout


@pytest.mark.parametrize(
    "fusion, fuse", [("mean", lambda a: a.mean(1)), ("max", lambda a: a.amax(1)), ("min", lambda a: a.amin(1))]
)
def test_rollout_equals_the_hand_computation_from_the_kernels_weights(fusion, fuse):
    model, x = _vit(), _x()
    before = _state(model)
    maps = nni.AttentionRollout(model, head_fusion=fusion).attribute(x, upsample_to_input=False)
    assert_same_state(before, _state(model))
    expected = _hand_rollout(_kernel_weights(model, x), fuse)[:, 0, 1:].reshape(3, 1, 4, 4)
    torch.testing.assert_close(maps, expected)


def test_discarding_the_smallest_weights_and_the_residual_share():
    model, x = _vit(), _x()
    maps = nni.AttentionRollout(model, residual=0.3, discard_ratio=0.25).attribute(x, upsample_to_input=False)
    expected = _hand_rollout(_kernel_weights(model, x), lambda a: a.mean(1), residual=0.3, discard=0.25)
    torch.testing.assert_close(maps, expected[:, 0, 1:].reshape(3, 1, 4, 4))


def test_rollout_is_upsampled_to_the_input_and_the_same_for_every_target():
    model, x = _vit(), _x()
    rollout = nni.AttentionRollout(model)
    maps = rollout.attribute(x, target=0)
    assert maps.shape == (3, 1, 32, 32)
    torch.testing.assert_close(maps, rollout.attribute(x, target=3))
    small = rollout.attribute(x, upsample_to_input=False)
    torch.testing.assert_close(maps, F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False))


class _SDPAViT(nn.Module):
    """Patch embedding, a class token and one block of scaled dot-product attention, written with F.*."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, 8, 8, 8)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.qkv, self.head = nn.Linear(8, 24), nn.Linear(8, 2)

    def forward(self, x):
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.patch(x).flatten(2).transpose(1, 2)], 1)
        q, k, v = (t.unsqueeze(1) for t in self.qkv(tokens).chunk(3, -1))
        self.weights = torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, -1)  # for the test
        return self.head(F.scaled_dot_product_attention(q, k, v)[:, 0, 0])


def test_rollout_reads_scaled_dot_product_attention():
    model, x = _SDPAViT().double().eval(), _x(2)
    maps = nni.AttentionRollout(model).attribute(x, upsample_to_input=False)
    expected = _hand_rollout([model.weights], lambda a: a.mean(1))[:, 0, 1:].reshape(2, 1, 4, 4)
    torch.testing.assert_close(maps, expected)


def test_a_model_without_attention_and_bad_settings_are_refused():
    cnn = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(2)).double()
    cnn(_x(1))
    with pytest.raises(ValueError, match="no nn.MultiheadAttention or F.scaled_dot_product_attention"):
        nni.AttentionRollout(cnn.eval()).attribute(_x(1))
    with pytest.raises(ValueError, match="head_fusion must be one of"):
        nni.AttentionRollout(cnn, head_fusion="sum")
    with pytest.raises(ValueError, match="discard_ratio must be a number in"):
        nni.AttentionRollout(cnn, discard_ratio=1.0)
