"""The tabular scorer's linear candidate: L2 logistic regression on the booster's own matrix.

``RiskScorer()`` compares this model with LightGBM on the same stratified folds and keeps the one
with the higher mean fold AUC. Few labelled rows (tens) or a nearly additive table favour it:
with 16 rows LightGBM cannot split at all (every leaf needs 20 rows) and scores a constant.

:class:`LinearHead` reads the matrix the booster reads (numeric columns with NaN for missing,
integer category codes with NaN for missing or unseen, free-text components after them) and
expands it itself: numerics standardised on the training rows, a missing value set to the mean
plus a missing-indicator where training had any; each category one-hot (missing: no category).
The expansion is a sparse matrix: a categorical with thousands of values (a name or a postcode
read as a category) adds thousands of columns but one non-zero per row.
Its contributions are exact: coefficient times the deviation from the training mean of each
expanded feature, summed per input column, so a row's contributions plus the base value are
its log-odds, as TreeSHAP's are for the trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse

#: Inverse L2 strengths compared on the folds (by log-loss: probabilities, not only ranks).
LINEAR_C = (0.01, 0.1, 1.0, 10.0)


class LinearHead:
    """L2 logistic regression over the tabular scorer's input matrix (see the module notes).

    Parameters
    ----------
    categorical : sequence of int
        Indices of the matrix columns that hold category codes; every other column is numeric.
    C : float
        Inverse L2 strength (scikit-learn's ``LogisticRegression(C=...)``).
    """

    def __init__(self, categorical: Sequence[int] = (), C: float = 1.0) -> None:
        self.categorical = [int(i) for i in categorical]
        self.C = float(C)

    # ---- fit / predict -------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearHead:
        """Learn the expansion on ``X`` and the coefficients on ``X``, ``y`` (0/1)."""
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=np.float64)
        self.n_inputs_ = X.shape[1]
        numeric = [j for j in range(self.n_inputs_) if j not in set(self.categorical)]
        values = X[:, numeric]
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(values, axis=0) if len(values) else np.zeros(len(numeric))
            std = np.nanstd(values, axis=0) if len(values) else np.ones(len(numeric))
        self.numeric_ = numeric
        self.mean_ = np.nan_to_num(mean)
        self.scale_ = np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
        self.missing_ = [j for j, col in zip(numeric, values.T, strict=True) if np.isnan(col).any()]
        self.levels_ = {
            j: int(np.nanmax(X[:, j])) + 1 if np.isfinite(X[:, j]).any() else 0
            for j in self.categorical
        }
        Z = self._expand(X)
        self.feature_mean_ = np.asarray(Z.mean(axis=0), dtype=np.float64).ravel()
        y = np.asarray(y).astype(int)
        model = LogisticRegression(C=self.C, max_iter=2000)
        model.fit(Z, y)
        self.coef_ = model.coef_.ravel().astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.n_iter_ = int(np.max(model.n_iter_))
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of label 1."""
        return self._expand(np.asarray(X, dtype=np.float64)) @ self.coef_ + self.intercept_

    def predict_proba(self, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        """``(n, 2)`` probabilities of labels 0 and 1 (``n_jobs`` is accepted and unused, as
        the booster's head takes it)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per row, each input column's log-odds contribution and, last, the base value: shape
        ``(n, n_inputs + 1)``; a row's columns add up to its log-odds exactly."""
        Z = self._expand(np.asarray(X, dtype=np.float64))
        # Feature f adds coef_f * (z_f - mean_f) to its input column: one sparse product.
        owner = self._owner()
        weights = scipy.sparse.csr_matrix(
            (self.coef_, (np.arange(len(owner)), owner)), shape=(len(owner), self.n_inputs_)
        )
        out = np.zeros((Z.shape[0], self.n_inputs_ + 1))
        out[:, :-1] = np.asarray((Z @ weights).todense()) - (self.feature_mean_ @ weights)
        out[:, -1] = self.intercept_ + float(self.feature_mean_ @ self.coef_)
        return out

    # ---- save / load ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Everything :meth:`from_json` needs, as JSON (no pickle)."""
        return {
            "kind": "linear",
            "categorical": self.categorical,
            "C": self.C,
            "n_inputs": self.n_inputs_,
            "numeric": self.numeric_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "missing": self.missing_,
            "levels": {str(k): v for k, v in self.levels_.items()},
            "feature_mean": self.feature_mean_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "n_iter": self.n_iter_,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> LinearHead:
        """The head :meth:`to_json` described."""
        head = cls(state["categorical"], state["C"])
        head.n_inputs_ = int(state["n_inputs"])
        head.numeric_ = [int(j) for j in state["numeric"]]
        head.mean_ = np.asarray(state["mean"], dtype=np.float64)
        head.scale_ = np.asarray(state["scale"], dtype=np.float64)
        head.missing_ = [int(j) for j in state["missing"]]
        head.levels_ = {int(k): int(v) for k, v in state["levels"].items()}
        head.feature_mean_ = np.asarray(state["feature_mean"], dtype=np.float64)
        head.coef_ = np.asarray(state["coef"], dtype=np.float64)
        head.intercept_ = float(state["intercept"])
        head.n_iter_ = int(state["n_iter"])
        return head

    # ---- the expansion -------------------------------------------------------------------------

    def _expand(self, X: np.ndarray) -> scipy.sparse.csr_matrix:
        values = X[:, self.numeric_]
        missing = np.isnan(values)
        standard = np.where(missing, 0.0, (values - self.mean_) / self.scale_)
        blocks = [scipy.sparse.csr_matrix(standard)]
        if self.missing_:
            where = [self.numeric_.index(j) for j in self.missing_]
            blocks.append(scipy.sparse.csr_matrix(missing[:, where].astype(np.float64)))
        for j in self.categorical:
            codes = X[:, j]
            known = np.isfinite(codes) & (codes >= 0) & (codes < self.levels_[j])
            rows = np.flatnonzero(known)
            blocks.append(
                scipy.sparse.csr_matrix(
                    (np.ones(len(rows)), (rows, codes[known].astype(int))),
                    shape=(len(X), self.levels_[j]),
                )
            )
        return scipy.sparse.hstack(blocks, format="csr", dtype=np.float64)

    def _owner(self) -> np.ndarray:
        """The input column of each expanded feature."""
        owner = list(self.numeric_) + list(self.missing_)
        for j in self.categorical:
            owner.extend([j] * self.levels_[j])
        return np.asarray(owner, dtype=int)


def cross_validate_linear(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    categorical: Sequence[int] = (),
    Cs: Sequence[float] = LINEAR_C,
) -> dict[str, Any]:
    """Fold AUCs of :class:`LinearHead` at the ``C`` with the lowest mean validation log-loss.

    Returns
    -------
    dict
        ``C`` (chosen), ``fold_auc`` (one AUC per fold at that C), ``logloss`` (its mean
        validation log-loss) and ``by_C`` (the mean log-loss of every C tried).
    """
    from sklearn.metrics import log_loss, roc_auc_score

    best: dict[str, Any] | None = None
    by_c: dict[str, float] = {}
    for C in Cs:
        aucs, losses = [], []
        for train, valid in folds:
            head = LinearHead(categorical, C).fit(X[train], y[train])
            p = head.predict_proba(X[valid])[:, 1]
            aucs.append(float(roc_auc_score(y[valid], p)))
            losses.append(float(log_loss(y[valid], p, labels=[0, 1])))
        loss = float(np.mean(losses))
        by_c[str(C)] = loss
        if best is None or loss < best["logloss"]:
            best = {"C": float(C), "fold_auc": aucs, "logloss": loss}
    assert best is not None
    return {**best, "by_C": by_c}


__all__ = ["LINEAR_C", "LinearHead", "cross_validate_linear"]
