"""The gradient-boosting head of :class:`~dayzero.risk.scorer.RiskScorer`: LightGBM.

:func:`gbm_classifier` builds the ``lightgbm.LGBMClassifier`` that ``RiskScorer(head="gbm")``
fits, from the scorer's parameter names. :class:`GBMHead` is what the scorer keeps once it is
fitted: the trained ``lightgbm.Booster`` with a ``predict_proba``. It is saved in LightGBM's own
text format (``Booster.model_to_string``), a string the scorer stores in its JSON, and read back
with ``lightgbm.Booster(model_str=...)``: no pickle, no library internals, and the same
probabilities bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT = "lightgbm-text"


def gbm_classifier(
    learning_rate: float = 0.1,
    max_iter: int = 100,
    max_depth: int | None = 3,
    min_samples_leaf: int = 5,
    monotonic_cst: Sequence[int] | None = None,
    random_state: int | None = None,
) -> Any:
    """The unfitted ``lightgbm.LGBMClassifier`` of the gbm head.

    Parameters
    ----------
    learning_rate : float, default 0.1
        Shrinkage of every tree (LightGBM ``learning_rate``).
    max_iter : int, default 100
        Boosting rounds, one tree each (``n_estimators``).
    max_depth : int or None, default 3
        Depth limit of a tree; None for none (``max_depth=-1``). At most 31 leaves either way.
    min_samples_leaf : int, default 5
        Fewest rows in a leaf (``min_child_samples``).
    monotonic_cst : sequence of {-1, 0, 1}, optional
        Per feature: the probability of the positive class may only fall (-1) or rise (+1) with
        it, or is free (0) (``monotone_constraints``).
    random_state : int, optional
        Seed.

    Returns
    -------
    lightgbm.LGBMClassifier
        Deterministic (``deterministic=True`` with column-wise histograms, so the result does
        not depend on the thread count) and silent (``verbose=-1``).
    """
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        learning_rate=learning_rate,
        n_estimators=max_iter,
        max_depth=-1 if max_depth is None else max_depth,
        num_leaves=31,
        min_child_samples=min_samples_leaf,
        monotone_constraints=None if monotonic_cst is None else [int(c) for c in monotonic_cst],
        random_state=random_state,
        deterministic=True,
        force_col_wise=True,
        verbose=-1,
    )


class GBMHead:
    """A trained LightGBM booster for a binary target, with ``predict_proba``.

    Parameters
    ----------
    booster : lightgbm.Booster
        Trained with the ``binary`` objective (``LGBMClassifier(...).fit(X, y).booster_``).

    Attributes
    ----------
    booster_ : lightgbm.Booster
    n_features_in_ : int
    n_iter_ : int
        Boosting rounds.
    """

    def __init__(self, booster: Any) -> None:
        self.booster_ = booster

    @classmethod
    def fit(cls, X: Any, y: Any, **params: Any) -> GBMHead:
        """Fit :func:`gbm_classifier` ``(**params)`` on ``X, y`` (labels 0/1); its booster."""
        return cls(gbm_classifier(**params).fit(X, y).booster_)

    @property
    def n_features_in_(self) -> int:
        return int(self.booster_.num_feature())

    @property
    def n_iter_(self) -> int:
        return int(self.booster_.current_iteration())

    def predict_proba(self, X: Any, n_jobs: int | None = None) -> np.ndarray:
        """Probabilities of labels 0 and 1, shape ``(n, 2)``.

        ``n_jobs``: LightGBM threads (None: 1, -1: every core). A booster predicts with every
        core unless told; on 2 shared cores one row then took 0.4-6 ms instead of 0.02-0.07.
        """
        p = self.booster_.predict(X, num_threads=_threads(n_jobs))
        p = np.asarray(p, dtype=np.float64)
        return np.column_stack([1.0 - p, p])

    def to_json(self) -> dict[str, Any]:
        """``{"format", "lightgbm_version", "model"}``: the booster as LightGBM's model text."""
        import lightgbm

        return {
            "format": FORMAT,
            "lightgbm_version": lightgbm.__version__,
            "model": self.booster_.model_to_string(),
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> GBMHead:
        """Read what :meth:`to_json` wrote.

        Raises
        ------
        ValueError
            ``state`` is not a LightGBM head, e.g. the scikit-learn ``HistGradientBoosting``
            trees of earlier dayzero versions, which are no longer read.
        """
        import lightgbm

        if not isinstance(state, dict) or state.get("format") != FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            older = isinstance(state, dict) and "node_layout" in state
            raise ValueError(
                (
                    "this gbm head holds scikit-learn HistGradientBoosting trees (an earlier "
                    "dayzero); the gbm head is LightGBM now and cannot read them: refit "
                    "RiskScorer(head='gbm') on the training data and save it again"
                )
                if older
                else (
                    f"not a saved dayzero gbm head (format {found!r}, expected {FORMAT!r}); "
                    "pass the head_state that GBMHead.to_json / RiskScorer.save wrote"
                )
            )
        return cls(lightgbm.Booster(model_str=state["model"]))


def _threads(n_jobs: int | None) -> int:
    """LightGBM's ``num_threads`` for scikit-learn's ``n_jobs`` (None: 1; -1: 0, every core)."""
    return 1 if n_jobs is None else (0 if int(n_jobs) == -1 else int(n_jobs))


def booster_params(
    learning_rate: float = 0.1,
    max_depth: int | None = 3,
    min_samples_leaf: int = 5,
    monotonic_cst: Sequence[int] | None = None,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """LightGBM's native parameters for a binary booster: what :func:`gbm_classifier` sets.

    ``n_jobs``: LightGBM threads; None means 1, -1 every core. One thread by default because
    LightGBM's OpenMP threads spin-wait: on 2 cores shared with other work, 2 threads took
    75 s where 1 took 4-6 s for the same 5-fold cross-validation (Taiwan, 30,000 rows).

    For :func:`cross_validate` and :func:`fit_booster`, which train with ``lightgbm.train`` /
    ``lightgbm.cv`` (per-fold AUC, categorical features, number of rounds chosen on folds).
    """
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": float(learning_rate),
        "max_depth": -1 if max_depth is None else int(max_depth),
        "num_leaves": 31,
        "min_child_samples": int(min_samples_leaf),
        "seed": 0 if random_state is None else int(random_state),
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
        "num_threads": _threads(n_jobs),
    }
    if monotonic_cst is not None and any(int(c) for c in monotonic_cst):
        params["monotone_constraints"] = [int(c) for c in monotonic_cst]
    return params


def _dataset(X: np.ndarray, y: np.ndarray, categorical: Sequence[int]) -> Any:
    import lightgbm

    return lightgbm.Dataset(
        np.asarray(X, dtype=np.float64),
        label=np.asarray(y, dtype=np.float64),
        categorical_feature=[int(i) for i in categorical] or "auto",
        feature_name=[f"f{i}" for i in range(np.shape(X)[1])],
        free_raw_data=False,
        params={"verbose": -1},
    )


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    params: dict[str, Any],
    categorical: Sequence[int] = (),
    rounds: int | None = None,
    max_rounds: int = 1000,
    patience: int = 50,
) -> dict[str, Any]:
    """AUC of a booster on each validation fold, at the number of rounds chosen on the folds.

    Parameters
    ----------
    X, y
        Feature matrix (NaN = missing) and 0/1 labels (1 = default).
    folds
        ``(train rows, validation rows)`` pairs, e.g. from ``StratifiedKFold.split``.
    params
        :func:`booster_params`.
    categorical
        Indices of the categorical features (integer codes; NaN = missing).
    rounds
        A fixed number of rounds; None: the round with the best mean validation log-loss, up
        to ``max_rounds``, stopping when ``patience`` rounds bring no gain.

    Returns
    -------
    dict
        ``rounds`` (chosen or fixed), ``fold_auc`` (one AUC per fold at that round) and
        ``logloss`` (mean validation log-loss at that round).

    Notes
    -----
    The rounds are chosen on log-loss, not AUC: the model's output is a probability of default,
    and AUC only ranks. A field that splits the rows cleanly reaches its best AUC after one
    round, so AUC-based stopping would stop there with probabilities still near the base rate.
    """
    import lightgbm
    from sklearn.metrics import roc_auc_score

    data = _dataset(X, y, categorical)
    callbacks = (
        []
        if rounds is not None
        else [lightgbm.early_stopping(patience, first_metric_only=True, verbose=False)]
    )
    result = lightgbm.cv(
        {**params, "metric": ["binary_logloss"]},
        data,
        num_boost_round=int(rounds if rounds is not None else max_rounds),
        folds=list(folds),
        callbacks=callbacks,
        return_cvbooster=True,
    )
    chosen = len(result["valid binary_logloss-mean"])
    boosters = result["cvbooster"].boosters
    fold_auc = [
        float(
            roc_auc_score(
                y[valid],
                booster.predict(
                    X[valid], num_iteration=chosen, num_threads=params.get("num_threads", 0)
                ),
            )
        )
        for booster, (_, valid) in zip(boosters, folds, strict=True)
    ]
    logloss = float(result["valid binary_logloss-mean"][-1])
    return {"rounds": int(chosen), "fold_auc": fold_auc, "logloss": logloss}


def fit_booster(
    X: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    rounds: int,
    categorical: Sequence[int] = (),
) -> GBMHead:
    """Train ``rounds`` rounds of a binary booster on all rows: a :class:`GBMHead`."""
    import lightgbm

    booster = lightgbm.train(params, _dataset(X, y, categorical), num_boost_round=int(rounds))
    return GBMHead(booster)


def contributions(head: GBMHead, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """TreeSHAP values of ``X`` in log-odds of label 1: shape ``(n, n_features + 1)``.

    LightGBM's ``pred_contrib``: the last column is the expected value (the training rows'
    mean log-odds under the trees), and each row's columns add up to its log-odds exactly.
    """
    values = head.booster_.predict(X, pred_contrib=True, num_threads=_threads(n_jobs))
    return np.asarray(values, dtype=np.float64)
