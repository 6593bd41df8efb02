"""nn_interpretability.evaluation: agreement, deletion / insertion, cascading randomization, axioms table."""
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import structural_similarity as skimage_ssim
from torch import nn

import nn_interpretability as nni
from nn_interpretability.evaluation import (
    PROPERTIES,
    average_ranks,
    axioms_table,
    cascading_randomization,
    completeness,
    compute_attributions,
    continuity,
    deletion_insertion,
    implementation_invariance,
    invariance_pair,
    method_agreement,
    parameter_layers,
    randomize_layer,
    sensitivity_a,
    sensitivity_b,
    spearman_per_sample,
    structural_similarity,
)
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch


@pytest.fixture(scope="module")
def mnist_cnn():
    return nni.load_model("mnist_cnn", device="cpu")


@pytest.fixture(scope="module")
def mnist_test():
    with warnings.catch_warnings():  # the embedded-subset notice, shown once per process
        warnings.simplefilter("ignore")
        images, labels = nni.data.load_mnist("test", source="embedded")
    return images, labels


def tied_maps(n=12, seed=0):
    """Maps with many exact zeros and repeated values, as ReLU networks give."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 1, 28, 28, generator=generator).clamp(min=0).round(decimals=1)
    b = torch.randn(n, 1, 28, 28, generator=generator).clamp(min=0) + 0.5 * a
    return a, b


class InputItself(nni.Attribution):
    """An 'edge detector' that ignores the model: the map is the input."""

    def attribute(self, inputs, target=None):
        return inputs.clone()


# --------------------------------------------------------------------------------------------------
# agreement


def test_spearman_matches_scipy_with_ties():
    a, b = tied_maps()
    rho = spearman_per_sample(a, b)
    expected = [scipy.stats.spearmanr(a[i].ravel().numpy(), b[i].ravel().numpy()).statistic for i in range(len(a))]
    assert rho.shape == (len(a),)
    np.testing.assert_allclose(rho.numpy(), expected, rtol=0, atol=1e-12)


def test_average_ranks_match_scipy_rankdata():
    values = torch.tensor([[3.0, 1.0, 3.0, 0.0, 0.0, 0.0, 2.0]])
    expected = scipy.stats.rankdata(values.numpy(), axis=1)
    np.testing.assert_array_equal(average_ranks(values).numpy(), expected)


def test_constant_maps_give_nan_and_are_left_out_of_the_mean():
    a, b = tied_maps(6)
    a[2] = 0.0
    rho = spearman_per_sample(a, b)
    assert torch.isnan(rho[2]) and torch.isfinite(rho[[0, 1, 3, 4, 5]]).all()
    result = method_agreement({"a": a, "b": b})
    assert result.count[0, 1] == 5 and result.count[1, 1] == 6
    valid = rho[torch.isfinite(rho)].numpy()
    assert result.mean[0, 1].item() == pytest.approx(valid.mean())
    assert result.std[0, 1].item() == pytest.approx(valid.std())


def test_method_agreement_is_a_symmetric_matrix_of_per_sample_correlations():
    a, b = tied_maps(8)
    c = -a + 0.1 * b
    result = method_agreement({"a": a, "b": b, "c": c})
    assert result.names == ["a", "b", "c"]
    assert result.mean.shape == result.std.shape == (3, 3) and result.per_sample.shape == (3, 3, 8)
    torch.testing.assert_close(result.mean, result.mean.T)
    torch.testing.assert_close(torch.diagonal(result.mean), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(result.per_sample[0, 2], spearman_per_sample(a, c))
    table = result.table()
    assert table[0] == ["", "a", "b", "c"] and table[1][1] == "1.00 ± 0.00"
    assert len(str(result).splitlines()) == 4 and result.to_markdown().count("\n") == 4


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: spearman_per_sample(torch.zeros(2, 5), torch.zeros(2, 6)), "differ in shape"),
        (lambda: spearman_per_sample(torch.tensor([[1.0, float("nan")]]), torch.ones(1, 2)), "NaN"),
        (lambda: method_agreement({}), "non-empty"),
        (lambda: method_agreement({"a": torch.rand(3, 4), "b": torch.rand(2, 4)}), "differ in shape"),
    ],
)
def test_agreement_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_compute_attributions_batches_and_slices_targets():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(5)
    target = [1, 0, 3, 3, 9]
    methods = {"saliency": nni.Saliency(model), "ig": nni.IntegratedGradients(model)}
    kwargs = {"ig": {"n_steps": 8}}
    batched = compute_attributions(methods, x, target=target, internal_batch_size=2, attribute_kwargs=kwargs)
    whole = compute_attributions(methods, x, target=torch.tensor(target), internal_batch_size=64, attribute_kwargs=kwargs)
    assert list(batched) == ["saliency", "ig"]
    for name in methods:
        assert batched[name].shape == x.shape
        torch.testing.assert_close(batched[name], whole[name])
    torch.testing.assert_close(batched["saliency"], nni.Saliency(model).attribute(x, target=target))
    with pytest.raises(ValueError, match="target gives 2 per-sample entries but the split has N = 5"):
        compute_attributions(methods, x, target=[1, 2])
    with pytest.raises(ValueError, match="not given"):
        compute_attributions(methods, x, attribute_kwargs={"lrp": {}})
    with pytest.raises(ValueError, match="internal_batch_size"):
        compute_attributions(methods, x, internal_batch_size=0)


@pytest.mark.parametrize("old, new, value", [("batch_size", "internal_batch_size", 2), ("progress", "show_progress", False)])
def test_compute_attributions_old_names_still_work_and_warn(old, new, value):
    model, x = ARCHITECTURES["mnist_cnn"](), mnist_like_batch(3)
    methods = {"saliency": nni.Saliency(model)}
    expected = compute_attributions(methods, x, **{new: value})
    with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated.*'{new}'"):
        torch.testing.assert_close(compute_attributions(methods, x, **{old: value})["saliency"], expected["saliency"])


# --------------------------------------------------------------------------------------------------
# faithfulness


def _probability(model, x, target):
    with torch.no_grad():
        return model(x).softmax(1)[torch.arange(len(x)), target]


@pytest.mark.parametrize("baseline", [0.0, "tensor"])
def test_curves_run_from_the_input_score_to_the_baseline_score(baseline):
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(3)
    base = torch.full_like(x[0], 0.5) if baseline == "tensor" else baseline
    maps = nni.Saliency(model).attribute(x)
    target = model(x).argmax(1)
    clean = _probability(model, x, target)
    blank = _probability(model, torch.zeros_like(x) + (base if baseline == "tensor" else 0.0), target)
    deletion = deletion_insertion(model, x, maps, baselines=base)
    insertion = deletion_insertion(model, x, maps, mode="insertion", baselines=base)
    assert deletion.scores.shape == (3, 21) and deletion.fractions[0] == 0 and deletion.fractions[-1] == 1
    torch.testing.assert_close(deletion.scores[:, 0], clean)
    torch.testing.assert_close(deletion.scores[:, -1], blank)
    torch.testing.assert_close(insertion.scores[:, 0], blank)
    torch.testing.assert_close(insertion.scores[:, -1], clean)
    torch.testing.assert_close(deletion.auc, torch.trapezoid(deletion.scores, deletion.fractions, dim=1))


def test_random_map_lies_between_the_ordered_and_the_anti_ordered_deletion(mnist_cnn, mnist_test):
    images = mnist_test[0][:100]
    maps = nni.Saliency(mnist_cnn).attribute(images, abs=True)
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(0))
    best = deletion_insertion(mnist_cnn, images, maps, steps=11).auc.mean()
    random = deletion_insertion(mnist_cnn, images, noise, steps=11).auc.mean()
    worst = deletion_insertion(mnist_cnn, images, maps, steps=11, order="least_relevant_first").auc.mean()
    assert best + 0.2 < random < worst - 0.2
    insertion = deletion_insertion(mnist_cnn, images, maps, steps=11, mode="insertion").auc.mean()
    assert insertion > random


def test_batch_equals_items_one_at_a_time():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(3)
    maps = nni.InputXGradient(model).attribute(x)
    target = [2, 5, 7]
    batch = deletion_insertion(model, x, maps, target=target, output="logit", steps=11, internal_batch_size=7)
    for i in range(3):
        item = deletion_insertion(model, x[i : i + 1], maps[i : i + 1], target=target[i], output="logit", steps=11)
        torch.testing.assert_close(batch.scores[i : i + 1], item.scores)


def test_multichannel_pixels_are_ranked_by_channel_sum_and_perturbed_together():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2, bias=False)).double().eval()
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    weight = model[1].weight[0].detach().view(3, 4, 4)
    maps = x * weight  # exact contributions of the linear logit 0
    curve = deletion_insertion(model, x, maps, target=0, output="logit", step_size=1)
    assert curve.fractions.shape == (17,)
    per_pixel = maps.sum(1).flatten(1)
    removed = per_pixel.sort(dim=1, descending=True).values.cumsum(1)
    expected = per_pixel.sum(1, keepdim=True) - torch.cat([torch.zeros(2, 1, dtype=x.dtype), removed], 1)
    torch.testing.assert_close(curve.scores, expected)
    single_channel = deletion_insertion(model, x, maps.sum(1, keepdim=True), target=0, output="logit", step_size=1)
    torch.testing.assert_close(single_channel.scores, curve.scores)


def test_step_size_and_steps_set_the_fractions():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(1)
    maps = torch.rand_like(x)
    by_size = deletion_insertion(model, x, maps, step_size=100)
    expected = torch.tensor([0, 100, 200, 300, 400, 500, 600, 700, 784], dtype=x.dtype) / 784
    torch.testing.assert_close(by_size.fractions, expected)
    assert deletion_insertion(model, x, maps, steps=5).fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_faithfulness_leaves_the_model_unchanged():
    model = ARCHITECTURES["residual_bn"]().train()
    before = _state(model)
    x = mnist_like_batch(2)
    deletion_insertion(model, x, torch.rand_like(x), steps=3)
    assert_same_state(before, _state(model))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"attributions": torch.rand(2, 1, 28, 27)}, "do not fit"),
        ({"attributions": torch.rand(3, 1, 28, 28)}, "do not fit"),
        ({"mode": "removal"}, "mode"),
        ({"order": "random"}, "order"),
        ({"output": "softmax"}, "output"),
        ({"steps": 1}, "steps"),
        ({"steps": 5, "step_size": 10}, "not both"),
        ({"step_size": 0}, "step_size"),
        ({"baselines": torch.zeros(5)}, "do not fit"),
    ],
)
def test_faithfulness_errors_name_the_problem(kwargs, match):
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    arguments = {"attributions": torch.rand_like(x), **kwargs}
    with pytest.raises(ValueError, match=match):
        deletion_insertion(model, x, **arguments)


@pytest.mark.parametrize(
    "old, new, value", [("baseline", "baselines", 0.5), ("batch_size", "internal_batch_size", 5), ("progress", "show_progress", False)]
)
def test_deletion_insertion_old_names_still_work_and_warn(old, new, value):
    model, x = ARCHITECTURES["mnist_cnn"](), mnist_like_batch(2)
    maps = torch.rand_like(x)
    expected = deletion_insertion(model, x, maps, steps=5, **{new: value})
    with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated.*'{new}'"):
        curve = deletion_insertion(model, x, maps, steps=5, **{old: value})
    torch.testing.assert_close(curve.scores, expected.scores)
    with pytest.raises(TypeError, match="both"):
        deletion_insertion(model, x, maps, steps=5, **{old: value, new: value})


# --------------------------------------------------------------------------------------------------
# sanity checks


def test_ssim_matches_scikit_image():
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(3, 28, 28, generator=generator, dtype=torch.float64)
    b = (0.6 * a + 0.4 * torch.rand(3, 28, 28, generator=generator, dtype=torch.float64)).clamp(0, 1)
    ours = structural_similarity(a, b)
    for i in range(3):
        expected = skimage_ssim(
            a[i].numpy(), b[i].numpy(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1
        )
        assert ours[i].item() == pytest.approx(expected, abs=1e-4)
    torch.testing.assert_close(structural_similarity(a, a), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="does not fit"):
        structural_similarity(torch.rand(1, 8, 8), torch.rand(1, 8, 8))


def test_layers_are_randomised_from_the_output_down():
    assert parameter_layers(nni.models.MNISTCNN()) == [
        "classifier.3",
        "classifier.1",
        "features.5",
        "features.2",
        "features.0",
    ]


def test_randomize_layer_is_seeded_and_leaves_the_callers_random_stream_alone():
    class Scale(nn.Module):  # no reset_parameters: normal noise with the parameter's std
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.linspace(-1, 1, 50))

    first, second, linear = Scale(), Scale(), nn.Linear(4, 3)
    old = linear.weight.detach().clone()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    randomize_layer(first, seed=5)
    randomize_layer(second, seed=5)
    randomize_layer(linear, seed=5)
    assert torch.rand(1).item() == expected_next.item()
    torch.testing.assert_close(first.weight, second.weight)
    assert not torch.equal(first.weight.detach(), torch.linspace(-1, 1, 50))
    assert first.weight.std().item() == pytest.approx(torch.linspace(-1, 1, 50).std().item(), rel=0.5)
    assert not torch.equal(linear.weight.detach(), old)


def test_cascading_randomization_leaves_the_original_model_unchanged():
    model = ARCHITECTURES["mnist_cnn"]().train()
    model.features[0].bias.requires_grad_(False)
    before = _state(model)
    result = cascading_randomization(model, nni.Saliency, mnist_like_batch(2), similarity="spearman")
    assert_same_state(before, _state(model))
    assert result.layers == parameter_layers(model) and result.similarity["spearman"].shape == (5, 2)


def test_saliency_fails_to_stay_similar_under_randomisation(mnist_cnn, mnist_test):
    images = mnist_test[0][:16]
    result = cascading_randomization(mnist_cnn, nni.Saliency, images, return_maps=True)
    mean = result.mean()
    assert set(mean) == {"spearman", "spearman_abs", "ssim"}
    assert mean["spearman"][0] < 1 and mean["ssim"][0] < 1
    assert mean["spearman"][-1] < 0.5 and mean["spearman_abs"][-1] < 0.5 and mean["ssim"][-1] < 0.5
    assert mean["spearman_abs"][-1] < mean["spearman_abs"][0]
    torch.testing.assert_close(result.target, mnist_cnn(images).argmax(1))
    assert result.maps.shape == (6, 16, 1, 28, 28)
    torch.testing.assert_close(result.maps[0], nni.Saliency(mnist_cnn).attribute(images))


def test_a_method_that_ignores_the_model_keeps_similarity_one():
    result = cascading_randomization(ARCHITECTURES["mnist_cnn"](), InputItself, mnist_like_batch(3))
    for values in result.similarity.values():
        torch.testing.assert_close(values, torch.ones_like(values))


def test_cascading_randomization_is_deterministic():
    model = ARCHITECTURES["nested_functional"]()
    x = mnist_like_batch(2)
    runs = [cascading_randomization(model, nni.InputXGradient, x, seed=s, similarity="spearman") for s in (0, 0, 1)]
    torch.testing.assert_close(runs[0].similarity["spearman"], runs[1].similarity["spearman"])
    assert not torch.equal(runs[0].similarity["spearman"], runs[2].similarity["spearman"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layers": ["classifier.9"]}, "not a module"),
        ({"layers": ["features"]}, "holds parameters"),
        ({"similarity": "pearson"}, "similarity"),
    ],
)
def test_cascading_randomization_errors_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cascading_randomization(ARCHITECTURES["mnist_cnn"](), nni.Saliency, mnist_like_batch(1), **kwargs)


def test_cascading_randomization_old_name_progress_still_works_and_warns():
    model, x = ARCHITECTURES["mnist_cnn"](), mnist_like_batch(1)
    expected = cascading_randomization(model, nni.Saliency, x, layers=["classifier.3"], show_progress=False)
    with pytest.warns(DeprecationWarning, match="'progress' is deprecated.*'show_progress'"):
        result = cascading_randomization(model, nni.Saliency, x, layers=["classifier.3"], progress=False)
    torch.testing.assert_close(result.similarity["ssim"], expected.similarity["ssim"])


def test_ssim_needs_images():
    model = nn.Sequential(nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match="ssim compares images"):
        cascading_randomization(model, nni.Saliency, torch.rand(2, 4, dtype=torch.float64))


# --------------------------------------------------------------------------------------------------
# properties


@pytest.fixture(scope="module")
def table():
    return axioms_table()


def test_axioms_table_agrees_with_the_textbook(table):
    assert table.columns == list(PROPERTIES)
    # Saliency: no completeness, no sensitivity (a) (P9.1 ii), but implementation invariance.
    assert table["saliency", "completeness"][1] is False
    assert table["saliency", "sensitivity_a"][1] is False
    # IG: completeness within 1 % (eq. 9.17), sensitivity (a) (P9.2 ii) and (b).
    value, passed = table["integrated gradients", "completeness"]
    assert passed and value < 1e-2
    assert table["integrated gradients", "sensitivity_a"][1] and table["integrated gradients", "sensitivity_b"][1]
    # Gradient methods see only the function.
    for method in ("saliency", "gradient × input", "integrated gradients"):
        assert table[method, "implementation_invariance"][1], method
    # LRP-0 without the bias in the denominators conserves the output; DeepLIFT sums to the delta.
    value, passed = table["LRP-0", "conservation"]
    assert passed and value < 1e-9
    value, passed = table["DeepLIFT (rescale)", "completeness"]
    assert passed and value < 1e-9
    assert not table.errors


def test_axioms_table_renders_values_and_marks(table):
    text = str(table)
    assert len(text.splitlines()) == 1 + len(table.rows)
    assert "✓" in text and "✗" in text
    markdown = table.to_markdown()
    assert markdown.splitlines()[0].startswith("| method | completeness")
    assert len(markdown.splitlines()) == 2 + len(table.rows)


def test_axioms_table_reports_methods_that_cannot_run():
    class Refuses(nni.Attribution):
        def attribute(self, inputs, target=None):
            raise NotImplementedError("no rule for this layer")

    result = axioms_table({"refuses": Refuses, "saliency": nni.Saliency}, properties=["completeness", "continuity"])
    assert result.passed[0] == [None, None] and "no rule" in result.errors[("refuses", "completeness")]
    assert "n/a" in str(result) and result.passed[1] == [False, False]


def test_properties_pass_baselines_to_wrappers_that_take_them():
    # The capability, not the signature: SmoothGrad(IntegratedGradients) takes baselines (its attribute's
    # signature has none), so completeness measures IG from the given baseline, not from IG's default 0.
    smoothed = lambda model: nni.SmoothGrad(nni.IntegratedGradients(model), stdevs=0.0, nt_samples=1)  # noqa: E731
    model, x = nni.models.xor_network(), torch.tensor([[0.0, 3.0], [3.0, 0.0]], dtype=torch.float64)
    baselines = torch.tensor([1.0, 0.0], dtype=torch.float64)
    result = completeness(smoothed, model, x, baselines=baselines, attribute_kwargs={"n_steps": 300})
    assert result.passed and result.value < 1e-2
    assert completeness(nni.IntegratedGradients, model, x, baselines=baselines, attribute_kwargs={"n_steps": 300}).passed


def test_lrp0_sums_to_the_output_on_the_textbook_network():
    lrp0 = lambda model: nni.LRP(model, rule=nni.attribution.lrp.Epsilon(0.0, bias=False))  # noqa: E731
    network = nni.models.xor_network()
    p = torch.tensor([[0.0, 3.0]], dtype=torch.float64)
    relevance = lrp0(network).attribute(p)
    torch.testing.assert_close(relevance, torch.tensor([[0.0, 1.5]], dtype=torch.float64))  # P9.3 i
    assert completeness(lrp0).passed is False  # it explains f(x), not f(x) - f(0)


def test_properties_on_a_user_model():
    model = ARCHITECTURES["mnist_cnn"]()
    x = mnist_like_batch(2)
    result = continuity(nni.IntegratedGradients, model, x, attribute_kwargs={"n_steps": 16})
    again = continuity(nni.IntegratedGradients, model, x, attribute_kwargs={"n_steps": 16})
    assert result.value == again.value and result.tolerance == pytest.approx(1e-3**-0.5)
    deeplift = completeness(nni.DeepLift, model, x)
    assert deeplift.passed and deeplift.value < 1e-6


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: completeness(nni.Saliency, model=nni.models.xor_network()), "both model and inputs"),
        (
            lambda: sensitivity_a(
                nni.Saliency,
                nni.models.xor_network(),
                torch.tensor([[3.0, 3.0]], dtype=torch.float64),
                torch.tensor([[0.0, 0.0]], dtype=torch.float64),
            ),
            "exactly one feature",
        ),
        (
            lambda: sensitivity_b(
                nni.Saliency, nni.models.xor_network(), torch.tensor([[0.0, 3.0]], dtype=torch.float64), feature=1
            ),
            "depends on feature",
        ),
        (
            lambda: implementation_invariance(
                nni.Saliency,
                (invariance_pair()[0], nni.models.xor_network()[:1]),
                torch.tensor([[3.0, 1.0]], dtype=torch.float64),
            ),
            "not functionally equal",
        ),
        (lambda: continuity(nni.Saliency, eps=2.0), "eps"),
    ],
)
def test_property_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
