"""Lime against Captum's Lime with the same segmentation, masks, kernel and ridge model."""
import math
import warnings

import pytest
import torch
import torchvision
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import Lime as CaptumLime
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lime import cosine_distance_to_original
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

N_SAMPLES = 120


def _captum_weights(model, x, target, segments, masks, kernel_width=0.25):
    def perturb(inputs, **kwargs):
        for k in range(N_SAMPLES):
            yield masks[k : k + 1].long()

    def similarity(original, perturbed, interpretable, **kwargs):
        d = cosine_distance_to_original(interpretable.double().view(1, -1))[0].item()
        return math.exp(-d * d / (2 * kernel_width**2))

    lime = CaptumLime(model, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=similarity, perturb_func=perturb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights = lime.attribute(
            x, target=target, baselines=0.0, feature_mask=segments.view(1, 1, *segments.shape).long(),
            n_samples=N_SAMPLES, perturbations_per_eval=40, return_input_shape=False,
        )
    return weights.double().view(-1)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_segment_weights_match_captum(arch):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(2, seed=1)
    lime = nni.Lime(model, segmentation="grid", cell_size=7, n_samples=N_SAMPLES)
    generator = torch.Generator().manual_seed(4)
    masks = [torch.randint(0, 2, (N_SAMPLES, 16), generator=generator).double() for _ in range(2)]
    ours = lime.explain(x, target=[3, 8], masks=masks)
    for i, target in enumerate([3, 8]):
        theirs = _captum_weights(model, x[i : i + 1], target, ours.segments[i], masks[i])
        # Captum fits scikit-learn's Ridge in float32.
        torch.testing.assert_close(ours.weights[i], theirs, rtol=1e-4, atol=1e-7)


def test_segment_weights_match_captum_on_resnet18_with_slic_superpixels():
    model = seeded(lambda: torchvision.models.resnet18(weights=None), seed=0)
    # A smooth image, so that SLIC finds regions rather than noise.
    coarse = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
    lime = nni.Lime(model, segmentation="slic", n_segments=12, n_samples=N_SAMPLES)
    segments = lime.segment(x[0]).unsqueeze(0)
    count = int(segments.max()) + 1
    assert count >= 4
    masks = [torch.randint(0, 2, (N_SAMPLES, count), generator=torch.Generator().manual_seed(6)).double()]
    ours = lime.explain(x, target=7, masks=masks)
    torch.testing.assert_close(ours.segments, segments)
    theirs = _captum_weights(model, x, 7, segments[0], masks[0])
    torch.testing.assert_close(ours.weights[0], theirs, rtol=1e-4, atol=1e-7)


def test_recovers_the_segment_contributions_of_a_linear_model():
    # f(x) = Σ_s c_s · (sum of the pixels of segment s): switching segment s off removes c_s · mass_s.
    torch.manual_seed(0)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    segments = torch.as_tensor(nni.attribution.lime.grid_segments(8, 8, 4)).unsqueeze(0)
    contributions = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    pixel_weights = contributions[segments[0]].view(1, 64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.cat([pixel_weights, -pixel_weights]))
    explanation = nni.Lime(model, segmentation="grid", cell_size=4, n_samples=64, alpha=0.0).explain(
        x, target=0, segments=segments
    )
    mass = torch.stack([x[0, 0][segments[0] == s].sum() for s in range(4)])
    torch.testing.assert_close(explanation.weights[0], contributions * mass)
    torch.testing.assert_close(explanation.intercepts, torch.zeros(1, dtype=torch.float64), atol=1e-10, rtol=0)
