"""RISE: the exact formula on explicit masks, the closed-form expectation on a linear model, seeds, errors."""
import itertools

import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.attribution.rise import rise_masks
from toy_models import ARCHITECTURES, mnist_like_batch, seeded

SIDE, S, P = 8, 4, 0.4


def linear():
    return seeded(lambda: nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 3)), seed=2)


def images(n=2):
    return torch.rand(n, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_explicit_masks_give_the_score_weighted_mean():
    model, x = ARCHITECTURES["mnist_cnn"](seed=0), mnist_like_batch(2)
    masks = torch.rand(5, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    maps = nni.RISE(model, p=0.3).attribute(x, target=[1, 4], masks=masks, perturbations_per_eval=2)
    for i, target in enumerate([1, 4]):
        scores = model(x[i] * masks.unsqueeze(1))[:, target].detach()
        torch.testing.assert_close(maps[i, 0], torch.einsum("k,khw->hw", scores, masks) / (5 * 0.3))


def test_linear_model_converges_to_the_closed_form_expectation():
    """For f(x) = w·x + c: S = (E[M Mᵀ] (w ⊙ x) + c E[M]) / p, with E[M Mᵀ] exact over grids and shifts.

    A mask is linear in its grid, M = A_σ B (A_σ upsamples and crops for shift σ, B ~ Bernoulli(p)^{s×s}), so
    E[M Mᵀ | σ] = p² A_σ 1 1ᵀ A_σᵀ + (p − p²) A_σ A_σᵀ and E[M | σ] = p A_σ 1; σ is uniform over the cells.
    """
    model, x = linear(), images()
    cell = SIDE // S
    second, first = torch.zeros(SIDE**2, SIDE**2, dtype=torch.float64), torch.zeros(SIDE**2, dtype=torch.float64)
    shifts = list(itertools.product(range(cell), repeat=2))
    for shift in shifts:
        onehots = torch.eye(S * S, dtype=torch.float64).view(-1, S, S)
        a = rise_masks(onehots, torch.tensor([shift] * S * S), (SIDE, SIDE)).reshape(S * S, -1).T
        ones = a.sum(1)
        second += (P**2 * torch.outer(ones, ones) + (P - P**2) * a @ a.T) / len(shifts)
        first += P * ones / len(shifts)
    w, c = model[1].weight[2].detach(), model[1].bias[2].detach()
    expected = ((second @ (w * x.flatten(1)).T).T + c * first) / P
    maps = nni.RISE(model, n_masks=20000, mask_resolution=S, p=P, seed=1).attribute(x, target=2)
    torch.testing.assert_close(maps.flatten(1), expected, rtol=0, atol=0.03 * float(expected.abs().max()))


def test_masks_are_seeded_shared_across_the_batch_and_chunking_does_not_matter():
    model, x = ARCHITECTURES["nested_functional"](seed=0), mnist_like_batch(2)
    rise = nni.RISE(model, n_masks=12, mask_resolution=4, seed=3)
    maps = rise.attribute(x, target=[0, 5])
    torch.testing.assert_close(rise.attribute(x, target=[0, 5], perturbations_per_eval=5), maps)
    torch.testing.assert_close(torch.cat([rise.attribute(x[i : i + 1], target=t) for i, t in enumerate([0, 5])]), maps)
    assert not torch.allclose(nni.RISE(model, n_masks=12, mask_resolution=4, seed=4).attribute(x, target=[0, 5]), maps)


def test_probability_output_and_mask_shape():
    grids = torch.ones(1, 3, 3, dtype=torch.bool)
    assert torch.equal(rise_masks(grids, torch.tensor([[1, 2]]), (9, 9)), torch.ones(1, 9, 9, dtype=torch.float64))
    model, x = ARCHITECTURES["mnist_cnn"](seed=0), mnist_like_batch(1)
    ones = torch.ones(2, 28, 28, dtype=torch.float64)
    maps = nni.RISE(model, p=0.5).attribute(x, target=3, masks=ones, output="probability")
    torch.testing.assert_close(maps, (model(x).softmax(1)[:, 3] / 0.5).detach().view(1, 1, 1, 1).expand_as(x))


def test_errors_name_the_problem():
    model, x = ARCHITECTURES["mnist_cnn"](seed=0), mnist_like_batch(1)
    with pytest.raises(ValueError, match="probability"):
        nni.RISE(model, p=0.0)
    with pytest.raises(ValueError, match="masks must be a tensor"):
        nni.RISE(model).attribute(x, masks=torch.ones(2, 27, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nni.RISE(model).attribute(x, masks=torch.full((2, 28, 28), 2.0))
    with pytest.raises(ValueError, match="at least 4 dimensions"):
        nni.RISE(linear()).attribute(torch.rand(2, 64, dtype=torch.float64))
