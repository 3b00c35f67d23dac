"""A transfer prior for credit scoring with few labels: what other portfolios taught, by phrase.

A lender with 4-64 labelled applicants cannot estimate 20 fields' effects from the labels. Other
credit tables can say what "a payment delay of two months" or "a young applicant" does to the
odds of default, if their fields and this lender's are put in one vocabulary. Here that
vocabulary is the field phrase the row serialisation uses, encoded by a sentence encoder:

1. :class:`FieldPhrases` turns each column into features with a phrase each. A categorical value
   is one indicator, ``"checking account status: < 0 DM"`` (``"label: value"``, value labels
   applied); a numeric column is one feature, its value's rank among the fitted rows in
   ``[-0.5, 0.5]`` (scale-free, so "higher" means the same in every table), phrased by its label
   (``"duration in month"``, which the encoder reads as ``"higher duration in month"``); a
   missing numeric is an indicator ``"label: missing"``.
2. :class:`TransferPrior` measures each source feature's effect on default (by default its
   marginal effect: smoothed log-odds against the table's, or a one-feature logistic slope on
   the rank; ``effects="joint"`` takes an L2 logistic regression's coefficients instead),
   centres each categorical column's weights (the frequency-weighted mean is 0, so a weight says
   "riskier than the table's usual value"), and learns two ridge maps from a phrase's embedding
   to its weight: categorical phrase -> log-odds weight, numeric label -> slope per unit of
   rank (one map for both did worse: a linear map cannot flip "high" by field). Each source
   table counts equally. The ridge strength is chosen by leave-one-table-out: the map is fitted
   on all tables but one and scores the held-out one's rows zero-shot; ``loto_`` keeps that
   check per table (does the map transfer at all?).
3. :class:`PriorLogisticRegression` fits a target table's k rows: logistic regression whose
   coefficients are shrunk toward ``prior_scale`` times the predicted weights instead of toward
   zero (``w = prior_scale * w_prior + delta`` with an L2 penalty on ``delta`` only). ``C`` and
   ``prior_scale`` come from stratified CV on the fit rows when both classes have at least
   ``min_cv_class`` rows, else from a fixed rule (:data:`SMALL_K_RULE`, chosen on the source
   tables' own k-shot simulation, never on a target).

Use::

    prior = TransferPrior().fit(
        {"hmeq": (X_hmeq, y_hmeq), "credit-data": (X_cd, y_cd)},
        labels={"hmeq": {"DEBTINC": "debt-to-income ratio"}, "credit-data": {}},
    )
    prior.save("credit-prior")
    clf = PriorLogisticRegression("credit-prior").fit(X_k, y_k)  # the lender's k rows
    pd_new = clf.predict_proba(X_new)[:, 1]

``bench/credit_prior.py`` measures it on German credit (BENCHMARKS.md, "A transfer prior from
other credit tables"). Nothing is pickled: :meth:`TransferPrior.save` writes ``dayzero.json``
+ safetensors (:mod:`dayzero.core.artifact`); the encoder is saved by name and loaded from its
own files.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from dayzero.core.artifact import Artifact, ArtifactError, load_artifact, save_artifact
from dayzero.core.templates import format_value, humanize, is_missing

ARTIFACT_KIND = "risk-prior"
CLASSIFIER_KIND = "risk-prior-classifier"
#: Ridge strengths compared by leave-one-table-out zero-shot AUC.
PRIOR_ALPHAS = (0.01, 0.1, 1.0, 10.0)
#: Source-table logistic regressions: inverse L2 strengths compared by 5-fold log-loss.
SOURCE_CS = (0.01, 0.1, 1.0, 10.0)
#: Grids of :class:`PriorLogisticRegression`'s CV, strongest prior first (ties keep the prior).
KSHOT_CS = (0.01, 0.1, 1.0, 10.0)
KSHOT_SCALES = (0.5, 1.0, 2.0, 4.0)
#: ``(C, prior_scale)`` when a class has fewer than ``min_cv_class`` fit rows (k = 4-8: folds of
#: one or two rows per class cannot choose). Chosen by ``bench/credit_prior.py --simulate`` on the
#: source tables alone (each held out in turn, its prior from the others), before any target:
#: the best mean AUC over k = 4 and 8 of the 16 grid points (.657, tied with scale 0.5; the
#: prior alone, C = 0.01, .622; no prior .634).
SMALL_K_RULE = (1.0, 1.0)

Labels = Mapping[str, str]
ValueLabels = Mapping[str, Mapping[Any, str]]


def _value_text(value: Any, labels: Mapping[Any, str] | None) -> str:
    if labels:
        for key in (value, str(value)):
            if isinstance(key, Hashable) and key in labels:
                return str(labels[key])
        if isinstance(value, float) and value.is_integer() and int(value) in labels:
            return str(labels[int(value)])
    return format_value(value)


class FieldPhrases(TransformerMixin, BaseEstimator):
    """Columns -> features with one phrase each (see the module notes).

    Parameters
    ----------
    labels : mapping of str to str, optional
        Column -> the phrase that names it (its description); default the humanised column
        name (``"credit_amount"`` -> ``"credit amount"``), as the row serialisation writes it.
    value_labels : mapping of str to mapping, optional
        Column -> {code: text} for coded categoricals (``{"SEX": {1: "male", 2: "female"}}``).
        A column named here is categorical whatever its dtype.

    Attributes
    ----------
    columns_ : list of str
        The columns used (datetimes and all-missing columns are skipped).
    feature_column_ : list of str
        The column of each feature.
    feature_kind_ : list of str
        ``"category"`` (an indicator), ``"rank"`` (a numeric's rank in [-0.5, 0.5]) or
        ``"missing"`` (a numeric's missing indicator).
    phrases_ : list of str
        The phrase of each feature (what the encoder reads).
    """

    def __init__(self, labels: Labels | None = None, value_labels: ValueLabels | None = None):
        self.labels = labels
        self.value_labels = value_labels

    def _label(self, column: str) -> str:
        labels = self.labels or {}
        return str(labels.get(column, humanize(str(column))))

    def fit(self, X: pd.DataFrame, y: Any = None) -> FieldPhrases:
        """Learn the features of ``X``: categories seen, numeric ranks' reference values."""
        X = _frame(X, "X")
        value_labels = self.value_labels or {}
        self.columns_, self.feature_column_, self.feature_kind_, self.phrases_ = [], [], [], []
        self.categories_: dict[str, list[str]] = {}
        self.sorted_: dict[str, np.ndarray] = {}
        for column in X.columns:
            values = X[column]
            if pd.api.types.is_datetime64_any_dtype(values) or values.isna().all():
                continue
            label = self._label(column)
            numeric = (
                column not in value_labels
                and pd.api.types.is_numeric_dtype(values)
                and not pd.api.types.is_bool_dtype(values)
                and values.nunique() > 2
            )
            self.columns_.append(column)
            if numeric:
                finite = values.to_numpy(dtype=np.float64)
                self.sorted_[column] = np.sort(finite[np.isfinite(finite)])
                self._add(column, "rank", label)
                if values.isna().any():
                    self._add(column, "missing", f"{label}: missing")
            else:
                texts = self._texts(column, values)
                seen = sorted({t for t in texts if t is not None})
                self.categories_[column] = seen
                for text in seen:
                    self._add(column, "category", f"{label}: {text}")
        if not self.phrases_:
            raise ValueError("X has no usable column (every column is a datetime or missing)")
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _add(self, column: str, kind: str, phrase: str) -> None:
        self.feature_column_.append(column)
        self.feature_kind_.append(kind)
        self.phrases_.append(phrase)

    def _texts(self, column: str, values: pd.Series) -> list[str | None]:
        labels = (self.value_labels or {}).get(column)
        return [None if is_missing(v) else _value_text(v, labels) for v in values.tolist()]

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, n_features)`` float64: indicators, ranks, missing indicators (unseen
        categories and missing categoricals are all-zero)."""
        X = _frame(X, "X")
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks column(s) {missing} that FieldPhrases was fitted on; "
                "pass the same columns as at fit"
            )
        out = np.zeros((len(X), len(self.phrases_)), dtype=np.float64)
        index = {(c, k, p): j for j, (c, k, p) in enumerate(self._triples())}
        for column in self.columns_:
            label = self._label(column)
            if column in self.sorted_:
                values = pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=np.float64)
                ref = self.sorted_[column]
                lo = np.searchsorted(ref, values, side="left")
                hi = np.searchsorted(ref, values, side="right")
                rank = (lo + hi) / (2.0 * max(len(ref), 1)) - 0.5
                finite = np.isfinite(values)
                out[:, index[(column, "rank", label)]] = np.where(finite, rank, 0.0)
                j = index.get((column, "missing", f"{label}: missing"))
                if j is not None:
                    out[:, j] = ~finite
            else:
                for i, text in enumerate(self._texts(column, X[column])):
                    j = index.get((column, "category", f"{label}: {text}"))
                    if j is not None:
                        out[i, j] = 1.0
        return out

    def _triples(self) -> list[tuple[str, str, str]]:
        return list(zip(self.feature_column_, self.feature_kind_, self.phrases_, strict=True))


def _frame(X: Any, name: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame of the applicants' columns")
    return X


def _fit_offset_logistic(
    Z: np.ndarray, y: np.ndarray, offset: np.ndarray, C: float
) -> tuple[np.ndarray, float]:
    """L2 logistic regression with a fixed per-row offset: min sum logloss(b + offset + Z d) +
    |d|^2 / (2C); the intercept b is not penalised."""
    from scipy.optimize import minimize

    p = Z.shape[1]
    y = y.astype(np.float64)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, d = theta[0], theta[1:]
        z = b + offset + Z @ d
        loss = np.logaddexp(0.0, z) - y * z
        r = 1.0 / (1.0 + np.exp(-z)) - y
        grad = np.concatenate([[r.sum()], Z.T @ r + d / C])
        return float(loss.sum() + d @ d / (2.0 * C)), grad

    start = np.zeros(p + 1)
    rate = np.clip(y.mean(), 1e-3, 1 - 1e-3)
    start[0] = np.log(rate / (1 - rate)) - float(np.mean(offset))
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return result.x[1:], float(result.x[0])


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, score))


class TransferPrior(BaseEstimator):
    """Phrase embedding -> log-odds weight, learnt on source credit tables (see module notes).

    Parameters
    ----------
    encoder : str or object, default "all-MiniLM-L6-v2"
        A :class:`~dayzero.text.encoder.TextEncoder` model name or folder, or any object with
        ``encode(texts, normalize=True) -> ndarray`` (only a name can be saved).
    cache_dir : str or Path, optional
        Embedding cache folder for a named encoder.
    alphas : sequence of float
        Ridge strengths compared by leave-one-table-out zero-shot AUC.
    source_Cs : sequence of float
        Inverse L2 strengths of the source tables' logistic regressions (5-fold log-loss).
    max_rows : int, default 10000
        Larger source tables are subsampled (seeded) to this many rows.
    effects : {"marginal", "joint"}, default "marginal"
        What a source phrase's weight is. ``"marginal"``: its own effect, the smoothed log-odds
        of default of the rows with it against the table's (a category, a missing value), or a
        one-feature logistic slope on the rank (a numeric). ``"joint"``: its coefficient in the
        table's L2 logistic regression on all features (C by 5-fold log-loss over
        ``source_Cs``), which splits an effect among correlated fields (six months of repayment
        status) in a way that does not carry over to a table with other fields. Marginal
        transferred better leave-one-table-out on the public tables of ``bench/credit_prior.py``
        (mean zero-shot AUC .646 vs .624).
    rank_template : str, default "higher {}"
        What the encoder reads for a numeric feature, ``{}`` its label (``"higher duration in
        month"``): the weight is the slope per unit of rank, so the phrase says which way.
        Leave-one-table-out on the same tables: .646 against .629 for the bare label, .630 for
        ``"a high {}"``, .628 for ``"{} is high"``.
    random_state : int, default 0

    Attributes
    ----------
    tables_ : list of str
        Source table names.
    source_ : dict
        Per table: ``phrases``, ``kinds`` and the fitted, centred ``weights``, ``C``, rows.
    alpha_ : float
        The chosen ridge strength.
    loto_ : dict
        Per held-out table at ``alpha_``: ``zero_shot_auc`` (rows scored by the map fitted on
        the other tables), ``in_table_auc`` (its own logistic regression, in-sample: a ceiling),
        ``weight_corr`` (predicted vs fitted weights); and ``by_alpha`` (mean zero-shot AUC).
    coef_ : dict of str to ndarray
        ``"category"`` and ``"rank"`` ridge coefficients (missing indicators use ``"category"``).
    intercept_ : dict of str to float

    Notes
    -----
    A fitted prior is read-only: ``sklearn.clone`` returns it as it is (like
    ``sklearn.frozen.FrozenEstimator``), so a classifier holding it survives ``GridSearchCV``.
    """

    def __init__(
        self,
        encoder: Any = "all-MiniLM-L6-v2",
        cache_dir: str | Path | None = None,
        alphas: Sequence[float] = PRIOR_ALPHAS,
        source_Cs: Sequence[float] = SOURCE_CS,
        max_rows: int = 10000,
        effects: str = "marginal",
        rank_template: str = "higher {}",
        random_state: int = 0,
    ) -> None:
        self.encoder = encoder
        self.cache_dir = cache_dir
        self.alphas = alphas
        self.source_Cs = source_Cs
        self.max_rows = max_rows
        self.effects = effects
        self.rank_template = rank_template
        self.random_state = random_state

    def __sklearn_clone__(self) -> TransferPrior:
        if hasattr(self, "coef_"):
            return self
        return super().__sklearn_clone__()

    # ---- encoding --------------------------------------------------------------------------

    def _embed(self, phrases: Sequence[str], kinds: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "_encoder_obj"):
            if isinstance(self.encoder, str | Path):
                from dayzero.text.encoder import TextEncoder

                self._encoder_obj = TextEncoder(str(self.encoder), cache_dir=self.cache_dir)
            else:
                self._encoder_obj = self.encoder
        if not len(phrases):
            return np.zeros((0, 1))
        texts = [
            self.rank_template.format(p) if k == "rank" else p
            for p, k in zip(phrases, kinds, strict=True)
        ]
        return np.asarray(self._encoder_obj.encode(texts, normalize=True), np.float64)

    # ---- fit -------------------------------------------------------------------------------

    def fit(
        self,
        tables: Mapping[str, tuple[pd.DataFrame, Any]],
        labels: Mapping[str, Labels] | None = None,
        value_labels: Mapping[str, ValueLabels] | None = None,
    ) -> TransferPrior:
        """Fit the source tables' weights and the phrase -> weight maps.

        Parameters
        ----------
        tables : mapping of str to (DataFrame, array-like)
            Source table name -> (applicant columns, 0/1 labels with 1 = bad). At least two
            tables (leave-one-table-out needs one to hold out).
        labels, value_labels : mapping of table name to FieldPhrases' parameter, optional
            Column descriptions and value labels per table.

        Returns
        -------
        TransferPrior
            ``self``.
        """
        if self.effects not in ("marginal", "joint"):
            raise ValueError(f"effects must be 'marginal' or 'joint', got {self.effects!r}")
        if len(tables) < 2:
            raise ValueError(f"TransferPrior needs at least two source tables, got {len(tables)}")
        labels, value_labels = labels or {}, value_labels or {}
        # A refit (or set_params) must not reuse the last fit's encoder or predicted weights.
        for stale in ("_weight_cache", "_encoder_obj"):
            self.__dict__.pop(stale, None)
        self.source_ = {}
        self._rows = {}
        for name, (X, y) in tables.items():
            X = _frame(X, f"tables[{name!r}][0]").reset_index(drop=True)
            y = np.asarray(y).astype(int).ravel()
            if len(y) != len(X) or set(np.unique(y)) != {0, 1}:
                raise ValueError(
                    f"tables[{name!r}]: labels must be 0/1 with both classes, one per row "
                    f"({len(X)} rows, {len(y)} labels)"
                )
            if len(X) > self.max_rows:
                keep = np.random.default_rng(self.random_state).choice(
                    len(X), self.max_rows, replace=False
                )
                X, y = X.iloc[np.sort(keep)].reset_index(drop=True), y[np.sort(keep)]
            phraser = FieldPhrases(labels.get(name), value_labels.get(name)).fit(X)
            Z = phraser.transform(X)
            raw, C = self._effects(Z, y, phraser.feature_kind_)
            weights = _centre(raw, Z, phraser)
            self.source_[name] = {
                "phrases": list(phraser.phrases_),
                "kinds": list(phraser.feature_kind_),
                "weights": weights.tolist(),
                "C": C,
                "rows": len(y),
            }
            self._rows[name] = (Z, y)
        self.tables_ = list(self.source_)
        self._source_embeddings = {
            n: self._embed(s["phrases"], s["kinds"]) for n, s in self.source_.items()
        }
        self._select_alpha()
        return self

    def _effects(self, Z: np.ndarray, y: np.ndarray, kinds: Sequence[str]):
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

        if self.effects == "joint":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # sklearn 1.8's l1_ratios notice
                model = LogisticRegressionCV(
                    Cs=list(self.source_Cs), cv=5, scoring="neg_log_loss", max_iter=2000
                ).fit(Z, y)
            return model.coef_.ravel(), float(np.ravel(model.C_)[0])
        base = np.log(y.mean() / (1.0 - y.mean()))
        out = np.zeros(Z.shape[1])
        for j, kind in enumerate(kinds):
            if kind == "rank":
                out[j] = LogisticRegression(C=100.0).fit(Z[:, [j]], y).coef_[0, 0]
            else:
                on = Z[:, j] > 0
                bad, good = y[on].sum(), (1 - y[on]).sum()
                out[j] = np.log((bad + 0.5) / (good + 0.5)) - base
        return out, None

    def _select_alpha(self) -> None:
        by_alpha: dict[float, dict[str, dict[str, float]]] = {}
        for alpha in self.alphas:
            by_alpha[alpha] = {}
            for held in self.tables_:
                coef, intercept = self._ridge([t for t in self.tables_ if t != held], alpha)
                source = self.source_[held]
                predicted = _predict(
                    self._source_embeddings[held], source["kinds"], coef, intercept
                )
                row = {"weight_corr": _corr(predicted, np.asarray(source["weights"]))}
                if held in getattr(self, "_rows", {}):
                    Z, y = self._rows[held]
                    row["zero_shot_auc"] = _auc(y, Z @ predicted)
                    row["in_table_auc"] = _auc(y, Z @ np.asarray(source["weights"]))
                by_alpha[alpha][held] = row
        key = "zero_shot_auc" if getattr(self, "_rows", None) else "weight_corr"
        means = {
            a: float(np.nanmean([r[key] for r in rows.values()])) for a, rows in by_alpha.items()
        }
        self.alpha_ = float(max(means, key=lambda a: (means[a], a)))
        self.loto_ = {
            "tables": by_alpha[self.alpha_],
            "by_alpha": {str(a): m for a, m in means.items()},
        }
        self.loto_["selected_by"] = f"mean leave-one-table-out {key}"
        self.coef_, self.intercept_ = self._ridge(self.tables_, self.alpha_)

    def _ridge(self, names: Sequence[str], alpha: float) -> tuple[dict, dict]:
        from sklearn.linear_model import Ridge

        coef, intercept = {}, {}
        for group in ("rank", "category"):
            E, w, sw = [], [], []
            for name in names:
                source = self.source_[name]
                pick = [i for i, k in enumerate(source["kinds"]) if _group(k) == group]
                if not pick:
                    continue
                E.append(self._source_embeddings[name][pick])
                w.append(np.asarray(source["weights"])[pick])
                sw.append(np.full(len(pick), 1.0 / len(pick)))  # each table counts once
            if not E:
                dim = next(iter(self._source_embeddings.values())).shape[1]
                coef[group], intercept[group] = np.zeros(dim), 0.0
                continue
            ridge = Ridge(alpha=alpha).fit(np.vstack(E), np.concatenate(w), np.concatenate(sw))
            coef[group], intercept[group] = ridge.coef_.astype(np.float64), float(ridge.intercept_)
        return coef, intercept

    def leave_out(self, name: str) -> TransferPrior:
        """A fitted copy of this prior without source table ``name`` (same ``alpha_``); for
        checks on a source table that must not see itself."""
        self._check_fitted()
        if name not in self.source_:
            raise KeyError(f"{name!r} is not a source table of this prior: {self.tables_}")
        other = TransferPrior(**self.get_params())
        other.source_ = {n: s for n, s in self.source_.items() if n != name}
        other.tables_ = list(other.source_)
        other._source_embeddings = {n: self._source_embeddings[n] for n in other.tables_}
        if hasattr(self, "_encoder_obj"):
            other._encoder_obj = self._encoder_obj
        other.alpha_, other.loto_ = self.alpha_, {}
        other.coef_, other.intercept_ = other._ridge(other.tables_, other.alpha_)
        return other

    # ---- predict ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("this TransferPrior is not fitted: call fit(tables) or load()")

    def predict_weights(self, phrases: Sequence[str], kinds: Sequence[str]) -> np.ndarray:
        """Predicted weight of each phrase: log-odds of default for an indicator, per unit of
        rank for a ``"rank"`` feature (not yet centred per column; see :meth:`weights_for`)."""
        self._check_fitted()
        return _predict(self._embed(phrases, kinds), kinds, self.coef_, self.intercept_)

    def weights_for(self, phraser: FieldPhrases, X: pd.DataFrame | None = None) -> np.ndarray:
        """The prior weights of a fitted :class:`FieldPhrases`' features, each categorical
        column's centred on the rows ``X`` (default: every value counts once)."""
        cache: dict[str, float] = self.__dict__.setdefault("_weight_cache", {})
        todo = [(p, k) for p, k in zip(phraser.phrases_, phraser.feature_kind_, strict=True)]
        new = [(p, k) for p, k in dict.fromkeys(todo) if f"{k}\0{p}" not in cache]
        if new:
            values = self.predict_weights([p for p, _ in new], [k for _, k in new])
            cache.update({f"{k}\0{p}": float(v) for (p, k), v in zip(new, values, strict=True)})
        raw = np.array([cache[f"{k}\0{p}"] for p, k in todo])
        Z = phraser.transform(X) if X is not None else None
        return _centre(raw, Z, phraser)

    def decision_function(
        self,
        X: pd.DataFrame,
        labels: Labels | None = None,
        value_labels: ValueLabels | None = None,
    ) -> np.ndarray:
        """Zero-shot log-odds (up to a constant) of the rows ``X``, no labels used: numeric
        ranks are taken among the rows of ``X`` themselves."""
        phraser = FieldPhrases(labels, value_labels).fit(X)
        return phraser.transform(X) @ self.weights_for(phraser, X)

    # ---- save / load -----------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write ``dayzero.json`` + ``weights.safetensors`` into ``folder``."""
        self._check_fitted()
        if not isinstance(self.encoder, str | Path):
            raise ArtifactError(
                "only a TransferPrior whose encoder is a model name or folder can be saved; "
                f"got {type(self.encoder).__name__}"
            )
        params = {
            "encoder": str(self.encoder),
            "alphas": list(self.alphas),
            "source_Cs": list(self.source_Cs),
            "max_rows": int(self.max_rows),
            "effects": self.effects,
            "rank_template": self.rank_template,
            "random_state": int(self.random_state),
        }
        arrays = {f"coef.{g}": c for g, c in self.coef_.items()}
        arrays |= {
            f"embeddings.{i}": self._source_embeddings[n] for i, n in enumerate(self.tables_)
        }
        state = {
            "tables": self.tables_,
            "source": self.source_,
            "alpha": self.alpha_,
            "intercept": self.intercept_,
            "loto": self.loto_,
        }
        return save_artifact(
            folder, Artifact(ARTIFACT_KIND, "transfer-prior", params, state, arrays)
        )

    @classmethod
    def load(cls, folder: str | Path, cache_dir: str | Path | None = None) -> TransferPrior:
        """A prior saved by :meth:`save` (the encoder is loaded by its name, lazily)."""
        artifact = load_artifact(folder, ARTIFACT_KIND)
        prior = cls(**artifact.params, cache_dir=cache_dir)
        state, arrays = artifact.state, artifact.arrays
        try:
            prior.tables_ = list(state["tables"])
            prior.source_ = dict(state["source"])
            prior.alpha_ = float(state["alpha"])
            prior.intercept_ = {g: float(v) for g, v in state["intercept"].items()}
            prior.loto_ = dict(state["loto"])
            prior.coef_ = {g: arrays[f"coef.{g}"].astype(np.float64) for g in ("rank", "category")}
            prior._source_embeddings = {
                n: arrays[f"embeddings.{i}"].astype(np.float64) for i, n in enumerate(prior.tables_)
            }
        except KeyError as exc:
            raise ArtifactError(f"{folder}: the saved prior lacks {exc}; save it again") from None
        return prior


def _group(kind: str) -> str:
    return "rank" if kind == "rank" else "category"


def _predict(E: np.ndarray, kinds: Sequence[str], coef: dict, intercept: dict) -> np.ndarray:
    out = np.zeros(len(kinds))
    for i, kind in enumerate(kinds):
        group = _group(kind)
        out[i] = E[i] @ coef[group] + intercept[group]
    return out


def _centre(weights: np.ndarray, Z: np.ndarray | None, phraser: FieldPhrases) -> np.ndarray:
    """Each categorical column's weights minus their mean (frequency-weighted on ``Z``'s rows when
    given): one-hot weights are defined up to a per-column constant."""
    weights = np.array(weights, dtype=np.float64)
    columns = np.asarray(phraser.feature_column_, dtype=object)
    kinds = np.asarray(phraser.feature_kind_)
    for column in phraser.categories_:
        pick = np.flatnonzero((columns == column) & (kinds == "category"))
        if not len(pick):
            continue
        freq = Z[:, pick].sum(axis=0) if Z is not None else np.ones(len(pick))
        if freq.sum() <= 0:
            freq = np.ones(len(pick))
        weights[pick] -= float(freq @ weights[pick] / freq.sum())
    return weights


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class PriorLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression on field-phrase features shrunk toward a transfer prior.

    ``w = prior_scale * w_prior + delta``, ``delta`` penalised by ``|delta|^2 / (2C)``; the
    intercept is free. Without a prior (``prior=None``) it is plain L2 logistic regression on the
    same features (the zero prior).

    Parameters
    ----------
    prior : TransferPrior, str or Path, optional
        A fitted prior or the folder it was saved to.
    C : float, optional
        Inverse strength of the pull toward the prior; None: chosen by CV on the fit rows
        (``KSHOT_CS``), or :data:`SMALL_K_RULE` when a class has fewer than ``min_cv_class`` rows.
    prior_scale : float, optional
        Multiplier of the prior weights; None: chosen with ``C`` (``KSHOT_SCALES``), or 1.0
        when ``C`` is given.
    labels, value_labels : optional
        :class:`FieldPhrases`' parameters for the target table.
    cv : int, default 3
        Stratified folds (fewer when a class has fewer rows).
    min_cv_class : int, default 8
        Rows of the smaller class needed before CV chooses ``C`` and ``prior_scale``.
    random_state : int, default 0
        Seeds the folds.

    Attributes
    ----------
    phraser_ : FieldPhrases
    prior_weights_ : ndarray
        The prior's weights of the features (zeros without a prior).
    coef_ : ndarray
        ``prior_scale_ * prior_weights_ + delta``.
    intercept_ : float
    C_, prior_scale_ : float
        The values used; ``selection_`` says how they were chosen.
    feature_mean_ : ndarray
        The features' mean over the fit rows (and ``X_unlabelled``): the reference applicant
        of :meth:`contributions`.
    classes_ : ndarray

    Examples
    --------
    >>> clf = PriorLogisticRegression(prior="my-prior")  # doctest: +SKIP
    >>> clf.fit(X_k, y_k).predict_proba(X_new)[:, 1]  # doctest: +SKIP
    """

    def __init__(
        self,
        prior: TransferPrior | str | Path | None = None,
        C: float | None = None,
        prior_scale: float | None = None,
        labels: Labels | None = None,
        value_labels: ValueLabels | None = None,
        cv: int = 3,
        min_cv_class: int = 8,
        random_state: int = 0,
    ) -> None:
        self.prior = prior
        self.C = C
        self.prior_scale = prior_scale
        self.labels = labels
        self.value_labels = value_labels
        self.cv = cv
        self.min_cv_class = min_cv_class
        self.random_state = random_state

    def _prior(self) -> TransferPrior | None:
        if self.prior is None or isinstance(self.prior, TransferPrior):
            if isinstance(self.prior, TransferPrior):
                self.prior._check_fitted()
            return self.prior
        if isinstance(self.prior, str | Path):
            self.__dict__.setdefault("_loaded", {})
            key = str(self.prior)
            if key not in self._loaded:
                self._loaded[key] = TransferPrior.load(self.prior)
            return self._loaded[key]
        raise TypeError(
            f"prior must be a fitted TransferPrior, a saved prior's folder or None; "
            f"got {type(self.prior).__name__}"
        )

    def _design(self, prior: TransferPrior | None, X: pd.DataFrame, pool: pd.DataFrame | None):
        rows = X if pool is None else pd.concat([X, pool], ignore_index=True)
        phraser = FieldPhrases(self.labels, self.value_labels).fit(rows)
        Z = phraser.transform(X)
        w0 = prior.weights_for(phraser, rows) if prior is not None else np.zeros(Z.shape[1])
        return phraser, Z, w0

    def fit(
        self, X: pd.DataFrame, y: Any, X_unlabelled: pd.DataFrame | None = None
    ) -> PriorLogisticRegression:
        """Fit on the labelled rows ``X``, ``y`` (0/1, 1 = bad).

        Parameters
        ----------
        X : DataFrame
            The labelled applicants' columns.
        y : array-like
            Their labels.
        X_unlabelled : DataFrame, optional
            Applicants without a label (the lender's pool). Their columns only set the
            numeric ranks' reference values, the categories known and the centring of the
            prior's weights; no label is guessed for them. Without it, the k rows alone do
            (with 4 rows, a rank takes at most 9 values).

        Returns
        -------
        PriorLogisticRegression
            ``self``.
        """
        from sklearn.model_selection import StratifiedKFold

        X = _frame(X, "X").reset_index(drop=True)
        pool = None if X_unlabelled is None else _frame(X_unlabelled, "X_unlabelled")
        y = np.asarray(y).ravel()
        self.classes_, y = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2 or len(y) != len(X):
            raise ValueError(
                f"y must hold two classes, one label per row of X (got {len(self.classes_)} "
                f"classes, {len(y)} labels for {len(X)} rows)"
            )
        prior = self._prior()
        Cs = KSHOT_CS if self.C is None else (float(self.C),)
        scales = (KSHOT_SCALES if self.C is None else (1.0,)) if prior is not None else (0.0,)
        if self.prior_scale is not None and prior is not None:
            scales = (float(self.prior_scale),)
        smaller = int(np.bincount(y).min())
        grid = [(c, s) for c in Cs for s in scales]
        if len(grid) == 1:
            (C, scale), how = grid[0], "given"
        elif smaller < self.min_cv_class:
            C = SMALL_K_RULE[0] if self.C is None else float(self.C)
            scale = SMALL_K_RULE[1] if self.prior_scale is None else float(self.prior_scale)
            scale = scale if prior is not None else 0.0
            if prior is None and self.C is None:
                C = 1.0  # the zero prior's fixed rule: scikit-learn's default C
            how = f"fixed rule (smaller class has {smaller} < {self.min_cv_class} rows)"
        else:
            folds = StratifiedKFold(
                min(self.cv, smaller), shuffle=True, random_state=self.random_state
            )
            parts = []
            for train, test in folds.split(X, y):
                phr, Zt, w0t = self._design(prior, X.iloc[train], pool)
                parts.append((Zt, y[train], w0t, phr.transform(X.iloc[test]), y[test]))
            scores = {}
            for c, s in grid:
                aucs = []
                for Zt, yt, w0t, Zv, yv in parts:
                    d, b = _fit_offset_logistic(Zt, yt, s * (Zt @ w0t), c)
                    aucs.append(_auc(yv, Zv @ (s * w0t + d) + b))
                scores[(c, s)] = float(np.nanmean(aucs))
            C, scale = max(grid, key=lambda g: scores[g])  # first best: strongest prior on ties
            how = f"{folds.get_n_splits()}-fold CV AUC on the fit rows"
            self.cv_scores_ = {f"C={c},scale={s}": v for (c, s), v in scores.items()}
        self.phraser_, Z, self.prior_weights_ = self._design(prior, X, pool)
        delta, self.intercept_ = _fit_offset_logistic(Z, y, scale * (Z @ self.prior_weights_), C)
        self.coef_ = scale * self.prior_weights_ + delta
        self.C_, self.prior_scale_, self.selection_ = float(C), float(scale), how
        reference = X if pool is None else pd.concat([X, pool], ignore_index=True)
        self.feature_mean_ = self.phraser_.transform(reference).mean(axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def contributions(self, X: pd.DataFrame) -> tuple[pd.DataFrame, float]:
        """Each column's share of each row's log-odds, against the average fitted applicant.

        Returns
        -------
        contributions : DataFrame
            ``(n, columns)``: coefficient times the feature's deviation from its mean over the
            fit rows (and ``X_unlabelled``), summed over the column's features; positive raises
            the odds of ``classes_[1]``.
        base : float
            The log-odds of the average applicant: ``contributions.sum(axis=1) + base`` is
            :meth:`decision_function`.
        """
        if not hasattr(self, "coef_"):
            raise RuntimeError("this PriorLogisticRegression is not fitted: call fit(X, y)")
        X = _frame(X, "X")
        parts = (self.phraser_.transform(X) - self.feature_mean_) * self.coef_
        columns = list(self.phraser_.columns_)
        owner = np.array([columns.index(c) for c in self.phraser_.feature_column_])
        out = np.zeros((len(X), len(columns)))
        np.add.at(out.T, owner, parts.T)
        base = float(self.intercept_ + self.feature_mean_ @ self.coef_)
        return pd.DataFrame(out, index=X.index, columns=columns), base

    # ---- save / load -----------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the fitted classifier into ``folder`` (``dayzero.json`` + safetensors), its
        prior into ``folder/prior/``."""
        import json

        from dayzero.core.artifact import json_default

        if not hasattr(self, "coef_"):
            raise RuntimeError("this PriorLogisticRegression is not fitted: call fit(X, y)")
        folder = Path(folder)
        prior = self._prior()
        phraser = self.phraser_
        params = {
            "C": self.C,
            "prior_scale": self.prior_scale,
            "labels": dict(self.labels or {}),
            "value_labels": {c: dict(v) for c, v in (self.value_labels or {}).items()},
            "cv": self.cv,
            "min_cv_class": self.min_cv_class,
            "random_state": self.random_state,
        }
        state = {
            "classes": np.asarray(self.classes_).tolist(),
            "C": self.C_,
            "prior_scale": self.prior_scale_,
            "selection": self.selection_,
            "intercept": self.intercept_,
            "n_features_in": self.n_features_in_,
            "has_prior": prior is not None,
            "columns": phraser.columns_,
            "feature_column": phraser.feature_column_,
            "feature_kind": phraser.feature_kind_,
            "phrases": phraser.phrases_,
            "categories": phraser.categories_,
            "ranked": list(phraser.sorted_),
        }
        params = json.loads(json.dumps(params, default=json_default))
        state = json.loads(json.dumps(state, default=json_default))
        arrays = {
            "coef": self.coef_,
            "prior_weights": self.prior_weights_,
            "feature_mean": self.feature_mean_,
        }
        arrays |= {f"ranked.{i}": v for i, v in enumerate(phraser.sorted_.values())}
        if prior is not None:
            prior.save(folder / "prior")
        return save_artifact(
            folder, Artifact(CLASSIFIER_KIND, "prior-logistic-regression", params, state, arrays)
        )

    @classmethod
    def load(cls, folder: str | Path) -> PriorLogisticRegression:
        """A classifier saved by :meth:`save`; scores as it did when saved."""
        folder = Path(folder)
        artifact = load_artifact(folder, CLASSIFIER_KIND)
        state, arrays = artifact.state, artifact.arrays
        try:
            prior = TransferPrior.load(folder / "prior") if state["has_prior"] else None
            model = cls(prior=prior, **artifact.params)
            phraser = FieldPhrases(model.labels, model.value_labels)
            phraser.columns_ = list(state["columns"])
            phraser.feature_column_ = list(state["feature_column"])
            phraser.feature_kind_ = list(state["feature_kind"])
            phraser.phrases_ = list(state["phrases"])
            phraser.categories_ = {c: list(v) for c, v in state["categories"].items()}
            phraser.sorted_ = {
                c: arrays[f"ranked.{i}"].astype(np.float64) for i, c in enumerate(state["ranked"])
            }
            model.phraser_ = phraser
            model.classes_ = np.asarray(state["classes"])
            model.C_, model.prior_scale_ = float(state["C"]), float(state["prior_scale"])
            model.selection_ = str(state["selection"])
            model.intercept_ = float(state["intercept"])
            model.n_features_in_ = int(state["n_features_in"])
            model.coef_ = arrays["coef"].astype(np.float64)
            model.prior_weights_ = arrays["prior_weights"].astype(np.float64)
            model.feature_mean_ = arrays["feature_mean"].astype(np.float64)
        except KeyError as exc:
            raise ArtifactError(
                f"{folder}: the saved classifier lacks {exc}; save it again"
            ) from None
        return model

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of ``classes_[1]``."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("this PriorLogisticRegression is not fitted: call fit(X, y)")
        return self.phraser_.transform(_frame(X, "X")) @ self.coef_ + self.intercept_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, 2)`` probabilities of ``classes_``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The more probable class of each row."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


__all__ = [
    "KSHOT_CS",
    "KSHOT_SCALES",
    "SMALL_K_RULE",
    "FieldPhrases",
    "PriorLogisticRegression",
    "TransferPrior",
]
