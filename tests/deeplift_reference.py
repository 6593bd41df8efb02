"""A slow, direct DeepLIFT for small dense networks, written from the paper's formulas unit by unit.

Shrikumar et al. 2017, sections 3.3–3.5, in the bookkeeping of their reference implementation: every
unit carries its value on the input and on the baseline and the positive and negative parts of its
difference, ``Δa = Δa+ + Δa−``; the backward pass carries one multiplier per part. Scalars and Python
loops only (no autograd except for the derivative fallbacks), so that it shares nothing with the
vectorised, autograd-based implementation it checks. Test helper, not part of the package.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _scalar(module: nn.Module, value: float) -> float:
    return float(module(torch.tensor([value], dtype=torch.float64))[0])


def _derivative(module: nn.Module, value: float) -> float:
    t = torch.tensor([value], dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(module(t).sum(), t)
    return float(slope[0])


def _quotient(numerator: float, denominator: float, fallback) -> float:
    # The tests pick inputs whose differences are far from zero wherever they are not exactly zero.
    return numerator / denominator if denominator != 0 else fallback()


class _Unit:
    __slots__ = ("value", "reference", "positive", "negative")

    def __init__(self, value, reference, positive, negative):
        self.value, self.reference, self.positive, self.negative = value, reference, positive, negative


def deeplift_reference(model: nn.Sequential, x, baseline, target: int, rule: str, linear_rule: bool) -> list[float]:
    """DeepLIFT contributions of one sample ``x`` (a 1-D sequence) for class ``target``.

    ``model`` is an ``nn.Sequential`` of ``nn.Linear``, ``nn.BatchNorm1d`` (eval mode), ``nn.MaxPool1d``
    (no padding) and elementwise activation modules. ``rule`` is ``"rescale"``, ``"reveal_cancel"`` or
    ``"gradient"``; ``linear_rule`` re-splits the parts at every linear layer by the sign of each term
    ``w_ji Δa_i`` (section 3.5.1).
    """
    x, baseline = [float(v) for v in x], [float(v) for v in baseline]
    units = [_Unit(a, r, max(a - r, 0.0), min(a - r, 0.0)) for a, r in zip(x, baseline)]
    input_units = units
    layers = []  # (module, its input units, what its backward pass needs)
    for module in model:
        inputs = units
        if isinstance(module, nn.Linear):
            weight, bias = module.weight.tolist(), module.bias.tolist()
            units = []
            for row, b in zip(weight, bias):
                value = sum(w * u.value for w, u in zip(row, inputs)) + b
                reference = sum(w * u.reference for w, u in zip(row, inputs)) + b
                if linear_rule:
                    terms = [w * (u.value - u.reference) for w, u in zip(row, inputs)]
                    positive = sum(t for t in terms if t > 0)
                    negative = sum(t for t in terms if t < 0)
                else:
                    positive = sum(w * u.positive for w, u in zip(row, inputs))
                    negative = sum(w * u.negative for w, u in zip(row, inputs))
                units.append(_Unit(value, reference, positive, negative))
            layers.append((module, inputs, None))
        elif isinstance(module, nn.BatchNorm1d):
            variances = module.running_var.tolist()
            scales = [g / math.sqrt(v + module.eps) for g, v in zip(module.weight.tolist(), variances)]
            means, shifts = module.running_mean.tolist(), module.bias.tolist()
            units = []
            for u, s, mu, beta in zip(inputs, scales, means, shifts):
                # The linear rule treats the two parts as two terms of weight s: a negative scale turns the
                # positive part into a negative one. Without it, the parts keep their origin.
                flip = linear_rule and s < 0
                positive, negative = (s * u.negative, s * u.positive) if flip else (s * u.positive, s * u.negative)
                units.append(_Unit(s * (u.value - mu) + beta, s * (u.reference - mu) + beta, positive, negative))
            layers.append((module, inputs, scales))
        elif isinstance(module, nn.MaxPool1d):
            # Each window's difference is shared between the unit holding the maximum of the input and the
            # one holding the maximum of the reference; RevealCancel takes the shares as the two parts.
            windows = []
            units = []
            for start in range(0, len(inputs) - module.kernel_size + 1, module.stride):
                window = range(start, start + module.kernel_size)
                top_in = max(window, key=lambda i: inputs[i].value)
                top_ref = max(window, key=lambda i: inputs[i].reference)
                value, reference = inputs[top_in].value, inputs[top_ref].reference
                rise, fall = max(value, reference) - reference, value - max(value, reference)
                units.append(_Unit(value, reference, rise, fall))
                windows.append((top_in, top_ref, rise, fall))
            layers.append((module, inputs, windows))
        else:
            f = lambda v, m=module: _scalar(m, v)  # noqa: E731
            slope = lambda v, m=module: _derivative(m, v)  # noqa: E731
            units, multipliers = [], []
            for u in inputs:
                y, y0 = f(u.value), f(u.reference)
                delta = u.value - u.reference
                if rule == "gradient":
                    m_pos = m_neg = slope(u.value)
                    rise, fall = m_pos * u.positive, m_neg * u.negative
                elif rule == "rescale":
                    m_pos = m_neg = _quotient(y - y0, delta, lambda: slope((u.value + u.reference) / 2))
                    rise, fall = m_pos * u.positive, m_neg * u.negative
                else:
                    p, n, r = u.positive, u.negative, u.reference
                    rise = 0.5 * (f(r + p) - f(r)) + 0.5 * (f(r + n + p) - f(r + n))
                    fall = 0.5 * (f(r + n) - f(r)) + 0.5 * (f(r + p + n) - f(r + p))
                    m_pos = _quotient(rise, p, lambda: 0.5 * (slope(r) + slope(r + n)))
                    m_neg = _quotient(fall, n, lambda: 0.5 * (slope(r) + slope(r + p)))
                units.append(_Unit(y, y0, rise, fall))
                multipliers.append((m_pos, m_neg))
            layers.append((module, inputs, multipliers))

    m_pos = [1.0 if j == target else 0.0 for j in range(len(units))]
    m_neg = list(m_pos)
    for module, inputs, extra in reversed(layers):
        if isinstance(module, nn.Linear):
            weight = module.weight.tolist()
            new_pos, new_neg = [], []
            for i, u in enumerate(inputs):
                column = [(row[i], p, n) for row, p, n in zip(weight, m_pos, m_neg)]
                if not linear_rule:
                    new_pos.append(sum(w * p for w, p, n in column))
                    new_neg.append(sum(w * n for w, p, n in column))
                    continue
                delta = u.value - u.reference
                if delta > 0:
                    m = sum(w * (p if w > 0 else n) for w, p, n in column)
                elif delta < 0:
                    m = sum(w * (n if w > 0 else p) for w, p, n in column)
                else:
                    m = sum(w * (p + n) / 2 for w, p, n in column)
                new_pos.append(m)
                new_neg.append(m)
            m_pos, m_neg = new_pos, new_neg
        elif isinstance(module, nn.BatchNorm1d):
            flips = [linear_rule and s < 0 for s in extra]
            m_pos, m_neg = (
                [s * (n if flip else p) for s, flip, p, n in zip(extra, flips, m_pos, m_neg)],
                [s * (p if flip else n) for s, flip, p, n in zip(extra, flips, m_pos, m_neg)],
            )
        elif isinstance(module, nn.MaxPool1d):
            shares, gradient = [0.0] * len(inputs), [0.0] * len(inputs)
            for (top_in, top_ref, rise, fall), p, n in zip(extra, m_pos, m_neg):
                if rule == "gradient":
                    gradient[top_in] += p
                    continue
                shares[top_in] += p * rise
                shares[top_ref] += n * fall
                gradient[top_in] += (p + n) / 2
            if rule == "gradient":
                m_pos = gradient
            else:
                m_pos = [
                    _quotient(shares[i], u.value - u.reference, lambda i=i: gradient[i]) for i, u in enumerate(inputs)
                ]
            m_neg = list(m_pos)
        else:
            m_pos = [p * k for p, (k, _) in zip(m_pos, extra)]
            m_neg = [n * k for n, (_, k) in zip(m_neg, extra)]
    return [p * u.positive + n * u.negative for p, n, u in zip(m_pos, m_neg, input_units)]
