"""Text features: TF-IDF blocks (norms, save round trip), feature combination, CV choice."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from sklearn.linear_model import LogisticRegression

from dayzero.risk.text_features import (
    CANDIDATES,
    TfidfBlocks,
    check_features,
    choose_features,
    combine,
)

TEXTS = ["profit rose", "loss widened", "利润大幅增长", "亏损扩大了", "profit 增长"]


def test_blocks_have_word_and_character_terms_and_unit_rows() -> None:
    blocks = TfidfBlocks().fit(TEXTS)
    words = blocks.vectorizers_["word"].vocabulary_
    chars = blocks.vectorizers_["char"].vocabulary_
    assert "profit rose" in words and "profit" in words  # word 1- and 2-grams
    assert " 利" in chars and "润" in chars and "增长" in chars  # characters of unspaced text
    # Each Chinese character is a word: word 1-2-grams are character 1-2-grams, and a Latin word
    # glued to Chinese text stays a word of its own.
    assert "利 润" in words and "增" in words and "利润大幅增长" not in words
    assert "profit 增" in words
    matrix = blocks.transform(TEXTS)
    assert scipy.sparse.issparse(matrix) and matrix.shape == (5, blocks.n_terms)
    np.testing.assert_allclose(scipy.sparse.linalg.norm(matrix, axis=1), 1.0)
    # Half of each row's squared norm sits in each block.
    word_part = matrix[:, : len(words)]
    np.testing.assert_allclose(scipy.sparse.linalg.norm(word_part, axis=1) ** 2, 0.5)


def test_blocks_round_trip_through_arrays_with_non_ascii_terms() -> None:
    blocks = TfidfBlocks().fit(TEXTS)
    arrays = blocks.to_arrays()
    assert arrays["tfidf.char.bytes"].dtype == np.uint8
    loaded = TfidfBlocks.from_arrays(arrays)
    new = ["利润 rose", "unseen words only", "亏损"]
    np.testing.assert_allclose(loaded.transform(new).toarray(), blocks.transform(new).toarray())
    del arrays["tfidf.word.idf"]
    with pytest.raises(ValueError, match=r"no tfidf\.word\.idf"):
        TfidfBlocks.from_arrays(arrays)


def test_combine_puts_dense_first() -> None:
    dense = np.array([[1.0, 0.0], [0.0, 1.0]])
    tfidf = scipy.sparse.csr_matrix(np.array([[0.0, 3.0, 0.0], [4.0, 0.0, 0.0]]))
    assert combine("dense", dense, None) is dense
    assert combine("tfidf", None, tfidf) is tfidf
    hybrid = combine("hybrid", dense, tfidf)
    np.testing.assert_array_equal(hybrid.toarray(), [[1, 0, 0, 3, 0], [0, 1, 4, 0, 0]])
    with pytest.raises(ValueError, match="unknown feature kind"):
        combine("both", dense, tfidf)


def test_check_features() -> None:
    assert check_features("hybrid", tuned=False, owner="M") == "hybrid"
    assert check_features("dense", tuned=True, owner="M") == "dense"
    with pytest.raises(ValueError, match=r"M\(features='words'\): choose one of"):
        check_features("words", tuned=False, owner="M")
    with pytest.raises(ValueError, match="needs a frozen encoder"):
        check_features("auto", tuned=True, owner="M")


def _accuracy(X_train, y_train, X_valid, y_valid) -> float:
    head = LogisticRegression(C=10.0, max_iter=1000).fit(X_train, y_train)
    return float(np.mean(head.predict(X_valid) == y_valid))


def test_choose_features_known_answers() -> None:
    rng = np.random.default_rng(0)
    y = rng.permutation(np.tile([0, 1], 30))  # shuffled: no digit of a row number tells the label
    # The label is in the words and not in the vectors: TF-IDF (hybrid ties, the earlier wins).
    texts = [("gain " if label else "loss ") + f"w{i}" for i, label in enumerate(y)]
    noise = rng.normal(size=(60, 8))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    choice, scores = choose_features(noise, texts, y, _accuracy, cv=3, seed=0, stratify=True)
    assert choice == "tfidf" and set(scores) == set(CANDIDATES)
    assert all(len(v) == 3 for v in scores.values())
    assert np.mean(scores["tfidf"]) == 1.0 and np.mean(scores["dense"]) < 0.8
    # The label is in the vectors and the texts are unique nonsense: dense.
    signal = np.column_stack([np.where(y == 1, 1.0, -1.0), np.zeros((60, 7))])
    nonsense = [f"token{i} other{i * 7}" for i in range(60)]
    choice, scores = choose_features(signal, nonsense, y, _accuracy, cv=3, seed=0, stratify=True)
    assert choice == "dense" and np.mean(scores["tfidf"]) < 0.8


def test_choose_features_checks_the_folds() -> None:
    dense = np.eye(4)
    with pytest.raises(ValueError, match="needs >= 3 texts of every class"):
        choose_features(dense, list("abcd"), np.array([0, 0, 0, 1]), _accuracy, 3, 0, True)
    with pytest.raises(ValueError, match="cv must be >= 2"):
        choose_features(dense, list("abcd"), np.array([0, 1, 0, 1]), _accuracy, 1, 0, True)
