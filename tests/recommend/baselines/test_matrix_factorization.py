"""Biased ALS matrix factorisation: fit quality, fold-in, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Interactions
from dayzero.recommend.baselines.matrix_factorization import MatrixFactorization


def test_learns_the_group_structure(catalogue, fitted):
    model = fitted("mf")
    frame = catalogue.dataset.interactions.frame
    pred = model.predict(frame["user"].tolist(), frame["item"].tolist())
    assert np.abs(pred - frame["value"].to_numpy()).mean() < 0.5
    for user in catalogue.users_a[:3]:
        top, _ = model.recommend(
            user, k=3, items=catalogue.action + catalogue.romance, filter_seen=False
        )
        assert set(top) <= set(catalogue.action)


def test_new_user_history_is_folded_in(catalogue, fitted):
    model = fitted("mf")
    likes_romance = Interactions.from_records(
        [("new", "r0", 5.0), ("new", "r1", 5.0), ("new", "a0", 1.0)]
    )
    pred = model.predict(["new", "new"], ["a3", "r3"], history=likes_romance)
    assert pred[1] > pred[0] + 1.0
    # the fold-in is the ridge solution with item factors fixed
    q = model.item_factors_[model.item_map_.to_internal(["r0", "r1", "a0"])]
    design = np.column_stack([np.ones(3), q[:, 1:]])
    target = np.array([5.0, 5.0, 1.0]) - model.global_mean_ - q[:, 0]
    solution = np.linalg.solve(
        design.T @ design + model.reg * np.eye(design.shape[1]), design.T @ target
    )
    np.testing.assert_allclose(model.user_vector("new", likes_romance), solution)


def test_unknown_item_gets_mean_plus_user_bias(catalogue, fitted):
    model = fitted("mf")
    user_bias = model.user_factors_[model.user_map_.to_internal(["ua0"])[0], 0]
    np.testing.assert_allclose(
        model.predict(["ua0", "nobody"], ["zz", "zz"]),
        [model.global_mean_ + user_bias, model.global_mean_],
    )


def test_deterministic_for_a_seed(catalogue):
    a = MatrixFactorization(factors=4, iterations=3, random_state=7).fit(catalogue.dataset)
    b = MatrixFactorization(factors=4, iterations=3, random_state=7).fit(catalogue.dataset)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_partial_fit_users_stores_the_folded_vector(catalogue):
    model = MatrixFactorization(factors=4, iterations=5, reg=1.0).fit(catalogue.dataset)
    history = Interactions.from_records([("late", "a0", 5.0), ("late", "r0", 1.0)])
    expected = model.user_vector("late", history)
    model.partial_fit_users(history)
    np.testing.assert_allclose(model.user_vector("late"), expected)


def test_bad_params():
    data = Dataset(Interactions.from_records([("u", "a", 1.0)]))
    with pytest.raises(ValueError, match="reg > 0"):
        MatrixFactorization(reg=0.0).fit(data)
