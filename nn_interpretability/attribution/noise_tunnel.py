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
        self.maps_like_inputs = method.maps_like_inputs
        self.nt_type = nt_type
        self.nt_samples = positive_int(nt_samples, "nt_samples")
        self.stdevs = stdevs
        self.internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
        self.seed = DEFAULT_SEED if check_seed(seed) is None else seed
        self.takes_baselines = method.takes_baselines
        self.multiplies_by_inputs = method.multiplies_by_inputs
        self.needs_gradients = method.needs_gradients
        self.min_input_dim = method.min_input_dim
        self.multiple_inputs = method.multiple_inputs

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
        xs = run.inputs_tuple
        n, device = run.n, xs[0].device
        dtype = compute_dtype(xs[0].dtype)
        cleans = tuple(x.to(dtype) for x in xs)
        sigmas = tuple(value_range_sigma(clean, self.stdevs) for clean in cleans)
        noises = None if noise is None else self._check_noise(noise, xs, dtype)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        chunk = chunk_size(sum(x.numel() for x in xs), self.internal_batch_size, rows_per_copy=n, device=device)
        classes = run.classes
        selector = run.selector if classes is None else None
        shapes = [x.shape if classes is None else (n, classes.shape[1], *x.shape[1:]) for x in xs]

        totals = totals_sq = None
        for block in progress(chunks(self.nt_samples, chunk), "smoothgrad", show_progress):
            k = len(block)
            if noises is None:
                zs = standard_normal_copies([x.shape for x in xs], k, generator, dtype, device)
            else:
                zs = [z[block.start : block.stop] for z in noises]
            # Copy k of sample i sits at row k * N + i, so per-sample arguments repeat whole.
            noisy = [(clean + sigma * z).reshape(k * n, *x.shape[1:]).to(x.dtype) for x, clean, sigma, z in zip(xs, cleans, sigmas, zs)]
            target = selector.copies(k) if classes is None else classes.repeat(k, 1)
            maps = self.method.attribute(
                run.like(noisy),
                target=target,
                additional_forward_args=run.additional_copies(k),
                **repeat_per_sample(kwargs, n, k, xs[0]),
            )
            parts = maps if run.multiple else (maps,)
            if totals is None:
                if not self.method.maps_like_inputs:  # a layer method: maps of the layer's shape
                    shapes = [(n, *part.shape[1:]) if isinstance(part, torch.Tensor) else shape for part, shape in zip(parts, shapes)]
                totals = [torch.zeros(shape, dtype=dtype, device=device) for shape in shapes]
                totals_sq = [torch.zeros_like(total) for total in totals]
            for total, total_sq, part, shape in zip(totals, totals_sq, parts, shapes):
                part = check_map_shape(part, (k * n, *shape[1:]), "the wrapped method").detach().to(dtype)
                part = part.reshape(k, *shape)
                total += part.sum(0)
                total_sq += (part * part).sum(0)
        return run.like(self._combine(total, total_sq) for total, total_sq in zip(totals, totals_sq))

    def _check_noise(self, noise, xs: tuple, dtype) -> tuple:
        """Injected standard-normal draws, one tensor ``(nt_samples, *input.shape)`` per input."""
        noise = noise if isinstance(noise, tuple) else (noise,)
        checked = []
        for z, x in zip(noise, xs):
            if not isinstance(z, torch.Tensor) or z.shape != (self.nt_samples, *x.shape):
                shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                raise ValueError(
                    f"noise must be a tensor of shape (nt_samples, *inputs.shape) = {(self.nt_samples, *x.shape)}, got {shape}"
                )
            if not torch.isfinite(z).all():
                raise ValueError("noise contains NaN or infinite values")
            checked.append(z.detach().to(dtype=dtype, device=x.device))
        if len(checked) != len(xs):
            raise ValueError(f"noise must hold one tensor per input ({len(xs)}), got {len(checked)}")
        return tuple(checked)

    def _combine(self, total: torch.Tensor, total_sq: torch.Tensor) -> torch.Tensor:
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
