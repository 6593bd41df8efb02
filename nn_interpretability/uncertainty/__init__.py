"""Uncertainty-aware interpretability (report section 3)."""
from .evidential import dirichlet_opinion, evidential_mse_loss

__all__ = ["dirichlet_opinion", "evidential_mse_loss"]
