"""Occlusion against Captum's Occlusion on the same float64 models, windows, strides and baselines."""
import pytest
import torch
import torchvision
from captum.attr import Occlusion as CaptumOcclusion

import nn_interpretability as nni
from toy_models import ARCHITECTURES, mnist_like_batch, seeded



def assert_matches(ours, theirs):
    # Captum sums the drops in float64 but divides by the window count in float32 (its result is
    # float32 even for float64 models and inputs), so agreement is to float32 rounding, not to 1e-5.
    assert theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=1e-9)


SETTINGS = {
    "5x5 stride 2 (last window cut at the border)": ((1, 5, 5), (1, 2, 2), 0.0),
    "4x4 stride 3, scalar baseline": ((1, 4, 4), 3, 0.5),
    "3x3 stride 1, per-sample-shape baseline": ((1, 3, 3), None, "tensor"),
    "uneven strides": ((1, 6, 6), (1, 4, 5), 0.0),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_matches_captum(arch, setting):
    window, strides, baselines = SETTINGS[setting]
    if baselines == "tensor":
        baselines = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(3, seed=1)
    target = [0, 4, 7]
    ours = nni.Occlusion(model).attribute(
        x, target=target, sliding_window_shapes=window, strides=strides, baselines=baselines, perturbations_per_eval=7
    )
    theirs = CaptumOcclusion(model).attribute(
        x, target=target, sliding_window_shapes=window, strides=strides or 1, baselines=baselines
    )
    assert_matches(ours, theirs)


def test_matches_captum_on_resnet18_with_per_sample_baselines():
    model = seeded(lambda: torchvision.models.resnet18(weights=None), seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    baselines = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    kwargs = {"target": [1, 500], "sliding_window_shapes": (3, 16, 16), "strides": (3, 12, 12), "baselines": baselines}
    assert_matches(nni.Occlusion(model).attribute(x, **kwargs), CaptumOcclusion(model).attribute(x, **kwargs))


def test_probability_output_is_the_drop_of_the_softmax_probability():
    model = ARCHITECTURES["mnist_cnn"](seed=2)
    x = mnist_like_batch(2, seed=2)
    window = (1, 28, 28)  # one window covering everything: the map is the drop everywhere
    drop = nni.Occlusion(model).attribute(x, target=3, sliding_window_shapes=window, output="probability")
    expected = model(x).softmax(1)[:, 3] - model(torch.zeros_like(x)).softmax(1)[:, 3]
    torch.testing.assert_close(drop, expected.detach().view(2, 1, 1, 1).expand_as(x))


def test_probability_output_matches_captum_on_the_softmax():
    model = ARCHITECTURES["nested_functional"](seed=3)
    x = mnist_like_batch(2, seed=3)
    kwargs = {"target": [1, 6], "sliding_window_shapes": (1, 7, 7), "strides": (1, 3, 3), "baselines": 0.5}
    ours = nni.Occlusion(model).attribute(x, output="probability", **kwargs)
    assert_matches(ours, CaptumOcclusion(lambda inputs: model(inputs).softmax(1)).attribute(x, **kwargs))
