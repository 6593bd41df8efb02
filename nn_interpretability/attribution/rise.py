"""RISE: the score-weighted mean of random smooth masks (Petsiuk, Das & Saenko 2018)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.base import Attribution, Run
from ..core.batching import broadcast_baselines, chunk_size, chunks, compute_dtype
from ..core.progress import progress
from ..core.registry import register_method
from ..core.validation import check_seed, positive_int

OUTPUTS = ("logit", "probability")


def rise_masks(grids: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int], dtype=torch.float64) -> torch.Tensor:
    """Smooth masks ``(M, H, W)`` from binary grids ``(M, s, s)`` and shifts ``(M, 2)`` (Petsiuk et al. 2018, sec. 3.2).

    Each ``s × s`` grid is upsampled bilinearly to ``(s + 1) C_H × (s + 1) C_W`` with the cell size
    ``C = ⌈(H, W) / s⌉``, and the ``H × W`` window starting at the shift (each in ``[0, C)``) is kept.
    """
    m, s = grids.shape[0], grids.shape[-1]
    cell = (math.ceil(size[0] / s), math.ceil(size[1] / s))
    up = F.interpolate(grids.to(dtype).unsqueeze(1), size=((s + 1) * cell[0], (s + 1) * cell[1]), mode="bilinear", align_corners=False)
    rows = shifts[:, :1] + torch.arange(size[0], device=grids.device)
    cols = shifts[:, 1:] + torch.arange(size[1], device=grids.device)
    return up[:, 0][torch.arange(m, device=grids.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


@register_method("rise")
class RISE(Attribution):
    """RISE, randomized input sampling for explanation (Petsiuk, Das & Saenko 2018, eq. 4–6).

    The saliency of a pixel is the expected target score over random masks, weighted by how much of the
    pixel each mask keeps: ``S(λ) = E[f(x ⊙ M) M(λ)] / E[M(λ)]`` (eq. 4–5), estimated by Monte Carlo as
    ``(1 / (n_masks · p)) Σ_i f(x ⊙ M_i) M_i(λ)`` (eq. 6). The masks are binary ``mask_resolution²`` grids
    (each cell kept with probability ``p``), upsampled bilinearly and randomly shifted
    (:func:`rise_masks`); one set of masks serves every image of the batch and every channel. The masked-out
    part becomes the baseline (0, as in the paper, by default).

    Parameters
    ----------
    model : nn.Module
        A model taking images ``(N, C, H, W)``.
    n_masks : int
        Random masks (4000 in the paper for ImageNet).
    mask_resolution : int
        Side ``s`` of the binary grid (7 in the paper).
    p : float
        Probability that a grid cell is kept, in ``(0, 1]``.
    seed : int
        Seed of the grids and shifts (a ``torch.Generator``); equal calls give equal maps.
    """

    takes_baselines = True
    needs_gradients = False
    perturbation_forwards = True
    stochastic = True
    min_input_dim = 4

    def __init__(self, model, n_masks: int = 4000, mask_resolution: int = 7, p: float = 0.5, seed: int = 0):
        super().__init__(model)
        self.n_masks = positive_int(n_masks, "n_masks")
        self.mask_resolution = positive_int(mask_resolution, "mask_resolution")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise ValueError(f"p must be a probability in (0, 1], got {p!r}")
        self.p = float(p)
        self.seed = 0 if check_seed(seed) is None else seed

    def _draw(self, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The binary grids ``(n_masks, s, s)`` and shifts ``(n_masks, 2)`` of one call."""
        s = self.mask_resolution
        generator = torch.Generator().manual_seed(self.seed)
        grids = torch.rand(self.n_masks, s, s, generator=generator, dtype=torch.float64) < self.p
        shifts = torch.stack(
            [torch.randint(0, math.ceil(side / s), (self.n_masks,), generator=generator) for side in size], dim=1
        )
        return grids, shifts

    def _attribute(
        self,
        run: Run,
        baselines=0.0,
        masks: torch.Tensor | None = None,
        output: str = "logit",
        perturbations_per_eval: int | None = None,
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """The RISE saliency of each image's target, with the shape of ``inputs`` (equal across channels).

        Parameters
        ----------
        inputs : Tensor
            Images ``(N, C, H, W)``.
        target : None, int, sequence or LongTensor
            Class per sample; ``None`` takes the prediction on ``inputs``.
        baselines : float or Tensor
            What the masked-out part becomes, ``x ⊙ M + b ⊙ (1 − M)``: a number, one tensor of the per-sample
            shape or one per sample.
        masks : Tensor, optional
            Masks ``(M, H, W)`` with values in [0, 1] to use instead of the random ones; the map is then
            ``Σ_i f(x ⊙ M_i) M_i / (M p)``.
        output : str
            Weight the masks by the ``"logit"`` or the softmax ``"probability"`` of the target (the paper's).
        perturbations_per_eval : int, optional
            Masks per forward pass (each for the whole batch); ``None`` keeps a pass at about
            :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` elements.
        show_progress : bool, optional
            A progress bar over the forward passes; ``None`` shows it in a terminal or notebook only.
        """
        x, n = run.inputs, run.n
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        size = tuple(x.shape[-2:])
        dtype = compute_dtype(x.dtype)
        if masks is None:
            grids, shifts = self._draw(size)
            grids, shifts, count = grids.to(x.device), shifts.to(x.device), self.n_masks
        else:
            if not isinstance(masks, torch.Tensor) or masks.dim() != 3 or tuple(masks.shape[1:]) != size:
                shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
                raise ValueError(f"masks must be a tensor (M, {size[0]}, {size[1]}), got {shape}")
            if not torch.isfinite(masks).all() or masks.min() < 0 or masks.max() > 1:
                raise ValueError("masks must hold values in [0, 1]")
            masks, count = masks.detach().to(device=x.device, dtype=dtype), masks.shape[0]
        baselines = broadcast_baselines(baselines, x)
        per_pass = chunk_size(x.numel(), perturbations_per_eval, "perturbations_per_eval", rows_per_copy=n, device=x.device)
        saliency = torch.zeros(n, *size, dtype=dtype, device=x.device)
        with torch.no_grad():
            selector = run.selector
            for block in progress(chunks(count, per_pass), "rise", show_progress):
                if masks is None:
                    m = rise_masks(grids[block.start : block.stop], shifts[block.start : block.stop], size, dtype)
                else:
                    m = masks[block.start : block.stop]
                k = m.shape[0]
                # Mask j of sample i sits at row j * N + i.
                kept = m.unsqueeze(1).unsqueeze(2).to(x.dtype)
                masked = (x * kept + baselines * (1 - kept)).reshape(k * n, *x.shape[1:])
                out = run.forward(masked)
                scores = selector(out.softmax(1) if output == "probability" else out).to(dtype)
                saliency += torch.einsum("kn,khw->nhw", scores.view(k, n), m)
        return (saliency / (count * self.p)).unsqueeze(1).expand_as(x).contiguous()

    def __repr__(self) -> str:
        return f"RISE({type(self.model).__name__}, n_masks={self.n_masks}, mask_resolution={self.mask_resolution}, p={self.p})"
