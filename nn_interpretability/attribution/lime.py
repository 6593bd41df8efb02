"""LIME for images: a weighted linear surrogate over superpixels (Ribeiro et al. 2016; seed 001)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from skimage.segmentation import slic
from ..core.base import Attribution, Run, Target
from ..core.batching import broadcast_baselines, chunk_size
from ..core.progress import progress
from ..core.registry import register_method
from ..core.validation import check_seed

SEGMENTATIONS = ("slic", "grid")
OUTPUTS = ("logit", "probability")


@dataclass
class LimeExplanation:
    """What :meth:`Lime.explain` returns for a batch of ``N`` images.

    Attributes
    ----------
    maps : Tensor
        Per-element attribution with the inputs' shape: each pixel carries its segment's weight.
    segments : Tensor
        Integer segment label of every pixel, ``(N, H, W)``, labels ``0 .. S_i - 1``.
    weights : list of Tensor
        Per sample, the surrogate's coefficient for each of its ``S_i`` segments.
    intercepts : Tensor
        Per sample, the surrogate's intercept (the predicted score with every segment removed).
    """

    maps: torch.Tensor
    segments: torch.Tensor
    weights: list[torch.Tensor]
    intercepts: torch.Tensor


def grid_segments(height: int, width: int, cell: int) -> np.ndarray:
    """Square cells of ``cell × cell`` pixels, labelled row by row."""
    rows, cols = np.arange(height) // cell, np.arange(width) // cell
    return rows[:, None] * (-(-width // cell)) + cols[None, :]


def cosine_distance_to_original(masks: torch.Tensor) -> torch.Tensor:
    """Cosine distance between each binary mask ``z`` and the all-ones mask of the original image."""
    kept = masks.sum(1)
    return 1 - torch.where(kept > 0, kept.sqrt() / masks.shape[1] ** 0.5, torch.zeros_like(kept))


def weighted_ridge(
    features: torch.Tensor, targets: torch.Tensor, sample_weights: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression with an unpenalised intercept and per-sample weights (closed form).

    Minimises ``Σ_k π_k (y_k − b − z_k·β)² + α‖β‖²``: centre ``z`` and ``y`` by their ``π``-weighted means,
    solve ``(Zcᵀ Π Zc + αI) β = Zcᵀ Π yc`` and set ``b = ȳ − z̄·β`` (what ``sklearn.linear_model.Ridge``
    computes with ``sample_weight``).
    """
    w = sample_weights / sample_weights.sum()
    mean_z, mean_y = w @ features, w @ targets
    zc, yc = features - mean_z, targets - mean_y
    gram = zc.T @ (sample_weights[:, None] * zc) + alpha * torch.eye(features.shape[1], dtype=features.dtype, device=features.device)
    beta = torch.linalg.solve(gram, zc.T @ (sample_weights * yc))
    return beta, mean_y - mean_z @ beta


@register_method("lime")
class Lime(Attribution):
    """LIME for images (Ribeiro, Singh & Guestrin 2016, "Why should I trust you?"; seed 001).

    The image is cut into superpixels; ``n_samples`` random binary masks switch segments off (to the
    baseline); the model scores every masked image; each mask is weighted by an exponential kernel on
    its cosine distance to the all-ones mask, ``π(z) = exp(−d(z, 1)² / (2 σ²))``; and a weighted ridge
    regression of the scores on the masks gives one weight per segment.

    Parameters
    ----------
    model : nn.Module
        A classifier returning class scores ``(N, C)``.
    segmentation : {"slic", "grid"} or callable
        ``"slic"``: scikit-image's SLIC superpixels on the image (``n_segments``, ``compactness``);
        ``"grid"``: square cells of ``cell_size`` pixels (good for 28×28 digits); or a callable taking
        one image as a ``(C, H, W)`` array and returning integer labels ``(H, W)``.
    n_samples : int
        Perturbed images per input.
    kernel_width : float
        ``σ`` of the kernel on the cosine distance (0.25, as the reference implementation for images).
    alpha : float
        Ridge penalty.
    n_segments, compactness, cell_size
        Segmentation settings (see ``segmentation``).
    seed : int
        Seed of the masks; each call starts afresh, so equal calls give equal maps.
    """

    def __init__(
        self,
        model,
        segmentation: str | Callable[[np.ndarray], np.ndarray] = "slic",
        n_samples: int = 1000,
        kernel_width: float = 0.25,
        alpha: float = 1.0,
        n_segments: int = 50,
        compactness: float = 10.0,
        cell_size: int = 4,
        seed: int = 0,
    ):
        super().__init__(model)
        if not callable(segmentation) and segmentation not in SEGMENTATIONS:
            raise ValueError(f"segmentation must be one of {SEGMENTATIONS} or a callable, got {segmentation!r}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
            raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
        if not kernel_width > 0 or not alpha >= 0:
            raise ValueError(f"kernel_width must be > 0 and alpha >= 0, got {kernel_width!r} and {alpha!r}")
        self.segmentation = segmentation
        self.n_samples = n_samples
        self.kernel_width = float(kernel_width)
        self.alpha = float(alpha)
        self.seed = check_seed(seed)
        self.n_segments = n_segments
        self.compactness = compactness
        self.cell_size = cell_size

    def segment(self, image: torch.Tensor) -> torch.Tensor:
        """Integer labels ``0 .. S − 1`` of the superpixels of one image ``(C, H, W)``."""
        array = image.detach().cpu().numpy()
        if self.segmentation == "grid":
            labels = grid_segments(*array.shape[-2:], self.cell_size)
        elif self.segmentation == "slic":
            channels_last = np.moveaxis(array, 0, -1)
            single = channels_last.shape[-1] == 1
            labels = slic(
                channels_last[..., 0] if single else channels_last,
                n_segments=self.n_segments,
                compactness=self.compactness,
                channel_axis=None if single else -1,
                start_label=0,
            )
        else:
            labels = np.asarray(self.segmentation(array))
        if labels.shape != array.shape[-2:]:
            raise ValueError(f"the segmentation returned labels of shape {labels.shape}, expected {array.shape[-2:]}")
        _, labels = np.unique(labels, return_inverse=True)  # relabel 0 .. S-1
        return torch.as_tensor(labels.reshape(array.shape[-2:]), device=image.device)

    takes_baselines = True
    needs_gradients = False
    perturbation_forwards = True
    stochastic = True
    min_input_dim = 4
    renamed_arguments = {"batch_size": "perturbations_per_eval"}

    def explain(self, inputs: torch.Tensor, target: Target = None, **kwargs) -> LimeExplanation:
        """Fit the surrogate for every image of the batch ``(N, C, H, W)``; see :meth:`_explain` for ``kwargs``."""
        return self._call(self._explain, inputs, target, kwargs)

    def _explain(
        self,
        run: Run,
        baselines=0.0,
        masks: list[torch.Tensor] | None = None,
        segments: torch.Tensor | None = None,
        output: str = "logit",
        perturbations_per_eval: int | None = None,
        show_progress: bool | None = None,
    ) -> LimeExplanation:
        """Fit the surrogate for every image of the batch.

        Parameters
        ----------
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction.
        baselines : float or Tensor
            Value of switched-off segments: a number, a per-sample-shape tensor or one per sample.
        masks : list of Tensor, optional
            Per sample, the binary masks ``(n_samples, S_i)`` to use instead of random ones.
        segments : Tensor, optional
            Segment labels ``(N, H, W)`` to use instead of the segmentation.
        output : str
            Explain the ``"logit"`` or the softmax ``"probability"`` of the target.
        perturbations_per_eval : int, optional
            Perturbed images per forward pass (``batch_size`` before 0.2); ``None`` keeps a pass at
            about :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` elements.
        show_progress : bool, optional
            A progress bar over the images of the batch; ``None`` shows it in a terminal or notebook only.
        """
        inputs = run.inputs
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        baselines = broadcast_baselines(baselines, inputs)
        n = inputs.shape[0]
        if segments is None:
            segments = torch.stack([self.segment(image) for image in inputs])
        elif segments.shape != (n, *inputs.shape[-2:]):
            raise ValueError(f"segments must have shape {(n, *inputs.shape[-2:])}, got {tuple(segments.shape)}")
        if masks is not None and len(masks) != n:
            raise ValueError(f"masks must hold one (n_samples, S) tensor per sample, got {len(masks)} for N = {n}")
        chunk = chunk_size(inputs[0].numel(), perturbations_per_eval, "perturbations_per_eval", rows_per_copy=1, device=inputs.device)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)

        maps, weights, intercepts = torch.zeros_like(inputs), [], []
        with torch.no_grad():
            selector = run.selector
            for i in progress(range(n), "lime", show_progress):
                labels = segments[i].long()
                count = int(labels.max()) + 1
                if masks is None:
                    z = torch.randint(0, 2, (self.n_samples, count), generator=generator).to(inputs)
                else:
                    z = masks[i].to(inputs)
                    if z.dim() != 2 or z.shape[1] != count:
                        raise ValueError(f"masks[{i}] must have shape (n_samples, {count}), got {tuple(z.shape)}")
                scores = []
                for start in range(0, z.shape[0], chunk):
                    keep = z[start : start + chunk][:, labels].unsqueeze(1)  # (k, 1, H, W)
                    perturbed = inputs[i] * keep + baselines[i] * (1 - keep)
                    sample = torch.full((perturbed.shape[0],), i, device=inputs.device)
                    out = run.forward(perturbed, sample)
                    out = out.softmax(1) if output == "probability" else out
                    scores.append(selector(out, sample))
                distance = cosine_distance_to_original(z)
                kernel = torch.exp(-(distance**2) / (2 * self.kernel_width**2))
                beta, intercept = weighted_ridge(z, torch.cat(scores), kernel, self.alpha)
                maps[i] = beta[labels].expand_as(inputs[i])
                weights.append(beta)
                intercepts.append(intercept)
        return LimeExplanation(maps, segments, weights, torch.stack(intercepts))

    def _attribute(self, run: Run, **kwargs) -> torch.Tensor:
        """Per-pixel LIME map (each pixel carries its segment's weight); see :meth:`_explain` for ``kwargs``."""
        return self._explain(run, **kwargs).maps

    def __repr__(self) -> str:
        return f"Lime({type(self.model).__name__}, segmentation={self.segmentation!r}, n_samples={self.n_samples})"
