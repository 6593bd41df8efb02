"""SmoothGrad against Captum's NoiseTunnel fed the same noise, and the properties the noise must have."""
import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIntegratedGradients
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.integrated_gradients import IntegratedGradients
from nn_interpretability.attribution.noise_tunnel import SmoothGrad
from toy_models import ARCHITECTURES, mnist_like_batch

NT_TYPES = ["smoothgrad", "smoothgrad_sq", "vargrad"]


def _standard_noise(nt_samples, x, seed=3):
    return torch.randn(nt_samples, *x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)


def _feed_captum(monkeypatch, z):
    """Make Captum's ``torch.normal(0, std)`` return our draws ``z`` scaled by its ``std``.

    Captum lays out the noisy copies of one partition as ``sample * partition + copy`` and draws the
    partitions in order; ours are ``z[copy, sample]``.
    """
    used = 0

    def normal(mean, std):
        nonlocal used
        partition = std.shape[0] // z.shape[1]
        draws = z[used : used + partition].transpose(0, 1).reshape(std.shape)
        used += partition
        return mean + draws * std.to(z.dtype)

    monkeypatch.setattr(torch, "normal", normal)
    return lambda: used


def _value_range(x):
    flat = x.flatten(1)
    return flat.amax(1) - flat.amin(1)


@pytest.mark.parametrize("nt_type", NT_TYPES)
@pytest.mark.parametrize("arch", ["mnist_cnn", "residual_bn"])
def test_saliency_matches_captum_noise_tunnel(monkeypatch, nt_type, arch):
    model = ARCHITECTURES[arch](seed=1)
    x = mnist_like_batch(3, seed=1) * torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64).view(3, 1, 1, 1)
    target = torch.tensor([0, 4, 7])
    z = _standard_noise(5, x)
    sigma = 0.25  # Captum's absolute σ, one for the batch: ours is a fraction of each sample's range
    ours = SmoothGrad(
        nni.Saliency(model), nt_type=nt_type, nt_samples=5, stdevs=sigma / _value_range(x), internal_batch_size=2
    ).attribute(x, target=target, noise=z)
    used = _feed_captum(monkeypatch, z)
    captum = NoiseTunnel(CaptumSaliency(model)).attribute(
        x, nt_type=nt_type, nt_samples=5, nt_samples_batch_size=2, stdevs=sigma, target=target, abs=False
    )
    assert used() == 5
    torch.testing.assert_close(ours, captum)


@pytest.mark.parametrize("nt_type", NT_TYPES)
def test_integrated_gradients_matches_captum_noise_tunnel(monkeypatch, nt_type):
    model = ARCHITECTURES["residual_bn"](seed=2)
    x = mnist_like_batch(2, seed=2)
    baselines = mnist_like_batch(2, seed=9) * 0.5
    target = [3, 8]
    z = _standard_noise(4, x)
    sigma = 0.125
    smoothgrad = SmoothGrad(IntegratedGradients(model), nt_type=nt_type, nt_samples=4, stdevs=sigma / _value_range(x))
    ours = smoothgrad.attribute(x, target=target, noise=z, baselines=baselines, n_steps=6, method="riemann_middle")
    _feed_captum(monkeypatch, z)
    captum = NoiseTunnel(CaptumIntegratedGradients(model)).attribute(
        x, nt_type=nt_type, nt_samples=4, stdevs=sigma, target=target, baselines=baselines, n_steps=6,
        method="riemann_middle",
    )
    torch.testing.assert_close(ours, captum)


def test_scalar_stdevs_scale_with_each_samples_range(monkeypatch):
    # stdevs = 0.15 means σ_i = 0.15 (max x_i - min x_i): Captum, run one sample at a time with that σ_i.
    model = ARCHITECTURES["mnist_cnn"](seed=3)
    x = mnist_like_batch(2, seed=3) * torch.tensor([1.0, 3.0], dtype=torch.float64).view(2, 1, 1, 1)
    z = _standard_noise(4, x)
    ours = SmoothGrad(nni.Saliency(model), nt_samples=4, stdevs=0.15).attribute(x, target=[2, 5], noise=z)
    for i, t in enumerate([2, 5]):
        _feed_captum(monkeypatch, z[:, i : i + 1])
        captum = NoiseTunnel(CaptumSaliency(model)).attribute(
            x[i : i + 1], nt_samples=4, stdevs=0.15 * _value_range(x)[i].item(), target=t, abs=False
        )
        torch.testing.assert_close(ours[i : i + 1], captum)


class _InputMap(nni.Attribution):
    """A stand-in attribution whose map is its input, recording the targets it is asked for."""

    def __init__(self, model):
        super().__init__(model)
        self.targets = []

    def _attribute(self, run):
        self.targets.append(run.target)
        return run.inputs.clone()


def _linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()


def test_noise_is_gaussian_with_sigma_a_fraction_of_each_samples_range():
    x = torch.stack([torch.linspace(0, 1, 12), torch.linspace(-2, 2, 12)]).double().view(2, 3, 4)
    method = _InputMap(_linear_model())
    smoothgrad = SmoothGrad(method, nt_type="smoothgrad", nt_samples=4000, stdevs=0.2).attribute(x)
    variance = SmoothGrad(method, nt_type="vargrad", nt_samples=4000, stdevs=0.2).attribute(x)
    sigma = torch.tensor([0.2 * 1.0, 0.2 * 4.0], dtype=torch.float64)
    # The noise is centred, of variance σ_i² on every element, independent of the value: a mean of
    # 4000 draws lies within 4σ/√4000 of x, the variance within 10 % of σ².
    assert ((smoothgrad - x).abs() < 4 * sigma.view(2, 1, 1) / 4000**0.5).all()
    ratio = variance / sigma.view(2, 1, 1) ** 2
    assert ((ratio > 0.9) & (ratio < 1.1)).all()


def test_injected_noise_is_scaled_and_added():
    x = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = _standard_noise(3, x)
    method = _InputMap(_linear_model())
    result = SmoothGrad(method, nt_samples=3, stdevs=0.1).attribute(x, noise=z)
    sigma = 0.1 * _value_range(x).view(2, 1, 1)
    torch.testing.assert_close(result, (x + sigma * z).mean(0))


def test_target_is_resolved_once_on_the_clean_input():
    model = _linear_model()
    x = torch.rand(3, 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    method = _InputMap(model)
    # σ of ten ranges: the noisy copies are predicted as anything, the target must not follow them.
    SmoothGrad(method, nt_samples=7, stdevs=10.0, internal_batch_size=3).attribute(x)
    predicted = model(x).argmax(1)
    assert [t.tolist() for t in method.targets] == [predicted.repeat(k).tolist() for k in (3, 3, 1)]


def test_wraps_integrated_gradients_with_baselines_forwarded():
    model = ARCHITECTURES["nested_functional"](seed=4)
    x = mnist_like_batch(3, seed=4)
    baselines = mnist_like_batch(3, seed=6)
    z = _standard_noise(3, x)
    ig = IntegratedGradients(model)
    result = SmoothGrad(ig, nt_samples=3, stdevs=0.1, internal_batch_size=2).attribute(
        x, target=1, noise=z, baselines=baselines, n_steps=5
    )
    sigma = 0.1 * _value_range(x).view(3, 1, 1, 1)
    expected = torch.stack([ig.attribute(x + sigma * z[k], target=1, baselines=baselines, n_steps=5) for k in range(3)])
    torch.testing.assert_close(result, expected.mean(0))
