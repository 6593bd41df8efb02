"""SmoothGrad: average any attribution method over noisy copies of the input (report section 2.2.1)."""
from __future__ import annotations

from numbers import Real

import torch
from tqdm import tqdm

from ..core.base import Attribution, Target, check_inputs, forward_scores, resolve_target
from ..core.hooks import borrowed
from ..core.registry import get_method, register_method
from .integrated_gradients import default_chunk_size

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")

#: Seed of the noise when ``seed=None``, so that repeated runs give the same maps.
DEFAULT_SEED = 0


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


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
    nt_samples_batch_size : int, optional
        Noisy copies of the batch passed to the wrapped method at once; ``None`` keeps one pass at most
        :data:`~nn_interpretability.attribution.integrated_gradients.CHUNK_ELEMENTS` input elements.
    seed : int, optional
        Seed of the ``torch.Generator`` drawing the noise; ``None`` uses :data:`DEFAULT_SEED`. Each call
        to ``attribute`` starts the generator afresh, so equal calls give equal maps.
    """

    def __init__(
        self,
        method,
        nt_type: str = "smoothgrad",
        nt_samples: int = 50,
        stdevs=0.15,
        nt_samples_batch_size: int | None = None,
        seed: int | None = None,
    ):
        if not callable(getattr(method, "attribute", None)):
            raise TypeError(
                f"method must be an attribution object with an .attribute(inputs, target=...) method, got "
                f"{type(method).__name__}"
            )
        super().__init__(getattr(method, "model", None))
        if nt_type not in NT_TYPES:
            raise ValueError(f"unknown nt_type {nt_type!r}; choose one of {', '.join(NT_TYPES)}")
        if isinstance(stdevs, torch.Tensor):
            if stdevs.dim() > 1 or not torch.isfinite(stdevs).all() or (stdevs < 0).any():
                raise ValueError("stdevs must be a non-negative number or a 1-D tensor of non-negative numbers")
        elif isinstance(stdevs, bool) or not isinstance(stdevs, Real) or not 0 <= stdevs < float("inf"):
            raise ValueError(f"stdevs must be a non-negative number or a 1-D tensor, got {stdevs!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.method = method
        self.nt_type = nt_type
        self.nt_samples = _positive_int(nt_samples, "nt_samples")
        self.stdevs = stdevs
        self.nt_samples_batch_size = (
            None if nt_samples_batch_size is None else _positive_int(nt_samples_batch_size, "nt_samples_batch_size")
        )
        self.seed = DEFAULT_SEED if seed is None else seed

    def _sigma(self, inputs: torch.Tensor) -> torch.Tensor:
        """Absolute noise standard deviation per sample, shape ``(N,)``."""
        flat = inputs.flatten(1)
        value_range = flat.amax(1) - flat.amin(1)
        stdevs = torch.as_tensor(self.stdevs, dtype=inputs.dtype, device=inputs.device)
        if stdevs.dim() == 1 and stdevs.shape[0] != inputs.shape[0]:
            raise ValueError(f"stdevs has {stdevs.shape[0]} entries but the batch has N = {inputs.shape[0]} samples")
        return stdevs * value_range

    def attribute(self, inputs: torch.Tensor, target: Target = None, noise: torch.Tensor | None = None, **kwargs):
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
        **kwargs
            Passed to the wrapped method's ``attribute`` (e.g. ``baselines``, ``n_steps`` of
            Integrated Gradients). A tensor argument of shape ``(N, ...)`` with as many dimensions as
            ``inputs`` is taken as per-sample and repeated along with the noisy copies.
        """
        inputs = check_inputs(inputs)
        if kwargs.get("return_convergence_delta"):
            raise ValueError("return_convergence_delta is not supported by SmoothGrad: it returns maps only")
        n, sample_shape = inputs.shape[0], inputs.shape[1:]
        trailing = (1,) * len(sample_shape)
        sigma = self._sigma(inputs).view(n, *trailing)
        if noise is not None:
            if not isinstance(noise, torch.Tensor) or noise.shape != (self.nt_samples, *inputs.shape):
                shape = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
                raise ValueError(
                    f"noise must be a tensor of shape (nt_samples, *inputs.shape) = "
                    f"{(self.nt_samples, *inputs.shape)}, got {shape}"
                )
            if not torch.isfinite(noise).all():
                raise ValueError("noise contains NaN or infinite values")
            noise = noise.detach().to(dtype=inputs.dtype, device=inputs.device)
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        per_sample = {
            key: value
            for key, value in kwargs.items()
            if isinstance(value, torch.Tensor) and value.dim() == inputs.dim() and value.shape[0] == n
        }
        chunk = self.nt_samples_batch_size or default_chunk_size(inputs.numel())
        starts = range(0, self.nt_samples, chunk)

        total = torch.zeros_like(inputs)
        total_sq = torch.zeros_like(inputs)
        with borrowed(self.model):
            with torch.no_grad():
                indices = resolve_target(target, forward_scores(self.model, inputs))
            for start in tqdm(starts, desc="smoothgrad", leave=False, disable=len(starts) < 8):
                k = min(chunk, self.nt_samples - start)
                if noise is None:
                    # One draw per copy, so that the noise does not depend on the chunking.
                    z = torch.stack(
                        [
                            torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype, device=inputs.device)
                            for _ in range(k)
                        ]
                    )
                else:
                    z = noise[start : start + k]
                # Copy k of sample i sits at row k * N + i, so per-sample arguments repeat whole.
                noisy = (inputs + sigma * z).reshape(k * n, *sample_shape)
                chunk_kwargs = {**kwargs, **{key: value.repeat(k, *trailing) for key, value in per_sample.items()}}
                maps = self.method.attribute(noisy, target=indices.repeat(k), **chunk_kwargs)
                if not isinstance(maps, torch.Tensor) or maps.shape != noisy.shape:
                    shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
                    raise TypeError(
                        f"the wrapped method must return one map of the inputs' shape {tuple(noisy.shape)}, got {shape}"
                    )
                maps = maps.detach().reshape(k, *inputs.shape)
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
