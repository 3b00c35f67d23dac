"""What the titles in recommendation answers cost the service: ``ServiceState.titles`` for a
list of k ids (one ``EventStore.get_items`` query) against one ``get_item`` call per id, on
stores of 10,000 and 100,000 items, no HTTP. Median and p99 over 300 lists of random ids.

    python bench/serve_titles.py                                  # SQLite only
    python bench/serve_titles.py --postgres "$(scripts/start_postgres.sh)"

Writes ``bench/results/serve_titles.json`` and prints a Markdown table. A timing benchmark on a
shared machine: the JSON records the load average at the start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save

SIZES = (10_000, 100_000)
LISTS = 300
K = (10, 100)
CHUNK = 1_000  # items per upsert


def fresh_url(backend: str, postgres: str | None, size: int) -> str:
    if backend == "sqlite":
        return str(Path(tempfile.mkdtemp(prefix="dayzero-titles-")) / "events.db")
    from sqlalchemy import create_engine, text

    schema = f"titles_{size}_{int(time.time() * 1000)}"
    engine = create_engine(postgres.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in postgres else "?"
    return f"{postgres}{sep}options=-csearch_path%3D{schema}"


def measure(url: str, size: int, seed: int = 0) -> list[dict]:
    """Milliseconds per list of ``k`` ids: the batch (titles) and one get_item per id."""
    from dayzero.core.fields import title_of
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import EntityRecord, open_store
    from dayzero.serve.state import ServiceState

    rng = np.random.default_rng(seed)
    ids = [f"item-{n}" for n in range(size)]
    with open_store(url) as store:
        for start in range(0, size, CHUNK):
            store.upsert_items(
                [
                    EntityRecord(i, f"a long description of {i} " * 5, {"title": f"Title {i}"})
                    for i in ids[start : start + CHUNK]
                ]
            )
        state = ServiceState(store, ModelRegistry(tempfile.mkdtemp(prefix="dayzero-reg-")))
        rows = []
        for k in K:
            lists = [[ids[n] for n in rng.choice(size, k, replace=False)] for _ in range(LISTS)]
            assert state.titles(lists[0]) == [f"Title {i}" for i in lists[0]]
            timings: dict[str, list[float]] = {"batch": [], "per_id": []}
            for listed in lists:
                start = time.perf_counter()
                state.titles(listed)
                timings["batch"].append((time.perf_counter() - start) * 1e3)
                start = time.perf_counter()
                for item in listed:  # what the batch replaces
                    record = store.get_item(item)
                    title_of(record.fields, record.text)
                timings["per_id"].append((time.perf_counter() - start) * 1e3)
            for how, values in timings.items():
                rows.append(
                    {
                        "items": size,
                        "k": k,
                        "lookup": how,
                        "lists": LISTS,
                        "median_ms": statistics.median(values),
                        "p99_ms": float(np.percentile(values, 99)),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (scripts/start_postgres.sh prints one)")
    args = parser.parse_args()
    load = os.getloadavg()
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    rows = []
    for backend in backends:
        for size in SIZES:
            for row in measure(fresh_url(backend, args.postgres, size), size):
                rows.append({"backend": backend, **row})
    command = "python bench/serve_titles.py" + (" --postgres URL" if args.postgres else "")
    save(
        "serve_titles",
        {
            "command": command,
            "machine": machine(),
            "shared_cores": True,
            "load_average_at_start": [round(x, 2) for x in load],
            "rows": rows,
        },
    )
    print("| backend | items | k | lookup | median ms | p99 ms |\n|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['backend']} | {row['items']:,} | {row['k']} | {row['lookup']} | "
            f"{row['median_ms']:.3f} | {row['p99_ms']:.3f} |"
        )


if __name__ == "__main__":
    main()
