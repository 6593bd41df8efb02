"""Slow, explicit LRP for dense ReLU networks with contribution matrices (test-only reference).

Textbook eq. 9.18–9.29: ``c(a^m) = C(a^m | a^{m+1}) c(a^{m+1})`` with ``[C]_{i,j} = c(a_i^m | a_j^{m+1})``,
started from ``c(n^M) = n_c^M eps_c`` (eq. 9.20). Every entry is written out neuron by neuron with Python
floats, from the rules' definitions in the literature, without any code of the package:

- epsilon (eq. 9.27–9.28): ``w_ji a_i / (eps + sum_k w_jk a_k [+ b_j])``
- gamma (eq. 9.29; for inputs of both signs as in Andéol et al. 2021): the weights agreeing with the
  sign of their input are boosted by ``gamma w^+`` (``gamma w^-``) for neurons with positive (negative)
  output
- alpha-beta (report eq. 21): ``alpha (w_ji a_i)^+ / sum_k (w_jk a_k)^+ - beta (w_ji a_i)^- / sum_k (w_jk a_k)^-``
- z^B (report eq. 22): ``(w_ji a_i - w_ji^+ l_i - w_ji^- h_i) / sum_k (...)``
- flat: ``1 / (number of inputs)``; w^2: ``w_ji^2 / (sum_k w_jk^2 [+ b_j^2])``; pass: the identity.

Denominators are stabilised by ``d + s sign(d)`` (``sign(0) = +1``); with ``s = 0`` a zero denominator
gives a zero column. Between layers the ReLU passes relevance through (``c(a_j) = c(n_j)``).
"""
from __future__ import annotations


def _stabilized_ratio(numerator: float, denominator: float, stabilizer: float) -> float:
    if stabilizer == 0:
        return 0.0 if denominator == 0 else numerator / denominator
    return numerator / (denominator + (stabilizer if denominator >= 0 else -stabilizer))


def _pos(v: float) -> float:
    return max(v, 0.0)


def _neg(v: float) -> float:
    return min(v, 0.0)


def contribution_matrix(rule: dict, weight: list[list[float]], bias: list[float], a: list[float]) -> list[list[float]]:
    """``C(a^m | a^{m+1})``: entry ``[i][j]`` is the share of output ``j``'s relevance that input ``i`` gets.

    ``rule`` is ``{"name": ..., parameters}``; ``weight[j][i]`` connects input ``i`` to output ``j``.
    """
    name = rule["name"]
    n_in, n_out = len(a), len(weight)
    use_bias = rule.get("bias", True)
    stabilizer = rule.get("stabilizer", 0.0)
    columns = []
    for j in range(n_out):
        w = weight[j]
        b = bias[j]
        z = sum(w[i] * a[i] for i in range(n_in)) + b
        if name == "epsilon":
            numerators = [w[i] * a[i] for i in range(n_in)]
            denominator = sum(numerators) + (b if use_bias else 0.0)
            column = [_stabilized_ratio(v, denominator, rule["epsilon"]) for v in numerators]
        elif name == "gamma":
            g = rule["gamma"]
            if z == 0:
                column = [0.0] * n_in
            else:
                boost_same = z > 0  # positive output: boost w^+ for a >= 0 and w^- for a < 0
                numerators = []
                for i in range(n_in):
                    boosted = _pos(w[i]) if (a[i] >= 0) == boost_same else _neg(w[i])
                    numerators.append((w[i] + g * boosted) * a[i])
                bias_part = b + g * (_pos(b) if z > 0 else _neg(b))
                denominator = sum(numerators) + (bias_part if use_bias else 0.0)
                column = [_stabilized_ratio(v, denominator, stabilizer) for v in numerators]
        elif name == "alpha_beta":
            alpha, beta = rule["alpha"], rule["beta"]
            positive = [_pos(w[i] * a[i]) for i in range(n_in)]
            negative = [_neg(w[i] * a[i]) for i in range(n_in)]
            d_pos = sum(positive) + (_pos(b) if use_bias else 0.0)
            d_neg = sum(negative) + (_neg(b) if use_bias else 0.0)
            column = [
                alpha * _stabilized_ratio(p, d_pos, stabilizer)
                - (beta * _stabilized_ratio(q, d_neg, stabilizer) if beta else 0.0)
                for p, q in zip(positive, negative)
            ]
        elif name == "zbox":
            low, high = rule["low"], rule["high"]
            numerators = [w[i] * a[i] - _pos(w[i]) * low[i] - _neg(w[i]) * high[i] for i in range(n_in)]
            column = [_stabilized_ratio(v, sum(numerators), stabilizer) for v in numerators]
        elif name == "flat":
            column = [_stabilized_ratio(1.0, float(n_in), stabilizer)] * n_in
        elif name == "wsquare":
            numerators = [w[i] ** 2 for i in range(n_in)]
            denominator = sum(numerators) + (b**2 if use_bias else 0.0)
            column = [_stabilized_ratio(v, denominator, stabilizer) for v in numerators]
        elif name == "pass":
            column = [1.0 if i == j else 0.0 for i in range(n_in)]
        else:
            raise ValueError(f"unknown rule {name}")
        columns.append(column)
    return [[columns[j][i] for j in range(n_out)] for i in range(n_in)]


def lrp_dense(weights, biases, x: list[float], target: int, rules: list[dict]) -> list[float]:
    """Input relevance of a dense ReLU network ``Linear -> ReLU -> ... -> Linear`` for class ``target``.

    Parameters
    ----------
    weights, biases : lists of nested lists of float
        ``weights[m][j][i]`` and ``biases[m][j]`` of layer ``m``.
    x : list of float
        One input.
    target : int
        The explained class (0-based).
    rules : list of dict
        One rule per layer, input layer first.
    """
    activations = [list(x)]
    for m, (weight, bias) in enumerate(zip(weights, biases)):
        a = activations[-1]
        n = [sum(w_ji * a_i for w_ji, a_i in zip(row, a)) + b_j for row, b_j in zip(weight, bias)]
        activations.append(n if m == len(weights) - 1 else [max(v, 0.0) for v in n])
    logits = activations[-1]
    relevance = [logits[j] if j == target else 0.0 for j in range(len(logits))]  # eq. 9.20
    for m in reversed(range(len(weights))):
        matrix = contribution_matrix(rules[m], weights[m], biases[m], activations[m])
        relevance = [sum(matrix[i][j] * relevance[j] for j in range(len(relevance))) for i in range(len(matrix))]
    return relevance
