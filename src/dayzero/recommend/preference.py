"""Few-shot like / dislike classifier for TALLRec-style prompts (liked, disliked, target movie).

The model sees only what TALLRec's LLM sees: the ``k`` training examples -- each a user's
history titles split into liked and disliked, a target title and the label -- and pretrained
knowledge, here a frozen sentence encoder (MiniLM). It never reads ratings from the MovieLens log:
an item's mean rating over the full log would leak information TALLRec's model does not have.

How an example is scored (a logistic model in log-odds):

* **offset** -- the user's like rate in the prompt, ``logit((n_liked + a) / (n + 2a))``: a user who
  liked most of the history tends to like the target. This is the prior with weight 1.
* **learned corrections** (standardised over the training examples; L2-penalised towards 0, so
  with few examples the model stays close to the offset):

  - the like-rate log-odds again (its weight may move away from 1);
  - ``cos(target, mean liked) - cos(target, mean disliked)`` of title embeddings (taste);
  - the target's release year, parsed from ``"Title (year)"``;
  - an *item appeal* score: ridge regression from ``[title embedding, year]`` to how much more a
    user liked a title than their own like rate (``liked - like rate``), fitted on every history
    title of the training examples (ten labelled titles per example). The targets' own labels
    join that fit only for the final predictor, so the weights above are fitted on scores that
    never saw the target they score.

With ``use_text=False`` only the like rate and the year are used (no encoder).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize

YEAR = re.compile(r"\((\d{4})\)$")
COLUMNS = ("liked", "disliked", "target_title")


@dataclass
class PreferenceConfig:
    """Settings of :class:`PreferenceClassifier`.

    Parameters
    ----------
    l2
        Penalty ``l2 * ||w||^2`` on the learned corrections (larger: closer to the like-rate
        prior). The default is the value ``bench/tallrec_fewshot.py`` selects on TALLRec's
        valid set.
    ridge_alpha
        Ridge penalty of the item-appeal regression.
    pseudocount
        ``a`` in the like-rate prior ``(n_liked + a) / (n + 2a)``; keeps 0/10 and 10/10 finite.
    use_text
        ``False``: no encoder, only the like rate and the target year.
    """

    l2: float = 10.0
    ridge_alpha: float = 10.0
    pseudocount: float = 1.0
    use_text: bool = True

    def __post_init__(self) -> None:
        for name in ("l2", "ridge_alpha", "pseudocount"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.use_text, bool):
            raise ValueError(f"use_text must be True or False, got {self.use_text!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)


def title_year(title: str) -> float:
    """The year in ``"Title (1995)"``, or NaN when the title has none."""
    match = YEAR.search(title)
    return float(match[1]) if match else float("nan")


def _title_lists(examples: Any) -> tuple[list[list[str]], list[list[str]], list[str]]:
    if not isinstance(examples, pd.DataFrame):
        raise TypeError(
            "examples must be a pandas DataFrame with columns 'liked', 'disliked' (lists of "
            f"titles) and 'target_title', such as load_tallrec_movie(...).X; got {type(examples)}"
        )
    missing = [c for c in COLUMNS if c not in examples.columns]
    if missing:
        raise ValueError(
            f"examples lack columns {missing}; pass load_tallrec_movie(...).X or a frame with "
            "'liked', 'disliked' and 'target_title'"
        )
    if len(examples) == 0:
        raise ValueError("examples is empty; pass at least one example")
    liked = [list(v) for v in examples["liked"]]
    disliked = [list(v) for v in examples["disliked"]]
    targets = [str(v) for v in examples["target_title"]]
    empty = [i for i, (a, b) in enumerate(zip(liked, disliked, strict=True)) if not a and not b]
    if empty:
        raise ValueError(f"example {empty[0]} has an empty history (no liked or disliked title)")
    return liked, disliked, targets


def _fit_offset_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray, l2: float) -> np.ndarray:
    """``[bias, w]`` minimising the log-loss of ``offset + bias + x @ w`` plus ``l2 * ||w||^2``."""

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + params[0] + x @ params[1:]
        p = 1.0 / (1.0 + np.exp(-z))
        value = np.sum(np.logaddexp(0.0, z) - y * z) + l2 * np.sum(params[1:] ** 2)
        grad = np.r_[np.sum(p - y), x.T @ (p - y) + 2.0 * l2 * params[1:]]
        return float(value), grad

    start = np.zeros(x.shape[1] + 1)
    return minimize(loss, start, jac=True, method="L-BFGS-B").x


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """``[intercept, coef]`` of ridge regression (the intercept is not penalised)."""
    mean_x, mean_y = x.mean(axis=0), y.mean()
    xc = x - mean_x
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    return np.r_[mean_y - mean_x @ coef, coef]


class PreferenceClassifier:
    """Few-shot classifier: will the user like the target movie, given liked / disliked titles?

    Parameters
    ----------
    config
        Hyper-parameters; default :class:`PreferenceConfig()`.
    encoder
        A :class:`~dayzero.text.encoder.TextEncoder` (anything with
        ``encode(texts, normalize=True) -> (n, d)``); created (MiniLM) on first use when ``None``
        and ``config.use_text``.

    Attributes
    ----------
    weights_ : numpy.ndarray
        ``[bias, like-rate, taste, year, item appeal]`` (``[bias, like-rate, year]`` without text)
        on standardised features, added to the like-rate log-odds offset.

    Examples
    --------
    >>> X = pd.DataFrame({"liked": [["A (1990)"], ["B (1991)"]] * 4,
    ...                   "disliked": [["C (1992)"] * 3, []] * 4,
    ...                   "target_title": ["D (1993)"] * 8})
    >>> model = PreferenceClassifier(PreferenceConfig(use_text=False)).fit(X, [0, 1] * 4)
    >>> model.predict_proba(X).shape
    (8, 2)
    """

    def __init__(self, config: PreferenceConfig | None = None, encoder: Any = None) -> None:
        self.config = config or PreferenceConfig()
        self.encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}

    # --- text vectors ---------------------------------------------------------------------------

    def _encode(self, titles: Sequence[str]) -> None:
        new = sorted(set(titles) - set(self._vectors))
        if not new:
            return
        if self.encoder is None:
            from dayzero.text.encoder import TextEncoder

            self.encoder = TextEncoder()
        vectors = np.asarray(self.encoder.encode(new, normalize=True), dtype=np.float64)
        self._vectors.update(zip(new, vectors, strict=True))

    def _matrix(self, titles: Sequence[str]) -> np.ndarray:
        return np.stack([self._vectors[t] for t in titles])

    def _mean_vector(self, titles: list[str]) -> np.ndarray:
        dim = len(next(iter(self._vectors.values())))
        return self._matrix(titles).mean(axis=0) if titles else np.zeros(dim)

    # --- features -------------------------------------------------------------------------------

    def _like_logit(self, liked: list[list[str]], disliked: list[list[str]]) -> np.ndarray:
        a = self.config.pseudocount
        n_liked = np.array([len(x) for x in liked], dtype=np.float64)
        n = n_liked + np.array([len(x) for x in disliked], dtype=np.float64)
        rate = (n_liked + a) / (n + 2 * a)
        return np.log(rate / (1 - rate))

    def _year_z(self, titles: Sequence[str]) -> np.ndarray:
        years = np.array([title_year(t) for t in titles])
        years = np.where(np.isnan(years), self.year_mean_, years)
        return (years - self.year_mean_) / self.year_std_

    def _item_inputs(self, titles: Sequence[str]) -> np.ndarray:
        return np.c_[self._matrix(titles), self._year_z(titles)]

    def _raw_features(
        self,
        liked: list[list[str]],
        disliked: list[list[str]],
        targets: list[str],
        item: np.ndarray,
    ) -> np.ndarray:
        columns = [self._like_logit(liked, disliked), self._year_z(targets)]
        if self.config.use_text:
            target_vectors = self._matrix(targets)
            liked_mean = np.stack([self._mean_vector(x) for x in liked])
            disliked_mean = np.stack([self._mean_vector(x) for x in disliked])
            taste = np.sum(target_vectors * (liked_mean - disliked_mean), axis=1)
            appeal = self._item_inputs(targets) @ item[1:] + item[0]
            columns[1:1] = [taste]
            columns.append(appeal)
        return np.column_stack(columns)

    def _history_pairs(
        self, liked: list[list[str]], disliked: list[list[str]]
    ) -> tuple[list[str], np.ndarray]:
        """Every history title with ``liked - the user's like rate`` as its appeal target."""
        titles, residuals = [], []
        for good, bad in zip(liked, disliked, strict=True):
            rate = len(good) / (len(good) + len(bad))
            titles += good + bad
            residuals += [1 - rate] * len(good) + [-rate] * len(bad)
        return titles, np.asarray(residuals)

    # --- estimator API --------------------------------------------------------------------------

    def fit(self, examples: pd.DataFrame, y: Any) -> Self:
        """Fit on ``k`` labelled examples.

        Parameters
        ----------
        examples
            Columns ``liked`` and ``disliked`` (lists of ``"Title (year)"``) and ``target_title``.
        y
            1 = the user liked the target, 0 = not; both classes should be present (with one
            class the model keeps the like-rate prior and only shifts the bias).
        """
        liked, disliked, targets = _title_lists(examples)
        labels = np.asarray(y, dtype=np.float64)
        if labels.shape != (len(targets),) or not np.isin(labels, (0, 1)).all():
            raise ValueError(f"y must be {len(targets)} labels in {{0, 1}}, got {np.asarray(y)!r}")
        all_titles = [t for x in liked + disliked for t in x] + targets
        years = np.array([title_year(t) for t in all_titles])
        known = years[~np.isnan(years)]
        self.year_mean_ = float(known.mean()) if len(known) else 0.0
        self.year_std_ = float(known.std()) if len(known) > 1 and known.std() > 0 else 1.0

        item_fit = item_final = np.zeros(1)
        if self.config.use_text:
            self._encode(all_titles)
            pair_titles, residuals = self._history_pairs(liked, disliked)
            # Scores for the weight fit come from history titles only, so no training target's
            # own label is inside the score it is paired with.
            item_fit = _ridge(self._item_inputs(pair_titles), residuals, self.config.ridge_alpha)
            rates = np.array(
                [len(a) / (len(a) + len(b)) for a, b in zip(liked, disliked, strict=True)]
            )
            item_final = _ridge(
                self._item_inputs(pair_titles + targets),
                np.r_[residuals, labels - rates],
                self.config.ridge_alpha,
            )
        raw = self._raw_features(liked, disliked, targets, item_fit)
        self.feature_mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.feature_std_ = np.where(std > 1e-12, std, 1.0)
        offset = self._like_logit(liked, disliked)
        self.weights_ = _fit_offset_logistic(
            (raw - self.feature_mean_) / self.feature_std_, labels, offset, self.config.l2
        )
        self.item_weights_ = item_final
        return self

    def decision_function(self, examples: pd.DataFrame) -> np.ndarray:
        """Log-odds that the user likes the target, one per example."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("PreferenceClassifier is not fitted; call fit(examples, y) first")
        liked, disliked, targets = _title_lists(examples)
        if self.config.use_text:
            self._encode([t for x in liked + disliked for t in x] + targets)
        raw = self._raw_features(liked, disliked, targets, self.item_weights_)
        x = (raw - self.feature_mean_) / self.feature_std_
        return self._like_logit(liked, disliked) + self.weights_[0] + x @ self.weights_[1:]

    def predict_proba(self, examples: pd.DataFrame) -> np.ndarray:
        """``(n, 2)`` probabilities of ``[dislike, like]``."""
        like = 1.0 / (1.0 + np.exp(-self.decision_function(examples)))
        return np.column_stack([1.0 - like, like])

    def predict(self, examples: pd.DataFrame) -> np.ndarray:
        """1 where the like probability is at least 0.5, else 0."""
        return (self.decision_function(examples) >= 0).astype(np.int64)
