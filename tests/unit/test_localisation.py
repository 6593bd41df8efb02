"""Localisation metrics (pointing game, relevance mass / rank accuracy) and the leaderboard that runs them."""
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.evaluation import (
    SKIPPED,
    BaselineMap,
    BoundMethod,
    baseline_map,
    configured_method,
    leaderboard,
    localisation_metrics,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from nn_interpretability.models.canvas import CanvasCNN


def _example():
    """Two 2×3 maps and masks whose scores are worked out by hand in the tests."""
    maps = torch.tensor([[[[3.0, -1.0, 0.0], [1.0, 2.0, -4.0]]], [[[0.0, 5.0, 5.0], [1.0, -2.0, 0.0]]]])
    masks = torch.tensor([[[True, False, False], [False, True, False]], [[False, True, False], [False, False, False]]])
    return maps, masks


def test_scores_worked_out_by_hand():
    maps, masks = _example()
    # Sample 0: the maximum 3 is on the object. Sample 1: the maximum 5 is tied, one of two on the object.
    assert pointing_game(maps, masks).tolist() == [1.0, 0.5]
    assert pointing_game(maps, masks, ties="any").tolist() == [1.0, 1.0]
    # Positive mass: (3 + 2) / (3 + 1 + 2) and 5 / (5 + 5 + 1).
    torch.testing.assert_close(relevance_mass_accuracy(maps, masks), torch.tensor([5 / 6, 5 / 11], dtype=torch.float64))
    # Signed mass (Quantus): (3 + 2) / (3 - 1 + 1 + 2 - 4) and 5 / (5 + 5 + 1 - 2).
    torch.testing.assert_close(relevance_mass_accuracy(maps, masks, positive=False), torch.tensor([5.0, 5 / 9], dtype=torch.float64))
    # Rank: K = 2, the top two (3, 2) are both on the object; K = 1, the top value 5 is tied twice.
    torch.testing.assert_close(relevance_rank_accuracy(maps, masks), torch.tensor([1.0, 0.5], dtype=torch.float64))


def test_channels_are_summed_and_masks_may_have_a_channel_axis():
    maps, masks = _example()
    split = torch.cat([maps * 0.25, maps * 0.75], 1)
    for metric in (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy):
        torch.testing.assert_close(metric(split, masks[:, None]), metric(maps, masks))


def test_a_batch_equals_its_items():
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(6, 3, 9, 9, generator=generator).round()  # rounding makes ties
    masks = torch.rand(6, 9, 9, generator=generator) > 0.6
    for metric in (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy):
        batch = metric(maps, masks)
        items = torch.cat([metric(maps[i : i + 1], masks[i : i + 1]) for i in range(6)])
        torch.testing.assert_close(batch, items)


def test_perfect_maps_score_one_and_maps_off_the_object_score_zero():
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 2:5, 3:6] = True
    on, off = masks[:, None].double(), (~masks)[:, None].double()
    for metric in (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy):
        assert metric(on, masks).tolist() == [1.0] * 3
        assert metric(off, masks).tolist() == [0.0] * 3
    # A map without positive relevance puts no mass on the object.
    assert relevance_mass_accuracy(-on, masks).tolist() == [0.0] * 3


def test_ties_score_the_expected_value_of_random_tie_breaking():
    generator = torch.Generator().manual_seed(1)
    maps = torch.randint(0, 3, (5, 1, 6, 6), generator=generator).double()  # many ties
    masks = torch.rand(5, 6, 6, generator=generator) > 0.5
    masks[:, 0, 0] = True
    draws = 4000
    jitter = torch.rand(draws, *maps.shape, generator=generator, dtype=torch.float64) * 1e-3  # random order within ties
    jittered = (maps + jitter).reshape(-1, 1, 6, 6)
    repeated = masks.repeat(draws, 1, 1)
    for metric in (pointing_game, relevance_rank_accuracy):
        monte_carlo = metric(jittered, repeated).reshape(draws, 5).mean(0)
        torch.testing.assert_close(metric(maps, masks), monte_carlo, atol=0.03, rtol=0)
    # A constant map scores chance: the mask's area.
    constant = torch.zeros(5, 1, 6, 6)
    area = masks.flatten(1).double().mean(1)
    torch.testing.assert_close(pointing_game(constant, masks), area)
    torch.testing.assert_close(relevance_rank_accuracy(constant, masks), area)


@pytest.mark.parametrize(
    "maps, masks, error, match",
    [
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 5, dtype=torch.bool), ValueError, "do not fit"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(3, 4, 4, dtype=torch.bool), ValueError, "do not fit"),
        (torch.zeros(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.bool), ValueError, r"\(N, C, H, W\)"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4), TypeError, "bool"),
        (torch.zeros(2, 1, 4, 4), torch.eye(4, dtype=torch.bool).expand(2, 4, 4).clone().index_fill_(0, torch.tensor([1]), False), ValueError, r"samples \[1\] are empty"),
        (torch.full((2, 1, 4, 4), float("nan")), torch.ones(2, 4, 4, dtype=torch.bool), ValueError, "NaN"),
    ],
)
def test_bad_inputs_are_refused_with_the_problem_named(maps, masks, error, match):
    for metric in (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy):
        with pytest.raises(error, match=match):
            metric(maps, masks)
    with pytest.raises(ValueError, match="ties must be one of"):
        pointing_game(torch.zeros(1, 1, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool), ties="first")


@pytest.fixture(scope="module")
def tiny_canvas():
    """A seeded, untrained canvas CNN (4 channels a layer) on four 48×48 canvases."""
    images, labels, masks = nni.data.mnist_canvas(4, size=48, distractors=1, seed=0)
    torch.manual_seed(0)
    return CanvasCNN(widths=(4, 4, 4, 4)).eval(), images, labels, masks


def test_leaderboard_scores_every_registered_method_or_says_why_not(tiny_canvas):
    model, images, labels, masks = tiny_canvas
    before = {k: v.clone() for k, v in model.state_dict().items()}
    board = leaderboard(model, images, labels, localisation_metrics(masks), layer="features.10", fc_layer="fc", n_resamples=200)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert board.failed == {}
    scored = {row["method"] for row in board.rows}
    assert scored | set(board.skipped) == set(nni.available_methods()) | {"baseline: random", "baseline: centre"}
    assert set(board.skipped) == set(SKIPPED)
    means = [row["pointing game"] for row in board.rows]
    assert means == sorted(means, reverse=True)
    for row in board.rows:
        for metric in ("pointing game", "relevance mass accuracy", "relevance rank accuracy"):
            assert row[f"{metric} low"] <= row[metric] <= row[f"{metric} high"]
            summary = board.summaries[row["method"]][metric]
            assert summary.mean == pytest.approx(float(board.scores[row["method"]][metric].mean()))
    text = board.to_markdown()
    assert "| baseline: random |" in text and "not scored: **layer-conductance**" in text


def test_leaderboard_is_deterministic_and_checks_its_arguments(tiny_canvas):
    model, images, labels, masks = tiny_canvas
    metrics = localisation_metrics(masks)
    methods = ["saliency", "rise", "smoothgrad", "cam"]
    first = leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, n_resamples=100, sort_by="relevance mass accuracy")
    second = leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, n_resamples=100, sort_by="relevance mass accuracy")
    assert first.rows == [row | {"seconds": r["seconds"], "metric seconds": r["metric seconds"]} for row, r in zip(second.rows, first.rows)]
    assert first.skipped == {"cam": "CAM needs fc_layer, the linear layer after the global average pooling"}
    with pytest.raises(ValueError, match="unknown methods"):
        leaderboard(model, images, labels, metrics, layer="features.10", methods=["saliency", "sailency"])
    with pytest.raises(ValueError, match="sort_by"):
        leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, sort_by="accuracy")
    with pytest.raises(ValueError, match="profile"):
        leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, profile="huge")
    with pytest.raises(ValueError, match="samples"):
        leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, samples={"pointing game": 5})
    with pytest.raises(ValueError, match="samples"):
        leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, samples={"gini": 2})
    with pytest.raises(ValueError, match="unknown baselines"):
        leaderboard(model, images, labels, metrics, layer="features.10", methods=methods, baselines=["edge"])


EXPLAINER_METRICS = {
    "max_sensitivity": {"n_samples": 3},
    "local_lipschitz_estimate": {"n_samples": 3},
    "random_logit": {},
    "smooth_mprt": {"nt_samples": 3},
    "efficient_mprt": {},
}


def test_leaderboard_hands_each_method_to_the_metrics_that_run_it(tiny_canvas):
    model, images, labels, masks = tiny_canvas
    metrics = {name: nni.evaluation.score_function(name, **kw) for name, kw in EXPLAINER_METRICS.items()}
    metrics["relevance mass accuracy"] = localisation_metrics(masks)["relevance mass accuracy"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    board = leaderboard(model, images, labels, metrics, layer="features.10", methods=["saliency", "integrated-gradients", "occlusion"],
                        n_resamples=100, samples=dict.fromkeys(EXPLAINER_METRICS, 3))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert board.failed == {} and board.settings["samples"] == dict.fromkeys(EXPLAINER_METRICS, 3) | {"relevance mass accuracy": 4}
    assert {len(s) for name in board.scores for m, s in board.scores[name].items() if m in EXPLAINER_METRICS} == {3}
    assert all(len(board.scores[name]["relevance mass accuracy"]) == 4 for name in board.scores)
    # The same scores as the metric functions called directly, with IG's per-call n_steps of method_settings.
    x, y = images[:3], labels[:3]
    explain = lambda inputs, target: nni.IntegratedGradients(model).attribute(inputs, target=target, n_steps=16)
    ev = nni.evaluation
    torch.testing.assert_close(board.scores["integrated-gradients"]["max_sensitivity"],
                               ev.max_sensitivity(explain, x, y, n_samples=3).double())
    torch.testing.assert_close(board.scores["integrated-gradients"]["local_lipschitz_estimate"],
                               ev.local_lipschitz_estimate(explain, x, y, n_samples=3).double())
    torch.testing.assert_close(board.scores["saliency"]["random_logit"], ev.random_logit(nni.Saliency(model), x, y).double())
    torch.testing.assert_close(board.scores["saliency"]["smooth_mprt"], ev.smooth_mprt(model, nni.Saliency, x, y, nt_samples=3).double())
    windows = nni.evaluation.method_settings("occlusion", images, "features.10", None, "fast", 0)[1]
    occlusion = lambda network: BoundMethod(nni.Occlusion(network), **windows)
    torch.testing.assert_close(board.scores["occlusion"]["efficient_mprt"], ev.efficient_mprt(model, occlusion, x, y).double())
    # The baselines, by construction (BaselineMap's docstring): the centre map never moves and is the same for every
    # class and model; the random map is redrawn per call (sqrt(1/2) relative change) but repeats on a rebuilt method.
    centre, random = board.scores["baseline: centre"], board.scores["baseline: random"]
    for name, value in {"max_sensitivity": 0.0, "local_lipschitz_estimate": 0.0, "random_logit": 1.0, "smooth_mprt": 1.0, "efficient_mprt": 0.0}.items():
        torch.testing.assert_close(centre[name], torch.full((3,), value, dtype=torch.float64), msg=name)
    torch.testing.assert_close(random["smooth_mprt"], torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(random["efficient_mprt"], torch.zeros(3, dtype=torch.float64))
    assert ((random["max_sensitivity"] - 0.5**0.5).abs() < 0.05).all()
    assert (random["random_logit"].abs() < 0.1).all()
    assert (random["local_lipschitz_estimate"] > 1).all()
    with pytest.raises(ValueError, match="run the method themselves"):
        nni.evaluation.metric_reliability(model, images, labels, {"a": lambda m, x, y: x, "b": lambda m, x, y: x}, metrics)


def test_leaderboard_leaves_undefined_scores_out_of_the_summary(tiny_canvas):
    model, images, labels, masks = tiny_canvas
    mass = localisation_metrics(masks)["relevance mass accuracy"]

    def first_undefined(model, x, a, y):
        scores = mass(model, x, a, y).clone()
        scores[0] = float("nan")
        return scores

    metrics = {"mass": mass, "mass, first undefined": first_undefined, "never defined": lambda model, x, a, y: torch.full((len(x),), float("nan"))}
    board = leaderboard(model, images, labels, metrics, layer="features.10", methods=["saliency"], baselines=["centre"], n_resamples=100)
    assert board.failed == {} and set(board.not_applicable) == {"saliency", "baseline: centre"}
    assert set(board.not_applicable["saliency"]) == {"never defined"} and "every sample" in board.not_applicable["saliency"]["never defined"]
    assert all(row["never defined"] != row["never defined"] for row in board.rows) and "never defined" not in board.summaries["saliency"]
    assert "n/a" in board.cells()["saliency"]["never defined (↑)"]
    board = leaderboard(model, images, labels, {m: metrics[m] for m in list(metrics)[:2]}, layer="features.10", methods=["saliency"],
                        baselines=["centre"], n_resamples=100)
    assert board.failed == {} and board.undefined == {name: {"mass, first undefined": 1} for name in ("saliency", "baseline: centre")}
    summary = board.summaries["saliency"]["mass, first undefined"]
    assert summary.mean == pytest.approx(float(board.scores["saliency"]["mass"][1:].mean()))


def test_configured_method_binds_the_per_call_settings(tiny_canvas):
    model, images, labels, _ = tiny_canvas
    ig = configured_method("integrated-gradients", model, images, "features.10", None, "fast", 0)
    assert isinstance(ig, BoundMethod) and ig.multiplies_by_inputs and ig.arguments == {"n_steps": 16}
    torch.testing.assert_close(ig.attribute(images, target=labels), nni.IntegratedGradients(model).attribute(images, target=labels, n_steps=16))
    rebound = ig.with_model(CanvasCNN(widths=(4, 4, 4, 4)).eval())
    assert rebound.method.model is rebound.model and rebound.model is not model
    assert isinstance(configured_method("saliency", model, images, "features.10", None, "fast", 0), nni.Saliency)
    random = configured_method("baseline: random", model, images, "features.10", None, "fast", 3)
    first, second = random.attribute(images, target=labels), random.attribute(images, target=labels)
    assert torch.equal(first, baseline_map("random", images, seed=3).float()) and not torch.equal(first, second)
    centre = BaselineMap(model, "centre")
    assert torch.equal(centre.attribute(images), centre.attribute(images))
    with pytest.raises(ValueError, match="unknown baseline"):
        BaselineMap(model, "edge")


def test_baseline_maps():
    inputs = torch.zeros(3, 1, 5, 7)
    random = baseline_map("random", inputs, seed=2)
    assert random.shape == (3, 1, 5, 7) and torch.equal(random, baseline_map("random", inputs, seed=2))
    centre = baseline_map("centre", inputs)
    assert centre[0, 0].argmax() == 2 * 7 + 3 and torch.equal(centre[0], centre[2])
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_map("edge", inputs)
