"""Evidential deep learning (Sensoy, Kaplan & Kandemir 2018; the report's section 3.2, eq. 26–29)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.base import check_inputs, forward_scores
from ..core.hooks import borrowed
# The loss trains the zoo's evidential model, so it lives with the training code (models sit below
# uncertainty); re-exported here as nni.uncertainty.evidential_mse_loss.
from ..models.losses import _check_evidence, evidential_mse_loss  # noqa: F401


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
