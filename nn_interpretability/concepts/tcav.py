"""Testing with Concept Activation Vectors (TCAV; Kim et al. 2018, eq. 1-2 and section 3.3).

A concept is a set of example inputs. At a layer ``l`` a linear classifier separates the concept's
activations ``h_l(x)`` from those of a random set; the unit normal of its decision boundary, pointing
towards the concept, is the concept activation vector (CAV) ``v``. The directional derivative of the
class-``k`` logit along it is ``S = ∇h_l f_k(x) · v`` (eq. 1), and the TCAV score is the fraction of
class-``k`` inputs with ``S > 0`` (eq. 2). Section 3.3 guards against meaningless CAVs: the concept is
tested against several random sets, the scores are compared by a two-sided t-test with those of random
sets tested against a random set, and the verdict is Bonferroni-corrected for the number of tests.

TCAV returns scores, not maps: it is no :class:`~nn_interpretability.core.base.Attribution` and is not
in the method registry.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from torch import nn

from ..core.base import forward_scores
from ..core.batching import chunk_size, chunks
from ..core.hooks import borrowed
from ..core.layers import find_layer
from ..core.progress import progress
from ..core.validation import check_inputs, check_seed, positive_int

#: Examples each concept and random set needs at least: the stratified split puts one of each set in
#: the training and one in the test part.
MIN_EXAMPLES = 2

#: Random sets :meth:`TCAV.interpret` needs at least: the first is the random counterpart, and the
#: t-test needs two runs, i.e. two more random sets.
MIN_RANDOM_SETS = 3

_CLASSIFIERS = ("sgd", "logistic")


@dataclass(frozen=True, eq=False)
class Concept:
    """A named concept given by example inputs ``(n, ...)``, batch-first like the model's inputs."""

    name: str
    examples: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a concept needs a non-empty name, got {self.name!r}")
        object.__setattr__(self, "examples", check_inputs(self.examples))

    def __len__(self) -> int:
        return self.examples.shape[0]

    def __repr__(self) -> str:
        return f"Concept({self.name!r}, {len(self)} examples)"


@dataclass(frozen=True, eq=False)
class CAV:
    """A concept activation vector: the unit normal ``vector`` (float64, ``(F,)``) of ``layer``'s activations.

    It is the normal of the linear classifier separating ``concept``'s activations from
    ``counterpart``'s, pointing towards ``concept``; ``accuracy`` is the classifier's on the held-out split.
    """

    layer: str
    concept: str
    counterpart: str
    vector: torch.Tensor
    accuracy: float

    def __repr__(self) -> str:
        return f"CAV({self.concept!r} vs {self.counterpart!r} at {self.layer!r}, accuracy {self.accuracy:.3f})"


def significance(concept_scores, random_scores, alpha: float = 0.05, n_tests: int = 1) -> tuple[float, bool]:
    """Two-sided t-test of a concept's TCAV scores against random-vs-random scores (section 3.3).

    Parameters
    ----------
    concept_scores, random_scores : array-like (runs,)
        TCAV scores of the concept against each random set, and of the random counterpart against the
        same random sets.
    alpha : float
        Significance level of the family of tests.
    n_tests : int
        Number of hypotheses tested together: the verdict is Bonferroni-corrected, ``p < alpha / n_tests``.

    Returns
    -------
    p_value : float
        Student's two-sample t-test (:func:`scipy.stats.ttest_ind`); ``nan`` when both samples are one
        and the same constant, which is then not significant.
    significant : bool
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    positive_int(n_tests, "n_tests")
    concept_scores, random_scores = np.asarray(concept_scores, float), np.asarray(random_scores, float)
    if concept_scores.size < 2 or random_scores.size < 2:
        raise ValueError(
            f"the t-test needs at least two runs of each, got {concept_scores.size} concept and "
            f"{random_scores.size} random scores"
        )
    with warnings.catch_warnings():
        # Scores of exactly 0 or 1 in every run are common; scipy warns about the constant samples.
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(stats.ttest_ind(concept_scores, random_scores).pvalue)
    return p_value, bool(p_value < alpha / n_tests)


@dataclass
class TCAVResult:
    """TCAV scores of every (concept, layer, class) over the runs, and their significance (section 3.3).

    Keys are ``(concept, layer, k)`` for scores and p-values, ``(layer, k)`` for the random-vs-random
    scores and ``(concept, layer)`` for CAVs and accuracies (the random counterpart's under its own name).
    Run ``i`` tests against ``random_concepts[i + 1]``; ``random_concepts[0]`` is the counterpart.

    Attributes
    ----------
    sign_count : dict
        TCAV scores (eq. 2), the fraction of class-``k`` inputs with ``S > 0``, one per run.
    magnitude : dict
        The mean of ``S`` over the class-``k`` inputs, one per run (what ``captum.concept.TCAV`` returns
        as ``"magnitude"``; with unit CAVs it is the mean directional derivative).
    random_sign_count, random_magnitude : dict
        The same for the random counterpart against the random sets.
    p_values : dict
        Two-sided t-test of ``sign_count`` against ``random_sign_count`` (:func:`significance`).
    accuracies : dict
        Held-out accuracy of each run's CAV classifier.
    cavs : dict
        The CAVs of every run.
    alpha : float
        Significance level of the whole family of ``n_tests`` tests.
    """

    concepts: tuple[str, ...]
    layers: tuple[str, ...]
    classes: tuple[int, ...]
    random_concepts: tuple[str, ...]
    sign_count: dict = field(default_factory=dict)
    magnitude: dict = field(default_factory=dict)
    random_sign_count: dict = field(default_factory=dict)
    random_magnitude: dict = field(default_factory=dict)
    p_values: dict = field(default_factory=dict)
    accuracies: dict = field(default_factory=dict)
    cavs: dict = field(default_factory=dict)
    alpha: float = 0.05

    @property
    def n_tests(self) -> int:
        """Hypotheses tested: one per (concept, layer, class)."""
        return len(self.concepts) * len(self.layers) * len(self.classes)

    @property
    def significant(self) -> dict:
        """``p < alpha / n_tests`` per (concept, layer, k): the Bonferroni-corrected verdict."""
        return {key: bool(p < self.alpha / self.n_tests) for key, p in self.p_values.items()}

    @property
    def mean(self) -> dict:
        """Mean TCAV score over the runs per (concept, layer, k)."""
        return {key: float(scores.mean()) for key, scores in self.sign_count.items()}

    @property
    def std(self) -> dict:
        """Sample standard deviation (``ddof=1``) of the TCAV score over the runs per (concept, layer, k)."""
        return {key: float(scores.std(ddof=1)) for key, scores in self.sign_count.items()}


class TCAV:
    """Testing with Concept Activation Vectors (Kim et al. 2018, eq. 1-2, section 3.3).

    Parameters
    ----------
    model : nn.Module
        A classifier returning class scores ``(N, C)``.
    layers : str, nn.Module or a sequence of them
        The layers whose outputs are the activations ``h_l``, flattened per sample.
    classifier : {"sgd", "logistic"} or a scikit-learn classifier
        The linear classifier of the CAVs: ``"sgd"`` is ``SGDClassifier(alpha=0.01, max_iter=1000,
        tol=1e-3)`` (Captum's default), ``"logistic"`` ``LogisticRegression(max_iter=1000)``; an
        estimator with ``coef_`` after ``fit`` is cloned for every CAV. ``random_state`` is set to the seed.
    test_size : float
        Fraction of the examples held out (stratified) to measure a CAV's accuracy.
    internal_batch_size : int, optional
        Inputs per forward/backward pass; default as many as fit the memory budget
        (:func:`~nn_interpretability.core.batching.chunk_size`).
    """

    def __init__(
        self,
        model: nn.Module,
        layers,
        classifier="sgd",
        test_size: float = 0.33,
        internal_batch_size: int | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        layers = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
        if not layers:
            raise ValueError("layers is empty: give at least one layer (a name or a submodule of the model)")
        names = [find_layer(model, layer)[0] for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"a layer is listed twice: {names}")
        self.layers = tuple(names)
        if isinstance(classifier, str):
            if classifier not in _CLASSIFIERS:
                raise ValueError(f"classifier must be one of {_CLASSIFIERS} or a scikit-learn classifier, got {classifier!r}")
        elif not (hasattr(classifier, "fit") and hasattr(classifier, "get_params")):
            raise TypeError(f"classifier must be one of {_CLASSIFIERS} or a scikit-learn classifier, got {type(classifier).__name__}")
        self.classifier = classifier
        if isinstance(test_size, bool) or not isinstance(test_size, float) or not 0 < test_size < 1:
            raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
        self.test_size = test_size
        self.internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)

    def __repr__(self) -> str:
        return f"TCAV({type(self.model).__name__}, layers={list(self.layers)})"

    # Activations and gradients -------------------------------------------------------------------

    def _hook(self, store: dict) -> None:
        modules = dict(self.model.named_modules())

        def capture(name):
            def hook(module, args, output):
                if not isinstance(output, torch.Tensor):
                    raise TypeError(f"layer {name!r} returns a {type(output).__name__}; TCAV needs a tensor (N, ...)")
                if name in store:
                    raise ValueError(
                        f"layer {name!r} runs more than once in the model's forward pass; TCAV needs one activation "
                        "per sample: give a layer that is called once"
                    )
                store[name] = output
                # Later in-place operations (ReLU(inplace=True)) must not change the kept activation.
                return output.clone()

            return hook

        for name in self.layers:
            modules[name].register_forward_hook(capture(name))

    def _forward(self, x: torch.Tensor, store: dict) -> torch.Tensor:
        store.clear()
        output = forward_scores(self.model, x)
        missing = [name for name in self.layers if name not in store]
        if missing:
            raise ValueError(f"the layers {missing} did not run in the model's forward pass")
        return output

    def _batch(self, inputs: torch.Tensor) -> int:
        return chunk_size(inputs[0].numel(), self.internal_batch_size, rows_per_copy=1, device=inputs.device)

    def activations(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The activations ``h_l(x)`` of every layer, flattened per sample: ``{layer: (N, F)}``."""
        inputs = check_inputs(inputs)
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        store: dict = {}
        with borrowed(self.model), torch.no_grad():
            self._hook(store)
            for rows in chunks(inputs.shape[0], self._batch(inputs)):
                self._forward(inputs[rows.start : rows.stop], store)
                for name in self.layers:
                    parts[name].append(store[name].detach().flatten(1))
        return {name: torch.cat(values) for name, values in parts.items()}

    def gradients(self, inputs: torch.Tensor, target: int) -> dict[str, torch.Tensor]:
        """The gradients ``∇h_l f_k(x)`` of the class-``target`` score, flattened per sample: ``{layer: (N, F)}``."""
        inputs, target = check_inputs(inputs), _check_class(target)
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        store: dict = {}
        with borrowed(self.model):
            self._hook(store)
            for rows in chunks(inputs.shape[0], self._batch(inputs)):
                x = inputs[rows.start : rows.stop].clone().requires_grad_(True)
                output = self._forward(x, store)
                _check_target(target, output.shape[1])
                grads = torch.autograd.grad(output[:, target].sum(), [store[name] for name in self.layers], allow_unused=True)
                for name, grad in zip(self.layers, grads):
                    if grad is None:
                        raise ValueError(f"the class score does not depend on layer {name!r}")
                    parts[name].append(grad.flatten(1))
        return {name: torch.cat(values) for name, values in parts.items()}

    def directional_derivatives(self, inputs: torch.Tensor, cav: CAV, target: int) -> torch.Tensor:
        """``S = ∇h_l f_k(x) · v`` (eq. 1) for every input, float64 ``(N,)``."""
        if cav.layer not in self.layers:
            raise ValueError(f"the CAV is of layer {cav.layer!r}, which is not one of this TCAV's layers {list(self.layers)}")
        gradient = self.gradients(inputs, target)[cav.layer]
        return gradient.to(torch.float64) @ cav.vector.to(gradient.device)

    # CAVs -----------------------------------------------------------------------------------------

    def _estimator(self, seed: int):
        if self.classifier == "sgd":
            return SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=seed)
        if self.classifier == "logistic":
            return LogisticRegression(max_iter=1000, random_state=seed)
        estimator = clone(self.classifier)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=seed)
        return estimator

    def _fit(self, layer: str, concept: str, counterpart: str, positive, negative, seed: int) -> CAV:
        features = torch.cat([positive, negative]).to(torch.float64).cpu().numpy()
        labels = np.r_[np.ones(len(positive), dtype=np.int64), np.zeros(len(negative), dtype=np.int64)]
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=self.test_size, random_state=seed, stratify=labels
        )
        estimator = self._estimator(seed).fit(x_train, y_train)
        coef = np.asarray(getattr(estimator, "coef_", ()), dtype=float)
        if coef.size != features.shape[1]:
            raise TypeError(
                f"the classifier {type(estimator).__name__} has no linear coef_ of {features.shape[1]} features "
                "after fit; TCAV needs a linear classifier"
            )
        normal = coef.reshape(-1)
        norm = np.linalg.norm(normal)
        if not np.isfinite(norm) or norm == 0:
            raise ValueError(f"the classifier for {concept!r} vs {counterpart!r} at layer {layer!r} found no direction (coef_ = 0)")
        # scikit-learn's coef_ points towards classes_[1], the concept (label 1).
        vector = torch.from_numpy(normal / norm).to(positive.device)
        return CAV(layer, concept, counterpart, vector, float(estimator.score(x_test, y_test)))

    def compute_cavs(self, concept: Concept, counterpart: Concept, seed: int = 0) -> dict[str, CAV]:
        """The CAV of ``concept`` against ``counterpart`` at every layer: ``{layer: CAV}``."""
        seed = _seed(seed)
        positive, negative = (self.activations(_checked_concept(c).examples) for c in (concept, counterpart))
        return {
            layer: self._fit(layer, concept.name, counterpart.name, positive[layer], negative[layer], seed)
            for layer in self.layers
        }

    # The test -------------------------------------------------------------------------------------

    def interpret(
        self,
        inputs,
        concepts: Sequence[Concept],
        random_concepts: Sequence[Concept],
        target: int | None = None,
        alpha: float = 0.05,
        show_progress: bool | None = None,
        seed: int = 0,
    ) -> TCAVResult:
        """TCAV scores of ``concepts`` for the class(es) of ``inputs``, with their significance (section 3.3).

        Parameters
        ----------
        inputs : Tensor (N, ...) or mapping {k: Tensor}
            Inputs of class ``target``, or the inputs of each class ``k`` to test.
        concepts : sequence of Concept
        random_concepts : sequence of Concept
            At least :data:`MIN_RANDOM_SETS` random sets. Run ``i`` trains each concept's CAV against
            ``random_concepts[i + 1]``, and the random counterpart ``random_concepts[0]``'s against the
            same set, for the random-vs-random scores of the t-test.
        target : int, optional
            The class of ``inputs`` when it is one tensor (``None`` with a mapping).
        alpha : float
            Significance level of the family of tests (one per concept, layer and class; Bonferroni).
        show_progress : bool, optional
        seed : int
            Seeds every CAV's train/test split and classifier.

        Returns
        -------
        TCAVResult
        """
        seed = _seed(seed)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        per_class = _inputs_per_class(inputs, target)
        concepts, random_concepts = list(concepts), list(random_concepts)
        if not concepts:
            raise ValueError("concepts is empty: give at least one Concept")
        if len(random_concepts) < MIN_RANDOM_SETS:
            raise ValueError(
                f"random_concepts has {len(random_concepts)} sets; the t-test needs at least {MIN_RANDOM_SETS} "
                "(a random counterpart and two random sets to run against)"
            )
        names = [c.name for c in (*concepts, *random_concepts)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"concept names must be unique; repeated: {repeated}")
        activations = {c.name: self.activations(_checked_concept(c).examples) for c in (*concepts, *random_concepts)}
        counterpart, runs = random_concepts[0], random_concepts[1:]
        result = TCAVResult(
            concepts=tuple(c.name for c in concepts),
            layers=self.layers,
            classes=tuple(per_class),
            random_concepts=tuple(c.name for c in random_concepts),
            alpha=alpha,
        )
        tested = [c.name for c in concepts] + [counterpart.name]
        for name in tested:
            for layer in self.layers:
                result.cavs[name, layer] = []
        for negative in progress(runs, "TCAV runs", show_progress):
            for name in tested:
                for layer in self.layers:
                    result.cavs[name, layer].append(
                        self._fit(layer, name, negative.name, activations[name][layer], activations[negative.name][layer], seed)
                    )
        for key, cavs in result.cavs.items():
            result.accuracies[key] = np.array([cav.accuracy for cav in cavs])
        for k, x in per_class.items():
            gradients = self.gradients(x, k)
            for layer in self.layers:
                gradient = gradients[layer].to(torch.float64)
                for name in tested:
                    vectors = torch.stack([cav.vector for cav in result.cavs[name, layer]]).to(gradient.device)
                    derivatives = gradient @ vectors.T  # (N_k, runs): eq. 1 for every run at once
                    sign_count = (derivatives > 0).to(torch.float64).mean(0).cpu().numpy()
                    magnitude = derivatives.mean(0).cpu().numpy()
                    if name == counterpart.name:
                        result.random_sign_count[layer, k], result.random_magnitude[layer, k] = sign_count, magnitude
                    else:
                        result.sign_count[name, layer, k], result.magnitude[name, layer, k] = sign_count, magnitude
        for (name, layer, k), scores in result.sign_count.items():
            result.p_values[name, layer, k] = significance(scores, result.random_sign_count[layer, k], alpha, result.n_tests)[0]
        return result


def _seed(seed) -> int:
    seed = check_seed(seed)
    if seed is None:
        raise TypeError("seed must be an int: the CAVs are trained deterministically")
    return seed


def _check_target(target, classes: int) -> None:
    if not 0 <= target < classes:
        raise ValueError(f"target {target} is out of range for a model with {classes} class scores")


def _check_class(target) -> int:
    if isinstance(target, bool) or not isinstance(target, Integral):
        raise TypeError(f"a target must be an int class index, got {type(target).__name__}")
    return int(target)


def _inputs_per_class(inputs, target) -> dict[int, torch.Tensor]:
    if isinstance(inputs, Mapping):
        if target is not None:
            raise TypeError("inputs is a mapping {class: inputs}; leave target=None")
        if not inputs:
            raise ValueError("inputs is an empty mapping: give {class: inputs of that class}")
        return {_check_class(k): check_inputs(x) for k, x in inputs.items()}
    if target is None:
        raise TypeError("TCAV scores the inputs of one class: give target=k, or inputs as a mapping {k: inputs}")
    return {_check_class(target): check_inputs(inputs)}


def _checked_concept(concept) -> Concept:
    if not isinstance(concept, Concept):
        raise TypeError(f"expected a Concept, got {type(concept).__name__}")
    if len(concept) < MIN_EXAMPLES:
        raise ValueError(f"concept {concept.name!r} has {len(concept)} example(s); a CAV needs at least {MIN_EXAMPLES}")
    return concept
