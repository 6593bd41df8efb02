"""The evaluation and uncertainty helpers take every target ``attribute`` takes: index tuples, regions,
regressions, callables and every class, sliced per batch where they run a split batch by batch."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.core.targets import target_rows
from nn_interpretability.evaluation import (
    cascading_randomization,
    completeness,
    compute_attributions,
    conservation,
    deletion_insertion,
)
from nn_interpretability.targets import ClassScore, OutputIndex, Regression, SegmentationRegion, TokenScore


def _segmenter():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1)).double().eval()


def _regressor(dropout: float | None = None):
    torch.manual_seed(1)
    layers = [nn.Flatten(), nn.Linear(64, 8), nn.ReLU()]
    layers += [nn.Dropout(dropout)] if dropout is not None else []
    return nn.Sequential(*layers, nn.Linear(8, 1)).double().eval()


def _batch(n=5):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def _masks(n=5):
    return torch.rand(n, 8, 8, generator=torch.Generator().manual_seed(3)) > 0.5


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(lambda n: SegmentationRegion(1, _masks(n)), id="region-per-sample"),
        pytest.param(lambda n: SegmentationRegion(2, _masks(n)[0]), id="region-shared"),
        pytest.param(lambda n: [(i % 3, i, 7 - i) for i in range(n)], id="index-list"),
        pytest.param(lambda n: (1, 3, 4), id="index"),
        pytest.param(lambda n: (lambda out: out[:, 0].amax((1, 2))), id="callable"),
    ],
)
def test_compute_attributions_slices_per_sample_targets_with_the_batches(target):
    model, x = _segmenter(), _batch()
    methods = {"saliency": nni.Saliency(model), "ig": nni.IntegratedGradients(model)}
    kwargs = {"ig": {"n_steps": 4}}
    batched = compute_attributions(methods, x, target=target(5), internal_batch_size=2, attribute_kwargs=kwargs)
    for name, method in methods.items():
        whole = method.attribute(x, target=target(5), **kwargs.get(name, {}))
        torch.testing.assert_close(batched[name], whole)


def test_compute_attributions_gives_every_class_maps():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4)).double().eval()
    x = _batch()
    maps = compute_attributions({"saliency": nni.Saliency(model)}, x, target="all", internal_batch_size=2)["saliency"]
    assert maps.shape == (5, 4, 1, 8, 8)
    classes = torch.tensor([[0, 3]] * 5)
    picked = compute_attributions({"s": nni.Saliency(model)}, x, target=classes, internal_batch_size=2)["s"]
    torch.testing.assert_close(picked, maps[:, [0, 3]])


def test_target_rows_slices_per_sample_choices_and_refuses_the_wrong_length():
    assert target_rows(None, 1, 3, 5) is None and target_rows(2, 1, 3, 5) == 2 and target_rows("all", 0, 2, 5) == "all"
    assert target_rows([4, 3, 2, 1, 0], 1, 3, 5) == [3, 2]
    assert target_rows((1, 2, 3), 1, 3, 5) == (1, 2, 3)
    assert torch.equal(target_rows(torch.arange(5), 3, 5, 5), torch.tensor([3, 4]))
    assert target_rows(ClassScore([0, 1, 2, 3, 4]), 2, 4, 5).classes == [2, 3]
    assert target_rows(TokenScore([7, 8, 9, 10, 11], position=2), 0, 1, 5).token == [7]
    with pytest.raises(ValueError, match="gives 4 per-sample entries but the split has N = 5"):
        target_rows([0, 1, 2, 3], 0, 2, 5)
    bound = OutputIndex([(0, i, i) for i in range(5)]).bind(torch.zeros(5, 3, 8, 8))
    rows = target_rows(bound, 2, 4, 5)
    assert rows.n == 2
    output = torch.arange(2 * 3 * 64.0).view(2, 3, 8, 8)
    torch.testing.assert_close(rows(output), torch.stack([output[0, 0, 2, 2], output[1, 0, 3, 3]]))


def test_deletion_of_a_regression_output_starts_at_the_output_itself():
    model, x = _regressor(), _batch()
    maps = nni.Saliency(model).attribute(x)
    curve = deletion_insertion(model, x, maps, steps=5, output="logit")
    torch.testing.assert_close(curve.scores[:, 0], model(x).squeeze(1))
    torch.testing.assert_close(curve.scores[:, -1], model(torch.zeros_like(x)).squeeze(1))
    with pytest.raises(ValueError, match="output='probability' needs class scores along dimension 1.*output='logit'"):
        deletion_insertion(model, x, maps, steps=5)


def test_deletion_of_a_segment_scores_its_summed_pixel_probabilities():
    model, x = _segmenter(), _batch()
    target = SegmentationRegion(1, _masks())
    maps = nni.IntegratedGradients(model).attribute(x, target=target, n_steps=4)
    curve = deletion_insertion(model, x, maps, target=target, steps=4)
    probability = model(x).softmax(1)[:, 1]
    torch.testing.assert_close(curve.scores[:, 0], (probability * _masks()).flatten(1).sum(1))


def test_completeness_and_conservation_hold_for_a_region_target():
    model, x = _segmenter(), _batch(3)
    target = SegmentationRegion(0, _masks(3))
    assert completeness(nni.DeepLift, model, x, target=target).passed
    result = completeness(nni.IntegratedGradients, model, x, target=target, attribute_kwargs={"n_steps": 200})
    assert result.passed, result
    lrp0 = lambda m: nni.LRP(m, rule=nni.attribution.lrp.Epsilon(0.0, bias=False))  # noqa: E731
    bias_free = _segmenter()
    for module in bias_free:
        if isinstance(module, nn.Conv2d):
            module.bias.data.zero_()
    assert conservation(lrp0, bias_free, x, target=target).value < 1e-10


def test_cascading_randomization_keeps_a_regression_target():
    model, x = _regressor(), _batch(3)
    result = cascading_randomization(model, nni.Saliency, x, target=Regression(), similarity="spearman")
    assert isinstance(result.target, Regression) and result.target.n == 3
    assert result.similarity["spearman"].shape == (2, 3)
    classes = cascading_randomization(_segmenter(), nni.Saliency, x, target=(1, 2, 2), similarity="spearman")
    assert classes.target.n == 3


def test_multi_pass_attribution_explains_any_target():
    model, x = _regressor(dropout=0.0), _batch(3)  # dropout of 0: every pass is the deterministic network
    passes = nni.uncertainty.MultiPassAttribution(nni.Saliency(model), passes=4)
    torch.testing.assert_close(passes.attribute(x), nni.Saliency(model).attribute(x))
    segmenter = nn.Sequential(*_segmenter()[:2], nn.Dropout(0.0), _segmenter()[2]).eval()
    region = SegmentationRegion(2, _masks(3))
    multi = nni.uncertainty.MultiPassAttribution(nni.Saliency(segmenter), passes=3).attribute(x, target=region)
    torch.testing.assert_close(multi, nni.Saliency(segmenter).attribute(x, target=region))


def test_a_bound_target_refuses_an_output_of_another_shape():
    from nn_interpretability.core.targets import as_selector

    selector = as_selector(None, torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"chosen for outputs of shape \(N, 1\) per batch but this model returns \(3, 2\)"):
        selector(torch.zeros(3, 2))
