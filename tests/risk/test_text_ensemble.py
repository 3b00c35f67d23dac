"""TextEnsemble: soft voting over TextClassifier members, errors, save / load."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.risk.text_classifier import TextClassifier
from dayzero.risk.text_ensemble import TextEnsemble

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["profit rose sharply", "record profit", "sales fell sharply", "heavy losses"] * 3
LABELS = ["pos", "pos", "neg", "neg"] * 3
PROBE = ["profit rose", "losses fell", "record losses"]


def _members(tiny_bert_dir) -> list[tuple[str, TextClassifier]]:
    return [
        ("tfidf", TextClassifier(features="tfidf", head_C=10.0)),
        ("dense", TextClassifier(encoder=str(tiny_bert_dir), head_C=10.0)),
    ]


def test_probabilities_are_the_weighted_mean_of_the_members(tiny_bert_dir) -> None:
    ensemble = TextEnsemble(_members(tiny_bert_dir), weights=[3, 1]).fit(TEXTS, LABELS)
    tfidf, dense = (m.predict_proba(PROBE) for m in ensemble.estimators_)
    np.testing.assert_allclose(ensemble.predict_proba(PROBE), 0.75 * tfidf + 0.25 * dense)
    assert list(ensemble.classes_) == ["neg", "pos"]
    assert ensemble.score(TEXTS, LABELS) == 1.0
    # members are clones: the configurations passed in stay unfitted
    assert not hasattr(ensemble.estimators[0][1], "head_")


def test_save_load_round_trip(tiny_bert_dir, tmp_path) -> None:
    ensemble = TextEnsemble(_members(tiny_bert_dir)).fit(TEXTS, LABELS)
    ensemble.save(tmp_path / "ens")
    assert (tmp_path / "ens" / "members" / "dense" / "dayzero.json").is_file()
    loaded = TextEnsemble.load(tmp_path / "ens")
    np.testing.assert_allclose(loaded.predict_proba(PROBE), ensemble.predict_proba(PROBE))
    assert [n for n, _ in loaded.estimators] == ["tfidf", "dense"]


def test_unlabelled_texts_reach_self_training_members_only() -> None:
    members = [
        ("plain", TextClassifier(features="tfidf")),
        ("st", TextClassifier(features="tfidf", self_training=True, self_training_threshold=0.6)),
    ]
    ensemble = TextEnsemble(members).fit(TEXTS, LABELS, unlabelled=["profit rose again"])
    assert ensemble.estimators_[0].self_training_ is None
    assert ensemble.estimators_[1].self_training_["unlabelled"] == 1


@pytest.mark.parametrize(
    ("estimators", "weights", "error", "match"),
    [
        ([], None, ValueError, "estimators is empty"),
        ([("a", TextClassifier()), ("a", TextClassifier())], None, ValueError, "repeated"),
        ([("../x", TextClassifier())], None, ValueError, "plain folder name"),
        ([("a", object())], None, TypeError, "TextClassifier instances"),
        ([("a", TextClassifier())], [0.0], ValueError, "weights must be 1"),
        ([("a", TextClassifier())], [1.0, 2.0], ValueError, "weights must be 1"),
    ],
)
def test_bad_configurations_name_the_problem(estimators, weights, error, match) -> None:
    with pytest.raises(error, match=match):
        TextEnsemble(estimators, weights).fit(TEXTS, LABELS)
