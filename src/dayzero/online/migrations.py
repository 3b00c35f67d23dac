"""Versioned schema migrations for the event store.

Each :class:`Migration` is one numbered step. A store's ``schema_version`` table holds one row per
applied step; :func:`upgrade` applies the missing steps, in order, inside the caller's transaction,
so a store is never left half-migrated. A step describes the tables as they were *at that step*
(never the store's current table objects), so replaying history on an empty database always
builds the same schema.

Timestamps are stored as integer microseconds since the Unix epoch, UTC: exact on SQLite and
PostgreSQL alike, ordered by plain integer comparison, and cheap to turn into a pandas column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

VERSION_TABLE = "schema_version"

# Integer PRIMARY KEY is SQLite's rowid alias (BIGINT is not); PostgreSQL gets BIGSERIAL.
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class SchemaVersionError(RuntimeError):
    """Raised when a store's schema is newer than this version of dayzero understands."""


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply(conn)`` moves the schema from ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _version_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        VERSION_TABLE,
        metadata,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("applied_at", sa.String(40), nullable=False),
    )


def _entity_table(name: str, metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Index(f"ix_{name}_seq", "seq", unique=True),
    )


def _v1_initial(conn: Connection) -> None:
    metadata = sa.MetaData()
    _entity_table("items", metadata)
    _entity_table("users", metadata)
    sa.Table(
        "events",
        metadata,
        sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("item", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Index("ix_events_user", "user"),
        sa.Index("ix_events_item", "item"),
        # AUTOINCREMENT: SQLite never reuses an id, so the watermark stays a strict order.
        sqlite_autoincrement=True,
    )
    metadata.create_all(conn)


def _v2_received_at(conn: Connection) -> None:
    # received_at is the server's clock at append time (ts is the client's claim); rows stored
    # before this step keep NULL rather than a made-up value.
    conn.execute(sa.text("ALTER TABLE events ADD COLUMN received_at BIGINT"))
    events = sa.Table("events", sa.MetaData(), sa.Column("ts", sa.BigInteger))
    sa.Index("ix_events_ts", events.c.ts).create(conn)


def _v3_idempotency_key(conn: Connection) -> None:
    # NULL for events sent without a key (all older rows): both databases let a UNIQUE index
    # hold any number of NULLs, so only real keys must be unique.
    conn.execute(sa.text("ALTER TABLE events ADD COLUMN idempotency_key VARCHAR(128)"))
    events = sa.Table("events", sa.MetaData(), sa.Column("idempotency_key", sa.String(128)))
    sa.Index("ux_events_idempotency_key", events.c.idempotency_key, unique=True).create(conn)


def _v4_toplists(conn: Connection) -> None:
    # Precomputed top-K lists (dayzero.distributed.toplists), one row per (version, user). The
    # marks say what the list was computed from: a list is served only while the user has no
    # event after event_mark and no profile write after user_mark; items added after item_mark
    # are merged in at read time with the stored query vector.
    metadata = sa.MetaData()
    sa.Table(
        "toplists",
        metadata,
        sa.Column("version", sa.String(256), primary_key=True),
        sa.Column("user", sa.String(256), primary_key=True),
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
    metadata.create_all(conn)
    # A list's freshness check asks for a user's last event id: (user, id) answers it from the
    # index alone, where (user) alone visits every event of that user.
    events = sa.Table(
        "events", sa.MetaData(), sa.Column("user", sa.String(256)), sa.Column("id", EVENT_ID)
    )
    sa.Index("ix_events_user_id", events.c.user, events.c.id).create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "items, users and events tables", _v1_initial),
    Migration(2, "events.received_at column and an index on events(ts)", _v2_received_at),
    Migration(3, "events.idempotency_key column with a unique index", _v3_idempotency_key),
    Migration(4, "toplists table and an index on events(user, id)", _v4_toplists),
)
LATEST_VERSION: int = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database; 0 for an empty database.

    Parameters
    ----------
    conn : sqlalchemy.engine.Connection
        An open connection.

    Returns
    -------
    int
        The highest applied step, or 0 when the ``schema_version`` table does not exist.
    """
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return 0
    table = _version_table(sa.MetaData())
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.version), 0))).scalar())


def upgrade(conn: Connection, target: int | None = None) -> list[int]:
    """Apply the missing migrations up to ``target`` inside the caller's transaction.

    The caller holds the write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so
    two processes opening a new store at once apply each step exactly once.

    Parameters
    ----------
    conn : sqlalchemy.engine.Connection
        A connection inside an open transaction; the caller commits.
    target : int, optional
        Stop after this version (default: the latest); tests use it to build old stores.

    Returns
    -------
    list of int
        The versions applied now (empty when the store was up to date).

    Raises
    ------
    SchemaVersionError
        When the database is newer than this code, or ``target`` is not a known version.
    """
    target = LATEST_VERSION if target is None else target
    if not 0 <= target <= LATEST_VERSION:
        raise SchemaVersionError(
            f"target={target} is not a known schema version; use 0..{LATEST_VERSION}"
        )
    current = current_version(conn)
    if current > LATEST_VERSION:
        raise SchemaVersionError(
            f"the store has schema version {current} but this dayzero knows versions up to "
            f"{LATEST_VERSION}; upgrade dayzero to open it (a newer release wrote this store)"
        )
    table = _version_table(sa.MetaData())
    table.create(conn, checkfirst=True)
    applied = []
    for step in MIGRATIONS:
        if current < step.version <= target:
            step.apply(conn)
            conn.execute(
                table.insert().values(
                    version=step.version,
                    description=step.description,
                    applied_at=datetime.now(UTC).isoformat(),
                )
            )
            applied.append(step.version)
    return applied
