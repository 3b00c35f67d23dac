"""``RiskScorer``: applicant rows -> TabLLM-style text -> encoder -> probability of default.

Every applicant row is rendered with :func:`~dayzero.core.templates.serialize_row`'s sentence
style ("The credit amount is 1,169. The purpose is car (new)."), free-text columns included.
With ``head="logistic"`` or ``"gbm"`` the text is encoded by a frozen
:class:`~dayzero.text.encoder.TextEncoder` (loaded once per process and model path) and a
head (scikit-learn logistic regression, or LightGBM gradient boosting) maps the vector,
optionally concatenated with the raw tabular features and a sentiment score, to the probability
of default. With ``head="encoder"`` the encoder itself is fine-tuned on the rendered text
(a :class:`~dayzero.risk.text_classifier.TextClassifier` with LoRA, full fine-tuning or the
SetFit-style few-shot mode) and scores the applicants.

Probability of default (PD): the target is binary, and the PD is the probability of the label
``positive_label`` (by default the larger of the two labels: 1 for 0/1 targets, ``True`` for
booleans). Pass ``positive_label`` for any other coding (e.g. ``"bad"`` for good/bad labels, or
2 for German credit's original 1 = good / 2 = bad). :meth:`RiskScorer.predict_pd` returns it;
``predict_proba`` keeps scikit-learn's column order (``classes_``, sorted).

Bad input, documented and tested:

* unknown category value (not seen in ``fit``): rendered as ``"unknown"`` in the text, zero in
  the one-hot block, flagged by :meth:`RiskScorer.unknown_values`, in the ``unknown`` column of
  :meth:`RiskScorer.explain` and by a :class:`UnknownCategoryWarning`;
* missing value (None, NaN, ``""``, ``"?"``): the field is skipped in the text, as TabLLM does;
  a missing numeric takes the training mean in the tabular block;
* wrong type (a string in a numeric column): ``TypeError`` naming the column and the expected type;
* columns differing from the training frame: ``ValueError`` listing missing and unexpected ones;
* a row with every field missing: rendered as ``"No information is given."``;
* a target with other than two labels, or a ``positive_label`` that is not one of them:
  ``ValueError`` saying what to pass.

No input produces a NaN score silently: a non-finite probability raises.

Saved in the artifact format of :mod:`dayzero.core.artifact` (``dayzero.json`` +
``weights.safetensors``) for every head: the gbm booster in LightGBM's own text format, a string
inside the JSON (:class:`~dayzero.risk.gbm.GBMHead`), the fine-tuned encoder through
:meth:`TextClassifier.save <dayzero.risk.text_classifier.TextClassifier.save>` as the part
``head/``. Never pickle.
"""

from __future__ import annotations

import copy
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

from dayzero.core.artifact import Artifact, load_artifact, save_artifact
from dayzero.core.checks import positive_int
from dayzero.core.templates import is_missing, serialize_row
from dayzero.risk.scorecard import PointsScale

UNKNOWN = "unknown"
EMPTY_ROW = "No information is given."
HEADS = ("logistic", "gbm", "encoder")
ARTIFACT_KIND = "risk-scorer"
ENCODER_HEAD_DIR = "head"  # the fine-tuned encoder head: a text-classifier part
_ENCODERS: dict[tuple[str, int], Any] = {}
_MEMO: dict[tuple[str, int], dict[str, np.ndarray]] = {}
_MEMO_LIMIT = 200_000


class UnknownCategoryWarning(UserWarning):
    """A categorical value was not seen in ``fit``; it is scored as ``"unknown"``."""


def _encoder(name: str, max_length: int):
    """One frozen :class:`TextEncoder` per (model, max_length) and process: loading is slow."""
    from dayzero.text.encoder import TextEncoder

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
    """Probability of default for applicants from a text encoder over their rows.

    Parameters
    ----------
    encoder : str, default "all-MiniLM-L6-v2"
        Model name or local folder of the :class:`~dayzero.text.encoder.TextEncoder`.
    head : {"logistic", "gbm", "encoder"}, default "logistic"
        ``LogisticRegression`` or LightGBM gradient boosting (``lightgbm.LGBMClassifier``) on
        the frozen encoder's vectors, or ``"encoder"``: the encoder fine-tuned on the rendered
        rows is the model (a :class:`~dayzero.risk.text_classifier.TextClassifier`; see
        ``strategy``). The encoder head reads the text only: ``fusion``, ``sentiment`` and
        ``monotonic`` need another head.
    positive_label : label, optional
        The label that means default; the probability of default is its probability. Default:
        the larger of the two labels (1 for 0/1 targets).
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
        with ``predict_proba`` (its last column is used), already fitted. Added as one fusion
        feature. A pretrained component: the scorer never fits it, so ``sklearn.base.clone``
        (and so ``GridSearchCV``, ``cross_val_score``, ...) keeps this very object instead of
        an unfitted copy, and ``get_params(deep=True)`` does not expose its parameters (see
        Notes).
    sentiment_column : str, optional
        The text column ``sentiment`` reads; defaults to the first of ``text_columns``.
    monotonic : dict, optional
        ``{numeric column: +1 | -1}``: probability of default may only rise (+1) or fall (-1)
        with that column. ``head="gbm"`` with ``fusion=True`` only.
    C : float, default 1.0
        Inverse L2 strength of the logistic head (for ``head="encoder"``: of the logistic
        probe that initialises the fine-tuned head, or of the SetFit head).
    learning_rate, max_iter, max_depth, min_samples_leaf
        Settings of the gbm head, LightGBM's ``learning_rate``, ``n_estimators`` (boosting
        rounds), ``max_depth`` (None: no limit; 31 leaves at most) and ``min_child_samples``
        (see :func:`~dayzero.risk.gbm.gbm_classifier`). The head reads the features the
        scorer builds: text vector, one-hot categoricals, standardised numerics with a missing
        value as the training mean.
    strategy : str, default "lora"
        ``head="encoder"``: the transfer strategy that fine-tunes the encoder (``"lora"``,
        ``"full"``, ``"top_k"``, ...; see :func:`~dayzero.text.adapters.strategy_config`).
    strategy_params : dict, optional
        ``head="encoder"``: options of the strategy (``{"r": 8}`` for LoRA).
    few_shot : bool, default False
        ``head="encoder"``: SetFit-style mode (contrastive tuning on label pairs, then a logistic
        head) instead of fine-tuning encoder and head with cross-entropy.
    epochs : int, default 3
        ``head="encoder"``: fine-tuning (or contrastive) epochs.
    lr : float, default 3e-4
        ``head="encoder"``: learning rate (3e-4 suits LoRA; use ~2e-5 for ``"full"``).
    labels, units : dict, optional
        Column -> label / unit for the text (``{"credit_amount": "DM"}``).
    max_length : int, default 128
        Encoder input length in tokens.
    base_score, base_odds, pdo : float, default 600, 50, 20
        Points scaling of :meth:`points` (see :class:`~dayzero.risk.scorecard.PointsScale`).
    batch_size : int, default 32
        Encoding batch size; for ``head="encoder"`` also the fine-tuning batch size.
    random_state : int, optional

    Attributes
    ----------
    classes_ : ndarray
        The two labels, sorted; ``predict_proba`` columns follow this order.
    positive_label_ : label
        The label whose probability is the probability of default.
    columns_ : list of str
        Training columns; scoring frames must have exactly these.
    numeric_columns_, categorical_columns_ : list of str
    categories_ : dict
        Categorical column -> values seen in ``fit``.
    n_features_in_ : int
    head_ : LogisticRegression, GBMHead or TextClassifier
        The fitted head (:class:`~dayzero.risk.gbm.GBMHead` holds the LightGBM booster).
    n_iter_ : int
        Iterations the head ran (the most over classes; epochs for ``head="encoder"``).

    Notes
    -----
    Cloning: scikit-learn clones nested estimators deep, which would replace a fitted
    ``sentiment`` model with an unfitted copy that ``fit`` never trains (scikit-learn wraps
    such pre-fitted components in ``sklearn.frozen.FrozenEstimator``). ``sentiment`` is
    always such a component here, so :meth:`__sklearn_clone__` clones every other parameter
    and passes the same ``sentiment`` object on; wrapping it in ``FrozenEstimator`` yourself
    works too. The object is shared, not copied: change it and every clone sees the change.

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
        positive_label: Any = None,
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
        strategy: str = "lora",
        strategy_params: Mapping[str, Any] | None = None,
        few_shot: bool = False,
        epochs: int = 3,
        lr: float = 3e-4,
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
        self.positive_label = positive_label
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
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.few_shot = few_shot
        self.epochs = epochs
        self.lr = lr
        self.labels = labels
        self.units = units
        self.max_length = max_length
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.batch_size = batch_size
        self.random_state = random_state

    # ---- scikit-learn API -------------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters. ``deep`` changes nothing: the only estimator-like parameter,
        ``sentiment``, is a pretrained component whose own parameters are not the scorer's
        (``set_params(sentiment__...)`` would change the caller's fitted model in place).

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn's protocol.

        Returns
        -------
        dict
        """
        return super().get_params(deep=False)

    def __sklearn_clone__(self) -> RiskScorer:
        """An unfitted copy with cloned parameters, except ``sentiment``: the same object."""
        from sklearn.base import clone

        params = {
            key: value if key == "sentiment" else clone(value, safe=False)
            for key, value in self.get_params().items()
        }
        copied = type(self)(**params)
        if "_metadata_request" in vars(self):  # set_score_request(...) survives, as in sklearn
            copied._metadata_request = copy.deepcopy(self._metadata_request)
        return copied

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        # Probability of default: the target is binary (see positive_label).
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> RiskScorer:
        """Learn the head on the applicants ``X`` and binary labels ``y``.

        Parameters
        ----------
        X : pandas.DataFrame
            One row per applicant (a 2-D array is accepted; its columns are named x0, x1, ...).
        y : array-like
            Two labels; ``positive_label`` (default: the larger, 1 for 0/1) means default.

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
        if len(self.classes_) > 2:
            raise ValueError(
                "Only binary classification is supported: RiskScorer needs a binary target "
                f"(default / no default), but y has "
                f"{len(self.classes_)} classes {self.classes_.tolist()[:10]}; map y to two labels "
                "first, e.g. y = (status == 'defaulted').astype(int)"
            )
        self.positive_label_ = self._resolve_positive_label()
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
        inputs = self._inputs(frame, fitting=True)
        if self.head == "encoder":
            self.head_ = self._make_encoder_head()
            with warnings.catch_warnings():
                # The rendered rows are the training texts; nothing for the user to act on.
                warnings.simplefilter("ignore", FutureWarning)
                self.head_.fit(inputs, y_index)
            self.n_iter_ = int(self.epochs)
            return self
        if self.head == "gbm":
            from dayzero.risk.gbm import GBMHead

            self.head_ = GBMHead.fit(inputs, y_index, **self._gbm_params(inputs.shape[1]))
        else:
            from sklearn.linear_model import LogisticRegression

            self.head_ = LogisticRegression(
                C=self.C, max_iter=2000, random_state=self.random_state
            ).fit(inputs, y_index)
        self.n_iter_ = int(np.max(self.head_.n_iter_))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, 2)``, columns in ``classes_`` order.

        The probability of default is the column of ``positive_label_`` (column 1 unless
        ``positive_label`` is the smaller label); :meth:`predict_pd` returns it directly.
        """
        check_is_fitted(self, "head_")
        frame = self._validate(X)
        self._warn_unknown(frame)
        return self._proba(self._inputs(frame))

    def predict_pd(self, X: Any) -> np.ndarray:
        """Probability of default per row: the probability of ``positive_label_``."""
        return self.predict_proba(X)[:, self._pd_column()]

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label per row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of ``classes_[1]`` per row (scikit-learn's convention); that is the log-odds
        of default unless ``positive_label`` is the smaller label."""
        p = np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))

    # ---- scorecard ----------------------------------------------------------------------------

    @property
    def scale(self) -> PointsScale:
        """The :class:`PointsScale` of ``base_score``, ``base_odds`` and ``pdo``."""
        return PointsScale(float(self.base_score), float(self.base_odds), float(self.pdo))

    def points(self, X: Any) -> np.ndarray:
        """Scorecard points per row (higher = safer), with points-to-double-odds scaling."""
        check_is_fitted(self, "head_")
        return self.scale.points(self.predict_pd(X))

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
        check_is_fitted(self, "head_")
        positive_int(top, "top")
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
            Labelled applicants (``positive_label_`` = default).
        reference : pandas.DataFrame, optional
            Development population for PSI (e.g. the training frame); without it PSI is omitted.

        Returns
        -------
        dayzero.risk.report.RiskReport
        """
        from dayzero.risk.report import build_risk_report

        check_is_fitted(self, "head_")
        frame = self._validate(X)
        pd_ = self.predict_pd(frame)
        ref = None
        if reference is not None:
            ref_frame = self._validate(reference)
            ref = (ref_frame, self.predict_pd(ref_frame))
        return build_risk_report(
            np.asarray(y) == self.positive_label_,
            pd_,
            scale=self.scale,
            frame=frame,
            reference=ref,
            columns=self.numeric_columns_ + self.categorical_columns_,
        )

    # ---- save / load --------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write a ``"risk-scorer"`` artifact (:mod:`dayzero.core.artifact`: ``dayzero.json`` +
        ``weights.safetensors``, the fine-tuned encoder head as the part ``head/``).

        Every head is saved without pickle: the logistic head's coefficients, the gbm booster as
        LightGBM's model text inside the JSON (:meth:`GBMHead.to_json
        <dayzero.risk.gbm.GBMHead.to_json>`), and the fine-tuned encoder through
        :meth:`TextClassifier.save <dayzero.risk.text_classifier.TextClassifier.save>`. A frozen
        encoder is stored by name only.
        """
        check_is_fitted(self, "head_")
        if self.sentiment is not None:
            raise NotImplementedError(
                "a RiskScorer with a sentiment model cannot be saved; save the TextClassifier "
                "separately and pass it again after load(), or fit without sentiment"
            )
        folder = Path(path)
        params = {k: v for k, v in self.get_params().items() if k != "sentiment"}
        for key in ("text_columns",):
            params[key] = list(params[key]) if params[key] is not None else None
        tensors = {
            "numeric_mean": np.asarray(self.numeric_mean_, dtype=np.float64),
            "numeric_scale": np.asarray(self.numeric_scale_, dtype=np.float64),
        }
        head_state = None
        if self.head == "logistic":
            tensors["coef"] = np.ascontiguousarray(self.head_.coef_, dtype=np.float64)
            tensors["intercept"] = np.ascontiguousarray(self.head_.intercept_, dtype=np.float64)
        elif self.head == "gbm":
            head_state = self.head_.to_json()
        state = {
            "classes": self.classes_.tolist(),
            "positive_label": self.classes_.tolist()[self._pd_column()],
            "columns": self.columns_,
            "numeric_columns": self.numeric_columns_,
            "categorical_columns": self.categorical_columns_,
            "categories": self.categories_,
            "feature_names_in": (
                self.feature_names_in_.tolist() if hasattr(self, "feature_names_in_") else None
            ),
            "sentiment_mean": self.sentiment_mean_,
            "n_iter": self.n_iter_,
            "head_state": head_state,
        }
        params = json.loads(json.dumps(params, default=_json_default))
        state = json.loads(json.dumps(state, default=_json_default))
        save_artifact(folder, Artifact(ARTIFACT_KIND, self.head, params, state, tensors))
        if self.head == "encoder":
            self.head_.save(folder / ENCODER_HEAD_DIR)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> RiskScorer:
        """Read a model written by :meth:`save`.

        A folder written by dayzero 0.1 (``risk_scorer.json``, scikit-learn gbm trees) is
        refused with an :class:`~dayzero.core.artifact.ArtifactError` that says to refit.
        """
        from sklearn.linear_model import LogisticRegression

        folder = Path(path)
        artifact = load_artifact(folder, ARTIFACT_KIND)
        state, weights = artifact.state, artifact.arrays
        model = cls(**artifact.params)
        model.classes_ = np.asarray(state["classes"])
        model.positive_label_ = model.classes_[
            model.classes_.tolist().index(state["positive_label"])
        ]
        model.columns_ = list(state["columns"])
        model.n_features_in_ = len(model.columns_)
        if state.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        model.numeric_columns_ = list(state["numeric_columns"])
        model.categorical_columns_ = list(state["categorical_columns"])
        model.categories_ = {k: list(v) for k, v in state["categories"].items()}
        model.sentiment_mean_ = float(state["sentiment_mean"])
        model.n_iter_ = int(state["n_iter"])
        model.numeric_mean_ = weights["numeric_mean"]
        model.numeric_scale_ = weights["numeric_scale"]
        if model.head == "logistic":
            head = LogisticRegression()
            head.coef_ = weights["coef"]
            head.intercept_ = weights["intercept"]
            head.classes_ = np.arange(len(model.classes_))
            head.n_features_in_ = head.coef_.shape[1]
        elif model.head == "gbm":
            from dayzero.risk.gbm import GBMHead

            head = GBMHead.from_json(state["head_state"])
        else:
            from dayzero.risk.text_classifier import TextClassifier

            head = TextClassifier.load(folder / ENCODER_HEAD_DIR)
        model.head_ = head
        return model

    # ---- internals ----------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.head == "encoder":
            if self.fusion:
                raise ValueError(
                    "head='encoder' scores the rendered text alone; fusion=True (and sentiment, "
                    "monotonic) need head='logistic' or head='gbm'"
                )
            if self.strategy == "frozen" and not self.few_shot:
                raise ValueError(
                    "head='encoder' fine-tunes the encoder: pass strategy='lora' / 'full' / ... or "
                    "few_shot=True; a frozen encoder with a logistic head is head='logistic'"
                )
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

    def _resolve_positive_label(self) -> Any:
        """``positive_label`` as one of ``classes_``, or a ValueError that says what to pass."""
        if self.positive_label is None:
            return self.classes_[1]
        matches = [c for c in self.classes_ if c == self.positive_label]
        if matches:
            return matches[0]
        raise ValueError(
            f"positive_label={self.positive_label!r} is not a label of y (labels: "
            f"{self.classes_.tolist()}); pass the label that means default, e.g. "
            f"positive_label={self.classes_.tolist()[1]!r}"
        )

    def _pd_column(self) -> int:
        return int(np.flatnonzero(self.classes_ == self.positive_label_)[0])

    def _make_encoder_head(self):
        from dayzero.risk.text_classifier import TextClassifier

        return TextClassifier(
            encoder=self.encoder,
            strategy=self.strategy,
            strategy_params=dict(self.strategy_params) if self.strategy_params else None,
            head_C=self.C,
            few_shot=self.few_shot,
            max_length=self.max_length,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            random_state=self.random_state,
        )

    def _gbm_params(self, n_features: int) -> dict[str, Any]:
        """Arguments of :func:`~dayzero.risk.gbm.gbm_classifier` for ``n_features`` inputs."""
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
        return {
            "learning_rate": self.learning_rate,
            "max_iter": self.max_iter,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "monotonic_cst": constraints,
            "random_state": self.random_state,
        }

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
        texts = [serialize_row(r, labels=self.labels, units=self.units) for r in records]
        return [text if text.strip() else EMPTY_ROW for text in texts]

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

    def _inputs(self, frame: pd.DataFrame, fitting: bool = False) -> np.ndarray | list[str]:
        """What the head reads: the rendered texts (encoder head) or the feature matrix."""
        if self.head == "encoder":
            return self._texts(frame)
        return self._features(frame, fitting=fitting)

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

    def _proba(self, inputs: np.ndarray | list[str]) -> np.ndarray:
        proba = self.head_.predict_proba(inputs)
        if not np.all(np.isfinite(proba)):
            raise FloatingPointError("the head produced a non-finite probability; check the input")
        return proba

    def _logit(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds of default, from the same head that scores."""
        p = self._proba(self._inputs(frame))[:, self._pd_column()]
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
