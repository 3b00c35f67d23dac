"""Known-answer tests for the classification and risk metrics (hand-computed in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from dayzero.risk import metrics as c


def test_roc_auc_and_gini_with_a_tie():
    # pairs (pos, neg): (.5, .5) tie = 1/2, (.5, .2) = 1, (.9, .5) = 1, (.9, .2) = 1 -> 3.5 / 4
    y, s = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]
    assert c.roc_auc(y, s) == pytest.approx(0.875)
    assert c.gini(y, s) == pytest.approx(0.75)
    assert c.roc_auc([False, True], [0.1, 0.9]) == 1.0


def test_roc_auc_agrees_with_scikit_learn_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # rounding makes ties
    assert c.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))


def test_roc_auc_errors():
    with pytest.raises(ValueError, match=r"both classes.*every label is 1"):
        c.roc_auc([1, 1, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"y_true must hold binary labels.*2\.0"):
        c.roc_auc([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="score contains NaN"):
        c.roc_auc([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match="y_true has 2, score has 3"):
        c.roc_auc([0, 1], [0.2, 0.3, 0.4])


def test_ks_statistic_known_value_and_threshold():
    # bads score .6, .9; goods .1, .4, .7. CDF gaps at t = .1, .4, .6, .7, .9:
    # |0 - 1/3|, |0 - 2/3|, |1/2 - 2/3|, |1/2 - 1|, |1 - 1| -> max 2/3 at t = .4
    y, s = [1, 0, 1, 0, 0], [0.9, 0.1, 0.6, 0.4, 0.7]
    ks = c.ks_statistic(y, s)
    assert ks.statistic == pytest.approx(2 / 3)
    assert ks.threshold == pytest.approx(0.4)
    assert ks.statistic == pytest.approx(stats.ks_2samp([0.9, 0.6], [0.1, 0.4, 0.7]).statistic)
    with pytest.raises(ValueError, match="both classes"):
        c.ks_statistic([0, 0], [1, 2])


def test_log_loss_binary_multiclass_and_clipping():
    # -(ln .8 + ln .6) / 2
    assert c.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # classes 0 and 2 picked: -(ln .7 + ln .8) / 2
    proba = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]
    assert c.log_loss([0, 2], proba) == pytest.approx(-(math.log(0.7) + math.log(0.8)) / 2)
    # a certain mistake costs -ln(eps), not infinity
    assert c.log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    with pytest.raises(ValueError, match="proba must be probabilities"):
        c.log_loss([1, 0], [1.2, 0.3])
    with pytest.raises(ValueError, match="sum to 1"):
        c.log_loss([0, 1], [[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"class indices 0\.\.1"):
        c.log_loss([0, 2], [[0.5, 0.5], [0.5, 0.5]])


def test_accuracy_and_macro_f1():
    assert c.accuracy(["pos", "neg", "neu"], ["pos", "neu", "neu"]) == pytest.approx(2 / 3)
    # a: tp 1 fp 0 fn 1 -> 2/3; b: tp 1 fp 2 fn 0 -> 2/4; c: tp 0 -> 0; mean = 7/18
    y_true, y_pred = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    assert c.macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    assert c.macro_f1(y_true, y_pred) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro")
    )
    # naming a class no row has adds an F1 of 0 to the mean
    assert c.macro_f1(y_true, y_pred, labels=["a", "b", "c", "d"]) == pytest.approx(
        (2 / 3 + 0.5) / 4
    )
    with pytest.raises(ValueError, match="y_pred contains a missing value"):
        c.accuracy(["a", "b"], ["a", None])


def test_label_metrics_refuse_mixed_or_continuous_labels():
    # The old hand-written versions compared anything with ==, e.g. 1.0 for these.
    with pytest.raises(ValueError, match="y_true and y_pred must hold class labels of one kind"):
        c.accuracy([0.5, 1.5], [0.5, 1.5])
    with pytest.raises(ValueError, match="not continuous values"):
        c.macro_f1(np.array([0.5, "a"], dtype=object), np.array([0.5, "a"], dtype=object))


def test_commodity_metrics_are_scikit_learn_on_random_data():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    labels = rng.choice(["neg", "neu", "pos"], 300)
    guess = rng.choice(["neg", "neu", "pos"], 300)
    assert c.roc_auc(y, p) == skm.roc_auc_score(y, p)
    assert c.log_loss(y, p) == skm.log_loss(y, p)
    assert c.brier_score(y, p) == skm.brier_score_loss(y, p)
    assert c.accuracy(labels, guess) == skm.accuracy_score(labels, guess)
    assert c.macro_f1(labels, guess) == skm.f1_score(labels, guess, average="macro")
    proba = rng.dirichlet(np.ones(3), 300)
    classes = rng.integers(0, 3, 300)
    assert c.log_loss(classes, proba) == pytest.approx(skm.log_loss(classes, proba), rel=1e-12)


def test_brier_score():
    # ((0.8 - 1)^2 + (0.4 - 0)^2) / 2
    assert c.brier_score([1, 0], [0.8, 0.4]) == pytest.approx(0.1)


def test_expected_calibration_error_uniform_and_quantile():
    y, p = [0, 1, 1, 1], [0.2, 0.4, 0.8, 0.8]
    # 2 bins: [0, .5): |0.5 - 0.3| * 2/4; [.5, 1]: |1 - 0.8| * 2/4 -> 0.2
    assert c.expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.2)
    # 10 bins: .2 -> |0 - .2|/4, .4 -> |1 - .4|/4, .8 -> |1 - .8| * 2/4 -> 0.05 + 0.15 + 0.1
    assert c.expected_calibration_error(y, p, n_bins=10) == pytest.approx(0.3)
    # quantile, 2 bins: edge at the median 0.25 -> {.1, .2} vs {.3, .4}
    # |0 - .15| * 1/2 + |1 - .35| * 1/2 = 0.4
    ece = c.expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 2, "quantile")
    assert ece == pytest.approx(0.4)
    assert c.expected_calibration_error([0, 1, 0, 1], [0.5] * 4, n_bins=10) == pytest.approx(0.0)
    # probability 1.0 falls in the last bin, not in an eleventh one
    assert c.expected_calibration_error([1], [1.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="strategy must be"):
        c.expected_calibration_error(y, p, strategy="kmeans")


def test_psi_quantile_uniform_and_categorical():
    shifted = 0.25 * math.log(1.5) + 0.25 * math.log(2)  # (.75-.5) ln(.75/.5) + (.25-.5) ln(.25/.5)
    # quantile, 2 bins from 1..10: edge at the median 5.5 -> expected .5/.5; actual .75/.25
    expected = np.arange(1, 11)
    assert c.psi(expected, [1, 2, 3, 7], bins=2) == pytest.approx(shifted)
    # uniform, 2 bins over [0, 10]: edge 5, right-closed so 5 is in the low bin
    assert c.psi([0, 1, 9, 10], [5, 6, 7, 8], bins=2, method="uniform") == pytest.approx(shifted)
    assert c.psi(["a", "a", "b", "b"], ["a", "b", "b", "b"], method="categorical") == (
        pytest.approx(shifted)
    )
    assert c.psi(expected, expected) == pytest.approx(0.0)


def test_psi_empty_bins_use_epsilon():
    # every actual value above the expected range -> low bin empty: share 1e-4 instead of 0
    value = c.psi(np.arange(1, 11), [100, 100], bins=2)
    assert value == pytest.approx((1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(2))
    # a category the reference never had
    value = c.psi(["a", "a"], ["a", "b"], method="categorical", eps=1e-3)
    assert value == pytest.approx((0.5 - 1) * math.log(0.5) + (0.5 - 1e-3) * math.log(0.5 / 1e-3))
    with pytest.raises(ValueError, match="method must be"):
        c.psi([1, 2], [1, 2], method="kde")
    with pytest.raises(ValueError, match="expected is empty"):
        c.psi([], [1, 2])
