"""Tests for bootstrap and per-user-mean confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from dayzero.evaluate.intervals import bootstrap_ci, mean_ci
from dayzero.risk.metrics import log_loss, roc_auc


def test_bootstrap_of_two_values_spans_both():
    # A resampled mean of [0, 1] is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4: the 2.5 % and
    # 97.5 % percentiles of 2,000 resamples are 0 and 1.
    point, low, high = mean_ci([0.0, 1.0], n_resamples=2000)
    assert (point, low, high) == (0.5, 0.0, 1.0)


def test_bootstrap_constant_values_have_zero_width():
    assert mean_ci([0.7] * 5) == pytest.approx((0.7, 0.7, 0.7))


def test_bootstrap_resamples_aligned_arrays_together():
    a = np.arange(20.0)

    def still_aligned(x, y):
        return float(np.all(y == 2 * x))

    assert bootstrap_ci(still_aligned, a, 2 * a, n_resamples=50) == (1.0, 1.0, 1.0)


def test_bootstrap_is_deterministic_per_seed():
    values = np.random.default_rng(1).normal(size=50)
    first = mean_ci(values, random_state=3)
    assert mean_ci(values, random_state=3) == first
    assert mean_ci(values, random_state=4) != first
    point, low, high = first
    assert low < point < high
    assert point == pytest.approx(values.mean())


def test_bootstrap_on_error_skip_and_raise():
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    s = np.linspace(0, 1, 8)
    with pytest.raises(ValueError, match="both classes"):
        bootstrap_ci(roc_auc, y, s, n_resamples=200)
    point, low, high = bootstrap_ci(roc_auc, y, s, n_resamples=200, on_error="skip")
    assert point == 1.0 and low == 1.0 and high == 1.0


def test_bootstrap_is_scipys_percentile_bootstrap():
    values = np.random.default_rng(2).exponential(size=80)
    scipy = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=1000,
        method="percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval
    point, low, high = mean_ci(values, random_state=7)
    assert point == values.mean()
    assert (low, high) == pytest.approx((scipy.low, scipy.high), rel=1e-12)


def test_bootstrap_resamples_rows_of_two_dimensional_arrays():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=40)
    classes = rng.integers(0, 3, size=40)
    point, low, high = bootstrap_ci(log_loss, classes, proba, n_resamples=200)
    assert point == log_loss(classes, proba)
    assert low < point < high


def test_bootstrap_of_one_row_is_the_point():
    assert mean_ci([5.0]) == (5.0, 5.0, 5.0)


def test_bootstrap_skip_gives_up_when_most_resamples_fail():
    def distinct(minimum):
        def metric(v):
            # A resample of 20 rows holds 12.8 distinct ones on average.
            if len(np.unique(v)) < minimum:
                raise ValueError("too few distinct rows")
            return float(v.mean())

        return metric

    rows = np.arange(20.0)
    with pytest.raises(ValueError, match=r"failed on \d+ of 200 resamples"):
        bootstrap_ci(distinct(14), rows, n_resamples=200, on_error="skip")
    point, low, high = bootstrap_ci(distinct(11), rows, n_resamples=200, on_error="skip")
    assert point == 9.5 and low < point < high


def test_t_interval_known_value():
    # mean 2, sd 1, sem 1/sqrt(3), t(0.975, df=2) = 4.302652729696142
    mean, low, high = mean_ci([1.0, 2.0, 3.0], method="t")
    half = 4.302652729696142 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_ci([5.0], method="t") == (5.0, 5.0, 5.0)


def test_interval_bad_input():
    with pytest.raises(ValueError, match="values contains NaN"):
        mean_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="values is empty"):
        mean_ci([])
    with pytest.raises(ValueError, match="confidence must be in"):
        mean_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="method must be"):
        mean_ci([1.0, 2.0], method="bca")
    with pytest.raises(ValueError, match=r"arrays\[0\] has 2, arrays\[1\] has 3"):
        bootstrap_ci(roc_auc, [0, 1], [0.1, 0.2, 0.3])
