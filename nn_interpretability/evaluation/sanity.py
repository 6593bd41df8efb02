"""Sanity checks for saliency maps: does the map change when the model's weights are randomised?

Adebayo et al. 2018, "Sanity checks for saliency maps" (NeurIPS), section 3 (cascading model parameter
randomization). Layers are re-initialised one after another from the output down; a method whose maps
stay similar to the trained model's maps does not explain the model (an edge detector passes every
image through unchanged and fails the check). Similarity is measured per sample by Spearman rank
correlation of the signed and of the absolute maps and by SSIM (Wang et al. 2004).
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Target, check_inputs, forward_output
from ..core.targets import Selector, as_selector
from ..core.hooks import borrowed
from ..core.progress import progress
from ..core.validation import check_map_shape
from ..core.vocabulary import renamed_arguments
from .agreement import spearman_per_sample

SIMILARITIES = ("spearman", "spearman_abs", "ssim")


def _gaussian_window(sigma: float, truncate: float, dtype: torch.dtype, device) -> torch.Tensor:
    """The 1-D Gaussian of ``scipy.ndimage.gaussian_filter``: radius ``int(truncate * sigma + 0.5)``, sum 1."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    window = torch.exp(-0.5 * (x / sigma) ** 2)
    return window / window.sum()


def structural_similarity(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    truncate: float = 3.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM of every pair of images ``a[i]``, ``b[i]`` with a Gaussian window.

    Wang, Bovik, Sheikh & Simoncelli 2004, eq. (13) with the Gaussian weighting of section III-B
    (σ = 1.5, an 11 × 11 window) and population covariances. Equals
    ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range)``: the local statistics are taken where the
    whole window fits in the image (scikit-image filters the padded image and crops the same border).

    Parameters
    ----------
    a, b : Tensor
        ``(N, H, W)``, or ``(N, C, H, W)`` whose per-channel SSIMs are averaged.
    data_range : float
        The range of the values (1 for maps normalised to [0, 1]); sets the constants ``(k L)^2``.

    Returns
    -------
    Tensor
        float64, shape ``(N,)``.
    """
    if a.shape != b.shape:
        raise ValueError(f"SSIM compares images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() not in (3, 4):
        raise ValueError(f"SSIM needs images (N, H, W) or (N, C, H, W), got shape {tuple(a.shape)}")
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    x = a.double().reshape(-1, 1, *a.shape[-2:])
    y = b.double().reshape(-1, 1, *b.shape[-2:])
    window = _gaussian_window(sigma, truncate, x.dtype, x.device)
    size = window.numel()
    if min(a.shape[-2:]) < size:
        raise ValueError(
            f"SSIM's {size} x {size} window (sigma={sigma}) does not fit images of size {tuple(a.shape[-2:])}"
        )

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        # The 2-D Gaussian is separable: one pass along the rows, one along the columns.
        t = F.conv2d(t, window.view(1, 1, size, 1))
        return F.conv2d(t, window.view(1, 1, 1, size))

    stats = local_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1).view(-1, 1, *x.shape[-2:]))
    mu_x, mu_y, xx, yy, xy = stats.view(x.shape[0], 5, *stats.shape[-2:]).unbind(1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1).view(a.shape[0], -1).mean(1)


def _normalized_image(maps: torch.Tensor) -> torch.Tensor:
    """Maps ``(N, C, H, W)`` summed over channels and scaled to [0, 1] per sample (a constant map gives 0)."""
    image = maps.double().sum(1)
    low = image.flatten(1).min(1).values.view(-1, 1, 1)
    high = image.flatten(1).max(1).values.view(-1, 1, 1)
    return (image - low) / (high - low).clamp(min=torch.finfo(image.dtype).tiny)


def _similarity(name: str, original: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    if name == "spearman":
        return spearman_per_sample(original, maps)
    if name == "spearman_abs":
        return spearman_per_sample(original.abs(), maps.abs())
    return structural_similarity(_normalized_image(original), _normalized_image(maps))


def _cuda_devices(module: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in module.parameters() if p.is_cuda})


def randomize_layer(module: nn.Module, seed: int) -> None:
    """Re-initialise the parameters that ``module`` itself holds, reproducibly and in place.

    ``module.reset_parameters()`` (PyTorch's own initialisation of the layer, as Adebayo et al.
    re-initialise with the layer's initialiser) runs under ``torch.manual_seed(seed)`` inside a forked
    RNG, so the caller's random stream is untouched. A module without ``reset_parameters`` gets normal
    noise with each parameter's standard deviation (unit noise for a constant parameter, whose standard
    deviation is 0).
    """
    with torch.random.fork_rng(devices=_cuda_devices(module)):
        torch.manual_seed(seed)
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
            return
        with torch.no_grad():
            for param in module.parameters(recurse=False):
                std = float(param.std(unbiased=False)) if param.numel() > 1 else 0.0
                param.copy_(torch.randn_like(param) * (std if std > 0 else 1.0))


def _holds_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules that hold parameters themselves, from the output down.

    Registration order is taken as forward order (true for ``nn.Sequential`` and for models that
    define their layers in the order they use them), so its reverse starts at the output layer.
    """
    return [name for name, module in reversed(list(model.named_modules())) if _holds_parameters(module)]


@dataclass
class SanityResult:
    """Similarity between the trained model's maps and those of progressively randomised copies.

    Attributes
    ----------
    layers : list of str
        The randomised modules in randomisation order: step ``k`` has layers ``0..k`` randomised.
    similarity : dict of str to Tensor
        ``(L, N)`` per measure: the similarity of sample ``n``'s map after step ``k`` to its original map.
    target : Tensor or Selector
        ``(N,)``: the explained class of every sample, the same for all steps; for targets that are not
        classes, the bound selector (:mod:`nn_interpretability.targets`) every step explains.
    maps : Tensor or None
        ``(L + 1, N, ...)`` when asked for: the original maps, then those after every step.
    """

    layers: list[str]
    similarity: dict[str, torch.Tensor]
    target: torch.Tensor | Selector
    maps: torch.Tensor | None = None

    def mean(self) -> dict[str, torch.Tensor]:
        """The mean similarity over samples after every step, ``(L,)`` per measure (NaN samples left out)."""
        return {name: values.nanmean(1) for name, values in self.similarity.items()}


def _explained(selector: Selector) -> torch.Tensor | Selector:
    """The classes ``(N,)`` a class selector chose, or the selector itself for other targets."""
    classes = selector.class_indices()
    return selector if classes is None else classes


@renamed_arguments(progress="show_progress")
def cascading_randomization(
    model: nn.Module,
    method_factory: Callable[[nn.Module], object],
    inputs: torch.Tensor,
    target: Target = None,
    layers: Sequence[str] | None = None,
    *,
    similarity: str | Sequence[str] = SIMILARITIES,
    attribute_kwargs: dict | None = None,
    return_maps: bool = False,
    show_progress: bool | None = None,
    seed: int = 0,
) -> SanityResult:
    """Cascading model parameter randomization: re-initialise layers from the top and compare maps.

    Adebayo et al. 2018, section 3.1: "we randomize the weights of a model starting from the top layer,
    successively, all the way to the bottom layer", and compare each map with the trained model's map.

    Parameters
    ----------
    model : nn.Module
        The trained model. It is never changed: the randomisation happens on a ``copy.deepcopy``.
    method_factory : callable
        ``method_factory(model) -> Attribution``, e.g. ``nni.Saliency`` or
        ``lambda m: nni.IntegratedGradients(m)``; called once per model.
    inputs : Tensor
        Batch ``(N, ...)``; ``"ssim"`` needs images ``(N, C, H, W)``.
    target : any target of ``attribute``
        What to explain (classes, an index tuple, a selector of :mod:`nn_interpretability.targets` or a
        callable). ``None``: the trained model's predicted class, kept for every randomised model
        (whose own predictions are arbitrary).
    layers : sequence of str, optional
        Module names (as in ``model.named_modules()``) in randomisation order. Default: every module that
        holds parameters, from the output layer down (:func:`parameter_layers`).
    similarity : str or sequence of str
        Measures among ``"spearman"`` (signed maps), ``"spearman_abs"`` (absolute maps) and ``"ssim"``
        (maps summed over channels and scaled to [0, 1] per sample).
    attribute_kwargs : dict, optional
        Per-call arguments of ``attribute`` (e.g. ``{"n_steps": 32}``).
    return_maps : bool
        Keep every step's maps in :attr:`SanityResult.maps` (for figures).
    show_progress : bool, optional
        A progress bar over the layers (``progress`` before 0.2); ``None`` shows it in a terminal or
        notebook only.
    seed : int
        Step ``k`` re-initialises its layer under seed ``seed + k`` (:func:`randomize_layer`).

    Returns
    -------
    SanityResult
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(method_factory):
        raise TypeError("method_factory must be callable: method_factory(model) -> Attribution")
    inputs = check_inputs(inputs)
    measures = (similarity,) if isinstance(similarity, str) else tuple(similarity)
    unknown = [m for m in measures if m not in SIMILARITIES]
    if unknown or not measures:
        raise ValueError(f"similarity must be one or more of {SIMILARITIES}, got {similarity!r}")
    if "ssim" in measures and inputs.dim() != 4:
        raise ValueError(f"ssim compares images: inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}")
    available = dict(model.named_modules())
    order = parameter_layers(model) if layers is None else list(layers)
    for name in order:
        if name not in available or not _holds_parameters(available[name]):
            raise ValueError(
                f"layer {name!r} is not a module of the model that holds parameters; choose from "
                f"{parameter_layers(model)}"
            )
    if not order:
        raise ValueError("there is no layer to randomise: the model has no parameters")
    kwargs = dict(attribute_kwargs or {})
    with borrowed(model), torch.no_grad():
        selector = as_selector(target, forward_output(model, inputs))

    def explain(network: nn.Module) -> torch.Tensor:
        maps = method_factory(network).attribute(inputs, target=selector, **kwargs)
        return check_map_shape(maps, inputs.shape, "the method").detach()

    original = explain(model)
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    scores = {m: torch.empty(len(order), inputs.shape[0], dtype=torch.float64, device=inputs.device) for m in measures}
    kept = [original] if return_maps else None
    for k, name in enumerate(progress(order, "cascading randomization", show_progress)):
        randomize_layer(modules[name], seed + k)
        maps = explain(randomized)
        for measure in measures:
            scores[measure][k] = _similarity(measure, original, maps)
        if return_maps:
            kept.append(maps)
    return SanityResult(
        layers=order, similarity=scores, target=_explained(selector), maps=torch.stack(kept) if return_maps else None
    )
