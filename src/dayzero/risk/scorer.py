"""``RiskScorer``: probability of default for applicants, from their table and their free text.

Two representations of an applicant:

``representation="tabular"`` (the default)
    A LightGBM gradient-boosted tree model on the columns themselves: numerics as they are
    (missing values native: the trees learn where a missing value goes), categoricals as
    LightGBM categories, monotone constraints allowed. Free-text columns (named by
    ``text_columns``, or detected: string columns with many distinct values that are sentences
    or nearly all different, see :func:`~dayzero.risk.tabular.detect_text_columns`) are encoded
    by a frozen :class:`~dayzero.text.encoder.TextEncoder`, once per distinct text, reduced to a
    few principal components fitted on the training rows, and (with ``sentiment``) scored for
    sentiment. Those text features join the model **only when stratified K-fold
    cross-validation on the training rows says they help** (``text_selection_`` records every
    fold's AUC and the decision). So the default is never worse than its tabular part on the
    folds, and with no free-text column it *is* the tabular model: no encoder is ever loaded.
    With ``prior`` (a :class:`~dayzero.risk.prior.TransferPrior`: what other credit tables
    taught, by field phrase) a third candidate joins LightGBM and the linear model, a
    :class:`~dayzero.risk.prior.PriorLogisticRegression` on the same columns, kept by the same
    fold AUC, and taken outright when a class has fewer rows than the ``cv`` folds need.
``representation="row-text"``
    TabLLM's serialisation: every row rendered as sentences ("The credit amount is 1,169.
    The purpose is car (new)."), encoded, then a head: ``"logistic"`` or ``"gbm"`` on the
    frozen vector (optionally ``fusion`` with the raw tabular features and a sentiment score),
    or ``"encoder"``: the encoder fine-tuned on the rendered rows (a
    :class:`~dayzero.risk.text_classifier.TextClassifier` with LoRA, full fine-tuning or the
    SetFit-style few-shot mode). Passing ``head`` or ``fusion=True`` selects it, as before.
    A rendered row longer than ``max_length`` tokens is cut by the encoder; that is never
    silent: a :class:`TruncationWarning` gives the share of rows cut, their token counts and
    the fix (``truncation_`` records it).

Probability of default (PD): the target is binary, and the PD is the probability of the label
``positive_label`` (by default the larger of the two labels: 1 for 0/1 targets, ``True`` for
booleans). Pass ``positive_label`` for any other coding (e.g. ``"bad"`` for good/bad labels, or
2 for German credit's original 1 = good / 2 = bad). :meth:`RiskScorer.predict_pd` returns it;
``predict_proba`` keeps scikit-learn's column order (``classes_``, sorted).

Reason codes (:meth:`RiskScorer.explain`) are value-level: how much *this value* moves the
log-odds of default against a reference, never "a field was removed". The tabular model uses
TreeSHAP (LightGBM ``pred_contrib``); the row-text heads replace the value by the training
rows' reference value (median / mode) and measure the change. A value that changes nothing
is never listed. ``labels`` gives coded values their names (``{"SEX": {1: "male", 2:
"female"}}``), in the rendered text and in the reasons' wording.

Bad input, documented and tested:

* unknown category value (not seen in ``fit``): a missing category to the tabular model,
  rendered as ``"unknown"`` on the row-text path (zero in its one-hot block), flagged by
  :meth:`RiskScorer.unknown_values`, in the ``unknown`` column of :meth:`RiskScorer.explain`
  and by an :class:`UnknownCategoryWarning`;
* missing value (None, NaN, ``""``, ``"?"``): native to the tabular model; skipped in the text,
  as TabLLM does, on the row-text path (where a missing numeric takes the training mean in the
  fusion block);
* wrong type (a string in a numeric column): ``TypeError`` naming the column and the expected type;
* columns differing from the training frame: ``ValueError`` listing missing and unexpected ones;
* a row with every field missing: scored; rendered as ``"No information is given."``;
* a target with other than two labels, or a ``positive_label`` that is not one of them:
  ``ValueError`` saying what to pass.

No input produces a NaN score silently: a non-finite probability raises.

Saved in the artifact format of :mod:`dayzero.core.artifact` (``dayzero.json`` +
``weights.safetensors``) for every head and representation: boosters in LightGBM's own text
format, a string inside the JSON (:class:`~dayzero.risk.gbm.GBMHead`), text reductions and
logistic coefficients as safetensors, the fine-tuned encoder through
:meth:`TextClassifier.save <dayzero.risk.text_classifier.TextClassifier.save>` as the part
``head/``. Never pickle.
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from dayzero.core.artifact import Artifact, json_default, load_artifact, save_artifact
from dayzero.core.card import (
    CARD_JSON,
    ModelCard,
    encoder_section,
    read_card,
    sensitive_columns,
    summarize_table,
    write_card,
)
from dayzero.core.checks import positive_int
from dayzero.core.templates import is_missing, serialize_row
from dayzero.risk import tabular
from dayzero.risk.linear import LinearHead, cross_validate_linear
from dayzero.risk.reasons import labelled, reason_text, split_labels
from dayzero.risk.scorecard import PointsScale

UNKNOWN = "unknown"
EMPTY_ROW = "No information is given."
HEADS = ("logistic", "gbm", "encoder")
TABULAR = "tabular"
ROW_TEXT = "row-text"
REPRESENTATIONS = (TABULAR, ROW_TEXT)
TEXT_SELECTIONS = ("cv", "always")
AUTO = "auto"
AUTO_DEPTHS = (3, 6)  # max_depth="auto" chooses between these on the folds
ARTIFACT_KIND = "risk-scorer"
ENCODER_HEAD_DIR = "head"  # the fine-tuned encoder head: a text-classifier part
SENTIMENT_DIR = "sentiment"  # the sentiment model: a text-classifier or text-regressor part
PRIOR_MODEL_DIR = "prior_model"  # the chosen prior model: a risk-prior-classifier part
PRIOR_DIR = "prior"  # the transfer prior, when given but not chosen: a risk-prior part
REASON_COLUMNS = ["row", "rank", "field", "value", "contribution", "points", "unknown", "reason"]
# The tabular model's defaults (the row-text gbm head keeps its own: 0.1, 100 rounds, 5 rows).
TABULAR_LEARNING_RATE = 0.05
TABULAR_MIN_LEAF = 20
TABULAR_MAX_ROUNDS = 2000
FALLBACK_ROUNDS = 100  # too few rows of a class for cross-validation
_ENCODERS: dict[tuple[str, int, str | None], Any] = {}
_MEMO: dict[tuple[str, int], dict[str, np.ndarray]] = {}
_MEMO_LIMIT = 200_000
_ZERO = 1e-12  # |contribution| at or below this is "no change": never listed as a reason


class UnknownCategoryWarning(UserWarning):
    """A categorical value was not seen in ``fit``; it is scored as ``"unknown"``."""


class TruncationWarning(UserWarning):
    """Texts longer than the encoder's ``max_length`` were cut; the end never reaches it."""


def _encoder_key(
    name: str, max_length: int, cache_dir: str | Path | None
) -> tuple[str, int, str | None]:
    return (str(name), int(max_length), None if cache_dir is None else str(cache_dir))


def _encoder(name: str, max_length: int, cache_dir: str | Path | None = None):
    """One frozen encoder per (model, max_length, cache) and process: loading is slow. A folder
    written by :meth:`~dayzero.text.onnx_int8.OnnxInt8Encoder.export` opens as that int8 ONNX
    encoder (its threads are set where it encodes, :func:`_encode`)."""
    from dayzero.text.encoder import TextEncoder
    from dayzero.text.onnx_int8 import OnnxInt8Encoder, is_onnx_encoder

    key = _encoder_key(name, max_length, cache_dir)
    if key not in _ENCODERS:
        if is_onnx_encoder(name):
            # one thread, as n_jobs=None asks; _encode changes it for other settings
            _ENCODERS[key] = OnnxInt8Encoder(
                name, threads=1, max_length=max_length, cache_dir=cache_dir
            )
        else:
            _ENCODERS[key] = TextEncoder(name, max_length=max_length, cache_dir=cache_dir)
    return _ENCODERS[key]


def _onnx_threads(n_jobs: int | None) -> int | None:
    """ONNX Runtime threads for ``n_jobs`` (None: 1, as torch's; -1: its own choice)."""
    return 1 if n_jobs is None else (None if n_jobs == -1 else int(n_jobs))


def _encode(
    name: str,
    max_length: int,
    texts: list[str],
    batch_size: int,
    cache_dir: str | Path | None = None,
    n_jobs: int | None = -1,
) -> np.ndarray:
    """L2-normalised vectors; each text is encoded once per process (the encoder is frozen),
    and once per disk cache when ``cache_dir`` is set. ``n_jobs``: torch threads while
    encoding (None: 1, -1: leave torch's setting), restored afterwards."""
    key = (str(name), int(max_length))
    memo = _MEMO.setdefault(key, {})
    todo = list(dict.fromkeys(t for t in texts if t not in memo))
    if len(memo) + len(todo) > _MEMO_LIMIT:
        memo.clear()
        todo = list(dict.fromkeys(texts))
    if todo:
        encoder = _encoder(name, max_length, cache_dir)
        if hasattr(encoder, "use_threads"):  # the int8 ONNX encoder
            encoder.use_threads(_onnx_threads(n_jobs))
        with _torch_threads(n_jobs):
            vectors = encoder.encode(todo, batch_size=batch_size, normalize=True)
        memo.update(zip(todo, np.asarray(vectors, dtype=np.float64), strict=True))
    if not texts:
        return np.zeros((0, _encoder(name, max_length, cache_dir).dim))
    return np.stack([memo[t] for t in texts])


@contextlib.contextmanager
def _torch_threads(n_jobs: int | None):
    """Torch's intra-op threads set to ``n_jobs`` (None: 1; -1: unchanged) for a block."""
    if n_jobs == -1:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1 if n_jobs is None else int(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _token_counts(name: str, max_length: int, texts: list[str], cache_dir: Any) -> np.ndarray:
    """Tokens of each text without truncation (special tokens included)."""
    encoder = _encoder(name, max_length, cache_dir)
    if not texts:
        return np.zeros(0, dtype=int)
    ids = encoder.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    return np.array([len(i) for i in ids], dtype=int)


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
    """Probability of default for applicants: gradient boosting on the table (plus free text
    when cross-validation says it helps), or a text encoder over the rendered rows.

    Which to use when: the default (``representation="tabular"``) for any applicant table,
    with or without free-text columns; ``representation="row-text"`` (or ``head=...`` /
    ``fusion=True``) to score the serialised row with a text encoder, e.g. to study TabLLM-style
    models or when nearly all of the signal is in prose.

    Parameters
    ----------
    encoder : str, default "all-MiniLM-L6-v2"
        Model name or local folder of the :class:`~dayzero.text.encoder.TextEncoder` (free-text
        columns on the tabular path; the rendered rows on the row-text path), or a folder
        written by :meth:`~dayzero.text.onnx_int8.OnnxInt8Encoder.export`: int8 vectors close
        to torch's (cosine >= 0.99 on the export's check texts; 0.978 at worst on long movie
        plots, BENCHMARKS.md), 2-2.5x faster on CPU (the ``onnx`` extra; not with
        ``head="encoder"``, which fine-tunes the encoder). Fit and score with the same folder:
        a saved scorer records its fingerprint and refuses another export at load.
    representation : {"tabular", "row-text"}, optional
        See the module notes. Default: ``"row-text"`` when ``head`` is given or ``fusion=True``
        (what those meant before the tabular default), else ``"tabular"``.
    head : {"logistic", "gbm", "encoder"}, optional
        Row-text path only: ``LogisticRegression`` or LightGBM gradient boosting on the frozen
        encoder's vectors, or ``"encoder"``: the encoder fine-tuned on the rendered rows is the
        model (see ``strategy``). The encoder head reads the text only: ``fusion``,
        ``sentiment`` and ``monotonic`` need another head. Default ``"logistic"``.
    positive_label : label, optional
        The label that means default; the probability of default is its probability. Default:
        the larger of the two labels (1 for 0/1 targets).
    text_columns : sequence of str, optional
        Free-text columns. Tabular path: None detects them (see the module notes), ``[]`` means
        none. Row-text path: rendered as they are, never flagged as unknown categories.
    fusion : bool, default False
        Row-text path: also feed the raw tabular features to the head: one-hot categoricals and
        standardised numerics (plus the sentiment score when ``sentiment`` is set).
    text_weight : float, default 1.0
        Row-text path: multiplies the (L2-normalised) text vector before the head.
    sentiment : TextClassifier, TextRegressor or callable, optional
        Scores the ``sentiment_column`` text, already fitted: an object with ``predict_proba``
        (its last column is used), one with ``predict`` (a continuous score, e.g. a
        ``TextRegressor``), or a callable ``list[str] -> array``. Tabular path: one more text
        feature, kept only if cross-validation keeps that column's text; row-text path: one
        fusion feature. A pretrained component: the scorer never fits it, so
        ``sklearn.base.clone`` keeps this very object (see Notes). A ``TextClassifier`` or
        ``TextRegressor`` is saved with the scorer (the part ``sentiment/``); a callable
        cannot be saved.
    sentiment_column : str, optional
        The text column ``sentiment`` reads; defaults to the first text column.
    monotonic : dict, optional
        ``{numeric column: +1 | -1}``: probability of default may only rise (+1) or fall (-1)
        with that column. Tabular path, or row-text with ``head="gbm"`` and ``fusion=True``.
    cv : int, default 5
        Folds of the stratified cross-validation on the training rows (tabular path) that
        chooses the number of boosting rounds and whether the text features are kept.
    text_selection : {"cv", "always"}, default "cv"
        Tabular path: ``"cv"`` keeps a free-text column's features only when cross-validation
        on the training rows says they help (see ``text_selection_``); ``"always"`` keeps them
        whatever the folds say (the fold AUCs are still recorded).
    text_components : int, default 16
        Tabular path: principal components kept per free-text column.
    C : float, default 1.0
        Inverse L2 strength of the logistic head (for ``head="encoder"``: of the logistic
        probe that initialises the fine-tuned head, or of the SetFit head).
    learning_rate : float, optional
        LightGBM's learning rate. Default: 0.05 (tabular), 0.1 (row-text gbm head).
    max_iter : int, optional
        Boosting rounds. Default: chosen on the cross-validation folds (tabular; best mean
        validation log-loss, up to 2,000 rounds with early stopping), 100 (row-text gbm head).
    max_depth : int, None or "auto", default "auto"
        Depth limit of a tree (None: no limit; 31 leaves at most either way). ``"auto"``:
        tabular path, 3 or 6, whichever has the higher mean AUC on the cross-validation folds
        of the tabular columns (``depth_selection_`` records both); the row-text gbm head
        reads it as 3. Shallow trees win on small or smooth tables, deeper ones where values
        interact (missingness patterns, e.g. HMEQ).
    min_samples_leaf : int, optional
        Fewest rows in a leaf. Default: 20 (tabular), 5 (row-text gbm head).
    linear : bool, default True
        Tabular path: also try an L2 logistic regression on the same columns (one-hot
        categoricals, standardised numerics, :class:`~dayzero.risk.linear.LinearHead`; its C
        chosen by fold log-loss) and keep it instead of LightGBM when its mean fold AUC is
        higher (``tabular_model_``). With tens of labelled rows LightGBM cannot split (20 rows
        a leaf) and scores a constant; the linear model still learns. Never tried with
        ``monotonic``, which only the trees enforce.
    prior : TransferPrior, str or Path, optional
        Tabular path: a fitted :class:`~dayzero.risk.prior.TransferPrior` or the folder one
        was saved to (read in ``fit``). Adds the candidate ``"prior"``: a
        :class:`~dayzero.risk.prior.PriorLogisticRegression` on the numeric and categorical
        columns (field phrases from ``labels``), its coefficients shrunk toward the prior's
        weights; kept when its mean fold AUC is higher than the trees' and the linear model's,
        and taken outright, without folds, when the smaller class has fewer than ``cv`` rows
        (k = 4-8 labelled applicants; the prior model then uses its own fixed rule,
        :data:`~dayzero.risk.prior.SMALL_K_RULE`). The prior model reads no free text. Not
        with ``monotonic``.
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
    labels : dict, optional
        Column -> field label (a str: ``{"credit_amount": "amount of credit"}``) or value
        labels (a dict: ``{"SEX": {1: "male", 2: "female"}}``), used in the rendered text and
        in the reasons' wording (see :mod:`dayzero.risk.reasons`). A column with value labels
        is a categorical.
    units : dict, optional
        Column -> unit for the text and the reasons (``{"credit_amount": "DM"}``).
    max_length : int, default 128
        Encoder input length in tokens; longer texts are cut, with a :class:`TruncationWarning`.
    cache_dir : str or Path, optional
        Folder of a disk cache of text vectors (:class:`~dayzero.text.cache.EmbeddingCache`,
        keyed by the encoder's fingerprint): a text is encoded once across processes. Texts
        are also encoded once per process (in memory) without it.
    base_score, base_odds, pdo : float, default 600, 50, 20
        Points scaling of :meth:`points` (see :class:`~dayzero.risk.scorecard.PointsScale`).
    batch_size : int, default 32
        Encoding batch size; for ``head="encoder"`` also the fine-tuning batch size.
    random_state : int, optional
        Seed of the folds and of LightGBM.
    n_jobs : int, optional
        Threads of the tabular path: LightGBM's, and torch's while free text is encoded
        (restored afterwards). None: 1; -1: every core (torch: its own setting). One by
        default: on 2 shared cores LightGBM's spinning threads made a 2-thread fit over 10x
        slower than a 1-thread one (see :func:`~dayzero.risk.gbm.booster_params`), and
        MiniLM encoded 57 short names/s with 2 torch threads against 200/s with one.

    Attributes
    ----------
    classes_ : ndarray
        The two labels, sorted; ``predict_proba`` columns follow this order.
    positive_label_ : label
        The label whose probability is the probability of default.
    representation_ : str
        ``"tabular"`` or ``"row-text"``.
    columns_ : list of str
        Training columns; scoring frames must have exactly these.
    numeric_columns_, categorical_columns_, text_columns_ : list of str
        How the columns were read (``text_columns_``: the free-text columns found or named).
    datetime_columns_ : list of str
        Tabular path: datetime columns, read as numbers (days since 1970); scoring frames may
        give them as dates, date strings or those numbers.
    categories_ : dict
        Categorical column -> values seen in ``fit``.
    reference_ : dict
        Column -> the reference value of the row-text reason codes (median of a numeric, mode
        of a categorical, None for free text).
    tabular_model_ : {"gbm", "linear", "prior"}
        Tabular path: the model kept on the folds (``depth_selection_["candidates"]`` holds
        every candidate's fold AUCs, ``"linear"`` and ``"prior"`` among them;
        ``depth_selection_["reason"]`` says when the prior model was taken outright).
    prior_ : TransferPrior or None
        The prior read from ``prior``.
    depth_, depth_selection_ : int or None, dict
        Tabular path: the tree depth used, and (``max_depth="auto"``) each candidate's fold
        AUCs, rounds and log-loss.
    text_selection_ : dict
        Tabular path: ``columns`` (the free-text candidates), ``selected`` (the ones kept),
        ``folds``, ``auc_tabular`` (per fold), one entry per candidate in ``candidates``
        (``auc`` per fold, ``gain``, ``se``, ``selected``) and ``reason``.
    truncation_ : dict or None
        Texts longer than ``max_length`` at fit: ``share``, ``rows``, ``median_tokens``,
        ``max_tokens``, ``max_length`` (None when nothing was cut).
    n_features_in_ : int
    head_ : GBMHead, LogisticRegression or TextClassifier
        The fitted model (:class:`~dayzero.risk.gbm.GBMHead` holds a LightGBM booster).
    n_iter_ : int
        Boosting rounds (gbm), iterations (logistic) or epochs (``head="encoder"``); 0 for the
        prior model (its L-BFGS iterations are not kept).

    Notes
    -----
    Cloning: scikit-learn clones nested estimators deep, which would replace a fitted
    ``sentiment`` model with an unfitted copy that ``fit`` never trains (scikit-learn wraps
    such pre-fitted components in ``sklearn.frozen.FrozenEstimator``). ``sentiment`` is
    always such a component here, so :meth:`__sklearn_clone__` clones every other parameter
    and passes the same ``sentiment`` object on; wrapping it in ``FrozenEstimator`` yourself
    works too. The object is shared, not copied: change it and every clone sees the change.

    ``score(X, y)`` keeps scikit-learn's meaning (mean accuracy); scorecard points are
    :meth:`points`.

    Examples
    --------
    >>> scorer = RiskScorer(labels={"SEX": {1: "male", 2: "female"}})  # doctest: +SKIP
    >>> scorer.fit(applicants, default).points(new_applicants)  # doctest: +SKIP
    >>> scorer.explain(new_applicants, top=3)["reason"]  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: str = "all-MiniLM-L6-v2",
        representation: str | None = None,
        head: str | None = None,
        positive_label: Any = None,
        text_columns: Sequence[str] | None = None,
        fusion: bool = False,
        text_weight: float = 1.0,
        sentiment: Callable[[list[str]], Any] | Any | None = None,
        sentiment_column: str | None = None,
        monotonic: Mapping[str, int] | None = None,
        cv: int = 5,
        text_selection: str = "cv",
        text_components: int = 16,
        C: float = 1.0,
        learning_rate: float | None = None,
        max_iter: int | None = None,
        max_depth: int | str | None = AUTO,
        min_samples_leaf: int | None = None,
        linear: bool = True,
        strategy: str = "lora",
        strategy_params: Mapping[str, Any] | None = None,
        few_shot: bool = False,
        epochs: int = 3,
        lr: float = 3e-4,
        labels: Mapping[str, Any] | None = None,
        units: Mapping[str, str] | None = None,
        max_length: int = 128,
        cache_dir: str | Path | None = None,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        batch_size: int = 32,
        random_state: int | None = None,
        n_jobs: int | None = None,
        prior: Any = None,
    ) -> None:
        self.encoder = encoder
        self.representation = representation
        self.head = head
        self.positive_label = positive_label
        self.text_columns = text_columns
        self.fusion = fusion
        self.text_weight = text_weight
        self.sentiment = sentiment
        self.sentiment_column = sentiment_column
        self.monotonic = monotonic
        self.cv = cv
        self.text_selection = text_selection
        self.text_components = text_components
        self.C = C
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.linear = linear
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.few_shot = few_shot
        self.epochs = epochs
        self.lr = lr
        self.labels = labels
        self.units = units
        self.max_length = max_length
        self.cache_dir = cache_dir
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.prior = prior

    # ---- scikit-learn API -------------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters. ``deep`` changes nothing: the estimator-like parameters,
        ``sentiment`` and ``prior``, are pretrained components whose own parameters are not the
        scorer's (``set_params(sentiment__...)`` would change the caller's fitted model in
        place; ``clone`` keeps a fitted ``TransferPrior`` as it is).

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
        """Learn the model on the applicants ``X`` and binary labels ``y``.

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
        y_index = self._fit_target(y, len(frame))
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.columns_ = list(frame.columns)
        self.n_features_in_ = len(self.columns_)
        named = set(self.text_columns or [])
        absent = sorted(named - set(self.columns_))
        if absent:
            raise ValueError(
                f"text_columns {absent} are not columns of X (columns: {self.columns_[:20]})"
            )
        _, value_labels = split_labels(self.labels)
        unknown_labels = sorted(set(value_labels) - set(self.columns_))
        if unknown_labels:
            raise ValueError(
                f"labels name columns {unknown_labels} that X does not have; value labels "
                "are keyed by column name"
            )
        self.representation_ = self._representation()
        self.truncation_ = None
        if self.representation_ == TABULAR:
            self._fit_tabular(frame, y_index)
        else:
            self._fit_row_text(frame, y_index)
        kinds = {
            "numeric": [c for c in self.numeric_columns_ if c not in self.datetime_columns_],
            "datetime": self.datetime_columns_,
            "categorical": self.categorical_columns_,
            "text": self.text_columns_,
        }
        self.training_data_ = summarize_table(
            frame, self.classes_[y_index], kinds, self.positive_label_
        )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, 2)``, columns in ``classes_`` order.

        The probability of default is the column of ``positive_label_`` (column 1 unless
        ``positive_label`` is the smaller label); :meth:`predict_pd` returns it directly.
        """
        check_is_fitted(self, "head_")
        frame = self._validate(X)
        self._warn_unknown(frame)
        if self.representation_ == TABULAR:
            if self.tabular_model_ == "prior":
                return self._tabular_proba(self._prior_frame(frame))
            return self._tabular_proba(self._matrix(frame))
        self._check_truncation(self._texts(frame), fitting=False)
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
        """Top reason codes per row: each value's contribution to the log-odds of default.

        Value-level on every path, so a value typical of the training rows moves nothing and a
        high value and a low one of the same field get opposite signs:

        * tabular model: TreeSHAP (LightGBM ``pred_contrib``). Exact for trees, one pass for all
          rows, and additive: a row's contributions plus the base value (``.attrs
          ["base_logit"]``) are its log-odds, so points add up too. The alternative below would
          need one extra scoring per field and its numbers depend on the reference alone; the
          trees let every value be weighed against the whole training distribution. A free-text
          column's contribution is the sum over its components (and its sentiment score).
        * row-text heads: the value is replaced by the training rows' reference value (median
          of a numeric, mode of a categorical; a free text is removed, it has no reference) and
          the change in the same model's log-odds is measured. A value equal to the reference
          contributes exactly zero.

        Contributions of zero are never listed; rows may so get fewer than ``top`` reasons.

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
            ``contribution`` (log-odds of default the value adds; > 0 raises risk),
            ``points`` (points the value costs; ``-factor * contribution``), ``unknown`` (an
            unseen category) and ``reason`` (the wording, with value labels:
            ``"SEX is female (raises risk)"``). ``.attrs`` holds ``method``,
            ``text_selection`` (tabular) and ``base_logit`` (tabular).
        """
        check_is_fitted(self, "head_")
        positive_int(top, "top")
        frame = self._validate(X)
        if self.representation_ == TABULAR:
            per_column, base = self._tabular_contributions(frame)
            attrs = {
                "method": {
                    "linear": "linear: coefficient x deviation from the training mean, "
                    "log-odds of default",
                    "prior": "prior: coefficient (shrunk toward the transfer prior) x deviation "
                    "from the training mean, log-odds of default",
                }.get(self.tabular_model_, "TreeSHAP (LightGBM pred_contrib), log-odds of default"),
                "text_selection": self.text_selection_,
                "base_logit": base,
            }
        else:
            per_column = self._reference_contributions(frame)
            attrs = {"method": "value replaced by the training reference (median / mode)"}
        table = self._reason_table(frame, per_column, top)
        table.attrs.update(attrs)
        return table

    def describe(self) -> dict[str, Any]:
        """What was fitted, in words and numbers: representation, columns, the text decision.

        Returns
        -------
        dict
            ``representation``, ``head``, ``columns`` (numeric / categorical / text),
            ``rounds``, ``text_selection`` (tabular), ``truncation`` and ``summary`` (a
            sentence, e.g. for a report).
        """
        check_is_fitted(self, "head_")
        out: dict[str, Any] = {
            "representation": self.representation_,
            "head": self._head_kind(),
            "columns": {
                "numeric": self.numeric_columns_,
                "categorical": self.categorical_columns_,
                "text": self.text_columns_,
            },
            "rounds": self.n_iter_,
            "truncation": self.truncation_,
        }
        if self.representation_ == TABULAR:
            out["text_selection"] = self.text_selection_
            out["depth_selection"] = self.depth_selection_
            columns = (
                f"{len(self.numeric_columns_)} numeric and {len(self.categorical_columns_)} "
                "categorical columns"
            )
            model = (
                f"L2 logistic regression (C={self.head_.C:g}) on {columns}, chosen over LightGBM "
                "on the folds"
                if self.tabular_model_ == "linear"
                else f"LightGBM on {columns}, {self.n_iter_} rounds of depth {self.depth_}"
            )
            if self.tabular_model_ == "prior":
                model = (
                    f"logistic regression shrunk toward a transfer prior from "
                    f"{self.prior_.tables_} (C={self.head_.C_:g}, prior scale "
                    f"{self.head_.prior_scale_:g}: {self.head_.selection_}) on {columns}; "
                    + self.depth_selection_.get(
                        "reason", "chosen over LightGBM and the linear model on the folds"
                    )
                )
            out["tabular_model"] = self.tabular_model_
            out["summary"] = f"{model}; " + self.text_selection_["reason"]
        else:
            out["summary"] = f"{self._head_kind()} head on the rendered rows ({self.encoder})"
        return out

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
            PSI per feature covers the numeric and categorical columns (a free text has no
            bins); :meth:`describe` says what the model reads.
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

        Every model is saved without pickle: LightGBM boosters (the tabular model, the gbm
        head) as LightGBM's model text inside the JSON (:meth:`GBMHead.to_json
        <dayzero.risk.gbm.GBMHead.to_json>`), the text reductions and the logistic head's
        coefficients as safetensors, the text decision, categories and references as JSON, and
        the fine-tuned encoder through :meth:`TextClassifier.save
        <dayzero.risk.text_classifier.TextClassifier.save>`. A frozen encoder is stored by name.
        """
        check_is_fitted(self, "head_")
        sentiment_kind = _sentiment_kind(self.sentiment)
        if self.sentiment is not None and sentiment_kind is None:
            raise TypeError(
                f"sentiment is a {type(self.sentiment).__name__}, which cannot be saved (dayzero "
                "never saves code): pass a fitted TextClassifier or TextRegressor, saved with "
                f"the scorer as the part {SENTIMENT_DIR}/, or fit without sentiment"
            )
        folder = Path(path)
        params = {k: v for k, v in self.get_params().items() if k != "sentiment"}
        params["text_columns"] = (
            list(params["text_columns"]) if params["text_columns"] is not None else None
        )
        params["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        # A prior given by folder keeps its path (for the record); the prior itself is saved.
        params["prior"] = str(self.prior) if isinstance(self.prior, str | Path) else None
        fields, values = split_labels(self.labels)
        params["labels"] = None if self.labels is None else {**fields, **values}
        onnx = self._onnx_record()
        if onnx is not None:
            params["encoder"] = onnx["folder"]
        state = {
            "onnx_encoder": onnx,
            "representation": self.representation_,
            "classes": self.classes_.tolist(),
            "positive_label": self.classes_.tolist()[self._pd_column()],
            "columns": self.columns_,
            "numeric_columns": self.numeric_columns_,
            "categorical_columns": self.categorical_columns_,
            "text_columns": self.text_columns_,
            "datetime_columns": self.datetime_columns_,
            "categories": self.categories_,
            "reference": self.reference_,
            "truncation": self.truncation_,
            "feature_names_in": (
                self.feature_names_in_.tolist() if hasattr(self, "feature_names_in_") else None
            ),
            "n_iter": self.n_iter_,
            "head_state": None,
            "sentiment": sentiment_kind,
        }
        tensors: dict[str, np.ndarray] = {}
        if self.representation_ == TABULAR:
            prior = getattr(self, "prior_", None)
            if self.tabular_model_ != "prior":
                state["head_state"] = self.head_.to_json()
            state["prior"] = (
                PRIOR_MODEL_DIR
                if self.tabular_model_ == "prior"
                else (PRIOR_DIR if prior is not None else None)
            )
            state["prior_columns"] = getattr(self, "prior_columns_", None)
            state["text_selection"] = self.text_selection_
            state["depth"] = self.depth_
            state["depth_selection"] = self.depth_selection_
            state["tabular_model"] = self.tabular_model_
            state["feature_columns"] = self.feature_columns_
            for i, column in enumerate(self.text_selection_["selected"]):
                tensors.update(self.reducers_[column].to_arrays(f"text.{i}"))
        else:
            state["sentiment_mean"] = self.sentiment_mean_
            tensors["numeric_mean"] = np.asarray(self.numeric_mean_, dtype=np.float64)
            tensors["numeric_scale"] = np.asarray(self.numeric_scale_, dtype=np.float64)
            if self._head_kind() == "logistic":
                tensors["coef"] = np.ascontiguousarray(self.head_.coef_, dtype=np.float64)
                tensors["intercept"] = np.ascontiguousarray(self.head_.intercept_, np.float64)
            elif self._head_kind() == "gbm":
                state["head_state"] = self.head_.to_json()
        params = json.loads(json.dumps(params, default=json_default))
        state = json.loads(json.dumps(state, default=json_default))
        save_artifact(folder, Artifact(ARTIFACT_KIND, self._head_kind(), params, state, tensors))
        if self._head_kind() == "encoder":
            self.head_.save(folder / ENCODER_HEAD_DIR)
        if state.get("prior") == PRIOR_MODEL_DIR:
            self.head_.save(folder / PRIOR_MODEL_DIR)  # with its prior, in prior_model/prior/
        elif state.get("prior") == PRIOR_DIR:
            self.prior_.save(folder / PRIOR_DIR)
        if sentiment_kind is not None:
            self.sentiment.save(folder / SENTIMENT_DIR)
        write_card(folder, self.card(params), fresh=True)
        return folder

    def _uses_text(self) -> bool:
        """Whether the fitted model reads any text (row text, or a free-text column kept)."""
        return self.representation_ != TABULAR or bool(self.text_selection_["selected"])

    def _onnx_record(self) -> dict[str, str] | None:
        """For :meth:`save`: the int8 ONNX encoder's absolute folder and fingerprint, when the
        fitted model reads text through one (None otherwise)."""
        from dayzero.text.onnx_int8 import is_onnx_encoder

        if not self._uses_text() or not is_onnx_encoder(self.encoder):
            return None
        encoder = _encoder(self.encoder, self.max_length, self.cache_dir)
        return {"folder": str(Path(self.encoder).resolve()), "fingerprint": encoder.fingerprint()}

    def _check_onnx_encoder(self, record: Mapping[str, str], folder: Path) -> None:
        """For :meth:`load`: the int8 ONNX export the scorer was fitted with must be where it
        was, unchanged; another export's vectors would feed the fitted components silently."""
        from dayzero.core.artifact import ArtifactError
        from dayzero.text.onnx_int8 import export_fingerprint, is_onnx_encoder

        fix = "put that export back, or refit the scorer with the export you have"
        if not is_onnx_encoder(record["folder"]):
            raise ArtifactError(
                f"{folder}: the scorer reads text with the int8 ONNX encoder in "
                f"{record['folder']}, which is not an ONNX export folder (missing or moved): {fix}"
            )
        found = export_fingerprint(record["folder"], self.max_length)
        key = _encoder_key(self.encoder, self.max_length, self.cache_dir)
        opened = _ENCODERS.get(key)
        if opened is not None and opened.fingerprint() != found:
            del _ENCODERS[key]  # opened before the folder changed: its session is stale
        if found != record["fingerprint"]:
            raise ArtifactError(
                f"{folder}: the int8 ONNX encoder in {record['folder']} is not the one the "
                f"scorer was fitted with (fingerprint {found[:12]} != "
                f"{record['fingerprint'][:12]}): {fix}"
            )

    def card(self, params: Mapping[str, Any] | None = None) -> ModelCard:
        """The model card (:mod:`dayzero.core.card`): the applicants it was fitted on, the depth
        and text columns chosen by cross-validation on them, the encoder, intended use and
        limits (a protected attribute among the features is named). :meth:`save` writes it;
        ``dayzero risk audit --write-to-model`` attaches a fairness audit."""
        check_is_fitted(self, "head_")
        if params is None:
            params = {k: v for k, v in self.get_params().items() if k != "sentiment"}
            params = json.loads(json.dumps(params, default=str))
        tabular_model = self.representation_ == TABULAR
        selection: dict[str, Any] = {}
        if tabular_model:
            selection = {"depth": self.depth_selection_, "text columns": self.text_selection_}
            if getattr(self, "prior_", None) is not None:
                selection["prior"] = {
                    "source tables": list(self.prior_.tables_),
                    "encoder": str(self.prior_.encoder),
                    "chosen": self.tabular_model_ == "prior",
                    "leave-one-table-out": self.prior_.loto_.get("by_alpha"),
                }
        uses_text = self._uses_text()
        limitations = [
            "probabilities are calibrated on the training applicants: a population shift (the "
            "PSI of the risk report) calls for a refit",
            "reason codes explain a score; they do not show that it is fair (see the audit)",
        ]
        protected = sensitive_columns(self.columns_)
        if protected:
            limitations.append(
                f"the features include {protected}, which name protected attributes: many "
                "jurisdictions bar their use in credit decisions; run `dayzero risk audit` and "
                "consider leaving them out (`--exclude`)"
            )
        if self.truncation_:
            limitations.append(f"row texts were truncated for the encoder: {self.truncation_}")
        if getattr(self, "prior_", None) is not None:
            limitations.append(
                f"a transfer prior learnt on other credit tables ({self.prior_.tables_}) "
                + (
                    "sets the model's starting weights: their portfolios' effects need not hold "
                    "for these applicants"
                    if self.tabular_model_ == "prior"
                    else "was a candidate, not chosen"
                )
            )
        return ModelCard(
            kind=ARTIFACT_KIND,
            name=self._head_kind(),
            params=dict(params),
            training_data=dict(getattr(self, "training_data_", {})),
            selection=json.loads(json.dumps(selection, default=json_default)),
            encoder=encoder_section(params, used=uses_text),
            intended_use=(
                "Probability of default, points and reason codes for applicants like the "
                "training applicants, as one input to a credit decision that people review."
            ),
            limitations=limitations,
        )

    @classmethod
    def load(cls, path: str | Path) -> RiskScorer:
        """Read a model written by :meth:`save`.

        A folder written by dayzero 0.1 (``risk_scorer.json``, scikit-learn gbm trees) is
        refused with an :class:`~dayzero.core.artifact.ArtifactError` that says to refit.
        """
        from sklearn.linear_model import LogisticRegression

        from dayzero.risk.gbm import GBMHead

        folder = Path(path)
        artifact = load_artifact(folder, ARTIFACT_KIND)
        state, weights = artifact.state, artifact.arrays
        params = dict(artifact.params)
        # Saved before the tabular default: those models are row-text models.
        representation = state.get("representation", ROW_TEXT)
        if representation == ROW_TEXT and "representation" not in params:
            params["representation"] = ROW_TEXT
            params["head"] = params.get("head") or "logistic"
        model = cls(**params)
        if state.get("onnx_encoder"):
            model._check_onnx_encoder(state["onnx_encoder"], folder)
        model.representation_ = representation
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
        model.text_columns_ = list(state.get("text_columns") or model.text_columns or [])
        model.datetime_columns_ = list(state.get("datetime_columns") or [])
        model.categories_ = {k: list(v) for k, v in state["categories"].items()}
        model.reference_ = dict(state.get("reference") or {})
        model.truncation_ = state.get("truncation")
        if (folder / CARD_JSON).is_file():
            model.training_data_ = read_card(folder).training_data
        if state.get("sentiment") is not None:
            model.sentiment = _load_sentiment(state["sentiment"], folder / SENTIMENT_DIR)
        model.n_iter_ = int(state["n_iter"])
        if representation == TABULAR:
            from dayzero.risk.prior import PriorLogisticRegression, TransferPrior

            model.tabular_model_ = state.get("tabular_model", "gbm")
            model.prior_, model.prior_columns_ = None, state.get("prior_columns")
            if model.tabular_model_ == "prior":
                model.head_ = PriorLogisticRegression.load(folder / PRIOR_MODEL_DIR)
                model.prior_ = model.head_.prior
            else:
                model.head_ = (
                    LinearHead.from_json(state["head_state"])
                    if model.tabular_model_ == "linear"
                    else GBMHead.from_json(state["head_state"])
                )
            if state.get("prior") == PRIOR_DIR:
                model.prior_ = TransferPrior.load(folder / PRIOR_DIR)
            if model.prior_ is not None:  # a refit reads the saved prior, not a path elsewhere
                model.prior = model.prior_
            model.text_selection_ = state["text_selection"]
            model.depth_ = state.get("depth", AUTO_DEPTHS[0])
            model.depth_selection_ = state.get("depth_selection", {})
            model.feature_columns_ = list(state["feature_columns"])
            model.reducers_ = {
                column: tabular.TextReducer.from_arrays(weights, f"text.{i}")
                for i, column in enumerate(model.text_selection_["selected"])
            }
            return model
        model.sentiment_mean_ = float(state["sentiment_mean"])
        model.numeric_mean_ = weights["numeric_mean"]
        model.numeric_scale_ = weights["numeric_scale"]
        if model._head_kind() == "logistic":
            head = LogisticRegression()
            head.coef_ = weights["coef"]
            head.intercept_ = weights["intercept"]
            head.classes_ = np.arange(len(model.classes_))
            head.n_features_in_ = head.coef_.shape[1]
        elif model._head_kind() == "gbm":
            head = GBMHead.from_json(state["head_state"])
        else:
            from dayzero.risk.text_classifier import TextClassifier

            head = TextClassifier.load(folder / ENCODER_HEAD_DIR)
        model.head_ = head
        return model

    # ---- parameters and target ----------------------------------------------------------------

    def _representation(self) -> str:
        if self.representation is None:
            return ROW_TEXT if (self.head is not None or self.fusion) else TABULAR
        if self.representation not in REPRESENTATIONS:
            raise ValueError(
                f"representation must be one of {REPRESENTATIONS}, got {self.representation!r}"
            )
        return self.representation

    def _head_kind(self) -> str:
        if self._representation() == TABULAR:
            return "tabular-gbm"
        return self.head or "logistic"

    def _check_params(self) -> None:
        representation = self._representation()
        if self.head is not None and self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if representation == TABULAR:
            if self.head is not None or self.fusion:
                raise ValueError(
                    "representation='tabular' reads the columns with LightGBM itself: head and "
                    "fusion belong to representation='row-text' (drop them, or pass "
                    "representation='row-text')"
                )
            positive_int(self.cv, "cv")
            positive_int(self.text_components, "text_components")
            if self.max_depth is not None and self.max_depth != AUTO:
                positive_int(self.max_depth, "max_depth")
            if self.text_selection not in TEXT_SELECTIONS:
                raise ValueError(
                    f"text_selection must be one of {TEXT_SELECTIONS}, got {self.text_selection!r}"
                )
        head = self._head_kind()
        if head == "encoder":
            from dayzero.text.onnx_int8 import is_onnx_encoder

            if is_onnx_encoder(self.encoder):
                raise ValueError(
                    f"encoder {str(self.encoder)!r} is an int8 ONNX export, which cannot be "
                    "fine-tuned: head='encoder' needs the torch model's name or folder"
                )
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
            if representation == ROW_TEXT and (head != "gbm" or not self.fusion):
                raise ValueError(
                    "monotonic constraints need the default tabular model, or head='gbm' with "
                    "fusion=True (they act on the raw numeric features)"
                )
            bad = {k: v for k, v in self.monotonic.items() if v not in (-1, 1)}
            if bad:
                raise ValueError(f"monotonic values must be +1 or -1, got {bad}")
        if self.sentiment is not None and representation == ROW_TEXT and not self.fusion:
            raise ValueError("sentiment needs fusion=True (the score is a tabular feature)")
        if self.prior is not None and representation != TABULAR:
            raise ValueError(
                "prior is a candidate of the tabular model: drop head / fusion / "
                "representation='row-text', or leave prior out"
            )
        if self.prior is not None and self.monotonic:
            raise ValueError(
                "prior and monotonic cannot be combined: the prior model is a logistic "
                "regression that does not enforce monotone constraints; leave one out"
            )
        split_labels(self.labels)
        self.scale  # noqa: B018 - validates base_score / base_odds / pdo early

    def _fit_target(self, y: Any, n_rows: int) -> np.ndarray:
        """Checks ``y``; sets ``classes_`` and ``positive_label_``; label indices 0 / 1."""
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            from sklearn.exceptions import DataConversionWarning

            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is ravelled",
                DataConversionWarning,
                stacklevel=3,
            )
            y = y.ravel()
        if y.ndim != 1 or len(y) != n_rows:
            raise ValueError(f"y must be 1-D with one label per row: {y.shape} vs {n_rows}")
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
        return y_index

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

    def _reference_values(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Median of each numeric, mode of each categorical, None for free text (JSON values)."""
        reference: dict[str, Any] = {}
        for column in self.numeric_columns_:
            values = pd.to_numeric(frame[column], errors="coerce").dropna()
            reference[column] = float(values.median()) if len(values) else None
        for column in self.categorical_columns_:
            values = [v for v in tabular.canonical_array(frame[column]) if v is not None]
            reference[column] = pd.Series(values).mode().iloc[0] if values else None
        for column in self.text_columns_:
            reference[column] = None
        return reference

    # ---- tabular path -------------------------------------------------------------------------

    def _monotone_constraints(
        self, n_features: int, numeric_at: Mapping[str, int]
    ) -> np.ndarray | None:
        """``monotonic`` as one sign per model input (``numeric_at``: a numeric column's input
        position); None without constraints; a column that is not numeric is refused by name."""
        if not self.monotonic:
            return None
        unknown = sorted(set(self.monotonic) - set(self.numeric_columns_))
        if unknown:
            raise ValueError(
                f"monotonic columns {unknown} are not numeric columns of X "
                f"(numeric: {self.numeric_columns_})"
            )
        constraints = np.zeros(n_features, dtype=int)
        for column, sign in self.monotonic.items():
            constraints[numeric_at[column]] = sign
        return constraints

    def _booster_params(self, n_features: int, numeric_at: Mapping[str, int]) -> dict[str, Any]:
        from dayzero.risk.gbm import booster_params

        constraints = self._monotone_constraints(n_features, numeric_at)
        return booster_params(
            learning_rate=(
                TABULAR_LEARNING_RATE if self.learning_rate is None else self.learning_rate
            ),
            max_depth=self.depth_,
            min_samples_leaf=(
                TABULAR_MIN_LEAF if self.min_samples_leaf is None else self.min_samples_leaf
            ),
            monotonic_cst=constraints,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _folds(self, y01: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import StratifiedKFold

        splits = min(int(self.cv), int(np.bincount(y01, minlength=2).min()))
        if splits < 2:
            return []
        seed = 0 if self.random_state is None else self.random_state
        folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
        return list(folds.split(np.zeros(len(y01)), y01))

    def _fit_tabular(self, frame: pd.DataFrame, y_index: np.ndarray) -> RiskScorer:
        from dayzero.risk.gbm import cross_validate, fit_booster

        _, value_labels = split_labels(self.labels)
        numeric, categorical, text = tabular.split_columns(
            frame, self.text_columns, categorical_override=value_labels
        )
        self.numeric_columns_, self.categorical_columns_, self.text_columns_ = (
            numeric,
            categorical,
            text,
        )
        self.datetime_columns_ = [c for c in numeric if tabular.is_datetime(frame[c])]
        frame = self._coerce_numeric(frame)
        self.categories_ = tabular.fit_categories(frame, categorical)
        self.reference_ = self._reference_values(frame)
        if self.sentiment is not None:
            self._sentiment_source()  # fails early when there is no text column to read
        self.prior_ = self._resolve_prior()
        self.prior_columns_ = [c for c in frame.columns if c in numeric or c in categorical]
        if self.prior_ is not None and not self.prior_columns_:
            raise ValueError(
                f"prior needs numeric or categorical columns; X has free text only {text}: "
                "leave prior out"
            )
        y01 = (y_index == self._pd_column()).astype(int)
        base, _ = self._base_matrix(frame)
        categorical_at = list(range(len(numeric), len(numeric) + len(categorical)))
        numeric_at = {c: i for i, c in enumerate(numeric)}
        blocks = {}
        self.reducers_ = {}
        if text:
            self._check_truncation_columns(frame, text)
            for column in text:
                self.reducers_[column] = self._fit_reducer(frame[column])
                block = self._text_block(frame, column)
                if block.shape[1]:
                    blocks[column] = block
        folds = self._folds(y01)
        smaller = int(np.bincount(y01, minlength=2).min())
        outright = self.prior_ is not None and (smaller < int(self.cv) or not folds)
        self.tabular_model_ = "gbm"
        self.depth_ = AUTO_DEPTHS[0] if self.max_depth == AUTO else self.max_depth
        self.depth_selection_: dict[str, Any] = {
            "candidates": {},
            "chosen": self.depth_,
            "rule": (
                (
                    f"max_depth='auto': {AUTO_DEPTHS}, the higher mean fold AUC"
                    if self.max_depth == AUTO
                    else "max_depth given"
                )
                + (
                    "; the linear model replaces the trees when its mean fold AUC is higher"
                    if self.linear and not self.monotonic
                    else ""
                )
                + (
                    "; the prior model replaces either when its mean fold AUC is higher, and is "
                    "taken outright when the smaller class has fewer rows than cv"
                    if self.prior_ is not None
                    else ""
                )
            ),
        }
        selection: dict[str, Any] = {
            "columns": list(text),
            "selected": [],
            "folds": len(folds),
            "rule": (
                "kept when the mean fold gain in AUC exceeds its standard error"
                if self.text_selection == "cv"
                else "always kept (text_selection='always')"
            ),
            "candidates": {},
        }
        if outright:
            rounds, self.tabular_model_ = None, "prior"
            self.depth_selection_["chosen"] = "prior"
            selection["auc_tabular"], selection["folds"] = [], 0
            selection["reason"] = "the prior model reads the tabular columns only" + (
                f": text column(s) {list(text)} left out" if text else ""
            )
        elif not folds:
            rounds = self.max_iter or FALLBACK_ROUNDS
            selection["auc_tabular"] = []
            if self.text_selection == "always":
                selection["selected"] = list(blocks)
                selection["reason"] = (
                    "too few rows of a class for cross-validation; text columns "
                    f"{list(blocks)} kept (text_selection='always')"
                )
            else:
                selection["reason"] = (
                    "too few rows of a class for cross-validation: tabular columns only"
                    + (f", {len(text)} text column(s) left out" if text else "")
                )
        else:
            common = {"rounds": self.max_iter, "max_rounds": TABULAR_MAX_ROUNDS}
            plain = None
            for depth in AUTO_DEPTHS if self.max_depth == AUTO else [self.max_depth]:
                self.depth_ = depth
                params = self._booster_params(base.shape[1], numeric_at)
                result = cross_validate(base, y01, folds, params, categorical_at, **common)
                self.depth_selection_["candidates"][str(depth)] = {
                    "auc": result["fold_auc"],
                    "rounds": result["rounds"],
                    "logloss": result["logloss"],
                }
                if plain is None or np.mean(result["fold_auc"]) > np.mean(plain["fold_auc"]):
                    plain, chosen_depth = result, depth
            self.depth_ = chosen_depth
            self.depth_selection_["chosen"] = chosen_depth
            if self.linear and not self.monotonic:
                linear = cross_validate_linear(base, y01, folds, categorical_at)
                self.depth_selection_["candidates"]["linear"] = {
                    "auc": linear["fold_auc"],
                    "C": linear["C"],
                    "logloss": linear["logloss"],
                }
                if np.mean(linear["fold_auc"]) > np.mean(plain["fold_auc"]):
                    plain, linear_c = linear, linear["C"]
                    self.tabular_model_ = "linear"
                    self.depth_selection_["chosen"] = "linear"
            if self.prior_ is not None:
                result = self._cross_validate_prior(frame, y01, folds)
                self.depth_selection_["candidates"]["prior"] = {
                    "auc": result["fold_auc"],
                    "chosen": result["chosen"],
                }
                if np.mean(result["fold_auc"]) > np.mean(plain["fold_auc"]):
                    plain, self.tabular_model_ = result, "prior"
                    self.depth_selection_["chosen"] = "prior"
                    blocks = {}  # the prior model reads no free text
            rounds = plain.get("rounds")
            selection["auc_tabular"] = plain["fold_auc"]

            def candidate(matrix: np.ndarray) -> dict[str, Any]:
                if self.tabular_model_ == "linear":
                    return cross_validate_linear(matrix, y01, folds, categorical_at, Cs=(linear_c,))
                params = self._booster_params(matrix.shape[1], numeric_at)
                return cross_validate(matrix, y01, folds, params, categorical_at, **common)

            for column, block in blocks.items():
                full = np.hstack([base, block])
                result = candidate(full)
                gain = np.asarray(result["fold_auc"]) - np.asarray(plain["fold_auc"])
                se = float(gain.std(ddof=1) / np.sqrt(len(gain)))
                keep = self.text_selection == "always" or bool(gain.mean() > 0 and gain.mean() > se)
                selection["candidates"][column] = {
                    "auc": result["fold_auc"],
                    "rounds": result.get("rounds"),
                    "gain": float(gain.mean()),
                    "se": se,
                    "selected": keep,
                }
                if keep:
                    selection["selected"].append(column)
            chosen = selection["selected"]
            if len(chosen) == 1:
                rounds = selection["candidates"][chosen[0]]["rounds"]
            elif len(chosen) > 1:
                together = candidate(np.hstack([base] + [blocks[c] for c in chosen]))
                selection["auc_selected"] = together["fold_auc"]
                rounds = together.get("rounds")
            selection["reason"] = self._selection_reason(selection)
            if self.tabular_model_ == "prior" and text:
                selection["reason"] = (
                    f"the prior model, chosen on the folds, reads the tabular columns only: "
                    f"text column(s) {list(text)} left out"
                )
        self.text_selection_ = selection
        for column in text:
            if column not in selection["selected"]:
                del self.reducers_[column]
        matrix = np.hstack([base] + [blocks[c] for c in selection["selected"]])
        self.feature_columns_ = (
            numeric
            + categorical
            + [c for c in selection["selected"] for _ in range(blocks[c].shape[1])]
        )
        if self.tabular_model_ == "prior":
            self.head_ = self._prior_model().fit(frame[self.prior_columns_], y01)
            self.n_iter_ = 0
            if outright:
                self.depth_selection_["reason"] = (
                    f"the smaller class has {smaller} rows, fewer than the {self.cv} folds "
                    f"need: the prior model taken outright, no fold AUC (C={self.head_.C_:g}, "
                    f"prior scale {self.head_.prior_scale_:g}: {self.head_.selection_})"
                )
            return self
        if self.tabular_model_ == "linear":
            self.head_ = LinearHead(categorical_at, linear_c).fit(matrix, y01)
        else:
            params = self._booster_params(matrix.shape[1], numeric_at)
            self.head_ = fit_booster(matrix, y01, params, rounds, categorical_at)
        self.n_iter_ = int(self.head_.n_iter_)
        return self

    def _resolve_prior(self) -> Any:
        """``prior`` as a fitted TransferPrior (read from its folder), or None."""
        if self.prior is None:
            return None
        from dayzero.core.artifact import ArtifactError
        from dayzero.risk.prior import TransferPrior

        if isinstance(self.prior, TransferPrior):
            if not hasattr(self.prior, "coef_"):
                raise ValueError(
                    "prior is an unfitted TransferPrior: fit it on source tables first "
                    "(TransferPrior().fit(tables)) or pass the folder TransferPrior.save wrote"
                )
            return self.prior
        if isinstance(self.prior, str | Path):
            try:
                return TransferPrior.load(self.prior, cache_dir=self.cache_dir)
            except ArtifactError as exc:
                raise ArtifactError(
                    f"prior={str(self.prior)!r} is not a saved TransferPrior ({exc}); pass the "
                    "folder TransferPrior.save wrote (e.g. bench/credit_prior.py --save-prior), "
                    "or a fitted TransferPrior"
                ) from None
        raise TypeError(
            "prior must be a fitted TransferPrior or the folder of a saved one, got "
            f"{type(self.prior).__name__}"
        )

    def _prior_model(self) -> Any:
        """An unfitted PriorLogisticRegression on the fitted prior, with the scorer's labels."""
        from dayzero.risk.prior import PriorLogisticRegression

        fields, value_labels = split_labels(self.labels)
        return PriorLogisticRegression(
            self.prior_,
            labels=fields or None,
            value_labels=value_labels or None,
            random_state=0 if self.random_state is None else self.random_state,
        )

    def _cross_validate_prior(
        self, frame: pd.DataFrame, y01: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> dict[str, Any]:
        """Fold AUCs of the prior model (each fold's own C and prior scale, chosen on its
        training rows), on the folds the other candidates use."""
        from sklearn.metrics import roc_auc_score

        rows = frame[self.prior_columns_]
        aucs, chosen = [], []
        for train, valid in folds:
            model = self._prior_model().fit(rows.iloc[train], y01[train])
            aucs.append(float(roc_auc_score(y01[valid], model.decision_function(rows.iloc[valid]))))
            chosen.append({"C": model.C_, "prior_scale": model.prior_scale_})
        return {"fold_auc": aucs, "chosen": chosen}

    def _prior_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The prior model's columns of validated rows (numerics as numbers, dates as days)."""
        return frame[self.prior_columns_]

    @staticmethod
    def _selection_reason(selection: Mapping[str, Any]) -> str:
        if not selection["columns"]:
            return "no free-text columns: the tabular model alone"
        parts = []
        base = float(np.mean(selection["auc_tabular"]))
        for column, result in selection["candidates"].items():
            verdict = "kept" if result["selected"] else "left out"
            parts.append(
                f"text column {column!r} {verdict} (CV AUC {base:.3f} -> "
                f"{np.mean(result['auc']):.3f}, gain {result['gain']:+.4f} +/- {result['se']:.4f} "
                f"over {selection['folds']} folds)"
            )
        return "; ".join(parts)

    def _coerce_numeric(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for column in self.numeric_columns_:
            if column in self.datetime_columns_:
                frame[column] = tabular.datetime_days(frame[column])[0]
            elif not _is_numeric_column(frame[column]):
                frame[column] = pd.to_numeric(
                    frame[column].map(lambda v: None if is_missing(v) else v), errors="coerce"
                )
        return frame

    def _base_matrix(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Numeric values and category codes (NaN = missing / unseen); the unseen mask."""
        n = len(frame)
        numeric = (
            frame[self.numeric_columns_].to_numpy(dtype=np.float64)
            if self.numeric_columns_
            else np.zeros((n, 0))
        )
        codes = np.zeros((n, len(self.categorical_columns_)))
        unseen = np.zeros((n, len(self.categorical_columns_)), dtype=bool)
        for j, column in enumerate(self.categorical_columns_):
            codes[:, j], unseen[:, j] = tabular.category_codes(
                frame[column], self.categories_[column]
            )
        return np.hstack([numeric, codes]), unseen

    def _fit_reducer(self, series: pd.Series) -> tabular.TextReducer:
        texts = tabular.present_texts(series)
        present = [t for t in texts if t is not None]
        vectors = self._text_vectors(present)
        dim = vectors.shape[1] if len(present) else 0
        reducer = tabular.TextReducer(self.text_components)
        return reducer.fit(vectors if len(present) else np.zeros((0, dim)))

    def _text_vectors(self, texts: list[str]) -> np.ndarray:
        return _encode(
            self.encoder, self.max_length, texts, self.batch_size, self.cache_dir, self.n_jobs
        )

    def _text_block(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        """The reduced text features of one column (plus the sentiment score if it reads it)."""
        texts = tabular.present_texts(frame[column])
        present = np.array([t is not None for t in texts], dtype=bool)
        chosen = [t for t in texts if t is not None]
        vectors = self._text_vectors(chosen) if chosen else None
        block = self.reducers_[column].transform(vectors, present)
        if self.sentiment is not None and column == self._sentiment_source():
            scores = np.full(len(texts), np.nan)
            if chosen:
                scores[present] = self._score_sentiment(chosen)
            block = np.hstack([block, scores[:, None]])
        return block

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The tabular model's input for validated rows."""
        base, _ = self._base_matrix(frame)  # validated: numerics are numbers
        selected = self.text_selection_["selected"]
        if not selected:
            return base
        blocks = [self._text_block(frame, c) for c in selected]
        return np.hstack([base, *blocks])

    def _tabular_proba(self, matrix: np.ndarray) -> np.ndarray:
        if self.tabular_model_ == "prior":  # matrix: the prior model's frame
            p = self.head_.predict_proba(matrix)[:, 1]
        else:
            p = self.head_.predict_proba(matrix, n_jobs=self.n_jobs)[:, 1]
        if not np.all(np.isfinite(p)):
            raise FloatingPointError("the model produced a non-finite probability; check input")
        proba = np.empty((len(p), 2))
        proba[:, self._pd_column()] = p
        proba[:, 1 - self._pd_column()] = 1.0 - p
        return proba

    def _tabular_contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Per row and column, the TreeSHAP log-odds of default; the base value."""
        from dayzero.risk.gbm import contributions

        if self.tabular_model_ == "prior":
            parts, base = self.head_.contributions(self._prior_frame(frame))
            out = np.zeros((len(frame), len(self.columns_)))
            for column in parts.columns:
                out[:, self.columns_.index(column)] = parts[column].to_numpy()
            return out, base
        if self.tabular_model_ == "linear":
            shap = self.head_.contributions(self._matrix(frame))
        else:
            shap = contributions(self.head_, self._matrix(frame), n_jobs=self.n_jobs)
        groups = np.zeros((len(self.feature_columns_), len(self.columns_)))
        for i, column in enumerate(self.feature_columns_):
            groups[i, self.columns_.index(column)] = 1.0
        return shap[:, :-1] @ groups, float(shap[0, -1]) if len(shap) else 0.0

    # ---- row-text path ------------------------------------------------------------------------

    def _fit_row_text(self, frame: pd.DataFrame, y_index: np.ndarray) -> RiskScorer:
        texts = set(self.text_columns or [])
        _, value_labels = split_labels(self.labels)
        self.text_columns_ = [c for c in self.columns_ if c in texts]
        self.datetime_columns_ = []
        self.numeric_columns_ = [
            c
            for c in self.columns_
            if c not in texts and c not in value_labels and _is_numeric_column(frame[c])
        ]
        self.categorical_columns_ = [
            c for c in self.columns_ if c not in texts and c not in self.numeric_columns_
        ]
        self.categories_ = {
            c: sorted({str(v) for v in frame[c] if not is_missing(v)})
            for c in self.categorical_columns_
        }
        self.reference_ = self._reference_values(frame)
        numeric = self._numeric_block(frame)
        self.numeric_mean_ = np.nanmean(numeric, axis=0) if numeric.size else np.zeros(0)
        self.numeric_mean_ = np.nan_to_num(self.numeric_mean_)
        std = np.nanstd(numeric, axis=0) if numeric.size else np.zeros(0)
        self.numeric_scale_ = np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
        self.sentiment_mean_ = 0.0
        self._check_truncation(self._texts(frame), fitting=True)
        inputs = self._inputs(frame, fitting=True)
        if self._head_kind() == "encoder":
            self.head_ = self._make_encoder_head()
            with warnings.catch_warnings():
                # The rendered rows are the training texts; nothing for the user to act on.
                warnings.simplefilter("ignore", FutureWarning)
                self.head_.fit(inputs, y_index)
            self.n_iter_ = int(self.epochs)
            return self
        if self._head_kind() == "gbm":
            from dayzero.risk.gbm import GBMHead

            self.head_ = GBMHead.fit(inputs, y_index, **self._gbm_params(inputs.shape[1]))
        else:
            from sklearn.linear_model import LogisticRegression

            self.head_ = LogisticRegression(
                C=self.C, max_iter=2000, random_state=self.random_state
            ).fit(inputs, y_index)
        self.n_iter_ = int(np.max(self.head_.n_iter_))
        return self

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
        start = self._tabular_offset() if self.monotonic else 0
        numeric_at = {column: start + i for i, column in enumerate(self.numeric_columns_)}
        constraints = self._monotone_constraints(n_features, numeric_at)
        return {
            "learning_rate": 0.1 if self.learning_rate is None else self.learning_rate,
            "max_iter": 100 if self.max_iter is None else self.max_iter,
            "max_depth": AUTO_DEPTHS[0] if self.max_depth == AUTO else self.max_depth,
            "min_samples_leaf": 5 if self.min_samples_leaf is None else self.min_samples_leaf,
            "monotonic_cst": constraints,
            "random_state": self.random_state,
        }

    def _tabular_offset(self) -> int:
        return _encoder(self.encoder, self.max_length, self.cache_dir).dim

    def _check_truncation(self, texts: list[str], fitting: bool) -> None:
        """Warn (and at fit record ``truncation_``) when rendered rows exceed ``max_length``."""
        counts = _token_counts(self.encoder, self.max_length, texts, self.cache_dir)
        limit = int(_encoder(self.encoder, self.max_length, self.cache_dir).max_length)
        cut = counts > limit
        if fitting:
            self.truncation_ = None
        if not cut.any():
            return
        record = {
            "share": float(cut.mean()),
            "rows": int(cut.sum()),
            "median_tokens": float(np.median(counts)),
            "max_tokens": int(counts.max()),
            "max_length": limit,
        }
        if fitting:
            self.truncation_ = record
        warnings.warn(
            f"{record['share']:.0%} of the rendered rows ({record['rows']} of {len(texts)}) are "
            f"longer than max_length={limit} tokens (median {record['median_tokens']:.0f}, "
            f"max {record['max_tokens']}): the encoder never sees the fields after token "
            f"{limit}. Fix: use the default RiskScorer() (representation='tabular'), which "
            "reads every column and sends only free-text columns (text_columns=...) to the "
            "encoder; or raise max_length (slower, and capped by the encoder).",
            TruncationWarning,
            stacklevel=4,
        )

    def _check_truncation_columns(self, frame: pd.DataFrame, columns: list[str]) -> None:
        """Tabular path: warn when free texts exceed ``max_length`` (they are cut there)."""
        for column in columns:
            texts = tabular.present_texts(frame[column])
            distinct = list(dict.fromkeys(t for t in texts if t is not None))
            counts = dict(
                zip(
                    distinct,
                    _token_counts(self.encoder, self.max_length, distinct, self.cache_dir),
                    strict=True,
                )
            )
            limit = int(_encoder(self.encoder, self.max_length, self.cache_dir).max_length)
            rows = np.array([counts[t] for t in texts if t is not None], dtype=int)
            if not len(rows) or not (rows > limit).any():
                continue
            share = float((rows > limit).mean())
            self.truncation_ = {
                "column": column,
                "share": share,
                "rows": int((rows > limit).sum()),
                "median_tokens": float(np.median(rows)),
                "max_tokens": int(rows.max()),
                "max_length": limit,
            }
            warnings.warn(
                f"text column {column!r}: {share:.0%} of its texts are longer than "
                f"max_length={limit} tokens (median {np.median(rows):.0f}, max {rows.max()}); "
                "the encoder reads their first tokens only. Fix: raise max_length (slower, "
                "capped by the encoder) or shorten the texts.",
                TruncationWarning,
                stacklevel=4,
            )

    # ---- shared internals ---------------------------------------------------------------------

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
            if column in self.datetime_columns_ and not _is_numeric_column(series):
                days, wrong = tabular.datetime_days(series)
                if wrong.any():
                    raise TypeError(
                        f"column {column!r} must be a date (it was in fit), got "
                        f"{series[wrong].iloc[0]!r}; pass dates (e.g. '2017-05-04 07:13') or "
                        "leave the value empty (missing)"
                    )
                frame[column] = days
                continue
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

    def _unseen_mask(self, frame: pd.DataFrame) -> np.ndarray:
        """``(rows, categorical columns)``: present values never seen in ``fit``."""
        mask = np.zeros((len(frame), len(self.categorical_columns_)), dtype=bool)
        for j, column in enumerate(self.categorical_columns_):
            if self.representation_ == TABULAR:
                mask[:, j] = tabular.category_codes(frame[column], self.categories_[column])[1]
            else:
                seen = set(self.categories_[column])
                mask[:, j] = [not is_missing(v) and str(v) not in seen for v in frame[column]]
        return mask

    def _unknown_table(self, frame: pd.DataFrame) -> pd.DataFrame:
        mask = self._unseen_mask(frame)
        rows = []
        for i, j in zip(*np.nonzero(mask), strict=True):
            column = self.categorical_columns_[j]
            value = frame.iat[int(i), self.columns_.index(column)]
            rows.append({"row": int(i), "column": column, "value": value})
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

    def _sentiment_source(self) -> str:
        column = self.sentiment_column or (list(self.text_columns_ or []) or [None])[0]
        if column is None or column not in self.columns_:
            raise ValueError(
                "sentiment needs sentiment_column (or a text column, see text_columns) naming a "
                "column of X"
            )
        return column

    def _score_sentiment(self, texts: list[str]) -> np.ndarray:
        if hasattr(self.sentiment, "predict_proba"):
            return np.asarray(self.sentiment.predict_proba(texts), dtype=float)[:, -1]
        if hasattr(self.sentiment, "predict"):  # a regressor: a continuous score
            return np.asarray(self.sentiment.predict(texts), dtype=float).reshape(-1)
        return np.asarray(self.sentiment(texts), dtype=float).reshape(-1)

    def _texts(self, frame: pd.DataFrame) -> list[str]:
        fields, value_labels = split_labels(self.labels)
        records = frame.to_dict(orient="records")
        for record in records:
            for column in self.categorical_columns_:
                value = record[column]
                if not is_missing(value) and str(value) not in self.categories_[column]:
                    record[column] = UNKNOWN
            for column, names in value_labels.items():
                if record.get(column) != UNKNOWN:
                    record[column] = labelled(record[column], names)
        texts = [serialize_row(r, labels=fields, units=self.units) for r in records]
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
            scores[keep] = self._score_sentiment([texts[i] for i in keep])
        return scores

    def _inputs(self, frame: pd.DataFrame, fitting: bool = False) -> np.ndarray | list[str]:
        """What the row-text head reads: the rendered texts (encoder head) or the features."""
        if self._head_kind() == "encoder":
            return self._texts(frame)
        return self._features(frame, fitting=fitting)

    def _features(self, frame: pd.DataFrame, fitting: bool = False) -> np.ndarray:
        vectors = _encode(
            self.encoder, self.max_length, self._texts(frame), self.batch_size, self.cache_dir
        )
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

    def _differs_from_reference(self, value: Any, column: str) -> bool:
        reference = self.reference_.get(column)
        if is_missing(value) or reference is None:
            return not (is_missing(value) and reference is None)
        if column in self.numeric_columns_:
            return float(value) != float(reference)
        return tabular.canonical(value) != tabular.canonical(reference)

    def _reference_contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Row-text heads: log-odds(row) - log-odds(row with the value set to the reference)."""
        base = self._logit(frame)
        out = np.zeros((len(frame), len(self.columns_)))
        where, replaced = [], []
        for i in range(len(frame)):
            for k, column in enumerate(self.columns_):
                if self._differs_from_reference(frame.iat[i, k], column):
                    where.append((i, k))
                    replaced.append(i)
        if not where:
            return out
        changed = frame.iloc[replaced].astype(object).reset_index(drop=True)
        for j, (_, k) in enumerate(where):
            changed.iat[j, k] = self.reference_.get(self.columns_[k])
        logits = self._logit(changed)
        for j, (i, k) in enumerate(where):
            out[i, k] = base[i] - logits[j]
        return out

    def _reason_table(self, frame: pd.DataFrame, per_column: np.ndarray, top: int) -> pd.DataFrame:
        fields, value_labels = split_labels(self.labels)
        units = dict(self.units or {})
        unseen = self._unseen_mask(frame)
        at = {c: j for j, c in enumerate(self.categorical_columns_)}
        rows = []
        for i in range(len(frame)):
            contribution = per_column[i]
            order = [
                k for k in np.argsort(-contribution, kind="stable") if abs(contribution[k]) > _ZERO
            ]
            for rank, k in enumerate(order[:top], start=1):
                column = self.columns_[k]
                value = frame.iat[i, k]
                if column in self.datetime_columns_ and not is_missing(value):
                    value = str(pd.Timestamp(float(value) * 86400.0, unit="s"))
                unknown = bool(column in at and unseen[i, at[column]])
                rows.append(
                    {
                        "row": i,
                        "rank": rank,
                        "field": column,
                        "value": value,
                        "contribution": float(contribution[k]),
                        "points": float(-self.scale.factor * contribution[k]),
                        "unknown": unknown,
                        "reason": reason_text(
                            column,
                            value,
                            float(contribution[k]),
                            fields,
                            value_labels,
                            units,
                            unknown=unknown,
                            is_text=column in self.text_columns_,
                        ),
                    }
                )
        return pd.DataFrame(rows, columns=REASON_COLUMNS)


def _sentiment_kind(sentiment: Any) -> str | None:
    """The artifact kind a sentiment model is saved as, or None when it cannot be saved."""
    if sentiment is None:
        return None
    from dayzero.risk.text_classifier import ARTIFACT_KIND as CLASSIFIER
    from dayzero.risk.text_classifier import TextClassifier
    from dayzero.risk.text_regressor import ARTIFACT_KIND as REGRESSOR
    from dayzero.risk.text_regressor import TextRegressor

    if isinstance(sentiment, TextClassifier):
        return CLASSIFIER
    if isinstance(sentiment, TextRegressor):
        return REGRESSOR
    return None


def _load_sentiment(kind: str, folder: Path) -> Any:
    from dayzero.risk.text_classifier import TextClassifier
    from dayzero.risk.text_regressor import TextRegressor

    classes = {"text-classifier": TextClassifier, "text-regressor": TextRegressor}
    if kind not in classes:
        raise ValueError(f"{folder}: unknown sentiment model kind {kind!r}")
    return classes[kind].load(folder)
