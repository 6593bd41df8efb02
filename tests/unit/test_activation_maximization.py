"""Activation maximization in input and code space, the generative zoo models and PPCA."""
import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.models.generative import PPCA, VAE
from test_core import _state, assert_same_state
from toy_models import ARCHITECTURES


def _data(n_per_class=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(10 * n_per_class, 1, 28, 28, generator=generator)
    return images, torch.arange(10).repeat_interleave(n_per_class)


def _float_model(arch="mnist_cnn"):
    return ARCHITECTURES[arch]().float()


@pytest.mark.parametrize("init", ["noise", "class_mean", "sample"])
@pytest.mark.parametrize("regularization", ["l2", "class_mean"])
def test_the_target_probability_rises_and_the_result_stays_in_bounds(init, regularization):
    model = _float_model()
    data = _data()
    am = nni.ActivationMaximization(model)
    before = _state(model)
    start = am.generate([3, 7], init=init, regularization=regularization, data=data, steps=0)
    x = am.generate([3, 7], init=init, regularization=regularization, data=data, steps=30, lr=0.05, lam=1e-3)
    assert_same_state(before, _state(model))
    assert x.shape == (2, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    with torch.no_grad():
        gain = model(x).log_softmax(1)[[0, 1], [3, 7]] - model(start).log_softmax(1)[[0, 1], [3, 7]]
    assert (gain > 0).all()


def test_class_mean_init_starts_at_the_class_mean_and_generation_is_seeded():
    images, labels = _data()
    am = nni.ActivationMaximization(_float_model())
    start = am.generate(2, init="class_mean", data=(images, labels), steps=0)
    torch.testing.assert_close(start[0], images[labels == 2].mean(0))
    first = am.generate([1, 2], init="sample", data=(images, labels), steps=5, seed=3)
    torch.testing.assert_close(first, am.generate([1, 2], init="sample", data=(images, labels), steps=5, seed=3))


def test_the_expert_raises_the_density_of_the_prototype():
    images, labels = _data(20)
    ppca = PPCA(n_components=5).fit(images)
    am = nni.ActivationMaximization(_float_model())
    plain = am.generate([0, 1], shape=(1, 28, 28), steps=40, lr=0.05)
    expert = am.generate([0, 1], shape=(1, 28, 28), steps=40, lr=0.05, expert=ppca, expert_weight=0.05)
    assert (ppca.log_prob(expert) > ppca.log_prob(plain)).all()


def test_code_space_prototypes_come_from_the_generator():
    torch.manual_seed(0)
    model, generator = _float_model(), VAE(latent_dim=4).eval()
    before = _state(generator)
    images, codes = nni.CodeSpaceActivationMaximization(model, generator).generate([5, 6], steps=20, lam=0.01)
    assert_same_state(before, _state(generator))
    assert codes.shape == (2, 4)
    torch.testing.assert_close(images, generator(codes).detach())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": [-1]}, "target must be"),
        ({"target": 1, "init": "zeros"}, "init must be one of"),
        ({"target": 1, "regularization": "l1"}, "regularization must be one of"),
        ({"target": 1, "init": "class_mean"}, "needs data"),
        ({"target": 1}, "needs data or shape"),
        ({"target": 12, "shape": (1, 28, 28)}, "out of range"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nni.ActivationMaximization(_float_model()).generate(steps=1, **kwargs)


def test_ppca_log_prob_is_the_gaussian_density():
    images = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ppca = PPCA(dim=16, n_components=3).double().fit(images)
    w, s2 = ppca.components, ppca.noise_variance
    gaussian = torch.distributions.MultivariateNormal(ppca.mean, w @ w.T + s2 * torch.eye(16, dtype=torch.float64))
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(ppca.log_prob(x), gaussian.log_prob(x.flatten(1)))


@pytest.mark.parametrize("name", ["mnist_vae", "mnist_dcgan"])
def test_generators_make_recognisable_digits_of_every_class(name):
    generator = nni.load_model(name, device="cpu")
    quality = nni.models.metadata(name)["quality"]
    assert quality["classifier_confidence"] >= 0.7 and quality["classes_generated"] == 10
    assert generator(torch.zeros(2, generator.latent_dim)).shape == (2, 1, 28, 28)


def test_ppca_prefers_digits_to_noise():
    nni.load_model("mnist_ppca", device="cpu")
    quality = nni.models.metadata("mnist_ppca")["quality"]
    assert quality["test_log_likelihood"] > quality["uniform_noise_log_likelihood"] + 1000
