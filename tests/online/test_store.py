"""Event store on SQLite and PostgreSQL (the PostgreSQL half skips without a server)."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dayzero.core.schema import SchemaError
from dayzero.online.store import (
    EntityRecord,
    Event,
    StoreClosedError,
    TopList,
    open_store,
)

T0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _event(n: int, user: str = "u1", **kw) -> Event:
    return Event(user=user, item=f"i{n}", value=float(n), ts=T0 + timedelta(seconds=n), **kw)


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened


# --- events ------------------------------------------------------------------------------------


def test_events_round_trip(store):
    context = {"page": "détail", "emoji": "🎬", "中文": ["推荐", 1, 2.5, True, None], "n": {"a": 1}}
    sent = [
        Event("u1", "i1", "rating", 4.5, T0, context),
        Event("u2", "i2", "click", 1.0, T0 + timedelta(microseconds=1)),
    ]
    ids = store.append_events(sent)
    assert ids == sorted(ids) and len(set(ids)) == 2
    got = store.events()
    assert [e.id for e in got] == ids
    for want, have in zip(sent, got, strict=True):
        assert (have.user, have.item, have.kind, have.value) == (
            want.user,
            want.item,
            want.kind,
            want.value,
        )
        assert have.ts == want.ts and have.ts.tzinfo is not None
        assert have.context == want.context


def test_ts_defaults_to_now_and_is_normalised_to_utc(store):
    before = datetime.now(UTC)
    paris = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    store.append_events([Event("u", "i"), Event("u", "j", ts=paris)])
    after = datetime.now(UTC)
    now_event, paris_event = store.events()
    assert before - timedelta(milliseconds=1) <= now_event.ts <= after
    assert paris_event.ts == T0 and paris_event.ts.utcoffset() == timedelta(0)


def test_ids_increase_across_batches_and_filters(store):
    first = store.append_events([_event(n, user="a" if n % 2 else "b") for n in range(6)])
    second = store.append_events([_event(n, user="a") for n in range(6, 9)])
    ids = first + second
    assert ids == sorted(ids) and len(set(ids)) == 9
    assert [e.item for e in store.events()] == [f"i{n}" for n in range(9)]
    assert [e.id for e in store.events(after=ids[2])] == ids[3:]
    assert [e.id for e in store.events(after=ids[2], upto=ids[5])] == ids[3:6]
    assert [e.id for e in store.events(upto=ids[0])] == ids[:1]
    assert [e.item for e in store.events(user="a")] == ["i1", "i3", "i5", "i6", "i7", "i8"]
    assert [e.item for e in store.events(user="a", after=ids[5], limit=2)] == ["i6", "i7"]
    assert store.events(limit=0) == []
    assert store.events(user="nobody") == []


def test_watermark_semantics(store):
    assert store.last_event_id() == 0 and store.count_events() == 0
    assert store.events() == []
    ids = store.append_events([_event(n) for n in range(3)])
    watermark = store.last_event_id()
    assert watermark == ids[-1] and store.count_events() == 3
    assert store.events(after=watermark) == []
    new = store.append_events([_event(3), _event(4)])
    assert min(new) > watermark
    assert [e.id for e in store.events(after=watermark)] == new
    assert store.events_frame(after=watermark)["id"].tolist() == new
    assert store.last_event_id() == new[-1] and store.count_events() == 5
    assert store.append_events([]) == [] and store.count_events() == 5


def test_events_frame(store):
    ids = store.append_events([_event(n, context={"k": n}) for n in range(4)])
    frame = store.events_frame(after=ids[0], upto=ids[2])
    assert list(frame.columns) == ["id", "user", "item", "kind", "value", "ts", "context"]
    assert frame["id"].tolist() == ids[1:3]
    assert frame["item"].tolist() == ["i1", "i2"]
    assert frame["value"].tolist() == [1.0, 2.0]
    assert frame["context"].tolist() == [{"k": 1}, {"k": 2}]
    assert frame["ts"].dtype == "datetime64[us, UTC]"
    assert frame["ts"].tolist() == [pd.Timestamp(T0 + timedelta(seconds=n)) for n in (1, 2)]
    empty = store.events_frame(after=ids[-1])
    assert list(empty.columns) == list(frame.columns) and len(empty) == 0
    assert empty.dtypes.equals(frame.dtypes)


def test_numpy_values_are_accepted(store):
    context = {"score": np.float32(0.5), "rank": np.int64(3), "pair": (1, 2)}
    store.append_events([Event("u", "i", value=np.float64(2.5), context=context)])
    (event,) = store.events()
    assert event.value == 2.5 and event.context == {"score": 0.5, "rank": 3, "pair": [1, 2]}


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
# Ids follow the one id rule (id_problem): no "/", no control characters, not "." / "..".
IDS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() and s not in (".", ".."))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
EVENTS = st.builds(
    Event,
    user=IDS,
    item=IDS,
    kind=st.sampled_from(["rating", "click", "add_to_cart"]),
    value=st.floats(allow_nan=False, allow_infinity=False),
    ts=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    context=st.dictionaries(TEXT, JSON_VALUES, max_size=4),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sent=st.lists(EVENTS, min_size=1, max_size=5))
def test_any_valid_events_round_trip(store, sent):
    watermark = store.last_event_id()
    ids = store.append_events(sent)
    got = store.events(after=watermark)
    assert [e.id for e in got] == ids
    assert [dataclasses.replace(e, id=0) for e in got] == sent


# --- users and items ---------------------------------------------------------------------------


def test_upsert_round_trip_and_seq(store):
    seqs = store.upsert_items(
        [
            EntityRecord("m1", "Toy Story", {"genres": ["Animation"], "year": 1995}),
            EntityRecord("m2"),
        ]
    )
    assert seqs[0] < seqs[1]
    assert store.get_item("m1") == EntityRecord(
        "m1", "Toy Story", {"genres": ["Animation"], "year": 1995}, seqs[0]
    )
    assert store.get_item("m2") == EntityRecord("m2", "", {}, seqs[1])
    assert store.get_item("missing") is None
    assert store.get_user("m1") is None  # users and items are separate tables

    seen = seqs[1]
    (updated,) = store.upsert_items([EntityRecord("m1", "Toy Story (1995)")])
    assert updated > seen
    assert store.get_item("m1") == EntityRecord("m1", "Toy Story (1995)", {}, updated)
    assert store.items(after_seq=seen) == [store.get_item("m1")]
    assert [r.id for r in store.items()] == ["m2", "m1"]  # ordered by seq
    assert store.items(after_seq=updated) == []
    assert store.last_seq("items") == updated and store.last_seq("users") == 0
    with pytest.raises(SchemaError, match="'items' or 'users'"):
        store.last_seq("events")


def test_upsert_repeated_id_in_batch_keeps_last(store):
    seqs = store.upsert_users(
        [EntityRecord("a", "first"), EntityRecord("b"), EntityRecord("a", "last")]
    )
    assert seqs[0] == seqs[2] and seqs[0] != seqs[1]
    assert store.get_user("a").text == "last"
    assert [r.id for r in store.users()] == ["a", "b"]


def test_get_items_reads_a_batch_in_one_call(store):
    records = [EntityRecord(f"i{n}", f"item {n}", {"title": f"Title {n}"}) for n in range(1200)]
    seqs = store.upsert_items(records)
    store.upsert_users([EntityRecord("u-only", "a user")])
    # more ids than one IN (...) chunk, repeats, unknown ids and a user id
    wanted = ["i1199", "i0", "i0", "missing", "u-only", *(f"i{n}" for n in range(1, 1100))]
    found = store.get_items(wanted)
    assert set(found) == {"i0", "i1199", *(f"i{n}" for n in range(1, 1100))}
    assert found["i7"] == EntityRecord("i7", "item 7", {"title": "Title 7"}, seqs[7])
    assert found["i1199"] == store.get_item("i1199")
    assert store.get_items([]) == {}
    with pytest.raises(SchemaError, match=r"ids\[1\] contains '/'"):
        store.get_items(["i0", "a/b"])
    with pytest.raises(SchemaError, match="ids must be a list"):
        store.get_items("i0")


def test_users_and_items_are_independent(store):
    store.upsert_users([EntityRecord("x", "a user", {"age": 30})])
    store.upsert_items([EntityRecord("x", "an item")])
    assert store.get_user("x").fields == {"age": 30}
    assert store.get_item("x").text == "an item"
    assert store.upsert_items([]) == []


# --- validation --------------------------------------------------------------------------------

BAD_EVENTS = [
    (Event("", "i"), "events[0].user is empty"),
    (Event("   ", "i"), "events[0].user is empty"),
    (Event("u", "x" * 257), "events[0].item has 257 characters"),
    (Event(1, "i"), "events[0].user must be a str"),
    (Event("u\x00", "i"), "events[0].user contains a NUL character"),
    (Event("u", "i\ud800"), "events[0].item contains an unpaired surrogate"),
    (Event("u", "i", context={"q": "a\x00"}), "events[0].context['q'] contains a NUL"),
    (Event("u", "i", context={"\udc80": 1}), "contains an unpaired surrogate"),
    (Event("u", "i", value=math.nan), "events[0].value is nan"),
    (Event("u", "i", value=math.inf), "events[0].value is inf"),
    (Event("u", "i", value="5"), "events[0].value must be a number"),
    (Event("u", "i", kind="add to cart"), "events[0].kind='add to cart' is not a short identifier"),
    (Event("u", "i", kind="k" * 33), "is not a short identifier"),
    (Event("u", "i", kind=""), "is not a short identifier"),
    (Event("u", "i", context={"tags": {"a"}}), "events[0].context['tags'] is a set"),
    (Event("u", "i", context={"x": math.nan}), "JSON has no NaN"),
    (Event("u", "i", context={1: "a"}), "keys must be str"),
    (Event("u", "i", context=["a"]), "events[0].context must be a dict"),
    (Event("u", "i", ts=datetime(2024, 1, 1)), "events[0].ts=2024-01-01T00:00:00 is naive"),
    (Event("u", "i", ts="2024-01-01T00:00:00Z"), "events[0].ts must be a datetime"),
    (Event("a/b", "i"), "events[0].user contains '/'"),
    (Event("u", "../../etc/passwd"), "events[0].item contains '/'"),
    (Event("..", "i"), "events[0].user is '..'"),
    (Event("u", "tab\there"), "events[0].item contains the control character"),
    (
        Event("u", "i", ts=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))),
        "events[0].ts=0001-01-01T00:00:00+14:00 is outside 1900-01-01 .. 2200-01-01",
    ),
    (
        Event(
            "u", "i", ts=datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=14)))
        ),
        "is outside 1900-01-01 .. 2200-01-01",
    ),
    (Event("u", "i", ts=datetime(1899, 12, 31, 23, 59, tzinfo=UTC)), "events[0].ts=1899"),
    (Event("u", "i", idempotency_key=""), "events[0].idempotency_key='' must be"),
    (Event("u", "i", idempotency_key="k" * 129), "at most 128"),
    (Event("u", "i", idempotency_key=5), "events[0].idempotency_key=5 must be"),
]


@pytest.fixture
def sqlite_store(tmp_path):
    """Validation runs before any SQL, so one backend covers it."""
    with open_store(tmp_path / "events.db") as opened:
        yield opened


@pytest.mark.parametrize(("event", "message"), BAD_EVENTS)
def test_bad_events_are_refused_and_nothing_is_stored(sqlite_store, event, message):
    store = sqlite_store
    with pytest.raises(SchemaError) as info:
        store.append_events([event])
    assert message in str(info.value)
    with pytest.raises(SchemaError, match=r"events\[1\]"):
        store.append_events([_event(1), event])
    assert store.count_events() == 0


BAD_RECORDS = [
    (EntityRecord(""), "items[0].id is empty"),
    (EntityRecord("a" * 300), "items[0].id has 300 characters"),
    (EntityRecord("a", text=None), "items[0].text must be a str"),
    (EntityRecord("a", fields={"when": datetime(2024, 1, 1)}), "items[0].fields['when'] is a"),
    (EntityRecord("a", fields={"x": math.inf}), "JSON has no NaN/inf"),
    (EntityRecord("a", text="bad\x00text"), "items[0].text contains a NUL character"),
    (EntityRecord("a/b"), "items[0].id contains '/'"),
    (EntityRecord("."), "items[0].id is '.'"),
    (EntityRecord("new\nline"), "items[0].id contains the control character"),
]


@pytest.mark.parametrize(("record", "message"), BAD_RECORDS)
def test_bad_records_are_refused(sqlite_store, record, message):
    store = sqlite_store
    with pytest.raises(SchemaError) as info:
        store.upsert_items([record])
    assert message in str(info.value)
    assert store.items() == []


def test_time_range_bounds_are_inclusive(sqlite_store):
    from dayzero.online.store import MAX_TS, MIN_TS

    sqlite_store.append_events([Event("u", "i", ts=MIN_TS), Event("u", "j", ts=MAX_TS)])
    assert [e.ts for e in sqlite_store.events()] == [MIN_TS, MAX_TS]


def test_rows_stored_out_of_range_are_read_back_clamped(store):
    """A bad time written before the range check (or by hand) must not break any reader."""
    from dayzero.online.store import EVENTS, MAX_TS, MIN_TS

    store.append_events([Event("u", "i", ts=T0)])
    with store._write(EVENTS) as conn:
        for ts in (-(2**62), 2**62):
            conn.execute(
                sa.insert(EVENTS),
                {"user": "u", "item": "i", "kind": "rating", "value": 1.0, "ts": ts, "context": {}},
            )
    assert [e.ts for e in store.events(user="u")] == [T0, MIN_TS, MAX_TS]
    frame = store.events_frame()
    assert list(frame["ts"]) == [pd.Timestamp(t) for t in (T0, MIN_TS, MAX_TS)]


def test_idempotency_keys_store_each_event_once(store):
    batch = [
        Event("u", "i1", value=4.0, idempotency_key="k1"),
        Event("u", "i2", value=3.0, idempotency_key="k2"),
        Event("u", "i3"),
    ]
    first = store.append_events(batch)
    assert first.new == 3 and first == sorted(first)
    retry = store.append_events([*batch[:2], Event("u", "i4", idempotency_key="k4")])
    assert retry[:2] == first[:2] and retry.new == 1 and retry[2] > first[2]
    assert store.count_events() == 4
    assert {e.idempotency_key for e in store.events()} == {"k1", "k2", None, "k4"}
    # the same key twice in one batch: stored once, both positions get its id
    twice = store.append_events([Event("v", "i", idempotency_key="k5")] * 2)
    assert twice[0] == twice[1] and twice.new == 1 and store.count_events() == 5
    # a retry without ts matches a stored event whose ts the server filled in
    keyless_ts = store.append_events([Event("w", "i", idempotency_key="k6")])
    assert store.append_events([Event("w", "i", idempotency_key="k6")]) == keyless_ts


@pytest.mark.parametrize(
    "changed",
    [
        {"user": "other"},
        {"item": "other"},
        {"value": 1.0},
        {"kind": "click"},
        {"context": {"a": 1}},
        {"ts": T0 + timedelta(seconds=1)},
    ],
)
def test_a_reused_idempotency_key_for_another_event_is_refused(sqlite_store, changed):
    from dayzero.online.store import IdempotencyConflictError

    store = sqlite_store
    original = Event("u", "i", value=4.0, ts=T0, idempotency_key="k")
    store.append_events([original])
    name = next(iter(changed))
    with pytest.raises(IdempotencyConflictError, match=f"another {name}"):
        store.append_events([Event("x", "y"), dataclasses.replace(original, **changed)])
    assert store.count_events() == 1  # nothing of the refused batch
    with pytest.raises(IdempotencyConflictError, match=r"events\[1\]"):
        store.append_events(
            [Event("v", "i", idempotency_key="z"), Event("v", "j", idempotency_key="z")]
        )
    assert store.count_events() == 1


def test_bad_arguments(store):
    with pytest.raises(SchemaError, match="pass Event objects"):
        store.append_events([("u", "i")])
    with pytest.raises(SchemaError, match="must be a list"):
        store.append_events(Event("u", "i"))
    with pytest.raises(SchemaError, match="limit=-1 is negative"):
        store.events(limit=-1)
    with pytest.raises(SchemaError, match="after must be an int"):
        store.events(after="3")
    with pytest.raises(SchemaError, match="item id is empty"):
        store.get_item("")


# --- durability, concurrency, lifecycle --------------------------------------------------------


def test_reopen_keeps_everything(store_url):
    with open_store(store_url) as first:
        ids = first.append_events([_event(n, context={"ü": n}) for n in range(5)])
        first.upsert_items([EntityRecord("m", "text", {"a": [1]})])
        first.upsert_users([EntityRecord("u", "profile")])
        before = (first.events(), first.items(), first.users())
    with open_store(store_url) as second:
        assert (second.events(), second.items(), second.users()) == before
        more = second.append_events([_event(9)])
        assert more[0] > ids[-1]


def test_closed_store_refuses_use(store_url):
    store = open_store(store_url)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosedError, match="open it again"):
        store.events()
    with pytest.raises(StoreClosedError):
        store.append_events([_event(1)])
    # The per-request reads that bypass SQLAlchemy's Connection (SqlEventStore._raw_rows).
    for read in (store.marks, lambda: store.events(user="u1"), lambda: store.get_toplist("v", "u")):
        with pytest.raises(StoreClosedError):
            read()


def test_concurrent_threads_lose_nothing(store):
    def writer(name: str) -> None:
        for batch in range(15):
            store.append_events([Event(name, f"{batch}-{n}") for n in range(10)])

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = store.events()
    assert len(events) == 300 == store.count_events()
    assert len({e.id for e in events}) == 300
    for name in ("t1", "t2"):
        assert {e.item for e in events if e.user == name} == {
            f"{b}-{n}" for b in range(15) for n in range(10)
        }


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    from dayzero.online.store import Event, open_store

    store = open_store(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    for batch in range(40):
        store.append_events([Event("p", f"{batch}-{n}", value=batch) for n in range(25)])
    store.close()
    """
)


def test_other_process_writes_while_this_one_reads(store_url):
    with open_store(store_url) as store:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, store_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.stdout.readline().strip() == "ready"
            writer.stdin.write("go\n")
            writer.stdin.flush()
            counts = []
            while writer.poll() is None:
                counts.append(store.count_events())
                # Every event up to a watermark is visible: no holes behind it.
                watermark = store.last_event_id()
                assert [e.id for e in store.events(upto=watermark)] == list(range(1, watermark + 1))
            assert writer.wait(timeout=60) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
        assert counts == sorted(counts)
        assert store.count_events() == 1000
        assert [e.value for e in store.events()][::25] == [float(b) for b in range(40)]


def test_sqlite_settings(tmp_path):
    store = open_store(tmp_path / "s.db", busy_timeout=2.5)
    with store, store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500


def test_sqlite_writer_waits_then_fails_on_a_held_lock(tmp_path):
    path = tmp_path / "locked.db"
    with open_store(path, busy_timeout=0.1) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(sa.exc.OperationalError, match="locked"):
                store.append_events([_event(1)])
            assert store.count_events() == 0  # readers are not blocked by the writer
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert len(store.append_events([_event(1)])) == 1


def test_open_store_url_forms(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.append_events([_event(1)])
    with open_store(tmp_path / "a.db") as store:
        assert store.count_events() == 1 and store.dialect == "sqlite"
    with open_store(str(tmp_path / "new" / "dir" / "b.db")) as store:
        assert store.count_events() == 0
    for bad in (":memory:", "sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="in-memory"):
            open_store(bad)
    with pytest.raises(ValueError, match="unsupported store URL 'mysql://u:\\*\\*\\*@h/db'"):
        open_store("mysql://u:secret@h/db")
    with pytest.raises(ValueError, match="busy_timeout"):
        open_store(tmp_path / "c.db", busy_timeout=0)


def test_plain_postgresql_url_uses_psycopg(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with open_store(plain) as store:
        assert store.dialect == "postgresql"
        assert store._engine.dialect.driver == "psycopg"
        store.append_events([_event(1)])
    with open_store(postgres_url) as store:
        assert store.count_events() == 1


# --- precomputed top-K lists (schema step 4) ---------------------------------------------------


def _toplist(user: str = "u1", version: str = "v000001", **changes) -> TopList:
    values = dict(
        version=version,
        user=user,
        items=["i2", "i3"],
        scores=[0.75, 0.5],
        vector=np.array([0.25, -1.5, 3.0], dtype=np.float32),
        new_user=False,
        event_mark=0,
        user_mark=0,
        item_mark=0,
        k=10,
    )
    return TopList(**{**values, **changes})


def test_toplists_round_trip_with_the_users_news(store):
    store.append_events([Event(user="u1", item="i1"), Event(user="u2", item="i1")])
    store.upsert_users([EntityRecord("u3", "a profile")])
    assert store.known_user_ids() == ["u1", "u2", "u3"]
    marks = dict(event_mark=store.last_event_id(), user_mark=store.last_seq("users"))
    assert store.put_toplists([_toplist(**marks), _toplist("u3", **marks)]) == 2
    got = store.get_toplist("v000001", "u1")
    assert got.fresh and (got.last_event, got.profile_seq) == (1, 0)
    assert got.toplist.items == ["i2", "i3"] and got.toplist.scores == [0.75, 0.5]
    np.testing.assert_array_equal(got.toplist.vector, [0.25, -1.5, 3.0])
    assert got.toplist.k == 10 and got.toplist.vector.dtype == np.float32
    assert store.get_toplist("v000001", "u2") is None
    assert store.get_toplist("v000002", "u1") is None
    # News after the marks: an event of u1, a profile of u3; the other list stays fresh.
    store.append_events([Event(user="u1", item="i9")])
    store.upsert_users([EntityRecord("u3", "changed")])
    assert not store.get_toplist("v000001", "u1").fresh
    assert not store.get_toplist("v000001", "u3").fresh
    # Replacing a list keeps one row per (version, user).
    store.put_toplists([_toplist(items=["i4"], scores=[1.0], event_mark=3)])
    assert store.get_toplist("v000001", "u1").toplist.items == ["i4"]
    assert store.get_toplist("v000001", "u1").fresh
    assert store.count_toplists() == 2 and store.has_toplists("v000001")


def test_toplists_are_deleted_by_version(store):
    store.put_toplists([_toplist(), _toplist(version="v2"), _toplist("u2", version="v3")])
    assert store.delete_toplists(keep="v3") == 2
    assert store.count_toplists() == store.count_toplists("v3") == 1
    assert not store.has_toplists("v2")
    assert store.delete_toplists() == 1 and store.count_toplists() == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scores": [1.0]}, "2 items but 1 scores"),
        ({"scores": [1.0, math.nan]}, "finite"),
        ({"scores": [1.0, 1e39]}, "finite float32"),
        ({"vector": np.array([0.0, np.inf])}, r"toplists\[0\].vector"),
        ({"items": ["ok", "a/b"]}, r"toplists\[0\].items\[1\]"),
        ({"k": 1}, "k=1 must be >= 1 and >= the 2 items"),
        ({"event_mark": 1.5}, "event_mark must be an int"),
        ({"user": ""}, r"toplists\[0\].user"),
    ],
)
def test_bad_toplists_are_refused(sqlite_store, changes, message):
    with pytest.raises(SchemaError, match=message):
        sqlite_store.put_toplists([_toplist(**changes)])
    with pytest.raises(SchemaError, match="must be a TopList"):
        sqlite_store.put_toplists([{"user": "u1"}])
    assert sqlite_store.count_toplists() == 0


def test_a_users_history_reads_the_same_on_the_fast_path(store):
    # events(user=...) alone is read on a pooled driver connection (every answer that misses
    # the user cache); with any bound it goes through SQLAlchemy. Both must give the same.
    context = {"page": "détail", "中文": ["推荐", 1, 2.5, True, None], "n": {"a": 1}}
    store.append_events(
        [
            _event(1, context=context, idempotency_key="k-1"),
            _event(2, user="u2"),
            Event(user="u1", item="i3", kind="rating", value=4.5, ts=T0),
            Event(user="u1", item="i4", value=7),
        ]
    )
    fast = store.events(user="u1")
    general = store.events(user="u1", limit=100)
    assert [e.item for e in fast] == ["i1", "i3", "i4"]
    assert fast == general
    assert fast[0].context == context and fast[0].idempotency_key == "k-1"
    assert isinstance(fast[2].value, float) and fast[2].value == 7.0
    assert fast[0].ts.tzinfo is not None
    assert store.events(user="nobody") == []
    with pytest.raises(SchemaError):
        store.events(user="")
    assert [store.count_user_events("u1", n) for n in (0, 2, 3, 10)] == [0, 2, 3, 3]
    assert store.count_user_events("nobody", 10) == 0
    with pytest.raises(SchemaError, match="negative"):
        store.count_user_events("u1", -1)


def test_marks_are_the_three_change_counters(store):
    assert store.marks() == (0, 0, 0)
    store.append_events([Event(user="u1", item="i1"), Event(user="u1", item="i2")])
    store.upsert_users([EntityRecord("u1", "x")])
    store.upsert_items([EntityRecord("i1", "y"), EntityRecord("i2", "z")])
    assert store.marks() == (2, 1, 2)
    assert store.marks() == (
        store.last_event_id(),
        store.last_seq("users"),
        store.last_seq("items"),
    )
