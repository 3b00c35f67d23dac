"""``TextEnsemble``: soft voting over text classifiers, for few labels.

Members are :class:`~dayzero.risk.text_classifier.TextClassifier` configurations (different
features, fitting modes or seeds); ``fit`` clones and fits each on the same texts, and
``predict_proba`` is the weighted mean of their probabilities, like scikit-learn's
``VotingClassifier(voting="soft")``, which cannot take texts as ``X`` and has no
safetensors/JSON artifact. Members whose errors differ (TF-IDF features and a fine-tuned
encoder, say) are what an average gains from.

Saved as a ``"text-ensemble"`` artifact: names and weights in ``dayzero.json``, each member as
the part ``members/<name>/`` (a ``"text-classifier"`` artifact). Never pickle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from dayzero.core.artifact import Artifact, load_artifact, save_artifact
from dayzero.risk.text_classifier import TextClassifier

ARTIFACT_KIND = "text-ensemble"
MEMBERS_FOLDER = "members"


class TextEnsemble(ClassifierMixin, BaseEstimator):
    """Soft-voting ensemble of text classifiers.

    Parameters
    ----------
    estimators : list of (str, TextClassifier)
        Named member configurations (names unique, usable as folder names).
    weights : list of float, optional
        One non-negative weight per member (not all 0); equal weights by default.

    Attributes
    ----------
    estimators_ : list of TextClassifier
        The fitted members, in the order of ``estimators``.
    classes_ : ndarray
        The labels seen in ``fit``, sorted (every member has the same).

    Examples
    --------
    >>> ensemble = TextEnsemble([("tfidf", TextClassifier(features="tfidf")),
    ...                          ("tuned", TextClassifier(strategy="full"))])  # doctest: +SKIP
    >>> ensemble.fit(texts, labels).predict(["profit doubled"])  # doctest: +SKIP
    """

    def __init__(
        self,
        estimators: list[tuple[str, TextClassifier]],
        weights: list[float] | None = None,
    ) -> None:
        self.estimators = estimators
        self.weights = weights

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags

    def _check(self) -> np.ndarray:
        """The normalised weights, or a ``ValueError`` naming what is wrong."""
        if not self.estimators:
            raise ValueError("estimators is empty: pass a list of (name, TextClassifier) pairs")
        names = [name for name, _ in self.estimators]
        if len(set(names)) != len(names):
            raise ValueError(f"estimators has repeated names {names}; give each member its own")
        for name, member in self.estimators:
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                raise ValueError(f"estimator name {name!r} must be a plain folder name")
            if not isinstance(member, TextClassifier):
                raise TypeError(
                    f"estimator {name!r} is a {type(member).__name__}; members must be "
                    "TextClassifier instances"
                )
        weights = np.ones(len(names)) if self.weights is None else np.asarray(self.weights, float)
        if weights.shape != (len(names),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"weights must be {len(names)} non-negative numbers, not all 0; got {self.weights}"
            )
        return weights / weights.sum()

    def fit(self, X: Any, y: Any, unlabelled: Any = None) -> TextEnsemble:
        """Fit a clone of every member on texts ``X`` with labels ``y``.

        ``unlabelled`` texts go to the members with ``self_training=True`` only.
        """
        self.weights_ = self._check()
        self.estimators_ = []
        for _, member in self.estimators:
            fitted = clone(member)
            if fitted.self_training:
                fitted.fit(X, y, unlabelled=unlabelled)
            else:
                fitted.fit(X, y)
            self.estimators_.append(fitted)
        self.classes_ = self.estimators_[0].classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "estimators_")
        return sum(
            w * m.predict_proba(X) for w, m in zip(self.weights_, self.estimators_, strict=True)
        )

    def predict(self, X: Any) -> np.ndarray:
        """The label with the highest mean probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write a ``"text-ensemble"`` artifact with every member under ``members/<name>/``."""
        check_is_fitted(self, "estimators_")
        names = [name for name, _ in self.estimators]
        state = {"members": names, "weights": self.weights_.tolist()}
        folder = save_artifact(folder, Artifact(ARTIFACT_KIND, type(self).__name__, {}, state))
        for name, member in zip(names, self.estimators_, strict=True):
            member.save(folder / MEMBERS_FOLDER / name)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TextEnsemble:
        """Rebuild an ensemble written by :meth:`save`."""
        folder = Path(folder)
        state = load_artifact(folder, ARTIFACT_KIND).state
        members = [TextClassifier.load(folder / MEMBERS_FOLDER / n) for n in state["members"]]
        ensemble = cls(
            [(n, clone(m)) for n, m in zip(state["members"], members, strict=True)],
            state["weights"],
        )
        ensemble.estimators_ = members
        ensemble.weights_ = np.asarray(state["weights"], dtype=float)
        ensemble.classes_ = members[0].classes_
        return ensemble
