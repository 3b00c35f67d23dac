"""The tabular scorer's linear candidate: expansion, exact contributions, save/load, choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.risk.linear import LinearHead, cross_validate_linear
from dayzero.risk.scorer import RiskScorer


def _matrix(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 numeric (drives the label, some missing), column 1 category codes 0-2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    codes = rng.integers(0, 3, size=n).astype(float)
    y = (x + 0.5 * (codes == 2) + rng.normal(scale=0.5, size=n) > 0).astype(int)
    x[:5] = np.nan
    codes[5:8] = np.nan
    return np.column_stack([x, codes]), y


def test_contributions_add_up_to_the_log_odds_and_unseen_codes_are_zero():
    X, y = _matrix(200)
    head = LinearHead(categorical=[1], C=1.0).fit(X, y)
    contrib = head.contributions(X)
    assert contrib.shape == (200, 3)
    np.testing.assert_allclose(contrib.sum(axis=1), head.decision_function(X), atol=1e-10)
    assert head.coef_[0] > 0  # the driving numeric raises the label's odds
    unseen = np.array([[0.0, 7.0], [0.0, np.nan]])  # code 7 never seen: no category
    np.testing.assert_allclose(head.decision_function(unseen)[0], head.decision_function(unseen)[1])
    proba = head.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(np.isfinite(head.predict_proba(np.full((1, 2), np.nan))))


def test_json_round_trip_gives_identical_scores():
    X, y = _matrix(120, seed=1)
    head = LinearHead(categorical=[1], C=0.1).fit(X, y)
    again = LinearHead.from_json(head.to_json())
    np.testing.assert_array_equal(again.decision_function(X), head.decision_function(X))
    np.testing.assert_array_equal(again.contributions(X), head.contributions(X))


def test_cross_validation_picks_c_by_log_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = rng.integers(0, 2, size=120)  # pure noise: the strongest regularisation wins
    folds = [(np.arange(120) % 3 != f, np.arange(120) % 3 == f) for f in range(3)]
    folds = [(np.flatnonzero(a), np.flatnonzero(b)) for a, b in folds]
    result = cross_validate_linear(X, y, folds)
    assert result["C"] == 0.01 and len(result["fold_auc"]) == 3
    assert result["logloss"] == min(result["by_C"].values())


def _few_rows(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, size=n)
    job = rng.choice(["clerk", "nurse", "driver"], size=n)
    y = (income + rng.normal(scale=5, size=n) < 50).astype(int)
    return pd.DataFrame({"income": income, "job": job}), y


def test_the_default_learns_from_thirty_rows_where_the_trees_cannot():
    X, y = _few_rows(30)
    X_test, y_test = _few_rows(400, seed=1)
    trees = RiskScorer(linear=False, random_state=0).fit(X, y)
    default = RiskScorer(random_state=0).fit(X, y)
    assert trees.tabular_model_ == "gbm"
    assert np.ptp(trees.predict_pd(X_test)) == 0.0  # 20 rows a leaf: no split, a constant
    assert default.tabular_model_ == "linear"
    assert default.depth_selection_["chosen"] == "linear"
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y_test, default.predict_pd(X_test)) > 0.9
    reasons = default.explain(X_test.iloc[[int(np.argmin(X_test["income"]))]], top=1)
    assert reasons["field"].tolist() == ["income"] and reasons["contribution"].iloc[0] > 0
    assert reasons.attrs["method"].startswith("linear")
    assert "logistic regression" in default.describe()["summary"]


def test_a_linear_scorer_saves_and_loads(tmp_path):
    X, y = _few_rows(40)
    model = RiskScorer(random_state=0).fit(X, y)
    assert model.tabular_model_ == "linear"
    loaded = RiskScorer.load(model.save(tmp_path / "m"))
    assert loaded.tabular_model_ == "linear"
    np.testing.assert_array_equal(loaded.predict_pd(X), model.predict_pd(X))
    np.testing.assert_allclose(
        loaded.explain(X)["contribution"], model.explain(X)["contribution"], atol=1e-12
    )


@pytest.mark.parametrize(
    "params", [{"linear": False}, {"monotonic": {"income": -1}}], ids=["off", "monotonic"]
)
def test_no_linear_candidate_when_off_or_monotonic(params):
    X, y = _few_rows(60)
    model = RiskScorer(random_state=0, **params).fit(X, y)
    assert "linear" not in model.depth_selection_["candidates"]
    assert model.tabular_model_ == "gbm"


def test_a_category_with_thousands_of_values_expands_sparsely():
    # A name read as a category: 3,000 values, one non-zero per row, never a dense n x 3,000.
    rng = np.random.default_rng(0)
    n = 6000
    x = rng.normal(size=n)
    names = rng.integers(0, 3000, size=n).astype(float)
    y = (x + 0.8 * (names % 2) + rng.normal(scale=0.5, size=n) > 0.4).astype(int)
    X = np.column_stack([x, names])
    head = LinearHead(categorical=[1], C=1.0).fit(X, y)
    expanded = head._expand(X)
    assert expanded.format == "csr" and expanded.shape == (n, 1 + 3000)
    assert expanded.nnz <= 2 * n
    contrib = head.contributions(X[:50])
    np.testing.assert_allclose(contrib.sum(axis=1), head.decision_function(X[:50]), atol=1e-10)
    odd = head.coef_[1:][1::2].mean() - head.coef_[1:][0::2].mean()
    assert odd > 0.3  # the odd names' raised risk is learned through their one-hot columns
