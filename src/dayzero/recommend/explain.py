"""Explanations of recommendations: leave-one-out through the model's own towers.

For a :class:`~dayzero.recommend.servable.VectorServable` model the score of item ``i`` is
``u(history) . v_i + offset``. History side (:func:`explain_history`): the contribution of
history item ``h`` is the drop in that score when ``h`` is left out and the user vector is
rebuilt by the model itself, so the attribution is exact for the model's own pooling
(attention, mean, or anything else), not an approximation. Field side (:func:`explain_fields`,
two-tower): the same with one field of the recommended item's record left out and its vector
rebuilt by the item tower. :func:`explain_recommendations` gives both per item.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.schema import Entities
from dayzero.core.templates import is_missing
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
        Interaction values aligned with ``history`` (default: the top training value, as for
        liked items).
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
    top = model.serving_value_range()[1]
    vals = np.full(len(history), top) if values is None else np.asarray(values, dtype=float)
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


def item_tower_fields(model: Any) -> list[str]:
    """The item fields a two-tower's item tower reads: its text template's fields, then the
    attribute (one-hot / numeric) and token-bag fields, each once, in that order."""
    _check_item_tower(model)
    names = [spec.name for spec in model.item_template_.specs]
    names += model.item_attributes_.fields
    names += [name for name, _ in model.item_tokens_.fields_]
    return list(dict.fromkeys(names))


def _check_item_tower(model: Any) -> None:
    from dayzero.recommend.two_tower import TwoTowerRecommender

    if not isinstance(model, TwoTowerRecommender):
        raise TypeError(
            f"{type(model).__name__} does not build item vectors from item fields: the field "
            "side of an explanation needs a two-tower (explain_history works on any "
            "VectorServable)"
        )
    model._check_fitted()


def explain_fields(
    model: Any,
    items: Sequence[Hashable],
    history: Sequence[Hashable] = (),
    values: Sequence[float] | None = None,
    user: Hashable | None = None,
    profile: str | None = None,
    entities: Entities | None = None,
    top_fields: int = 3,
) -> list[list[tuple[str, float]]]:
    """Item fields that contributed most to each recommended item's score (leave one field out).

    For each item and each field the item tower reads (:func:`item_tower_fields`) the item's
    record is rendered again without that field (text view, attributes, token and word bags,
    all through the model's own encoders), its vector rebuilt by the item tower (the ID part
    of a trained item kept) and scored against the same user vector; the contribution is the
    drop in the score. Fields the record does not have are not listed.

    Parameters
    ----------
    model
        A fitted :class:`~dayzero.recommend.two_tower.TwoTowerRecommender`.
    items
        The recommended item ids to explain (ids the model serves).
    history, values, user, profile
        The user, as in :func:`explain_history`.
    entities
        The items' records (default: the item table the model holds; a loaded model holds
        none, so pass the item table, or store records through
        :func:`dayzero.online.serving.records_to_entities`). Items without a record get an
        empty list.
    top_fields
        How many fields to return per item.

    Returns
    -------
    list of list of (field, score drop when left out), largest drop first
    """
    import copy

    import torch

    from dayzero.recommend.two_tower import _bag_tensors

    _check_item_tower(model)
    items = list(items)
    table = entities if entities is not None else getattr(model, "items_", None)
    if table is None:
        raise ValueError(
            "the model holds no item records (a loaded model keeps none): pass entities=, the "
            "item table the model was fitted on"
        )
    unserved = [i for i in items if i not in model.item_map_]
    if unserved:
        raise ValueError(f"items {unserved[:5]} are not served by the model: explain served items")
    history = list(history)
    top = model.serving_value_range()[1]
    vals = np.full(len(history), top) if values is None else np.asarray(values, dtype=float)
    if len(vals) != len(history):
        raise ValueError(f"values has {len(vals)} entries but history has {len(history)}")
    fields = item_tower_fields(model)
    described = [i for i in items if i in table]
    # Variant 0 of each item is its full record, then one variant per field it has.
    records, owners, dropped = [], [], []
    for item in described:
        record = table.record(item)
        records.append(record)
        owners.append(item)
        dropped.append(None)
        for name in fields:
            if not is_missing(record.get(name)):
                records.append({**record, name: None})
                owners.append(item)
                dropped.append(name)
    out: list[list[tuple[str, float]]] = [[] for _ in items]
    if not records:
        return out
    ids = [str(k) for k in range(len(records))]
    frame = pd.DataFrame(records, index=pd.Index(ids, dtype=object))
    variants = Entities(frame, {k: v for k, v in table.fields.items() if k in frame.columns})
    content = model._content(variants, ids, model.item_template_, model.item_attributes_)
    tokens = _bag_tensors(model.item_tokens_.transform(variants, ids))
    words = _bag_tensors(model._word_bags(variants, ids))
    internal = model.item_map_.to_internal(owners)
    id_rows = np.where(internal < model.n_known_items_, internal, -1)
    model.network_.eval()
    with torch.no_grad():
        vectors = model.network_.items(
            torch.from_numpy(content),
            torch.from_numpy(id_rows),
            tokens,
            words,
        )
    u = model.user_serving_vector(user, history, vals, text=profile).astype(np.float64)
    # The serving rows (retrieval direction, bias, cold calibration) come from the model's own
    # item_serving_vectors on a shallow copy whose item table holds the variant vectors.
    scores = np.empty(len(records))
    view = copy.copy(model)
    for name in dict.fromkeys(dropped):
        rows = [k for k, d in enumerate(dropped) if d == name]
        table_rows = model.item_vectors_.clone()
        table_rows[torch.from_numpy(internal[rows])] = vectors[rows]
        view.item_vectors_ = table_rows
        serving = view.item_serving_vectors([owners[k] for k in rows]).astype(np.float64)
        scores[rows] = serving @ u
    position = {item: n for n, item in enumerate(items)}
    base = {owners[k]: scores[k] for k, d in enumerate(dropped) if d is None}
    drops: dict[Hashable, list[tuple[str, float]]] = {item: [] for item in described}
    for k, name in enumerate(dropped):
        if name is not None:
            drops[owners[k]].append((name, float(base[owners[k]] - scores[k])))
    for item, pairs in drops.items():
        pairs.sort(key=lambda p: -p[1])
        out[position[item]] = pairs[:top_fields]
    return out


def held_history(model: VectorServable, user: Hashable) -> tuple[list[Hashable], np.ndarray]:
    """The interactions a fitted model holds for ``user`` (training history, then rows folded
    in by ``partial_fit_users``) as ``(items, values)``; empty for a user it does not know.

    Models that keep no training values (other than the two-tower) give the items the user has
    seen, each at the top training value.
    """
    items: list[Hashable] = []
    values: list[float] = []
    train = getattr(model, "_train_history", None)
    row = model.user_map_.to_internal([user], missing=-1)[0] if user in model.user_map_ else -1
    if train is not None and row >= 0 and row in set(train.users.tolist()):
        idx, vals = train.user_rows(int(np.searchsorted(train.users, row)))
        items += model.item_map_.to_external(idx)
        values += [float(v) for v in vals]
    elif train is None:
        top = model.serving_value_range()[1]
        seen = sorted(getattr(model, "seen_", {}).get(user, ()), key=str)
        items += seen
        values += [top] * len(seen)
    extra = getattr(model, "_extra_history", None)
    if train is not None and extra is not None and len(extra):
        frame = extra.frame[extra.frame["user"] == user]
        items += frame["item"].tolist()
        values += frame["value"].astype(float).tolist()
    return items, np.asarray(values, dtype=np.float64)


def explain_recommendations(
    model: VectorServable,
    items: Sequence[Hashable],
    user: Hashable | None = None,
    history: Sequence[Hashable] = (),
    values: Sequence[float] | None = None,
    profile: str | None = None,
    entities: Entities | None = None,
    top_history: int = 3,
    top_fields: int = 3,
) -> list[dict[str, Any]]:
    """History items and item fields that contributed most to each recommended item.

    Parameters
    ----------
    model
        A fitted model with serving vectors.
    items
        The recommended item ids.
    user
        A user id (``None``: an anonymous visitor). For a user the model holds, the history
        explained is the held one (:func:`held_history`) plus ``history``, pooled as the model
        pools a new user's: a user's ID embedding has no items to name, so leaving history
        items out is measured on the history part of the user vector.
    history, values
        Items revealed for this call and their values (default: the top training value).
    profile
        A profile sentence, as ``text`` of :meth:`~VectorServable.user_serving_vector`.
    entities
        The items' records for the field side (see :func:`explain_fields`).
    top_history, top_fields
        How many history items and fields to return per item.

    Returns
    -------
    list of dict
        One ``{"item", "history": [{"item", "contribution"}], "fields": [{"field",
        "contribution"}] or None, "notes": [str]}`` per item, contributions being the drop in
        the item's score when the history item or field is left out, largest first.
        ``fields`` is None (with a note saying why) when the model cannot attribute to fields.
    """
    if not isinstance(model, VectorServable):
        raise TypeError(f"{type(model).__name__} has no serving vectors: explain a VectorServable")
    items = list(items)
    revealed = list(history)
    top = model.serving_value_range()[1]
    vals = (
        np.full(len(revealed), top, dtype=np.float64)
        if values is None
        else np.asarray(values, dtype=np.float64)
    )
    if len(vals) != len(revealed):
        raise ValueError(f"values has {len(vals)} entries but history has {len(revealed)}")
    known = user is not None and user in model.user_map_
    held, held_values = held_history(model, user) if known else ([], np.zeros(0))
    pooled = [*held, *revealed]
    pooled_values = np.concatenate([held_values, vals])
    who = None if known else user
    notes: list[str] = []
    if len(pooled):
        by_history = explain_history(
            model, items, pooled, pooled_values, user=who, profile=profile, top_history=top_history
        )
    else:
        by_history = [[] for _ in items]
        notes.append("no history to explain by")
    by_field: list[list[tuple[str, float]]] | None
    try:
        by_field = explain_fields(
            model, items, pooled, pooled_values, user=who, profile=profile,
            entities=entities, top_fields=top_fields,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        by_field = None
        notes.append(f"no field side: {exc}")
    return [
        {
            "item": item,
            "history": [{"item": h, "contribution": c} for h, c in by_history[n]],
            "fields": None
            if by_field is None
            else [{"field": f, "contribution": c} for f, c in by_field[n]],
            "notes": list(notes),
        }
        for n, item in enumerate(items)
    ]
