"""Features of texts for the text heads: encoder vectors, word + character TF-IDF, or both.

:class:`~dayzero.risk.text_classifier.TextClassifier` and
:class:`~dayzero.risk.text_regressor.TextRegressor` take ``features=``:

* ``"dense"``: the encoder's unit-normalised sentence vectors (the default).
* ``"tfidf"``: two sparse TF-IDF blocks, word 1-2-grams and character 1-4-grams within word
  boundaries (``analyzer="char_wb"``). In scripts written without spaces (Chinese, Japanese)
  each character counts as a word (:data:`WORD_PATTERN`), so the word block holds character
  1-2-grams and the character block 1-4-grams of each clause; for English the character block
  adds sub-word pieces (inflections, numbers, tickers). Each block is L2-normalised and scaled by
  ``1/sqrt(2)``, so a text's row has unit norm.
* ``"hybrid"``: the dense vector (unit norm) beside the TF-IDF blocks (unit norm together), one
  linear head over both: the encoder's paraphrase knowledge plus the exact n-grams that a
  general-purpose encoder blurs (domain terms, characters).
* ``"auto"``: one of the three chosen by k-fold cross-validation on the training rows only
  (:func:`choose_features`); the choice and the fold scores are kept on the fitted model.

The TF-IDF vocabulary is saved without pickle (:meth:`TfidfBlocks.to_arrays`): the terms as
UTF-8 bytes with offsets and the IDF weights, in the model's ``weights.safetensors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import KFold, StratifiedKFold

FEATURES = ("dense", "tfidf", "hybrid", "auto")
CANDIDATES = ("dense", "tfidf", "hybrid")
# Kana and CJK ideographs: scripts written without spaces between words.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# scikit-learn's word pattern (2+ word characters), except that each unspaced-script character is
# a word of its own: else a whole Chinese clause is one "word" seen once, and the word block (half
# of each row) carries nothing. Word 1-2-grams are then character 1-2-grams there.
WORD_PATTERN = rf"(?u)[{_UNSPACED}]|(?:(?![{_UNSPACED}])\w){{2,}}"
# The two blocks and their settings; fixed (not tuned) so that saved models rebuild them exactly.
_BLOCKS = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": WORD_PATTERN},
    "char": {"analyzer": "char_wb", "ngram_range": (1, 4)},
}


def check_features(features: object, tuned: bool, owner: str) -> str:
    """``features`` if it is one of :data:`FEATURES` and fits the strategy, else a ``ValueError``.

    Parameters
    ----------
    features
        The ``features`` parameter.
    tuned
        Whether the encoder is fine-tuned (any strategy but ``"frozen"``, or few-shot).
    owner
        The estimator's class name, for the message.
    """
    if features not in FEATURES:
        raise ValueError(
            f"{owner}(features={features!r}): choose one of {', '.join(map(repr, FEATURES))}"
        )
    if tuned and features != "dense":
        raise ValueError(
            f"{owner}(features={features!r}) needs a frozen encoder: TF-IDF blocks are fitted "
            "beside frozen vectors only; use strategy='frozen' (and few_shot=False) or "
            "features='dense'"
        )
    return str(features)


class TfidfBlocks:
    """Word 1-2-gram and character 1-4-gram TF-IDF of texts, as one sparse matrix.

    ``sublinear_tf`` counts, lower-cased; every term seen in training is kept (no ``min_df``),
    like the TF-IDF baselines in ``bench/``. Rows have unit norm (each block ``1/sqrt(2)``).
    """

    def __init__(self) -> None:
        self.vectorizers_: dict[str, TfidfVectorizer] = {}

    @staticmethod
    def _new(block: str) -> TfidfVectorizer:
        return TfidfVectorizer(sublinear_tf=True, dtype=np.float64, **_BLOCKS[block])

    def fit(self, texts: Sequence[str]) -> TfidfBlocks:
        """Learn both vocabularies and IDF weights from ``texts``."""
        self.vectorizers_ = {block: self._new(block).fit(texts) for block in _BLOCKS}
        return self

    def transform(self, texts: Sequence[str]) -> scipy.sparse.csr_matrix:
        """The ``(n, n_terms)`` sparse matrix, word block first."""
        scale = 1.0 / np.sqrt(len(_BLOCKS))
        blocks = [self.vectorizers_[block].transform(texts) * scale for block in _BLOCKS]
        return scipy.sparse.hstack(blocks, format="csr")

    def fit_transform(self, texts: Sequence[str]) -> scipy.sparse.csr_matrix:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(texts).transform(texts)

    @property
    def n_terms(self) -> int:
        """Width of :meth:`transform`'s matrix."""
        return sum(len(v.vocabulary_) for v in self.vectorizers_.values())

    def to_arrays(self, prefix: str = "tfidf") -> dict[str, np.ndarray]:
        """The vocabularies and IDF weights as arrays (for safetensors; no pickle)."""
        arrays = {}
        for block, vectorizer in self.vectorizers_.items():
            terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            encoded = [term.encode("utf-8") for term in terms]
            lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
            arrays[f"{prefix}.{block}.bytes"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            arrays[f"{prefix}.{block}.offsets"] = np.concatenate([[0], np.cumsum(lengths)])
            arrays[f"{prefix}.{block}.idf"] = np.asarray(vectorizer.idf_, dtype=np.float64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "tfidf") -> TfidfBlocks:
        """Rebuild what :meth:`to_arrays` wrote; a missing array raises ``ValueError``."""
        blocks = cls()
        for block in _BLOCKS:
            names = [f"{prefix}.{block}.{part}" for part in ("bytes", "offsets", "idf")]
            missing = [name for name in names if name not in arrays]
            if missing:
                raise ValueError(
                    f"the saved model has no {', '.join(missing)} in weights.safetensors: the "
                    "folder is incomplete; save the model again"
                )
            raw, offsets, idf = (arrays[name] for name in names)
            data = raw.tobytes()
            terms = [
                data[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1)
            ]
            vectorizer = cls._new(block)
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(terms)}
            vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
            blocks.vectorizers_[block] = vectorizer
        return blocks


def combine(
    kind: str, dense: np.ndarray | None, tfidf: scipy.sparse.spmatrix | None
) -> np.ndarray | scipy.sparse.csr_matrix:
    """The design matrix of feature ``kind`` from the dense vectors and / or the TF-IDF rows."""
    if kind == "dense":
        return dense
    if kind == "tfidf":
        return tfidf
    if kind == "hybrid":
        return scipy.sparse.hstack([scipy.sparse.csr_matrix(dense), tfidf], format="csr")
    raise ValueError(f"unknown feature kind {kind!r}")


def choose_features(
    dense: np.ndarray,
    texts: Sequence[str],
    y: np.ndarray,
    fit_score: Callable[[object, np.ndarray, object, np.ndarray], float],
    cv: int,
    seed: int,
    stratify: bool,
) -> tuple[str, dict[str, list[float]]]:
    """Choose ``"dense"``, ``"tfidf"`` or ``"hybrid"`` by ``cv``-fold cross-validation.

    Only the rows passed in (the training rows) are used: each fold's TF-IDF vocabulary is
    fitted on that fold's training part, the head is fitted there and scored on the held-out
    part. The dense vectors come from the frozen encoder, which no fold changes.

    Parameters
    ----------
    dense
        Encoder vectors of ``texts``, ``(n, d)``.
    texts
        The training texts.
    y
        Targets (class codes or values).
    fit_score
        ``fit_score(X_train, y_train, X_valid, y_valid)``: fits a fresh head, returns the
        validation score (higher is better).
    cv
        Number of folds (>= 2).
    seed
        Seeds the fold shuffle.
    stratify
        Stratified folds (classification) or plain shuffled folds (regression).

    Returns
    -------
    (choice, scores)
        The kind with the best mean fold score (ties go to the earlier of
        :data:`CANDIDATES`) and every kind's per-fold scores.
    """
    if int(cv) < 2:
        raise ValueError(f"cv must be >= 2 folds to choose features, got {cv!r}")
    y = np.asarray(y)
    if stratify:
        counts = np.unique(y, return_counts=True)[1]
        if counts.min() < cv:
            raise ValueError(
                f"features='auto' with cv={cv} needs >= {cv} texts of every class, but one "
                f"class has {counts.min()}; lower cv or pick features explicitly"
            )
        splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=seed)
    else:
        if len(y) < cv:
            raise ValueError(f"features='auto' with cv={cv} needs >= {cv} texts, got {len(y)}")
        splitter = KFold(n_splits=int(cv), shuffle=True, random_state=seed)
    texts = list(texts)
    scores: dict[str, list[float]] = {kind: [] for kind in CANDIDATES}
    for train, valid in splitter.split(dense, y):
        blocks = TfidfBlocks().fit([texts[i] for i in train])
        tfidf_train = blocks.transform([texts[i] for i in train])
        tfidf_valid = blocks.transform([texts[i] for i in valid])
        for kind in CANDIDATES:
            X_train = combine(kind, dense[train], tfidf_train)
            X_valid = combine(kind, dense[valid], tfidf_valid)
            scores[kind].append(float(fit_score(X_train, y[train], X_valid, y[valid])))
    means = [np.mean(scores[kind]) for kind in CANDIDATES]
    return CANDIDATES[int(np.argmax(means))], scores
