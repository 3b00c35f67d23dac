"""Classification and credit-risk metrics: AUC, Gini, KS, log loss, calibration and PSI.

Binary labels are 0/1 with 1 the positive class; in credit risk 1 is a *bad* (default) and scores
or probabilities grow with risk. Inputs are validated and errors name the argument.

AUC, log loss, Brier score, accuracy and F1 are computed by :mod:`sklearn.metrics`; this module
adds the input checks (:mod:`dayzero.core.checks`) and the conventions stated per function. KS,
PSI and the expected calibration error are ours.
"""

from __future__ import annotations

import warnings
from typing import Literal, NamedTuple

import numpy as np
from sklearn import metrics as skm

from dayzero.core.checks import as_vector, binary_labels, probabilities, same_length


class KSResult(NamedTuple):
    """Kolmogorov-Smirnov separation: the largest CDF gap and the score where it occurs."""

    statistic: float
    threshold: float


def _binary_pair(y_true: object, score: object, score_name: str) -> tuple[np.ndarray, np.ndarray]:
    y = binary_labels("y_true", y_true)
    s = as_vector(score_name, score)
    same_length(y_true=y, **{score_name: s})
    return y, s


def _both_classes(y: np.ndarray, metric: str) -> None:
    if y.min() == y.max():
        raise ValueError(
            f"{metric} needs both classes in y_true, but every label is {int(y[0])}; "
            "use a larger or stratified sample"
        )


def roc_auc(y_true: object, score: object) -> float:
    """Area under the ROC curve for binary labels (``sklearn.metrics.roc_auc_score``).

    Equals the probability that a random positive scores higher than a random negative, ties
    counting one half (the Mann-Whitney U statistic with mid-ranks).

    Raises
    ------
    ValueError
        If ``y_true`` holds one class only (AUC is undefined), or on bad input.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _binary_pair(y_true, score, "score")
    _both_classes(y, "roc_auc")
    return float(skm.roc_auc_score(y, s))


def gini(y_true: object, score: object) -> float:
    """Gini coefficient (accuracy ratio) ``2 * AUC - 1``, as credit scorecards report it.

    Examples
    --------
    >>> gini([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    return 2.0 * roc_auc(y_true, score) - 1.0


def ks_statistic(y_true: object, score: object) -> KSResult:
    """Kolmogorov-Smirnov statistic between the score distributions of bads (1) and goods (0).

    ``KS = max_t |F_bad(t) - F_good(t)|`` with ``F(t)`` the share of the class scoring ``<= t``,
    over the observed score values ``t``. The same value as ``scipy.stats.ks_2samp``.

    Returns
    -------
    KSResult
        ``statistic`` in ``[0, 1]`` and ``threshold``: the smallest score value ``t`` at which the
        gap is largest (cutting at "score <= t" vs "> t" separates the classes best).

    Examples
    --------
    >>> ks_statistic([0, 0, 1, 1], [1, 2, 3, 4])
    KSResult(statistic=1.0, threshold=2.0)
    """
    y, s = _binary_pair(y_true, score, "score")
    _both_classes(y, "ks_statistic")
    thresholds = np.unique(s)
    bad, good = np.sort(s[y == 1]), np.sort(s[y == 0])
    cdf_bad = np.searchsorted(bad, thresholds, side="right") / len(bad)
    cdf_good = np.searchsorted(good, thresholds, side="right") / len(good)
    gap = np.abs(cdf_bad - cdf_good)
    best = int(np.argmax(gap))
    return KSResult(float(gap[best]), float(thresholds[best]))


def log_loss(y_true: object, proba: object, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood (cross-entropy, natural log; ``sklearn.metrics.log_loss``).

    Parameters
    ----------
    y_true
        Binary labels 0/1 when ``proba`` is 1-D; integer class indices ``0..C-1`` when ``proba``
        is a 2-D ``(n, C)`` matrix of class probabilities (rows summing to 1).
    proba
        ``P(y = 1)`` per row (1-D) or class probabilities (2-D).
    eps
        Probabilities are clipped to ``[eps, 1 - eps]`` so that a confident mistake costs
        ``-log(eps)`` instead of infinity (scikit-learn clips once more, to float64's machine
        epsilon, so an ``eps`` below 2.2e-16 acts as 2.2e-16).

    Examples
    --------
    >>> round(log_loss([1, 0], [0.8, 0.4]), 6)  # -(log 0.8 + log 0.6) / 2
    0.366985
    """
    matrix = np.asarray(proba, dtype=np.float64) if np.ndim(proba) == 2 else None
    if matrix is None:
        y = binary_labels("y_true", y_true)
        p = probabilities("proba", proba)
        same_length(y_true=y, proba=p)
        return float(skm.log_loss(y, np.clip(p, eps, 1.0 - eps), labels=[0.0, 1.0]))
    if matrix.size == 0:
        raise ValueError("proba is empty; a metric needs at least one value")
    probabilities("proba", matrix.ravel())
    if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("each row of a 2-D proba must sum to 1 (class probabilities)")
    y = as_vector("y_true", y_true)
    same_length(y_true=y, proba=matrix)
    if (y != np.round(y)).any() or y.min() < 0 or y.max() >= matrix.shape[1]:
        raise ValueError(
            f"with a 2-D proba, y_true must hold class indices 0..{matrix.shape[1] - 1}"
        )
    with warnings.catch_warnings():
        # Rows were checked to sum to 1 within 1e-6 above; scikit-learn warns from 1.5e-8 on.
        warnings.filterwarnings("ignore", "The y_(prob|pred) values do not sum", UserWarning)
        return float(
            skm.log_loss(
                y.astype(np.int64),
                np.clip(matrix, eps, 1.0),
                labels=np.arange(matrix.shape[1]),
            )
        )


def accuracy(y_true: object, y_pred: object) -> float:
    """Share of predictions equal to the true label (``sklearn.metrics.accuracy_score``).

    Labels are class labels of one kind: integers, booleans or strings (not continuous values).

    Examples
    --------
    >>> accuracy(["pos", "neg", "neu"], ["pos", "neu", "neu"])
    0.6666666666666666
    """
    t = as_vector("y_true", y_true, numeric=False)
    p = as_vector("y_pred", y_pred, numeric=False)
    same_length(y_true=t, y_pred=p)
    return _label_metric(skm.accuracy_score, t, p)


def macro_f1(y_true: object, y_pred: object, labels: object = None) -> float:
    """Unweighted mean of the per-class F1 scores (``sklearn.metrics.f1_score``, macro).

    Parameters
    ----------
    labels
        Classes to average over; by default every label seen in ``y_true`` or ``y_pred``. A class
        with no true and no predicted row has F1 0 when named in ``labels``; a class with
        precision and recall both 0 has F1 0.

    Examples
    --------
    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)  # F1: 2/3 and 4/5
    0.7333
    """
    t = as_vector("y_true", y_true, numeric=False)
    p = as_vector("y_pred", y_pred, numeric=False)
    same_length(y_true=t, y_pred=p)
    classes = list(dict.fromkeys([*t.tolist(), *p.tolist()])) if labels is None else list(labels)
    if not classes:
        raise ValueError("labels is empty; name at least one class")
    return _label_metric(skm.f1_score, t, p, labels=classes, average="macro", zero_division=0.0)


def _label_metric(metric, t: np.ndarray, p: np.ndarray, **kwargs) -> float:
    """A scikit-learn label metric, its complaints about the labels raised naming the fix."""
    try:
        return float(metric(t, p, **kwargs))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"y_true and y_pred must hold class labels of one kind (all integers, booleans or "
            f"strings), not continuous values or a mix of types; map them to one kind first "
            f"(scikit-learn: {error})"
        ) from error


def brier_score(y_true: object, proba: object) -> float:
    """Mean squared difference between ``P(y = 1)`` and the 0/1 label
    (``sklearn.metrics.brier_score_loss``).

    Examples
    --------
    >>> round(brier_score([1, 0], [0.8, 0.4]), 6)  # (0.04 + 0.16) / 2
    0.1
    """
    y = binary_labels("y_true", y_true)
    p = probabilities("proba", proba)
    same_length(y_true=y, proba=p)
    return float(skm.brier_score_loss(y, p, pos_label=1.0))


def _bin_index(values: np.ndarray, inner_edges: np.ndarray, closed: Literal["left", "right"]):
    side = "right" if closed == "left" else "left"
    return np.searchsorted(inner_edges, values, side=side)


def expected_calibration_error(
    y_true: object,
    proba: object,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> float:
    """Expected calibration error ``sum_b |B_b|/n * |mean(y in b) - mean(proba in b)|``.

    Parameters
    ----------
    strategy
        ``"uniform"``: bins ``[0, 1/n_bins), ..., [1 - 1/n_bins, 1]``. ``"quantile"``: edges at
        the quantiles of ``proba`` (bins of about equal count; tied edges merge, so there may be
        fewer bins). Empty bins contribute nothing.

    Examples
    --------
    >>> round(expected_calibration_error([0, 1, 1, 1], [0.2, 0.4, 0.8, 0.8], n_bins=2), 6)
    0.2
    """
    y = binary_labels("y_true", y_true)
    p = probabilities("proba", proba)
    same_length(y_true=y, proba=p)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    bins = _bin_index(p, np.unique(edges[1:-1]), closed="left")
    total = 0.0
    for b in np.unique(bins):
        member = bins == b
        total += member.mean() * abs(y[member].mean() - p[member].mean())
    return float(total)


def psi(
    expected: object,
    actual: object,
    bins: int = 10,
    method: Literal["quantile", "uniform", "categorical"] = "quantile",
    eps: float = 1e-4,
) -> float:
    """Population stability index ``sum_b (a_b - e_b) * ln(a_b / e_b)`` of a score or feature.

    ``e_b`` and ``a_b`` are the shares of the expected (reference, e.g. development sample) and
    actual (e.g. recent applicants) populations in bin ``b``. Common reading: < 0.1 stable,
    0.1-0.25 some shift, > 0.25 major shift.

    Parameters
    ----------
    expected, actual
        The two populations (1-D; numeric unless ``method="categorical"``).
    bins
        Number of bins for a continuous variable.
    method
        ``"quantile"``: bin edges at the quantiles of ``expected`` (tied edges merge);
        ``"uniform"``: equal-width bins between ``expected``'s min and max. In both, bins are
        right-closed ``(lo, hi]`` and the outer bins extend to infinity, so actual values outside
        the expected range fall in the end bins. ``"categorical"``: one bin per distinct value of
        either population.
    eps
        A bin empty in one population gets share ``eps`` instead of 0 (``ln 0`` is undefined); the
        other shares are not renormalised, so an empty bin adds about ``share * ln(share / eps)``.

    Examples
    --------
    >>> round(psi(["a", "a", "b", "b"], ["a", "b", "b", "b"], method="categorical"), 6)
    0.274653
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    if method == "categorical":
        e = as_vector("expected", expected, numeric=False)
        a = as_vector("actual", actual, numeric=False)
        categories = list(dict.fromkeys([*e.tolist(), *a.tolist()]))
        e_share = np.array([np.mean(e == c) for c in categories])
        a_share = np.array([np.mean(a == c) for c in categories])
    elif method in ("quantile", "uniform"):
        e = as_vector("expected", expected)
        a = as_vector("actual", actual)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        if method == "quantile":
            edges = np.quantile(e, np.linspace(0.0, 1.0, bins + 1))
        else:
            edges = np.linspace(e.min(), e.max(), bins + 1)
        inner = np.unique(edges[1:-1])
        n_out = len(inner) + 1
        e_share = np.bincount(_bin_index(e, inner, "right"), minlength=n_out) / len(e)
        a_share = np.bincount(_bin_index(a, inner, "right"), minlength=n_out) / len(a)
    else:
        raise ValueError(f"method must be 'quantile', 'uniform' or 'categorical', got {method!r}")
    e_share = np.where(e_share == 0, eps, e_share)
    a_share = np.where(a_share == 0, eps, a_share)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))
