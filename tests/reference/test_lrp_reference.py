"""LRP and deep Taylor decomposition against Zennit, the explicit contribution-matrix reference, the textbook's
problem P9.3 and the properties LRP must satisfy (conservation, LRP-0 = gradient x input, DTD = z+ with z^B)."""
import copy

import pytest
import torch
import torchvision
from torch import nn
from zennit import composites as zc
from zennit import rules as zr
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.layer import Sum
from zennit.torchvision import ResNetCanonizer
from zennit.types import Activation, AvgPool, BatchNorm, Convolution
from zennit.types import Linear as ZennitLinear

import nn_interpretability as nni
from lrp_matrix_reference import lrp_dense
from nn_interpretability.attribution.lrp import (
    LRP,
    AlphaBeta,
    Composite,
    DeepTaylor,
    Epsilon,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlusFlat,
    Flat,
    Gamma,
    Pass,
    WSquare,
    ZBox,
    ZPlus,
)
from toy_models import ARCHITECTURES, mnist_cnn, mnist_like_batch, residual_bn_net, seeded


def assert_relative(ours, theirs, tolerance=1e-6):
    """Relative error at most ``tolerance``, measured against the largest relevance of the reference."""
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance * theirs.abs().max().item())


def zennit_relevance(model, x, target, composite):
    """Zennit's LRP: gradient of the output under the composite, started from the target logit (eq. 9.20)."""
    x = x.clone().requires_grad_(True)
    target = torch.as_tensor(target)
    with composite.context(model) as modified:
        output = modified(x)
        start = torch.zeros_like(output)
        start[torch.arange(len(x)), target] = output[torch.arange(len(x)), target].detach()
        (relevance,) = torch.autograd.grad(output, x, start)
    return relevance


def zennit_uniform(rule, canonizers=()):
    """One Zennit rule on every linear layer, with Zennit's usual treatment of the other layers."""
    return zc.LayerMapComposite(
        [(Activation, zr.Pass()), (Sum, zr.Norm()), (AvgPool, zr.Norm()), (BatchNorm, zr.Pass()), (ZennitLinear, rule)],
        canonizers=list(canonizers),
    )


# Ours and Zennit's version of each rule; ``bias=False`` is Zennit's ``zero_params=["bias"]``.
RULES = {
    "epsilon": (lambda bias: Epsilon(0.1, bias=bias), lambda zp: zr.Epsilon(0.1, zero_params=zp)),
    "lrp-0": (lambda bias: Epsilon(1e-9, bias=bias), lambda zp: zr.Epsilon(1e-9, zero_params=zp)),
    "gamma": (lambda bias: Gamma(0.25, bias=bias), lambda zp: zr.Gamma(0.25, zero_params=zp)),
    "alpha2-beta1": (lambda bias: AlphaBeta(2, 1, bias=bias), lambda zp: zr.AlphaBeta(2, 1, zero_params=zp)),
    "alpha1-beta0": (lambda bias: AlphaBeta(1, 0, bias=bias), lambda zp: zr.AlphaBeta(1, 0, zero_params=zp)),
    "zplus": (lambda bias: ZPlus(bias=bias), lambda zp: zr.ZPlus(zero_params=zp)),
    "flat": (lambda bias: Flat(), lambda zp: zr.Flat()),
    "wsquare": (lambda bias: WSquare(bias=bias), lambda zp: zr.WSquare(zero_params=zp)),
}


def dense_net(seed=0):
    return seeded(lambda: nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 5)), seed)


def _randomize_batch_norms(model, seed, eps=0.0):
    """Non-trivial BatchNorm statistics. ``eps=0`` because Zennit's merged BatchNorm keeps its ``eps``
    and so still divides by ``sqrt(1 + eps)``: its canonized model is off by that factor per BatchNorm,
    ours is exact (see ``test_batch_norm_fold_is_exact``)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.eps = eps
                module.running_mean.copy_(torch.randn(n, generator=generator, dtype=torch.float64) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator, dtype=torch.float64) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator, dtype=torch.float64) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator, dtype=torch.float64) * 0.1)
    return model


class VGGStyle(nn.Module):
    """A small VGG: conv-BN-ReLU blocks, max-pooling, adaptive average pooling, a dropout classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(64, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg_style(seed=0, eps=0.0):
    return _randomize_batch_norms(seeded(VGGStyle, seed), seed, eps)


def resnet18(seed=0, eps=0.0):
    return _randomize_batch_norms(seeded(lambda: torchvision.models.resnet18(weights=None), seed), seed, eps)


def image_batch(n=2, side=16, seed=0):
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_matches_zennit_on_a_dense_net(rule, bias):
    model = dense_net(seed=2)
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)  # both signs
    target = [0, 1, 4, 2]
    ours, theirs = RULES[rule]
    expected = zennit_relevance(model, x, target, zennit_uniform(theirs(None if bias else ["bias"])))
    assert_relative(LRP(model, rule=ours(bias)).attribute(x, target=target), expected)


def test_zbox_on_the_input_layer_matches_zennit_on_a_dense_net():
    model = dense_net(seed=3)
    x = torch.rand(3, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1
    low, high = torch.full((12,), -1.0, dtype=torch.float64), torch.linspace(1.0, 2.0, 12, dtype=torch.float64)
    theirs = zc.NameLayerMapComposite(
        name_map=[(("0",), zr.ZBox(low[None], high[None]))], layer_map=[(Activation, zr.Pass()), (ZennitLinear, zr.Epsilon(0.1))]
    )
    ours = Composite({"0": ZBox(low, high)}, default=Epsilon(0.1))
    assert_relative(LRP(model, composite=ours).attribute(x, target=1), zennit_relevance(model, x, [1] * 3, theirs))


COMPOSITES = {
    "EpsilonGammaBox": (lambda: EpsilonGammaBox(0.0, 1.0), lambda c: zc.EpsilonGammaBox(0.0, 1.0, canonizers=c)),
    "EpsilonPlusFlat": (EpsilonPlusFlat, lambda c: zc.EpsilonPlusFlat(canonizers=c)),
    "EpsilonAlpha2Beta1": (EpsilonAlpha2Beta1, lambda c: zc.EpsilonAlpha2Beta1(canonizers=c)),
    "EpsilonGammaBox(eps=0.25, gamma=0.5)": (
        lambda: EpsilonGammaBox(0.0, 1.0, epsilon=0.25, gamma=0.5),
        lambda c: zc.EpsilonGammaBox(0.0, 1.0, epsilon=0.25, gamma=0.5, canonizers=c),
    ),
}


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_composites_match_zennit_on_the_mnist_cnn(composite):
    model = mnist_cnn(seed=1)
    x = mnist_like_batch(3, seed=1)
    target = [3, 0, 9]
    ours, theirs = COMPOSITES[composite]
    assert_relative(LRP(model, composite=ours()).attribute(x, target=target), zennit_relevance(model, x, target, theirs([])))


@pytest.mark.parametrize("rule", ["epsilon", "gamma", "alpha2-beta1", "wsquare"])
def test_rules_match_zennit_on_the_mnist_cnn(rule):
    model = mnist_cnn(seed=2)
    x = mnist_like_batch(2, seed=2)
    ours, theirs = RULES[rule]
    expected = zennit_relevance(model, x, [5, 7], zennit_uniform(theirs(None)))
    assert_relative(LRP(model, rule=ours(True)).attribute(x, target=[5, 7]), expected)


@pytest.mark.parametrize("composite", ["EpsilonGammaBox", "EpsilonPlusFlat", "EpsilonAlpha2Beta1"])
def test_composites_with_batch_norm_canonizer_match_zennit_on_a_vgg_style_cnn(composite):
    model = vgg_style(seed=3)
    x = image_batch(3, seed=3)
    target = [1, 2, 8]
    ours, theirs = COMPOSITES[composite]
    expected = zennit_relevance(model, x, target, theirs([SequentialMergeBatchNorm()]))
    assert_relative(LRP(model, composite=ours()).attribute(x, target=target), expected)


@pytest.mark.parametrize("composite", ["EpsilonGammaBox", "EpsilonPlusFlat", "EpsilonAlpha2Beta1"])
def test_composites_match_zennit_on_resnet18(composite):
    # BatchNorm folded into every convolution, in-place ReLU modules reused, residual additions split by
    # the sum rule (Zennit: ResNetCanonizer's Sum module with the Norm rule).
    model = resnet18(seed=4)
    x = image_batch(2, side=32, seed=4)
    target = [7, 420]
    ours, theirs = COMPOSITES[composite]
    expected = zennit_relevance(model, x, target, theirs([ResNetCanonizer()]))
    assert_relative(LRP(model, composite=ours()).attribute(x, target=target), expected)


def test_gamma_everywhere_matches_zennit_on_resnet18():
    model = resnet18(seed=5)
    x = image_batch(1, side=32, seed=5)
    expected = zennit_relevance(model, x, [3], zennit_uniform(zr.Gamma(0.25), [ResNetCanonizer()]))
    assert_relative(LRP(model, rule=Gamma(0.25)).attribute(x, target=3), expected)


def _fold_batch_norms_by_hand(model):
    """A copy of ``model`` with each BatchNorm folded into the convolution before it and replaced by Identity."""
    folded = copy.deepcopy(model)
    pairs = [(name, module) for name, module in folded.named_modules() if isinstance(module, nn.BatchNorm2d)]
    convs = {"features.1": "features.0", "features.4": "features.3", "features.8": "features.7"}
    for name, bn in pairs:
        conv = folded.get_submodule(convs[name])
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        with torch.no_grad():
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
        parent, child = name.rsplit(".", 1)
        setattr(folded.get_submodule(parent), child, nn.Identity())
    return folded


@pytest.mark.parametrize("composite", ["EpsilonGammaBox", "EpsilonPlusFlat"])
def test_batch_norm_fold_is_exact(composite):
    # With the usual eps = 1e-5: the on-the-fly fold equals LRP on a model whose parameters were folded by hand.
    model = vgg_style(seed=6, eps=1e-5)
    x = image_batch(2, seed=6)
    ours = COMPOSITES[composite][0]
    folded = _fold_batch_norms_by_hand(model)
    assert_relative(
        LRP(model, composite=ours()).attribute(x, target=[0, 1]),
        LRP(folded, composite=ours()).attribute(x, target=[0, 1]),
        tolerance=1e-12,
    )


def _dense_reference(model, x, target, specs):
    layers = [m for m in model if isinstance(m, nn.Linear)]
    weights = [layer.weight.tolist() for layer in layers]
    biases = [layer.bias.tolist() for layer in layers]
    return torch.tensor(
        [lrp_dense(weights, biases, row.tolist(), t, specs) for row, t in zip(x, target)], dtype=torch.float64
    )


# Our rule and the matrix reference's description of it.
MATRIX_RULES = {
    "lrp-0": (Epsilon(0.0), {"name": "epsilon", "epsilon": 0.0}),
    "lrp-0 (no bias)": (Epsilon(0.0, bias=False), {"name": "epsilon", "epsilon": 0.0, "bias": False}),
    "epsilon": (Epsilon(0.5), {"name": "epsilon", "epsilon": 0.5}),
    "epsilon (no bias)": (Epsilon(0.5, bias=False), {"name": "epsilon", "epsilon": 0.5, "bias": False}),
    "gamma": (Gamma(0.25, stabilizer=0.0), {"name": "gamma", "gamma": 0.25}),
    "gamma (no bias)": (Gamma(1.0, 1e-6, bias=False), {"name": "gamma", "gamma": 1.0, "bias": False, "stabilizer": 1e-6}),
    "alpha2-beta1": (AlphaBeta(2, 1, 1e-6), {"name": "alpha_beta", "alpha": 2, "beta": 1, "stabilizer": 1e-6}),
    "alpha1-beta0 (no bias)": (
        AlphaBeta(1, 0, 0.0, bias=False),
        {"name": "alpha_beta", "alpha": 1, "beta": 0, "bias": False},
    ),
    "zplus": (ZPlus(1e-6), {"name": "alpha_beta", "alpha": 1, "beta": 0, "stabilizer": 1e-6}),
    "flat": (Flat(0.0), {"name": "flat"}),
    "wsquare": (WSquare(0.0), {"name": "wsquare"}),
    "wsquare (no bias)": (WSquare(0.0, bias=False), {"name": "wsquare", "bias": False}),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rule", sorted(MATRIX_RULES))
def test_every_rule_matches_the_contribution_matrices(rule, seed):
    model = dense_net(seed)
    x = torch.randn(3, 12, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
    target = [0, 3, 4]
    ours, spec = MATRIX_RULES[rule]
    expected = _dense_reference(model, x, target, [spec] * 3)
    torch.testing.assert_close(LRP(model, rule=ours).attribute(x, target=target), expected, rtol=1e-10, atol=1e-12)


def test_a_composite_matches_the_contribution_matrices_layer_by_layer():
    model = dense_net(4)
    x = torch.rand(3, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    low, high = torch.zeros(12, dtype=torch.float64), torch.ones(12, dtype=torch.float64)
    composite = Composite({0: ZBox(low, high, 0.0), 1: AlphaBeta(2, 1, 0.0), -1: Epsilon(0.0)})
    specs = [
        {"name": "zbox", "low": low.tolist(), "high": high.tolist()},
        {"name": "alpha_beta", "alpha": 2, "beta": 1},
        {"name": "epsilon", "epsilon": 0.0},
    ]
    expected = _dense_reference(model, x, [1, 2, 3], specs)
    torch.testing.assert_close(LRP(model, composite=composite).attribute(x, target=[1, 2, 3]), expected)


def test_pass_matches_the_identity_contribution_matrix():
    model = seeded(lambda: nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 4)))
    x = torch.rand(2, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    composite = Composite({0: Pass()}, default=Epsilon(0.0))
    layers = [model[0], model[2]]
    expected = torch.tensor(
        [
            lrp_dense([m.weight.tolist() for m in layers], [m.bias.tolist() for m in layers], row.tolist(), 1,
                      [{"name": "pass"}, {"name": "epsilon", "epsilon": 0.0}])
            for row in x
        ],
        dtype=torch.float64,
    )  # fmt: skip
    torch.testing.assert_close(LRP(model, composite=composite).attribute(x, target=1), expected)


def test_textbook_p9_3_lrp_0():
    # P9.3 i: p = [0, 3], c = 1 (index 0); LRP-0 with the bias left out of the denominators (eq. 9.27).
    network = nni.models.xor_network()
    p = torch.tensor([[0.0, 3.0]], dtype=torch.float64)
    assert network(p).argmax(1).item() == 0
    relevance = LRP(network, rule=Epsilon(0.0, bias=False)).attribute(p)
    assert relevance.tolist() == [[0.0, 1.5]]


@pytest.mark.parametrize("epsilon", [1e-6, 0.1, 1.0])
def test_textbook_p9_3_lrp_epsilon(epsilon):
    # P9.3 ii: p = [3, 3], c = 2 (index 1); every hidden unit is off, so LRP-epsilon gives no relevance.
    network = nni.models.xor_network()
    p = torch.tensor([[3.0, 3.0]], dtype=torch.float64)
    assert network(p).argmax(1).item() == 1
    assert LRP(network, rule=Epsilon(epsilon, bias=False)).attribute(p).tolist() == [[0.0, 0.0]]


CONSERVING = {
    "lrp-0": lambda: Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0),
    "gamma": lambda: Composite(default=Gamma(0.5, 0.0, bias=False), stabilizer=0.0),
    "zplus + zbox": lambda: Composite({0: ZBox(0.0, 1.0, 0.0)}, default=ZPlus(0.0, bias=False), stabilizer=0.0),
    "epsilon-gamma-box": lambda: EpsilonGammaBox(0.0, 1.0, epsilon=0.0, stabilizer=0.0, bias=False),
}


CONSERVING_MODELS = {"dense": lambda seed: dense_net(seed), **ARCHITECTURES}


# Conservation needs every neuron that holds relevance to have a non-zero denominator. A unit whose
# receptive field is all zeros (after ReLU and max-pooling) but whose bias switches it on holds relevance
# that none of its inputs can take (0/0): that happens in the nested CNN, and for z+ (no positive
# contribution) in the residual net, on these inputs, so those pairs are left out.
@pytest.mark.parametrize(
    "arch, composite",
    [(arch, composite) for arch in sorted(CONSERVING_MODELS) for composite in sorted(CONSERVING)
     if arch != "nested_functional" and (arch, composite) != ("residual_bn", "zplus + zbox")],
)  # fmt: skip
def test_relevance_is_conserved_without_bias(arch, composite):
    # Eq. 9.21-9.26: with the bias out of the denominators every layer passes on exactly the relevance it
    # received, so the input relevance sums to the target logit (also through max-pooling, average
    # pooling and residual additions with a zero stabiliser).
    model = CONSERVING_MODELS[arch](seed=3)
    if arch == "dense":
        x = torch.rand(4, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        target = [0, 1, 2, 3]
    else:
        x, target = mnist_like_batch(4, seed=3), [0, 5, 7, 9]
    relevance, delta = LRP(model, composite=CONSERVING[composite]()).attribute(
        x, target=target, return_convergence_delta=True
    )
    logits = model(x)[torch.arange(4), target]
    torch.testing.assert_close(relevance.flatten(1).sum(1), logits.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(delta, torch.zeros(4, dtype=torch.float64), rtol=0, atol=1e-10)


def test_bias_in_the_denominator_loses_relevance():
    model = mnist_cnn(seed=4)
    x = mnist_like_batch(2, seed=4)
    _, delta = LRP(model, rule=Epsilon(0.0, bias=True)).attribute(x, target=1, return_convergence_delta=True)
    assert delta.abs().min() > 1e-3


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_lrp_0_with_bias_equals_gradient_times_input(arch):
    # Montavon et al. 2019: LRP-0 on every layer of a ReLU network is gradient x input (the report's
    # remark under eq. 18); holds through folded BatchNorm, functional ReLUs, pooling and residual adds.
    model = ARCHITECTURES[arch](seed=5)
    x = mnist_like_batch(3, seed=5)
    target = torch.tensor([2, 4, 6])
    relevance = LRP(model, composite=Composite(default=Epsilon(0.0), stabilizer=0.0)).attribute(x, target=target)
    inputs = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(inputs).gather(1, target[:, None]).sum(), inputs)
    torch.testing.assert_close(relevance, gradient * x, rtol=1e-10, atol=1e-14)


def test_lrp_0_equals_gradient_times_input_on_resnet18():
    model = resnet18(seed=6, eps=1e-5)
    x = image_batch(2, side=32, seed=6)
    relevance = LRP(model, composite=Composite(default=Epsilon(0.0), stabilizer=0.0)).attribute(x, target=[1, 2])
    inputs = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(inputs)[[0, 1], [1, 2]].sum(), inputs)
    torch.testing.assert_close(relevance, gradient * x, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_deep_taylor_equals_lrp_with_zplus_and_zbox(arch):
    # Report eq. 12-13: DTD is the z+ rule (LRP-alpha1-beta0) on hidden layers, z^B on the input layer.
    model = ARCHITECTURES[arch](seed=6)
    x = mnist_like_batch(3, seed=6)
    composite = Composite({0: ZBox(0.0, 1.0)}, default=AlphaBeta(1, 0))
    torch.testing.assert_close(
        DeepTaylor(model, 0.0, 1.0).attribute(x, target=[1, 2, 3]),
        LRP(model, composite=composite).attribute(x, target=[1, 2, 3]),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_deep_taylor_relevance_is_non_negative_for_a_positive_logit(arch):
    # Report section 2.2.4: DTD relevance is limited to non-negative values.
    model = ARCHITECTURES[arch](seed=7)
    x = mnist_like_batch(4, seed=7)
    logits = model(x).detach()
    target = logits.argmax(1)
    assert (logits.max(1).values > 0).all()
    assert (DeepTaylor(model, 0.0, 1.0).attribute(x, target=target) >= 0).all()


def test_deep_taylor_matches_zennit():
    model = mnist_cnn(seed=8)
    x = mnist_like_batch(2, seed=8)
    theirs = zc.SpecialFirstLayerMapComposite(
        layer_map=[(Activation, zr.Pass()), (ZennitLinear, zr.ZPlus())], first_map=[(Convolution, zr.ZBox(0.0, 1.0))]
    )
    assert_relative(DeepTaylor(model, 0.0, 1.0).attribute(x, target=[4, 4]), zennit_relevance(model, x, [4, 4], theirs))


def test_residual_bn_net_matches_zennit_with_the_residual_as_a_sum():
    # The toy residual net written as Zennit needs it (a Sum module instead of "+"); ours takes "+" as is.
    model = residual_bn_net(seed=9)
    for module in (model.bn1, model.bn2):
        module.eps = 0.0

    class WithSum(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.sum = net, Sum()

        def forward(self, x):
            n = self.net
            h = n.relu(n.bn1(n.stem(x)))
            h = n.relu(self.sum(torch.stack([h, n.bn2(n.conv(h))], dim=-1)))
            return n.fc(n.pool(h).flatten(1))

    x = mnist_like_batch(2, seed=9)
    expected = zennit_relevance(WithSum(model), x, [3, 6], zc.EpsilonGammaBox(0.0, 1.0, canonizers=[SequentialMergeBatchNorm()]))
    assert_relative(LRP(model, composite=EpsilonGammaBox(0.0, 1.0)).attribute(x, target=[3, 6]), expected)
