"""Evidential deep learning (Sensoy, Kaplan & Kandemir 2018; the report's section 3.2, eq. 26–29)."""
from __future__ import annotations

import torch


def dirichlet_opinion(evidence: torch.Tensor) -> dict[str, torch.Tensor]:
    """Subjective opinion from non-negative evidence ``e`` of shape ``(N, K)``.

    Returns alpha = e + 1, strength S = sum(alpha), belief b = e / S, uncertainty u = K / S (eq. 27)
    and the expected probability alpha / S (eq. 29); ``u + sum(b) = 1`` (eq. 26).
    """
    if (evidence < 0).any():
        raise ValueError("evidence must be non-negative (end the model in a ReLU)")
    alpha = evidence + 1.0
    strength = alpha.sum(dim=1, keepdim=True)
    return {
        "alpha": alpha,
        "strength": strength.squeeze(1),
        "belief": evidence / strength,
        "uncertainty": (evidence.shape[1] / strength).squeeze(1),
        "probability": alpha / strength,
    }


def _kl_to_uniform_dirichlet(alpha: torch.Tensor) -> torch.Tensor:
    """KL(Dir(alpha) || Dir(1, ..., 1)) per sample."""
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

    The KL divergence of the misleading evidence (``alpha`` with the true class removed) towards the
    uniform Dirichlet is weighted by ``min(1, epoch / annealing_epochs)`` so that the model first
    learns to collect evidence before being pushed towards "I don't know" on hard samples.
    """
    one_hot = torch.nn.functional.one_hot(labels, evidence.shape[1]).to(evidence.dtype)
    alpha = evidence + 1.0
    strength = alpha.sum(dim=1, keepdim=True)
    prob = alpha / strength
    squared_error = ((one_hot - prob) ** 2 + prob * (1 - prob) / (strength + 1)).sum(dim=1)
    misleading_alpha = one_hot + (1 - one_hot) * alpha
    annealing = min(1.0, epoch / annealing_epochs)
    return (squared_error + annealing * _kl_to_uniform_dirichlet(misleading_alpha)).mean()
