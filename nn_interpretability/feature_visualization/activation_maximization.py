"""Activation maximization: the input a classifier finds most typical of a class (report section 2.1.1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from ..core.progress import progress

from ..core.hooks import borrowed

INITS = ("noise", "class_mean", "sample")
REGULARIZATIONS = ("l2", "class_mean")


def _targets(target) -> torch.Tensor:
    values = [target] if isinstance(target, int) and not isinstance(target, bool) else list(target)
    if not values or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in values):
        raise ValueError(f"target must be a class index or a sequence of them, got {target!r}")
    return torch.tensor(values)


def _log_probability(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    scores = model(x)
    if scores.dim() != 2:
        raise ValueError(f"the model must return class scores (N, C), got shape {tuple(scores.shape)}")
    if int(targets.max()) >= scores.shape[1]:
        raise ValueError(f"target class {int(targets.max())} out of range: the model has {scores.shape[1]} classes")
    return scores.log_softmax(1).gather(1, targets.to(scores.device)[:, None]).squeeze(1)


def _ascend(parameters: torch.Tensor, objective, steps: int, lr: float, project=None, desc: str = "") -> torch.Tensor:
    """Adam ascent on ``objective(parameters)`` (a per-sample vector), with an optional projection."""
    parameters = parameters.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([parameters], lr=lr)
    for _ in progress(range(steps), desc, None if steps >= 100 else False):
        loss = -objective(parameters).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if project is not None:
            with torch.no_grad():
                parameters.copy_(project(parameters))
    return parameters.detach()


class ActivationMaximization:
    """General activation maximization in input space (Montavon et al. 2018; report eq. 1, Fig. 1–2).

    ``max_x log p(w_c | x) − λ ‖x − x₀‖²`` by projected gradient ascent (Adam, then clamping to
    ``bounds``), with ``x₀ = 0`` (plain L2) or the class mean ``x̄_c`` (Montavon et al.'s variant). With
    an ``expert`` density ``p(x)`` the objective gains ``+ expert_weight · log p(x)`` (AM with an expert,
    report eq. 3), which keeps the prototype where real digits live.

    Parameters
    ----------
    model : nn.Module
        A classifier returning class scores ``(N, C)``; left unchanged.
    bounds : (float, float)
        The valid input range, e.g. (0, 1) for MNIST.
    """

    def __init__(self, model: nn.Module, bounds: tuple[float, float] = (0.0, 1.0)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.bounds = bounds

    def generate(
        self,
        target: int | Sequence[int],
        init: str | torch.Tensor = "noise",
        regularization: str = "l2",
        lam: float = 0.01,
        steps: int = 200,
        lr: float = 0.05,
        seed: int = 0,
        data: tuple[torch.Tensor, torch.Tensor] | None = None,
        shape: tuple[int, ...] | None = None,
        expert: nn.Module | None = None,
        expert_weight: float = 1.0,
    ) -> torch.Tensor:
        """One prototype per target class, shape ``(len(target), *sample_shape)``.

        Parameters
        ----------
        target : int or sequence of int
            The classes ``w_c`` to maximise.
        init : {"noise", "class_mean", "sample"} or Tensor
            The starting point: uniform noise in ``bounds``, the class mean of ``data``, a random
            training image of the class (Fig. 1 left), or given images ``(len(target), ...)``.
        regularization : {"l2", "class_mean"}
            ``λ‖x‖²`` or ``λ‖x − x̄_c‖²``.
        lam : float
            ``λ``.
        steps, lr : int, float
            Adam steps and step size.
        seed : int
            Seed of the noise and of the sampled images.
        data : (images, labels), optional
            Training data, needed for class means and samples.
        shape : tuple, optional
            Sample shape for ``init="noise"`` when no ``data`` is given.
        expert : nn.Module, optional
            A density whose ``log_prob(x)`` (or forward) returns ``log p(x)`` per image, e.g. the zoo's
            ``mnist_ppca``.
        expert_weight : float
            Weight of ``log p(x)``.
        """
        targets = _targets(target)
        if isinstance(init, str) and init not in INITS:
            raise ValueError(f"init must be one of {INITS} or a tensor, got {init!r}")
        if regularization not in REGULARIZATIONS:
            raise ValueError(f"regularization must be one of {REGULARIZATIONS}, got {regularization!r}")
        needs_data = regularization == "class_mean" or init in ("class_mean", "sample")
        if needs_data and data is None:
            raise ValueError(f"init={init!r} with regularization={regularization!r} needs data=(images, labels)")
        generator = torch.Generator().manual_seed(seed)
        means = None
        if data is not None:
            images, labels = data
            missing = sorted(set(targets.tolist()) - set(labels.tolist()))
            if needs_data and missing:
                raise ValueError(f"data has no images of class {missing}")
            if needs_data:
                means = torch.stack([images[labels == t].mean(0) for t in targets.tolist()])
            shape = tuple(images.shape[1:])
        if isinstance(init, torch.Tensor):
            if init.shape[0] != len(targets):
                raise ValueError(f"init holds {init.shape[0]} images for {len(targets)} targets")
            start = init.float()
        elif init == "noise":
            if shape is None:
                raise ValueError("init='noise' needs data or shape to know the input shape")
            low, high = self.bounds
            start = low + (high - low) * torch.rand(len(targets), *shape, generator=generator)
        elif init == "class_mean":
            start = means
        else:
            picks = [torch.nonzero(labels == t).flatten() for t in targets.tolist()]
            start = torch.stack([images[p[torch.randint(len(p), (1,), generator=generator)]][0] for p in picks])
        device = next(self.model.parameters()).device
        start = start.to(device)
        anchor = means.to(device) if regularization == "class_mean" else torch.zeros_like(start)
        log_density = None if expert is None else getattr(expert, "log_prob", expert)

        def objective(x):
            value = _log_probability(self.model, x, targets) - lam * (x - anchor).flatten(1).pow(2).sum(1)
            if log_density is not None:
                value = value + expert_weight * log_density(x)
            return value

        with borrowed(self.model):
            self.model.eval()
            if expert is None:
                return _ascend(start, objective, steps, lr, lambda x: x.clamp(*self.bounds), "activation maximization")
            with borrowed(expert):
                return _ascend(start, objective, steps, lr, lambda x: x.clamp(*self.bounds), "activation maximization")


class CodeSpaceActivationMaximization:
    """Activation maximization in the code space of a generator (Nguyen et al. 2016; report eq. 2, Fig. 3).

    ``max_z log p(w_c | g(z)) − λ‖z‖²``: the prototype ``g(z*)`` stays on the generator's manifold of
    natural-looking images.

    Parameters
    ----------
    model : nn.Module
        The classifier; left unchanged.
    generator : nn.Module
        ``g``, mapping codes ``(N, latent_dim)`` to inputs of ``model``; it must expose ``latent_dim``
        or the dimension must be passed to :meth:`generate`. Left unchanged.
    """

    def __init__(self, model: nn.Module, generator: nn.Module):
        self.model = model
        self.generator = generator

    def generate(
        self,
        target: int | Sequence[int],
        lam: float = 0.01,
        steps: int = 200,
        lr: float = 0.05,
        seed: int = 0,
        latent_dim: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prototypes ``g(z*)`` and their codes ``z*``, one per target class."""
        targets = _targets(target)
        latent_dim = latent_dim or getattr(self.generator, "latent_dim", None)
        if not latent_dim:
            raise ValueError("the generator has no latent_dim attribute: pass latent_dim")
        device = next(self.generator.parameters()).device
        z0 = torch.randn(len(targets), latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)

        def objective(z):
            return _log_probability(self.model, self.generator(z), targets) - lam * z.pow(2).sum(1)

        with borrowed(self.model), borrowed(self.generator):
            self.model.eval(), self.generator.eval()
            z = _ascend(z0, objective, steps, lr, desc="code-space activation maximization")
            with torch.no_grad():
                return self.generator(z), z
