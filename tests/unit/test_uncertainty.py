"""Uncertainty: MC dropout, MC dropout x attribution, evidential opinions, temperature scaling, calibration.

Model-state restoration, batching (batched passes == a loop over passes, a batch == its items), the
guarantees of the fixed dropout masks, errors. Checks against independent references (hand-derived
networks, NumPy, SciPy, torch.distributions) are in tests/reference/test_uncertainty_reference.py.
"""
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.plot.calibration import reliability_diagram
from nn_interpretability.uncertainty import (
    MultiPassAttribution,
    TemperatureScaled,
    apply_keep_mask,
    calibration_bins,
    dirichlet_opinion,
    evidential_mse_loss,
    evidential_opinion,
    expected_calibration_error,
    fixed_dropout_masks,
    mc_dropout_class_relevance,
    mc_dropout_predict,
    mc_dropout_predicted_relevance,
    noisy_predicted_relevance,
    softmax_attribution,
)
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch, seeded


class DropoutCNN(nn.Module):
    """Not a Sequential: BatchNorm (non-trivial statistics), Dropout2d, functional ReLUs, Dropout."""

    def __init__(self, p: float = 0.3):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop2d = nn.Dropout2d(p)
        self.fc1 = nn.Linear(4 * 7 * 7, 16)
        self.drop = nn.Dropout(p)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = self.drop2d(F.max_pool2d(torch.relu(self.bn(self.conv(x))), 4))
        return self.fc2(self.drop(self.fc1(x.flatten(1)).relu()))


def dropout_cnn(p: float = 0.3, seed: int = 0) -> nn.Module:
    model = seeded(lambda: DropoutCNN(p), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.randn(4, generator=generator, dtype=torch.float64) * 0.1)
        model.bn.running_var.copy_(torch.rand(4, generator=generator, dtype=torch.float64) + 0.5)
    return model


class FunctionalDropoutMLP(nn.Module):
    """Functional dropout following the model's flag (or always on), after a dropout module with p = 0."""

    def __init__(self, always: bool = False):
        super().__init__()
        self.fc1, self.fc2, self.always = nn.Linear(784, 16), nn.Linear(16, 10), always
        self.still = nn.Dropout(0.0)

    def forward(self, x):
        h = self.still(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(F.dropout(h, 0.5, training=self.always or self.training))


def _x(n=3, seed=0):
    return mnist_like_batch(n, seed=seed)


# -- MC dropout --------------------------------------------------------------------------------------


def test_prediction_shapes_and_uncertainty_measures():
    result = mc_dropout_predict(dropout_cnn(), _x(3), passes=40)
    assert result.logits.shape == result.probabilities.shape == (40, 3, 10)
    torch.testing.assert_close(result.probabilities, result.logits.softmax(-1))
    torch.testing.assert_close(result.mean, result.probabilities.mean(0))
    assert (result.mutual_information >= 0).all()
    assert (result.mutual_information > 0).all(), "the passes should disagree with dropout on"
    torch.testing.assert_close(result.mutual_information, result.predictive_entropy - result.expected_entropy)
    assert (result.predictive_entropy <= torch.log(torch.tensor(10.0, dtype=torch.float64)) + 1e-12).all()
    assert result.counts.sum(1).tolist() == [40, 40, 40] and result.passes == 40
    assert torch.equal(result.prediction, result.mean.argmax(1))


def test_dropout_zero_equals_the_deterministic_forward():
    model = dropout_cnn(p=0.0)
    x = _x(3)
    result = mc_dropout_predict(model, x, passes=5)
    expected = model(x)
    for k in range(5):  # equal up to rounding: a batch of 15 rows may take other kernels than one of 3
        torch.testing.assert_close(result.logits[k], expected)
    torch.testing.assert_close(result.mutual_information, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("internal_batch_size", [1, 3, 7])
def test_batched_passes_equal_a_loop_over_passes(internal_batch_size):
    model, x = dropout_cnn(), _x(2)
    batched = mc_dropout_predict(model, x, passes=7, internal_batch_size=internal_batch_size, seed=4)
    with fixed_dropout_masks(model, seed=4) as masks:
        for k in range(7):
            masks.select(torch.full((2,), k))
            with torch.no_grad():
                torch.testing.assert_close(batched.logits[k], model(x))


def test_batch_equals_items_one_at_a_time():
    model, x = dropout_cnn(), _x(4)
    batch = mc_dropout_predict(model, x, passes=10)
    items = torch.cat([mc_dropout_predict(model, x[i : i + 1], passes=10).logits for i in range(4)], 1)
    torch.testing.assert_close(batch.logits, items)


def test_seeded_and_independent_of_the_global_random_state():
    model, x = dropout_cnn(), _x(2)
    torch.manual_seed(1)
    first = mc_dropout_predict(model, x, passes=6, seed=3)
    torch.manual_seed(2)
    assert torch.equal(first.logits, mc_dropout_predict(model, x, passes=6, seed=3).logits)
    assert not torch.equal(first.logits, mc_dropout_predict(model, x, passes=6, seed=4).logits)


def test_masks_do_not_depend_on_dtype():
    model = dropout_cnn()
    x = _x(2)
    dropped64 = mc_dropout_predict(model, x, passes=5).logits
    dropped32 = mc_dropout_predict(model.float(), x.float(), passes=5).logits
    assert dropped32.dtype == torch.float32
    torch.testing.assert_close(dropped32.double(), dropped64, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_model_comes_back_unchanged_and_batchnorm_stays_in_eval(mode):
    model = dropout_cnn(p=0.0)
    model.train(mode == "train")
    before = _state(model)
    logits = mc_dropout_predict(model, _x(3), passes=4).logits
    assert_same_state(before, _state(model))
    # p = 0 and BatchNorm on its running statistics: every pass is the eval-mode forward.
    expected = model.eval()(_x(3))
    for k in range(4):
        torch.testing.assert_close(logits[k], expected)


def test_dropout_rate_and_inverted_scaling():
    model = nn.Sequential(nn.Dropout(0.3)).double()
    x = torch.ones(1, 2000, dtype=torch.float64)
    out = mc_dropout_predict(model, x, passes=50).logits
    assert set(out.unique().tolist()) == {0.0, 1 / 0.7}
    assert abs((out == 0).double().mean().item() - 0.3) < 0.01


def test_channelwise_dropout_drops_whole_channels():
    model = nn.Sequential(nn.Dropout2d(0.5), nn.Flatten()).double()
    out = mc_dropout_predict(model, torch.ones(1, 6, 2, 2, dtype=torch.float64), passes=200).logits
    channels = out.view(200, 6, 4)
    assert (channels == channels[..., :1]).all(), "one draw per channel"
    assert abs((channels[..., 0] == 0).double().mean().item() - 0.5) < 0.06


def test_reused_dropout_module_draws_a_mask_per_call():
    drop = nn.Dropout(0.5)

    class Reused(nn.Module):
        def forward(self, x):
            return torch.cat([drop(x), drop(x)], 1)

    model = Reused()
    model.drop = drop
    out = mc_dropout_predict(model, torch.ones(1, 64, dtype=torch.float64), passes=3).logits
    assert not torch.equal(out[..., :64], out[..., 64:])


def test_functional_dropout_following_the_model_flag_is_a_clear_error_by_default():
    model = seeded(FunctionalDropoutMLP)
    before = _state(model)
    with pytest.raises(ValueError, match="functional"):
        mc_dropout_predict(model, _x(2), passes=3)
    assert_same_state(before, _state(model))
    sampled = mc_dropout_predict(model, _x(2), passes=3, functional_dropout="sample").logits
    assert not torch.equal(sampled[0], sampled[1])
    ignored = mc_dropout_predict(model, _x(2), passes=3, functional_dropout="ignore").logits
    torch.testing.assert_close(ignored[0], model(_x(2)))
    torch.testing.assert_close(ignored[0], ignored[2])


def test_functional_dropout_that_is_always_on_gets_fixed_masks():
    model = seeded(lambda: FunctionalDropoutMLP(always=True))
    once = mc_dropout_predict(model, _x(2), passes=4, internal_batch_size=4).logits
    torch.testing.assert_close(once, mc_dropout_predict(model, _x(2), passes=4, internal_batch_size=1).logits)
    assert not torch.equal(once[0], once[1])


def test_a_model_without_dropout_is_a_clear_error():
    model = ARCHITECTURES["residual_bn"]()
    before = _state(model)
    with pytest.raises(ValueError, match="no dropout"):
        mc_dropout_predict(model, _x(2), passes=3)
    assert_same_state(before, _state(model))


def test_recurrent_dropout_cannot_be_sampled():
    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = nn.LSTM(28, 8, num_layers=2, dropout=0.3, batch_first=True), nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(self.rnn(x[:, 0])[0][:, -1])

    with pytest.raises(NotImplementedError, match="recurrent"):
        mc_dropout_predict(seeded(Recurrent), _x(2), passes=2)


@pytest.mark.parametrize(
    "kwargs, error",
    [({"passes": 0}, ValueError), ({"passes": 2.5}, TypeError), ({"internal_batch_size": 0}, ValueError),
     ({"seed": -1}, ValueError), ({"functional_dropout": "maybe"}, ValueError)],
)
def test_bad_arguments_are_clear_errors(kwargs, error):
    with pytest.raises(error):
        mc_dropout_predict(dropout_cnn(), _x(1), **{"passes": 2, **kwargs})


def test_missing_batch_dimension_is_a_clear_error():
    with pytest.raises(ValueError, match="unsqueeze"):
        mc_dropout_predict(dropout_cnn(), torch.rand(28, 28, dtype=torch.float64), passes=2)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("alpha", [False, True])
def test_mask_application_matches_torch(p, alpha):
    # Run torch's own dropout, read its keep-mask off the output, and apply the same mask here.
    x = torch.randn(4, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(1)
    native = (F.alpha_dropout if alpha else F.dropout)(x, p, training=True)
    if alpha and p < 1:
        a = ((1 - p) * (1 + p * 1.7580993408473766**2)) ** -0.5
        keep = ~torch.isclose(native, torch.full_like(x, a * 1.7580993408473766 * (p - 1)))
    else:
        keep = native != 0
    torch.testing.assert_close(apply_keep_mask(x, keep, p, alpha), native)


# -- MC dropout x attribution ------------------------------------------------------------------------


def test_approach_1_counts_sum_to_the_passes_and_match_the_prediction():
    model, x = dropout_cnn(p=0.4), _x(3)
    result = mc_dropout_predicted_relevance(nni.Saliency(model), x, passes=30, seed=2)
    assert result.relevance.shape == (3, 10, 1, 28, 28)
    assert result.counts.sum(1).tolist() == [30, 30, 30]
    assert torch.equal(result.maps, result.counts)
    assert torch.equal(result.counts, mc_dropout_predict(model, x, passes=30, seed=2).counts)
    assert (result.relevance[result.counts == 0] == 0).all()


def test_algorithm_1_explains_every_class_in_every_pass():
    model, x = dropout_cnn(p=0.4), _x(2)
    result = mc_dropout_class_relevance(nni.Saliency(model), x, passes=12, seed=1)
    assert result.relevance.shape == (2, 10, 1, 28, 28)
    assert (result.maps == 12).all() and result.classes.tolist() == list(range(10))
    assert (result.relevance.flatten(2).abs().sum(2) > 0).all()
    shared = mc_dropout_class_relevance(nni.Saliency(model), x, passes=12, seed=1, independent_classes=False)
    assert torch.equal(shared.counts, mc_dropout_predict(model, x, passes=12, seed=1).counts)


def test_algorithm_1_on_a_subset_of_classes():
    model, x = dropout_cnn(p=0.4), _x(2)
    full = mc_dropout_class_relevance(nni.Saliency(model), x, passes=6)
    subset = mc_dropout_class_relevance(nni.Saliency(model), x, passes=6, classes=[7, 2])
    assert subset.classes.tolist() == [7, 2]
    torch.testing.assert_close(subset.relevance, full.relevance[:, [7, 2]])
    assert torch.equal(subset.counts, full.counts[:, [7, 2]])


@pytest.mark.parametrize("independent", [True, False])
def test_algorithm_1_batched_equals_one_pass_per_call(independent):
    model, x = dropout_cnn(p=0.4), _x(2)
    method = nni.Saliency(model)
    batched = mc_dropout_class_relevance(method, x, passes=8, independent_classes=independent)
    looped = mc_dropout_class_relevance(method, x, passes=8, internal_batch_size=1, independent_classes=independent)
    torch.testing.assert_close(batched.relevance, looped.relevance)
    assert torch.equal(batched.counts, looped.counts)


def test_approach_1_batched_equals_one_pass_per_call_and_items_one_at_a_time():
    model, x = dropout_cnn(p=0.4), _x(3)
    method = nni.Saliency(model)
    batched = mc_dropout_predicted_relevance(method, x, passes=9)
    looped = mc_dropout_predicted_relevance(method, x, passes=9, internal_batch_size=1)
    torch.testing.assert_close(batched.relevance, looped.relevance)
    items = [mc_dropout_predicted_relevance(method, x[i : i + 1], passes=9) for i in range(3)]
    torch.testing.assert_close(batched.relevance, torch.cat([r.relevance for r in items]))
    assert torch.equal(batched.counts, torch.cat([r.counts for r in items]))


def test_deeplift_sees_the_same_network_for_the_input_and_its_baseline():
    # Summation-to-delta holds per pass only if the forward picking the masks, the input's forward and
    # the baseline's forward all run the same network: summed over passes it is the change of the logit.
    model, x = dropout_cnn(p=0.4), _x(2)
    result = mc_dropout_class_relevance(nni.DeepLift(model), x, passes=10, independent_classes=False)
    at_input = mc_dropout_predict(model, x, passes=10).logits
    at_baseline = mc_dropout_predict(model, torch.zeros_like(x), passes=10).logits
    torch.testing.assert_close(result.relevance.flatten(2).sum(2), (at_input - at_baseline).sum(0))


def test_integrated_gradients_needs_whole_copies_per_internal_batch():
    # The method's own internal_batch_size (path points per pass) goes in attribute_kwargs: the function's
    # internal_batch_size is the number of passes per call of the method.
    model, x = dropout_cnn(p=0.4), _x(2)
    ig = nni.IntegratedGradients(model)
    before = _state(model)
    with pytest.raises(ValueError, match="multiple"):
        mc_dropout_predicted_relevance(ig, x, passes=3, n_steps=4, attribute_kwargs={"internal_batch_size": 5})
    assert_same_state(before, _state(model))
    result = mc_dropout_predicted_relevance(ig, x, passes=3, n_steps=4, attribute_kwargs={"internal_batch_size": 12})
    assert result.counts.sum(1).tolist() == [3, 3]
    # Through the wrapper, whose own internal_batch_size is a constructor argument, it is a per-call one.
    with pytest.raises(ValueError, match="multiple"):
        MultiPassAttribution(ig, passes=3).attribute(x, target=1, n_steps=4, internal_batch_size=5)
    with pytest.raises(TypeError, match="both"):
        mc_dropout_predicted_relevance(ig, x, passes=3, n_steps=4, attribute_kwargs={"n_steps": 4})


def test_per_sample_baselines_are_repeated_with_the_copies():
    model, x = dropout_cnn(p=0.4), _x(2)
    baselines = torch.rand_like(x)
    batch = mc_dropout_class_relevance(nni.DeepLift(model), x, passes=4, classes=[1], baselines=baselines)
    items = [
        mc_dropout_class_relevance(nni.DeepLift(model), x[i : i + 1], passes=4, classes=[1], baselines=baselines[i : i + 1])
        for i in range(2)
    ]
    torch.testing.assert_close(batch.relevance, torch.cat([r.relevance for r in items]))


def test_multi_pass_attribution():
    model, x = dropout_cnn(p=0.4), _x(2)
    method = nni.Saliency(model)
    mean = MultiPassAttribution(method, passes=6, seed=3).attribute(x, target=4)
    summed = mc_dropout_class_relevance(method, x, passes=6, seed=3, classes=[4], independent_classes=False)
    torch.testing.assert_close(mean, summed.relevance[:, 0] / 6)
    prediction = mc_dropout_predict(model, x, passes=6, seed=3).prediction
    torch.testing.assert_close(MultiPassAttribution(method, passes=6, seed=3).attribute(x),
                               MultiPassAttribution(method, passes=6, seed=3).attribute(x, target=prediction))
    still = dropout_cnn(p=0.0)
    torch.testing.assert_close(
        MultiPassAttribution(nni.DeepLift(still), passes=3).attribute(x, target=1), nni.DeepLift(still).attribute(x, target=1)
    )
    assert "passes=6" in repr(MultiPassAttribution(method, passes=6))


def test_multi_pass_declares_the_inner_methods_capabilities_and_rebinds_it():
    model, other, x = dropout_cnn(p=0.4), dropout_cnn(p=0.4, seed=1), _x(2)
    multi = MultiPassAttribution(nni.IntegratedGradients(model), passes=2)
    assert multi.takes_baselines and multi.multiplies_by_inputs and multi.needs_gradients and multi.stochastic
    assert not multi.has_convergence_delta
    assert not MultiPassAttribution(nni.Occlusion(model), passes=2).needs_gradients
    moved = multi.with_model(other)
    assert moved.model is other and moved.method.model is other and multi.method.model is model
    torch.testing.assert_close(
        moved.attribute(x, target=1, n_steps=4),
        MultiPassAttribution(nni.IntegratedGradients(other), passes=2).attribute(x, target=1, n_steps=4),
    )
    with pytest.raises(TypeError, match="convergence delta"):
        multi.attribute(x, target=1, return_convergence_delta=True)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, **kw: mc_dropout_predict(m, x, passes=4, **kw).logits,
        lambda m, x, **kw: mc_dropout_predicted_relevance(nni.Saliency(m), x, passes=4, **kw).relevance,
        lambda m, x, **kw: mc_dropout_class_relevance(nni.Saliency(m), x, passes=2, classes=[1], **kw).relevance,
        lambda m, x, **kw: MultiPassAttribution(nni.Saliency(m), passes=4, **kw).attribute(x, target=1),
        lambda m, x, **kw: noisy_predicted_relevance(nni.Saliency(m), x, copies=4, **kw).relevance,
    ],
    ids=["predict", "approach-1", "algorithm-1", "multi-pass", "noisy"],
)
def test_the_old_name_batch_size_still_works_and_warns(call):
    model, x = dropout_cnn(p=0.4), _x(2)
    expected = call(model, x, internal_batch_size=1)
    with pytest.warns(DeprecationWarning, match="'batch_size' is deprecated.*'internal_batch_size'"):
        torch.testing.assert_close(call(model, x, batch_size=1), expected)
    with pytest.raises(TypeError, match="both"):
        call(model, x, batch_size=1, internal_batch_size=1)


def test_noisy_copies_grouped_by_predicted_class():
    model = dropout_cnn(p=0.4)
    x = _x(2)
    method = nni.Saliency(model)
    result = noisy_predicted_relevance(method, x, copies=40, stdevs=0.5, seed=1)
    assert result.counts.sum(1).tolist() == [40, 40]
    assert (result.counts > 0).sum() > 2, "the noise should tip some predictions"
    chunked = noisy_predicted_relevance(method, x, copies=40, stdevs=0.5, seed=1, internal_batch_size=7)
    torch.testing.assert_close(result.relevance, chunked.relevance)
    nonzero = result.counts > 0
    torch.testing.assert_close(result.mean[nonzero].flatten(1).sum(1) * result.counts[nonzero],
                               result.relevance[nonzero].flatten(1).sum(1))
    dropped = noisy_predicted_relevance(method, x, copies=40, stdevs=0.5, seed=1, mc_dropout=True)
    assert dropped.counts.sum(1).tolist() == [40, 40]
    assert not torch.equal(dropped.relevance, result.relevance)
    still = noisy_predicted_relevance(method, x, copies=5, stdevs=0.0)
    predicted = model(x).argmax(1)
    torch.testing.assert_close(still.relevance[[0, 1], predicted], 5 * method.attribute(x, target=predicted))


@pytest.mark.parametrize(
    "run",
    [
        lambda m, x: mc_dropout_predicted_relevance(nni.Saliency(m), x, passes=3),
        lambda m, x: mc_dropout_class_relevance(nni.DeepLift(m), x, passes=3),
        lambda m, x: MultiPassAttribution(nni.Saliency(m), passes=3).attribute(x),
        lambda m, x: noisy_predicted_relevance(nni.Saliency(m), x, copies=3, mc_dropout=True),
        lambda m, x: softmax_attribution(nni.IntegratedGradients(m), x, baselines=0.0, n_steps=4),
        lambda m, x: evidential_opinion(nn.Sequential(m, nn.ReLU()), x),
        lambda m, x: TemperatureScaled(m).fit(x, torch.tensor([0, 1])),
    ],
    ids=["approach-1", "algorithm-1", "multi-pass", "noisy", "softmax", "evidential", "temperature"],
)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_every_function_gives_the_model_back_unchanged(run, mode):
    model = dropout_cnn()
    model.train(mode == "train")
    before = _state(model)
    run(model, _x(2))
    assert_same_state(before, _state(model))


@pytest.mark.parametrize(
    "run, error, match",
    [
        (lambda m, x: mc_dropout_class_relevance(nni.Saliency(m), x, passes=2, classes=[10]), ValueError, "out of range"),
        (lambda m, x: mc_dropout_class_relevance(nni.Saliency(m), x, passes=2, classes=[1, 1]), ValueError, "repeat"),
        (lambda m, x: MultiPassAttribution(nni.Saliency(m), passes=2).attribute(x, target=12), ValueError, "out of range"),
        (lambda m, x: mc_dropout_predicted_relevance(m, x, passes=2), TypeError, "attribution object"),
        (lambda m, x: noisy_predicted_relevance(nni.Saliency(m), x, copies=2, stdevs=-1.0), ValueError, "stdevs"),
        (lambda m, x: mc_dropout_predicted_relevance(nni.Saliency(m), x, passes=2, return_convergence_delta=True),
         ValueError, "convergence"),
    ],
)
def test_bad_input_is_a_clear_error_and_the_model_comes_back(run, error, match):
    model = dropout_cnn()
    before = _state(model)
    with pytest.raises(error, match=match):
        run(model, _x(2))
    assert_same_state(before, _state(model))


def test_softmax_attribution_sums_to_the_change_of_the_probability():
    model, x = ARCHITECTURES["residual_bn"](), _x(3)
    contributions = softmax_attribution(nni.DeepLift(model), x, target=[0, 4, 9], baselines=0.0)
    p, p0 = model(x).softmax(1), model(torch.zeros_like(x)).softmax(1)
    index = torch.arange(3), torch.tensor([0, 4, 9])
    torch.testing.assert_close(contributions.flatten(1).sum(1), p[index] - p0[index])


def test_softmax_attribution_without_baseline_is_the_probability_gradient():
    model, x = ARCHITECTURES["nested_functional"](), _x(2)
    x_grad = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model(x_grad).softmax(1)[:, 3].sum(), x_grad)
    torch.testing.assert_close(softmax_attribution(nni.Saliency(model), x, target=3), expected)


def test_softmax_attribution_rebinds_wrapped_methods_and_leaves_them_unchanged():
    model, x = ARCHITECTURES["nested_functional"](), _x(2)
    inner = nni.Saliency(model)
    wrapped = nni.SmoothGrad(inner, stdevs=0.0, nt_samples=1)
    torch.testing.assert_close(softmax_attribution(wrapped, x, target=[1, 2]), softmax_attribution(inner, x, target=[1, 2]))
    assert wrapped.model is model and wrapped.method.model is model


def test_softmax_attribution_of_a_perturbation_method_perturbs_the_probability():
    model, x = ARCHITECTURES["mnist_cnn"](), _x(2)
    occlusion, window = nni.Occlusion(model), {"sliding_window_shapes": (1, 7, 7), "strides": 7}
    torch.testing.assert_close(
        softmax_attribution(occlusion, x, target=3, **window), occlusion.attribute(x, target=3, output="probability", **window)
    )
    with pytest.raises(TypeError, match="output"):
        softmax_attribution(occlusion, x, target=3, output="logit", **window)


def test_softmax_attribution_refuses_what_it_cannot_explain():
    model, x = nni.models.GAPCNN(map_size=3).double().eval(), _x(2)
    with pytest.raises(TypeError, match="CAM .* undefined.*GradCAM"):
        softmax_attribution(nni.CAM(model, model.features[-1], "fc"), x)
    with pytest.raises(TypeError, match="takes no baselines"):
        softmax_attribution(nni.Saliency(model), x, baselines=0.0)
    with pytest.raises(TypeError, match="attribution object"):
        softmax_attribution(model, x)


def test_softmax_attribution_passes_the_methods_own_n_steps_in_attribute_kwargs():
    model, x = ARCHITECTURES["mnist_cnn"](), _x(2)
    ig = nni.IntegratedGradients(model)
    few = softmax_attribution(ig, x, target=1, baselines=0.0, attribute_kwargs={"n_steps": 2})
    many = softmax_attribution(ig, x, target=1, baselines=0.0)
    assert not torch.allclose(few, many)
    torch.testing.assert_close(few, softmax_attribution(nni.SmoothGrad(ig, stdevs=0.0, nt_samples=1), x, target=1,
                                                        baselines=0.0, attribute_kwargs={"n_steps": 2}))


def test_a_temperature_rescales_logit_maps_but_not_probability_maps():
    # Random weights give logits near 0, where the softmax is almost linear: sharpen them first.
    model, x = TemperatureScaled(ARCHITECTURES["mnist_cnn"](), temperature=0.01).double(), _x(2)
    scaled = TemperatureScaled(model, temperature=2.5).double()
    torch.testing.assert_close(nni.DeepLift(scaled).attribute(x, target=1), nni.DeepLift(model).attribute(x, target=1) / 2.5)
    plain = softmax_attribution(nni.DeepLift(model), x, target=1, baselines=0.0)
    tempered = softmax_attribution(nni.DeepLift(scaled), x, target=1, baselines=0.0)
    cosine = F.cosine_similarity(plain.flatten(1), tempered.flatten(1))
    assert (cosine < 0.999).all(), cosine
    p = scaled(x).softmax(1)[:, 1] - scaled(torch.zeros_like(x)).softmax(1)[:, 1]
    torch.testing.assert_close(tempered.flatten(1).sum(1), p)


# -- Evidential --------------------------------------------------------------------------------------


def test_opinion_masses_sum_to_one():
    evidence = torch.rand(5, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 20
    opinion = dirichlet_opinion(evidence)
    torch.testing.assert_close(opinion.uncertainty + opinion.belief.sum(1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(opinion.probability.sum(1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(opinion.alpha, evidence + 1)
    torch.testing.assert_close(opinion.strength, evidence.sum(1) + 10)
    assert torch.equal(opinion.prediction, evidence.argmax(1))
    no_evidence = dirichlet_opinion(torch.zeros(1, 10))
    assert no_evidence.uncertainty.item() == 1.0 and torch.allclose(no_evidence.probability, torch.full((1, 10), 0.1))


@pytest.mark.parametrize(
    "evidence, match",
    [(torch.tensor([[1.0, -0.5]]), "non-negative"), (torch.ones(3), r"\(N, K\)"), (torch.tensor([[1.0, float("nan")]]), "NaN")],
)
def test_bad_evidence_is_a_clear_error(evidence, match):
    with pytest.raises(ValueError, match=match):
        dirichlet_opinion(evidence)


def test_evidential_loss_annealing_and_errors():
    evidence = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0])
    start = evidential_mse_loss(evidence, labels, epoch=0)
    assert evidential_mse_loss(evidence, labels, epoch=5) > start
    assert evidential_mse_loss(evidence, labels, epoch=10) == evidential_mse_loss(evidence, labels, epoch=50)
    with pytest.raises(ValueError, match="labels"):
        evidential_mse_loss(evidence, torch.tensor([0, 1]), epoch=0)


def test_evidential_opinion_of_a_model():
    model = nn.Sequential(ARCHITECTURES["mnist_cnn"](), nn.ReLU())
    x = _x(3)
    before = _state(model)
    opinion = evidential_opinion(model, x)
    assert_same_state(before, _state(model))
    torch.testing.assert_close(opinion.belief, dirichlet_opinion(model(x)).belief)


def test_zoo_evidential_cnn_is_more_uncertain_off_distribution():
    model = nni.load_model("mnist_evidential_cnn")
    images, _ = nni.data.load_mnist("test", source="embedded")
    images = images[::4]  # a quarter of the split, every class in it
    clean = evidential_opinion(model, images).uncertainty.mean()
    rotated = evidential_opinion(model, nni.data.rotate_images(images, 90.0)).uncertainty.mean()
    noise = evidential_opinion(model, torch.rand(250, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert clean < 0.5 * rotated and clean < noise.uncertainty.mean()


# -- Temperature scaling and calibration ----------------------------------------------------------


def _overconfident(n=600, classes=5, seed=0):
    """Logits of a classifier that is right ~70 % of the time but ~99 % confident."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=generator)
    predicted = torch.where(torch.rand(n, generator=generator) < 0.7, labels, torch.randint(classes, (n,), generator=generator))
    logits = torch.randn(n, classes, generator=generator, dtype=torch.float64)
    logits[torch.arange(n), predicted] += 6.0
    return logits, labels


def test_temperature_is_positive_and_in_the_state_dict():
    scaled = TemperatureScaled(nn.Linear(3, 2), temperature=2.0)
    assert "log_temperature" in scaled.state_dict() and "model.weight" in scaled.state_dict()
    assert scaled.temperature == pytest.approx(2.0)
    with torch.no_grad():
        scaled.log_temperature.fill_(-30.0)
    assert scaled.temperature > 0
    x = torch.rand(4, 3)
    torch.testing.assert_close(TemperatureScaled(scaled.model, 4.0)(x), scaled.model(x) / 4)
    assert "temperature=4" in repr(TemperatureScaled(scaled.model, 4.0))
    with pytest.raises(ValueError, match="positive"):
        TemperatureScaled(nn.Linear(3, 2), temperature=0.0)


def test_fit_lowers_held_out_nll_and_keeps_accuracy():
    logits, labels = _overconfident()
    scaled = TemperatureScaled(nn.Identity()).double()
    before = F.cross_entropy(logits, labels)
    scaled.fit_logits(logits, labels)
    after = F.cross_entropy(scaled(logits), labels)
    assert scaled.temperature > 1.5 and after < before - 0.1
    assert torch.equal(scaled(logits).argmax(1), logits.argmax(1))
    assert expected_calibration_error(scaled(logits).softmax(1), labels) < expected_calibration_error(logits.softmax(1), labels)
    # Refitting from the optimum cannot make the NLL worse.
    temperature = scaled.temperature
    scaled.fit_logits(logits, labels)
    assert F.cross_entropy(scaled(logits), labels) <= after
    assert scaled.temperature == pytest.approx(temperature, rel=1e-4)


def test_fit_runs_the_model_without_gradients_and_accepts_batches():
    model = ARCHITECTURES["mnist_cnn"]()
    x, labels = _x(40), torch.randint(10, (40,), generator=torch.Generator().manual_seed(0))
    before = _state(model)
    from_tensor = TemperatureScaled(model).fit(x, labels, batch_size=16)
    assert_same_state(before, _state(model))
    assert all(p.grad is None for p in model.parameters())
    from_batches = TemperatureScaled(model).fit([(x[:25], labels[:25]), (x[25:], labels[25:])])
    assert from_tensor.temperature == pytest.approx(from_batches.temperature, rel=1e-6)
    with pytest.raises(ValueError, match="labels"):
        TemperatureScaled(model).fit(x)
    with pytest.raises(ValueError, match="out of range"):
        TemperatureScaled(model).fit_logits(torch.zeros(2, 10), torch.tensor([0, 10]))


def test_calibration_bins_are_equal_width_and_upper_inclusive():
    probabilities = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2], [1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]], dtype=torch.float64)
    bins = calibration_bins(probabilities, torch.tensor([0, 0, 1]), n_bins=5)
    assert bins.counts.tolist() == [1, 0, 1, 0, 1]
    assert bins.edges.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert bins.accuracy[1].isnan()
    # Correct at confidence 0.2 and 1.0, wrong at 0.5 (argmax takes the first of a tie).
    assert bins.ece == pytest.approx((0.8 + 0.0 + 0.5) / 3)


def test_calibration_errors():
    with pytest.raises(ValueError, match="softmax"):
        calibration_bins(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        calibration_bins(torch.full((4, 2), 0.5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins"):
        calibration_bins(torch.full((4, 2), 0.5), torch.zeros(4, dtype=torch.long), n_bins=0)


def test_reliability_diagram_draws_accuracy_gap_and_counts():
    logits, labels = _overconfident()
    fig, ax = plt.subplots()
    returned = reliability_diagram(logits.softmax(1), labels, n_bins=10, ax=ax, title="before")
    assert returned is ax and ax.get_title() == "before"
    filled = int((calibration_bins(logits.softmax(1), labels, 10).counts > 0).sum())
    assert len(ax.patches) == 2 * filled and len(ax.texts) == filled
    assert ax.get_legend().get_title().get_text().startswith("ECE")
    plt.close(fig)


def test_evidence_logits_bypass_only_the_final_activation():
    from nn_interpretability.uncertainty import EvidenceLogits

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU())
    x = torch.randn(5, 4)
    scores = EvidenceLogits(model)(x)
    torch.testing.assert_close(scores, model[2](model[1](model[0](x))))
    torch.testing.assert_close(scores.relu(), model(x))
    assert (scores < 0).any()
    assert not model[3]._forward_hooks
    maps = nni.Saliency(EvidenceLogits(model)).attribute(x, target=0)
    assert maps.abs().sum() > 0
    with pytest.raises(ValueError, match="no evidence activation"):
        EvidenceLogits(nn.Linear(4, 3))
