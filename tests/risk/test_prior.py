"""Transfer prior: field phrases, source weights -> phrase map, k-shot shrinkage, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from dayzero.core.artifact import ArtifactError
from dayzero.risk.prior import FieldPhrases, PriorLogisticRegression, TransferPrior

pytestmark = pytest.mark.usefixtures("one_thread")

# Meanings, each said with different words in different tables.
CONCEPTS = {
    "late": ("late", "overdue", "delinquent", "behind"),
    "ontime": ("punctual", "timely", "prompt", "ontime"),
    "debt": ("debt", "owed", "liabilities", "arrears"),
    "income": ("income", "salary", "earnings", "wages"),
}


class ConceptEncoder:
    """Phrase -> one dimension per meaning whose words it holds, plus a per-word hashed part:
    what a sentence encoder gives synonyms (near vectors), made exact for a known answer."""

    def encode(self, texts, normalize: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), len(CONCEPTS) + 16))
        for i, text in enumerate(texts):
            for word in text.lower().replace(":", " ").split():
                for j, words in enumerate(CONCEPTS.values()):
                    if word in words:
                        out[i, j] += 1.0
                seed = sum(map(ord, word))
                out[i, len(CONCEPTS) + seed % 16] += 0.3
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _table(n: int, words: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Risk rises with lateness and debt, falls with income; ``words`` picks the synonyms."""
    rng = np.random.default_rng(seed)
    late = rng.random(n) < 0.4
    debt = rng.gamma(2.0, 1000.0, size=n)
    income = rng.normal(3000, 800, size=n)
    region = rng.choice(["north", "south", "east"], size=n)
    z = 1.6 * late + 1.2 * (debt > np.median(debt)) - 1.2 * (income > np.median(income))
    y = (z + rng.logistic(size=n) > 1.0).astype(int)
    payment = np.where(late, CONCEPTS["late"][words], CONCEPTS["ontime"][words])
    frame = pd.DataFrame(
        {
            f"payment record {words}": payment,
            f"{CONCEPTS['debt'][words]} amount": debt,
            f"monthly {CONCEPTS['income'][words]}": income,
            "region": region,
        }
    )
    return frame, y


@pytest.fixture(scope="module")
def prior() -> TransferPrior:
    tables = {f"source{w}": _table(600, w, seed=w) for w in range(3)}
    return TransferPrior(encoder=ConceptEncoder()).fit(tables)


def test_field_phrases_ranks_indicators_and_value_labels():
    X = pd.DataFrame(
        {"amount": [1.0, 2.0, 3.0, 4.0], "sex": [1, 2, 2, 1], "debt": [5.0, np.nan, 7.0, 9.0]}
    )
    phraser = FieldPhrases(labels={"debt": "total debt"}, value_labels={"sex": {1: "male"}})
    Z = phraser.fit(X).transform(X)
    assert phraser.phrases_ == [
        "amount",
        "sex: 2",
        "sex: male",
        "total debt",
        "total debt: missing",
    ]
    assert phraser.feature_kind_ == ["rank", "category", "category", "rank", "missing"]
    np.testing.assert_allclose(Z[:, 0], [-0.375, -0.125, 0.125, 0.375])
    np.testing.assert_array_equal(Z[:, 1:3], [[0, 1], [1, 0], [1, 0], [0, 1]])
    np.testing.assert_allclose(Z[:, 3], [-1 / 3, 0.0, 0.0, 1 / 3])  # ranks among 3 values
    np.testing.assert_array_equal(Z[:, 4], [0, 1, 0, 0])
    new = pd.DataFrame({"amount": [100.0], "sex": [3], "debt": [6.0]})
    np.testing.assert_allclose(phraser.transform(new)[0], [0.5, 0, 0, -1 / 6, 0])  # unseen: 0
    with pytest.raises(ValueError, match="lacks column"):
        phraser.transform(X.drop(columns="sex"))
    with pytest.raises(TypeError, match="DataFrame"):
        FieldPhrases().fit(X.to_numpy())


def test_the_map_transfers_meanings_to_new_words(prior):
    assert prior.tables_ == ["source0", "source1", "source2"]
    for row in prior.loto_["tables"].values():
        # Each held-out table is scored by the map of the others nearly as well as by its own
        # weights (the synthetic tables' risk is noisy: their own weights reach about .76).
        assert row["zero_shot_auc"] > row["in_table_auc"] - 0.03 and row["weight_corr"] > 0.9
    late, ontime = prior.predict_weights(
        ["payment record 3: behind", "payment record 3: ontime"], ["category", "category"]
    )
    assert late - ontime > 1.0  # words no source table used
    slopes = prior.predict_weights(["arrears amount", "monthly wages"], ["rank", "rank"])
    assert slopes[0] > 0.5 and slopes[1] < -0.5


def test_prior_beats_the_zero_prior_at_small_k(prior):
    target, y = _table(1200, 3, seed=7)
    test = np.arange(400, 1200)
    for k in (4, 8):
        gains = []
        for seed in range(10):
            rng = np.random.default_rng(seed)
            pick = np.concatenate(
                [rng.choice(np.flatnonzero(y[:400] == c), k // 2, replace=False) for c in (0, 1)]
            )
            aucs = []
            for p in (prior, None):
                clf = PriorLogisticRegression(p, random_state=seed).fit(target.iloc[pick], y[pick])
                assert clf.selection_.startswith("fixed rule")
                aucs.append(_auc(y[test], clf.predict_proba(target.iloc[test])[:, 1]))
            gains.append(aucs[0] - aucs[1])
        # Measured: +.103 (8 of 10 draws) at k = 4, +.085 (10 of 10) at k = 8.
        assert np.mean(gains) > 0.03 and np.sum(np.asarray(gains) > 0) >= 7
    zero_shot = _auc(y[test], prior.decision_function(target.iloc[test]))
    assert zero_shot > 0.72


def test_cv_chooses_c_and_scale_at_larger_k(prior):
    target, y = _table(300, 3, seed=8)
    clf = PriorLogisticRegression(prior, random_state=0).fit(target.iloc[:64], y[:64])
    assert "CV" in clf.selection_ and len(clf.cv_scores_) == 16
    assert clf.C_ in (0.01, 0.1, 1.0, 10.0) and clf.prior_scale_ in (0.5, 1.0, 2.0, 4.0)
    np.testing.assert_allclose(clf.predict_proba(target).sum(axis=1), 1.0)
    assert set(clf.predict(target)) <= {0, 1}
    fixed = PriorLogisticRegression(prior, C=0.1, prior_scale=2.0).fit(target, y)
    assert fixed.selection_ == "given" and fixed.prior_scale_ == 2.0
    # Without a prior the coefficients are plain L2 logistic regression's.
    from sklearn.linear_model import LogisticRegression

    plain = PriorLogisticRegression(None, C=0.5).fit(target, y)
    Z = plain.phraser_.transform(target)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(Z, y)
    np.testing.assert_allclose(plain.coef_, ref.coef_.ravel(), atol=2e-3)


def test_clone_keeps_a_fitted_prior(prior):
    clf = PriorLogisticRegression(prior, C=1.0)
    assert clone(clf).prior is prior
    fresh = TransferPrior(encoder="x")
    assert clone(fresh) is not fresh


def test_bad_input_is_named(prior):
    X, y = _table(40, 0, seed=1)
    with pytest.raises(ValueError, match="two classes"):
        PriorLogisticRegression(prior).fit(X, np.zeros(40))
    with pytest.raises(RuntimeError, match="not fitted"):
        PriorLogisticRegression(TransferPrior()).fit(X, y)
    with pytest.raises(TypeError, match="prior must be"):
        PriorLogisticRegression(prior=3).fit(X, y)
    with pytest.raises(ValueError, match="at least two source tables"):
        TransferPrior(encoder=ConceptEncoder()).fit({"a": (X, y)})
    with pytest.raises(ValueError, match="tables\\['b'\\]"):
        TransferPrior(encoder=ConceptEncoder()).fit({"a": (X, y), "b": (X, y[:10])})
    with pytest.raises(ArtifactError, match="model name or folder"):
        prior.save("/nonexistent-never-written")
    with pytest.raises(KeyError, match="not a source table"):
        prior.leave_out("nope")


def test_leave_out_drops_a_table(prior):
    other = prior.leave_out("source0")
    assert other.tables_ == ["source1", "source2"] and other.alpha_ == prior.alpha_
    assert not np.allclose(other.coef_["category"], prior.coef_["category"])


def test_save_load_round_trip(tmp_path, tiny_bert_dir):
    tables = {f"source{w}": _table(200, w, seed=w) for w in range(2)}
    prior = TransferPrior(encoder=str(tiny_bert_dir), alphas=(0.1, 1.0)).fit(tables)
    folder = prior.save(tmp_path / "prior")
    assert sorted(p.name for p in folder.iterdir()) == ["dayzero.json", "weights.safetensors"]
    again = TransferPrior.load(folder)
    phrases, kinds = ["payment record 2: timely", "owed amount"], ["category", "rank"]
    np.testing.assert_allclose(
        again.predict_weights(phrases, kinds), prior.predict_weights(phrases, kinds)
    )
    assert again.loto_ == prior.loto_ and again.alpha_ == prior.alpha_
    target, y = _table(60, 2, seed=3)
    by_path = PriorLogisticRegression(str(folder), C=1.0, prior_scale=1.0).fit(target, y)
    by_obj = PriorLogisticRegression(prior, C=1.0, prior_scale=1.0).fit(target, y)
    np.testing.assert_allclose(by_path.coef_, by_obj.coef_, atol=1e-8)
    with pytest.raises(ArtifactError):
        TransferPrior.load(tmp_path)


def _auc(y, score) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def test_unlabelled_rows_set_the_ranks_and_categories(prior):
    X, y = _table(300, 3, seed=9)
    pick = np.concatenate([np.flatnonzero(y == c)[:2] for c in (0, 1)])
    alone = PriorLogisticRegression(prior).fit(X.iloc[pick], y[pick])
    pooled = PriorLogisticRegression(prior).fit(X.iloc[pick], y[pick], X_unlabelled=X)
    debt = "arrears amount"
    assert len(alone.phraser_.sorted_[debt]) == 4 and len(pooled.phraser_.sorted_[debt]) == 304
    ranks = pooled.phraser_.transform(X)[:, pooled.phraser_.phrases_.index(debt)]
    assert len(np.unique(ranks)) == 300  # with 4 rows alone: at most 9 values (4 + 5 gaps)
    assert len(np.unique(alone.phraser_.transform(X)[:, alone.phraser_.phrases_.index(debt)])) <= 9
    with pytest.raises(TypeError, match="X_unlabelled"):
        PriorLogisticRegression(prior).fit(X.iloc[pick], y[pick], X_unlabelled=X.to_numpy())


@pytest.mark.slow
def test_the_real_encoder_carries_meanings_to_new_words():
    """The shipped MiniLM, where quality is the point: synonyms it was never told about."""
    tables = {f"source{w}": _table(600, w, seed=w) for w in range(3)}
    prior = TransferPrior().fit(tables)  # all-MiniLM-L6-v2
    late, ontime, debt, income = prior.predict_weights(
        ["payment record 3: behind", "payment record 3: ontime", "arrears amount", "monthly wages"],
        ["category", "category", "rank", "rank"],
    )
    assert late > ontime and debt > 0.3 and income < -0.5  # measured .46 / .02 / .64 / -1.50
    target, y = _table(1200, 3, seed=7)
    test = np.arange(400, 1200)
    assert _auc(y[test], prior.decision_function(target.iloc[test])) > 0.65  # measured .707
    gains = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pick = np.concatenate(
            [rng.choice(np.flatnonzero(y[:400] == c), 2, replace=False) for c in (0, 1)]
        )
        aucs = [
            _auc(
                y[test],
                PriorLogisticRegression(p)
                .fit(target.iloc[pick], y[pick])
                .decision_function(target.iloc[test]),
            )
            for p in (prior, None)
        ]
        gains.append(aucs[0] - aucs[1])
    assert np.mean(gains) > 0.03 and np.sum(np.asarray(gains) > 0) >= 7  # measured +.077, 8/10


def test_refit_forgets_the_last_fits_weights():
    tables = {f"source{w}": _table(300, w, seed=w) for w in range(2)}
    prior = TransferPrior(encoder=ConceptEncoder()).fit(tables)
    phraser = FieldPhrases().fit(_table(50, 3, seed=5)[0])
    before = prior.weights_for(phraser)
    flipped = {n: (X, 1 - y) for n, (X, y) in tables.items()}  # every effect reversed
    after = prior.fit(flipped).weights_for(phraser)
    assert np.corrcoef(before, after)[0, 1] < -0.9


def test_contributions_add_up_and_name_the_driving_column(prior):
    X, y = _table(200, 3, seed=11)
    clf = PriorLogisticRegression(prior, C=1.0, prior_scale=1.0).fit(X, y)
    contrib, base = clf.contributions(X)
    assert list(contrib.columns) == list(X.columns) and contrib.index.equals(X.index)
    np.testing.assert_allclose(contrib.sum(axis=1) + base, clf.decision_function(X), atol=1e-10)
    late = X["payment record 3"] == "behind"
    assert (contrib.loc[late, "payment record 3"] > 0).all()  # lateness raises the odds
    assert (contrib.loc[~late, "payment record 3"] < 0).all()
    with pytest.raises(RuntimeError, match="not fitted"):
        PriorLogisticRegression(prior).contributions(X)


def test_a_fitted_classifier_saves_and_scores_the_same(tmp_path, tiny_bert_dir):
    tables = {f"source{w}": _table(200, w, seed=w) for w in range(2)}
    prior = TransferPrior(encoder=str(tiny_bert_dir), alphas=(0.1,)).fit(tables)
    X, y = _table(80, 2, seed=4)
    X.loc[:5, "owed amount"] = np.nan  # a missing indicator to round-trip
    labels = {"region": "home region"}
    clf = PriorLogisticRegression(prior, value_labels={"region": {"north": "the north"}})
    clf.set_params(labels=labels).fit(X.iloc[:40], y[:40])
    folder = clf.save(tmp_path / "clf")
    assert (folder / "prior" / "dayzero.json").is_file()
    again = PriorLogisticRegression.load(folder)
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    assert again.phraser_.phrases_ == clf.phraser_.phrases_ and "home region: the north" in (
        again.phraser_.phrases_
    )
    np.testing.assert_allclose(again.contributions(X)[0], clf.contributions(X)[0])
    plain = PriorLogisticRegression(None, C=1.0).fit(X, y)
    plain_again = PriorLogisticRegression.load(plain.save(tmp_path / "plain"))
    assert plain_again.prior is None and not (tmp_path / "plain" / "prior").exists()
    np.testing.assert_array_equal(plain_again.decision_function(X), plain.decision_function(X))
    with pytest.raises(RuntimeError, match="not fitted"):
        PriorLogisticRegression(prior).save(tmp_path / "nothing")
