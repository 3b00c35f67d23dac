"""Bytes per event in the event store (table + indexes, on disk), and per event once read for
training (``events_frame``), for SQLite and PostgreSQL: the numbers docs/scale.md scales up.

    python bench/store_size.py                                  # SQLite only
    python bench/store_size.py --postgres "$(scripts/start_postgres.sh)"

200,000 events of 20,000 users over 5,000 items (ids like MovieLens's: ``u12345``,
``i1234``), kind ``rating``, a value, a time, empty context, appended in batches of 1,000;
once without idempotency keys and once with the keys the HTTP service gives a batch sent with
an ``Idempotency-Key`` header (``<key>#<n>``, here ``batch-000123#17``). On-disk size is the
events table with all its indexes (SQLite: ``dbstat`` after a WAL checkpoint; PostgreSQL:
``pg_total_relation_size`` after ``VACUUM``). Writes ``bench/results/store_size.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save
from store_ingest import fresh_url

EVENTS = 200_000
USERS = 20_000
ITEMS = 5_000
BATCH = 1_000


def events(with_keys: bool):
    """The benchmark's events, batch by batch (seeded: the same rows on every run)."""
    import numpy as np

    from dayzero.online.store import Event

    rng = np.random.default_rng(0)
    users = rng.integers(0, USERS, EVENTS)
    items = rng.integers(0, ITEMS, EVENTS)
    values = rng.integers(1, 6, EVENTS).astype(float)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for b in range(EVENTS // BATCH):
        batch = []
        for j in range(b * BATCH, (b + 1) * BATCH):
            key = f"batch-{b:06d}#{j - b * BATCH}" if with_keys else None
            batch.append(
                Event(
                    user=f"u{users[j]}",
                    item=f"i{items[j]}",
                    kind="rating",
                    value=float(values[j]),
                    ts=start + timedelta(seconds=j),
                    context={},
                    idempotency_key=key,
                )
            )
        yield batch


def on_disk(store) -> dict:
    """Bytes of the events table and of its indexes."""
    import sqlalchemy as sa

    engine = store._engine  # the benchmark reads sizes the store API does not expose
    if store.dialect == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = conn.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name = 'events' OR name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name = 'events' AND type = 'index') "
                "GROUP BY name"
            ).all()
        table = sum(size for name, size in rows if name == "events")
        return {"table_bytes": int(table), "index_bytes": int(sum(s for _, s in rows) - table)}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM events")
        total, table = conn.execute(
            sa.text(
                "SELECT pg_total_relation_size('events'), "
                "pg_relation_size('events') + COALESCE(pg_relation_size("
                "(SELECT reltoastrelid FROM pg_class WHERE oid = 'events'::regclass)), 0)"
            )
        ).one()
    return {"table_bytes": int(table), "index_bytes": int(total - table)}


def measure(url: str, with_keys: bool) -> dict:
    from dayzero.online.store import open_store

    with open_store(url) as store:
        start = time.perf_counter()
        for batch in events(with_keys):
            store.append_events(batch)
        append_s = time.perf_counter() - start
        sizes = on_disk(store)
        start = time.perf_counter()
        frame = store.events_frame()
        read_s = time.perf_counter() - start
        assert len(frame) == EVENTS, len(frame)
        frame_bytes = int(frame.memory_usage(deep=True).sum())
    disk = sizes["table_bytes"] + sizes["index_bytes"]
    return {
        "idempotency_keys": with_keys,
        **sizes,
        "bytes_per_event": disk / EVENTS,
        "table_bytes_per_event": sizes["table_bytes"] / EVENTS,
        "index_bytes_per_event": sizes["index_bytes"] / EVENTS,
        "events_frame_bytes_per_event": frame_bytes / EVENTS,
        "append_events_per_s": EVENTS / append_s,
        "events_frame_rows_per_s": EVENTS / read_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (scripts/start_postgres.sh prints one)")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    rows = []
    for backend in backends:
        for run, with_keys in enumerate((False, True)):
            url = fresh_url(backend, args.postgres, run)
            rows.append({"backend": backend, **measure(url, with_keys)})
    command = "python bench/store_size.py" + (" --postgres URL" if args.postgres else "")
    save(
        "store_size",
        {
            "command": command,
            "machine": machine(),
            "events": EVENTS,
            "users": USERS,
            "items": ITEMS,
            "batch": BATCH,
            "note": "sizes are exact; the two rates are one run each on 2 shared cores",
            "rows": rows,
        },
    )
    print("| backend | keys | table B/event | index B/event | total B/event | frame B/event |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {'yes' if r['idempotency_keys'] else 'no'} | "
            f"{r['table_bytes_per_event']:.0f} | {r['index_bytes_per_event']:.0f} | "
            f"{r['bytes_per_event']:.0f} | {r['events_frame_bytes_per_event']:.0f} |"
        )


if __name__ == "__main__":
    main()
