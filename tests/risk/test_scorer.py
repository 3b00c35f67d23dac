"""RiskScorer: scikit-learn contract, known-answer reason codes, bad input, PD semantics,
save/load of every head (logistic, gbm, fine-tuned encoder)."""

from __future__ import annotations

import importlib.util
import json
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from dayzero.risk.scorer import RiskScorer, UnknownCategoryWarning
from tests.tiny_bert import build_tiny_bert

# Built at import: parametrize_with_checks needs the estimator when tests are collected.
TINY = str(build_tiny_bert(tempfile.mkdtemp(prefix="risk-tiny-bert-")))


pytestmark = pytest.mark.usefixtures("one_thread")

EXPECTED_FAILURES: dict[str, str] = {}
_NEAR_HALF = (
    "a tiny random BERT fine-tuned for one epoch on numbers rendered as text stays near p = 0.5: "
    "accuracy > 0.83 on blobs and equal labels across refits on other containers are out of reach"
)
ENCODER_EXPECTED_FAILURES = {
    "check_classifiers_train": _NEAR_HALF,
    "check_classifier_data_not_an_array": _NEAR_HALF,
}


def _expected(estimator):
    return ENCODER_EXPECTED_FAILURES if estimator.head == "encoder" else EXPECTED_FAILURES


@parametrize_with_checks(
    [RiskScorer(encoder=TINY, fusion=True, max_length=64, random_state=0)],
    expected_failed_checks=_expected,
)
def test_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownCategoryWarning)
        check(estimator)


@pytest.mark.slow  # ~60 fits of a LoRA-tuned (tiny) encoder
@parametrize_with_checks(
    [
        RiskScorer(
            encoder=TINY,
            head="encoder",
            strategy_params={"r": 2},
            epochs=1,
            lr=1e-2,
            max_length=32,
            random_state=0,
        )
    ],
    expected_failed_checks=_expected,
)
def test_sklearn_contract_encoder_head(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def applicants(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Only the checking account decides default; age and purpose are noise."""
    rng = np.random.default_rng(seed)
    checking = rng.choice(["< 0 DM", "no checking account", ">= 200 DM"], size=n)
    frame = pd.DataFrame(
        {
            "checking_account": checking,
            "purpose": rng.choice(["car", "furniture", "education"], size=n),
            "age": rng.integers(20, 70, size=n),
        }
    )
    return frame, (checking == "< 0 DM").astype(int)


@pytest.fixture(scope="module")
def fitted() -> tuple[RiskScorer, pd.DataFrame, np.ndarray]:
    X, y = applicants()
    return RiskScorer(encoder=TINY, fusion=True, C=10.0, random_state=0).fit(X, y), X, y


def test_fit_predict_and_sklearn_score(fitted):
    model, X, y = fitted
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.score(X, y) == pytest.approx(np.mean(model.predict(X) == y))
    assert model.score(X, y) > 0.95
    assert clone(model).get_params()["fusion"] is True


def test_points_follow_pdo_scaling(fitted):
    model, X, _ = fitted
    p = model.predict_proba(X)[:, 1]
    points = model.points(X)
    np.testing.assert_allclose(points, 600 + 20 / np.log(2) * (np.log((1 - p) / p) - np.log(50)))
    assert points[p.argmax()] == points.min()


def test_reason_codes_find_the_deciding_field(fitted):
    model, X, y = fitted
    bad_rows = np.flatnonzero(y == 1)[:5]
    reasons = model.explain(X.iloc[bad_rows], top=3)
    first = reasons[reasons["rank"] == 1]
    assert (first["field"] == "checking_account").all()
    assert (first["contribution"] > 0).all()
    assert set(reasons.columns) == {
        "row",
        "rank",
        "field",
        "value",
        "contribution",
        "points",
        "unknown",
        "reason",
    }
    assert first["reason"].str.fullmatch(r"checking account is .* \(raises risk\)").all()


def test_explain_replaces_the_value_by_its_reference(fitted):
    model, X, y = fitted
    row = X.iloc[[int(np.flatnonzero(y == 1)[0])]]
    reasons = model.explain(row, top=3)
    assert reasons.attrs["method"].startswith("value replaced by the training reference")
    for field, contribution in zip(reasons["field"], reasons["contribution"], strict=True):
        replaced = row.astype(object).copy()
        replaced[field] = model.reference_[field]
        logit = model.decision_function(row)[0] - model.decision_function(replaced)[0]
        assert contribution == pytest.approx(logit, abs=1e-5)
    # A row equal to the reference everywhere moves nothing: no reasons at all.
    typical = pd.DataFrame([{c: model.reference_[c] for c in X.columns}])
    assert model.explain(typical, top=3).empty


def test_unknown_category_is_flagged_not_nan(fitted):
    model, X, _ = fitted
    new = X.iloc[[0]].copy()
    new["purpose"] = "space travel"
    with pytest.warns(UnknownCategoryWarning, match="purpose"):
        p = model.predict_proba(new)
    assert np.isfinite(p).all()
    table = model.unknown_values(new)
    assert table.to_dict(orient="records") == [
        {"row": 0, "column": "purpose", "value": "space travel"}
    ]
    assert "The purpose is unknown." in model._texts(new)[0]
    reasons = model.explain(new, top=3)
    assert reasons.loc[reasons["field"] == "purpose", "unknown"].all()


def test_missing_field_is_skipped(fitted):
    model, X, _ = fitted
    new = X.iloc[[0]].astype(object).copy()
    new["age"] = None
    assert "age" not in model._texts(new)[0]
    assert np.isfinite(model.points(new)).all()


def test_wrong_type_names_column(fitted):
    model, X, _ = fitted
    new = X.iloc[[0]].astype(object).copy()
    new["age"] = "forty"
    with pytest.raises(TypeError, match="'age' must be numeric"):
        model.predict_proba(new)


def test_columns_must_match_training(fitted):
    model, X, _ = fitted
    new = X.drop(columns=["age"]).assign(income=1)
    with pytest.raises(ValueError, match=r"missing \['age'\], unexpected \['income'\]"):
        model.predict_proba(new)


def test_gbm_head_with_monotonic_constraint():
    X, y = applicants(200)
    model = RiskScorer(
        encoder=TINY, head="gbm", fusion=True, monotonic={"age": -1}, max_iter=20, random_state=0
    ).fit(X, y)
    grid = pd.concat([X.iloc[[0]]] * 5, ignore_index=True)
    grid["age"] = [20, 30, 40, 50, 60]
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) <= 1e-12)
    folder = model.save(tempfile.mkdtemp())
    loaded = RiskScorer.load(folder)
    # The booster comes back from LightGBM's model text in the JSON, bit for bit.
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_proba(grid), model.predict_proba(grid))
    assert np.all(np.diff(loaded.predict_proba(grid)[:, 1]) <= 1e-12)
    assert loaded.monotonic == {"age": -1} and loaded.n_iter_ == model.n_iter_ == 20
    assert not list(folder.glob("*.pkl"))
    with pytest.raises(ValueError, match="numeric columns"):
        RiskScorer(encoder=TINY, head="gbm", fusion=True, monotonic={"purpose": 1}).fit(X, y)
    with pytest.raises(ValueError, match="head='gbm' with fusion=True"):
        RiskScorer(encoder=TINY, head="logistic", fusion=True, monotonic={"age": 1}).fit(X, y)


def test_gbm_head_save_load_with_categories_and_missing_values(tmp_path):
    X, y = applicants(200)
    X["age"] = X["age"].astype(float)
    X.loc[::7, "age"] = np.nan
    X.loc[::11, "purpose"] = None
    model = RiskScorer(
        encoder=TINY, head="gbm", fusion=True, max_iter=15, max_depth=None, random_state=0
    ).fit(X, y)
    folder = model.save(tmp_path / "gbm")
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.html",
        "card.json",
        "dayzero.json",
        "weights.safetensors",
    ]
    state = json.loads((folder / "dayzero.json").read_text())["state"]
    assert state["head_state"]["model"].startswith("tree\nversion=v4")
    loaded = RiskScorer.load(folder)
    new = X.iloc[:6].copy()
    new["purpose"] = ["car", "boat", None, "education", "car", "plane"]  # unseen: "unknown"
    new["age"] = [np.nan, 18.0, 99.0, 40.0, np.nan, 30.0]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    with pytest.warns(UnknownCategoryWarning):
        np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))
    assert model.score(X, y) > 0.9 and loaded.n_iter_ == 15


def test_gbm_folder_of_the_histgradientboosting_head_is_refused(tmp_path):
    X, y = applicants(60)
    folder = RiskScorer(encoder=TINY, head="gbm", max_iter=3).fit(X, y).save(tmp_path / "m")
    document = json.loads((folder / "dayzero.json").read_text())
    # What dayzero.risk.gbm_io wrote (its trees went to the safetensors file).
    document["state"]["head_state"] = {"format": 1, "sklearn_version": "1.9", "node_layout": []}
    (folder / "dayzero.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"HistGradientBoosting.*refit RiskScorer\(head='gbm'\)"):
        RiskScorer.load(folder)


def test_text_columns_and_sentiment():
    X, y = applicants(60)
    X["note"] = np.where(y == 1, "money trouble", "good job")
    model = RiskScorer(
        encoder=TINY,
        text_columns=["note"],
        fusion=True,
        sentiment=lambda texts: [1.0 if "good" in t else 0.0 for t in texts],
        random_state=0,
    ).fit(X, y)
    assert "The note is good job." in model._texts(X.iloc[[int(np.argmin(y))]])[0]
    assert model.explain(X.iloc[[0]], top=4)["field"].isin(X.columns).all()
    with pytest.raises(
        TypeError, match=r"sentiment is a function.*TextClassifier or TextRegressor"
    ):
        model.save(tempfile.mkdtemp())


def test_save_load_round_trip(fitted, tmp_path):
    model, X, _ = fitted
    model.save(tmp_path / "m")
    loaded = RiskScorer.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-12)
    assert not list((tmp_path / "m").glob("*.pkl"))
    with pytest.raises(ValueError, match=r"nothing does not exist"):
        RiskScorer.load(tmp_path / "nothing")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "risk_scorer.json").write_text("{}")  # what dayzero 0.1 wrote
    with pytest.raises(ValueError, match=r"RiskScorer saved by dayzero 0\.1.*fit it again"):
        RiskScorer.load(tmp_path / "old")


def test_bad_params():
    X, y = applicants(20)
    with pytest.raises(ValueError, match="head must be one of"):
        RiskScorer(encoder=TINY, head="svm").fit(X, y)
    with pytest.raises(ValueError, match="pdo"):
        RiskScorer(encoder=TINY, pdo=0).fit(X, y)
    with pytest.raises(ValueError, match="text_columns"):
        RiskScorer(encoder=TINY, text_columns=["nope"]).fit(X, y)


def test_report_from_model(fitted, tmp_path):
    model, X, y = fitted
    report = model.report(X, y, reference=X)
    assert report.auc > 0.95 and report.score_psi == pytest.approx(0.0)
    assert set(report.feature_psi) == set(X.columns)
    assert report.to_html(tmp_path / "r.html").is_file()


class _Sentiment:
    """Stands in for a fitted TextClassifier: predict_proba over texts, last column positive."""

    def predict_proba(self, texts):
        positive = np.array([1.0 if "good" in t else 0.0 for t in texts])
        return np.column_stack([1 - positive, positive])


def test_sentiment_from_a_classifier_object():
    X, y = applicants(60)
    X["note"] = np.where(y == 1, "money trouble", "good job")
    model = RiskScorer(
        encoder=TINY, text_columns=["note"], fusion=True, sentiment=_Sentiment(), random_state=0
    ).fit(X, y)
    assert model.sentiment_mean_ == pytest.approx(np.mean(y == 0))
    assert np.isfinite(model.points(X.assign(note=[None] * len(X)))).all()


@pytest.mark.parametrize("kind", ["classifier", "regressor", "row-text"])
def test_a_scorer_with_a_text_sentiment_model_saves_and_loads(kind, tmp_path):
    from dayzero.risk.text_classifier import TextClassifier
    from dayzero.risk.text_regressor import TextRegressor

    notes = ["good job", "great income", "money trouble", "bad debt"] * 3
    if kind == "regressor":
        sentiment = TextRegressor(features="tfidf", random_state=0)
        sentiment.fit(notes, [1.0, 0.8, -0.9, -1.0] * 3)
    else:
        sentiment = TextClassifier(features="tfidf", random_state=0)
        sentiment.fit(notes, ["pos", "pos", "neg", "neg"] * 3)
    X, y = applicants(80)
    rng = np.random.default_rng(0)
    X["note"] = [f"{rng.choice(notes)} {i}" for i in range(len(X))]
    params = {"text_selection": "always", "cv": 2, "text_components": 2}
    if kind == "row-text":
        params = {"encoder": TINY, "fusion": True, "max_length": 32}
    model = RiskScorer(text_columns=["note"], sentiment=sentiment, random_state=0, **params).fit(
        X, y
    )
    if kind != "row-text":
        assert model.text_selection_["selected"] == ["note"]
    folder = model.save(tmp_path / "m")
    assert (folder / "sentiment" / "dayzero.json").is_file()
    loaded = RiskScorer.load(folder)
    assert type(loaded.sentiment) is type(sentiment)
    fresh = X.assign(note=["bad debt again", "good job again"] * 40)
    np.testing.assert_allclose(loaded.predict_pd(fresh), model.predict_pd(fresh), atol=1e-9)


def test_clone_keeps_a_fitted_sentiment_model():
    from dayzero.risk.text_classifier import TextClassifier

    notes = ["good job", "great income", "money trouble", "bad debt"] * 3
    moods = ["pos", "pos", "neg", "neg"] * 3
    sentiment = TextClassifier(encoder=TINY, max_length=16, random_state=0).fit(notes, moods)
    X, y = applicants(60)
    X["note"] = np.where(y == 1, "money trouble", "good job")
    model = RiskScorer(
        encoder=TINY, text_columns=["note"], fusion=True, sentiment=sentiment, random_state=0
    ).fit(X, y)
    copy = clone(model)
    # a pretrained component, never fitted by the scorer: shared, not replaced by a blank copy
    assert copy.sentiment is sentiment and not hasattr(copy, "head_")
    assert copy.get_params(deep=True) == copy.get_params(deep=False)
    np.testing.assert_array_equal(copy.fit(X, y).predict_pd(X), model.predict_pd(X))
    assert clone(model, safe=False).sentiment is sentiment
    assert clone(RiskScorer(sentiment=None)).sentiment is None
    with sklearn.config_context(enable_metadata_routing=True):
        routed = RiskScorer(sentiment=sentiment).set_score_request(sample_weight=True)
        assert clone(routed).get_metadata_routing().score.requests == {"sample_weight": True}


# ---- probability of default = probability of positive_label ------------------------------------


def test_positive_label_picks_the_pd_column():
    X, y = applicants(80)
    labels = np.where(y == 1, "bad", "good")  # sorted: ["bad", "good"]; default is the smaller
    model = RiskScorer(encoder=TINY, fusion=True, C=10.0, positive_label="bad", random_state=0)
    model.fit(X, labels)
    assert model.classes_.tolist() == ["bad", "good"] and model.positive_label_ == "bad"
    proba = model.predict_proba(X)
    np.testing.assert_allclose(model.predict_pd(X), proba[:, 0])
    np.testing.assert_allclose(model.points(X), model.scale.points(proba[:, 0]))
    assert model.predict_pd(X)[y == 1].mean() > model.predict_pd(X)[y == 0].mean()
    first = model.explain(X.iloc[np.flatnonzero(y == 1)[:3]], top=1)
    assert (first["field"] == "checking_account").all() and (first["contribution"] > 0).all()
    assert model.report(X, labels).auc > 0.95
    # The same data coded 1 = default, without positive_label: the same PD.
    coded = RiskScorer(encoder=TINY, fusion=True, C=10.0, random_state=0).fit(X, y)
    assert coded.positive_label_ == 1
    np.testing.assert_allclose(coded.predict_pd(X), model.predict_pd(X), atol=1e-10)


def test_positive_label_survives_save_load(tmp_path):
    X, y = applicants(60)
    labels = np.where(y == 1, "bad", "good")
    model = RiskScorer(encoder=TINY, positive_label="bad", random_state=0).fit(X, labels)
    loaded = RiskScorer.load(model.save(tmp_path / "m"))
    assert loaded.positive_label_ == "bad"
    np.testing.assert_allclose(loaded.predict_pd(X), model.predict_pd(X), atol=1e-12)


def test_target_must_be_binary_and_positive_label_known():
    X, y = applicants(30)
    with pytest.raises(ValueError, match=r"binary target .* 3 classes .* map y to two labels"):
        RiskScorer(encoder=TINY).fit(X, np.arange(30) % 3)
    with pytest.raises(
        ValueError, match=r"positive_label='default' is not a label of y .* \[0, 1\]"
    ):
        RiskScorer(encoder=TINY, positive_label="default").fit(X, y)


# ---- head="encoder": the fine-tuned encoder scores ---------------------------------------------


@pytest.fixture(scope="module")
def encoder_head() -> tuple[RiskScorer, pd.DataFrame, np.ndarray]:
    X, y = applicants(48)
    model = RiskScorer(
        encoder=TINY,
        head="encoder",
        strategy="lora",
        strategy_params={"r": 4},
        C=100.0,
        epochs=4,
        lr=1e-2,
        batch_size=8,
        max_length=64,
        random_state=0,
    )
    return model.fit(X, y), X, y


def test_encoder_head_learns_and_scores(encoder_head):
    from dayzero.risk.text_classifier import TextClassifier

    model, X, y = encoder_head
    assert isinstance(model.head_, TextClassifier)
    assert model.head_.strategy_config_.name == "lora" and model.n_iter_ == 4
    losses = model.head_.history_["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()
    assert model.report(X, y).auc > 0.9
    assert np.isfinite(model.points(X)).all()


def test_encoder_head_explain_replaces_the_value_by_its_reference(encoder_head):
    model, X, y = encoder_head
    row = X.iloc[[int(np.flatnonzero(y == 1)[0])]]
    reasons = model.explain(row, top=3)
    assert 1 <= len(reasons) <= 3 and reasons["contribution"].is_monotonic_decreasing
    # A value equal to its reference (the training mode / median) changes nothing: not listed.
    equal = [c for c in X.columns if model.reference_[c] == row[c].iloc[0]]
    assert not set(reasons["field"]) & set(equal)
    field = reasons["field"].iloc[0]
    replaced = row.astype(object).copy()
    replaced[field] = model.reference_[field]
    logit = model.decision_function(row)[0] - model.decision_function(replaced)[0]
    assert reasons["contribution"].iloc[0] == pytest.approx(logit, abs=1e-5)


def test_encoder_head_save_load(encoder_head, tmp_path):
    model, X, _ = encoder_head
    folder = model.save(tmp_path / "enc")
    assert (folder / "head" / "encoder" / "adapter_model.safetensors").is_file()
    loaded = RiskScorer.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-5)
    assert not list(folder.rglob("*.pkl"))


def test_encoder_head_bad_params():
    X, y = applicants(20)
    with pytest.raises(ValueError, match=r"fusion=True .* need head='logistic'"):
        RiskScorer(encoder=TINY, head="encoder", fusion=True).fit(X, y)
    with pytest.raises(ValueError, match="fine-tunes the encoder"):
        RiskScorer(encoder=TINY, head="encoder", strategy="frozen").fit(X, y)


def test_row_with_every_field_missing_is_scored():
    X, y = applicants(40)
    model = RiskScorer(encoder=TINY, random_state=0).fit(X, y)
    empty = pd.DataFrame({c: [None] for c in X.columns})
    assert model._texts(empty) == ["No information is given."]
    assert np.isfinite(model.predict_pd(empty)).all()


# ---- the default: LightGBM on the table, free text only when cross-validation keeps it ---------


@parametrize_with_checks([RiskScorer(random_state=0)])
def test_sklearn_contract_default(estimator, check):
    check(estimator)


def coded_applicants(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``status`` (coded 1 = on time, 2 = late) decides default; ``region`` is constant (a
    neutral value) and ``income`` is noise."""
    rng = np.random.default_rng(seed)
    status = rng.choice([1, 2], size=n)
    frame = pd.DataFrame(
        {
            "status": status,
            "region": ["north"] * n,
            "income": rng.normal(3000, 500, size=n).round(),
        }
    )
    flip = rng.random(n) < 0.05
    return frame, np.where(flip, status == 1, status == 2).astype(int)


LABELS = {"status": {1: "on time", 2: "late"}, "income": "monthly income"}


@pytest.fixture(scope="module")
def tabular_model() -> tuple[RiskScorer, pd.DataFrame, np.ndarray]:
    X, y = coded_applicants()
    # The trees' reason codes and depth choice are the point here (the linear candidate has its
    # own tests in test_linear.py).
    return RiskScorer(labels=LABELS, random_state=0, linear=False).fit(X, y), X, y


def _no_encoder(monkeypatch):
    """Any attempt to build or reach a text encoder fails the test."""
    import dayzero.risk.scorer as scorer_module
    import dayzero.text.encoder as encoder_module

    def refuse(*args, **kwargs):
        raise AssertionError("a TextEncoder was constructed")

    monkeypatch.setattr(encoder_module.TextEncoder, "__init__", refuse)
    monkeypatch.setattr(scorer_module, "_ENCODERS", {})
    monkeypatch.setattr(scorer_module, "_MEMO", {})


def test_default_without_text_never_constructs_an_encoder(monkeypatch, tmp_path):
    _no_encoder(monkeypatch)
    X, y = coded_applicants(200)
    model = RiskScorer(encoder="no/such-model", random_state=0).fit(X, y)
    assert model.representation_ == "tabular" and model.text_columns_ == []
    assert model.text_selection_["reason"] == "no free-text columns: the tabular model alone"
    assert model.report(X, y).auc > 0.9
    assert np.isfinite(model.points(X)).all() and len(model.explain(X.iloc[:3]))
    loaded = RiskScorer.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_pd(X), model.predict_pd(X))


def test_tabular_reason_codes_are_value_level(tabular_model):
    model, X, _ = tabular_model
    assert model.categorical_columns_ == ["status", "region"]  # value labels make it categorical
    reasons = model.explain(X, top=3)
    assert reasons.attrs["method"].startswith("TreeSHAP")
    first = reasons[reasons["rank"] == 1].set_index("row")
    late = np.flatnonzero(X["status"] == 2)
    on_time = np.flatnonzero(X["status"] == 1)
    # The deciding value is the first reason, with the sign of its value, worded with its label.
    assert (first.loc[late, "field"] == "status").all()
    assert (first.loc[late, "contribution"] > 0.5).all()
    assert (first.loc[late, "reason"] == "status is late (raises risk)").all()
    status = reasons[reasons["field"] == "status"].set_index("row")
    assert (status.loc[on_time, "contribution"] < -0.5).all()
    assert (status.loc[on_time, "reason"] == "status is on time (lowers risk)").all()
    # A value that moves nothing (a constant column) is never listed.
    assert "region" not in set(reasons["field"])
    assert (reasons["contribution"].abs() > 0).all()
    income = reasons[reasons["field"] == "income"]
    assert income["reason"].str.match(r"monthly income is [\d,]+ \((raises|lowers) risk\)").all()


def test_tabular_contributions_add_up_to_the_log_odds(tabular_model):
    model, X, _ = tabular_model
    reasons = model.explain(X.iloc[:20], top=len(X.columns))
    total = reasons.groupby("row")["contribution"].sum().reindex(range(20), fill_value=0.0)
    np.testing.assert_allclose(
        total.to_numpy() + reasons.attrs["base_logit"], model.decision_function(X.iloc[:20])
    )
    points = reasons.groupby("row")["points"].sum().reindex(range(20), fill_value=0.0)
    np.testing.assert_allclose(points, -model.scale.factor * total)


def test_tabular_unknown_and_missing_values(tabular_model):
    model, X, _ = tabular_model
    new = X.iloc[:3].astype(object).copy()
    new["status"] = [3, None, 2]
    new["income"] = [None, np.nan, 2500.0]
    with pytest.warns(UnknownCategoryWarning, match="status"):
        p = model.predict_pd(new)
    assert np.isfinite(p).all()
    assert model.unknown_values(new).to_dict(orient="records") == [
        {"row": 0, "column": "status", "value": 3}
    ]
    reasons = model.explain(new, top=3)
    row0 = reasons[(reasons["row"] == 0) & (reasons["field"] == "status")]
    assert row0.empty or (row0["unknown"].all() and "unseen category" in row0["reason"].iloc[0])
    with pytest.raises(TypeError, match="'income' must be numeric"):
        model.predict_pd(X.iloc[:1].assign(income="a lot"))


def test_tabular_monotonic_constraint():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"utilisation": rng.random(500), "age": rng.integers(20, 70, size=500)})
    y = (rng.random(500) < 0.2 + 0.6 * X["utilisation"]).astype(int)
    model = RiskScorer(monotonic={"utilisation": 1}, random_state=0).fit(X, y)
    grid = pd.DataFrame({"utilisation": np.linspace(0, 1, 21), "age": 40})
    assert np.all(np.diff(model.predict_pd(grid)) >= -1e-12)
    with pytest.raises(ValueError, match="numeric columns"):
        RiskScorer(monotonic={"nope": 1}).fit(X, y)


def test_rounds_are_chosen_on_the_folds_and_recorded(tabular_model):
    model, _, _ = tabular_model
    selection = model.text_selection_
    assert selection["folds"] == 5 and len(selection["auc_tabular"]) == 5
    assert model.n_iter_ >= 1
    fixed = RiskScorer(max_iter=7, random_state=0).fit(*coded_applicants(200))
    assert fixed.n_iter_ == 7


def test_tabular_clone_and_bad_params():
    X, y = coded_applicants(100)
    assert clone(RiskScorer(labels=LABELS)).get_params()["labels"] == LABELS
    with pytest.raises(ValueError, match="representation='row-text'"):
        RiskScorer(representation="tabular", head="gbm").fit(X, y)
    with pytest.raises(ValueError, match="representation must be one of"):
        RiskScorer(representation="sql").fit(X, y)
    with pytest.raises(ValueError, match=r"labels name columns \['SEX'\]"):
        RiskScorer(labels={"SEX": {1: "male"}}).fit(X, y)
    with pytest.raises(TypeError, match=r"labels\['status'\] must be a field name"):
        RiskScorer(labels={"status": 3}).fit(X, y)


def test_too_few_rows_of_a_class_for_folds():
    X, y = coded_applicants(30)
    y = np.zeros(30, dtype=int)
    y[0] = 1
    model = RiskScorer(random_state=0).fit(X, y)
    assert model.text_selection_["folds"] == 0 and "too few rows" in model.text_selection_["reason"]
    assert np.isfinite(model.predict_pd(X)).all()


# ---- free-text columns on the tabular path --------------------------------------------------

_BAD_WORDS = ["bad", "debt", "default", "money", "risk"]
_GOOD_WORDS = ["good", "job", "income", "bank", "profit"]
_FILLER = ["the", "a", "city", "new", "old", "family", "music", "food"]


def text_applicants(n: int = 300, signal: bool = True, seed: int = 0):
    """``note`` says good or bad things; with ``signal`` that decides default, else the label
    is a coin flip. ``age`` is noise either way."""
    rng = np.random.default_rng(seed)
    bad = rng.random(n) < 0.4
    notes = []
    for is_bad in bad:
        words = list(rng.choice(_BAD_WORDS if is_bad else _GOOD_WORDS, size=2, replace=False))
        words += list(rng.choice(_FILLER, size=2, replace=False))
        notes.append(" ".join(rng.permutation(words)))
    X = pd.DataFrame({"age": rng.integers(20, 70, size=n), "note": notes})
    y = bad if signal else rng.random(n) < 0.4
    return X, y.astype(int)


def test_text_features_are_kept_when_the_text_carries_the_signal():
    X, y = text_applicants(signal=True)
    model = RiskScorer(encoder=TINY, text_components=4, random_state=0).fit(X, y)
    assert model.text_columns_ == ["note"]  # detected: many distinct sentences
    selection = model.text_selection_
    assert selection["selected"] == ["note"] and selection["candidates"]["note"]["selected"]
    assert selection["candidates"]["note"]["gain"] > selection["candidates"]["note"]["se"]
    assert "'note' kept" in model.describe()["summary"]
    assert model.report(X, y).auc > 0.9
    first = model.explain(X.iloc[np.flatnonzero(y == 1)[:5]], top=1)
    assert (first["field"] == "note").all()
    assert first["reason"].str.match(r'note is ".*" \(raises risk\)').all()


def test_text_features_are_dropped_when_the_text_is_noise():
    X, y = text_applicants(signal=False)
    model = RiskScorer(encoder=TINY, text_components=4, random_state=0).fit(X, y)
    selection = model.text_selection_
    assert selection["columns"] == ["note"] and selection["selected"] == []
    assert "'note' left out" in selection["reason"]
    assert model.feature_columns_ == ["age"] and model.reducers_ == {}
    forced = RiskScorer(encoder=TINY, text_components=4, text_selection="always", random_state=0)
    forced.fit(X, y)
    assert forced.text_selection_["selected"] == ["note"] and forced.feature_columns_[0] == "age"
    assert forced.text_selection_["candidates"]["note"]["gain"] < 0.05
    with pytest.raises(ValueError, match="text_selection must be one of"):
        RiskScorer(text_selection="sometimes").fit(X, y)


def test_text_columns_named_or_none():
    X, y = text_applicants(120)
    assert RiskScorer(text_columns=[], random_state=0).fit(X, y).categorical_columns_ == ["note"]
    named = RiskScorer(encoder=TINY, text_columns=["note"], text_components=2, random_state=0)
    assert named.fit(X, y).text_columns_ == ["note"]


def test_rows_without_text_never_reach_the_encoder(monkeypatch):
    X, y = text_applicants()
    model = RiskScorer(encoder=TINY, text_components=4, random_state=0).fit(X, y)
    assert model.text_selection_["selected"] == ["note"]
    _no_encoder(monkeypatch)
    blank = X.iloc[:4].assign(note=[None, "", "?", np.nan])
    assert np.isfinite(model.predict_pd(blank)).all()


def test_texts_are_encoded_once_per_distinct_text_and_cached_on_disk(tmp_path, monkeypatch):
    import dayzero.risk.scorer as scorer_module
    from dayzero.text.encoder import TextEncoder

    X, y = text_applicants(200)
    X["note"] = X["note"].where(np.arange(200) % 2 == 0, X["note"].shift(1))  # pairs repeat
    monkeypatch.setattr(scorer_module, "_MEMO", {})
    monkeypatch.setattr(scorer_module, "_ENCODERS", {})
    computed: list[str] = []
    original = TextEncoder._encode_unique

    def counting(self, texts, *args, **kwargs):
        computed.extend(texts)
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(TextEncoder, "_encode_unique", counting)
    cache = tmp_path / "vectors"
    model = RiskScorer(encoder=TINY, cache_dir=cache, text_components=4, random_state=0)
    model.fit(X, y)
    assert sorted(computed) == sorted(X["note"].unique())  # once per distinct text
    model.predict_pd(X.iloc[::-1])
    assert len(computed) == X["note"].nunique()  # the same texts again: memory
    # A new process (empty memory, new encoder) reads the disk cache: nothing is computed.
    monkeypatch.setattr(scorer_module, "_MEMO", {})
    monkeypatch.setattr(scorer_module, "_ENCODERS", {})
    again = RiskScorer(encoder=TINY, cache_dir=cache, text_components=4, random_state=0)
    np.testing.assert_allclose(again.fit(X, y).predict_pd(X), model.predict_pd(X), atol=1e-6)
    assert len(computed) == X["note"].nunique()


def test_save_load_with_text_gives_identical_scores(tmp_path):
    X, y = text_applicants()
    model = RiskScorer(encoder=TINY, text_components=4, random_state=0).fit(X, y)
    folder = model.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.html",
        "card.json",
        "dayzero.json",
        "weights.safetensors",
    ]
    loaded = RiskScorer.load(folder)
    assert loaded.text_selection_ == model.text_selection_
    np.testing.assert_array_equal(loaded.predict_pd(X), model.predict_pd(X))
    pd.testing.assert_frame_equal(loaded.explain(X.iloc[:5]), model.explain(X.iloc[:5]))


def test_long_free_text_warns_on_the_tabular_path():
    from dayzero.risk.scorer import TruncationWarning

    X, y = text_applicants(120)
    X["note"] = X["note"] + " " + " ".join(["family"] * 40)
    with pytest.warns(TruncationWarning, match=r"text column 'note': 100% of its texts"):
        model = RiskScorer(encoder=TINY, max_length=16, text_components=2, random_state=0)
        model.fit(X, y)
    assert model.truncation_["column"] == "note" and model.truncation_["share"] == 1.0


def test_row_text_truncation_is_never_silent():
    from dayzero.risk.scorer import TruncationWarning

    X, y = applicants(40)
    with pytest.warns(TruncationWarning, match=r"longer than max_length=16 tokens"):
        model = RiskScorer(encoder=TINY, representation="row-text", max_length=16).fit(X, y)
    assert model.truncation_["share"] == 1.0 and model.truncation_["max_tokens"] > 16
    with pytest.warns(TruncationWarning):
        model.predict_pd(X.iloc[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        RiskScorer(encoder=TINY, representation="row-text", max_length=64).fit(X, y)


def test_tree_depth_is_chosen_on_the_folds(tabular_model, tmp_path):
    model, X, y = tabular_model
    choice = model.depth_selection_
    assert set(choice["candidates"]) == {"3", "6"}
    means = {d: np.mean(c["auc"]) for d, c in choice["candidates"].items()}
    assert str(choice["chosen"]) == max(means, key=means.get) == str(model.depth_)
    assert all(len(c["auc"]) == 5 for c in choice["candidates"].values())
    given = RiskScorer(max_depth=2, random_state=0, linear=False).fit(X, y)
    assert given.depth_ == 2 and set(given.depth_selection_["candidates"]) == {"2"}

    def depth(node):
        if "left_child" not in node:
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))

    trees = given.head_.booster_.dump_model()["tree_info"]
    assert max(depth(t["tree_structure"]) for t in trees) <= 2
    loaded = RiskScorer.load(given.save(tmp_path / "m"))
    assert loaded.depth_ == 2 and loaded.depth_selection_ == given.depth_selection_
    with pytest.raises(ValueError, match="max_depth"):
        RiskScorer(max_depth=0).fit(X, y)


def test_text_is_encoded_with_n_jobs_torch_threads_and_the_setting_restored(monkeypatch):
    import torch

    import dayzero.risk.scorer as scorer_module
    from dayzero.text.encoder import TextEncoder

    monkeypatch.setattr(scorer_module, "_MEMO", {})
    seen: list[int] = []
    original = TextEncoder.encode

    def spy(self, texts, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(TextEncoder, "encode", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the module runs on one thread (one_thread fixture)
    try:
        X, y = text_applicants(120)
        RiskScorer(encoder=TINY, text_components=2, random_state=0).fit(X, y)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        monkeypatch.setattr(scorer_module, "_MEMO", {})
        seen.clear()
        RiskScorer(encoder=TINY, text_components=2, n_jobs=-1, random_state=0).fit(X, y)
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)


def test_datetime_columns_are_read_as_time(tmp_path):
    rng = np.random.default_rng(0)
    days = rng.integers(0, 400, size=300)
    X = pd.DataFrame(
        {
            "applied": pd.Timestamp("2017-01-01") + pd.to_timedelta(days, unit="D"),
            "age": rng.integers(20, 70, size=300),
        }
    )
    y = (days > 200).astype(int)  # loans of the second half default
    model = RiskScorer(random_state=0).fit(X, y)
    assert model.datetime_columns_ == ["applied"] and "applied" in model.numeric_columns_
    assert model.report(X, y).auc > 0.95
    as_text = X.assign(applied=X["applied"].astype(str))  # what a CSV file gives
    np.testing.assert_array_equal(model.predict_pd(as_text), model.predict_pd(X))
    first = model.explain(X.iloc[np.flatnonzero(y == 1)[:3]], top=1)
    assert first["reason"].str.match(r"applied is 2017-\d\d-\d\d 00:00:00 \(raises risk\)").all()
    loaded = RiskScorer.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_pd(as_text), model.predict_pd(X))
    with pytest.raises(TypeError, match="'applied' must be a date"):
        model.predict_pd(X.iloc[:1].astype(object).assign(applied="soon"))


# ---- prior=: a transfer prior from other credit tables as a third tabular candidate -----------

_MEANINGS = {
    "late": ("late", "overdue", "behind"),
    "ontime": ("punctual", "timely", "ontime"),
    "debt": ("debt", "owed", "arrears"),
}


class _MeaningEncoder:
    """Phrase -> one dimension per meaning whose words it holds, plus a hashed per-word part: a
    sentence encoder's near vectors for synonyms, made exact (as in tests/risk/test_prior.py)."""

    def encode(self, texts, normalize: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), len(_MEANINGS) + 8))
        for i, text in enumerate(texts):
            for word in text.lower().replace(":", " ").split():
                for j, words in enumerate(_MEANINGS.values()):
                    out[i, j] += word in words
                out[i, len(_MEANINGS) + sum(map(ord, word)) % 8] += 0.3
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _credit_table(n: int, words: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Lateness and debt raise risk, ``region`` is noise, ``branch`` a constant; ``words`` picks
    the synonyms (the scorer's target table uses ones no source table has)."""
    rng = np.random.default_rng(seed)
    late = rng.random(n) < 0.4
    debt = rng.gamma(2.0, 1000.0, size=n)
    z = 1.8 * late + 1.2 * (debt > np.median(debt))
    y = (z + rng.logistic(size=n) > 1.2).astype(int)
    frame = pd.DataFrame(
        {
            "payment record": np.where(late, _MEANINGS["late"][words], _MEANINGS["ontime"][words]),
            f"{_MEANINGS['debt'][words]} amount": debt.round(),
            "region": rng.choice(["north", "south"], size=n),
            "branch": ["main"] * n,
        }
    )
    return frame, y


def _sources(n: int = 400) -> dict:
    return {f"source{w}": _credit_table(n, w, seed=w) for w in range(2)}


@pytest.fixture(scope="module")
def transfer_prior():
    from dayzero.risk.prior import TransferPrior

    return TransferPrior(encoder=_MeaningEncoder()).fit(_sources())


def _k_rows(y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(y[:400] == c), k // 2, replace=False) for c in (0, 1)]
    )


def test_prior_model_is_taken_outright_when_a_class_is_short_of_the_folds(transfer_prior):
    from dayzero.risk.prior import PriorLogisticRegression

    X, y = _credit_table(1000, 2, seed=7)
    test = np.arange(400, 1000)
    aucs = {"prior": [], "none": []}
    for seed, k in [(0, 4), (1, 4), (2, 8), (3, 8)]:
        pick = _k_rows(y, k, seed)
        model = RiskScorer(prior=transfer_prior, random_state=seed).fit(X.iloc[pick], y[pick])
        assert model.tabular_model_ == "prior" and model.depth_selection_["chosen"] == "prior"
        reason = model.depth_selection_["reason"]
        assert f"smaller class has {k // 2} rows, fewer than the 5 folds need" in reason
        assert "taken outright" in reason and "fixed rule" in reason
        assert model.text_selection_["folds"] == 0 and model.n_iter_ == 0
        # Known answer: exactly the prior model on the same rows.
        direct = PriorLogisticRegression(transfer_prior, random_state=seed)
        direct.fit(X.iloc[pick], y[pick])
        np.testing.assert_allclose(
            model.predict_pd(X.iloc[test]), direct.predict_proba(X.iloc[test])[:, 1], rtol=1e-12
        )
        aucs["prior"].append(model.report(X.iloc[test], y[test]).auc)
        plain = RiskScorer(random_state=seed).fit(X.iloc[pick], y[pick])
        aucs["none"].append(plain.report(X.iloc[test], y[test]).auc)
    # The prior knows "behind" and "arrears" (words no source used) raise risk; four to eight
    # rows alone barely rank. Measured: .74 against .60 (mean of the four draws).
    assert np.mean(aucs["prior"]) > np.mean(aucs["none"]) + 0.1
    assert "logistic regression shrunk toward a transfer prior" in model.describe()["summary"]


def test_prior_model_competes_on_the_same_folds(transfer_prior):
    X, y = _credit_table(300, 2, seed=8)
    model = RiskScorer(prior=transfer_prior, random_state=0).fit(X, y)
    candidates = model.depth_selection_["candidates"]
    assert set(candidates) == {"3", "6", "linear", "prior"}
    assert len(candidates["prior"]["auc"]) == 5 and len(candidates["prior"]["chosen"]) == 5
    means = {name: np.mean(c["auc"]) for name, c in candidates.items()}
    others = max(means[name] for name in ("3", "6", "linear"))
    assert (model.tabular_model_ == "prior") == (means["prior"] > others)
    assert "prior model replaces either" in model.depth_selection_["rule"]
    assert "reason" not in model.depth_selection_  # nothing taken outright
    assert np.isfinite(model.predict_pd(X)).all()


def test_prior_reason_codes_are_value_level_and_add_up(transfer_prior):
    X, y = _credit_table(600, 2, seed=9)
    pick = _k_rows(y, 8)
    model = RiskScorer(prior=transfer_prior, labels={"region": "home region"}, random_state=0)
    model.fit(X.iloc[pick], y[pick])
    rows = X.iloc[400:440]
    reasons = model.explain(rows, top=4)
    assert reasons.attrs["method"].startswith("prior: coefficient")
    late = rows["payment record"].to_numpy() == "behind"
    record = reasons[reasons["field"] == "payment record"].set_index("row")
    assert (record.loc[np.flatnonzero(late), "contribution"] > 0).all()
    assert (record.loc[np.flatnonzero(~late), "contribution"] < 0).all()
    wording = record.loc[np.flatnonzero(late), "reason"]
    assert (wording == "payment record is behind (raises risk)").all()
    assert set(reasons["field"]) <= {"payment record", "arrears amount", "home region", "region"}
    assert "branch" not in set(reasons["field"])  # a constant moves nothing: never listed
    assert (reasons["contribution"].abs() > 0).all()
    assert reasons["reason"][reasons["field"] == "region"].str.startswith("home region is ").all()
    total = reasons.groupby("row")["contribution"].sum().reindex(range(40), fill_value=0.0)
    np.testing.assert_allclose(
        total.to_numpy() + reasons.attrs["base_logit"], model.decision_function(rows), atol=1e-9
    )
    points = model.points(rows)
    np.testing.assert_allclose(points, model.scale.points(model.predict_pd(rows)))
    assert np.corrcoef(points, late)[0, 1] < -0.5  # late payers get fewer points


def test_prior_scorer_saves_and_loads_without_pickle(tmp_path, tiny_bert_dir):
    from dayzero.risk.prior import TransferPrior

    prior = TransferPrior(encoder=str(tiny_bert_dir), alphas=(0.1,)).fit(_sources(200))
    prior_dir = prior.save(tmp_path / "prior")
    X, y = _credit_table(300, 2, seed=10)
    X.loc[:3, "arrears amount"] = np.nan  # a missing indicator in the prior model
    pick = np.concatenate([np.flatnonzero(y == c)[:3] for c in (0, 1)])
    pick = np.concatenate([pick, [0, 1]])
    model = RiskScorer(prior=str(prior_dir), random_state=0).fit(X.iloc[pick], y[pick])
    assert model.tabular_model_ == "prior" and model.prior_.tables_ == ["source0", "source1"]
    folder = model.save(tmp_path / "scorer")
    assert (folder / "prior_model" / "dayzero.json").is_file()
    assert (folder / "prior_model" / "prior" / "weights.safetensors").is_file()
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    loaded = RiskScorer.load(folder)
    np.testing.assert_allclose(loaded.predict_pd(X), model.predict_pd(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(loaded.points(X), model.points(X), rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(loaded.explain(X.iloc[:10]), model.explain(X.iloc[:10]))
    assert isinstance(loaded.prior, TransferPrior) and loaded.prior_.tables_ == prior.tables_
    card = json.loads((folder / "card.json").read_text())
    assert card["selection"]["prior"]["source tables"] == ["source0", "source1"]
    assert card["selection"]["prior"]["chosen"] is True
    assert any("source0" in line for line in card["limitations"])
    assert card["params"]["prior"] == str(prior_dir)
    # Refit after load reads the saved prior (its folder may be gone).
    refit = clone(loaded).fit(X.iloc[pick], y[pick])
    np.testing.assert_allclose(refit.predict_pd(X), model.predict_pd(X), atol=1e-9)

    # A prior given but not chosen: the trees win a U-shaped effect a linear model cannot see;
    # the prior is still saved (prior/), for the record and for a refit.
    rng = np.random.default_rng(0)
    U = pd.DataFrame({"owed amount": rng.random(400), "region": rng.choice(["a", "b"], 400)})
    yu = ((np.abs(U["owed amount"] - 0.5) > 0.3) ^ (rng.random(400) < 0.05)).astype(int)
    trees = RiskScorer(prior=prior, random_state=0).fit(U, yu)
    assert trees.tabular_model_ == "gbm" and "prior" in trees.depth_selection_["candidates"]
    folder = trees.save(tmp_path / "trees")
    assert (folder / "prior" / "dayzero.json").is_file() and not (folder / "prior_model").exists()
    again = RiskScorer.load(folder)
    np.testing.assert_array_equal(again.predict_pd(U), trees.predict_pd(U))
    assert again.prior_.tables_ == prior.tables_ and again.get_params()["prior"] is again.prior_


def test_prior_param_is_stored_as_given_and_checked_in_fit(transfer_prior, tmp_path):
    from dayzero.core.artifact import ArtifactError
    from dayzero.risk.prior import TransferPrior

    X, y = _credit_table(60, 2, seed=11)
    model = RiskScorer(prior=transfer_prior)
    assert model.get_params()["prior"] is transfer_prior
    assert clone(model).get_params()["prior"] is transfer_prior  # a fitted prior is read-only
    assert clone(RiskScorer(prior="some/folder")).get_params()["prior"] == "some/folder"
    with pytest.raises(ArtifactError, match=r"prior='.*' is not a saved TransferPrior"):
        RiskScorer(prior=str(tmp_path)).fit(X, y)
    with pytest.raises(TypeError, match="prior must be a fitted TransferPrior"):
        RiskScorer(prior=3).fit(X, y)
    with pytest.raises(ValueError, match="unfitted TransferPrior"):
        RiskScorer(prior=TransferPrior()).fit(X, y)
    with pytest.raises(ValueError, match="prior is a candidate of the tabular model"):
        RiskScorer(prior=transfer_prior, head="gbm").fit(X, y)
    with pytest.raises(ValueError, match="prior and monotonic"):
        RiskScorer(prior=transfer_prior, monotonic={"arrears amount": 1}).fit(X, y)


def test_prior_model_reads_no_free_text(transfer_prior, monkeypatch):
    X, y = _credit_table(40, 2, seed=12)
    notes = [f"note {i} about the {w} family" for i, w in enumerate(np.resize(_FILLER, 40))]
    X["note"] = notes
    # cv=50: a class has fewer rows than the folds need, so the prior model is taken outright.
    model = RiskScorer(
        prior=transfer_prior, encoder=TINY, text_columns=["note"], text_components=2, cv=50
    ).fit(X, y)
    assert model.tabular_model_ == "prior" and "note" not in model.prior_columns_
    assert model.text_selection_["reason"].endswith("text column(s) ['note'] left out")
    _no_encoder(monkeypatch)  # scoring and reasons never reach the encoder
    assert np.isfinite(model.predict_pd(X)).all()
    assert "note" not in set(model.explain(X, top=5)["field"])
    with pytest.raises(ValueError, match="prior needs numeric or categorical columns"):
        RiskScorer(prior=transfer_prior, encoder=TINY, text_columns=["note"]).fit(X[["note"]], y)


@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript")),
    reason="needs the onnx extra",
)
def test_an_int8_onnx_folder_encodes_the_free_text(tmp_path, monkeypatch):
    import dayzero.risk.scorer as scorer_module
    from dayzero.core.artifact import ArtifactError
    from dayzero.text.encoder import TextEncoder
    from dayzero.text.onnx_int8 import OnnxInt8Encoder

    folder = tmp_path / "onnx"
    OnnxInt8Encoder.export(TextEncoder(TINY), folder, check_texts=["good", "bad words"])
    X, y = text_applicants()
    model = RiskScorer(encoder=str(folder), text_components=4, random_state=0).fit(X, y)
    assert model.text_selection_["selected"] == ["note"]
    assert model.report(X, y).auc > 0.9
    used = [e for key, e in scorer_module._ENCODERS.items() if key[0] == str(folder)]
    assert used and all(isinstance(e, OnnxInt8Encoder) for e in used)
    assert all(e.session.get_session_options().intra_op_num_threads == 1 for e in used)
    saved = model.save(tmp_path / "m")
    loaded = RiskScorer.load(saved)
    monkeypatch.setattr(scorer_module, "_MEMO", {})  # the loaded model encodes anew
    np.testing.assert_allclose(loaded.predict_pd(X), model.predict_pd(X), atol=1e-9)
    with pytest.raises(ValueError, match="int8 ONNX export, which cannot be fine-tuned"):
        RiskScorer(encoder=str(folder), head="encoder").fit(X, y)
    # Every thread setting encodes with one encoder object; n_jobs=-1 leaves ONNX Runtime's.
    wide = RiskScorer(encoder=str(folder), text_components=4, n_jobs=-1, random_state=0)
    monkeypatch.setattr(scorer_module, "_MEMO", {})
    wide.fit(X, y)
    used = [e for key, e in scorer_module._ENCODERS.items() if key[0] == str(folder)]
    assert len(used) == 1 and used[0].threads is None
    # Another export in the folder (a shorter input length) or no export: refused at load.
    OnnxInt8Encoder.export(TextEncoder(TINY, max_length=8), folder, check_texts=["good"])
    with pytest.raises(ArtifactError, match="is not the one the scorer was fitted with"):
        RiskScorer.load(saved)
    folder.rename(tmp_path / "moved")
    with pytest.raises(ArtifactError, match="not an ONNX export folder"):
        RiskScorer.load(saved)
