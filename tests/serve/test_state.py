"""ServiceState across processes: two states over one store stand for two workers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import EntityRecord, Event, open_store
from dayzero.serve.state import ServiceState
from tests.serve.conftest import ACTION, ROMANCE


@pytest.fixture
def workers(env):
    """Two started states over the same store and registry, the second watching the store."""
    states = []
    for watch in (False, True):
        state = ServiceState(open_store(env.store), ModelRegistry(env.registry), watch_store=watch)
        state.start()
        states.append(state)
    yield states
    for state in states:
        state.close()


def test_writes_through_one_worker_count_in_the_others_next_answer(workers, env):
    writer, reader = workers
    before = reader.recommend_user("ub0", 5, exclude_seen=True)  # now cached by the reader
    assert all(item.startswith("r") for item in before.ids[:3])
    # A new item written through the other worker is in the reader's index at its next read.
    writer.add_items([EntityRecord("a_new", f"{ACTION} brand new")])
    assert "a_new" not in reader.served.index  # nothing happened in the reader yet
    assert reader.item("a_new").served
    assert "a_new" in reader.similar("a0", 30)[1]
    # New events of a cached user drop that user's vector: the next answer excludes them.
    seen_now = set(before.ids[:3])
    when = datetime(2025, 1, 1, tzinfo=UTC)
    writer.add_events([Event(user="ub0", item=i, value=5.0, ts=when) for i in seen_now])
    after = reader.recommend_user("ub0", 5, exclude_seen=True)
    assert not seen_now & set(after.ids)
    # A profile written elsewhere reaches a new user's next answer too.
    writer.add_users([EntityRecord("fresh", f"{ROMANCE} only")])
    assert reader.recommend_user("fresh", 3, exclude_seen=True).new_user


def test_without_watching_a_worker_keeps_its_cached_answer(env):
    writer = ServiceState(open_store(env.store), ModelRegistry(env.registry))
    reader = ServiceState(open_store(env.store), ModelRegistry(env.registry))
    writer.start(), reader.start()
    try:
        first = reader.recommend_user("ub0", 3, exclude_seen=True)
        when = datetime(2025, 1, 1, tzinfo=UTC)
        writer.add_events([Event(user="ub0", item=i, value=5.0, ts=when) for i in first.ids])
        assert reader.recommend_user("ub0", 3, exclude_seen=True).ids == first.ids  # cached (TTL)
    finally:
        writer.close(), reader.close()


def test_a_watching_worker_that_writes_items_keeps_the_others_earlier_items(workers):
    writer, watcher = workers
    watcher.recommend_user("ub0", 3, exclude_seen=True)  # the watcher has synced once
    writer.add_items([EntityRecord("from_other", f"{ACTION} other worker")])
    # The watcher writes an item of its own (a higher seq) before any read: the other
    # worker's item, committed below it, must not be skipped.
    watcher.add_items([EntityRecord("own", f"{ACTION} own")])
    assert {"from_other", "own"} <= set(watcher.served.index.ids())
    assert watcher.served.item_seq == watcher.store.last_seq("items")


def test_titles_are_cached_until_their_item_is_written(workers, monkeypatch):
    writer, watcher = workers
    writer.add_items([EntityRecord("t1", "a film", {"title": "First Title"})])
    reads: list[list[str]] = []
    get_items = watcher.store.get_items

    def counting(ids):
        reads.append(list(ids))
        return get_items(ids)

    monkeypatch.setattr(watcher.store, "get_items", counting)
    watcher.recommend_user("ub0", 3, exclude_seen=True)  # syncs: t1 is folded in
    assert watcher.titles(["t1", "a0"]) == ["First Title", watcher.titles(["a0"])[0]]
    assert reads == [["t1", "a0"]]  # one store read, then from the cache
    assert watcher.titles(["t1"]) == ["First Title"] and len(reads) == 1
    # A new title written through the other worker: taken in at the next read, read again.
    writer.add_items([EntityRecord("t1", "a film", {"title": "Second Title"})])
    watcher.recommend_user("ub0", 3, exclude_seen=True)
    assert watcher.titles(["t1"]) == ["Second Title"] and reads[-1] == ["t1"]
    # And through this worker.
    watcher.add_items([EntityRecord("t1", "a film", {"title": "Third Title"})])
    assert watcher.titles(["t1"]) == ["Third Title"]


def _held(lock, release: threading.Event) -> threading.Thread:
    """A thread that takes ``lock`` and holds it until ``release`` is set."""
    taken = threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(5)
    return thread


def test_nowait_answers_as_recommend_user_or_declines_at_once(workers):
    writer, reader = workers  # the reader watches the store, as a worker of several does
    assert reader.answers_on_loop  # a SQLite store
    answered = reader.recommend_user_nowait("ub0", 5, exclude_seen=True)
    assert answered is not None
    served, out = answered
    assert served is reader.served
    live = reader.recommend_user("ub0", 5, exclude_seen=True)
    assert (out.ids, out.scores.tolist(), out.new_user) == (
        live.ids,
        live.scores.tolist(),
        live.new_user,
    )
    # A new user's profile would go through the text encoder: left to a thread.
    writer.add_users([EntityRecord("fresh", f"{ROMANCE} only")])
    assert reader.recommend_user_nowait("fresh", 3, exclude_seen=True) is None
    # What another thread holds, it declines instead of waiting for: a sync or a fold-in...
    for lock in (reader._fold_lock, reader._sync_lock):
        release = threading.Event()
        holder = _held(lock, release)
        started = time.monotonic()
        assert reader.recommend_user_nowait("ub0", 5, exclude_seen=True) is None
        assert time.monotonic() - started < 1.0
        release.set()
        holder.join(5)
    # ... and the busy model when the user's vector must be computed; a cached one needs none.
    release = threading.Event()
    holder = _held(reader._model_lock, release)
    assert reader.recommend_user_nowait("ub0", 5, exclude_seen=True) is not None  # cached
    reader.user_cache.clear()
    started = time.monotonic()
    assert reader.recommend_user_nowait("ub0", 5, exclude_seen=True) is None
    assert time.monotonic() - started < 1.0
    release.set()
    holder.join(5)
    assert reader.recommend_user_nowait("ub0", 5, exclude_seen=True) is not None  # computed
    # Items another worker wrote need a fold-in: declined until a thread has synced...
    writer.add_items([EntityRecord("a_nowait", f"{ACTION} brand new")])
    assert reader.recommend_user_nowait("ub0", 5, exclude_seen=True) is None
    reader.recommend_user("ub0", 5, exclude_seen=True)
    assert "a_nowait" in reader.served.index
    # ... and new events are taken in on the loop too: they count in the next answer.
    seen_now = set(out.ids[:2])
    when = datetime(2025, 1, 1, tzinfo=UTC)
    writer.add_events([Event(user="ub0", item=i, value=5.0, ts=when) for i in seen_now])
    answered = reader.recommend_user_nowait("ub0", 5, exclude_seen=True)
    assert answered is not None and not seen_now & set(answered[1].ids)


def test_nowait_leaves_a_long_history_to_a_thread(workers):
    writer, reader = workers
    when = datetime(2025, 1, 1, tzinfo=UTC)
    writer.add_events([Event(user="ub1", item="a0", value=1.0, ts=when) for _ in range(1_001)])
    reader.sync_with_store()
    reader.user_cache.clear()
    assert reader.recommend_user_nowait("ub1", 3, exclude_seen=True) is None  # 1,001 events
    assert reader.recommend_user("ub1", 3, exclude_seen=True).ids  # a thread reads them all
    assert reader.recommend_user_nowait("ub1", 3, exclude_seen=True) is not None  # now cached


def test_nowait_leaves_a_large_sync_to_a_thread(workers):
    writer, reader = workers
    assert reader.recommend_user_nowait("ub0", 3, exclude_seen=True) is not None
    when = datetime(2025, 1, 1, tzinfo=UTC)
    many = [Event(user=f"bulk{n}", item="a0", value=1.0, ts=when) for n in range(501)]
    writer.add_events(many)
    assert reader.recommend_user_nowait("ub0", 3, exclude_seen=True) is None
    assert reader.sync_with_store()  # a thread's sync takes them in
    assert reader.recommend_user_nowait("ub0", 3, exclude_seen=True) is not None
