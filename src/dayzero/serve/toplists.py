"""Precomputed top-K lists: ranked by a served version ahead of time, read back while fresh.

:func:`compute_toplists` ranks users exactly as a request would (the same user vector, the same
index search, seen items left out) and records what the list saw: the store's last event id,
its last profile seq and the served version's last item seq. A batch job writes the lists to
the store (:func:`dayzero.distributed.toplists.precompute_toplists`, on Ray Data).

:func:`toplist_answer` serves a request from a stored list when that gives the live answer:
the user has no event and no profile write after the list was computed, the request leaves
seen items out and asks for no more items than the list holds. Items written after the list
(new items, or items whose text changed) are scored with the stored user vector and merged in,
so a new item competes at once; when more than :data:`MERGE_LIMIT` items changed, or the
service no longer remembers which ones, the request is computed live instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from dayzero.online.store import TopList

if TYPE_CHECKING:
    from dayzero.serve.state import Served, ServiceState

#: More items written since a list was computed than this: the request is computed live.
MERGE_LIMIT = 1_000

Outcome = Literal["hit", "merged", "stale", "absent", "short"]


def compute_toplists(state: ServiceState, users: Sequence[str], k: int) -> list[TopList]:
    """Top-``k`` lists of ``users`` under the state's served version, as requests would get them.

    Parameters
    ----------
    state : ServiceState
        A started state; its user-vector cache is bypassed (size 0 is best for a batch).
    users : sequence of str
        Any user ids (users the store has never seen get the brand-new-user list).
    k : int
        Items per list; requests for at most ``k`` items can be served from it.

    Returns
    -------
    list of TopList
        One per user, in order, with the marks of what the store held when the batch started.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    served = state.require()
    # Marks first, then the reads: anything committed in between is seen by the list *and*
    # counted as newer, so a list can only be judged stale too early, never fresh too late.
    event_mark = state.store.last_event_id()
    user_mark = state.store.last_seq("users")
    item_mark = state.catch_up_items()
    toplists = []
    for user in users:
        entry = state.user_entry(served, user)
        ids, scores = served.index.search(entry.vector, k, exclude=entry.seen)
        toplists.append(
            TopList(
                version=served.version,
                user=user,
                items=list(ids),
                scores=[float(s) for s in scores],
                vector=np.asarray(entry.vector, dtype=np.float32).reshape(-1),
                new_user=entry.new_user,
                event_mark=event_mark,
                user_mark=user_mark,
                item_mark=item_mark,
                k=k,
            )
        )
    return toplists


def toplist_answer(
    state: ServiceState, served: Served, user: str, k: int
) -> tuple[tuple[list[str], np.ndarray, bool] | None, Outcome]:
    """The live answer for ``user`` read from their stored list, or None and why not.

    Returns
    -------
    answer : (ids, scores, new_user) or None
    outcome : str
        ``hit`` (the list as stored), ``merged`` (items written since were merged in), or why
        the request must be computed live: ``absent`` (no list for this version), ``stale``
        (a newer event or profile, or too many item writes), ``short`` (fewer than ``k`` items
        left of a list that was cut at its length).
    """
    stored = state.store.get_toplist(served.version, user)
    if stored is None:
        return None, "absent"
    if not stored.fresh:
        return None, "stale"
    toplist = stored.toplist
    changed = served.items_written_after(toplist.item_mark)
    if changed is None or len(changed) > MERGE_LIMIT:
        return None, "stale"
    index = served.index
    ranked = [
        (item, score)
        for item, score in zip(toplist.items, toplist.scores, strict=True)
        if item not in changed and item in index
    ]
    if changed:
        seen = state.seen_items(served, user, toplist.new_user)
        fresh = [item for item in changed if item in index and item not in seen]
        if fresh:
            vectors = np.stack([index.get(item) for item in fresh])
            scores = vectors @ toplist.vector
            ranked.extend(zip(fresh, scores.tolist(), strict=True))
            ranked.sort(key=lambda pair: -pair[1])
    complete = len(toplist.items) < toplist.k  # every item the user had not seen
    if len(ranked) < k and not complete:
        return None, "short"
    ids = [item for item, _ in ranked[:k]]
    scores = np.asarray([score for _, score in ranked[:k]], dtype=np.float32)
    return (ids, scores, toplist.new_user), ("merged" if changed else "hit")


__all__ = ["MERGE_LIMIT", "compute_toplists", "toplist_answer"]
