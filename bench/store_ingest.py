"""Event-store ingest rate without HTTP: one ``append_events`` call (one committed, fsync'ed
transaction) per batch, batches of 100 and of 1, median of 5 runs.

    python bench/store_ingest.py                                  # SQLite only
    python bench/store_ingest.py --postgres "$(scripts/start_postgres.sh)"

Writes ``bench/results/store_ingest.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save

RUNS = 5
BATCHES = {100: 100, 1: 300}  # batch size -> batches per run


def rate(url: str, batch: int, n_batches: int) -> float:
    """Events per second for ``n_batches`` appends of ``batch`` events into a fresh store."""
    from dayzero.online.store import Event, open_store

    with open_store(url) as store:
        batches = [
            [
                Event(
                    f"u{b % 50}",
                    f"i{(b * batch + j) % 997}",
                    "click",
                    1.0,
                    datetime.now(UTC),
                    {"page": "home", "pos": j},
                )
                for j in range(batch)
            ]
            for b in range(n_batches)
        ]
        start = time.perf_counter()
        for events in batches:
            store.append_events(events)
        return n_batches * batch / (time.perf_counter() - start)


def fresh_url(backend: str, postgres: str | None, run: int) -> str:
    if backend == "sqlite":
        return str(Path(tempfile.mkdtemp(prefix="dayzero-ingest-")) / "events.db")
    from sqlalchemy import create_engine, text

    schema = f"ingest_{run}_{int(time.time() * 1000)}"
    engine = create_engine(postgres.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in postgres else "?"
    return f"{postgres}{sep}options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (scripts/start_postgres.sh prints one)")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    rows = []
    for backend in backends:
        for batch, n_batches in BATCHES.items():
            rates = [
                rate(fresh_url(backend, args.postgres, run), batch, n_batches)
                for run in range(RUNS)
            ]
            rows.append(
                {
                    "backend": backend,
                    "batch": batch,
                    "median_events_per_s": statistics.median(rates),
                    "runs": rates,
                }
            )
    command = "python bench/store_ingest.py" + (" --postgres URL" if args.postgres else "")
    save("store_ingest", {"command": command, "machine": machine(), "rows": rows})
    print("| backend | batch | events/s (median of 5) |\n|---|---|---|")
    for row in rows:
        print(f"| {row['backend']} | {row['batch']} | {row['median_events_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
