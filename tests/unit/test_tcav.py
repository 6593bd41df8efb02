"""TCAV (Kim et al. 2018): known answers on a constructed network, the significance test, determinism,
the borrowed model, errors, and the MNIST concept sets."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

import nn_interpretability as nni
from nn_interpretability.concepts import (
    CAV,
    TCAV,
    Concept,
    TCAVResult,
    closed_loop,
    hole_area,
    horizontal_bar,
    longest_horizontal_run,
    random_concepts,
    significance,
    stroke_width,
    thick_stroke,
)

D = 8


def direction() -> torch.Tensor:
    u = torch.linspace(-1.0, 1.0, D, dtype=torch.float64) + 0.3
    return u / u.norm()


class AlongDirection(nn.Module):
    """``hidden`` is the identity; class 0's logit is ``u · h`` and class 1's ``-u · h``, so ∇h f_0 = u everywhere."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(D, D)
        self.head = nn.Linear(D, 2)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.eye(D))
            self.hidden.bias.zero_()
            self.head.weight.copy_(torch.stack([direction(), -direction()]))
            self.head.bias.zero_()

    def forward(self, x):
        h = self.hidden(x)
        return self.head(torch.tanh(h) + h)


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(D, D)

    def forward(self, x):
        return self.layer(self.layer(x))


def model() -> nn.Module:
    return AlongDirection().double().eval()


def noise(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def along(sign: float, name: str, seed: int = 100) -> Concept:
    return Concept(name, noise(20, seed) + sign * 3.0 * direction())


def randoms(k: int = 4) -> list[Concept]:
    return [Concept(f"random_{i}", noise(20, i)) for i in range(k)]


@pytest.fixture(scope="module")
def result() -> TCAVResult:
    tcav = TCAV(model(), ["hidden"])
    return tcav.interpret(
        {0: noise(15, 50), 1: noise(15, 51)},
        [along(1.0, "up"), along(-1.0, "down", seed=101)],
        randoms(),
        show_progress=False,
    )


def test_a_concept_along_the_logits_direction_scores_one_and_its_opposite_zero(result):
    assert result.classes == (0, 1) and result.layers == ("hidden",) and result.random_concepts == tuple(f"random_{i}" for i in range(4))
    runs = 3  # random_0 is the counterpart, the concept runs against random_1..random_3
    for key in [("up", "hidden", 0), ("down", "hidden", 1)]:
        np.testing.assert_array_equal(result.sign_count[key], np.ones(runs))
        assert (result.magnitude[key] > 0).all()
    for key in [("up", "hidden", 1), ("down", "hidden", 0)]:
        np.testing.assert_array_equal(result.sign_count[key], np.zeros(runs))
        assert (result.magnitude[key] < 0).all()
    assert result.mean[("up", "hidden", 0)] == 1.0 and result.std[("up", "hidden", 0)] == 0.0
    np.testing.assert_array_equal(result.accuracies[("up", "hidden")], np.ones(runs))


def test_cavs_are_unit_normals_pointing_at_the_concept(result):
    for cav in result.cavs[("up", "hidden")]:
        assert isinstance(cav, CAV) and cav.concept == "up" and cav.layer == "hidden"
        torch.testing.assert_close(cav.vector.norm(), torch.tensor(1.0, dtype=torch.float64))
        assert cav.vector @ direction() > 0.8
    assert [cav.counterpart for cav in result.cavs[("random_0", "hidden")]] == ["random_1", "random_2", "random_3"]


def test_magnitude_is_the_mean_directional_derivative(result):
    # ∇h f_0 = u ⊙ (1 + sech²(h)), positive along u for every input: recompute it with autograd.
    x = noise(15, 50).requires_grad_(True)
    m = model()
    h = m.hidden(x)
    gradient = torch.autograd.grad(m.head(torch.tanh(h) + h)[:, 0].sum(), h)[0]
    for cav, magnitude, random_cav in zip(
        result.cavs[("up", "hidden")], result.magnitude[("up", "hidden", 0)], result.cavs[("random_0", "hidden")]
    ):
        assert magnitude == pytest.approx((gradient @ cav.vector).mean().item(), rel=1e-12)
    np.testing.assert_allclose(
        result.random_magnitude[("hidden", 0)],
        [(gradient @ c.vector).mean().item() for c in result.cavs[("random_0", "hidden")]],
        rtol=1e-12,
    )


def test_p_values_are_the_t_test_of_concept_against_random_scores(result):
    assert result.n_tests == 4
    for (name, layer, k), p in result.p_values.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant samples
            expected = stats.ttest_ind(result.sign_count[name, layer, k], result.random_sign_count[layer, k]).pvalue
        np.testing.assert_equal(p, expected)
        assert result.significant[name, layer, k] == bool(p < 0.05 / 4)


def test_significance_on_planted_scores():
    concept = [0.9, 0.95, 0.92, 0.97, 0.91]
    random = [0.5, 0.45, 0.55, 0.52, 0.48]
    p, significant = significance(concept, random, alpha=0.05, n_tests=10)
    assert p < 1e-6 and significant
    # Student's two-sample t-test by hand.
    a, b = np.array(concept), np.array(random)
    pooled = ((a.var(ddof=1) + b.var(ddof=1)) / 2) ** 0.5
    t = (a.mean() - b.mean()) / (pooled * (2 / 5) ** 0.5)
    assert p == pytest.approx(2 * stats.t.sf(abs(t), df=8), rel=1e-10)
    # A concept indistinguishable from random is not significant.
    p_same, same = significance([0.5, 0.6, 0.4, 0.55], [0.45, 0.6, 0.5, 0.5])
    assert p_same > 0.5 and not same


def test_bonferroni_correction_divides_alpha_by_the_number_of_tests():
    concept, random = [0.7, 0.8, 0.75, 0.6], [0.5, 0.6, 0.55, 0.65]
    p, alone = significance(concept, random)
    assert 0.05 / 10 < p < 0.05 and alone
    assert not significance(concept, random, n_tests=10)[1]


def test_significance_of_identical_constant_scores_is_nan_and_not_significant():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p, significant = significance([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert np.isnan(p) and not significant
    with pytest.raises(ValueError, match="at least two runs"):
        significance([1.0], [0.5, 0.4])
    with pytest.raises(ValueError, match="alpha"):
        significance([1.0, 0.9], [0.5, 0.4], alpha=1.5)


def test_deterministic_with_seed_and_seed_changes_the_cavs():
    tcav = TCAV(model(), "hidden")
    args = (noise(10, 50), [along(1.0, "up")], randoms(3))
    first, second = (tcav.interpret(*args, target=0, seed=3) for _ in range(2))
    other = tcav.interpret(*args, target=0, seed=4)
    for a, b, c in zip(first.cavs[("up", "hidden")], second.cavs[("up", "hidden")], other.cavs[("up", "hidden")]):
        assert torch.equal(a.vector, b.vector) and a.accuracy == b.accuracy
        assert not torch.equal(a.vector, c.vector)
    for key in first.magnitude:
        np.testing.assert_array_equal(first.magnitude[key], second.magnitude[key])


def test_logistic_regression_and_any_linear_scikit_learn_classifier():
    from sklearn.linear_model import RidgeClassifier

    for classifier in ["logistic", RidgeClassifier()]:
        result = TCAV(model(), "hidden", classifier=classifier).interpret(
            noise(10, 50), [along(1.0, "up")], randoms(3), target=0
        )
        np.testing.assert_array_equal(result.sign_count[("up", "hidden", 0)], [1.0, 1.0])


def test_chunks_give_the_same_gradients_as_one_batch():
    x = noise(11, 7)
    whole = TCAV(model(), ["hidden", "head"]).gradients(x, 1)
    chunked = TCAV(model(), ["hidden", "head"], internal_batch_size=3).gradients(x, 1)
    assert set(whole) == {"hidden", "head"}
    for name in whole:
        torch.testing.assert_close(chunked[name], whole[name], rtol=0, atol=0)
    torch.testing.assert_close(whole["head"], torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(11, 2))


def test_layers_are_found_by_module_too_and_activations_are_flattened():
    m = model()
    tcav = TCAV(m, [m.hidden])
    assert tcav.layers == ("hidden",)
    acts = tcav.activations(noise(5, 1))
    torch.testing.assert_close(acts["hidden"], noise(5, 1))


def _state(m: nn.Module):
    return (
        {k: v.clone() for k, v in m.state_dict().items()},
        [(p.requires_grad, p.grad) for p in m.parameters()],
        [(mod.training, dict(mod._forward_hooks), dict(mod._backward_hooks)) for mod in m.modules()],
    )


def test_the_model_comes_back_unchanged_after_success_and_error():
    m = model()
    m.head.train()
    before = _state(m)
    tcav = TCAV(m, "hidden")
    tcav.interpret(noise(6, 50), [along(1.0, "up")], randoms(3), target=0)
    with pytest.raises(ValueError, match="out of range"):
        tcav.interpret(noise(6, 50), [along(1.0, "up")], randoms(3), target=2)
    after = _state(m)
    assert before[0].keys() == after[0].keys() and all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1] == after[1] and before[2] == after[2]


def test_errors_name_the_problem():
    m = model()
    with pytest.raises(ValueError, match="no layer named 'hiden'.*did you mean hidden"):
        TCAV(m, "hiden")
    with pytest.raises(ValueError, match="listed twice"):
        TCAV(m, ["hidden", m.hidden])
    with pytest.raises(ValueError, match="classifier must be one of"):
        TCAV(m, "hidden", classifier="svm")
    with pytest.raises(ValueError, match="test_size"):
        TCAV(m, "hidden", test_size=1.5)
    tcav = TCAV(m, "hidden")
    x = noise(4, 50)
    with pytest.raises(ValueError, match="'tiny' has 1 example.*at least 2"):
        tcav.interpret(x, [Concept("tiny", noise(1, 3))], randoms(3), target=0)
    with pytest.raises(ValueError, match="target 5 is out of range for a model with 2 class scores"):
        tcav.interpret(x, [along(1.0, "up")], randoms(3), target=5)
    with pytest.raises(ValueError, match="at least 3"):
        tcav.interpret(x, [along(1.0, "up")], randoms(2), target=0)
    with pytest.raises(ValueError, match="unique; repeated: \\['random_1'\\]"):
        tcav.interpret(x, [Concept("random_1", noise(5, 9))], randoms(3), target=0)
    with pytest.raises(TypeError, match="give target=k"):
        tcav.interpret(x, [along(1.0, "up")], randoms(3))
    with pytest.raises(TypeError, match="int class index"):
        tcav.interpret(x, [along(1.0, "up")], randoms(3), target=0.5)
    with pytest.raises(TypeError, match="linear classifier"):
        TCAV(m, "hidden", classifier=KNeighborsClassifier(3)).compute_cavs(along(1.0, "up"), randoms(1)[0])
    with pytest.raises(ValueError, match="'layer' runs more than once"):
        TCAV(Twice().double(), "layer").activations(noise(2, 1))
    with pytest.raises(ValueError, match="non-empty name"):
        Concept("", noise(3, 1))
    with pytest.raises(TypeError, match="floating point"):
        Concept("ints", torch.ones(3, D, dtype=torch.long))


def test_tcav_is_exported_but_not_a_registered_attribution():
    assert nni.TCAV is nni.concepts.TCAV is TCAV
    assert not any("tcav" in name for name in nni.available_methods())
    assert not isinstance(TCAV(model(), "hidden"), nni.Attribution)


# MNIST concept sets -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nni.data.load_mnist("train", source="embedded")[0]


def test_concept_sets_have_the_shape_dtype_and_are_deterministic(digits):
    builders = [
        lambda seed: closed_loop(12, seed=seed),
        lambda seed: horizontal_bar(12, seed=seed),
        lambda seed: thick_stroke(12, seed=seed, dtype=torch.float64),
    ]
    for build in builders:
        first, again, other = build(0), build(0), build(1)
        assert first.examples.shape == (12, 1, 28, 28)
        assert first.examples.min() >= 0 and first.examples.max() <= 1
        assert torch.equal(first.examples, again.examples) and not torch.equal(first.examples, other.examples)
    assert thick_stroke(2).examples.dtype == torch.float32 and thick_stroke(2, dtype=torch.float64).examples.dtype == torch.float64
    sets = random_concepts(3, 10, seed=5)
    assert [s.name for s in sets] == ["random_0", "random_1", "random_2"]
    assert all(torch.equal(a.examples, b.examples) for a, b in zip(sets, random_concepts(3, 10, seed=5)))
    assert not torch.equal(sets[0].examples, sets[1].examples)


def test_concept_sets_have_their_property(digits):
    assert (hole_area(closed_loop(30, min_hole=10).examples) >= 10).all()
    assert (longest_horizontal_run(horizontal_bar(30, length=20).examples) >= 20).all()
    widths = stroke_width(thick_stroke(30, quantile=0.9).examples)
    assert (widths > np.quantile(stroke_width(digits).numpy(), 0.9)).all()
    # The measurements on constructed images.
    ring = torch.zeros(1, 1, 28, 28)
    ring[0, 0, 5:15, 5:15] = 1.0
    ring[0, 0, 7:13, 7:13] = 0.0
    assert hole_area(ring).tolist() == [36] and longest_horizontal_run(ring).tolist() == [10]
    bar = torch.zeros(1, 1, 28, 28)
    bar[0, 0, 10:13, 4:24] = 1.0
    assert stroke_width(bar).item() == pytest.approx(3.0, rel=0.1)
    with pytest.raises(ValueError, match="only"):
        closed_loop(10, min_hole=500)
    with pytest.raises(ValueError, match="single-channel"):
        hole_area(torch.zeros(2, 28, 28))
