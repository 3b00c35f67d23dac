"""Explanations of recommendations: leave-one-out over the history through the real user tower.

For a :class:`~dayzero.recommend.servable.VectorServable` model the score of item ``i`` is
``u(history) . v_i + offset``; the contribution of history item ``h`` is the drop in that score
when ``h`` is left out and the user vector is rebuilt by the model itself, so the attribution is
exact for the model's own pooling (attention, mean, or anything else), not an approximation.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from dayzero.recommend.servable import VectorServable


def explain_history(
    model: VectorServable,
    items: Sequence[Hashable],
    history: Sequence[Hashable],
    values: Sequence[float] | None = None,
    user: Hashable | None = None,
    profile: str | None = None,
    top_history: int = 3,
) -> list[list[tuple[Hashable, float]]]:
    """History items that contributed most to each recommended item's score.

    Parameters
    ----------
    model
        A fitted model with serving vectors.
    items
        The recommended item ids to explain.
    history
        The user's history item ids revealed for this call.
    values
        Interaction values aligned with ``history`` (default: all 1).
    user, profile
        Passed to :meth:`~VectorServable.user_serving_vector` unchanged.
    top_history
        How many history items to return per recommended item.

    Returns
    -------
    list of list of (history item, score drop when left out), largest drop first
    """
    if not isinstance(model, VectorServable):
        raise TypeError(f"{type(model).__name__} has no serving vectors: explain a VectorServable")
    history = list(history)
    vals = np.ones(len(history)) if values is None else np.asarray(values, dtype=float)
    if len(vals) != len(history):
        raise ValueError(f"values has {len(vals)} entries but history has {len(history)}")
    iv = model.item_serving_vectors(list(items))
    full = iv @ model.user_serving_vector(user, history, vals, text=profile)
    drops = np.empty((len(history), len(iv)))
    for j in range(len(history)):
        keep = [k for k in range(len(history)) if k != j]
        u = model.user_serving_vector(user, [history[k] for k in keep], vals[keep], text=profile)
        drops[j] = full - iv @ u
    out = []
    for c in range(len(iv)):
        order = np.argsort(-drops[:, c], kind="stable")[:top_history]
        out.append([(history[j], float(drops[j, c])) for j in order])
    return out
