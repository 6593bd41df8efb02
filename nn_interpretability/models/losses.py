"""Training losses of the zoo's models, with the ``loss_fn(output, labels, epoch)`` signature of
:func:`~nn_interpretability.models.training.train_classifier`.

The evidential loss lives here, with the training code that needs it, rather than in
:mod:`nn_interpretability.uncertainty`, which sits above the models; ``nni.uncertainty`` re-exports it.
"""
from __future__ import annotations

import torch


def _check_evidence(evidence: torch.Tensor) -> torch.Tensor:
    if not isinstance(evidence, torch.Tensor) or not evidence.is_floating_point() or evidence.dim() != 2:
        shape = tuple(evidence.shape) if isinstance(evidence, torch.Tensor) else type(evidence).__name__
        raise ValueError(f"evidence must be a floating point tensor of shape (N, K), got {shape}")
    if not torch.isfinite(evidence).all():
        raise ValueError("evidence contains NaN or infinite values")
    if (evidence < 0).any():
        raise ValueError("evidence must be non-negative: end the model in a ReLU (Sensoy et al. 2018, section 4)")
    return evidence


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
