"""Temperature scaling and calibration measures (Guo, Pleiss, Sun & Weinberger 2017; report section 3.3)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import check_inputs, forward_scores
from ..core.hooks import borrowed
from ..core.validation import positive_int


def _check_labels(labels, n: int, num_classes: int) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor of class indices, got {labels!r:.60}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one class per sample, got {tuple(labels.shape)}")
    if ((labels < 0) | (labels >= num_classes)).any():
        raise ValueError(f"labels out of range: the model has {num_classes} classes (0..{num_classes - 1})")
    return labels.long()


def _check_scores(scores, name: str) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"{name} must be a floating point tensor of shape (N, C), got {shape}")
    if scores.shape[0] == 0:
        raise ValueError(f"{name} is empty (N = 0)")
    if not torch.isfinite(scores).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return scores.detach()


class TemperatureScaled(nn.Module):
    """A classifier with its logits divided by one temperature ``T > 0``: ``softmax(z / T)`` (Guo et al. 2017, eq. 9).

    ``T`` is stored as ``log_temperature`` (a parameter in the ``state_dict``), which keeps it positive
    without constraints. ``T > 1`` softens overconfident probabilities; the predicted class (argmax)
    never changes, so accuracy is untouched. Fit ``T`` on held-out data with :meth:`fit` or
    :meth:`fit_logits`; the wrapped model is never trained.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits ``(N, C)``.
    temperature : float
        Initial temperature (1 = the model unchanged).
    """

    def __init__(self, model: nn.Module, temperature: float = 1.0):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        self.model = model
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> float:
        """The current temperature ``T = exp(log_temperature)``."""
        return float(self.log_temperature.detach().exp())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.log_temperature.exp()

    def fit(self, data, labels: torch.Tensor | None = None, batch_size: int = 256, max_iter: int = 100):
        """Fit ``T`` by the negative log-likelihood of held-out data; returns ``self``.

        Parameters
        ----------
        data : Tensor or iterable of (inputs, labels)
            Held-out inputs ``(N, ...)`` with ``labels``, or e.g. a ``DataLoader`` of ``(inputs, labels)``
            batches. Never the training data: the point is to correct overconfidence learnt there.
        labels : Tensor, optional
            ``(N,)`` classes of ``data`` when it is a tensor.
        batch_size : int
            Inputs per forward when ``data`` is a tensor.
        max_iter : int
            Iterations of L-BFGS.

        The wrapped model runs without gradients (borrowed, left unchanged); only its logits are kept.
        """
        batch_size = positive_int(batch_size, "batch_size")
        if isinstance(data, torch.Tensor):
            if labels is None:
                raise ValueError("labels are required when data is a tensor of inputs")
            inputs = check_inputs(data)
            batches = [(inputs[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
        elif isinstance(data, Iterable):
            if labels is not None:
                raise ValueError("labels must be None when data yields (inputs, labels) batches")
            batches = data
        else:
            raise TypeError(f"data must be a tensor of inputs or an iterable of (inputs, labels), got {type(data).__name__}")
        all_logits, all_labels = [], []
        with borrowed(self.model), torch.no_grad():
            for inputs, batch_labels in batches:
                all_logits.append(forward_scores(self.model, check_inputs(inputs)))
                all_labels.append(batch_labels)
        if not all_logits:
            raise ValueError("data is empty")
        return self.fit_logits(torch.cat(all_logits), torch.cat(all_labels).to(all_logits[0].device), max_iter=max_iter)

    def fit_logits(self, logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100):
        """Fit ``T`` to minimise ``NLL(softmax(z / T), y)`` on precomputed held-out logits; returns ``self``.

        L-BFGS with a strong-Wolfe line search on ``log T``, in float64, starting from the current ``T``.
        A result that does not lower the NLL (or is not finite) is discarded, so fitting never makes the
        held-out NLL worse.
        """
        logits = _check_scores(logits, "logits").double()
        labels = _check_labels(labels, logits.shape[0], logits.shape[1]).to(logits.device)
        max_iter = positive_int(max_iter, "max_iter")
        log_t = self.log_temperature.detach().double().to(logits.device).clone().requires_grad_(True)

        def nll() -> torch.Tensor:
            return F.cross_entropy(logits / log_t.exp(), labels)

        with torch.no_grad():
            before = nll()
        solver = torch.optim.LBFGS(
            [log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-12
        )

        def closure():
            solver.zero_grad()
            loss = nll()
            loss.backward()
            return loss

        with torch.enable_grad():
            solver.step(closure)
        with torch.no_grad():
            after = nll()
            if torch.isfinite(after) and after < before:
                self.log_temperature.copy_(log_t.detach())
        return self

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:.4g}"


@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin statistics of confidence and accuracy (equal-width bins on [0, 1]).

    Attributes
    ----------
    edges : Tensor
        ``(n_bins + 1,)`` bin edges; bin ``m`` holds confidences in ``(edges[m], edges[m + 1]]``.
    counts : Tensor
        ``(n_bins,)`` samples per bin.
    accuracy : Tensor
        ``(n_bins,)`` fraction of correct predictions per bin (NaN for an empty bin).
    confidence : Tensor
        ``(n_bins,)`` mean confidence (top probability) per bin (NaN for an empty bin).
    """

    edges: torch.Tensor
    counts: torch.Tensor
    accuracy: torch.Tensor
    confidence: torch.Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error ``Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|`` (Guo et al. 2017, eq. 3)."""
        filled = self.counts > 0
        weights = self.counts[filled].double() / self.counts.sum()
        return float((weights * (self.accuracy[filled] - self.confidence[filled]).abs()).sum())


def calibration_bins(probabilities: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> CalibrationBins:
    """Bin predictions by confidence ``max_c p_c`` into ``n_bins`` equal-width bins (Guo et al. 2017, section 2).

    Parameters
    ----------
    probabilities : Tensor
        ``(N, C)`` predicted probabilities, rows summing to 1 (e.g. ``logits.softmax(1)``).
    labels : Tensor
        ``(N,)`` true classes.
    n_bins : int
        Number of bins (15 in Guo et al.).
    """
    probabilities = _check_scores(probabilities, "probabilities")
    if (probabilities < 0).any() or not torch.allclose(
        probabilities.sum(1), probabilities.new_ones(()).expand(probabilities.shape[0]), atol=1e-4
    ):
        raise ValueError("probabilities must be non-negative with rows summing to 1: pass logits.softmax(1), not logits")
    labels = _check_labels(labels, probabilities.shape[0], probabilities.shape[1]).to(probabilities.device)
    n_bins = positive_int(n_bins, "n_bins")
    confidence, predicted = probabilities.double().max(1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=confidence.device)
    # right=False: bin m holds (edges[m], edges[m+1]], so a confidence of exactly 1 falls in the last bin.
    index = torch.bucketize(confidence, edges[1:-1])
    counts = torch.bincount(index, minlength=n_bins)
    sums = torch.zeros(n_bins, dtype=torch.float64, device=confidence.device)
    accuracy = sums.index_add(0, index, correct) / counts
    mean_confidence = sums.index_add(0, index, confidence) / counts
    return CalibrationBins(edges=edges, counts=counts, accuracy=accuracy, confidence=mean_confidence)


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (Guo et al. 2017, eq. 3)."""
    return calibration_bins(probabilities, labels, n_bins).ece
