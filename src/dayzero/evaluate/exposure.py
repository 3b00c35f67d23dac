"""Exposure and popularity audit of top-K recommendation lists (issue 16 item 2, first slice).

Per-user quantities (popularity of recommended items, new-item share, genre miscalibration) carry a
bootstrap interval over users (:func:`dayzero.evaluate.intervals.mean_ci`); catalogue-level ones
(Gini of exposure, coverage) are point values.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from dayzero.evaluate.intervals import mean_ci


def gini(exposure: object) -> float:
    """Gini coefficient of non-negative exposure counts over ``n`` items.

    Parameters
    ----------
    exposure
        One count per catalogue item (items never recommended count 0).

    Returns
    -------
    float
        0 for uniform exposure, ``(n - 1) / n`` when every slot goes to one item.
    """
    x = np.sort(np.asarray(exposure, dtype=float).ravel())
    if x.size == 0:
        raise ValueError("exposure is empty: pass one count per catalogue item")
    if (x < 0).any():
        raise ValueError("exposure has negative counts: pass counts of top-K slots per item")
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.size
    ranks = np.arange(1, n + 1)
    return float((2 * ranks - n - 1) @ x / (n * total))


def exposure_counts(top_k: Sequence[Sequence[object]], catalogue: Sequence[object]) -> np.ndarray:
    """Number of top-K slots each catalogue item received, in catalogue order."""
    index = {item: i for i, item in enumerate(catalogue)}
    counts = np.zeros(len(index))
    for row, items in enumerate(top_k):
        for item in items:
            if item not in index:
                raise ValueError(f"top_k[{row}] has item {item!r} not in the catalogue")
            counts[index[item]] += 1
    return counts


def miscalibration(
    history_genres: Sequence[Sequence[str]],
    recommended_genres: Sequence[Sequence[str]],
    alpha: float = 0.01,
) -> float:
    """Steck (2018) miscalibration ``KL(p || q~)`` of one user's genre distributions.

    ``p`` is the genre distribution of the history, ``q`` that of the recommendations (each item
    spreads weight 1 uniformly over its genres), smoothed as ``q~ = (1 - alpha) q + alpha p``.
    """
    p = _genre_distribution(history_genres)
    q = _genre_distribution(recommended_genres)
    genres = set(p) | set(q)
    kl = 0.0
    for g in genres:
        pg = p.get(g, 0.0)
        if pg > 0:
            kl += pg * np.log(pg / ((1 - alpha) * q.get(g, 0.0) + alpha * pg))
    return float(kl)


def _genre_distribution(items: Sequence[Sequence[str]]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for genres in items:
        for g in genres:
            weights[g] = weights.get(g, 0.0) + 1.0 / len(genres)
    total = sum(weights.values())
    return {g: w / total for g, w in weights.items()} if total else {}


def exposure_audit(
    top_k: Sequence[Sequence[object]],
    histories: Sequence[Sequence[object]],
    catalogue: Sequence[object],
    popularity: Mapping[object, float],
    new_items: Sequence[object] = (),
    genres: Mapping[object, Sequence[str]] | None = None,
    random_state: int = 0,
) -> dict[str, object]:
    """Popularity bias, new-item exposure, Gini, coverage and genre calibration of top-K lists.

    Parameters
    ----------
    top_k
        One recommended list per user.
    histories
        The same users' training interactions (item ids), aligned with ``top_k``.
    catalogue
        Every recommendable item id.
    popularity
        Training interaction count per item (missing items count 0).
    new_items
        Items with no training interactions (cold items) whose exposure is reported.
    genres
        Genres per item; when given, Steck miscalibration per user is reported.
    random_state
        Seed of the bootstrap over users.

    Returns
    -------
    dict
        ``(mean, low, high)`` triples for per-user quantities, floats for catalogue ones.
    """
    if len(top_k) != len(histories):
        raise ValueError(f"top_k has {len(top_k)} lists but histories has {len(histories)}")
    counts = exposure_counts(top_k, catalogue)
    pops = np.array([float(popularity.get(i, 0.0)) for i in catalogue])
    new = set(new_items)
    rec_pop = [np.mean([popularity.get(i, 0.0) for i in r]) for r in top_k if len(r)]
    hist_pop = [np.mean([popularity.get(i, 0.0) for i in h]) for h in histories if len(h)]
    out: dict[str, object] = {
        "n_users": len(top_k),
        "mean_popularity_recommended": mean_ci(rec_pop, random_state=random_state),
        "mean_popularity_history": mean_ci(hist_pop, random_state=random_state),
        "mean_popularity_catalogue": float(pops.mean()),
        "gini_exposure": gini(counts),
        "coverage": float((counts > 0).mean()),
    }
    if new:
        share = [np.mean([i in new for i in r]) for r in top_k if len(r)]
        out["new_item_share"] = mean_ci(share, random_state=random_state)
        out["new_item_catalogue_share"] = float(np.mean([i in new for i in catalogue]))
    if genres is not None:
        mc = [
            miscalibration([genres[i] for i in h], [genres[i] for i in r])
            for h, r in zip(histories, top_k, strict=True)
            if len(h) and len(r)
        ]
        out["miscalibration"] = mean_ci(mc, random_state=random_state)
    return out


def metric_by_group(
    values: Sequence[float], groups: Sequence[Hashable], random_state: int = 0
) -> dict[Hashable, dict[str, object]]:
    """Mean of a per-user ranking metric in each user group, with a bootstrap CI over its users.

    Parameters
    ----------
    values
        One metric value per user (e.g. NDCG@10).
    groups
        The users' group labels (gender, age band), aligned with ``values``.
    random_state
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``{group: {"n": users, "mean_ci": (mean, low, high)}}`` in sorted group order.
    """
    v = np.asarray(values, dtype=float)
    g = np.asarray(groups, dtype=object)
    if v.shape != g.shape:
        raise ValueError(
            f"values has {v.size} entries but groups has {g.size}: align them per user"
        )
    return {
        key: {
            "n": int((g == key).sum()),
            "mean_ci": mean_ci(v[g == key], random_state=random_state),
        }
        for key in sorted(set(g.tolist()), key=str)
    }
