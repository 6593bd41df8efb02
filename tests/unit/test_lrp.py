"""LRP and DeepTaylor: layers and graphs, composites, errors and model-state restoration on those errors.

Batching, targets, dtypes and model state of every registered LRP variant: ``tests/contract``."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import (
    LRP,
    AlphaBeta,
    Composite,
    DeepTaylor,
    Epsilon,
    EpsilonGammaBox,
    EpsilonPlusFlat,
    Flat,
    Gamma,
    MergeBatchNorm,
    Pass,
    ReportComposite,
    WSquare,
    ZBox,
    ZPlus,
)
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES, mnist_like_batch, residual_bn_net, seeded


def gradient_times_input(model, x, target):
    inputs = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(inputs)[torch.arange(len(x)), target].sum(), inputs)
    return gradient * x


def lrp_0(model):
    """LRP-0 with the bias in the denominators and no stabiliser: gradient x input on ReLU networks."""
    return LRP(model, composite=Composite(default=Epsilon(0.0), stabilizer=0.0))


def test_convergence_delta_is_relevance_sum_minus_logit():
    model = ARCHITECTURES["residual_bn"]()
    x = mnist_like_batch(2)
    relevance, delta = LRP(model, rule=Epsilon(0.3)).attribute(x, target=[1, 2], return_convergence_delta=True)
    logits = model(x)[[0, 1], [1, 2]].detach()
    torch.testing.assert_close(delta, relevance.flatten(1).sum(1) - logits)


def test_batch_norm_folding_leaves_parameters_and_outputs_bit_for_bit():
    model = residual_bn_net()
    x = mnist_like_batch(3)
    output = model(x)
    parameters = [p.clone() for p in model.parameters()]
    LRP(model, composite=EpsilonGammaBox(0.0, 1.0)).attribute(x)
    assert all(torch.equal(p, q) for p, q in zip(parameters, model.parameters()))
    assert torch.equal(model(x), output)


@pytest.mark.parametrize(
    "batch, scale_low, scaled",
    [(1, 0.5, True), (64, 0.5, False), (1, -0.5, False)],
    ids=["small output: the scale multiplies the outputs", "large output: folded weight", "a negative scale: folded weight"],
)
def test_zplus_on_a_folded_layer_equals_zplus_on_the_folded_weight(batch, scale_low, scaled):
    # W'+ = diag(s) W+ for s >= 0: the folded layer may keep the scale out of the weight; either way the
    # rule equals z+ on a layer whose weight was folded by hand.
    from nn_interpretability.attribution.lrp.canonizers import FoldedLayer
    from nn_interpretability.attribution.lrp.rules import LinearLayer

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(32, 8, 3, 3, generator=generator, dtype=torch.float64)
    scale = torch.rand(32, generator=generator, dtype=torch.float64) * 1.5 + scale_low
    bias = torch.randn(32, generator=generator, dtype=torch.float64) * 0.1
    options = {"stride": 1, "padding": 1, "dilation": 1, "groups": 1}
    folded = FoldedLayer(LinearLayer("conv2d", weight, None, options), scale, bias)
    by_hand = LinearLayer("conv2d", weight * scale[:, None, None, None], bias, options)
    a = torch.rand(batch, 8, 4, 4, generator=generator, dtype=torch.float64)
    z = by_hand.forward(a, by_hand.weight, bias)
    r = torch.randn(z.shape, generator=generator, dtype=torch.float64)
    assert (folded.positive_part(z)[1] is not None) == scaled
    for rule in (ZPlus(), ZPlus(bias=False)):
        torch.testing.assert_close(rule.relevance(folded, a, z, r), rule.relevance(by_hand, a, z, r), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_nonnegative_denominator_is_stabilised_as_the_signed_rule_does(dtype):
    # z + epsilon (one pass) for z >= 0 must equal z + epsilon * sign(z) with sign(0) = +1, -0.0 included.
    from nn_interpretability.attribution.lrp.rules import quotient, stabilize

    z = torch.tensor([0.0, -0.0, 1e-9, 3.0, 1e-6, 0.5], dtype=dtype)
    r = torch.tensor([1.0, -2.0, 3.0, -4.0, 5.0, 6.0], dtype=dtype)
    assert torch.equal(quotient(r, z, 1e-6, nonnegative=True), r / stabilize(z, 1e-6))
    assert torch.equal(quotient(r, z, 1e-6, nonnegative=True), quotient(r, z, 1e-6))
    assert (quotient(r, z, 1e-6, nonnegative=True)[:2] == r[:2] / 1e-6).all()  # both zeros move up, to +epsilon


@pytest.mark.parametrize("zeros", [(), (0,), (0, 3)])
def test_an_unstabilised_zero_denominator_passes_no_relevance(zeros):
    # With epsilon 0, r / 0 (inf) and 0 / 0 (nan) read as 0; every other ratio is r / z exactly.
    from nn_interpretability.attribution.lrp.rules import quotient

    z = torch.tensor([2.0, -1.0, 1e-9, 4.0, -3.0], dtype=torch.float64)
    r = torch.tensor([1.0, 0.0, 3.0, 0.0, -5.0], dtype=torch.float64)
    z[list(zeros)] = 0.0
    expected = torch.tensor([0.0 if i in zeros else (r[i] / z[i]).item() for i in range(5)], dtype=torch.float64)
    assert torch.equal(quotient(r, z, 0.0), expected)
    ratios = r[:, None] / z
    ratios[:, list(zeros)] = 0.0
    assert torch.equal(quotient(r[:, None], z, 0.0), ratios)  # a broadcast denominator too


@pytest.mark.parametrize(
    "kind, input_shape, kernel",
    [
        ("conv2d", (3, 2, 29, 31), (4, 4)), ("conv1d", (2, 3, 17), (5,)), ("conv3d", (1, 2, 9, 8, 10), (3, 2, 3)),
        ("conv2d", (3, 5, 7, 6), (1, 1)), ("conv3d", (2, 4, 3, 5, 2), (1, 1, 1)),
    ],
    ids=["2-d with a remainder", "1-d", "3-d, unequal kernel", "2-d pointwise", "3-d pointwise"],
)
@pytest.mark.parametrize("channels_last", [False, True], ids=["channels first", "channels last"])
def test_a_patchify_convolution_transposes_as_pytorch_does(kind, input_shape, kernel, channels_last):
    # stride = kernel: the transposed convolution is one matrix product (a ViT's patch embedding; a 1 x 1
    # convolution, by sample on channels-first relevance).
    from nn_interpretability.attribution.lrp.rules import LinearLayer

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(6, input_shape[1], *kernel, generator=generator, dtype=torch.float64)
    layer = LinearLayer(kind, weight, None, {"stride": kernel, "padding": 0, "dilation": 1, "groups": 1})
    a = torch.randn(input_shape, generator=generator, dtype=torch.float64)
    s = torch.randn(layer.forward(a, weight).shape, generator=generator, dtype=torch.float64)
    if channels_last:
        s = s.movedim(1, -1).contiguous().movedim(-1, 1)
    assert layer._is_patchify(weight) and s.is_contiguous() != channels_last
    reference = getattr(torch.nn.grad, f"{kind}_input")(a.shape, weight, s, stride=kernel)
    torch.testing.assert_close(layer.transpose(s, weight, a.shape), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda m: LRP(m, composite=EpsilonGammaBox(0.2, 1.0)).attribute(mnist_like_batch(2)), ValueError),
        (lambda m: LRP(m, composite=Composite({nn.Linear: Epsilon()})).attribute(mnist_like_batch(2)), ValueError),
    ],
    ids=["input outside the ZBox", "no rule for a layer"],
)
def test_model_comes_back_unchanged_when_the_method_raises(make, error):
    model = residual_bn_net()
    before = _state(model)
    with pytest.raises(error):
        make(model)
    assert_same_state(before, _state(model))


def test_batch_norm_in_train_mode_is_a_clear_error_and_the_model_comes_back():
    model = residual_bn_net().train()
    before = _state(model)
    with pytest.raises(ValueError, match=r"'bn1' \(BatchNorm2d\).*model.eval\(\)"):
        LRP(model).attribute(mnist_like_batch(2))
    assert_same_state(before, _state(model))


def test_works_under_no_grad_and_leaves_no_parameter_gradients():
    model = ARCHITECTURES["nested_functional"]()
    with torch.no_grad():
        relevance = LRP(model).attribute(mnist_like_batch(2), target=0)
    assert relevance.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_dtype_comes_from_the_inputs():
    model = ARCHITECTURES["mnist_cnn"]().float()
    relevance = LRP(model, composite=EpsilonGammaBox(0.0, 1.0)).attribute(mnist_like_batch(2, dtype=torch.float32))
    assert relevance.dtype == torch.float32 and torch.isfinite(relevance).all()


class Residual(nn.Module):
    """In-place residual addition and in-place activations written three ways, a reused conv, no BatchNorm."""

    def __init__(self, in_place: bool):
        super().__init__()
        self.in_place = in_place
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 7 * 7, 10)

    def forward(self, x):
        h = F.relu(self.stem(x), inplace=self.in_place)
        out = self.conv(h)
        if self.in_place:
            out += h
            out = out.relu_()
            out = self.conv(out)  # the same module again: a second layer position
            out += h
        else:
            out = self.conv((out + h).relu()) + h
        return self.fc(F.avg_pool2d(torch.relu(out), 4).flatten(1))


def test_in_place_additions_and_activations_equal_their_out_of_place_form():
    in_place, out_of_place = seeded(lambda: Residual(True)), seeded(lambda: Residual(False))
    x = mnist_like_batch(3)
    for lrp in (lambda m: LRP(m, composite=EpsilonGammaBox(0.0, 1.0)), lrp_0):
        torch.testing.assert_close(lrp(in_place).attribute(x, target=2), lrp(out_of_place).attribute(x, target=2))
    torch.testing.assert_close(lrp_0(in_place).attribute(x, target=2), gradient_times_input(in_place, x, 2))


def test_a_reused_module_has_one_position_per_call():
    model = seeded(lambda: Residual(False))
    table = LRP(model, composite=Composite({1: Gamma(), 2: Epsilon(0.5)}, default=Epsilon())).layer_rules(
        mnist_like_batch(1)
    )
    assert [(name, position) for name, _, position, _ in table] == [("stem", 0), ("conv", 1), ("conv", 2), ("fc", 3)]
    assert isinstance(table[1][3], Gamma) and table[2][3].epsilon == 0.5


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 5, padding="same", padding_mode="reflect")
        self.conv2 = nn.Conv1d(3, 3, 4, padding="same")  # even kernel: asymmetric 'same' padding
        self.bn = nn.BatchNorm1d(3)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool1d(F.leaky_relu(self.bn(self.conv2(torch.relu(self.conv(x))))), 1).flatten(1))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv1d_with_same_and_reflect_padding_and_batch_norm():
    model = seeded(Conv1dNet)
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, delta = LRP(model, composite=Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0)).attribute(
        x, target=1, return_convergence_delta=True
    )
    torch.testing.assert_close(delta, torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    # Without the LeakyReLU (whose relevance passes through, unlike its gradient) LRP-0 is gradient x input.
    model.forward = lambda x: model.fc(
        F.adaptive_avg_pool1d(model.bn(model.conv2(torch.relu(model.conv(x)))), 1).flatten(1)
    )
    torch.testing.assert_close(lrp_0(model).attribute(x, target=1), gradient_times_input(model, x, 1))


class SameConvReLU6(nn.Module):
    """EfficientNet-Lite's building blocks: TensorFlow 'SAME' stride-2 convolution, BatchNorm, ReLU6, dropout."""

    def __init__(self):
        super().__init__()
        self.stem = nni.models.efficientnet_lite.Conv2dSame(1, 4, 3, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU6()
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(self.drop(self.act(self.bn(self.stem(x))).flatten(1)))


def test_same_padding_subclass_relu6_and_batch_norm():
    model = seeded(SameConvReLU6)
    x = mnist_like_batch(2)
    torch.testing.assert_close(lrp_0(model).attribute(x, target=3), gradient_times_input(model, x, 3))


def test_dropout_in_train_mode_passes_relevance_through():
    model = seeded(lambda: nni.models.MNISTCNN(dropout=0.5)).train()
    x = mnist_like_batch(2)
    torch.manual_seed(0)
    _, delta = LRP(model, composite=Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0)).attribute(
        x, target=0, return_convergence_delta=True
    )
    torch.testing.assert_close(delta, torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)


class WithInstanceNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.norm = nn.InstanceNorm1d(2, affine=True)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.norm(self.fc1(x).view(-1, 2, 5))).flatten(1))


def test_unsupported_layer_names_the_module_and_how_to_map_it():
    model = seeded(WithInstanceNorm)
    x = torch.rand(2, 6, dtype=torch.float64)
    before = _state(model)
    with pytest.raises(ValueError, match=r"module 'norm' \(InstanceNorm1d\).*Composite\(\{'norm': Pass\(\)\}"):
        LRP(model, rule=Epsilon()).attribute(x)
    assert_same_state(before, _state(model))
    with pytest.raises(ValueError, match=r"'norm' \(InstanceNorm1d\) calls torch.nn.functional.instance_norm, which only Pass\(\) can handle"):
        LRP(model, composite=Composite({nn.InstanceNorm1d: Epsilon()}, default=Epsilon())).attribute(x)
    mapped = LRP(model, composite=Composite({"norm": Pass()}, default=Epsilon(0.0, bias=False), stabilizer=0.0))
    _, delta = mapped.attribute(x, target=1, return_convergence_delta=True)
    torch.testing.assert_close(delta, torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)


def test_layer_without_a_rule_names_the_layer():
    model = ARCHITECTURES["mnist_cnn"]()
    with pytest.raises(ValueError, match=r"layer 'classifier.1' \(Linear\) at layer position 3 of 5.*Composite\("):
        LRP(model, composite=Composite({nn.Conv2d: Epsilon(), "classifier.3": Epsilon()})).attribute(mnist_like_batch(1))


class Gated(nn.Module):
    def __init__(self, ending):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.ending = ending

    def forward(self, x):
        h = self.fc(x)
        endings = {
            "ratio": lambda: h / (1 + h * h),
            "log_softmax": lambda: torch.log_softmax(h, dim=1),
            # Calls the catalogue does not know, which the tracer once passed with their plain gradient.
            "abs": lambda: h.abs(),
            "normalize": lambda: F.normalize(h, dim=1),
        }
        return endings[self.ending]()


@pytest.mark.parametrize(
    "ending, match",
    [
        ("ratio", "quotient of two activations"),
        ("log_softmax", "remove a final softmax"),
        ("abs", "LRP has no rule for Tensor.abs, which the model applies to a tensor that relevance flows through"),
        ("normalize", "LRP has no rule for torch.nn.functional.normalize, .* the operation catalogue"),
    ],
)
def test_operations_without_a_rule_raise(ending, match):
    model = seeded(lambda: Gated(ending))
    with pytest.raises(NotImplementedError, match=match):
        LRP(model).attribute(torch.rand(2, 4, dtype=torch.float64))


def test_scaling_by_a_constant_passes_relevance_through():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)

        def forward(self, x):
            h = torch.relu(self.fc1(x * 2.0 - 1.0)) / 3.0
            h *= 0.5
            return self.fc2(h)

    model = seeded(Scaled)
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, delta = LRP(model, composite=Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0)).attribute(
        x, target=2, return_convergence_delta=True
    )
    torch.testing.assert_close(delta, torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_composite_keys_by_position_name_type_and_range():
    model = ARCHITECTURES["mnist_cnn"]()
    composite = Composite(
        {-1: Epsilon(0.0), range(1, 3): Gamma(0.5), "classifier.*": Epsilon(0.7), nn.Conv2d: Flat(), 0: WSquare()}
    )
    rules = [rule for *_, rule in LRP(model, composite=composite).layer_rules(mnist_like_batch(1))]
    assert [type(rule).__name__ for rule in rules] == ["WSquare", "Gamma", "Gamma", "Epsilon", "Epsilon"]
    assert rules[3].epsilon == 0.7 and rules[4].epsilon == 0.0
    last_two = Composite({range(-2, 0): Flat()}, default=Epsilon())
    rules = [rule for *_, rule in LRP(model, composite=last_two).layer_rules(mnist_like_batch(1))]
    assert [type(rule).__name__ for rule in rules] == ["Epsilon", "Epsilon", "Epsilon", "Flat", "Flat"]


def test_report_composite_assigns_zbox_alpha_beta_epsilon_lrp0():
    table = LRP(ARCHITECTURES["mnist_cnn"](), composite=ReportComposite(0.0, 1.0)).layer_rules(mnist_like_batch(1))
    assert [(name, repr(rule)) for name, _, _, rule in table] == [
        ("features.0", "ZBox(low=0.0, high=1.0, stabilizer=1e-06)"),
        ("features.2", "AlphaBeta(alpha=2.0, beta=1.0, stabilizer=1e-06, bias=True)"),
        ("features.5", "AlphaBeta(alpha=2.0, beta=1.0, stabilizer=1e-06, bias=True)"),
        ("classifier.1", "Epsilon(epsilon=0.25, bias=True)"),
        ("classifier.3", "Epsilon(epsilon=0.0, bias=True)"),
    ]


def test_batch_norm_folds_into_the_layer_before_it_and_can_be_switched_off():
    model = residual_bn_net()
    x = mnist_like_batch(2)
    table = LRP(model, rule=Epsilon()).layer_rules(x)
    assert [(name, kind) for name, kind, *_ in table] == [("stem", "conv"), ("conv", "conv"), ("fc", "linear")]
    unfolded = LRP(model, rule=Epsilon(), canonizers=()).layer_rules(x)
    assert ("bn1", "batch_norm", None) in [(name, kind, position) for name, kind, position, _ in unfolded]
    assert isinstance(dict((n, r) for n, _, _, r in unfolded)["bn2"], Pass)
    # Unfolded, a BatchNorm can also get a rule of its own, as a per-channel affine layer.
    as_layer = LRP(model, composite=Composite({nn.BatchNorm2d: Epsilon(0.0)}, default=Epsilon(0.0)), canonizers=())
    folded = LRP(model, composite=Composite(default=Epsilon(0.0)))
    torch.testing.assert_close(as_layer.attribute(x, target=1), folded.attribute(x, target=1))


def test_zbox_takes_per_channel_bounds_and_checks_them():
    model = seeded(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)))
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    low, high = torch.tensor([0.0, -1.0, 0.0]).reshape(3, 1, 1), torch.tensor([1.0, 1.0, 2.0]).reshape(3, 1, 1)
    per_channel = LRP(model, composite=EpsilonGammaBox(low, high)).attribute(x, target=0)
    full = LRP(model, composite=EpsilonGammaBox(low.expand(3, 8, 8), high.expand(3, 8, 8))).attribute(x, target=0)
    torch.testing.assert_close(per_channel, full)
    with pytest.raises(ValueError, match="does not broadcast"):
        LRP(model, composite=EpsilonGammaBox(torch.zeros(4), 1.0)).attribute(x)
    with pytest.raises(ValueError, match="outside the ZBox bounds"):
        LRP(model, composite=EpsilonGammaBox(0.5, 1.0)).attribute(x)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: AlphaBeta(1.0, 1.0), ValueError, "alpha - beta = 1"),
        (lambda: AlphaBeta(0.5, -0.5), ValueError, "beta >= 0"),
        (lambda: Gamma(-0.1), ValueError, "gamma must be"),
        (lambda: Epsilon(float("nan")), ValueError, "epsilon must be"),
        (lambda: Epsilon(0.1, bias="no"), TypeError, "bias must be"),
        (lambda: ZPlus(stabilizer=-1), ValueError, "stabilizer must be"),
        (lambda: ZBox(1.0, 0.0), ValueError, "low <= high"),
        (lambda: ZBox("low", 1.0), TypeError, "number or a tensor"),
        (lambda: Composite({3.5: Epsilon()}), TypeError, "composite keys"),
        (lambda: Composite({nn.Linear: "epsilon"}), TypeError, "must be an LRP rule"),
        (lambda: LRP(nn.Linear(2, 2), rule=Epsilon(), composite=EpsilonPlusFlat()), ValueError, "not both"),
        (lambda: LRP(nn.Linear(2, 2), rule="epsilon"), TypeError, "LRP rule"),
        (lambda: LRP(nn.Linear(2, 2), composite={nn.Linear: Epsilon()}), TypeError, "composite must be"),
        (lambda: LRP(nn.Linear(2, 2), canonizers=["merge"]), TypeError, "MergeBatchNorm"),
    ],
)
def test_bad_configuration_is_a_clear_error(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_missing_batch_dimension_is_a_clear_error():
    with pytest.raises(ValueError, match="unsqueeze"):
        LRP(ARCHITECTURES["mnist_cnn"]()).attribute(torch.rand(28, 28, dtype=torch.float64))


def test_lrp_0_zero_denominators_give_zero_not_nan():
    network = nni.models.xor_network()
    relevance = LRP(network, rule=Epsilon(0.0, bias=False)).attribute(torch.tensor([[3.0, 3.0]], dtype=torch.float64))
    assert relevance.tolist() == [[0.0, 0.0]]


def test_names_resolve_at_the_top_level_and_in_the_registry():
    model = ARCHITECTURES["mnist_cnn"]()
    assert nni.LRP is LRP and nni.DeepTaylor is DeepTaylor
    assert nni.get_method("lrp") is LRP
    assert isinstance(nni.get_method("deep-taylor", model, low=0.0, high=1.0), DeepTaylor)
    expected = {
        "lrp-0": Epsilon(0.0),
        "lrp-epsilon": Epsilon(0.25),
        "lrp-gamma": Gamma(0.25),
        "lrp-alpha2-beta1": AlphaBeta(2.0, 1.0),
    }
    for name, rule in expected.items():
        method = nni.get_method(name, model)
        assert isinstance(method, LRP) and repr(method.composite.default) == repr(rule)
    assert isinstance(nni.get_method("lrp-composite", model).composite, ReportComposite)
    assert isinstance(LRP(model).composite, EpsilonPlusFlat) and isinstance(LRP(model).canonizers[0], MergeBatchNorm)


def test_normalisation_without_parameters_is_refused_not_passed_as_a_gradient():
    model = nn.Sequential(nn.Linear(4, 4), nn.Unflatten(1, (2, 2)), nn.InstanceNorm1d(2), nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(NotImplementedError, match="no rule for torch.nn.functional.instance_norm \\(a normalisation without parameters\\)"):
        LRP(model.double()).attribute(torch.rand(2, 4, dtype=torch.float64))
