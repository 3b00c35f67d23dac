"""Precomputed top-K lists: the live answer while fresh, the live path once not."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import EntityRecord, Event, TopList, open_store
from dayzero.serve.state import Served, ServiceState, UserVectorCache
from dayzero.serve.toplists import MERGE_LIMIT, compute_toplists, toplist_answer
from tests.serve.conftest import ACTION

WHEN = datetime(2025, 1, 1, tzinfo=UTC)


def _state(env, **kwargs) -> ServiceState:
    state = ServiceState(
        open_store(env.store), ModelRegistry(env.registry), user_cache=UserVectorCache(0), **kwargs
    )
    state.start()
    return state


@pytest.fixture
def live(env):
    """A state that never reads lists: the reference answers."""
    state = _state(env, toplists=False)
    yield state
    state.close()


@pytest.fixture
def listed(env, live):
    """A state serving from lists, after every known user's top-8 list was stored."""
    users = live.store.known_user_ids()
    live.store.put_toplists(compute_toplists(live, users, k=8))
    state = _state(env)
    yield state
    state.close()


def _answer(state: ServiceState, user: str, k: int):
    return toplist_answer(state, state.require(), user, k)


def test_lists_give_the_live_answer_for_every_user(live, listed):
    users = live.store.known_user_ids()
    assert len(users) == 20 and live.store.count_toplists() == 20
    for user in [*users, "never-seen"]:
        want = live.recommend_user(user, 5, exclude_seen=True)
        answer, outcome = _answer(listed, user, 5)
        if user == "never-seen":
            assert (answer, outcome) == (None, "absent")
            continue
        assert outcome == "hit"
        ids, scores, new_user = answer
        assert ids == want.ids and new_user == want.new_user
        np.testing.assert_allclose(scores, want.scores, rtol=1e-5, atol=1e-6)
        got = listed.recommend_user(user, 5, exclude_seen=True)
        assert got.ids == want.ids


def test_a_request_is_answered_from_the_stored_list(listed):
    # A list with a known, non-model order: only a read from the store can give it back.
    stored = listed.store.get_toplist(listed.require().version, "ua0").toplist
    order = list(reversed(stored.items))
    fake = TopList(**{**vars(stored), "items": order, "scores": sorted(stored.scores)})
    listed.store.put_toplists([fake])
    assert listed.recommend_user("ua0", 3, exclude_seen=True).ids == order[:3]
    # Seen items kept in, or more items than the list holds: computed live.
    assert listed.recommend_user("ua0", 3, exclude_seen=False).ids != order[:3]
    full = TopList(**{**vars(fake), "items": order[:2], "scores": fake.scores[:2], "k": 2})
    listed.store.put_toplists([full])
    assert _answer(listed, "ua0", 3) == (None, "short")
    assert listed.recommend_user("ua0", 3, exclude_seen=True).ids[:2] != order[:2]
    # A list shorter than its k holds every unseen item: any k is answered from it.
    listed.store.put_toplists([TopList(**{**vars(full), "k": 3})])
    assert listed.recommend_user("ua0", 7, exclude_seen=True).ids == order[:2]


def test_a_new_event_or_profile_makes_the_list_stale(live, listed):
    assert _answer(listed, "ub0", 5)[1] == "hit"
    first = live.recommend_user("ub0", 5, exclude_seen=True).ids
    listed.add_events([Event(user="ub0", item=first[0], value=5.0, ts=WHEN)])
    assert _answer(listed, "ub0", 5) == (None, "stale")
    after = listed.recommend_user("ub0", 5, exclude_seen=True)
    assert first[0] not in after.ids
    assert after.ids == live.recommend_user("ub0", 5, exclude_seen=True).ids
    # A profile write through another state (another worker) is seen the same way.
    assert _answer(listed, "ua1", 5)[1] == "hit"
    live.add_users([EntityRecord("ua1", "now a romance reader")])
    assert _answer(listed, "ua1", 5) == (None, "stale")


def test_items_written_after_the_list_are_merged_in(live, listed):
    live.add_items([EntityRecord("a_new", f"{ACTION} brand new"), EntityRecord("r_new", "x")])
    listed.catch_up_items()
    live.catch_up_items()
    for user in ("ua0", "ub0", "ua3"):
        answer, outcome = _answer(listed, user, 8)
        assert outcome == "merged"
        want = live.recommend_user(user, 8, exclude_seen=True)
        assert answer[0] == want.ids
        np.testing.assert_allclose(answer[1], want.scores, rtol=1e-5, atol=1e-6)
    # A changed item is rescored too: its old score in the list is not used.
    item = live.store.get_toplist(listed.require().version, "ua0").toplist.items[0]
    live.add_items([EntityRecord(item, "love kiss wedding romance now")])
    listed.catch_up_items()
    live.catch_up_items()
    assert _answer(listed, "ua0", 8)[0][0] == live.recommend_user("ua0", 8, True).ids


def test_a_seen_item_written_after_the_list_stays_out(live, listed):
    # An event on an item the service did not know yet (it may be added later): not newer
    # than the list once the list is recomputed, and the item must not come back when added.
    live.add_events([Event(user="ua2", item="later", value=5.0, ts=WHEN)])
    live.store.put_toplists(compute_toplists(live, ["ua2"], k=8))
    live.add_items([EntityRecord("later", f"{ACTION} later")])
    listed.catch_up_items()
    answer, outcome = _answer(listed, "ua2", 8)
    assert outcome == "merged" and "later" not in answer[0]


def test_lists_of_another_version_are_not_used(env, live):
    lists = compute_toplists(live, ["ua0"], k=8)
    other = TopList(**{**vars(lists[0]), "version": "v999999"})
    live.store.put_toplists([other])
    state = _state(env)
    try:
        assert not state._lists_exist(state.require())
        assert _answer(state, "ua0", 5) == (None, "absent")
    finally:
        state.close()


def test_the_write_log_forgets_old_writes_and_then_refuses():
    served = Served(version="v", model=None, index=None, info={})
    served.log_writes([SimpleNamespace(id=f"i{n}", seq=n) for n in range(1, 25_001)])
    assert served.items_written_after(24_998) == {"i24999", "i25000"}
    assert served.write_floor > 0 and served.items_written_after(served.write_floor - 1) is None
    served.log_writes([SimpleNamespace(id="late", seq=served.write_floor + 1)])  # out of order
    assert "late" in served.items_written_after(served.write_floor)
    assert MERGE_LIMIT < 10_000  # a list older than the log could be merged wrongly


def test_compute_toplists_checks_k(live):
    with pytest.raises(ValueError, match="k must be >= 1"):
        compute_toplists(live, ["ua0"], k=0)
