"""TCAV equals captum.concept.TCAV on the same activations, CAVs (one scikit-learn model, seed and split),
layers, inputs and target; the directional derivatives equal a hand computation with torch.autograd."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from captum.concept import TCAV as CaptumTCAV
from captum.concept import Classifier
from captum.concept import Concept as CaptumConcept
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from toy_models import mnist_cnn, mnist_like_batch

from nn_interpretability.concepts import TCAV, Concept

LAYERS = ["features.4", "classifier.2"]  # the first max-pool (20 × 14 × 14) and the hidden linear layer's ReLU
SEED = 3
TARGET = 7


def _fit_unit_normal(features: np.ndarray, is_concept: np.ndarray) -> np.ndarray:
    """The CAV of the paper by hand: scikit-learn's SGD on a seeded, stratified split, its normalised coef_."""
    x_train, _, y_train, _ = train_test_split(features, is_concept, test_size=0.33, random_state=SEED, stratify=is_concept)
    lm = SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=SEED).fit(x_train, y_train)
    return lm.coef_[0] / np.linalg.norm(lm.coef_[0])


class SameCAVs(Classifier):
    """Captum's classifier interface around the same scikit-learn model, seed and split as ours.

    Captum hands over the activations of ``[concept, random]`` concatenated in that order and labelled by
    concept id; the first id is the concept. Rows of ``weights`` follow ``classes``.
    """

    def __init__(self):
        self.normal = self.ids = None

    def train_and_eval(self, dataloader, **kwargs):
        features, labels = zip(*dataloader)
        features, labels = torch.cat(features).double().numpy(), torch.cat(labels).numpy()
        concept_id = labels[0]
        self.ids = [int(labels[labels != concept_id][0]), int(concept_id)]
        self.normal = torch.from_numpy(_fit_unit_normal(features, (labels == concept_id).astype(np.int64)))
        return {}

    def weights(self):
        return torch.stack([-self.normal, self.normal])

    def classes(self):
        return self.ids


def _images(n: int, seed: int, bar: bool = False) -> torch.Tensor:
    x = mnist_like_batch(n, seed) * 0.5
    if bar:
        x[:, :, 12:15, 4:24] = 1.0
    return x


@pytest.fixture(scope="module")
def setup():
    model = mnist_cnn(seed=0)
    concept = Concept("bar", _images(10, 100, bar=True))
    randoms = [Concept(f"random_{i}", _images(10, 200 + i)) for i in range(3)]
    inputs = _images(12, 1)
    ours = TCAV(model, LAYERS).interpret(inputs, [concept], randoms, target=TARGET, seed=SEED, show_progress=False)
    return model, concept, randoms, inputs, ours


def test_cavs_are_the_scikit_learn_unit_normals(setup):
    model, concept, randoms, _, ours = setup
    tcav = TCAV(model, LAYERS)
    acts = {c.name: tcav.activations(c.examples) for c in (concept, *randoms)}
    for layer in LAYERS:
        for cav, negative in zip(ours.cavs[("bar", layer)], randoms[1:]):
            features = torch.cat([acts["bar"][layer], acts[negative.name][layer]]).numpy()
            expected = _fit_unit_normal(features, np.r_[np.ones(10), np.zeros(10)].astype(np.int64))
            torch.testing.assert_close(cav.vector, torch.from_numpy(expected), rtol=0, atol=0)


def test_scores_equal_captum_tcav(setup, tmp_path):
    model, concept, randoms, inputs, ours = setup
    loader = lambda c: torch.utils.data.DataLoader(c.examples, batch_size=len(c))  # noqa: E731 (one batch file per concept)
    theirs = {c.name: CaptumConcept(i, c.name, loader(c)) for i, c in enumerate([concept, *randoms])}
    captum = CaptumTCAV(model, LAYERS, classifier=SameCAVs(), save_path=str(tmp_path))
    sets = [[theirs["bar"], theirs[r.name]] for r in randoms[1:]] + [[theirs["random_0"], theirs[r.name]] for r in randoms[1:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = captum.interpret(inputs, sets, target=TARGET)
    for layer in LAYERS:
        for run, r in enumerate(randoms[1:]):
            for name, sign_count, magnitude in [
                ("bar", ours.sign_count[("bar", layer, TARGET)], ours.magnitude[("bar", layer, TARGET)]),
                ("random_0", ours.random_sign_count[(layer, TARGET)], ours.random_magnitude[(layer, TARGET)]),
            ]:
                key = f"{theirs[name].id}-{theirs[r.name].id}"
                expected = scores[key][layer]
                # Captum's first entry is the concept's (its CAV is +normal); it computes in float32.
                torch.testing.assert_close(torch.tensor(sign_count[run]), expected["sign_count"][0].double(), rtol=1e-6, atol=0)
                torch.testing.assert_close(torch.tensor(magnitude[run]), expected["magnitude"][0].double(), rtol=1e-6, atol=0)


def test_directional_derivatives_equal_autograd_by_hand(setup):
    model, _, _, inputs, ours = setup
    cav = ours.cavs[("bar", "features.4")][0]
    h = model.features[:5](inputs).detach().requires_grad_(True)
    gradient = torch.autograd.grad(model.classifier(model.features[5:](h))[:, TARGET].sum(), h)[0]
    expected = gradient.flatten(1) @ cav.vector
    got = TCAV(model, "features.4", internal_batch_size=5).directional_derivatives(inputs, cav, TARGET)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    assert ours.magnitude[("bar", "features.4", TARGET)][0] == pytest.approx(expected.mean().item(), rel=1e-12)
    assert ours.sign_count[("bar", "features.4", TARGET)][0] == (expected > 0).double().mean().item()
