"""CAM, Grad-CAM, Guided Grad-CAM: layers by name, the models CAM refuses, errors.

Batching, targets, dtypes and model state (no hooks left behind) of every registered method:
``tests/contract``."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.models import GAPCNN
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


def _gap():
    return seeded(lambda: GAPCNN(map_size=3))


def test_grad_cam_on_nested_functional_models_and_raw_resolution():
    model = ARCHITECTURES["nested_functional"]()
    maps = nni.GradCAM(model, "blocks.1.conv").attribute(mnist_like_batch(2), target=3, upsample=False)
    assert maps.shape == (2, 1, 14, 14) and (maps >= 0).all()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda m: nni.GradCAM(m, "features.99"), "no layer named"),
        (lambda m: nni.CAM(m, "features.10", "features.9"), "must be the nn.Linear"),
        (lambda m: nni.CAM(m, "features.3", "fc"), "expects 64"),
        (lambda m: nni.GradCAM(m, "fc"), "feature maps"),
    ],
)
def test_bad_layers_are_clear_errors(make, match):
    model = _gap()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        make(model).attribute(mnist_like_batch(2), target=1)
    assert_same_state(before, _state(model))


def test_target_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="out of range"):
        nni.GradCAM(_gap(), "features.10").attribute(mnist_like_batch(2), target=10)


class _PooledHead(nn.Module):
    """conv → pooling → fc (→ ReLU → fc): CAM is defined only with average pooling into the last layer."""

    def __init__(self, pool, two_layers: bool):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.pool = pool
        self.fc = nn.Linear(4, 10)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(10, 10)) if two_layers else nn.Identity()

    def forward(self, x):
        return self.out(self.fc(self.pool(self.features(x)).flatten(1)))


@pytest.mark.parametrize(
    "pool, two_layers, match",
    [
        (nn.AdaptiveMaxPool2d(1), False, "not the global average"),
        (nn.AdaptiveAvgPool2d(1), True, "not the model's class scores"),
    ],
)
def test_cam_refuses_models_it_is_not_defined_for(pool, two_layers, match):
    torch.manual_seed(0)
    model = _PooledHead(pool, two_layers).double().eval()
    with pytest.raises(ValueError, match=match):
        nni.CAM(model, "features", "fc").attribute(mnist_like_batch(2))
    with pytest.raises(ValueError, match="not the global average"):  # the maps before the ReLU
        nni.CAM(model, "features.0", "fc").attribute(mnist_like_batch(2))
    assert nni.CAM(_PooledHead(nn.AdaptiveAvgPool2d(1), False).double().eval(), "features", "fc").attribute(
        mnist_like_batch(2)
    ).shape == (2, 1, 28, 28)
