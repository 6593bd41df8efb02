"""The localisation metrics against Quantus 0.6 on the same maps and masks, and where they differ on purpose.

Quantus is called with ``abs=False, normalise=False`` (its defaults normalise by the maximum, which
changes none of these scores for maps with a positive maximum, and we never take absolute values).
"""
import warnings

import numpy as np
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.evaluation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy

quantus = pytest.importorskip("quantus")


def _quantus(metric_class, maps: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    metric = metric_class(abs=False, normalise=False, disable_warnings=True, display_progressbar=False)
    n = len(maps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = metric(
            model=None,
            x_batch=np.ones((n, 1, *masks.shape[-2:])),
            y_batch=np.ones(n, dtype=int),
            a_batch=maps.numpy(),
            s_batch=masks[:, None].numpy().astype(np.float64),
        )
    return np.asarray(scores, dtype=np.float64)


@pytest.fixture(scope="module")
def canvas_case():
    """Real canvas masks and seeded float64 maps without ties: a noisy copy of the canvas (signed)."""
    images, _, masks = nni.data.mnist_canvas(32, seed=0)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return images.double() + 0.3 * noise, masks


def test_pointing_game_equals_quantus_without_ties(canvas_case):
    maps, masks = canvas_case
    ours = pointing_game(maps, masks)
    np.testing.assert_array_equal(ours.numpy(), _quantus(quantus.PointingGame, maps, masks))
    assert 0 < ours.mean() < 1  # both hits and misses are compared
    np.testing.assert_array_equal(pointing_game(maps, masks, ties="any").numpy(), ours.numpy())


def test_relevance_mass_accuracy_equals_quantus_on_the_signed_map_and_on_positive_maps(canvas_case):
    maps, masks = canvas_case
    np.testing.assert_allclose(
        relevance_mass_accuracy(maps, masks, positive=False).numpy(), _quantus(quantus.RelevanceMassAccuracy, maps, masks),
        rtol=1e-12, atol=0,
    )
    positive = maps.clamp(min=0)
    np.testing.assert_allclose(
        relevance_mass_accuracy(maps, masks).numpy(), _quantus(quantus.RelevanceMassAccuracy, positive, masks), rtol=1e-12, atol=0
    )


def test_relevance_rank_accuracy_equals_quantus_without_ties(canvas_case):
    maps, masks = canvas_case
    ours = relevance_rank_accuracy(maps, masks).numpy()
    np.testing.assert_allclose(ours, _quantus(quantus.RelevanceRankAccuracy, maps, masks), rtol=1e-12, atol=0)
    assert 0 < ours.min() and ours.max() < 1


def test_where_we_differ_ties_of_constant_maps():
    """Quantus: a constant map wins the pointing game; its rank accuracy follows NumPy's argsort order.

    Ours: both score the mask's area, what a map without information scores by chance.
    """
    _, _, masks = nni.data.mnist_canvas(8, seed=1)
    # Each map constant, at different levels (Quantus refuses a batch that is one value throughout).
    constant = torch.arange(1, 9, dtype=torch.float64).view(8, 1, 1, 1).expand(8, 1, 64, 64) / 10
    area = masks.flatten(1).double().mean(1).numpy()
    np.testing.assert_array_equal(_quantus(quantus.PointingGame, constant, masks), np.ones(8))
    np.testing.assert_array_equal(pointing_game(constant, masks, ties="any").numpy(), np.ones(8))
    np.testing.assert_allclose(pointing_game(constant, masks).numpy(), area, rtol=1e-12)
    np.testing.assert_allclose(relevance_rank_accuracy(constant, masks).numpy(), area, rtol=1e-12)
    # Quantus takes the first K pixels in reading order (the top rows), whatever the object.
    flat = masks.flatten(1)
    reading_order = np.array([float(row[: int(row.sum())].double().mean()) for row in flat])
    np.testing.assert_allclose(_quantus(quantus.RelevanceRankAccuracy, constant, masks), reading_order, rtol=1e-12)
    assert np.abs(reading_order - area).max() > 0.01


def test_where_we_differ_negative_relevance_in_the_mass():
    """Quantus sums signed relevance: negative relevance off the object raises the score above 1 or below 0.

    Ours keeps the positive relevance only (Arras et al. 2022), so the score is a share in [0, 1].
    """
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True
    maps = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    maps[:, 0, 0, 0] = 1.0  # all positive relevance on the object
    maps[0, 0, 3, 3] = -0.5  # negative relevance off the object
    maps[1, 0, 0, 1], maps[1, 0, 3, 3] = -2.0, 2.0  # negative relevance on the object, positive off it
    quantus_scores = _quantus(quantus.RelevanceMassAccuracy, maps, masks)
    np.testing.assert_allclose(quantus_scores, [2.0, -1.0])  # (1) / (1 - 0.5) and (1 - 2) / (1 - 2 + 2)
    np.testing.assert_allclose(relevance_mass_accuracy(maps, masks, positive=False).numpy(), quantus_scores)
    np.testing.assert_allclose(relevance_mass_accuracy(maps, masks).numpy(), [1.0, 1 / 3])
