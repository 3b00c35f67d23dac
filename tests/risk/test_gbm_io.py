"""gbm_io: HistGradientBoostingClassifier to safetensors + JSON and back, bit-identical."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from dayzero.risk.gbm_io import GBMLayoutError, gbm_from_state, gbm_to_state, load_gbm, save_gbm

pytestmark = pytest.mark.usefixtures("one_thread")


def numeric_and_categorical(n: int = 300, n_classes: int = 2, seed: int = 0):
    """Two numeric columns (with NaN), two categorical codes (with NaN); both kinds matter."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.integers(0, 6, size=n).astype(float),  # categorical
            rng.normal(size=n),
            rng.integers(0, 4, size=n).astype(float),  # categorical
        ]
    )
    logit = x[:, 0] + np.where(np.isin(x[:, 1], [1, 4]), 1.5, -1.0) - 0.5 * x[:, 2]
    if n_classes == 2:
        y = (logit + rng.normal(scale=0.5, size=n) > 0).astype(int)
    else:
        y = np.digitize(logit + rng.normal(scale=0.5, size=n), [-1.0, 0.5])
    x[rng.random(n) < 0.1, 0] = np.nan
    x[rng.random(n) < 0.1, 1] = np.nan
    x[rng.random(n) < 0.05, 3] = np.nan
    return x, y


def probe(n: int = 60, seed: int = 1) -> np.ndarray:
    """New rows: unseen category codes (7, 9), NaN everywhere, values beyond training range."""
    x, _ = numeric_and_categorical(n, seed=seed)
    x[:5, 1] = [7, 9, np.nan, 0, 5]
    x[5:10, 0] = [np.nan, 1e6, -1e6, 0.0, np.nan]
    return x


def fit(x, y, **params) -> HistGradientBoostingClassifier:
    defaults = {"max_iter": 15, "max_depth": 3, "categorical_features": [1, 3], "random_state": 0}
    return HistGradientBoostingClassifier(**(defaults | params)).fit(x, y)


def round_trip(model, tmp_path) -> HistGradientBoostingClassifier:
    save_gbm(model, tmp_path / "gbm")
    return load_gbm(tmp_path / "gbm")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_is_bit_identical(n_classes, tmp_path) -> None:
    x, y = numeric_and_categorical(n_classes=n_classes)
    model = fit(x, y)
    loaded = round_trip(model, tmp_path)
    assert sorted(p.name for p in (tmp_path / "gbm").iterdir()) == ["gbm.json", "gbm.safetensors"]
    for rows in (x, probe()):
        np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
        np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.n_iter_ == model.n_iter_ and loaded.n_features_in_ == 4
    assert loaded.get_params() == model.get_params()
    # The categorical splits really are in the saved trees (not a numeric-only model).
    assert any(t.nodes["is_categorical"].any() for it in loaded._predictors for t in it)


def test_numeric_only_monotonic_and_string_labels(tmp_path) -> None:
    x, y = numeric_and_categorical()
    labels = np.where(y == 1, "bad", "good")
    model = fit(x, labels, categorical_features=None, monotonic_cst=np.array([1, 0, -1, 0]))
    loaded = round_trip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(probe()), model.predict_proba(probe()))
    assert loaded.predict(probe()[:3]).tolist() == model.predict(probe()[:3]).tolist()
    np.testing.assert_array_equal(loaded.monotonic_cst, [1, 0, -1, 0])


def test_dataframe_with_string_categories_from_dtype(tmp_path) -> None:
    x, y = numeric_and_categorical()
    frame = pd.DataFrame(
        {
            "income": x[:, 0],
            "purpose": pd.Categorical(
                np.where(
                    np.isnan(x[:, 1]),
                    None,
                    np.char.add("p", np.nan_to_num(x[:, 1]).astype(int).astype(str)),
                )
            ),
            "debt": x[:, 2],
        }
    )
    model = fit(frame, y, categorical_features="from_dtype")
    loaded = round_trip(model, tmp_path)
    new = frame.iloc[:20].copy()
    new["purpose"] = pd.Categorical(["p1", "p99", None, "p4"] * 5)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))
    assert loaded.feature_names_in_.tolist() == ["income", "purpose", "debt"]
    with pytest.raises(ValueError, match="missing"):
        loaded.predict_proba(frame.rename(columns={"debt": "loan"}))


def test_state_is_plain_arrays_and_json(tmp_path) -> None:
    x, y = numeric_and_categorical()
    model = fit(x, y)
    config, tensors = gbm_to_state(model)
    json.dumps(config)
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in tensors.values())
    n_nodes = sum(len(t.nodes) for it in model._predictors for t in it)
    assert tensors["gbm.nodes.value"].shape == (n_nodes,)
    assert tensors["gbm.nodes.feature_idx"].dtype == np.int64
    assert tensors["gbm.tree_offsets"][-1] == n_nodes
    assert not list((save_gbm(model, tmp_path / "m")).glob("*.pkl"))


def test_unknown_layout_is_refused(monkeypatch) -> None:
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )

    x, y = numeric_and_categorical()
    config, tensors = gbm_to_state(fit(x, y))
    changed = dict(config, node_layout=config["node_layout"][:-1])
    with pytest.raises(GBMLayoutError, match="layout"):
        gbm_from_state(changed, tensors)
    monkeypatch.delattr(BaseHistGradientBoosting, "_preprocess_X")
    with pytest.raises(GBMLayoutError, match="_preprocess_X"):
        gbm_from_state(config, tensors)
    with pytest.raises(ValueError, match="not a dayzero gbm state"):
        gbm_from_state({"format": 99}, tensors)


def test_bad_input(tmp_path) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="HistGradientBoostingClassifier"):
        gbm_to_state(LogisticRegression())
    with pytest.raises(NotFittedError):
        gbm_to_state(HistGradientBoostingClassifier())
    x, y = numeric_and_categorical()
    model = fit(x, y).set_params(scoring=_custom_scorer)
    with pytest.raises(TypeError, match=r"scoring=.* cannot be saved as JSON"):
        gbm_to_state(model)
    with pytest.raises(FileNotFoundError, match="save_gbm"):
        load_gbm(tmp_path / "nothing")


def _custom_scorer(estimator, X, y) -> float:
    """A callable parameter stands for any value JSON cannot hold."""
    return 0.0
