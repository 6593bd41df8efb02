"""The Grad-CAM family: properties each variant must have, batching, errors."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.models import GAPCNN
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

GRADIENT_VARIANTS = ["GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM"]
ALL_VARIANTS = GRADIENT_VARIANTS + ["EigenCAM", "ScoreCAM", "AblationCAM"]


@pytest.fixture(scope="module")
def gap():
    return seeded(lambda: GAPCNN(map_size=3))


def _activation(model, layer, x):
    store = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda module, args, out: store.update(a=out))
    with torch.no_grad():
        model(x)
    handle.remove()
    return store["a"]


def test_hires_cam_is_grad_cam_when_the_gradient_is_constant_over_positions(gap):
    x, target = mnist_like_batch(3), [1, 4, 7]
    layer = gap.features[-1]
    hires = nni.HiResCAM(gap, layer, relu_attributions=False).attribute(x, target=target, upsample=False)
    grad_cam = nni.GradCAM(gap, layer, relu_attributions=False).attribute(x, target=target, upsample=False)
    torch.testing.assert_close(hires, grad_cam)
    # LayerCAM keeps the positive gradients only: on the GAP head, the channels with w_c^k > 0.
    a = _activation(gap, "features.10", x)
    w = gap.fc.weight.detach()[target].clamp(min=0) / 9
    expected = torch.einsum("nk,nkhw->nhw", w, a).clamp(min=0)
    torch.testing.assert_close(nni.LayerCAM(gap, layer).attribute(x, target=target, upsample=False)[:, 0], expected)


def test_xgrad_cam_weights_are_the_activation_weighted_gradient(gap):
    # On the GAP head the gradient is w_c^k / (h w) everywhere, so XGrad-CAM's weight is w_c^k / (h w) Σ A / (Σ A + 1e-7).
    x, target = mnist_like_batch(2, seed=3), [2, 5]
    a = _activation(gap, "features.10", x)
    total = a.flatten(2).sum(2)
    weights = gap.fc.weight.detach()[target] / 9 * total / (total + 1e-7)
    expected = torch.einsum("nk,nkhw->nhw", weights, a)
    ours = nni.XGradCAM(gap, "features.10", relu_attributions=False).attribute(x, target=target, upsample=False)
    torch.testing.assert_close(ours[:, 0], expected)


def test_eigen_cam_does_not_depend_on_the_target_and_is_the_principal_component():
    model, x = ARCHITECTURES["mnist_cnn"](seed=1), mnist_like_batch(3, seed=1)
    method = nni.EigenCAM(model, "features.3", relu_attributions=False)
    first, second = method.attribute(x, target=[0, 1, 2], upsample=False), method.attribute(x, target=[9, 8, 7], upsample=False)
    torch.testing.assert_close(first, second)
    a = _activation(model, "features.3", x).flatten(2).transpose(1, 2)
    centred = a - a.mean(1, keepdim=True)
    v = torch.linalg.svd(centred, full_matrices=False).Vh[:, 0]
    projection = torch.einsum("npk,nk->np", centred, v).view_as(first[:, 0])
    # Up to the sign the decomposition leaves free.
    sign = torch.sign((projection * first[:, 0]).flatten(1).sum(1)).view(-1, 1, 1)
    torch.testing.assert_close(first[:, 0], projection * sign)


@pytest.mark.parametrize("name", ["ScoreCAM", "AblationCAM"])
def test_perturbation_variants_give_the_same_maps_at_every_batch_size(name):
    model, x = ARCHITECTURES["mnist_cnn"](seed=2), mnist_like_batch(3, seed=2)
    method = getattr(nni, name)(model, "features.5")
    reference = method.attribute(x, target=[1, 2, 3], internal_batch_size=1, show_progress=False)
    for size in (4, 7, 1000, None):
        torch.testing.assert_close(method.attribute(x, target=[1, 2, 3], internal_batch_size=size, show_progress=False), reference)
    assert reference.abs().max() > 0


def test_ablation_cam_is_the_relative_score_drop_of_each_zeroed_channel(gap):
    x, target = mnist_like_batch(2, seed=4), [3, 6]
    a = _activation(gap, "features.10", x)
    scores = gap(x).detach()[[0, 1], target]
    # With the GAP head, zeroing channel k lowers the score by w_c^k mean(A^k).
    drop = gap.fc.weight.detach()[target] * a.flatten(2).mean(2)
    expected = torch.einsum("nk,nkhw->nhw", drop / scores[:, None], a)
    ours = nni.AblationCAM(gap, "features.10", relu_attributions=False).attribute(x, target=target, upsample=False)
    torch.testing.assert_close(ours[:, 0], expected)


def test_ablation_cam_falls_back_to_full_forwards_when_the_model_fixes_its_batch_size():
    class FixedBatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 26 * 26, 3)

        def forward(self, x):
            n = x.shape[0]  # read before the layer: copies after it do not fit
            return self.fc(torch.relu(self.conv(x)).reshape(n, -1)[:, : 4 * 26 * 26])

    model, x = seeded(FixedBatch), mnist_like_batch(2, seed=5)
    ours = nni.AblationCAM(model, "conv", relu_attributions=False).attribute(x, target=[0, 2], upsample=False)
    a = torch.relu(_activation(model, "conv", x))
    with torch.no_grad():
        scores = model(x)[[0, 1], [0, 2]]
        weights = torch.stack([
            torch.stack([(scores[i] - model.fc(a[i : i + 1].clone().index_fill_(1, torch.tensor([k]), 0).flatten(1))[0, [0, 2][i]]) / scores[i] for k in range(4)])
            for i in range(2)
        ])  # fmt: skip
    expected = torch.einsum("nk,nkhw->nhw", weights, _activation(model, "conv", x))
    torch.testing.assert_close(ours[:, 0], expected)


def _vit():
    import torchvision

    def build():
        vit = torchvision.models.VisionTransformer(
            image_size=16, patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=5
        )
        nn.init.normal_(vit.heads.head.weight)
        return vit

    return seeded(build)


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_variants_read_vit_tokens_and_a_batch_equals_its_items(name):
    model = _vit()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    method = getattr(nni, name)(model, "encoder.layers.encoder_layer_0.ln_1")
    maps = method.attribute(x, target=[0, 1, 2], upsample=False)
    assert maps.shape == (3, 1, 4, 4)
    assert method.attribute(x, target=[0, 1, 2]).shape == (3, 1, 16, 16)
    for i in range(3):
        torch.testing.assert_close(method.attribute(x[i : i + 1], target=[i], upsample=False), maps[i : i + 1])


def test_full_grad_sums_its_terms_and_refuses_what_it_cannot_explain(gap):
    x = mnist_like_batch(2, seed=6)
    maps = nni.FullGrad(gap).attribute(x, target=[0, 1])
    # One term per input channel and per channel of each biased layer, each scaled to [0, 1], then summed.
    channels = sum(m.out_channels for m in gap.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    assert maps.shape == (2, 1, 28, 28) and 0 < maps.min() and maps.max() <= 1 + channels
    with pytest.raises(TypeError, match="takes no layer"):
        nni.FullGrad(gap, layer="features.0")
    no_bias = seeded(lambda: nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.Flatten(), nn.Linear(2 * 26 * 26, 3)))
    with pytest.raises(ValueError, match="has none"):
        nni.FullGrad(no_bias).attribute(x)


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_errors_name_the_problem(name):
    dense = seeded(lambda: nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        getattr(nni, name)(dense, "1").attribute(torch.rand(2, 12, dtype=torch.float64))
    model = ARCHITECTURES["mnist_cnn"](seed=0)
    with pytest.raises((ValueError, KeyError, AttributeError), match="no_such_layer"):
        getattr(nni, name)(model, "no_such_layer")
    with pytest.raises(ValueError, match="feature maps"):
        getattr(nni, name)(model, "classifier.3").attribute(mnist_like_batch(2))


def test_score_cam_scores_dead_channels_with_one_black_forward_per_sample():
    # Channels 0-4 of features.6 are dead (ReLU of a negative constant): their normalised mask is 0, the
    # masked input black. The map must equal Score-CAM written out, with 5 forwards fewer per sample.
    model, x, target = ARCHITECTURES["mnist_cnn"](seed=3), mnist_like_batch(3, seed=3), [1, 4, 7]
    with torch.no_grad():
        model.features[5].weight[:5] = 0
        model.features[5].bias[:5] = -1
    a = _activation(model, "features.6", x)
    masks = torch.nn.functional.interpolate(a, size=(28, 28), mode="bilinear", align_corners=True)
    low, high = masks.amin((2, 3), keepdim=True), masks.amax((2, 3), keepdim=True)
    masks = (masks - low) / (high - low + 1e-8)
    with torch.no_grad():
        scores = torch.stack([model(x[i] * masks[i, :, None])[:, target[i]] for i in range(3)])
    expected = torch.einsum("nk,nkhw->nhw", scores.softmax(1), a).clamp(min=0)

    rows = []
    handle = model.register_forward_hook(lambda module, args, out: rows.append(len(args[0])))
    try:
        ours = nni.ScoreCAM(model, "features.6").attribute(x, target=target, upsample=False, show_progress=False)
    finally:
        handle.remove()
    torch.testing.assert_close(ours[:, 0], expected)
    # One forward of the batch (the target), one of the three black inputs, one per varying channel.
    constant = (high == low).flatten(1)
    assert constant[:, :5].all() and sum(rows) == 3 + 3 + int((~constant).sum())
