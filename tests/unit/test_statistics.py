"""Bootstrap summaries and paired tests of per-sample scores."""
import numpy as np
import pytest
import torch
from scipy import stats

import nn_interpretability as nni
from nn_interpretability.evaluation import paired_test, summarize


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_interval_covers_the_true_mean_at_about_the_nominal_rate(method):
    # Skewed scores (exponential, true mean 1) in 300 simulated studies of 40 samples each.
    rng = np.random.default_rng(0)
    studies = rng.exponential(1.0, size=(300, 40))
    summaries = [summarize(s, n_resamples=400, method=method, seed=i) for i, s in enumerate(studies)]
    rate = float(np.mean([s.low <= 1.0 <= s.high for s in summaries]))
    # Nominal 0.95; the bootstrap under-covers a little for skewed data at n = 40 (and 300 studies give ±0.025).
    assert 0.88 <= rate <= 0.99, rate


def test_summary_equals_scipy_on_a_fixed_input_and_records_its_seed():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.9, 0.05, 0.6, 0.55, 0.3, 0.7], dtype=torch.float64)
    summary = summarize(scores, confidence=0.9, n_resamples=999, seed=7)
    expected = stats.bootstrap((scores.numpy(),), np.mean, confidence_level=0.9, n_resamples=999, method="BCa",
                               rng=np.random.default_rng(7))
    assert summary.low == pytest.approx(expected.confidence_interval.low, abs=1e-12)
    assert summary.high == pytest.approx(expected.confidence_interval.high, abs=1e-12)
    assert summary.mean == pytest.approx(0.475) and summary.std == pytest.approx(float(scores.std()))
    assert (summary.n, summary.seed, summary.confidence, summary.method, summary.n_resamples) == (10, 7, 0.9, "BCa", 999)
    assert summarize(scores, seed=7) == summarize(scores, seed=7)
    assert summarize(scores, seed=7) != summarize(scores, seed=8)
    assert str(summary) == f"0.475 [{summary.low:.3f}, {summary.high:.3f}]"
    assert nni.evaluation.summarize is summarize


def test_constant_scores_give_a_point_interval():
    summary = summarize([1.0] * 20)
    assert (summary.mean, summary.low, summary.high, summary.std) == (1.0, 1.0, 1.0, 0.0)
    assert summarize([0.3]).low == summarize([0.3]).high == 0.3


def test_paired_test_equals_scipy_and_finds_a_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.2, 60)
    b = a - 0.1 + rng.normal(0, 0.05, 60)
    result = paired_test(torch.from_numpy(a), b, n_resamples=999, seed=3)
    expected = stats.wilcoxon(a, b)
    assert result.statistic == pytest.approx(float(expected.statistic)) and result.p_value == pytest.approx(float(expected.pvalue))
    assert result.significant() and result.difference.low > 0 and result.difference.mean == pytest.approx(float(np.mean(a - b)))
    assert result.seed == 3 and result.n == 60
    # Two samples of the same distribution, unpaired noise: no difference found.
    same = paired_test(a, a + rng.normal(0, 0.05, 60), seed=0)
    assert not same.significant() and same.difference.low < 0 < same.difference.high
    identical = paired_test(a, a)
    assert (identical.p_value, identical.statistic, identical.difference.mean) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: summarize([]), "non-empty 1-D"),
        (lambda: summarize(np.zeros((3, 2))), "non-empty 1-D"),
        (lambda: summarize([0.1, float("nan")]), "NaN"),
        (lambda: summarize([0.1, 0.2], confidence=1.5), "confidence"),
        (lambda: summarize([0.1, 0.2], method="studentized"), "method must be one of"),
        (lambda: paired_test([0.1, 0.2], [0.1, 0.2, 0.3]), "same samples"),
    ],
)
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
