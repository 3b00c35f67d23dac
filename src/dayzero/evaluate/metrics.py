"""Evaluation metrics: rating error, ranking quality, top-K lists and confidence intervals.

Every function takes plain arrays (or lists) for ONE user or one population and returns a float.
Aggregation over users is the caller's job (a plain mean over users, as MeLU and MetaHIN report);
:func:`mean_ci` and :func:`bootstrap_ci` attach a confidence interval to such a mean.

Inputs are validated: empty input, mismatched lengths and NaN raise ``ValueError`` naming the
argument, so a metric never returns a silently wrong value.

Classification and risk metrics (AUC, Gini, KS, log loss, calibration, PSI, ...) live in
:mod:`dayzero.risk.metrics`, confidence intervals in :mod:`dayzero.evaluate.intervals`;
both are re-exported here, so ``from dayzero.evaluate import metrics; metrics.roc_auc(...)`` works
for all of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Literal

import numpy as np

from dayzero.core.checks import as_vector, check_k, id_list, same_length
from dayzero.evaluate.intervals import bootstrap_ci, mean_ci
from dayzero.risk.metrics import (
    KSResult,
    accuracy,
    brier_score,
    expected_calibration_error,
    gini,
    ks_statistic,
    log_loss,
    macro_f1,
    psi,
    roc_auc,
)

__all__ = [
    "KSResult",
    "accuracy",
    "average_precision_at_k",
    "bootstrap_ci",
    "brier_score",
    "coverage",
    "expected_calibration_error",
    "gini",
    "hit_rate_at_k",
    "ks_statistic",
    "log_loss",
    "macro_f1",
    "mae",
    "mean_average_precision",
    "mean_ci",
    "metahin_ndcg_at_k",
    "mrr",
    "ndcg_at_k",
    "ndcg_at_k_list",
    "precision_at_k",
    "psi",
    "recall_at_k",
    "rmse",
    "roc_auc",
]

Gain = Literal["linear", "exp"]


# --- rating -------------------------------------------------------------------------------------


def _pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    t, p = as_vector("y_true", y_true), as_vector("y_pred", y_pred)
    same_length(y_true=t, y_pred=p)
    return t, p


def mae(y_true: object, y_pred: object) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)``.

    Examples
    --------
    >>> mae([1, 2, 3], [2, 2, 5])
    1.0
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: object, y_pred: object) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred)^2))``.

    MeLU and MetaHIN compute it per user (task) and then average over users; do the same by calling
    this once per user.

    Examples
    --------
    >>> rmse([0, 0], [3, 4])  # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


# --- ranking of one user's scored items -----------------------------------------------------------


def _discounts(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks ``1..n``."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _gains(relevance: np.ndarray, gain: Gain) -> np.ndarray:
    if gain == "linear":
        return relevance
    if gain == "exp":
        return np.power(2.0, relevance) - 1.0
    raise ValueError(f"gain must be 'linear' or 'exp', got {gain!r}")


def _dcg(gains: np.ndarray) -> float:
    return float(np.sum(gains * _discounts(len(gains))))


def ndcg_at_k(y_true_relevance: object, y_score: object, k: int, gain: Gain = "linear") -> float:
    """Normalised discounted cumulative gain of one user's items ranked by score.

    The items are ranked by ``y_score`` descending with a **stable** sort: tied scores keep the
    order in which the items were given (so a constant prediction ranks the items in input order,
    never in a hidden favourable order). The top ``k`` ranks contribute
    ``gain(relevance) / log2(rank + 1)``; the ideal DCG uses the true relevances sorted descending.

    Parameters
    ----------
    y_true_relevance
        Graded relevance of each item (for example the true ratings 1-5), shape ``(n,)``, >= 0.
    y_score
        Predicted score of each item, shape ``(n,)``, aligned with ``y_true_relevance``.
    k
        Cutoff; ``k > n`` uses all ``n`` items.
    gain
        ``"linear"`` (default): gain = relevance, as MeLU/MetaHIN-style rating benchmarks use.
        ``"exp"``: gain = ``2**relevance - 1`` (Burges et al.), which weighs top grades more.

    Returns
    -------
    float
        In ``[0, 1]``; ``0.0`` when the ideal DCG is 0 (no relevant item at all).

    Examples
    --------
    >>> round(ndcg_at_k([3, 2, 1], [0.1, 0.2, 0.3], k=3), 4)  # worst order
    0.79
    """
    rel, score = as_vector("y_true_relevance", y_true_relevance), as_vector("y_score", y_score)
    same_length(y_true_relevance=rel, y_score=score)
    k = check_k(k)
    if (rel < 0).any():
        raise ValueError("y_true_relevance must be >= 0 (graded relevance); shift the scale")
    order = np.argsort(-score, kind="stable")[:k]
    ideal = _dcg(_gains(np.sort(rel)[::-1][:k], gain))
    if ideal == 0.0:
        return 0.0
    return _dcg(_gains(rel[order], gain)) / ideal


def metahin_ndcg_at_k(
    y_true: object, y_pred: object, k: int, ties: Literal["first", "numpy"] = "first"
) -> float:
    """MetaHIN's "nDCG@k" (its ``Evaluation.ranking``), for comparison with its paper only.

    Take the ``k`` items with the highest TRUE rating and keep them in input (query-list) order;
    return the DCG of their **predicted** ratings divided by the DCG of their true ratings sorted
    descending.

    This is not a ranking metric: it never ranks by prediction, only rewards high predicted values
    on the truly best items, and exceeds 1 when predictions are higher than the true ratings. A
    constant prediction ``c`` scores ``c * sum(discounts) / IDCG``, about 0.8 on MovieLens ratings.
    Report :func:`ndcg_at_k` as the ranking metric.

    Parameters
    ----------
    y_true
        True ratings of the user's query items, shape ``(n,)``.
    y_pred
        Predicted ratings, aligned with ``y_true``.
    k
        Number of top-rated items kept (MetaHIN uses 5).
    ties
        Which of several items with the same true rating at the cut-off are kept. ``"first"``
        (default, deterministic): a stable sort by true rating descending keeps the earlier items
        of the query list. ``"numpy"``: MetaHIN's own selection ``np.argsort(y_true)[::-1][:k]``;
        numpy's default sort is not stable, and on AVX-512 CPUs recent numpy versions pick among
        ties in a way that depends on the CPU and the numpy version. Only ``"numpy"`` reproduced
        the MetaHIN-nDCG values of ANCHORS.md (measured with MetaHIN's code on this kind of
        machine), e.g. the item-mean baseline on warm_up: 0.8580 vs 0.8538 with ``"first"``.
        Ties change nothing for a constant prediction.

    Returns
    -------
    float
        ``0.0`` when the DCG of the true ratings is 0.

    Examples
    --------
    >>> metahin_ndcg_at_k([5, 1, 4], [10, 0, 8], k=2)  # predictions twice the truth
    2.0
    """
    t, p = _pair(y_true, y_pred)
    k = check_k(k)
    if ties == "first":
        ranked = np.argsort(-t, kind="stable")
    elif ties == "numpy":
        ranked = np.argsort(t)[::-1]
    else:
        raise ValueError(f"ties must be 'first' or 'numpy', got {ties!r}")
    top = np.sort(ranked[:k])
    ideal = _dcg(np.sort(t[top])[::-1])
    if ideal <= 0.0:
        return 0.0
    return _dcg(p[top]) / ideal


# --- top-K lists of recommended ids ---------------------------------------------------------------


def _topk(recommended_ids: Iterable[Hashable], k: int | None) -> list[Hashable]:
    ids = id_list("recommended_ids", recommended_ids)
    return ids if k is None else ids[: check_k(k)]


def _relevant_set(relevant_ids: Iterable[Hashable]) -> set:
    relevant = set(relevant_ids)
    if not relevant:
        raise ValueError(
            "relevant_ids is empty: the metric is undefined for a user with no relevant item; "
            "leave such users out and report how many"
        )
    return relevant


def recall_at_k(
    recommended_ids: Iterable[Hashable], relevant_ids: Iterable[Hashable], k: int
) -> float:
    """Share of the relevant items found in the top ``k``: ``|top_k & relevant| / |relevant|``.

    The denominator is all relevant items (not ``min(k, |relevant|)``), so recall@k < 1 whenever a
    user has more than ``k`` relevant items. ``recommended_ids`` must not repeat an id; a list
    shorter than ``k`` is used as it is. An empty ``relevant_ids`` raises ``ValueError``.

    Examples
    --------
    >>> recall_at_k(["a", "b", "c"], {"c", "d"}, k=3)
    0.5
    """
    top, relevant = _topk(recommended_ids, k), _relevant_set(relevant_ids)
    return sum(i in relevant for i in top) / len(relevant)


def precision_at_k(
    recommended_ids: Iterable[Hashable], relevant_ids: Iterable[Hashable], k: int
) -> float:
    """Share of the top ``k`` slots holding a relevant item: ``|top_k & relevant| / k``.

    The denominator is ``k`` even when fewer than ``k`` items were recommended (an empty slot
    counts as a miss).

    Examples
    --------
    >>> precision_at_k(["a", "b", "c", "d"], {"a", "d"}, k=2)
    0.5
    """
    top, relevant = _topk(recommended_ids, k), _relevant_set(relevant_ids)
    return sum(i in relevant for i in top) / k


def hit_rate_at_k(
    recommended_ids: Iterable[Hashable], relevant_ids: Iterable[Hashable], k: int
) -> float:
    """``1.0`` if any relevant item is in the top ``k``, else ``0.0``.

    Examples
    --------
    >>> hit_rate_at_k(["a", "b"], {"b"}, k=1), hit_rate_at_k(["a", "b"], {"b"}, k=2)
    (0.0, 1.0)
    """
    top, relevant = _topk(recommended_ids, k), _relevant_set(relevant_ids)
    return float(any(i in relevant for i in top))


def mrr(
    recommended_ids: Iterable[Hashable], relevant_ids: Iterable[Hashable], k: int | None = None
) -> float:
    """Reciprocal rank of the first relevant item (within the top ``k`` if given), else ``0.0``.

    Averaged over users this is the mean reciprocal rank.

    Examples
    --------
    >>> mrr(["a", "b", "c"], {"c"})
    0.3333333333333333
    >>> mrr(["a", "b", "c"], {"c"}, k=2)
    0.0
    """
    top, relevant = _topk(recommended_ids, k), _relevant_set(relevant_ids)
    for rank, item in enumerate(top, start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def average_precision_at_k(
    recommended_ids: Iterable[Hashable], relevant_ids: Iterable[Hashable], k: int
) -> float:
    """Average precision at ``k``: ``sum_{hit ranks r <= k} precision@r / min(k, |relevant|)``.

    Normalising by ``min(k, |relevant|)`` makes a perfect top-``k`` list score 1 even when the user
    has more than ``k`` relevant items. The mean over users is MAP@k
    (:func:`mean_average_precision`).

    Examples
    --------
    >>> average_precision_at_k(["a", "x", "b"], {"a", "b"}, k=3)  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    top, relevant = _topk(recommended_ids, k), _relevant_set(relevant_ids)
    hits, total = 0, 0.0
    for rank, item in enumerate(top, start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def mean_average_precision(
    recommended_lists: Iterable[Iterable[Hashable]],
    relevant_lists: Iterable[Iterable[Hashable]],
    k: int,
) -> float:
    """MAP@k: the plain mean of :func:`average_precision_at_k` over users (aligned lists).

    Examples
    --------
    >>> mean_average_precision([["a"], ["x", "b"]], [{"a"}, {"b"}], k=2)  # (1 + 1/2) / 2
    0.75
    """
    recs, rels = list(recommended_lists), list(relevant_lists)
    if not recs:
        raise ValueError("recommended_lists is empty; MAP needs at least one user")
    if len(recs) != len(rels):
        raise ValueError(
            f"recommended_lists has {len(recs)} users but relevant_lists has {len(rels)}"
        )
    return float(
        np.mean([average_precision_at_k(r, rel, k) for r, rel in zip(recs, rels, strict=True)])
    )


def ndcg_at_k_list(
    recommended_ids: Iterable[Hashable],
    relevant: Iterable[Hashable] | Mapping[Hashable, float],
    k: int,
) -> float:
    """nDCG@k of a recommended list.

    Parameters
    ----------
    recommended_ids
        Ranked recommendations, best first, no repeats.
    relevant
        A set (or any iterable) of relevant ids, each with gain 1 (binary relevance), or a mapping
        ``id -> gain`` (graded relevance, gains >= 0) used as given (linear gain).
    k
        Cutoff.

    Returns
    -------
    float
        ``DCG / IDCG`` where DCG sums ``gain(id) / log2(rank + 1)`` over the top ``k`` and IDCG is
        the DCG of the ``k`` largest gains. ``0.0`` if every gain is 0; an empty ``relevant``
        raises ``ValueError``.

    Examples
    --------
    >>> round(ndcg_at_k_list(["x", "a"], {"a"}, k=2), 4)  # (1/log2 3) / 1
    0.6309
    """
    top = _topk(recommended_ids, k)
    if isinstance(relevant, Mapping):
        gains = {key: float(v) for key, v in relevant.items()}
        if not gains:
            _relevant_set(())
        if any(np.isnan(v) or v < 0 for v in gains.values()):
            raise ValueError("relevant gains must be finite numbers >= 0")
    else:
        gains = dict.fromkeys(_relevant_set(relevant), 1.0)
    dcg = _dcg(np.array([gains.get(i, 0.0) for i in top]))
    ideal = _dcg(np.sort(np.fromiter(gains.values(), dtype=np.float64))[::-1][:k])
    return 0.0 if ideal == 0.0 else dcg / ideal


def coverage(recommended_lists: Iterable[Iterable[Hashable]], n_items: int) -> float:
    """Catalogue coverage: distinct items recommended to anyone / ``n_items``.

    Examples
    --------
    >>> coverage([["a", "b"], ["b", "c"]], n_items=6)
    0.5
    """
    n_items = check_k(n_items, "n_items")
    distinct: set = set()
    for position, ids in enumerate(recommended_lists):
        distinct.update(id_list(f"recommended_lists[{position}]", ids))
    if len(distinct) > n_items:
        raise ValueError(
            f"{len(distinct)} distinct items were recommended but n_items is {n_items}; "
            "pass the size of the whole catalogue"
        )
    return len(distinct) / n_items
