"""``RiskScorer``: applicant rows -> TabLLM-style text -> frozen encoder -> probability of default.

Every applicant row is rendered with :func:`~dayzero.data.templates.serialize_row`'s sentence
style ("The credit amount is 1,169. The purpose is car (new)."), free-text columns included,
and encoded by a frozen :class:`~dayzero.encoders.encoder.TextEncoder` (loaded once per process
and model path). A scikit-learn head (logistic regression or histogram gradient boosting) maps
the vector, optionally concatenated with the raw tabular features and a sentiment score, to the
probability of default.

Bad input, documented and tested:

* unknown category value (not seen in ``fit``): rendered as ``"unknown"`` in the text, zero in
  the one-hot block, flagged by :meth:`RiskScorer.unknown_values`, in the ``unknown`` column of
  :meth:`RiskScorer.explain` and by a :class:`UnknownCategoryWarning`;
* missing value (None, NaN, ``""``, ``"?"``): the field is skipped in the text, as TabLLM does;
  a missing numeric takes the training mean in the tabular block;
* wrong type (a string in a numeric column): ``TypeError`` naming the column and the expected type;
* columns differing from the training frame: ``ValueError`` listing missing and unexpected ones.

No input produces a NaN score silently: a non-finite probability raises.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from dayzero.data.templates import is_missing, serialize_row
from dayzero.models.scorecard import PointsScale

UNKNOWN = "unknown"
CONFIG_FILE = "risk_scorer.json"
WEIGHTS_FILE = "risk_scorer.safetensors"
_ENCODERS: dict[tuple[str, int], Any] = {}
_MEMO: dict[tuple[str, int], dict[str, np.ndarray]] = {}
_MEMO_LIMIT = 200_000


class UnknownCategoryWarning(UserWarning):
    """A categorical value was not seen in ``fit``; it is scored as ``"unknown"``."""


def _encoder(name: str, max_length: int):
    """One frozen :class:`TextEncoder` per (model, max_length) and process: loading is slow."""
    from dayzero.encoders.encoder import TextEncoder

    key = (str(name), int(max_length))
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(name, max_length=max_length)
    return _ENCODERS[key]


def _encode(name: str, max_length: int, texts: list[str], batch_size: int) -> np.ndarray:
    """L2-normalised vectors; each text is encoded once per process (the encoder is frozen)."""
    key = (str(name), int(max_length))
    memo = _MEMO.setdefault(key, {})
    todo = list(dict.fromkeys(t for t in texts if t not in memo))
    if len(memo) + len(todo) > _MEMO_LIMIT:
        memo.clear()
        todo = list(dict.fromkeys(texts))
    if todo:
        vectors = _encoder(name, max_length).encode(todo, batch_size=batch_size, normalize=True)
        memo.update(zip(todo, np.asarray(vectors, dtype=np.float64), strict=True))
    if not texts:
        return np.zeros((0, _encoder(name, max_length).dim))
    return np.stack([memo[t] for t in texts])


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True)
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("RiskScorer needs a pandas DataFrame of applicants, not a sparse matrix")
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported")
    if array.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got shape {array.shape}: pass a DataFrame (Reshape your data "
            "with array.reshape(-1, 1) for one feature or array.reshape(1, -1) for one row)"
        )
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def _is_numeric_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class RiskScorer(ClassifierMixin, BaseEstimator):
    """Probability of default for applicants from a frozen text encoder over their rows.

    Parameters
    ----------
    encoder : str, default "all-MiniLM-L6-v2"
        Model name or local folder of the frozen :class:`~dayzero.encoders.encoder.TextEncoder`.
    head : {"logistic", "gbm"}, default "logistic"
        ``LogisticRegression`` or ``HistGradientBoostingClassifier``.
    text_columns : sequence of str, optional
        Free-text columns (rendered as they are, never flagged as unknown categories).
    fusion : bool, default False
        Also feed the raw tabular features to the head: one-hot categoricals and standardised
        numerics (plus the sentiment score when ``sentiment`` is set).
    text_weight : float, default 1.0
        Multiplies the (L2-normalised) text vector before the head: how much the text block
        counts next to the tabular one under the head's regularisation.
    sentiment : callable or TextClassifier, optional
        Scores the ``sentiment_column`` text: a callable ``list[str] -> array`` or an object
        with ``predict_proba`` (its last column is used). Added as one fusion feature.
    sentiment_column : str, optional
        The text column ``sentiment`` reads; defaults to the first of ``text_columns``.
    monotonic : dict, optional
        ``{numeric column: +1 | -1}``: probability of default may only rise (+1) or fall (-1)
        with that column. ``head="gbm"`` with ``fusion=True`` only.
    C : float, default 1.0
        Inverse L2 strength of the logistic head.
    learning_rate, max_iter, max_depth, min_samples_leaf
        Settings of the gbm head.
    labels, units : dict, optional
        Column -> label / unit for the text (``{"credit_amount": "DM"}``).
    max_length : int, default 128
        Encoder input length in tokens.
    base_score, base_odds, pdo : float, default 600, 50, 20
        Points scaling of :meth:`points` (see :class:`~dayzero.models.scorecard.PointsScale`).
    batch_size : int, default 32
    random_state : int, optional

    Attributes
    ----------
    classes_ : ndarray
        Class labels; ``predict_proba[:, 1]`` is the probability of ``classes_[1]`` (default).
    columns_ : list of str
        Training columns; scoring frames must have exactly these.
    numeric_columns_, categorical_columns_ : list of str
    categories_ : dict
        Categorical column -> values seen in ``fit``.
    n_features_in_ : int
    head_ : sklearn estimator
    n_iter_ : int
        Iterations the head ran (the most over classes).

    Notes
    -----
    ``score(X, y)`` keeps scikit-learn's meaning (mean accuracy); scorecard points are
    :meth:`points`. :meth:`explain` measures each field's contribution by occlusion: the change
    in the model's log-odds of default when that field alone is removed from the row (skipped
    in the text, training mean / no category in the tabular block). It is exact for this model
    (it calls the same head on the same features), but contributions need not add up to the
    score.

    Examples
    --------
    >>> scorer = RiskScorer(text_columns=["note"]).fit(applicants, default)  # doctest: +SKIP
    >>> scorer.points(new_applicants)  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: str = "all-MiniLM-L6-v2",
        head: str = "logistic",
        text_columns: Sequence[str] | None = None,
        fusion: bool = False,
        text_weight: float = 1.0,
        sentiment: Callable[[list[str]], Any] | Any | None = None,
        sentiment_column: str | None = None,
        monotonic: Mapping[str, int] | None = None,
        C: float = 1.0,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_depth: int | None = 3,
        min_samples_leaf: int = 5,
        labels: Mapping[str, str] | None = None,
        units: Mapping[str, str] | None = None,
        max_length: int = 128,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        batch_size: int = 32,
        random_state: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.text_columns = text_columns
        self.fusion = fusion
        self.text_weight = text_weight
        self.sentiment = sentiment
        self.sentiment_column = sentiment_column
        self.monotonic = monotonic
        self.C = C
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.labels = labels
        self.units = units
        self.max_length = max_length
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.batch_size = batch_size
        self.random_state = random_state

    # ---- scikit-learn API -------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = True
        return tags

    def fit(self, X: Any, y: Any) -> RiskScorer:
        """Learn the head on the applicants ``X`` and labels ``y`` (1 / the larger = default).

        Parameters
        ----------
        X : pandas.DataFrame
            One row per applicant (a 2-D array is accepted; its columns are named x0, x1, ...).
        y : array-like
            Binary (or multi-class) labels.

        Returns
        -------
        RiskScorer
        """
        self._check_params()
        frame = _as_frame(X)
        if len(frame) == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required")
        if frame.shape[1] == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={frame.shape}) while a minimum of 1 is "
                "required."
            )
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            from sklearn.exceptions import DataConversionWarning

            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is ravelled",
                DataConversionWarning,
                stacklevel=2,
            )
            y = y.ravel()
        if y.ndim != 1 or len(y) != len(frame):
            raise ValueError(f"y must be 1-D with one label per row: {y.shape} vs {len(frame)}")
        if pd.isna(y).any():
            raise ValueError("Input y contains NaN: every applicant needs a label")
        if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(np.mod(y, 1) == 0)):
            raise ValueError("Unknown label type: continuous; RiskScorer needs class labels")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "y needs samples of at least 2 classes in the data, but the data contains only "
                f"one class: {self.classes_.tolist()}"
            )
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.columns_ = list(frame.columns)
        self.n_features_in_ = len(self.columns_)
        texts = set(self.text_columns or [])
        absent = sorted(texts - set(self.columns_))
        if absent:
            raise ValueError(f"text_columns {absent} are not columns of X")
        self.numeric_columns_ = [
            c for c in self.columns_ if c not in texts and _is_numeric_column(frame[c])
        ]
        self.categorical_columns_ = [
            c for c in self.columns_ if c not in texts and c not in self.numeric_columns_
        ]
        self.categories_ = {
            c: sorted({str(v) for v in frame[c] if not is_missing(v)})
            for c in self.categorical_columns_
        }
        numeric = self._numeric_block(frame)
        self.numeric_mean_ = np.nanmean(numeric, axis=0) if numeric.size else np.zeros(0)
        self.numeric_mean_ = np.nan_to_num(self.numeric_mean_)
        std = np.nanstd(numeric, axis=0) if numeric.size else np.zeros(0)
        self.numeric_scale_ = np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
        self.sentiment_mean_ = 0.0
        features = self._features(frame, fitting=True)
        self.head_ = self._make_head(features.shape[1])
        self.head_.fit(features, y_index)
        self.n_iter_ = int(np.max(self.head_.n_iter_))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``; column 1 is the probability of default."""
        check_is_fitted(self, "head_")
        frame = self._validate(X)
        self._warn_unknown(frame)
        return self._proba(self._features(frame))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label per row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of default (binary) per row."""
        proba = self.predict_proba(X)
        if proba.shape[1] != 2:
            return np.log(np.clip(proba, 1e-12, None))
        p = np.clip(proba[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))

    # ---- scorecard ----------------------------------------------------------------------------

    @property
    def scale(self) -> PointsScale:
        """The :class:`PointsScale` of ``base_score``, ``base_odds`` and ``pdo``."""
        return PointsScale(float(self.base_score), float(self.base_odds), float(self.pdo))

    def points(self, X: Any) -> np.ndarray:
        """Scorecard points per row (higher = safer), with points-to-double-odds scaling."""
        self._require_binary("points")
        return self.scale.points(self.predict_proba(X)[:, 1])

    def unknown_values(self, X: Any) -> pd.DataFrame:
        """Categorical values not seen in ``fit``: columns ``row``, ``column``, ``value``."""
        check_is_fitted(self, "head_")
        return self._unknown_table(self._validate(X))

    def explain(self, X: Any, top: int = 3) -> pd.DataFrame:
        """Top reason codes per row by occlusion (see Notes of the class).

        Parameters
        ----------
        X : pandas.DataFrame
            Applicants to explain.
        top : int, default 3
            Reasons per row, the largest contributions towards default first.

        Returns
        -------
        pandas.DataFrame
            ``row`` (position in X), ``rank`` (1 = main reason), ``field``, ``value``,
            ``contribution`` (log-odds of default the field adds; > 0 raises risk),
            ``points`` (points the field costs; ``-factor * contribution``) and ``unknown``
            (the value was an unseen category, scored as "unknown").
        """
        self._require_binary("explain")
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ValueError(f"top must be a positive int, got {top!r}")
        frame = self._validate(X)
        base = self._logit(frame)
        unknown = self._unknown_table(frame)
        flagged = set(zip(unknown["row"], unknown["column"], strict=True))
        rows = []
        for i in range(len(frame)):
            one = frame.iloc[[i]]
            present = [c for c in self.columns_ if not is_missing(one[c].iloc[0])]
            if not present:
                continue
            occluded = pd.concat([one] * len(present), ignore_index=True)
            occluded = occluded.astype(object)
            for j, column in enumerate(present):
                occluded.iat[j, self.columns_.index(column)] = None
            contribution = base[i] - self._logit(occluded)
            order = np.argsort(-contribution, kind="stable")[:top]
            for rank, j in enumerate(order, start=1):
                rows.append(
                    {
                        "row": i,
                        "rank": rank,
                        "field": present[j],
                        "value": one[present[j]].iloc[0],
                        "contribution": float(contribution[j]),
                        "points": float(-self.scale.factor * contribution[j]),
                        "unknown": (i, present[j]) in flagged,
                    }
                )
        columns = ["row", "rank", "field", "value", "contribution", "points", "unknown"]
        return pd.DataFrame(rows, columns=columns)

    def report(self, X: Any, y: Any, reference: Any = None) -> Any:
        """The risk report (AUC, Gini, KS deciles, calibration, PSI) of this model on ``X, y``.

        Parameters
        ----------
        X, y
            Labelled applicants (1 = default).
        reference : pandas.DataFrame, optional
            Development population for PSI (e.g. the training frame); without it PSI is omitted.

        Returns
        -------
        dayzero.evaluate.risk_report.RiskReport
        """
        from dayzero.evaluate.risk_report import build_risk_report

        self._require_binary("report")
        frame = self._validate(X)
        pd_ = self.predict_proba(frame)[:, 1]
        ref = None
        if reference is not None:
            ref_frame = self._validate(reference)
            ref = (ref_frame, self.predict_proba(ref_frame)[:, 1])
        return build_risk_report(
            np.asarray(y) == self.classes_[1],
            pd_,
            scale=self.scale,
            frame=frame,
            reference=ref,
            columns=self.numeric_columns_ + self.categorical_columns_,
        )

    # ---- save / load --------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``risk_scorer.json`` + ``risk_scorer.safetensors`` (logistic head only).

        The gbm head is not saved: scikit-learn's HistGradientBoosting trees can only be
        pickled, and dayzero never pickles. The encoder is frozen, so only its name is stored.
        """
        check_is_fitted(self, "head_")
        from safetensors.numpy import save_file

        if self.head != "logistic":
            raise NotImplementedError(
                "only head='logistic' can be saved: HistGradientBoosting trees need pickle, "
                "which dayzero does not use; refit with head='logistic' to save"
            )
        if self.sentiment is not None:
            raise NotImplementedError(
                "a RiskScorer with a sentiment model cannot be saved; save the TextClassifier "
                "separately and pass it again after load(), or fit without sentiment"
            )
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        params = {k: v for k, v in self.get_params().items() if k != "sentiment"}
        for key in ("text_columns",):
            params[key] = list(params[key]) if params[key] is not None else None
        state = {
            "params": params,
            "classes": self.classes_.tolist(),
            "columns": self.columns_,
            "numeric_columns": self.numeric_columns_,
            "categorical_columns": self.categorical_columns_,
            "categories": self.categories_,
            "feature_names_in": (
                self.feature_names_in_.tolist() if hasattr(self, "feature_names_in_") else None
            ),
            "sentiment_mean": self.sentiment_mean_,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(state, indent=2, default=_json_default))
        save_file(
            {
                "coef": np.ascontiguousarray(self.head_.coef_, dtype=np.float64),
                "intercept": np.ascontiguousarray(self.head_.intercept_, dtype=np.float64),
                "numeric_mean": np.asarray(self.numeric_mean_, dtype=np.float64),
                "numeric_scale": np.asarray(self.numeric_scale_, dtype=np.float64),
            },
            str(folder / WEIGHTS_FILE),
        )
        return folder

    @classmethod
    def load(cls, path: str | Path) -> RiskScorer:
        """Read a model written by :meth:`save`."""
        from safetensors.numpy import load_file
        from sklearn.linear_model import LogisticRegression

        folder = Path(path)
        config = folder / CONFIG_FILE
        if not config.is_file():
            raise FileNotFoundError(f"{config} not found: is {folder} a RiskScorer.save folder?")
        state = json.loads(config.read_text())
        weights = load_file(str(folder / WEIGHTS_FILE))
        model = cls(**state["params"])
        model.classes_ = np.asarray(state["classes"])
        model.columns_ = list(state["columns"])
        model.n_features_in_ = len(model.columns_)
        if state.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        model.numeric_columns_ = list(state["numeric_columns"])
        model.categorical_columns_ = list(state["categorical_columns"])
        model.categories_ = {k: list(v) for k, v in state["categories"].items()}
        model.sentiment_mean_ = float(state["sentiment_mean"])
        model.numeric_mean_ = weights["numeric_mean"]
        model.numeric_scale_ = weights["numeric_scale"]
        head = LogisticRegression()
        head.coef_ = weights["coef"]
        head.intercept_ = weights["intercept"]
        head.classes_ = np.arange(len(model.classes_))
        head.n_features_in_ = head.coef_.shape[1]
        model.head_ = head
        return model

    # ---- internals ----------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.head not in ("logistic", "gbm"):
            raise ValueError(f"head must be 'logistic' or 'gbm', got {self.head!r}")
        if self.monotonic:
            if self.head != "gbm" or not self.fusion:
                raise ValueError(
                    "monotonic constraints need head='gbm' and fusion=True (they act on the raw "
                    "numeric features)"
                )
            bad = {k: v for k, v in self.monotonic.items() if v not in (-1, 1)}
            if bad:
                raise ValueError(f"monotonic values must be +1 or -1, got {bad}")
        if self.sentiment is not None and not self.fusion:
            raise ValueError("sentiment needs fusion=True (the score is a tabular feature)")
        self.scale  # noqa: B018 - validates base_score / base_odds / pdo early

    def _require_binary(self, what: str) -> None:
        check_is_fitted(self, "head_")
        if len(self.classes_) != 2:
            raise ValueError(f"{what} needs a binary model (default / no default)")

    def _make_head(self, n_features: int):
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression

        if self.head == "logistic":
            return LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        constraints = None
        if self.monotonic:
            unknown = sorted(set(self.monotonic) - set(self.numeric_columns_))
            if unknown:
                raise ValueError(
                    f"monotonic columns {unknown} are not numeric columns of X "
                    f"(numeric: {self.numeric_columns_})"
                )
            constraints = np.zeros(n_features, dtype=int)
            start = self._tabular_offset()
            for column, sign in self.monotonic.items():
                constraints[start + self.numeric_columns_.index(column)] = sign
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            monotonic_cst=constraints,
            random_state=self.random_state,
        )

    def _tabular_offset(self) -> int:
        return _encoder(self.encoder, self.max_length).dim

    def _validate(self, X: Any) -> pd.DataFrame:
        frame = _as_frame(X)
        missing = [c for c in self.columns_ if c not in frame.columns]
        unexpected = [c for c in frame.columns if c not in self.columns_]
        if missing or unexpected:
            raise ValueError(
                f"X has {frame.shape[1]} features, but RiskScorer is expecting "
                f"{self.n_features_in_} features as input; columns differ from training: "
                f"missing {missing}, unexpected {unexpected}. Pass a frame with exactly the "
                "training columns."
            )
        if len(frame) == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required")
        frame = frame[self.columns_]
        for column in self.numeric_columns_:
            series = frame[column]
            if _is_numeric_column(series):
                continue
            converted = pd.to_numeric(series, errors="coerce")
            wrong = [v for v, c in zip(series, converted, strict=True) if pd.isna(c)]
            wrong = [v for v in wrong if not is_missing(v)]
            if wrong:
                raise TypeError(
                    f"column {column!r} must be numeric (it was in fit), got {wrong[0]!r}; "
                    "convert it to numbers or leave the value empty (missing)"
                )
            frame[column] = converted
        return frame

    def _unknown_table(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for column in self.categorical_columns_:
            seen = set(self.categories_[column])
            for i, value in enumerate(frame[column]):
                if not is_missing(value) and str(value) not in seen:
                    rows.append({"row": i, "column": column, "value": value})
        return pd.DataFrame(rows, columns=["row", "column", "value"])

    def _warn_unknown(self, frame: pd.DataFrame) -> None:
        table = self._unknown_table(frame)
        if len(table):
            first = table.iloc[0]
            warnings.warn(
                f"{len(table)} unknown category value(s) scored as {UNKNOWN!r}, e.g. column "
                f"{first['column']!r} = {first['value']!r} (row {first['row']}); see "
                "RiskScorer.unknown_values",
                UnknownCategoryWarning,
                stacklevel=3,
            )

    def _texts(self, frame: pd.DataFrame) -> list[str]:
        records = frame.to_dict(orient="records")
        for record in records:
            for column in self.categorical_columns_:
                value = record[column]
                if not is_missing(value) and str(value) not in self.categories_[column]:
                    record[column] = UNKNOWN
        return [serialize_row(r, labels=self.labels, units=self.units) for r in records]

    def _numeric_block(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numeric_columns_:
            return np.zeros((len(frame), 0))
        return frame[self.numeric_columns_].apply(pd.to_numeric, errors="coerce").to_numpy(float)

    def _sentiment_scores(self, frame: pd.DataFrame) -> np.ndarray:
        column = self.sentiment_column or (list(self.text_columns or []) or [None])[0]
        if column is None or column not in frame.columns:
            raise ValueError("sentiment needs sentiment_column (or text_columns) naming a column")
        texts = ["" if is_missing(v) else str(v) for v in frame[column]]
        keep = [i for i, t in enumerate(texts) if t]
        scores = np.full(len(texts), self.sentiment_mean_, dtype=float)
        if keep:
            chosen = [texts[i] for i in keep]
            if hasattr(self.sentiment, "predict_proba"):
                values = np.asarray(self.sentiment.predict_proba(chosen))[:, -1]
            else:
                values = np.asarray(self.sentiment(chosen), dtype=float).reshape(-1)
            scores[keep] = values
        return scores

    def _features(self, frame: pd.DataFrame, fitting: bool = False) -> np.ndarray:
        vectors = _encode(self.encoder, self.max_length, self._texts(frame), self.batch_size)
        parts = [float(self.text_weight) * vectors]
        if self.fusion:
            numeric = self._numeric_block(frame)
            numeric = np.where(np.isnan(numeric), self.numeric_mean_, numeric)
            parts.append((numeric - self.numeric_mean_) / self.numeric_scale_)
            for column in self.categorical_columns_:
                values = frame[column].map(lambda v: None if is_missing(v) else str(v))
                cats = self.categories_[column]
                parts.append((values.to_numpy()[:, None] == np.asarray(cats)[None, :]) * 1.0)
            if self.sentiment is not None:
                scores = self._sentiment_scores(frame)
                if fitting:
                    self.sentiment_mean_ = float(np.mean(scores))
                parts.append(scores[:, None])
        return np.hstack(parts)

    def _proba(self, features: np.ndarray) -> np.ndarray:
        proba = self.head_.predict_proba(features)
        if not np.all(np.isfinite(proba)):
            raise FloatingPointError("the head produced a non-finite probability; check the input")
        return proba

    def _logit(self, frame: pd.DataFrame) -> np.ndarray:
        p = np.clip(self._proba(self._features(frame))[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
