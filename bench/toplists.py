"""Known-user recommendations from precomputed top-K lists vs computed live, over 100k items.

One run, side by side, on serve_load's catalogue (2,000 base items encoded by the model plus
synthetic content-only items up to ``--items``; 1,000 users with 30 events each):

1. in-process cost per request of ``ServiceState.recommend_user`` with the user-vector cache
   off, live (store read of the user's events, user tower, index search) and from the stored
   list (one store read), alternating users; medians with bootstrap 95 % CIs;
2. ``dayzero toplists``' batch job (``precompute_toplists``, one Ray Data actor) over every
   known user: users per second;
3. the real server (``dayzero serve --user-cache-size 0``, pinned to 2 cores, the load client on
   the same cores) before and after the lists are stored: p50 / p99 and requests per second.

Rerun: ``HF_HUB_OFFLINE=1 python bench/toplists.py`` (a few minutes once serve_load's base
model is cached under ``$DAYZERO_BENCH_CACHE``; the first run trains it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_load as sl
from _common import machine, save


def in_process(folder: Path, users: list[str], k: int) -> dict:
    import torch

    from dayzero.evaluate.intervals import bootstrap_ci
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store
    from dayzero.serve.state import ServiceState, UserVectorCache

    states = {}
    for name, toplists in (("live", False), ("toplist", True)):
        state = ServiceState(
            open_store(folder / "events.db"),
            ModelRegistry(folder / "models"),
            user_cache=UserVectorCache(0),
            toplists=toplists,
        )
        state.start()
        states[name] = state
    torch.set_num_threads(1)  # as the server runs its requests (dayzero serve)
    times: dict[str, list[float]] = {"live": [], "toplist": []}
    cpu: dict[str, list[float]] = {"live": [], "toplist": []}
    same = 0
    try:
        for user in users[:20]:  # warm-up
            for state in states.values():
                state.recommend_user(user, k, exclude_seen=True)
        for user in users:
            answers = {}
            for name, state in states.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                answers[name] = state.recommend_user(user, k, exclude_seen=True).ids
                times[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
            same += answers["live"] == answers["toplist"]
    finally:
        for state in states.values():
            state.close()
    out = {"requests_per_path": len(users), "same_answer_share": same / len(users)}
    for name, values in times.items():
        ms = np.asarray(values) * 1000
        out[name] = {
            "median_ms": float(np.median(ms)),
            "median_ms_ci95": list(bootstrap_ci(np.median, ms, n_resamples=2000)[1:]),
            "p99_ms": float(np.percentile(ms, 99)),
            "cpu_ms_per_request": float(np.sum(cpu[name]) * 1000 / len(cpu[name])),
        }
    out["speedup_median"] = out["live"]["median_ms"] / out["toplist"]["median_ms"]
    out["cpu_ratio"] = out["live"]["cpu_ms_per_request"] / out["toplist"]["cpu_ms_per_request"]
    return out


def _table_bytes(db: Path) -> int:
    """Pages of the toplists table and its primary-key index (SQLite dbstat, after a WAL
    checkpoint)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (size,) = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = 'toplists' OR name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name = 'toplists' AND type = 'index')"
        ).fetchone()
    return int(size)


def serve(folder: Path, cache: Path, label: str, n: int, seed: int) -> dict:
    proc, url, startup = sl.start_server(
        folder, cache / f"toplists-{label}.log", "--user-cache-size", "0"
    )
    try:
        _, concurrency = sl.SCENARIOS["known_user"]
        requests = sl.scenario_requests("known_user", n, np.random.default_rng(seed))
        result = sl.measure(url, requests, concurrency, pid=proc.pid)
        import httpx

        lines = httpx.get(f"{url}/metrics").text.splitlines()
        result["toplists_metric"] = {
            line.split('result="')[1].split('"')[0]: float(line.split()[-1])
            for line in lines
            if line.startswith("dayzero_toplists_total")
        }
    finally:
        sl._stop(proc)
    result["startup_s"] = startup
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--in-process", type=int, default=500, help="users timed per path")
    parser.add_argument("--k", type=int, default=100, help="length of the stored lists")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from dayzero.distributed.toplists import precompute_toplists

    cache = sl._cache()
    base = sl.build_base(cache)
    own = Path(tempfile.mkdtemp(prefix="toplists-", dir=cache))  # not serve_load's folders
    folder = sl.build_size(own, base, args.items)
    load_start = [round(x, 2) for x in os.getloadavg()]
    rng = np.random.default_rng(args.seed)
    users = [f"u{u}" for u in rng.integers(sl.BASE_USERS, size=args.in_process)]

    live_http = serve(folder, own, "live", args.requests, args.seed)
    print(f"live over HTTP: p50 {live_http['p50_ms']:.1f} ms p99 {live_http['p99_ms']:.1f} ms "
          f"{live_http['requests_per_s']:.0f} req/s", flush=True)  # fmt: skip
    batch = precompute_toplists(
        folder / "events.db", folder / "models", k=args.k, num_actors=1, progress=False
    )
    batch["table_bytes_per_list"] = _table_bytes(folder / "events.db") / batch["lists"]
    print(f"batch: {batch['lists']:,} lists in {batch['seconds']:.1f} s, "
          f"{batch['table_bytes_per_list']:,.0f} B a list", flush=True)  # fmt: skip
    lists_http = serve(folder, own, "toplist", args.requests, args.seed)
    print(f"lists over HTTP: p50 {lists_http['p50_ms']:.1f} ms p99 {lists_http['p99_ms']:.1f} "
          f"ms {lists_http['requests_per_s']:.0f} req/s", flush=True)  # fmt: skip
    process = in_process(folder, users, k=10)
    print(f"in-process: live {process['live']['median_ms']:.2f} ms, list "
          f"{process['toplist']['median_ms']:.2f} ms (median)", flush=True)  # fmt: skip
    payload = {
        "machine": machine(),
        "cores_shared": True,
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "command": " ".join(["HF_HUB_OFFLINE=1 python bench/toplists.py", *sys.argv[1:]]),
        "catalogue": (
            f"{args.items:,} items: {sl.BASE_ITEMS:,} base items encoded by the model (two-tower, "
            "frozen MiniLM), the rest synthetic content-only mixtures (as bench/serve_load.py); "
            f"{sl.BASE_USERS:,} users with {sl.EVENTS_PER_USER} events each; SQLite store; exact "
            "index; requests ask for k=10 with seen items left out, the user-vector cache off"
        ),
        "list_length": args.k,
        "batch": batch,
        "in_process": process,
        "http": {"live": live_http, "toplist": lists_http},
    }
    print(save("toplists", payload))


if __name__ == "__main__":
    main()
