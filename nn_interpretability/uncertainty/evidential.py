"""Evidential deep learning (Sensoy, Kaplan & Kandemir 2018; the report's section 3.2, eq. 26–29)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.base import check_inputs, forward_scores
from ..core.hooks import borrowed


@dataclass(frozen=True)
class DirichletOpinion:
    """A subjective opinion over ``K`` classes: the Dirichlet ``Dir(p | α)`` collected from evidence.

    Attributes
    ----------
    alpha : Tensor
        ``(N, K)`` Dirichlet parameters ``α = e + 1`` (eq. 27–28).
    strength : Tensor
        ``(N,)`` Dirichlet strength ``S = Σ_k α_k`` (eq. 27).
    belief : Tensor
        ``(N, K)`` belief masses ``b_k = e_k / S`` (eq. 27).
    uncertainty : Tensor
        ``(N,)`` uncertainty mass ``u = K / S`` (eq. 27); ``u + Σ_k b_k = 1`` (eq. 26).
    probability : Tensor
        ``(N, K)`` expected probability ``p̂_k = α_k / S``, the Dirichlet mean (eq. 29).
    """

    alpha: torch.Tensor
    strength: torch.Tensor
    belief: torch.Tensor
    uncertainty: torch.Tensor
    probability: torch.Tensor

    @property
    def prediction(self) -> torch.Tensor:
        """``(N,)`` the class of largest expected probability."""
        return self.probability.argmax(1)


def _check_evidence(evidence: torch.Tensor) -> torch.Tensor:
    if not isinstance(evidence, torch.Tensor) or not evidence.is_floating_point() or evidence.dim() != 2:
        shape = tuple(evidence.shape) if isinstance(evidence, torch.Tensor) else type(evidence).__name__
        raise ValueError(f"evidence must be a floating point tensor of shape (N, K), got {shape}")
    if not torch.isfinite(evidence).all():
        raise ValueError("evidence contains NaN or infinite values")
    if (evidence < 0).any():
        raise ValueError("evidence must be non-negative: end the model in a ReLU (Sensoy et al. 2018, section 4)")
    return evidence


def dirichlet_opinion(evidence: torch.Tensor) -> DirichletOpinion:
    """The subjective opinion of non-negative evidence ``e`` of shape ``(N, K)`` (eq. 26–29)."""
    evidence = _check_evidence(evidence)
    alpha = evidence + 1.0
    strength = alpha.sum(dim=1, keepdim=True)
    return DirichletOpinion(
        alpha=alpha,
        strength=strength.squeeze(1),
        belief=evidence / strength,
        uncertainty=(evidence.shape[1] / strength).squeeze(1),
        probability=alpha / strength,
    )


def evidential_opinion(model: nn.Module, inputs: torch.Tensor) -> DirichletOpinion:
    """Run an evidential classifier (outputs = evidence ``(N, K)``) and return its opinion (eq. 26–29).

    The model is borrowed (left exactly as it was) and runs without gradients.
    """
    inputs = check_inputs(inputs)
    with borrowed(model), torch.no_grad():
        evidence = forward_scores(model, inputs)
    return dirichlet_opinion(evidence)


def _kl_to_uniform_dirichlet(alpha: torch.Tensor) -> torch.Tensor:
    """KL(Dir(alpha) || Dir(1, ..., 1)) per sample (Sensoy et al. 2018, eq. after eq. 5)."""
    num_classes = alpha.shape[1]
    strength = alpha.sum(dim=1)
    return (
        torch.lgamma(strength)
        - torch.lgamma(alpha.new_tensor(float(num_classes)))
        - torch.lgamma(alpha).sum(dim=1)
        + ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(strength).unsqueeze(1))).sum(dim=1)
    )


def evidential_mse_loss(
    evidence: torch.Tensor, labels: torch.Tensor, epoch: int, annealing_epochs: int = 10
) -> torch.Tensor:
    """Sensoy et al.'s eq. 5 (expected squared error under Dir(alpha)) plus the annealed KL term.

    ``Σ_k (y_k - p̂_k)² + p̂_k (1 - p̂_k) / (S + 1)`` per sample, plus the KL divergence of the
    misleading evidence (``α̃ = y + (1 - y) ∘ α``, the true class removed) from the uniform Dirichlet,
    weighted by ``min(1, epoch / annealing_epochs)`` so that the model first learns to collect evidence
    before being pushed towards "I don't know" on hard samples. Returns the batch mean.
    """
    evidence = _check_evidence(evidence)
    if labels.shape != evidence.shape[:1] or labels.is_floating_point():
        raise ValueError(f"labels must be integer class indices of shape ({evidence.shape[0]},), got {tuple(labels.shape)}")
    one_hot = torch.nn.functional.one_hot(labels, evidence.shape[1]).to(evidence.dtype)
    alpha = evidence + 1.0
    strength = alpha.sum(dim=1, keepdim=True)
    prob = alpha / strength
    squared_error = ((one_hot - prob) ** 2 + prob * (1 - prob) / (strength + 1)).sum(dim=1)
    misleading_alpha = one_hot + (1 - one_hot) * alpha
    annealing = min(1.0, epoch / annealing_epochs)
    return (squared_error + annealing * _kl_to_uniform_dirichlet(misleading_alpha)).mean()


_EVIDENCE_ACTIVATIONS = (nn.ReLU, nn.Softplus, nn.ReLU6, nn.ELU)


class EvidenceLogits(nn.Module):
    """An evidential classifier's class scores *before* its final evidence activation.

    A ReLU evidence head outputs exactly zero for every class on inputs it knows nothing about
    (``u = 1``), so an attribution of the evidence has nothing to distribute. The pre-activation says
    how far each class is from collecting evidence; explaining it shows what keeps the evidence away
    (the report's Fig. 21 b, d). The last evidence activation module of ``model`` (ReLU, Softplus,
    ReLU6 or ELU, in registration order) is bypassed by a forward hook that lives only during a
    forward call; ``model`` itself is not changed.

    Parameters
    ----------
    model : nn.Module
        An evidential classifier whose output is an activation module applied to the class scores.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        activations = [m for m in model.modules() if isinstance(m, _EVIDENCE_ACTIVATIONS)]
        if not activations:
            raise ValueError(
                f"{type(model).__name__} has no evidence activation module ({', '.join(t.__name__ for t in _EVIDENCE_ACTIVATIONS)})"
            )
        self.model = model
        self._activation = activations[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        calls = []

        def bypass(module, args, output):
            calls.append(None)
            return args[0]

        handle = self._activation.register_forward_hook(bypass)
        try:
            scores = self.model(x)
        finally:
            handle.remove()
        if len(calls) != 1:
            raise RuntimeError(f"the evidence activation ran {len(calls)} times in one forward; expected once")
        return scores
