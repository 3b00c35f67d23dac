"""gbm: the LightGBM head, saved as LightGBM's model text and read back bit for bit."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pytest

from dayzero.risk.gbm import (
    FORMAT,
    GBMHead,
    booster_params,
    contributions,
    cross_validate,
    fit_booster,
    gbm_classifier,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def rows(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two numerics (one with NaN), a category code (column 2) and noise; all three matter."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.normal(size=n),
            rng.integers(0, 6, size=n).astype(float),
            rng.normal(size=n),
        ]
    )
    logit = 1.5 * x[:, 0] - x[:, 1] + np.where(np.isin(x[:, 2], [1, 4]), 1.5, -1.0)
    y = (logit + rng.normal(scale=0.5, size=n) > 0).astype(int)
    x[rng.random(n) < 0.15, 0] = np.nan
    return x, y


def probe() -> np.ndarray:
    """New rows: NaN, unseen category codes, values far outside the training range."""
    x, _ = rows(60, seed=1)
    x[:6, 0] = [np.nan, 1e6, -1e6, np.nan, 0.0, np.nan]
    x[:6, 2] = [7, 9, np.nan, 0, 5, -1]
    return x


def round_trip(head: GBMHead) -> GBMHead:
    return GBMHead.from_json(json.loads(json.dumps(head.to_json())))


def test_binary_head_with_nan_round_trips_bit_for_bit():
    x, y = rows()
    head = GBMHead.fit(x, y, max_iter=30, random_state=0)
    loaded = round_trip(head)
    for data in (x, probe()):
        np.testing.assert_array_equal(loaded.predict_proba(data), head.predict_proba(data))
    proba = head.predict_proba(probe())
    assert proba.shape == (60, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert loaded.n_iter_ == head.n_iter_ == 30 and loaded.n_features_in_ == 4
    # NaN is a value of its own to LightGBM, not an error and not the mean.
    assert not np.array_equal(
        head.predict_proba(np.array([[np.nan, 0, 1, 0]])),
        head.predict_proba(np.array([[np.nanmean(x[:, 0]), 0, 1, 0]])),
    )


def test_head_predicts_what_the_fitted_classifier_predicts():
    x, y = rows()
    classifier = gbm_classifier(max_iter=20, random_state=0).fit(x, y)
    head = GBMHead(classifier.booster_)
    np.testing.assert_array_equal(head.predict_proba(probe()), classifier.predict_proba(probe()))


def test_categorical_splits_survive_the_text_format():
    x, y = rows()
    classifier = gbm_classifier(max_iter=20, random_state=0)
    classifier.fit(x, y, categorical_feature=[2])
    head = GBMHead(classifier.booster_)
    loaded = round_trip(head)
    np.testing.assert_array_equal(loaded.predict_proba(probe()), head.predict_proba(probe()))
    trees = loaded.booster_.dump_model()["tree_info"]

    def categorical(node: dict) -> bool:
        if "split_feature" not in node:
            return False
        here = node["decision_type"] == "==" and node["split_feature"] == 2
        return here or categorical(node["left_child"]) or categorical(node["right_child"])

    assert any(categorical(tree["tree_structure"]) for tree in trees)


def test_monotonic_constraints_hold_after_load():
    x, y = rows()
    head = GBMHead.fit(x, y, max_iter=40, monotonic_cst=[1, -1, 0, 0], random_state=0)
    loaded = round_trip(head)
    grid = np.tile(probe()[:1], (50, 1))
    grid[:, 0] = np.linspace(-3, 3, 50)
    rising = loaded.predict_proba(grid)[:, 1]
    np.testing.assert_array_equal(rising, head.predict_proba(grid)[:, 1])
    assert np.all(np.diff(rising) >= 0) and rising[-1] > rising[0]
    grid = np.tile(probe()[:1], (50, 1))
    grid[:, 1] = np.linspace(-3, 3, 50)
    falling = loaded.predict_proba(grid)[:, 1]
    assert np.all(np.diff(falling) <= 0) and falling[-1] < falling[0]
    assert loaded.booster_.params["monotone_constraints"] == [1, -1, 0, 0]


def test_state_is_json_with_lightgbm_model_text():
    x, y = rows()
    state = GBMHead.fit(x, y, max_iter=5, random_state=0).to_json()
    assert state["format"] == FORMAT and state["lightgbm_version"] == lightgbm.__version__
    assert state["model"].startswith("tree\nversion=v4")
    assert json.loads(json.dumps(state)) == state


def test_parameters_map_onto_lightgbm():
    params = gbm_classifier(
        learning_rate=0.2,
        max_iter=7,
        max_depth=None,
        min_samples_leaf=4,
        monotonic_cst=np.array([1, 0, -1]),
        random_state=3,
    ).get_params()
    assert params["learning_rate"] == 0.2 and params["n_estimators"] == 7
    assert params["max_depth"] == -1 and params["num_leaves"] == 31
    assert params["min_child_samples"] == 4 and params["monotone_constraints"] == [1, 0, -1]
    assert params["random_state"] == 3 and params["deterministic"] is True
    assert gbm_classifier(max_depth=3).get_params()["max_depth"] == 3


def test_same_seed_same_trees():
    x, y = rows()
    first = GBMHead.fit(x, y, max_iter=15, random_state=0).to_json()["model"]
    assert GBMHead.fit(x, y, max_iter=15, random_state=0).to_json()["model"] == first


def test_older_or_foreign_state_is_refused():
    old = {"format": 1, "sklearn_version": "1.9.1", "node_layout": [["value", "<f8"]]}
    with pytest.raises(ValueError, match=r"HistGradientBoosting.*refit.*save it again"):
        GBMHead.from_json(old)
    with pytest.raises(ValueError, match="not a saved dayzero gbm head"):
        GBMHead.from_json({"format": "xgboost"})
    with pytest.raises(ValueError, match="not a saved dayzero gbm head"):
        GBMHead.from_json(None)


# ---- the native booster of the default RiskScorer: folds, rounds, TreeSHAP ---------------------


def _folds(y: np.ndarray, k: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(k, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def test_booster_params():
    params = booster_params(0.05, None, 20, [0, 1, 0], random_state=3)
    assert params["max_depth"] == -1 and params["min_child_samples"] == 20
    assert params["monotone_constraints"] == [0, 1, 0] and params["seed"] == 3
    assert "monotone_constraints" not in booster_params(monotonic_cst=[0, 0])
    assert booster_params()["num_threads"] == 1  # spinning threads on shared cores: one
    assert (
        booster_params(n_jobs=-1)["num_threads"] == 0
        and booster_params(n_jobs=2)["num_threads"] == 2
    )


def test_cross_validate_chooses_rounds_on_the_folds_and_reports_fold_auc():
    x, y = rows(400)
    folds = _folds(y)
    params = booster_params(0.1, 3, 5, random_state=0)
    chosen = cross_validate(x, y, folds, params, categorical=[2], max_rounds=300, patience=20)
    assert 1 <= chosen["rounds"] < 300 and len(chosen["fold_auc"]) == 3
    assert min(chosen["fold_auc"]) > 0.85
    fixed = cross_validate(x, y, folds, params, categorical=[2], rounds=5)
    assert fixed["rounds"] == 5 and fixed["logloss"] > chosen["logloss"]
    # The same folds and seed: the same answer.
    again = cross_validate(x, y, folds, params, categorical=[2], max_rounds=300, patience=20)
    assert again == chosen


def test_rounds_follow_log_loss_not_auc():
    """One clean binary split: AUC is perfect after one round, the PD is not."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(400, 1)).astype(float)
    y = (x[:, 0] == 1).astype(int)
    chosen = cross_validate(x, y, _folds(y), booster_params(0.1, 3, 5, random_state=0))
    assert chosen["rounds"] > 20 and min(chosen["fold_auc"]) == 1.0


def test_fit_booster_and_treeshap_contributions_add_up():
    x, y = rows(300)
    head = fit_booster(x, y, booster_params(0.1, 3, 5, random_state=0), rounds=30, categorical=[2])
    assert head.n_iter_ == 30
    shap = contributions(head, probe())
    assert shap.shape == (60, 5)
    p = head.predict_proba(probe())[:, 1]
    np.testing.assert_allclose(shap.sum(axis=1), np.log(p / (1 - p)), atol=1e-9)
    assert np.all(shap[:, -1] == shap[0, -1])  # the base value is the same for every row
    # Threads change the speed, never the answer.
    np.testing.assert_array_equal(head.predict_proba(probe(), n_jobs=-1)[:, 1], p)
    np.testing.assert_array_equal(contributions(head, probe(), n_jobs=2), shap)
    assert np.abs(shap[:, 3]).mean() < np.abs(shap[:, 0]).mean()  # noise matters least
