"""Any model output and any inputs: targets (index tuples, regions, regressions, callables, every class),
tuple inputs and ``additional_forward_args``, against Captum on seeded float64 nets and against the
methods' properties (completeness, conservation, summation-to-delta)."""
import pytest
import torch
from captum.attr import DeepLift as CaptumDeepLift
from captum.attr import IntegratedGradients as CaptumIntegratedGradients
from captum.attr import Occlusion as CaptumOcclusion
from captum.attr import Saliency as CaptumSaliency
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import Epsilon
from nn_interpretability.targets import ClassScore, Regression, SegmentationRegion, TokenScore


def _segmenter():
    """A fully convolutional net: (N, 1, 8, 8) -> per-pixel scores of 3 classes (N, 3, 8, 8)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(4, 3, 1)
    ).double().eval()


def _regressor():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 1)).double().eval()


def _batch(n=3):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


CAPTUM = {
    "saliency": (lambda m: nni.Saliency(m), lambda m: CaptumSaliency(m), {}, {"abs": False}),
    "integrated-gradients": (
        lambda m: nni.IntegratedGradients(m),
        lambda m: CaptumIntegratedGradients(m),
        {"n_steps": 6},
        {"n_steps": 6},
    ),
    "deeplift": (lambda m: nni.DeepLift(m), lambda m: CaptumDeepLift(m), {}, {}),
    "occlusion": (
        lambda m: nni.Occlusion(m),
        lambda m: CaptumOcclusion(m),
        {"sliding_window_shapes": (1, 2, 2), "strides": 2},
        {"sliding_window_shapes": (1, 2, 2), "strides": 2},
    ),
}


@pytest.mark.parametrize("name", sorted(CAPTUM))
@pytest.mark.parametrize("target", [(1, 2, 5), [(0, 0, 0), (2, 7, 7), (1, 3, 4)]])
def test_index_targets_match_captum(name, target):
    ours, theirs, kwargs, captum_kwargs = CAPTUM[name]
    model, x = _segmenter(), _batch()
    expected = theirs(model).attribute(x, target=target, **captum_kwargs).double()  # Captum's Occlusion sums in float32
    torch.testing.assert_close(ours(model).attribute(x, target=target, **kwargs), expected)


class _Conditioned(nn.Module):
    """Scores of 3 classes from an input and a conditioning vector (an additional forward argument)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.a, self.c, self.b, self.relu = nn.Linear(6, 8), nn.Linear(2, 8), nn.Linear(8, 3), nn.ReLU()

    def forward(self, x, condition, scale=1.0):
        return self.b(self.relu(self.a(x) + self.c(condition))) * scale


@pytest.mark.parametrize("name", sorted(CAPTUM))
def test_additional_forward_args_match_captum_also_in_chunked_and_perturbed_calls(name):
    ours, theirs, kwargs, captum_kwargs = CAPTUM[name]
    model = _Conditioned().double().eval()
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    condition = torch.rand(4, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    kwargs = {**kwargs, "sliding_window_shapes": (2,)} if name == "occlusion" else dict(kwargs)
    captum_kwargs = {**captum_kwargs, "sliding_window_shapes": (2,)} if name == "occlusion" else dict(captum_kwargs)
    chunking = {"integrated-gradients": "internal_batch_size", "occlusion": "perturbations_per_eval"}
    if name in chunking:
        kwargs[chunking[name]] = captum_kwargs[chunking[name]] = 5 if name == "integrated-gradients" else 2
    extra = (condition, 2.0)
    expected = theirs(model).attribute(x, target=[0, 1, 2, 1], additional_forward_args=extra, **captum_kwargs).double()
    maps = ours(model).attribute(x, target=[0, 1, 2, 1], additional_forward_args=extra, **kwargs)
    torch.testing.assert_close(maps, expected)


def test_additional_forward_args_follow_their_samples_through_smoothgrad_and_every_class():
    model = _Conditioned().double().eval()
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    extra = torch.rand(3, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ig = nni.IntegratedGradients(model)
    plain = ig.attribute(x, target=1, additional_forward_args=extra, n_steps=4)
    smooth = nni.SmoothGrad(ig, nt_samples=3, stdevs=0.0, internal_batch_size=2)
    torch.testing.assert_close(smooth.attribute(x, target=1, additional_forward_args=extra, n_steps=4), plain)
    every = ig.attribute(x, target="all", additional_forward_args=extra, n_steps=4)
    torch.testing.assert_close(every[:, 1], plain)


METHODS = {
    "saliency": (lambda m: nni.Saliency(m), {}),
    "input-x-gradient": (lambda m: nni.InputXGradient(m), {}),
    "guided-backprop": (lambda m: nni.GuidedBackprop(m), {}),
    "integrated-gradients": (lambda m: nni.IntegratedGradients(m), {"n_steps": 5}),
    "deeplift": (lambda m: nni.DeepLift(m), {}),
    "deeplift-reveal-cancel": (lambda m: nni.DeepLift(m, rule="reveal_cancel"), {}),
    "lrp": (lambda m: nni.LRP(m, rule=Epsilon(1e-9)), {}),
    "occlusion": (lambda m: nni.Occlusion(m), {"sliding_window_shapes": (1, 4, 4), "strides": 4}),
    "smoothgrad": (lambda m: nni.SmoothGrad(nni.Saliency(m), nt_samples=3), {}),
    "grad-cam": (lambda m: nni.GradCAM(m, "features.3"), {}),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_class_equals_one_call_per_class(name):
    from toy_models import mnist_cnn, mnist_like_batch

    build, kwargs = METHODS[name]
    model, x = mnist_cnn(), mnist_like_batch(3)
    method = build(model)
    every = method.attribute(x, target="all", **kwargs)
    assert every.shape[:2] == (3, 10)
    for c in range(10):
        # Equal up to the summation order of a larger batch (float64).
        torch.testing.assert_close(every[:, c], method.attribute(x, target=c, **kwargs), rtol=1e-10, atol=1e-15)
    classes = torch.tensor([[3, 1], [0, 9], [5, 5]])
    chosen = method.attribute(x, target=classes, **kwargs)
    torch.testing.assert_close(chosen[:, 0], method.attribute(x, target=[3, 0, 5], **kwargs), rtol=1e-10, atol=1e-15)


def test_every_class_returns_deltas_per_class():
    from toy_models import mnist_cnn, mnist_like_batch

    maps, delta = nni.DeepLift(mnist_cnn()).attribute(mnist_like_batch(2), target="all", return_convergence_delta=True)
    assert maps.shape == (2, 10, 1, 28, 28) and delta.shape == (2, 10)
    assert delta.abs().max() < 1e-10


def _region():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:6, 1:5] = True
    return SegmentationRegion(2, mask)


@pytest.mark.parametrize(
    "target",
    [
        _region(),
        (1, 3, 3),
        lambda output: output[:, 0, :4].flatten(1).sum(1) - output[:, 1, 4:].flatten(1).sum(1),
    ],
    ids=["region", "index", "callable"],
)
def test_lrp_conserves_and_deeplift_sums_to_delta_for_linear_targets(target):
    x = _batch()
    # LRP-0 conserves exactly on a bias-free net without padding (padding and biases absorb relevance).
    torch.manual_seed(4)
    dense = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 3 * 64, bias=False), nn.Unflatten(1, (3, 8, 8))
    ).double().eval()
    with torch.no_grad():
        output = dense(x)
    scalar = nni.core.targets.as_selector(target, output)(output)
    relevance, lrp_delta = nni.LRP(dense, rule=Epsilon(1e-12, bias=False)).attribute(
        x, target=target, return_convergence_delta=True
    )
    torch.testing.assert_close(relevance.flatten(1).sum(1), scalar)
    assert lrp_delta.abs().max() < 1e-9 * scalar.abs().max()
    model = _segmenter()
    with torch.no_grad():
        select = nni.core.targets.as_selector(target, model(x))
        change = select(model(x)) - select(model(torch.zeros_like(x)))
    for rule in ("rescale", "reveal_cancel"):
        contributions, delta = nni.DeepLift(model, rule=rule).attribute(x, target=target, return_convergence_delta=True)
        torch.testing.assert_close(contributions.flatten(1).sum(1), change)
        assert delta.abs().max() < 1e-10


def test_region_target_is_the_masked_sum_of_the_class_scores():
    model, x = _segmenter(), _batch()
    region = _region()
    maps = nni.Saliency(model).attribute(x, target=region)
    xx = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((model(xx)[:, 2] * region.mask).sum(), xx)
    torch.testing.assert_close(maps, expected)
    per_sample = SegmentationRegion(2, region.mask.expand(3, 8, 8).clone())
    torch.testing.assert_close(nni.Saliency(model).attribute(x, target=per_sample), expected)


def test_regression_output_is_explained_by_default():
    model, x = _regressor(), _batch()
    xx = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model(xx).sum(), xx)
    torch.testing.assert_close(nni.Saliency(model).attribute(x), expected)
    torch.testing.assert_close(nni.Saliency(model).attribute(x, target=Regression()), expected)
    ig, delta = nni.IntegratedGradients(model).attribute(x, n_steps=50, return_convergence_delta=True)
    assert delta.abs().max() < 1e-2 * model(x).abs().max()  # quadrature error of a ReLU net at 50 steps
    expected_ig = CaptumIntegratedGradients(model).attribute(x, target=0, n_steps=50)
    torch.testing.assert_close(ig, expected_ig)


def test_token_score_is_an_index_at_a_position():
    torch.manual_seed(0)
    embed = nn.Sequential(nn.Flatten(), nn.Linear(6, 4 * 5)).double()
    model = nn.Sequential(embed, nn.Unflatten(1, (4, 5)))  # (N, T=4, V=5)
    x = torch.rand(2, 6, dtype=torch.float64)
    torch.testing.assert_close(
        nni.Saliency(model).attribute(x, target=TokenScore([1, 3])),
        nni.Saliency(model).attribute(x, target=[(3, 1), (3, 3)]),
    )


@pytest.mark.parametrize(
    "model, target, error, match",
    [
        (_segmenter(), (1, 2), ValueError, r"target index \(1, 2\) has 2 entries but each sample's output has shape \(3, 8, 8\)"),
        (_segmenter(), (3, 0, 0), ValueError, r"out of range"),
        (_segmenter(), [(0, 0, 0)], ValueError, "1 index tuples but the batch has N = 3"),
        (_segmenter(), lambda output: output.sum(), ValueError, r"one scalar per sample, shape \(3,\)"),
        (_segmenter(), lambda output: output[:, 0], ValueError, r"returned \(3, 8, 8\)"),
        (_segmenter(), 1, ValueError, "a class target needs class scores"),
        (_segmenter(), None, ValueError, r"not class scores \(N, C\): give target=\(c, i, \.\.\.\)"),
        (_segmenter(), SegmentationRegion(5), ValueError, "class 5 out of range"),
        (_segmenter(), SegmentationRegion(1, torch.ones(4, 4)), ValueError, "region mask has shape"),
        (_regressor(), Regression(3), ValueError, "does not fit"),
        (_regressor(), "every", ValueError, "only string target is 'all'"),
        (_segmenter(), "all", ValueError, "target='all' needs class scores"),
    ],
)
def test_bad_targets_are_clear_errors(model, target, error, match):
    with pytest.raises(error, match=match):
        nni.Saliency(model).attribute(_batch(), target=target)


def test_bad_additional_forward_args_are_clear_errors():
    model = _Conditioned().double().eval()
    with pytest.raises(ValueError, match="has 2 rows but the batch has N = 4"):
        nni.Saliency(model).attribute(torch.rand(4, 6, dtype=torch.float64), target=0, additional_forward_args=torch.rand(2, 2))


def test_class_only_methods_refuse_other_targets():
    from nn_interpretability.models import GAPCNN

    torch.manual_seed(0)
    model = GAPCNN(map_size=3).double().eval()
    with pytest.raises(TypeError, match="CAM explains one class score per sample"):
        nni.CAM(model, "features.10", "fc").attribute(torch.rand(2, 1, 28, 28, dtype=torch.float64), target=lambda y: y[:, 0])
    assert isinstance(nni.core.targets.as_selector(None, torch.zeros(2, 10)), ClassScore)


class _TwoInputs(nn.Module):
    """A vector and an image, each through its own branch, concatenated: Captum's multi-input case."""

    def __init__(self, bias: bool = True):
        super().__init__()
        torch.manual_seed(5)
        self.vector = nn.Linear(6, 8, bias=bias)
        self.image = nn.Conv2d(1, 2, 3, bias=bias)
        self.head = nn.Linear(8 + 2 * 4 * 4, 3, bias=bias)
        self.relu_vector, self.relu_image = nn.ReLU(), nn.ReLU()

    def forward(self, u, v, scale=1.0):
        features = torch.cat([self.relu_vector(self.vector(u)), self.relu_image(self.image(v)).flatten(1)], 1)
        return self.head(features) * scale


def _two_inputs(n=4):
    generator = torch.Generator().manual_seed(6)
    return (
        torch.rand(n, 6, generator=generator, dtype=torch.float64),
        torch.rand(n, 1, 6, 6, generator=generator, dtype=torch.float64),
    )


TUPLE_CAPTUM = {
    "saliency": (lambda m: nni.Saliency(m), lambda m: CaptumSaliency(m), {}, {"abs": False}),
    "input-x-gradient": (lambda m: nni.InputXGradient(m), lambda m: __import__("captum.attr").attr.InputXGradient(m), {}, {}),
    "guided-backprop": (lambda m: nni.GuidedBackprop(m), lambda m: __import__("captum.attr").attr.GuidedBackprop(m), {}, {}),
    "integrated-gradients": (
        lambda m: nni.IntegratedGradients(m),
        lambda m: CaptumIntegratedGradients(m),
        {"n_steps": 9, "internal_batch_size": 7},
        {"n_steps": 9, "internal_batch_size": 7},
    ),
    "deeplift": (lambda m: nni.DeepLift(m), lambda m: CaptumDeepLift(m), {}, {}),
    "occlusion": (
        lambda m: nni.Occlusion(m),
        lambda m: CaptumOcclusion(m),
        {"sliding_window_shapes": ((2,), (1, 2, 2)), "strides": ((2,), (1, 2, 2)), "perturbations_per_eval": 3},
        {"sliding_window_shapes": ((2,), (1, 2, 2)), "strides": ((2,), (1, 2, 2)), "perturbations_per_eval": 3},
    ),
}


@pytest.mark.parametrize("name", sorted(TUPLE_CAPTUM))
def test_tuple_inputs_match_captum(name):
    ours, theirs, kwargs, captum_kwargs = TUPLE_CAPTUM[name]
    model = _TwoInputs().double().eval()
    inputs = _two_inputs()
    takes_baselines = ours(model).takes_baselines
    if takes_baselines:
        vector_baseline = torch.full((6,), 0.1, dtype=torch.float64)
        kwargs = {**kwargs, "baselines": (vector_baseline, 0.0)}
        captum_kwargs = {**captum_kwargs, "baselines": (vector_baseline.expand(4, 6), 0.0)}
    target = [0, 1, 2, 1]
    maps = ours(model).attribute(inputs, target=target, additional_forward_args=(2.0,), **kwargs)
    expected = theirs(model).attribute(inputs, target=target, additional_forward_args=(2.0,), **captum_kwargs)
    assert isinstance(maps, tuple) and len(maps) == 2
    for ours_map, their_map, x in zip(maps, expected, inputs):
        assert ours_map.shape == x.shape
        torch.testing.assert_close(ours_map, their_map.double())


def test_tuple_inputs_keep_completeness_conservation_and_summation_to_delta():
    inputs = _two_inputs()
    model = _TwoInputs().double().eval()
    scores = model(*inputs).gather(1, torch.tensor([[1]] * 4)).squeeze(1)
    maps, delta = nni.DeepLift(model).attribute(inputs, target=1, return_convergence_delta=True)
    base = model(*(torch.zeros_like(x) for x in inputs))[:, 1]
    torch.testing.assert_close(sum(m.flatten(1).sum(1) for m in maps), scores - base)
    assert delta.abs().max() < 1e-10
    _, ig_delta = nni.IntegratedGradients(model).attribute(inputs, target=1, n_steps=200, return_convergence_delta=True)
    assert ig_delta.abs().max() < 5e-3 * scores.abs().max()  # quadrature error at the ReLU kinks
    bias_free = _TwoInputs(bias=False).double().eval()
    relevance = nni.LRP(bias_free, rule=Epsilon(1e-12, bias=False)).attribute(inputs, target=1)
    torch.testing.assert_close(sum(r.flatten(1).sum(1) for r in relevance), bias_free(*inputs)[:, 1])


def test_smoothgrad_over_tuple_inputs_is_chunking_independent_and_wraps_any_tuple_method():
    model = _TwoInputs().double().eval()
    inputs = _two_inputs(3)
    maps = [
        nni.SmoothGrad(nni.Saliency(model), nt_samples=5, internal_batch_size=size).attribute(inputs, target=1)
        for size in (1, 2, 5)
    ]
    for other in maps[1:]:
        for a, b in zip(maps[0], other):
            torch.testing.assert_close(a, b)
    noiseless = nni.SmoothGrad(nni.IntegratedGradients(model), nt_samples=2, stdevs=0.0).attribute(
        inputs, target=1, n_steps=4, baselines=(0.1, 0.0)
    )
    plain = nni.IntegratedGradients(model).attribute(inputs, target=1, n_steps=4, baselines=(0.1, 0.0))
    for a, b in zip(noiseless, plain):
        torch.testing.assert_close(a, b)
    every = nni.Saliency(model).attribute(inputs, target="all")
    assert [tuple(m.shape) for m in every] == [(3, 3, 6), (3, 3, 1, 6, 6)]
    torch.testing.assert_close(every[1][:, 2], nni.Saliency(model).attribute(inputs, target=2)[1])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m, u, v: nni.Saliency(m).attribute((u, v[:2]), target=0), ValueError, r"different batch sizes \[4, 2\]"),
        (lambda m, u, v: nni.IntegratedGradients(m).attribute((u, v), baselines=(0.0,)), ValueError, "1 entries but there are 2 inputs"),
        (lambda m, u, v: nni.IntegratedGradients(m).attribute((u, v), baselines=torch.zeros(6)), ValueError, "give baselines as a tuple of 2"),
        (lambda m, u, v: nni.Occlusion(m).attribute((u, v), sliding_window_shapes=(2,)), ValueError, "a tuple of 2 window shapes"),
        (lambda m, u, v: nni.Lime(m).attribute((u, v)), TypeError, "Lime explains one input tensor"),
        (lambda m, u, v: nni.Saliency(m).attribute(()), ValueError, "empty tuple"),
    ],
)
def test_bad_tuple_inputs_are_clear_errors(call, error, match):
    model = _TwoInputs().double().eval()
    with pytest.raises(error, match=match):
        call(model, *_two_inputs())
