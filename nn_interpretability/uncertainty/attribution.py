"""Attribution under uncertainty: any attribution method over MC-dropout passes or noisy copies, and
attribution of softmax probabilities (the report's sections 3.1 and 3.3, Fig. 19, 22–24).

Every function takes an attribution method of this package (an :class:`~nn_interpretability.core.base.Attribution`:
``Saliency``, ``IntegratedGradients``, ``DeepLift``, ``LRP``, ``SmoothGrad(...)``, ...). MC-dropout passes run batched:
the input is repeated once per pass (and class), each copy gets the dropout masks of its own network
(:func:`~nn_interpretability.uncertainty.mc_dropout.fixed_dropout_masks`), and the method explains the
whole batch at once. Because the masks are fixed per copy, the forward that picks a pass's predicted
class and all forwards the method runs for its explanation (DeepLIFT's baseline, the path points of
Integrated Gradients) go through the same network. The method must run the model on its input batch
stacked whole (row ``r`` is copy ``r mod B``), which every method of this package does; Integrated
Gradients needs its own ``internal_batch_size`` to be a multiple of the rows per chunk, and a violation raises.

Vocabulary (as Captum's): ``internal_batch_size`` is how many copies (passes) of the batch go to one
call of the method, ``show_progress`` switches the progress bar (``None``: only where a person watches),
``seed`` comes last. Per-call arguments of the method go in ``**kwargs`` or, where their name is one of
the function's own (``internal_batch_size``, ``seed``, ...), in ``attribute_kwargs``.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..attribution.integrated_gradients import quadrature
from ..core.base import Attribution, BatchCoupledWarning, Run, Target, forward_scores, resolve_target
from ..core.targets import ClassScore
from ..core.batching import broadcast_baselines, repeat_per_sample, standard_normal_copies, value_range_sigma
from ..core.hooks import borrowed
from ..core.validation import check_inputs, check_map_shape, non_negative_number, positive_int
from ..core.vocabulary import renamed_arguments
from .mc_dropout import FUNCTIONAL_DROPOUT, _pass_chunks, fixed_dropout_masks, mc_dropout_predict


@dataclass(frozen=True)
class ClassRelevance:
    """Attribution maps summed per class over stochastic passes (or noisy copies).

    Attributes
    ----------
    relevance : Tensor
        ``(N, K, ...)`` the sum of the maps explaining class ``classes[j]``, per sample.
    counts : Tensor
        ``(N, K)`` how many passes (copies) the model predicted ``classes[j]`` in: the numbers under
        the heatmaps of the report's Fig. 19 and 23.
    maps : Tensor
        ``(N, K)`` how many maps were summed into each class: ``counts`` when each pass explains its
        predicted class, the number of passes when each pass explains every class (Algorithm 1).
    classes : Tensor
        ``(K,)`` the class of each column.
    """

    relevance: torch.Tensor
    counts: torch.Tensor
    maps: torch.Tensor
    classes: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        """``(N, K, ...)`` the average map per class (zero for a class no map went into)."""
        shape = (*self.maps.shape, *[1] * (self.relevance.dim() - 2))
        return self.relevance / self.maps.clamp(min=1).view(shape).to(self.relevance.dtype)


def _check_method(method) -> Attribution:
    if not isinstance(method, Attribution):
        raise TypeError(
            "method must be an attribution object of this package (an nni.Attribution with .model and "
            f".attribute(inputs, target=...)), e.g. nni.Saliency(model); got {type(method).__name__}"
        )
    return method


def _per_call(attribute_kwargs: Mapping | None, kwargs: dict) -> dict:
    """The method's per-call arguments: ``**kwargs`` and ``attribute_kwargs`` (for names the function uses itself)."""
    if attribute_kwargs is None:
        return kwargs
    if not isinstance(attribute_kwargs, Mapping):
        raise TypeError(
            f"attribute_kwargs must be a dict of the method's per-call arguments, got {type(attribute_kwargs).__name__}"
        )
    both = sorted(set(attribute_kwargs) & set(kwargs))
    if both:
        raise TypeError(f"{both} given both in attribute_kwargs and as keyword arguments; give each once")
    return {**kwargs, **attribute_kwargs}


def _explain(method, copies: torch.Tensor, target: torch.Tensor, kwargs: dict) -> torch.Tensor:
    if kwargs.get("return_convergence_delta"):
        raise ValueError("return_convergence_delta is not supported here: the functions return summed maps only")
    maps = method.attribute(copies, target=target, **kwargs)
    return check_map_shape(maps, copies.shape, "the method").detach()


class _PredictedClassSums:
    """Maps of copies of a batch summed per sample and per predicted class, with their counts.

    Chunk after chunk, ``add`` takes the maps of ``k`` copies of the ``N`` samples (copy-major rows:
    copy ``j`` of sample ``i`` at row ``j * N + i``) and the logits the copies were predicted from.
    """

    def __init__(self, inputs: torch.Tensor):
        self.inputs = inputs
        self.relevance = self.counts = None

    def add(self, maps: torch.Tensor, logits: torch.Tensor) -> None:
        n, self.num_classes = self.inputs.shape[0], logits.shape[1]
        if self.relevance is None:
            self.relevance = self.inputs.new_zeros((n * self.num_classes, *self.inputs.shape[1:]))
            self.counts = torch.zeros(n * self.num_classes, dtype=torch.long, device=self.inputs.device)
        cell = torch.arange(n, device=maps.device).repeat(len(maps) // n) * self.num_classes + logits.argmax(1)
        self.relevance.index_add_(0, cell, maps)
        self.counts.index_add_(0, cell, torch.ones_like(cell))

    def result(self) -> ClassRelevance:
        n, num_classes = self.inputs.shape[0], self.num_classes
        counts = self.counts.view(n, num_classes)
        return ClassRelevance(
            relevance=self.relevance.view(n, num_classes, *self.inputs.shape[1:]),
            counts=counts,
            maps=counts.clone(),
            classes=torch.arange(num_classes, device=self.inputs.device),
        )


@renamed_arguments(batch_size="internal_batch_size")
def mc_dropout_predicted_relevance(
    method,
    inputs: torch.Tensor,
    passes: int = 1000,
    *,
    internal_batch_size: int | None = None,
    functional_dropout: str = "raise",
    attribute_kwargs: Mapping | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
    **kwargs,
) -> ClassRelevance:
    """MC dropout × attribution, the report's approach 1 (section 3.1, Fig. 19 left).

    Each of ``passes`` stochastic passes explains its own *predicted* class; the maps are summed per
    predicted class and ``counts`` (= ``maps``) says how many passes predicted each class, so each
    sample's counts sum to ``passes``. Pass ``k`` is the same network as pass ``k`` of
    :func:`~nn_interpretability.uncertainty.mc_dropout.mc_dropout_predict` with the same seed.

    Parameters
    ----------
    method : Attribution
        E.g. ``nni.LRP(model)``, ``nni.Saliency(model)``, ``nni.DeepLift(model)``.
    inputs : Tensor
        Batch ``(N, ...)``.
    passes : int
        Stochastic forward passes.
    internal_batch_size : int, optional
        Passes explained per call of the method (``batch_size`` before 0.2); ``None`` bounds a call's
        input elements. The result does not depend on it.
    functional_dropout : {"raise", "sample", "ignore"}
        See :func:`~nn_interpretability.uncertainty.mc_dropout.fixed_dropout_masks`.
    attribute_kwargs : dict, optional
        Per-call arguments of ``method.attribute`` whose names this function uses itself (e.g. the
        ``internal_batch_size`` of Integrated Gradients); others may go in ``**kwargs`` as well.
    show_progress : bool, optional
        A progress bar over the calls of the method; ``None`` shows it in a terminal or notebook only,
        when there are many.
    seed : int
        Seed of the dropout masks.
    **kwargs
        Passed to ``method.attribute`` (e.g. ``baselines``); tensors of shape ``(N, ...)`` are repeated
        with the copies.
    """
    model = _check_method(method).model
    inputs = check_inputs(inputs, method.min_input_dim)
    passes = positive_int(passes, "passes")
    internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
    kwargs = _per_call(attribute_kwargs, kwargs)
    n, sample_shape = inputs.shape[0], inputs.shape[1:]
    sums = _PredictedClassSums(inputs)
    with fixed_dropout_masks(model, functional_dropout, seed) as masks:
        chunks = _pass_chunks(passes, internal_batch_size, n, inputs[0].numel(), "MC dropout relevance", show_progress)
        for start, stop in chunks:
            k = stop - start
            masks.select(torch.arange(start, stop).repeat_interleave(n))
            copies = inputs.repeat(k, *[1] * len(sample_shape))
            with torch.no_grad():
                logits = forward_scores(model, copies)
            masks.require_dropout()
            predicted = logits.argmax(1)
            sums.add(_explain(method, copies, predicted, repeat_per_sample(kwargs, n, k, inputs)), logits)
    return sums.result()


@renamed_arguments(batch_size="internal_batch_size")
def mc_dropout_class_relevance(
    method,
    inputs: torch.Tensor,
    passes: int = 1000,
    *,
    classes=None,
    independent_classes: bool = True,
    internal_batch_size: int | None = None,
    functional_dropout: str = "raise",
    attribute_kwargs: Mapping | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
    **kwargs,
) -> ClassRelevance:
    """MC dropout × attribution, the report's Algorithm 1 (section 3.1, Fig. 19 middle and right).

    For every pass and every class, the class is explained and its map added to that class's sum, so
    each class's map gathers evidence from all passes, not only from those that predict it.

    Parameters
    ----------
    method : Attribution
        E.g. ``nni.LRP(model)`` (the report's choice), ``nni.Saliency(model)``.
    inputs : Tensor
        Batch ``(N, ...)``.
    passes : int
        Stochastic predictions (the outer loop of Algorithm 1).
    classes : sequence of int, optional
        The classes to explain (the inner loop); ``None`` takes all.
    independent_classes : bool
        ``True`` (Algorithm 1 as written: ``prediction ← model(image)`` inside the class loop) gives every
        class of every pass its own stochastic network, key ``(k, c + 1)``; ``counts[c]`` is then the
        number of passes whose network for class ``c`` predicts ``c``, an independent estimate per class,
        so the counts need not sum to ``passes`` (as the report remarks). ``False`` explains all classes
        with the one network of pass ``k`` (that of :func:`mc_dropout_predict`); counts sum to ``passes``.
    internal_batch_size : int, optional
        Passes per call of the method, each with one copy per class (``batch_size`` before 0.2);
        ``None`` bounds a call's size.
    functional_dropout : {"raise", "sample", "ignore"}
        See :func:`~nn_interpretability.uncertainty.mc_dropout.fixed_dropout_masks`.
    attribute_kwargs : dict, optional
        Per-call arguments of ``method.attribute`` whose names this function uses itself.
    show_progress : bool, optional
        A progress bar over the calls of the method; ``None`` shows it in a terminal or notebook only,
        when there are many.
    seed : int
        Seed of the dropout masks.
    **kwargs
        Passed to ``method.attribute``.
    """
    model = _check_method(method).model
    inputs = check_inputs(inputs, method.min_input_dim)
    passes = positive_int(passes, "passes")
    internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
    kwargs = _per_call(attribute_kwargs, kwargs)
    n, sample_shape = inputs.shape[0], inputs.shape[1:]
    with fixed_dropout_masks(model, functional_dropout, seed) as masks:
        masks.select(torch.zeros(n, dtype=torch.long))
        with torch.no_grad():
            num_classes = forward_scores(model, inputs).shape[1]
        masks.require_dropout()
        classes = _check_classes(classes, num_classes).to(inputs.device)
        k_classes = classes.numel()
        relevance = inputs.new_zeros((k_classes, n, *sample_shape))
        counts = torch.zeros(k_classes, n, dtype=torch.long, device=inputs.device)
        rows_per_pass = k_classes * n
        chunks = _pass_chunks(passes, internal_batch_size, rows_per_pass, inputs[0].numel(), "Algorithm 1", show_progress)
        for start, stop in chunks:
            k = stop - start
            # Row ((pass * K) + class) * N + sample.
            pass_index = torch.arange(start, stop).repeat_interleave(rows_per_pass)
            class_index = torch.arange(k_classes).repeat_interleave(n).repeat(k)
            if independent_classes:
                masks.select(torch.stack([pass_index, classes.cpu()[class_index] + 1], 1))
            else:
                masks.select(pass_index)
            copies = inputs.repeat(k * k_classes, *[1] * len(sample_shape))
            target = classes[class_index.to(inputs.device)]
            with _predictions_seen(model, copies) as seen:
                maps = _explain(method, copies, target, repeat_per_sample(kwargs, n, k * k_classes, inputs))
            if seen:
                predicted = seen[0]
            else:
                with torch.no_grad():
                    predicted = forward_scores(model, copies).argmax(1)
            relevance += maps.view(k, k_classes, n, *sample_shape).sum(0)
            counts += (predicted == target).view(k, k_classes, n).sum(0)
    return ClassRelevance(
        relevance=relevance.transpose(0, 1),
        counts=counts.T.contiguous(),
        maps=torch.full((n, k_classes), passes, dtype=torch.long, device=inputs.device),
        classes=classes,
    )


@contextmanager
def _predictions_seen(model: nn.Module, copies: torch.Tensor) -> Iterator[list]:
    """Collect the predictions of ``copies`` from the first forward of ``model`` that runs them.

    Every method of this package runs the model on its inputs (first in a stacked batch), under the
    dropout masks selected for them; reading the predictions there saves Algorithm 1 a forward per
    chunk. The inputs are compared exactly, so a method that never runs them leaves the list empty.
    """
    seen: list[torch.Tensor] = []
    rows = copies.shape[0]

    def hook(module, args, output):
        if seen or not args or not isinstance(args[0], torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        # Detached first: the hook runs inside the method's own torch-function modes.
        x, scores = args[0].detach(), output.detach()
        if x.shape[0] >= rows and scores.dim() == 2 and x.shape[1:] == copies.shape[1:] and torch.equal(x[:rows], copies):
            seen.append(scores[:rows].argmax(1))

    handle = model.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _check_classes(classes, num_classes: int) -> torch.Tensor:
    if classes is None:
        return torch.arange(num_classes)
    values = torch.as_tensor(classes).reshape(-1)
    if values.numel() == 0 or values.is_floating_point() or values.dtype == torch.bool:
        raise TypeError(f"classes must be a non-empty sequence of ints, got {classes!r}")
    if ((values < 0) | (values >= num_classes)).any():
        raise ValueError(f"classes {values.tolist()} out of range: the model has {num_classes} classes")
    if values.unique().numel() != values.numel():
        raise ValueError(f"classes must not repeat, got {values.tolist()}")
    return values.long()


class MultiPassAttribution(Attribution):
    """A method's map averaged over MC-dropout passes: the report's multi-pass DeepLIFT (section 3.3, Fig. 22).

    A single pass of a dropout network explains one random sub-network (Fig. 22 middle); averaging
    ``(1/T) Σ_k M_k(x)`` over ``T`` passes explains the MC-dropout predictive model as a whole.

    Parameters
    ----------
    method : Attribution
        E.g. ``nni.DeepLift(model)``; its model needs dropout.
    passes : int
        MC-dropout passes ``T``.
    internal_batch_size : int, optional
        Passes per call of the method (``batch_size`` before 0.2); ``None`` bounds a call's size.
    functional_dropout : {"raise", "sample", "ignore"}
        See :func:`~nn_interpretability.uncertainty.mc_dropout.fixed_dropout_masks`.
    seed : int
        Seed of the dropout masks: pass ``k`` is the network of pass ``k`` of :func:`mc_dropout_predict`.

    Notes
    -----
    The capabilities (``takes_baselines``, ``multiplies_by_inputs``, ``needs_gradients``,
    ``min_input_dim``) are the wrapped method's; the map is ``stochastic`` (seeded). There is no
    convergence delta: the mean of per-pass deltas would not be the delta of the mean model.
    """

    stochastic = True

    @renamed_arguments(batch_size="internal_batch_size")
    def __init__(
        self,
        method,
        passes: int = 100,
        internal_batch_size: int | None = None,
        functional_dropout: str = "raise",
        seed: int = 0,
    ):
        super().__init__(_check_method(method).model)
        if functional_dropout not in FUNCTIONAL_DROPOUT:
            raise ValueError(f"functional_dropout must be one of {FUNCTIONAL_DROPOUT}, got {functional_dropout!r}")
        self.method = method
        self.passes = positive_int(passes, "passes")
        self.internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
        self.functional_dropout = functional_dropout
        self.seed = seed
        self.takes_baselines = method.takes_baselines
        self.multiplies_by_inputs = method.multiplies_by_inputs
        self.needs_gradients = method.needs_gradients
        self.min_input_dim = method.min_input_dim

    def attribute(self, inputs: torch.Tensor, target: Target = None, **kwargs) -> torch.Tensor:
        """The mean map over the passes, with the shape of ``inputs``; see :meth:`_attribute`."""
        # Inside fixed_dropout_masks every module but dropout runs in eval mode, so a model in training
        # mode (as MC dropout is often run) is not batch-coupled here: the template's warning does not apply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BatchCoupledWarning)
            return super().attribute(inputs, target, **kwargs)

    def _attribute(self, run: Run, show_progress: bool | None = None, **kwargs) -> torch.Tensor:
        """The mean map over the passes, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        target : any target of ``attribute``
            What every pass explains (a class per sample, an index tuple, a selector of
            :mod:`nn_interpretability.targets`, a callable); ``None`` on a classifier explains the class
            of the MC-dropout predictive mean (over the same passes) in every pass.
        show_progress : bool, optional
            A progress bar over the calls of the method; ``None`` shows it in a terminal or notebook
            only, when there are many.
        **kwargs
            Passed to the wrapped method's ``attribute`` (e.g. ``baselines``, or the ``internal_batch_size``
            of Integrated Gradients); tensors of shape ``(N, ...)`` are repeated with the copies.
        """
        inputs = run.inputs
        selector = run.selector
        if isinstance(selector, ClassScore) and selector.classes is None:
            # The predicted class is that of the MC-dropout predictive mean, not of one stochastic forward.
            prediction = mc_dropout_predict(
                self.model,
                inputs,
                self.passes,
                internal_batch_size=self.internal_batch_size,
                functional_dropout=self.functional_dropout,
                show_progress=show_progress,
                seed=self.seed,
            )
            selector = ClassScore(prediction.mean.argmax(1)).bind(prediction.mean)
        n, sample_shape = inputs.shape[0], inputs.shape[1:]
        total = torch.zeros_like(inputs)
        with fixed_dropout_masks(self.model, self.functional_dropout, self.seed) as masks:
            chunks = _pass_chunks(self.passes, self.internal_batch_size, n, inputs[0].numel(), "multi-pass", show_progress)
            for start, stop in chunks:
                k = stop - start
                masks.select(torch.arange(start, stop).repeat_interleave(n))
                copies = inputs.repeat(k, *[1] * len(sample_shape))
                maps = _explain(self.method, copies, selector.copies(k), repeat_per_sample(kwargs, n, k, inputs))
                total += maps.view(k, *inputs.shape).sum(0)
        return total / self.passes

    def __repr__(self) -> str:
        return f"MultiPassAttribution({self.method!r}, passes={self.passes}, seed={self.seed})"


@renamed_arguments(batch_size="internal_batch_size")
def noisy_predicted_relevance(
    method,
    inputs: torch.Tensor,
    copies: int = 2000,
    stdevs: float = 0.15,
    *,
    mc_dropout: bool = False,
    internal_batch_size: int | None = None,
    functional_dropout: str = "raise",
    attribute_kwargs: Mapping | None = None,
    show_progress: bool | None = None,
    seed: int = 0,
    **kwargs,
) -> ClassRelevance:
    """Attribution of noisy copies of the input, summed per predicted class (report section 3.3, Fig. 23).

    Copy ``j`` of sample ``i`` is ``x_i + σ_i z_j`` with ``z_j ~ N(0, I)`` and ``σ_i = stdevs × (max x_i −
    min x_i)`` (SmoothGrad's convention); each copy explains the class the model predicts for it. When
    the noise tips the prediction to another class, that class's average map shows what the model saw.

    Parameters
    ----------
    method : Attribution
        E.g. ``nni.DeepLift(model)``.
    inputs : Tensor
        Batch ``(N, ...)``.
    copies : int
        Noisy copies per sample (2,000 in the report).
    stdevs : float
        Noise level as a fraction of each sample's value range.
    mc_dropout : bool
        Also draw a dropout network per copy (copy ``j`` gets pass ``j``'s masks). ``False`` runs the
        model as it is (a dropout model in eval mode is deterministic).
    internal_batch_size : int, optional
        Copies per call of the method (``batch_size`` before 0.2); ``None`` bounds a call's size.
    functional_dropout : {"raise", "sample", "ignore"}
        With ``mc_dropout=True``; see :func:`~nn_interpretability.uncertainty.mc_dropout.fixed_dropout_masks`.
    attribute_kwargs : dict, optional
        Per-call arguments of ``method.attribute`` whose names this function uses itself.
    show_progress : bool, optional
        A progress bar over the calls of the method; ``None`` shows it in a terminal or notebook only,
        when there are many.
    seed : int
        Seed of the noise (and of the dropout masks with ``mc_dropout=True``).
    **kwargs
        Passed to ``method.attribute``.

    Returns
    -------
    ClassRelevance
        ``counts`` (= ``maps``) sum to ``copies`` per sample; ``mean`` is the per-class average map.
    """
    model = _check_method(method).model
    inputs = check_inputs(inputs, method.min_input_dim)
    copies = positive_int(copies, "copies")
    internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
    non_negative_number(stdevs, "stdevs")
    kwargs = _per_call(attribute_kwargs, kwargs)
    n, sample_shape = inputs.shape[0], inputs.shape[1:]
    sigma = value_range_sigma(inputs, stdevs)
    generator = torch.Generator(device=inputs.device).manual_seed(seed)
    sums = _PredictedClassSums(inputs)
    context = fixed_dropout_masks(model, functional_dropout, seed) if mc_dropout else borrowed(model)
    with context as handle:
        chunks = _pass_chunks(copies, internal_batch_size, n, inputs[0].numel(), "noisy copies", show_progress)
        for start, stop in chunks:
            k = stop - start
            noise = standard_normal_copies(inputs.shape, k, generator, inputs.dtype, inputs.device)
            noisy = (inputs + sigma * noise).reshape(k * n, *sample_shape)
            if mc_dropout:
                handle.select(torch.arange(start, stop).repeat_interleave(n))
            with torch.no_grad():
                logits = forward_scores(model, noisy)
            if mc_dropout:
                handle.require_dropout()
            predicted = logits.argmax(1)
            sums.add(_explain(method, noisy, predicted, repeat_per_sample(kwargs, n, k, inputs)), logits)
    return sums.result()


class _ContractedScores(nn.Module):
    """The model's scores contracted with fixed per-sample weights: one output ``Σ_j w_ij z_j(x)``.

    A method that runs the model on ``m`` stacked copies of the batch (DeepLIFT's baseline, the path
    points of Integrated Gradients) gets row ``r`` contracted with the weights of sample ``r mod N``.
    """

    def __init__(self, model: nn.Module, weights: torch.Tensor):
        super().__init__()
        self.model = model
        self.weights = weights

    def forward(self, x):
        scores = self.model(x)
        n = self.weights.shape[0]
        if scores.dim() != 2 or scores.shape[0] % n:
            raise ValueError(
                f"the method ran the model on a batch of {scores.shape[0]} rows, not a whole number of copies of "
                f"the {n} samples (for Integrated Gradients pass internal_batch_size as a multiple of {n})"
            )
        weights = self.weights.repeat(scores.shape[0] // n, 1)
        return (scores * weights).sum(1, keepdim=True)


class _Probabilities(nn.Module):
    """The model's softmax probabilities ``p(x)``: what a method that does not backpropagate explains."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).softmax(1)


def _methods_within(method: Attribution) -> Iterator[Attribution]:
    """``method`` and, recursively, the methods it holds (as :meth:`Attribution.with_model` finds them)."""
    yield method
    for value in vars(method).values():
        values = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else (value,)
        for inner in values:
            if isinstance(inner, Attribution):
                yield from _methods_within(inner)


def _refuse_undefined(method: Attribution) -> None:
    from ..attribution.cam import CAM
    from ..attribution.rollout import AttentionRollout

    for inner in _methods_within(method):
        if isinstance(inner, CAM):
            raise TypeError(
                "CAM (eq. 24) is defined only for class scores that are one linear layer of globally pooled "
                "feature maps; a softmax probability is not, so its class activation map is undefined. Use "
                "GradCAM, whose map of the probability softmax_attribution gives"
            )
        if isinstance(inner, AttentionRollout):
            raise TypeError(
                "attention rollout explains no score: its map is the same for every output, so it has no map of "
                "a probability. Use a method that explains a score (e.g. LRP, GradCAM)"
            )


def softmax_attribution(
    method,
    inputs: torch.Tensor,
    target: Target = None,
    baselines=None,
    n_steps: int = 64,
    attribute_kwargs: Mapping | None = None,
    **kwargs,
) -> torch.Tensor:
    """Attribute the softmax *probability* ``p_c`` with a method that explains scores (report section 3.3, Fig. 24).

    The softmax couples all logits, so the probability's change is split over them exactly by the path
    integral ``Δp_c = Σ_j w_j Δz_j`` with ``w_j = ∫_0^1 ∂p_c/∂z_j (z' + α(z − z')) dα``
    (``∂p_c/∂z_j = p_c(δ_cj − p_j)``, Gauss–Legendre with ``n_steps`` points), between the logits
    ``z'`` of the baseline and ``z`` of the input. The method then explains the scalar ``Σ_j w_j z_j``
    in one pass; its backward is linear in the output, so a method with summation-to-delta (DeepLIFT,
    Integrated Gradients) returns contributions summing to ``p_c(x) − p_c(x')``. Without ``baselines``
    the weights are the softmax Jacobian at ``x`` (the chain rule for gradient methods): Saliency,
    gradient × input, guided backpropagation, deconvolution and (Guided) Grad-CAM then give exactly their
    map of ``p_c`` itself. Methods that do not backpropagate (Occlusion, LIME) explain ``p_c`` directly:
    they run on the model's probabilities. CAM, defined only for a linear class score, raises.

    Wrappers (``SmoothGrad``, :class:`MultiPassAttribution`) are explained with their inner methods:
    the method is rebound with :meth:`~nn_interpretability.core.base.Attribution.with_model`. The
    weights are those of the clean input, for every noisy copy or pass.

    On logits a temperature ``T`` only rescales a map by ``1/T``; on probabilities it changes the
    weights ``w``, which is why the report's Fig. 24 explains the probability of a temperature-scaled
    model (wrap the model in :class:`~nn_interpretability.uncertainty.TemperatureScaled`).

    Parameters
    ----------
    method : Attribution
        Explains scores, e.g. ``nni.DeepLift(model)``; it is not changed (a copy explains the probability).
    inputs : Tensor
        Batch ``(N, ...)``.
    target : None, int, sequence or LongTensor
        Class per sample; ``None`` takes the predicted class.
    baselines : None, float or Tensor
        The method's reference input (passed to its ``attribute``; only for methods that take baselines),
        and the start of the logits' path; ``None`` leaves the method its default and takes the weights at ``x``.
    n_steps : int
        Quadrature points of the path integral.
    attribute_kwargs : dict, optional
        Per-call arguments of ``method.attribute`` whose names this function uses itself (e.g. the
        ``n_steps`` of Integrated Gradients); others may go in ``**kwargs`` as well.
    **kwargs
        Passed to ``method.attribute``.
    """
    _check_method(method)
    _refuse_undefined(method)
    model = method.model
    inputs = check_inputs(inputs, method.min_input_dim)
    kwargs = _per_call(attribute_kwargs, kwargs)
    if "baselines" in kwargs:
        raise TypeError("pass baselines as softmax_attribution's own argument: they also set the logits' path")
    if baselines is not None:
        if not method.takes_baselines:
            raise TypeError(f"{type(method).__name__} takes no baselines; call softmax_attribution without them")
        kwargs["baselines"] = baselines
    if not method.needs_gradients:
        if "output" in kwargs:
            raise TypeError("softmax_attribution explains the probability already: do not pass output")
        return method.with_model(_Probabilities(model)).attribute(inputs, target=target, **kwargs)
    reference = None if baselines is None else broadcast_baselines(baselines, inputs)
    with borrowed(model), torch.no_grad():
        logits = forward_scores(model, inputs)
        indices = resolve_target(target, logits)
        if reference is None:
            alphas, weights, start = [1.0], [1.0], logits
        else:
            alphas, weights = quadrature("gausslegendre", positive_int(n_steps, "n_steps"))
            start = forward_scores(model, reference.contiguous())
    one_hot = F.one_hot(indices, logits.shape[1]).to(logits.dtype)
    contraction = torch.zeros_like(logits)
    for alpha, weight in zip(alphas, weights):
        p = (start + float(alpha) * (logits - start)).softmax(1)
        contraction += float(weight) * p.gather(1, indices[:, None]) * (one_hot - p)
    return method.with_model(_ContractedScores(model, contraction)).attribute(inputs, target=0, **kwargs)
