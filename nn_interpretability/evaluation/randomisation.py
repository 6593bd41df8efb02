"""Randomisation tests: does the map depend on the model's parameters and on the explained class?

Beside :func:`~.sanity.cascading_randomization` (Adebayo et al. 2018, layer by layer):

- :func:`randomized_copy`: the model with every parameter layer re-initialised (the end of the cascade).
- :func:`smooth_mprt`: similarity of SmoothGrad-denoised maps of the trained and the randomised model
  (Hedström et al. 2023, sMPRT).
- :func:`efficient_mprt`: relative rise of the maps' histogram entropy from the trained to the
  randomised model (Hedström et al. 2023, eMPRT).
- :func:`random_logit`: similarity of the map of the target class and of a random other class
  (Sixt, Granz & Landgraf 2020).

Every function returns one score per sample, ``(N,)``.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..attribution.noise_tunnel import SmoothGrad
from ..core.base import Attribution, Target, check_inputs, forward_output
from ..core.hooks import borrowed
from ..core.targets import as_selector
from ..core.validation import check_map_shape, non_negative_number, positive_int
from .robustness import Explain, explainer
from .sanity import SIMILARITIES, _holds_parameters, _similarity, parameter_layers, randomize_layer


def randomized_copy(model: nn.Module, layers: Sequence[str] | None = None, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every parameter layer re-initialised: the last step of the cascade.

    Layer ``k`` of ``layers`` (default :func:`~.sanity.parameter_layers`, output first) is
    re-initialised under seed ``seed + k`` (:func:`~.sanity.randomize_layer`), as step ``k`` of
    :func:`~.sanity.cascading_randomization`, whose last model this is. ``model`` is unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    order = parameter_layers(model) if layers is None else list(layers)
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    for k, name in enumerate(order):
        if name not in modules or not _holds_parameters(modules[name]):
            raise ValueError(f"layer {name!r} is not a module of the model that holds parameters; choose from {parameter_layers(model)}")
        randomize_layer(modules[name], seed + k)
    return randomized


def _pair_of_maps(model, method_factory, inputs, target, randomized_model, seed, attribute_kwargs):
    """Maps of the trained and of the randomised model for the same targets (chosen on the trained model)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(method_factory):
        raise TypeError("method_factory must be callable: method_factory(model) -> Attribution")
    inputs = check_inputs(inputs)
    randomized = randomized_copy(model, seed=seed) if randomized_model is None else randomized_model
    with borrowed(model), torch.no_grad():
        selector = as_selector(target, forward_output(model, inputs))
    maps = [
        check_map_shape(method_factory(network).attribute(inputs, target=selector, **attribute_kwargs), inputs.shape, "the method").detach()
        for network in (model, randomized)
    ]
    return maps[0], maps[1]


def smooth_mprt(
    model: nn.Module,
    method_factory: Callable[[nn.Module], object],
    inputs: torch.Tensor,
    target: Target = None,
    *,
    nt_samples: int = 50,
    stdevs: float = 0.1,
    similarity: str = "spearman_abs",
    randomized_model: nn.Module | None = None,
    noise: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Smooth MPRT: similarity of the denoised maps of the trained and the fully randomised model.

    Hedström et al. 2023, "Sanity checks revisited: an exploration to repair the model parameter
    randomisation test" (XAI in Action workshop, NeurIPS 2023), sMPRT: the maps of both models are
    averaged over ``nt_samples`` noisy copies of the input (SmoothGrad, Smilkov et al. 2017, with ``σ = stdevs × (max x - min x)``: :class:`~nn_interpretability.SmoothGrad`), which removes the
    shattered-gradient noise that lets a randomised model's maps look unlike the trained model's for
    the wrong reason. A map that explains the model changes: low similarity is good.

    Quantus 0.6 (``quantus.SmoothMPRT``, ``return_last_correlation=True``) uses the clean input as its
    last copy and fresh draws for each model. Here both models see the same ``nt_samples`` noisy copies
    (common random numbers: the similarity then reflects the models, not the noise); given Quantus's
    draws (``noise`` with a zero last copy) and its randomised model the scores are equal (tested).

    Parameters
    ----------
    model, method_factory, inputs, target
        As in :func:`~.sanity.cascading_randomization`.
    nt_samples : int
        Noisy copies per sample (Quantus's ``nr_samples``, 50).
    stdevs : float
        Noise level as a fraction of each sample's value range (Quantus's ``noise_magnitude``, 0.1).
    similarity : {"spearman_abs", "spearman", "ssim"}
        Measure of :func:`~.sanity.cascading_randomization` (default Spearman of the absolute maps, as
        Quantus's defaults ``abs=True`` and Spearman).
    randomized_model : nn.Module, optional
        The randomised model to compare with; default :func:`randomized_copy` of ``model`` under ``seed``.
    noise : Tensor, optional
        Standard-normal draws ``(nt_samples, N, ...)`` for both models instead of random ones.
    seed : int
        Seed of the randomisation and of the noise.

    Returns
    -------
    Tensor
        ``(N,)`` float64; lower is better (NaN where a map is constant).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    nt_samples = positive_int(nt_samples, "nt_samples")
    stdevs = non_negative_number(stdevs, "stdevs")
    kwargs = {} if noise is None else {"noise": noise}
    original, randomized = _pair_of_maps(
        model, lambda network: SmoothGrad(method_factory(network), nt_samples=nt_samples, stdevs=stdevs, seed=seed),
        inputs, target, randomized_model, seed, kwargs,
    )
    return _similarity(similarity, original, randomized)


def histogram_entropy(maps: torch.Tensor, n_bins: int = 100) -> torch.Tensor:
    """Shannon entropy (nats) of the histogram of every map's values in ``n_bins`` equal bins over its range.

    The bins are ``numpy.histogram``'s (edges ``linspace(min, max, n_bins + 1)``, the last bin closed, a
    constant map's range widened by 0.5 either side), counted for all maps at once; equals
    ``scipy.stats.entropy(numpy.histogram(map, n_bins)[0])`` (Quantus's ``discrete_entropy``).
    """
    n_bins = positive_int(n_bins, "n_bins")
    values = maps.detach().flatten(1).double()
    first, last = values.amin(1, keepdim=True), values.amax(1, keepdim=True)
    constant = first == last
    first, last = torch.where(constant, first - 0.5, first), torch.where(constant, last + 0.5, last)
    steps = torch.arange(n_bins + 1, dtype=values.dtype, device=values.device)
    edges = steps * ((last - first) / n_bins) + first
    edges[:, -1:] = last
    index = ((values - first) * (n_bins / (last - first))).long().clamp(max=n_bins - 1)
    # numpy's correction of the fast bin index against the edges (rounding at a bin border)
    index = index - (values < edges.gather(1, index)).long()
    index = index + ((values >= edges.gather(1, index + 1)) & (index != n_bins - 1)).long()
    counts = torch.zeros(values.shape[0], n_bins, dtype=values.dtype, device=values.device).scatter_add_(1, index, torch.ones_like(values))
    p = counts / counts.sum(1, keepdim=True)
    return -torch.special.xlogy(p, p).sum(1)


def efficient_mprt(
    model: nn.Module,
    method_factory: Callable[[nn.Module], object],
    inputs: torch.Tensor,
    target: Target = None,
    *,
    n_bins: int = 100,
    randomized_model: nn.Module | None = None,
    attribute_kwargs: dict | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Efficient MPRT: how much more complex the maps become when the model is fully randomised.

    Hedström et al. 2023 (see :func:`smooth_mprt`), eMPRT: instead of a similarity (whose choice the
    paper shows to decide the outcome), the complexity of the absolute maps, the entropy of their
    histogram (:func:`histogram_entropy`), of the fully randomised model relative to the trained one,
    ``(H(|Φ_rand|) - H(|Φ|)) / H(|Φ|)``: a map that explains the model turns to noise, a large rise.

    Equals ``quantus.EfficientMPRT`` (``abs=True``, ``normalise=False``, ``n_bins`` given) given the
    same randomised model (tested).

    Parameters
    ----------
    model, method_factory, inputs, target
        As in :func:`~.sanity.cascading_randomization`.
    n_bins : int
        Histogram bins (Quantus's ``complexity_func_kwargs={"n_bins": ...}``, 100).
    randomized_model : nn.Module, optional
        The randomised model; default :func:`randomized_copy` of ``model`` under ``seed``.
    attribute_kwargs : dict, optional
        Per-call arguments of ``attribute``.
    seed : int
        Seed of the randomisation.

    Returns
    -------
    Tensor
        ``(N,)`` float64; higher is better.
    """
    original, randomized = _pair_of_maps(model, method_factory, inputs, target, randomized_model, seed, dict(attribute_kwargs or {}))
    before, after = histogram_entropy(original.abs(), n_bins), histogram_entropy(randomized.abs(), n_bins)
    return (after - before) / before


def random_logit(
    explain: Explain,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    num_classes: int | None = None,
    similarity: str = "ssim",
    off_target: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Random logit: similarity of the map of the explained class and the map of a random other class.

    Sixt, Granz & Landgraf 2020, "When explanations lie: why many modified BP attributions fail"
    (ICML), the random-logit test: a map that explains the decision differs between the
    explained class and another class ``c' ≠ c`` drawn uniformly, so low similarity is good.

    Quantus 0.6 (``quantus.RandomLogit``) scores SSIM on the maps flattened to 1-D (a 7-element window
    sliding along the rows' concatenation, across row ends); here ``"ssim"`` is image SSIM
    (:func:`~.sanity.structural_similarity` of the channel-summed maps scaled to [0, 1]). With
    ``similarity="spearman"`` and Quantus's random classes (``off_target``) both are equal (tested).

    Parameters
    ----------
    explain : Attribution or callable
        As in :func:`~.robustness.max_sensitivity`.
    inputs : Tensor
        Batch ``(N, ...)``; ``"ssim"`` needs images ``(N, C, H, W)`` of at least 11 × 11.
    target : None, int, sequence or LongTensor
        The explained class (``None``: the prediction).
    num_classes : int, optional
        Number of classes to draw from; default the model's output width (give it for a callable).
    similarity : {"ssim", "spearman", "spearman_abs"}
    off_target : LongTensor, optional
        ``(N,)`` the other classes to use instead of random ones.
    seed : int
        Seed of the random classes: the other class is uniform over the ``num_classes - 1`` others.

    Returns
    -------
    Tensor
        ``(N,)`` float64; lower is better.
    """
    inputs = check_inputs(inputs)
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    n = inputs.shape[0]
    if isinstance(explain, Attribution):
        with borrowed(explain.model), torch.no_grad():
            output = forward_output(explain.model, inputs)
        classes = as_selector(target, output).class_indices()
        if classes is None:
            raise TypeError("random logit explains classes: target must be None, an int, a sequence or a LongTensor")
        num_classes = output.shape[1] if num_classes is None else num_classes
    else:
        if target is None or num_classes is None:
            raise ValueError("a callable explain needs target and num_classes given")
        classes = torch.as_tensor(target, device=inputs.device).expand(n) if not isinstance(target, (list, tuple)) else torch.tensor(target, device=inputs.device)
    num_classes = positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError("random logit needs at least 2 classes")
    classes = classes.to(inputs.device)
    if off_target is None:
        draw = torch.randint(0, num_classes - 1, (n,), generator=torch.Generator().manual_seed(seed)).to(inputs.device)
        off_target = draw + (draw >= classes).long()  # uniform over the classes other than the explained one
    else:
        off_target = torch.as_tensor(off_target, device=inputs.device).long()
        if off_target.shape != (n,) or (off_target == classes).any():
            raise ValueError(f"off_target must hold N = {n} classes, each different from the explained class")
    original, _ = explainer(explain, inputs, classes, 1)
    other, _ = explainer(explain, inputs, off_target, 1)
    return _similarity(similarity, original, other)
