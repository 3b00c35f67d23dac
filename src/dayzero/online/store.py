"""Event store: users, items and an append-only event log, on SQLite or PostgreSQL.

One SQLAlchemy Core implementation serves both databases. :func:`open_store` takes a file path
(or ``sqlite:///path``) for the embedded default, or a ``postgresql+psycopg://`` URL to scale out.

Guarantees
----------
* Writes are short transactions, committed before the call returns. On SQLite the database runs
  in WAL mode with ``synchronous=FULL``, so an acknowledged write survives ``kill -9`` and power
  loss; readers never block the writer.
* One writer at a time: a process-local lock, plus ``BEGIN IMMEDIATE`` on SQLite and a table
  lock on PostgreSQL across processes. Serial writers make event ids commit in increasing order,
  so ``last_event_id()`` is a safe watermark: every event with a smaller id is already visible.
* Items and users carry a ``seq`` that grows with every insert *and* update, so
  ``items(after_seq=s)`` returns everything added or changed since ``s`` was seen.
* An event may carry an ``idempotency_key``: an event whose key is already stored is not stored
  again (its first id is returned), so a client that retries a batch it got no answer for never
  writes it twice. The same key on a different event is refused (:class:`IdempotencyConflictError`).

Ids and times
-------------
One rule for every user and item id, on every path (:func:`id_problem`): 1 to 256 characters,
not all spaces, valid Unicode, no ``/`` and no control characters, and not ``.`` or ``..``, so
that any stored id can be read back as one URL path segment. Event times lie between
:data:`MIN_TS` and :data:`MAX_TS`; a row outside them (written by an older release) is read back
clamped to that range, never an error.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with open_store(folder / "events.db") as store:
...     store.append_events([Event(user="u1", item="i1", value=4.0)])
...     [(e.user, e.item, e.value) for e in store.events()]
[1]
[('u1', 'i1', 4.0)]
"""

from __future__ import annotations

import json
import math
import numbers
import re
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from dayzero.core.schema import SchemaError
from dayzero.online import migrations
from dayzero.online.migrations import EVENT_ID, SchemaVersionError

__all__ = [
    "MAX_TS",
    "MIN_TS",
    "EntityRecord",
    "Event",
    "EventIds",
    "EventStore",
    "IdempotencyConflictError",
    "SchemaError",
    "SchemaVersionError",
    "SqlEventStore",
    "StoreClosedError",
    "id_problem",
    "open_store",
]

MAX_ID_LENGTH = 256
MAX_KEY_LENGTH = 128
KIND_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
EVENT_COLUMNS = ("id", "user", "item", "kind", "value", "ts", "context")
#: Event times outside [MIN_TS, MAX_TS] are refused: far outside any interaction log, and near
#: the ends of ``datetime`` an offset such as +14:00 overflows when converted to UTC.
MIN_TS = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_QUERY_CHUNK = 500  # keys per IN (...) query
_PG_MIGRATION_LOCK = 0x6461797A65726F  # "dayzero": serialises concurrent first opens


class StoreClosedError(RuntimeError):
    """Raised when a closed store is used."""


class IdempotencyConflictError(SchemaError):
    """An idempotency key that is already stored (or repeated in the batch) names a different
    event: the client reused a key it must not reuse."""


class EventIds(list):
    """The ids :meth:`EventStore.append_events` returns, one per event in input order.

    Attributes
    ----------
    new : int
        Events stored by this call; the others were already stored under their idempotency key
        (or repeat one within the batch) and got that event's id.
    """

    def __init__(self, ids: Sequence[int] = (), new: int | None = None) -> None:
        super().__init__(ids)
        self.new = len(self) if new is None else new


@dataclass(frozen=True)
class EntityRecord:
    """A user or an item: free text, JSON attributes, and the store's change counter.

    Parameters
    ----------
    id : str
        Non-empty, at most 256 characters.
    text : str
        Free text (a profile, a description); may be empty.
    fields : dict
        JSON-serialisable attributes.
    seq : int
        Assigned by the store on every insert or update; 0 before insert.
    """

    id: str
    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True)
class Event:
    """One interaction: ``user`` did ``kind`` to ``item`` with ``value`` at ``ts``.

    Parameters
    ----------
    user, item : str
        Non-empty ids, at most 256 characters (they need not exist as records).
    kind : str
        A short identifier (letters, digits, ``_``; at most 32), e.g. ``rating``, ``click``.
    value : float
        A finite number (a rating, 1.0 for an implicit signal).
    ts : datetime, optional
        Timezone-aware; stored in UTC with microsecond precision. The store fills now when None.
    context : dict
        JSON-serialisable extra information (device, page, query...).
    id : int
        Assigned by the store, strictly increasing; 0 before insert.
    idempotency_key : str, optional
        A client-chosen unique key (1 to 128 characters, e.g. a UUID): an event whose key is
        already stored is not stored again.
    """

    user: str
    item: str
    kind: str = "rating"
    value: float = 1.0
    ts: datetime | None = None
    context: dict[str, Any] = field(default_factory=dict)
    id: int = 0
    idempotency_key: str | None = None


@dataclass(frozen=True)
class TopList:
    """A precomputed top-K list of one user under one model version (schema step 4).

    Parameters
    ----------
    version, user : str
        The model version the list was ranked by, and the user.
    items : list of str
        Item ids, best first; the user's seen items are left out.
    scores : list of float
        Their scores (inner products with ``vector``), best first; stored as float32.
    vector : ndarray of float32
        The user's query vector: items added after ``item_mark`` are scored with it at read time.
    new_user : bool
        Whether the model served the user as brand-new (no trained profile).
    event_mark, user_mark, item_mark : int
        What the list saw: every event with ``id <= event_mark``, every profile write with
        ``seq <= user_mark``, every item write with ``seq <= item_mark``.
    k : int
        The length asked for: a shorter list holds every item the user had not seen.
    """

    version: str
    user: str
    items: list[str]
    scores: list[float]
    vector: np.ndarray
    new_user: bool
    event_mark: int
    user_mark: int
    item_mark: int
    k: int


@dataclass(frozen=True)
class StoredTopList:
    """A :class:`TopList` as read back, with what the store has learnt about its user since.

    Attributes
    ----------
    toplist : TopList
    last_event : int
        The user's largest event id now (0 with no event).
    profile_seq : int
        The ``seq`` of the user's profile record now (0 with no record).
    """

    toplist: TopList
    last_event: int
    profile_seq: int

    @property
    def fresh(self) -> bool:
        """No event and no profile write of the user since the list was computed."""
        t = self.toplist
        return self.last_event <= t.event_mark and self.profile_seq <= t.user_mark


class EventStore(ABC):
    """Users, items and an append-only event log.

    Every write is committed before the method returns. Reads see every write committed before
    they start. Implementations are safe to share between threads.
    """

    @abstractmethod
    def upsert_items(self, records: Sequence[EntityRecord]) -> list[int]:
        """Insert or replace items; returns each record's new ``seq`` (in input order).

        A record whose id repeats within one call is stored once, from its last occurrence.
        """

    @abstractmethod
    def upsert_users(self, records: Sequence[EntityRecord]) -> list[int]:
        """Insert or replace users; returns each record's new ``seq`` (see :meth:`upsert_items`)."""

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> EventIds:
        """Append events in one transaction, durable before return; returns their ids in order.

        An event whose ``idempotency_key`` is already stored (or appears earlier in the batch)
        is not stored again: its position gets the stored event's id (``EventIds.new`` counts
        the events actually stored). A key that names a different user, item, kind, value,
        context or (when given) time raises :class:`IdempotencyConflictError`, and nothing of
        the batch is stored.
        """

    @abstractmethod
    def get_item(self, id: str) -> EntityRecord | None:
        """The item with this id, or None."""

    @abstractmethod
    def get_user(self, id: str) -> EntityRecord | None:
        """The user with this id, or None."""

    def get_items(self, ids: Sequence[str]) -> dict[str, EntityRecord]:
        """The stored items among ``ids``, by id (ids not stored are absent).

        A batch read: a list of recommendations gets its titles in one call. This default asks
        :meth:`get_item` per id; :class:`SqlEventStore` answers with one query per 500 ids.
        """
        found = {}
        for id in dict.fromkeys(_check_batch(ids, "ids")):
            record = self.get_item(id)
            if record is not None:
                found[id] = record
        return found

    @abstractmethod
    def items(self, after_seq: int = 0) -> list[EntityRecord]:
        """Items inserted or updated after ``after_seq``, ordered by ``seq``."""

    @abstractmethod
    def users(self, after_seq: int = 0) -> list[EntityRecord]:
        """Users inserted or updated after ``after_seq``, ordered by ``seq``."""

    @abstractmethod
    def events(
        self,
        after: int = 0,
        upto: int | None = None,
        user: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events with ``after < id <= upto`` (optionally of one user), ordered by id."""

    @abstractmethod
    def events_frame(self, after: int = 0, upto: int | None = None) -> pd.DataFrame:
        """Events with ``after < id <= upto`` as a DataFrame.

        Columns ``id, user, item, kind, value, ts, context``; ``ts`` is ``datetime64[us, UTC]``.
        """

    @abstractmethod
    def last_event_id(self) -> int:
        """The largest event id, 0 when empty: the watermark unit."""

    @abstractmethod
    def last_seq(self, table: Literal["items", "users"]) -> int:
        """The largest change counter of the items or the users, 0 when empty."""

    def marks(self) -> tuple[int, int, int]:
        """``(last_event_id(), last_seq("users"), last_seq("items"))``: what changed since a
        reader last looked (one query in :class:`SqlEventStore`)."""
        return self.last_event_id(), self.last_seq("users"), self.last_seq("items")

    @abstractmethod
    def count_events(self) -> int:
        """Number of stored events."""

    def count_user_events(self, user: str, at_most: int) -> int:
        """How many events ``user`` has, counted up to ``at_most`` (a bounded read: whether a
        history is short enough to read now)."""
        return min(len(self.events(user=user)), at_most)

    @abstractmethod
    def schema_version(self) -> int:
        """The database's schema version (see :mod:`dayzero.online.migrations`)."""

    @abstractmethod
    def known_user_ids(self) -> list[str]:
        """Every user with a profile record or an event, sorted."""

    @abstractmethod
    def put_toplists(self, toplists: Sequence[TopList]) -> int:
        """Insert or replace lists (one per version and user) in one transaction; returns how
        many were written."""

    @abstractmethod
    def get_toplist(self, version: str, user: str) -> StoredTopList | None:
        """The user's list under ``version`` with their last event id and profile seq now (one
        query), or None."""

    @abstractmethod
    def count_toplists(self, version: str | None = None) -> int:
        """Stored lists, of one version or of all."""

    def has_toplists(self, version: str) -> bool:
        """Whether any list of ``version`` is stored."""
        return self.count_toplists(version) > 0

    @abstractmethod
    def delete_toplists(self, version: str | None = None, keep: str | None = None) -> int:
        """Delete the lists of ``version`` (all versions when None) except those of ``keep``;
        returns how many were deleted."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tables() -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table, sa.Table]:
    """The schema at :data:`migrations.LATEST_VERSION` (a test checks they agree)."""
    metadata = sa.MetaData()

    def entity(name: str) -> sa.Table:
        return sa.Table(
            name,
            metadata,
            sa.Column("id", sa.String(MAX_ID_LENGTH), primary_key=True),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("fields", sa.JSON, nullable=False),
            sa.Column("seq", sa.BigInteger, nullable=False),
            sa.Column("created_at", sa.BigInteger, nullable=False),
            sa.Column("updated_at", sa.BigInteger, nullable=False),
        )

    events = sa.Table(
        "events",
        metadata,
        sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(MAX_ID_LENGTH), nullable=False),
        sa.Column("item", sa.String(MAX_ID_LENGTH), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=True),
        sa.Column("idempotency_key", sa.String(MAX_KEY_LENGTH), nullable=True),
        sqlite_autoincrement=True,
    )
    toplists = sa.Table(
        "toplists",
        metadata,
        sa.Column("version", sa.String(MAX_ID_LENGTH), primary_key=True),
        sa.Column("user", sa.String(MAX_ID_LENGTH), primary_key=True),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("scores", sa.LargeBinary, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("new_user", sa.Boolean, nullable=False),
        sa.Column("event_mark", sa.BigInteger, nullable=False),
        sa.Column("user_mark", sa.BigInteger, nullable=False),
        sa.Column("item_mark", sa.BigInteger, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    return metadata, entity("items"), entity("users"), events, toplists


METADATA, ITEMS, USERS, EVENTS, TOPLISTS = _tables()

# One writer per database per process, shared by every store object opened on it.
_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(key: str) -> threading.Lock:
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


# --- validation -------------------------------------------------------------------------------


def _micros(ts: datetime) -> int:
    return (ts - _EPOCH) // _MICROSECOND


_MIN_US = _micros(MIN_TS)
_MAX_US = _micros(MAX_TS)


def _from_micros(value: int) -> datetime:
    # Clamped: a row written before times were range-checked must not make reads fail.
    return _EPOCH + timedelta(microseconds=min(max(int(value), _MIN_US), _MAX_US))


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a user or item id, or None when it can (see the module notes).

    Examples
    --------
    >>> id_problem("movie-42") is None
    True
    >>> id_problem("a/b")
    "contains '/'; ids are single URL path segments, use another separator (e.g. ':')"
    """
    if not value.strip():
        return "is empty; give a non-empty id"
    if len(value) > MAX_ID_LENGTH:
        return (
            f"has {len(value)} characters; ids are at most {MAX_ID_LENGTH}, use a shorter id "
            "(e.g. a hash of the long one)"
        )
    if "/" in value:
        return "contains '/'; ids are single URL path segments, use another separator (e.g. ':')"
    if value in (".", ".."):
        return f"is {value!r}, which URLs read as a relative path; choose another id"
    if "\x00" in value:
        return "contains a NUL character; remove it"
    control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        return f"contains the control character {control!r}; remove it"
    return _unicode_problem(value)


def _unicode_problem(value: str) -> str | None:
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "contains an unpaired surrogate (not valid Unicode); decode the input as UTF-8, "
            "e.g. with errors='replace'"
        )
    return None


def _check_id(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(
            f"{name} must be a str, got {type(value).__name__} {value!r}; pass str(id)"
        )
    problem = id_problem(value)
    if problem is not None:
        raise SchemaError(f"{name} {problem}")
    return value


def check_ts(ts: datetime, name: str) -> int:
    """``ts`` (timezone-aware) as UTC microseconds, or SchemaError outside [MIN_TS, MAX_TS]."""
    try:
        micros = _micros(ts)
    except OverflowError:
        micros = None
    if micros is None or not _MIN_US <= micros <= _MAX_US:
        raise SchemaError(
            f"{name}={ts.isoformat()} is outside {MIN_TS.date()} .. {MAX_TS.date()} (UTC); "
            "send the time the event happened, or omit ts for the server's clock"
        )
    return micros


def _check_text(value: str, name: str) -> str:
    """``value`` if both databases can store it as text (no NUL, valid UTF-8), else SchemaError."""
    if "\x00" in value:
        raise SchemaError(f"{name} contains a NUL character; remove it")
    problem = _unicode_problem(value)
    if problem is not None:
        raise SchemaError(f"{name} {problem}")
    return value


def _check_json(value: Any, name: str) -> Any:
    """A plain-JSON copy of ``value`` (numpy scalars unwrapped, tuples as lists), or SchemaError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _check_text(value, name)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise SchemaError(f"{name} is {number}; JSON has no NaN/inf, store null or a number")
        return number
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(
                    f"{name} has a {type(key).__name__} key {key!r}; JSON object keys must be str"
                )
            _check_text(key, f"{name} key {key!r}")
            out[key] = _check_json(item, f"{name}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_check_json(item, f"{name}[{i}]") for i, item in enumerate(value)]
    raise SchemaError(
        f"{name} is a {type(value).__name__}, which is not JSON-serialisable; use str, number, "
        "bool, None, list or dict values"
    )


def _check_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaError(f"{name} must be a dict, got {type(value).__name__}; pass {{}} for none")
    return _check_json(value, name)


def _record_row(record: EntityRecord, name: str, now: int) -> dict[str, Any]:
    if not isinstance(record, EntityRecord):
        raise SchemaError(f"{name} is a {type(record).__name__}; pass EntityRecord objects")
    text = record.text
    if not isinstance(text, str):
        raise SchemaError(f"{name}.text must be a str, got {type(text).__name__}; use '' for none")
    _check_text(text, f"{name}.text")
    return {
        "id": _check_id(record.id, f"{name}.id"),
        "text": text,
        "fields": _check_object(record.fields, f"{name}.fields"),
        "created_at": now,
        "updated_at": now,
    }


def _event_row(event: Event, name: str, now: int) -> dict[str, Any]:
    if not isinstance(event, Event):
        raise SchemaError(f"{name} is a {type(event).__name__}; pass Event objects")
    kind = event.kind
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise SchemaError(
            f"{name}.kind={kind!r} is not a short identifier; use letters, digits and _ "
            "(at most 32, not starting with a digit), e.g. 'rating' or 'click'"
        )
    value = event.value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SchemaError(f"{name}.value must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SchemaError(f"{name}.value is {value}; pass a finite number")
    ts = event.ts
    if ts is None:
        ts_us = now
    elif not isinstance(ts, datetime):
        raise SchemaError(
            f"{name}.ts must be a datetime or None, got {type(ts).__name__} {ts!r}; "
            "pass a timezone-aware datetime"
        )
    elif ts.tzinfo is None or ts.utcoffset() is None:
        raise SchemaError(
            f"{name}.ts={ts.isoformat()} is naive; pass a timezone-aware datetime, "
            "e.g. datetime.now(timezone.utc) or ts.replace(tzinfo=timezone.utc)"
        )
    else:
        ts_us = check_ts(ts, f"{name}.ts")
    key = event.idempotency_key
    if key is not None and (
        not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH
    ):
        raise SchemaError(
            f"{name}.idempotency_key={key!r} must be a non-empty str of at most "
            f"{MAX_KEY_LENGTH} characters (e.g. a UUID), or None"
        )
    if key is not None:
        _check_text(key, f"{name}.idempotency_key")
    return {
        "user": _check_id(event.user, f"{name}.user"),
        "item": _check_id(event.item, f"{name}.item"),
        "kind": kind,
        "value": value,
        "ts": ts_us,
        "context": _check_object(event.context, f"{name}.context"),
        "received_at": now,
        "idempotency_key": key,
    }


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_TOPLIST_VALUES = (
    "items",
    "scores",
    "vector",
    "new_user",
    "event_mark",
    "user_mark",
    "item_mark",
    "k",
    "created_at",
)


def _last(column: sa.Column, *where: Any) -> Any:
    return sa.select(sa.func.coalesce(sa.func.max(column), 0)).where(*where).scalar_subquery()


# The statements of every request (see SqlEventStore._raw_rows), built once.
_MARKS = sa.select(_last(EVENTS.c.id), _last(USERS.c.seq), _last(ITEMS.c.seq))
_TOPLIST = sa.select(
    *(TOPLISTS.c[c] for c in ("version", "user", *_TOPLIST_VALUES[:-1])),
    _last(EVENTS.c.id, EVENTS.c.user == sa.bindparam("user")),
    sa.func.coalesce(
        sa.select(USERS.c.seq).where(USERS.c.id == sa.bindparam("user")).scalar_subquery(), 0
    ),
).where(TOPLISTS.c.version == sa.bindparam("version"), TOPLISTS.c.user == sa.bindparam("user"))
_USER_EVENTS = (
    sa.select(*(EVENTS.c[name] for name in EVENT_COLUMNS), EVENTS.c.idempotency_key)
    .where(EVENTS.c.user == sa.bindparam("user"))
    .order_by(EVENTS.c.id)
)


_USER_EVENT_COUNT = sa.select(sa.func.count()).select_from(
    sa.select(EVENTS.c.id)
    .where(EVENTS.c.user == sa.bindparam("user"))
    .limit(sa.bindparam("at_most"))
    .subquery()
)


def _same(value: Any) -> Any:
    return value


def _toplist_row(toplist: Any, name: str, now: int) -> dict[str, Any]:
    if not isinstance(toplist, TopList):
        raise SchemaError(f"{name} must be a TopList, not {type(toplist).__name__}")
    items = [_check_id(i, f"{name}.items[{n}]") for n, i in enumerate(toplist.items)]
    scores = np.asarray(toplist.scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(items):
        raise SchemaError(f"{name}: {len(items)} items but {len(scores)} scores; give one each")
    if not np.isfinite(scores).all() or np.abs(scores).max(initial=0) > _FLOAT32_MAX:
        raise SchemaError(f"{name}.scores: every score must be a finite float32 number")
    vector = np.asarray(toplist.vector, dtype="<f4").reshape(-1)
    if not vector.size or not np.isfinite(vector).all():
        raise SchemaError(f"{name}.vector: give the user's query vector, finite numbers")
    marks = {}
    for mark in ("event_mark", "user_mark", "item_mark", "k"):
        marks[mark] = _check_bound(getattr(toplist, mark), f"{name}.{mark}")
    if marks["k"] < 1 or len(items) > marks["k"]:
        raise SchemaError(f"{name}: k={marks['k']} must be >= 1 and >= the {len(items)} items")
    return {
        "version": _check_id(toplist.version, f"{name}.version"),
        "user": _check_id(toplist.user, f"{name}.user"),
        "items": items,
        "scores": scores.astype("<f4").tobytes(),  # 4 bytes a score: what the index returns
        "vector": vector.tobytes(),
        "new_user": bool(toplist.new_user),
        **marks,
        "created_at": now,
    }


def _check_batch(values: Any, name: str) -> Sequence[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise SchemaError(f"{name} must be a list, got {type(values).__name__}")
    return values


def _check_bound(value: Any, name: str, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SchemaError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


# --- the store --------------------------------------------------------------------------------


class SqlEventStore(EventStore):
    """The :class:`EventStore` on SQLAlchemy Core (SQLite or PostgreSQL); use :func:`open_store`.

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
        Configured by :func:`open_store` (SQLite pragmas, transaction handling).
    lock_key : str
        Identifies the database for the process-local writer lock.
    """

    def __init__(self, engine: Engine, lock_key: str) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._insert = sqlite.insert if self._sqlite else postgresql.insert
        self._lock = _writer_lock(lock_key)
        self._closed = False
        self._compiled: dict[sa.Select, Any] = {}  # a module-level statement -> compiled form
        try:
            with self._write(None) as conn:
                migrations.upgrade(conn)
        except BaseException:
            engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def __repr__(self) -> str:
        return f"SqlEventStore({self.url!r})"

    # -- transactions --

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed; open it again with open_store(url)")

    @contextmanager
    def _write(self, table: sa.Table | None) -> Iterator[Connection]:
        """A write transaction holding the writer lock; ``table=None`` locks for migrations."""
        self._check_open()
        with self._lock, self._engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(dayzero_begin="BEGIN IMMEDIATE")
            with conn.begin():
                if not self._sqlite:
                    if table is None:
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
                    else:
                        # EXCLUSIVE blocks other writers, not readers, until commit.
                        conn.exec_driver_sql(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE")
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._check_open()
        with self._engine.connect() as conn:
            yield conn

    def _raw_rows(self, stmt: sa.Select, first: bool = False, **params: Any) -> list[tuple]:
        """The rows of a module-level read statement, on a pooled DBAPI connection.

        For the reads a server makes on every request: SQLAlchemy's per-execution work (cache
        key, and on SQLite the BEGIN and ROLLBACK statements) took 15x the query itself (230
        vs 13 us for :meth:`marks` on SQLite). One statement reads one snapshot in both
        databases, so no explicit transaction is needed. Values come back as the driver gives
        them (decode JSON columns with :meth:`_json`), and so do errors: the driver's, not
        SQLAlchemy's. ``first``: at most the first row.
        """
        self._check_open()
        compiled = self._compiled.get(stmt)
        if compiled is None:
            compiled = self._compiled[stmt] = stmt.compile(dialect=self._engine.dialect)
        bound = compiled.construct_params(params)
        args = [bound[n] for n in compiled.positiontup] if compiled.positional else bound
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(compiled.string, args)
                if first:
                    row = cursor.fetchone()
                    return [] if row is None else [row]
                return cursor.fetchall()
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool, which ends any transaction the driver opened

    def _json(self, value: Any) -> Any:
        """A JSON column's value as read by :meth:`_raw_rows` (SQLite gives the text)."""
        return json.loads(value) if self._sqlite else value

    # -- entities --

    def _upsert(self, table: sa.Table, records: Sequence[EntityRecord], name: str) -> list[int]:
        records = _check_batch(records, name)
        now = _micros(datetime.now(UTC))
        rows = [_record_row(r, f"{name}[{i}]", now) for i, r in enumerate(records)]
        if not rows:
            return []
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[row["id"]] = row  # keeps first position, last content
        with self._write(table) as conn:
            base = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0))).scalar()
            seqs = {}
            for offset, row in enumerate(latest.values(), start=int(base) + 1):
                row["seq"] = seqs[row["id"]] = offset
            stmt = self._insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={
                    "text": stmt.excluded.text,
                    "fields": stmt.excluded.fields,
                    "seq": stmt.excluded.seq,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
            conn.execute(stmt, list(latest.values()))
        return [seqs[row["id"]] for row in rows]

    def upsert_items(self, records: Sequence[EntityRecord]) -> list[int]:
        return self._upsert(ITEMS, records, "items")

    def upsert_users(self, records: Sequence[EntityRecord]) -> list[int]:
        return self._upsert(USERS, records, "users")

    def _get(self, table: sa.Table, id: str, name: str) -> EntityRecord | None:
        _check_id(id, name)
        with self._read() as conn:
            row = conn.execute(_entity_select(table).where(table.c.id == id)).first()
        return None if row is None else EntityRecord(*row)

    def get_item(self, id: str) -> EntityRecord | None:
        return self._get(ITEMS, id, "item id")

    def get_user(self, id: str) -> EntityRecord | None:
        return self._get(USERS, id, "user id")

    def get_items(self, ids: Sequence[str]) -> dict[str, EntityRecord]:
        given = _check_batch(ids, "ids")
        wanted = list(dict.fromkeys(_check_id(id, f"ids[{n}]") for n, id in enumerate(given)))
        found: dict[str, EntityRecord] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _QUERY_CHUNK):
                chunk = wanted[start : start + _QUERY_CHUNK]
                stmt = _entity_select(ITEMS).where(ITEMS.c.id.in_(chunk))
                for row in conn.execute(stmt):
                    found[row[0]] = EntityRecord(*row)
        return found

    def _entities(self, table: sa.Table, after_seq: int) -> list[EntityRecord]:
        after_seq = _check_bound(after_seq, "after_seq")
        stmt = _entity_select(table).where(table.c.seq > after_seq).order_by(table.c.seq)
        with self._read() as conn:
            return [EntityRecord(*row) for row in conn.execute(stmt)]

    def items(self, after_seq: int = 0) -> list[EntityRecord]:
        return self._entities(ITEMS, after_seq)

    def users(self, after_seq: int = 0) -> list[EntityRecord]:
        return self._entities(USERS, after_seq)

    def last_seq(self, table: Literal["items", "users"]) -> int:
        tables = {"items": ITEMS, "users": USERS}
        if table not in tables:
            raise SchemaError(f"table must be 'items' or 'users', not {table!r}")
        column = tables[table].c.seq
        with self._read() as conn:
            return int(conn.execute(sa.select(_last(column))).scalar())

    # -- events --

    def append_events(self, events: Sequence[Event]) -> EventIds:
        events = _check_batch(events, "events")
        now = _micros(datetime.now(UTC))
        rows = [_event_row(e, f"events[{i}]", now) for i, e in enumerate(events)]
        if not rows:
            return EventIds()
        given_ts = [e.ts is not None for e in events]
        with self._write(EVENTS) as conn:
            stored = self._stored_keys(conn, rows)
            ids: list[int | None] = [None] * len(rows)
            first: dict[str, int] = {}  # key -> position of its first fresh row in the batch
            fresh: list[int] = []
            for pos, row in enumerate(rows):
                key = row["idempotency_key"]
                if key is not None and key in stored:
                    _same_event(stored[key], row, given_ts[pos], pos)
                    ids[pos] = int(stored[key]["id"])
                elif key is not None and key in first:
                    earlier = rows[first[key]]
                    _same_event(earlier, row, given_ts[pos] and given_ts[first[key]], pos)
                else:
                    if key is not None:
                        first[key] = pos
                    fresh.append(pos)
            new_ids = self._insert_events(conn, [rows[p] for p in fresh])
        for pos, new_id in zip(fresh, new_ids, strict=True):
            ids[pos] = new_id
        for pos, row in enumerate(rows):
            if ids[pos] is None:  # repeats a key given earlier in this batch
                ids[pos] = ids[first[row["idempotency_key"]]]
        return EventIds(ids, new=len(fresh))

    def _stored_keys(self, conn: Connection, rows: list[dict[str, Any]]) -> dict[str, Any]:
        keys = sorted({r["idempotency_key"] for r in rows if r["idempotency_key"] is not None})
        stored: dict[str, Any] = {}
        if keys and not self._sqlite:
            # psycopg prepares a statement run 5 times; PostgreSQL's generic plan for it cannot
            # hash the IN list, and once the table outgrows the index's estimated advantage
            # (~40,000 events without fresh statistics) it scans the table comparing every
            # row with each of the 500 keys: 2-3 s a batch. A plan made for the actual keys
            # hashes them or uses the unique index.
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        columns = [EVENTS.c[n] for n in ("id", "user", "item", "kind", "value", "ts", "context")]
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            stmt = sa.select(EVENTS.c.idempotency_key, *columns).where(
                EVENTS.c.idempotency_key.in_(chunk)
            )
            for key, *values in conn.execute(stmt):
                stored[key] = dict(zip(("id", "user", "item", "kind", "value", "ts", "context"),
                                       values, strict=True))  # fmt: skip
        return stored

    def _insert_events(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        if not self._sqlite:
            stmt = sa.insert(EVENTS).returning(EVENTS.c.id, sort_by_parameter_order=True)
            return list(conn.execute(stmt, rows).scalars())
        # SQLAlchemy runs RETURNING row by row on SQLite; a plain executemany is ~2x faster,
        # and AUTOINCREMENT under the exclusive write lock hands out consecutive ids.
        conn.execute(sa.insert(EVENTS), rows)
        last = int(conn.execute(sa.select(sa.func.max(EVENTS.c.id))).scalar())
        return list(range(last - len(rows) + 1, last + 1))

    def _event_select(
        self, after: int, upto: int | None, user: str | None, limit: int | None
    ) -> sa.Select:
        after = _check_bound(after, "after")
        upto = _check_bound(upto, "upto", optional=True)
        limit = _check_bound(limit, "limit", optional=True)
        stmt = sa.select(*(EVENTS.c[name] for name in EVENT_COLUMNS)).where(EVENTS.c.id > after)
        if upto is not None:
            stmt = stmt.where(EVENTS.c.id <= upto)
        if user is not None:
            stmt = stmt.where(EVENTS.c.user == _check_id(user, "user"))
        stmt = stmt.order_by(EVENTS.c.id)
        if limit is not None:
            if limit < 0:
                raise SchemaError(f"limit={limit} is negative; pass None for no limit")
            stmt = stmt.limit(limit)
        return stmt

    def events(
        self,
        after: int = 0,
        upto: int | None = None,
        user: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        if (
            user is not None
            and type(after) is int
            and after == 0
            and upto is None
            and limit is None
        ):
            # A user's history: read on every answer that misses the user cache.
            rows = self._raw_rows(_USER_EVENTS, user=_check_id(user, "user"))
            decode = self._json
        else:
            stmt = self._event_select(after, upto, user, limit)
            with self._read() as conn:
                rows = list(conn.execute(stmt.add_columns(EVENTS.c.idempotency_key)))
            decode = _same
        return [
            Event(
                user=user_,
                item=item,
                kind=kind,
                value=float(value),
                ts=_from_micros(ts),
                context=decode(context),
                id=id_,
                idempotency_key=key,
            )
            for id_, user_, item, kind, value, ts, context, key in rows
        ]

    def events_frame(self, after: int = 0, upto: int | None = None) -> pd.DataFrame:
        stmt = self._event_select(after, upto, None, None)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        frame = pd.DataFrame.from_records(rows, columns=list(EVENT_COLUMNS))
        frame = frame.astype({"id": "int64", "user": object, "item": object, "kind": object})
        frame["value"] = frame["value"].astype("float64")
        micros = frame["ts"].astype("int64").clip(_MIN_US, _MAX_US)  # see _from_micros
        frame["ts"] = pd.to_datetime(micros, unit="us", utc=True)
        return frame

    def last_event_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(_last(EVENTS.c.id))).scalar())

    def marks(self) -> tuple[int, int, int]:
        ((events, users, items),) = self._raw_rows(_MARKS, first=True)
        return int(events), int(users), int(items)

    def count_events(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar())

    def count_user_events(self, user: str, at_most: int) -> int:
        at_most = _check_bound(at_most, "at_most")
        if at_most < 0:
            raise SchemaError(f"at_most={at_most} is negative; count up to 0 or more")
        ((count,),) = self._raw_rows(
            _USER_EVENT_COUNT, first=True, user=_check_id(user, "user"), at_most=at_most
        )
        return int(count)

    # -- precomputed lists --

    def known_user_ids(self) -> list[str]:
        union = sa.union(sa.select(USERS.c.id), sa.select(EVENTS.c.user)).subquery()
        with self._read() as conn:
            return sorted(conn.execute(sa.select(union.c[0])).scalars())

    def put_toplists(self, toplists: Sequence[TopList]) -> int:
        toplists = _check_batch(toplists, "toplists")
        now = _micros(datetime.now(UTC))
        latest = {}
        for n, t in enumerate(toplists):
            row = _toplist_row(t, f"toplists[{n}]", now)
            latest[row["version"], row["user"]] = row
        if not latest:
            return 0
        with self._write(TOPLISTS) as conn:
            stmt = self._insert(TOPLISTS)
            stmt = stmt.on_conflict_do_update(
                index_elements=[TOPLISTS.c.version, TOPLISTS.c.user],
                set_={c: stmt.excluded[c] for c in _TOPLIST_VALUES},
            )
            conn.execute(stmt, list(latest.values()))
        return len(latest)

    def get_toplist(self, version: str, user: str) -> StoredTopList | None:
        _check_id(version, "version")
        _check_id(user, "user")
        rows = self._raw_rows(_TOPLIST, first=True, version=version, user=user)
        if not rows:
            return None
        version_, user_, items, scores, vector, new_user, *marks, last, seq = rows[0]
        toplist = TopList(
            version_,
            user_,
            list(self._json(items)),
            np.frombuffer(scores, dtype="<f4").astype(float).tolist(),
            np.frombuffer(vector, dtype="<f4").copy(),
            bool(new_user),
            *(int(m) for m in marks),
        )
        return StoredTopList(toplist, int(last), int(seq))

    def count_toplists(self, version: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(TOPLISTS)
        if version is not None:
            stmt = stmt.where(TOPLISTS.c.version == _check_id(version, "version"))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar())

    def has_toplists(self, version: str) -> bool:
        found = sa.select(TOPLISTS.c.user).where(
            TOPLISTS.c.version == _check_id(version, "version")
        )
        with self._read() as conn:
            return conn.execute(found.limit(1)).first() is not None

    def delete_toplists(self, version: str | None = None, keep: str | None = None) -> int:
        stmt = sa.delete(TOPLISTS)
        if version is not None:
            stmt = stmt.where(TOPLISTS.c.version == _check_id(version, "version"))
        if keep is not None:
            stmt = stmt.where(TOPLISTS.c.version != _check_id(keep, "keep"))
        with self._write(TOPLISTS) as conn:
            return int(conn.execute(stmt).rowcount)

    def schema_version(self) -> int:
        with self._read() as conn:
            return migrations.current_version(conn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.dispose()


def _same_event(stored: Mapping[str, Any], row: Mapping[str, Any], compare_ts: bool, pos: int):
    """Raise IdempotencyConflictError unless ``row`` is the event stored under its key."""
    names = ["user", "item", "kind", "value", "context"] + (["ts"] if compare_ts else [])
    differ = [n for n in names if stored[n] != row[n]]
    if differ:
        raise IdempotencyConflictError(
            f"events[{pos}].idempotency_key={row['idempotency_key']!r} is already used by an "
            f"event with another {', '.join(differ)}; use a new key for a new event"
        )


def _entity_select(table: sa.Table) -> sa.Select:
    return sa.select(table.c.id, table.c.text, table.c.fields, table.c.seq)


# --- opening ----------------------------------------------------------------------------------


def _sqlite_engine(path: Path, busy_timeout: float) -> Engine:
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        sa.URL.create("sqlite", database=str(path)),
        # isolation_level=None: the driver issues no BEGIN of its own; the "begin" hook below
        # does, so a write can take the lock up front (BEGIN IMMEDIATE) instead of upgrading
        # a read lock mid-transaction, which fails at once instead of waiting busy_timeout.
        connect_args={"timeout": busy_timeout, "check_same_thread": False, "isolation_level": None},
        # A connection per concurrent reader (file handles, cheap): the server's event loop
        # reads too (ServiceState.recommend_user_nowait) and must not wait for one behind
        # its 40 thread-pool threads.
        pool_size=5,
        max_overflow=64,
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"SQLite refused WAL mode for {path} (got {mode!r})")
        # FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("dayzero_begin", "BEGIN"))

    return engine


def open_store(url: str | Path, *, busy_timeout: float = 5.0) -> SqlEventStore:
    """Open (creating and migrating when needed) an event store.

    Parameters
    ----------
    url : str or Path
        A file path or ``sqlite:///path`` for SQLite; ``postgresql+psycopg://user:pw@host/db``
        (or ``postgresql://``, which means the same) for PostgreSQL. A PostgreSQL URL may carry
        ``?options=-csearch_path%3Dmyschema`` to use a schema other than ``public``.
    busy_timeout : float
        SQLite only: seconds a writer waits for another process's write lock before failing.

    Returns
    -------
    SqlEventStore
        Migrated to the latest schema version.

    Raises
    ------
    SchemaVersionError
        When the store was written by a newer dayzero.
    ValueError
        For an unsupported URL.
    """
    if busy_timeout <= 0 or not math.isfinite(busy_timeout):
        raise ValueError(f"busy_timeout={busy_timeout} must be a positive number of seconds")
    engine, lock_key = _make_engine(url, busy_timeout)
    return SqlEventStore(engine, lock_key)


def _make_engine(url: str | Path, busy_timeout: float = 5.0) -> tuple[Engine, str]:
    """The configured engine for ``url`` and the key of its process-local writer lock."""
    if isinstance(url, str) and url.strip() in ("", ":memory:"):
        raise ValueError(
            "an in-memory SQLite store would lose every event on exit; give a file path"
        )
    if isinstance(url, Path) or "://" not in str(url):
        engine = _sqlite_engine(Path(url), busy_timeout)
        return engine, f"sqlite:{engine.url.database}"
    parsed = sa.make_url(str(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _make_engine(parsed.database or "", busy_timeout)
    if backend in ("postgresql", "postgres"):
        if "+" not in parsed.drivername:  # psycopg 3 is the driver we ship, not psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, pool_pre_ping=True)
        return engine, parsed.render_as_string(hide_password=False)
    raise ValueError(
        f"unsupported store URL {parsed.render_as_string(hide_password=True)!r}; use a file path, "
        "sqlite:///path or postgresql+psycopg://user:password@host:port/database"
    )
