"""SmoothGrad: average any attribution method over noisy copies of the input (report section 2.2.1)."""
from __future__ import annotations

import torch

from ..core.base import Attribution, Run
from ..core.batching import chunk_size, chunks, compute_dtype, repeat_per_sample, standard_normal_copies, value_range_sigma
from ..core.progress import progress
from ..core.registry import get_method, register_method
from ..core.validation import check_map_shape, check_seed, non_negative_number, positive_int
from ..core.vocabulary import renamed_arguments

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")

#: Seed of the noise when ``seed=None``, so that repeated runs give the same maps.
DEFAULT_SEED = 0


class SmoothGrad(Attribution):
    """SmoothGrad: the mean (or mean square, or variance) of a method's maps over noisy inputs.

    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise"; the report's eq. (6),
    ``(1/n) Σ_k M(x + ε_k)`` with ``ε_k ~ N(0, σ²)`` and ``M`` the wrapped method (the gradient in the
    paper, Integrated Gradients or Guided Backprop in the report's Fig. 7). ``nt_type="smoothgrad_sq"``
    averages squared maps (SmoothGrad², Hooker et al. 2019) and ``"vargrad"`` returns their variance
    (Adebayo et al. 2018), both with Captum's ``NoiseTunnel`` formulas.

    Parameters
    ----------
    method : object
        Any attribution object with ``.model`` and ``.attribute(inputs, target=..., **kwargs)``
        returning a tensor of the inputs' shape, e.g. ``Saliency(model)`` or ``IntegratedGradients(model)``.
    nt_type : str
        ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
    nt_samples : int
        Noisy copies per sample, ``n`` of eq. (6).
    stdevs : float or Tensor
        Noise level as a fraction of each sample's value range, ``σ_i = stdevs × (max x_i - min x_i)``
        over all elements of sample ``i`` (the paper's convention; 0.1–0.2 suggested). A tensor of shape
        ``(N,)`` gives one fraction per sample. Unlike Captum's ``stdevs`` this is not an absolute σ.
    internal_batch_size : int, optional
        Noisy copies of the batch passed to the wrapped method at once (Captum's
        ``nt_samples_batch_size``, still accepted with a ``DeprecationWarning``); ``None`` keeps one pass
        at most :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` input elements.
    seed : int, optional
        Seed of the ``torch.Generator`` drawing the noise; ``None`` uses :data:`DEFAULT_SEED`. Each call
        to ``attribute`` starts the generator afresh, so equal calls give equal maps.

    Notes
    -----
    The capabilities (``takes_baselines``, ``multiplies_by_inputs``, ``needs_gradients``) are the
    wrapped method's. For float16/bfloat16 inputs the noise is drawn and the maps are accumulated in
    float32.
    """

    stochastic = True
    explains_every_class = True  # each noisy copy explains every class: the noise is shared across classes

    @renamed_arguments(nt_samples_batch_size="internal_batch_size")
    def __init__(
        self,
        method,
        nt_type: str = "smoothgrad",
        nt_samples: int = 50,
        stdevs=0.15,
        internal_batch_size: int | None = None,
        seed: int | None = None,
    ):
        if not isinstance(method, Attribution):
            raise TypeError(
                f"method must be an attribution method of this package (e.g. Saliency(model)), got {type(method).__name__}"
            )
        super().__init__(method.model)
        if nt_type not in NT_TYPES:
            raise ValueError(f"unknown nt_type {nt_type!r}; choose one of {', '.join(NT_TYPES)}")
        if isinstance(stdevs, torch.Tensor):
            if stdevs.dim() > 1 or not torch.isfinite(stdevs).all() or (stdevs < 0).any():
                raise ValueError("stdevs must be a non-negative number or a 1-D tensor of non-negative numbers")
        else:
            non_negative_number(stdevs, "stdevs")
        self.method = method
        self.nt_type = nt_type
        self.nt_samples = positive_int(nt_samples, "nt_samples")
        self.stdevs = stdevs
        self.internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
        self.seed = DEFAULT_SEED if check_seed(seed) is None else seed
        self.takes_baselines = method.takes_baselines
        self.multiplies_by_inputs = method.multiplies_by_inputs
        self.needs_gradients = method.needs_gradients
        self.min_input_dim = method.min_input_dim

    def _attribute(self, run: Run, noise: torch.Tensor | None = None, show_progress: bool | None = None, **kwargs):
        """The smoothed map of each sample's target class, with the shape of ``inputs``.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        target : None, int, sequence or LongTensor
            Class per sample. ``None`` takes the prediction on the clean ``inputs``; the same class is
            explained for every noisy copy.
        noise : Tensor, optional
            Standard-normal draws ``z`` of shape ``(nt_samples, N, ...)`` replacing the random ones: the
            ``k``-th noisy copy of sample ``i`` is ``x_i + σ_i z[k, i]``. For exact comparisons.
        show_progress : bool, optional
            A progress bar over the passes; ``None`` shows it in a terminal or notebook only.
        **kwargs
            Passed to the wrapped method's ``attribute`` (e.g. ``baselines``, ``n_steps`` of
            Integrated Gradients). A tensor argument of shape ``(N, ...)`` with as many dimensions as
            ``inputs`` is taken as per-sample and repeated along with the noisy copies.
        """
        inputs = run.inputs
        n, sample_shape = inputs.shape[0], inputs.shape[1:]
        dtype = compute_dtype(inputs.dtype)
        clean = inputs.to(dtype)
        sigma = value_range_sigma(clean, self.stdevs)
        if noise is not None:
            if not isinstance(noise, torch.Tensor) or noise.shape != (self.nt_samples, *inputs.shape):
                shape = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
                raise ValueError(
                    f"noise must be a tensor of shape (nt_samples, *inputs.shape) = "
                    f"{(self.nt_samples, *inputs.shape)}, got {shape}"
                )
            if not torch.isfinite(noise).all():
                raise ValueError("noise contains NaN or infinite values")
            noise = noise.detach().to(dtype=dtype, device=inputs.device)
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        chunk = chunk_size(inputs.numel(), self.internal_batch_size)
        classes = run.classes
        selector = run.selector if classes is None else None
        per_sample = inputs.shape if classes is None else (n, classes.shape[1], *sample_shape)

        total = torch.zeros(per_sample, dtype=dtype, device=inputs.device)
        total_sq = torch.zeros_like(total)
        for block in progress(chunks(self.nt_samples, chunk), "smoothgrad", show_progress):
            k = len(block)
            if noise is None:
                z = standard_normal_copies(inputs.shape, k, generator, dtype, inputs.device)
            else:
                z = noise[block.start : block.stop]
            # Copy k of sample i sits at row k * N + i, so per-sample arguments repeat whole.
            noisy = (clean + sigma * z).reshape(k * n, *sample_shape).to(inputs.dtype)
            target = selector.copies(k) if classes is None else classes.repeat(k, 1)
            maps = self.method.attribute(
                noisy, target=target, additional_forward_args=run.additional_copies(k), **repeat_per_sample(kwargs, n, k, inputs)
            )
            maps = check_map_shape(maps, (k * n, *per_sample[1:]), "the wrapped method")
            maps = maps.detach().to(dtype).reshape(k, *per_sample)
            total += maps.sum(0)
            total_sq += (maps * maps).sum(0)
        mean = total / self.nt_samples
        mean_sq = total_sq / self.nt_samples
        if self.nt_type == "smoothgrad":
            return mean
        if self.nt_type == "smoothgrad_sq":
            return mean_sq
        # E[m²] - E[m]² can dip below 0 by rounding where the maps barely vary.
        return (mean_sq - mean * mean).clamp_(min=0)

    def __repr__(self) -> str:
        return (
            f"SmoothGrad({self.method!r}, nt_type={self.nt_type!r}, nt_samples={self.nt_samples}, "
            f"stdevs={self.stdevs})"
        )


def _factory(nt_type: str):
    def build(model, base: str = "saliency", base_kwargs: dict | None = None, **kwargs) -> SmoothGrad:
        """``SmoothGrad(get_method(base, model, **base_kwargs), nt_type=..., **kwargs)``."""
        return SmoothGrad(get_method(base, model, **(base_kwargs or {})), nt_type=nt_type, **kwargs)

    build.__name__ = build.__qualname__ = nt_type
    return build


# get_method("smoothgrad", model, base="integrated-gradients", base_kwargs={...}, nt_samples=20)
for _nt_type in NT_TYPES:
    register_method(_nt_type.replace("_", "-"), _factory(_nt_type))
