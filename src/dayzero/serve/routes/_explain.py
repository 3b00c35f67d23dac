"""``explain=true`` on the recommendation routes: why each item was recommended, computed by
:func:`dayzero.recommend.explain.explain_recommendations` through the served model itself.

An explanation never fails a request: what cannot be explained (a model without item fields,
an item without a record, an error inside the model) is said in the explanation's notes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dayzero.serve import schemas as s

log = logging.getLogger("dayzero.serve")

#: The first items of a list that get an explanation: each one re-encodes the item's text once
#: per field, so a long list is explained where people look.
MAX_EXPLAINED = 10


def explain_items(
    svc, served, ids: Sequence[str], user: str | None, profile: str | None, events
) -> list[s.Explanation | None]:
    """One explanation per id (``None`` after the first :data:`MAX_EXPLAINED`)."""
    from dayzero.online.serving import records_to_entities
    from dayzero.recommend.explain import explain_recommendations

    head = list(ids[:MAX_EXPLAINED])
    out: list[s.Explanation | None] = [None] * len(ids)
    if not head:
        return out
    try:
        serving = served.model
        items, values = serving.history(user, events)
        records = list(svc.store.get_items(head).values())
        entities = records_to_entities(records) if records else None
        with svc._model():
            rows = explain_recommendations(
                serving.model, head, user=user, history=items, values=values,
                profile=profile, entities=entities,
            )  # fmt: skip
    except Exception as exc:  # an explanation must never fail the request
        log.exception("explanation failed")
        note = f"could not be explained: {type(exc).__name__}: {exc}"
        for n in range(len(head)):
            out[n] = s.Explanation(history=[], fields=None, notes=[note])
        return out
    for n, row in enumerate(rows):
        out[n] = s.Explanation(
            history=[
                s.HistoryContribution(item=str(h["item"]), contribution=h["contribution"])
                for h in row["history"]
            ],
            fields=None
            if row["fields"] is None
            else [
                s.FieldContribution(field=str(f["field"]), contribution=f["contribution"])
                for f in row["fields"]
            ],
            notes=row["notes"],
        )
    return out
