"""Load benchmark of the HTTP service: the real server process (uvicorn, one worker) on loopback,
driven by a bounded async client (aiohttp by default, httpx with ``--client httpx``) with a
fixed request count and concurrency.

    HF_HUB_OFFLINE=1 python bench/serve_load.py [--sizes 10000 100000] [--requests 2000]

Scenarios, at each catalogue size:

* ``known_user``: ``GET /v1/users/{id}/recommendations?k=10`` for users the model was trained on
  (profile + events read from the store, user tower forward, exact inner-product search).
* ``new_user``: ``POST /v1/recommendations`` with a one-sentence profile, a different sentence
  per request (one all-MiniLM-L6-v2 encoder call each, no cache can help).
* ``events``: ``POST /v1/events`` with batches of 100 events (committed, fsync'ed, before 2xx).

The model is a frozen-MiniLM two-tower trained on a base catalogue of 2,000 generated items and
1,000 users (30 ratings each). The rest of the catalogue (up to 10k / 100k items) is made of
item vectors mixed from two random base items' serving vectors plus noise, flagged content-only:
encoding 100k texts with MiniLM would take most of an hour on 2 shared cores, and search cost
depends on the number and width of the vectors, not on how they were made. Encodings are
cached under ``$DAYZERO_BENCH_CACHE`` (default: the temp dir).

The client runs on the same cores as the server, so its own CPU per request counts against the
server's throughput. httpx took 1.4-1.8 ms of CPU per recommendation request (more than the
server's) and its connection pool held some requests for 100-1,000 ms while neither the server's
event loops nor the client's lagged and the kernel retransmitted nothing; aiohttp takes about
0.3 ms. ``bench/ray_scale.py`` measures one setting with both clients side by side.

Writes ``bench/results/serve_load.json`` and ``bench/results/serve_load.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, save

API_KEY = "bench-key"
BASE_ITEMS = 2_000
BASE_USERS = 1_000
EVENTS_PER_USER = 30
CPUS = 2
SCENARIOS = {
    # name: (requests as a share of --requests, concurrency)
    "known_user": (1.0, 8),
    "new_user": (0.25, 2),
    "events": (0.1, 4),
}
# known_user again on a server started with --user-cache-size 0: every request reads the
# user's events from the store and recomputes the user vector.
NOCACHE = "known_user_nocache"
TARGETS = {
    "known_user": "p99 <= 50 ms and >= 300 req/s at 100k items",
    NOCACHE: "(same, no user-vector cache)",
    "new_user": "p99 <= 80 ms",
    "events": ">= 2,000 events/s (batches of 100)",
}
THEMES = (
    "ramen noodles broth japanese",
    "tacos salsa mexican spicy",
    "pizza pasta italian wood oven",
    "sushi fish rice japanese",
    "burger fries american grill",
    "curry naan indian spices",
    "dim sum dumplings cantonese",
    "falafel hummus lebanese",
    "steak wine french bistro",
    "vegan salads bowls healthy",
    "bbq ribs smoked southern",
    "pho herbs vietnamese soup",
    "croissant coffee bakery",
    "ice cream desserts sweet",
    "seafood oysters coastal",
    "kebab grill turkish",
    "tapas sherry spanish",
    "bibimbap kimchi korean",
    "pad thai lime thai",
    "brunch eggs pancakes",
)
ADJECTIVES = (
    "cosy",
    "busy",
    "cheap",
    "upscale",
    "family",
    "late-night",
    "quiet",
    "trendy",
    "tiny",
    "old",
)
PLACES = ("downtown", "near the station", "by the river", "in the old town", "on campus")


def _cache() -> Path:
    root = Path(os.environ.get("DAYZERO_BENCH_CACHE", tempfile.gettempdir()))
    folder = root / "dayzero-serve-load"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------------- catalogue + model
def _base_records(seed: int = 0):
    from datetime import UTC, datetime, timedelta

    from dayzero.online.store import EntityRecord, Event

    rng = np.random.default_rng(seed)
    item_theme = rng.integers(0, len(THEMES), size=BASE_ITEMS)
    items = [
        EntityRecord(
            f"i{n}",
            f"{ADJECTIVES[rng.integers(len(ADJECTIVES))]} {THEMES[t]} place "
            f"{PLACES[rng.integers(len(PLACES))]} number {n}",
        )
        for n, t in enumerate(item_theme)
    ]
    by_theme = [np.flatnonzero(item_theme == t) for t in range(len(THEMES))]
    users, events = [], []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for u in range(BASE_USERS):
        likes = rng.choice(len(THEMES), size=2, replace=False)
        users.append(EntityRecord(f"u{u}", f"loves {THEMES[likes[0]]} and {THEMES[likes[1]]}"))
        liked = np.concatenate([by_theme[t] for t in likes])
        for _ in range(EVENTS_PER_USER):
            if rng.random() < 0.7:
                item, value = rng.choice(liked), float(rng.integers(4, 6))
            else:
                item, value = rng.integers(BASE_ITEMS), float(rng.integers(1, 4))
            ts = start + timedelta(seconds=len(events))
            events.append(Event(user=f"u{u}", item=f"i{item}", value=value, ts=ts))
    return items, users, events


def build_base(cache: Path) -> Path:
    """Store + trained ServingModel on the base catalogue (cached; MiniLM encodings cached)."""
    from dayzero.core.schema import Dataset, Interactions
    from dayzero.online.serving import ServingModel, records_to_entities
    from dayzero.online.store import open_store
    from dayzero.recommend.two_tower import TwoTowerRecommender

    base = cache / "base"
    if (base / "model" / "serving.json").is_file():
        return base
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    items, users, events = _base_records()
    store = open_store(base / "events.db")
    try:
        store.upsert_items(items)
        store.upsert_users(users)
        for start in range(0, len(events), 1000):
            store.append_events(events[start : start + 1000])
        frame = store.events_frame()
        dataset = Dataset(
            Interactions(frame[["user", "item", "value"]].reset_index(drop=True)),
            users=records_to_entities(store.users(), "user"),
            items=records_to_entities(store.items(), "item"),
        )
        started = time.perf_counter()
        model = TwoTowerRecommender(
            towers={"dim": 64, "hidden": 256},
            training={"epochs": 8, "validation": 0.0, "retrieval_weight": 0.0},
            encoder={"cache_dir": str(cache / "encodings")},
        ).fit(dataset)
        print(f"trained the base model in {time.perf_counter() - started:.0f} s", flush=True)
        serving = ServingModel.from_recommender(model)
        serving.save(base / "model.tmp")
        (base / "model.tmp").rename(base / "model")
        (base / "watermark").write_text(str(store.last_event_id()))
    finally:
        store.close()
    return base


def build_size(cache: Path, base: Path, n_items: int, seed: int = 0) -> Path:
    """A store copy and a registry whose promoted version serves ``n_items`` items."""
    from dayzero.online.index import VectorIndex
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.serving import ServingModel

    folder = cache / f"n{n_items}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for path in base.glob("events.db*"):
        shutil.copy2(path, folder / path.name)
    model = ServingModel.load(base / "model")
    ids, vectors = model.item_vectors()
    extra = n_items - len(ids)
    if extra > 0:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(len(ids), size=(2, extra))
        w = rng.uniform(0.2, 0.8, size=(extra, 1)).astype(np.float32)
        mixed = w * vectors[a] + (1 - w) * vectors[b]
        d = model.dim - 3
        mixed[:, :d] += (
            rng.normal(0, 0.05, size=(extra, d)).astype(np.float32) * np.abs(vectors[:, :d]).mean()
        )
        mixed[:, d + 1] = 1.0  # the constant column
        mixed[:, d + 2] = 1.0  # content-only: these items have no ID embedding
        ids = [*ids, *(f"s{n}" for n in range(extra))]
        vectors = np.vstack([vectors, mixed])
    index = VectorIndex(dim=model.dim, kind="exact")
    index.add(ids, vectors)
    registry = ModelRegistry(folder / "models")
    watermark = int((base / "watermark").read_text())
    version = registry.publish(
        lambda target: model.save(target, index=index),
        metrics={},
        watermark=watermark,
        config={"items": n_items, "synthetic_items": max(extra, 0)},
    )
    registry.promote(version)
    return folder


# ---------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pin() -> None:
    cpus = sorted(os.sched_getaffinity(0))[:CPUS]
    os.sched_setaffinity(0, cpus)


def start_server(folder: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str, float]:
    import httpx

    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "dayzero.cli.serve",
        "--store",
        str(folder / "events.db"),
        "--registry",
        str(folder / "models"),
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--log-level",
        "warning",
        *extra,
    ]
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            preexec_fn=_pin,
        )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 300:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json().get("status") == "ok":
                return proc, url, time.perf_counter() - started
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready in 300 s")


# ---------------------------------------------------------------------- client
#: The load client: "aiohttp" (the default) or "httpx"; see the module docstring.
CLIENTS = ("aiohttp", "httpx")
client_name = "aiohttp"


async def _drive(url: str, requests: list[tuple[str, str, dict | None]], concurrency: int):
    """Send ``requests`` (method, path, JSON body) over ``concurrency`` keep-alive connections
    with :data:`client_name`; returns each request's latency (s), the wall time and the status
    counts."""
    latencies = np.zeros(len(requests))
    statuses: dict[int, int] = {}
    queue = iter(enumerate(requests))
    async with _client(url, concurrency) as send:

        async def worker() -> None:
            for n, (method, path, body) in queue:
                started = time.perf_counter()
                status = await send(method, path, body)
                latencies[n] = time.perf_counter() - started
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, wall, statuses


@contextlib.asynccontextmanager
async def _client(url: str, concurrency: int):
    """``send(method, path, body) -> status`` over at most ``concurrency`` connections."""
    headers = {"X-API-Key": API_KEY}
    if client_name == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

            async def send_httpx(method: str, path: str, body: dict | None) -> int:
                response = await client.request(method, path, json=body, headers=headers)
                return response.status_code

            yield send_httpx
        return
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def send_aiohttp(method: str, path: str, body: dict | None) -> int:
            async with session.request(method, path, json=body, headers=headers) as response:
                await response.read()
                return response.status

        yield send_aiohttp


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, requests: list, concurrency: int, per_request: int = 1, pid: int | None = None
) -> dict:
    warm = requests[: min(30, len(requests))]
    asyncio.run(_drive(url, warm, concurrency))
    cpu = _cpu_seconds(pid) if pid is not None else None
    latencies, wall, statuses = asyncio.run(_drive(url, requests, concurrency))
    server_cpu = _cpu_seconds(pid) - cpu if pid is not None else None
    ms = latencies * 1000
    return {
        # Server CPU per request does not depend on what else the machine runs: with 2 cores
        # it bounds the throughput the server could reach alone (2 / cpu, GIL permitting).
        "server_cpu_ms_per_request": (
            None if server_cpu is None else server_cpu * 1000 / len(requests)
        ),
        "requests": len(requests),
        "concurrency": concurrency,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "requests_per_s": len(requests) / wall,
        "per_s": len(requests) * per_request / wall,
        "wall_s": wall,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def scenario_requests(name: str, n: int, rng: np.random.Generator) -> list:
    if name == "known_user":
        users = rng.integers(BASE_USERS, size=n)
        return [("GET", f"/v1/users/u{u}/recommendations?k=10", None) for u in users]
    if name == "new_user":
        out = []
        for k in range(n):
            a, b = rng.choice(len(THEMES), size=2, replace=False)
            sentence = (
                f"A {ADJECTIVES[k % len(ADJECTIVES)]} diner #{k} who wants "
                f"{THEMES[a].split()[0]} or {THEMES[b].split()[0]} {PLACES[k % len(PLACES)]}"
            )
            out.append(("POST", "/v1/recommendations", {"profile": sentence, "k": 10}))
        return out
    out = []
    for batch in range(n):
        events = [
            {
                "user": f"load-{batch}-{j % 10}",
                "item": f"i{int(rng.integers(BASE_ITEMS))}",
                "kind": "click",
                "value": 1.0,
            }
            for j in range(100)
        ]
        out.append(("POST", "/v1/events", {"events": events}))
    return out


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cache_hits(url: str) -> dict[str, float]:
    import httpx

    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("dayzero_user_cache_total"):
            out[line.split('result="')[1].split('"')[0]] = float(line.split()[-1])
    return out


def _report(n_items: int, name: str, r: dict) -> None:
    print(
        f"{n_items:>7} items  {name:<18} p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
        f"{r['per_s']:8.0f}/s  server cpu {r['server_cpu_ms_per_request']:.2f} ms/req  "
        f"{r['statuses']}",
        flush=True,
    )


def run_size(cache: Path, base: Path, n_items: int, total: int, seed: int) -> dict:
    folder = build_size(cache, base, n_items)
    out: dict = {"items": n_items}
    rng = np.random.default_rng(seed)
    proc, url, out["startup_s"] = start_server(folder, cache / f"server-{n_items}.log")
    try:
        for name, (share, concurrency) in SCENARIOS.items():
            n = max(20, int(total * share))
            per = 100 if name == "events" else 1
            out[name] = measure(url, scenario_requests(name, n, rng), concurrency, per, proc.pid)
            if name == "known_user":
                out[name]["user_cache"] = _cache_hits(url)
            _report(n_items, name, out[name])
    finally:
        _stop(proc)
    proc, url, _ = start_server(
        folder, cache / f"server-{n_items}-nocache.log", "--user-cache-size", "0"
    )
    try:
        share, concurrency = SCENARIOS["known_user"]
        requests = scenario_requests("known_user", max(20, int(total * share)), rng)
        out[NOCACHE] = measure(url, requests, concurrency, pid=proc.pid)
        _report(n_items, NOCACHE, out[NOCACHE])
    finally:
        _stop(proc)
    return out


def markdown(payload: dict) -> str:
    lines = [
        "### Serving load (`bench/serve_load.py`)",
        "",
        "Real server process (uvicorn, 1 worker, pinned to 2 cores) on loopback; bounded async "
        f"{payload.get('client', 'httpx')} client on the same machine (it shares the 2 cores); "
        f"fixed request counts after a warm-up. Load average at start: {payload['load_average']}.",
        "",
        "| items | scenario | requests | concurrency | p50 ms | p99 ms | throughput "
        "| server CPU ms/req | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["runs"]:
        for name in ("known_user", NOCACHE, "new_user", "events"):
            r = row[name]
            unit = "events/s" if name == "events" else "req/s"
            lines.append(
                f"| {row['items']:,} | {name} | {r['requests']:,} | {r['concurrency']} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['per_s']:,.0f} {unit} | "
                f"{r['server_cpu_ms_per_request']:.2f} | {TARGETS[name]} |"
            )
    big = max(payload["runs"], key=lambda row: row["items"])
    known = big["known_user"]
    lines += [
        "",
        f"Rerun: `{payload['command'].strip()}` (about 3 minutes once the base model is cached; "
        "the first run trains it, about 6 minutes on 2 busy cores).",
        "",
        f"Known-user recommendations over {big['items']:,} items: {known['per_s']:.0f} req/s, "
        f"p99 {known['p99_ms']:.0f} ms. The server spends {known['server_cpu_ms_per_request']:.1f}"
        f" ms of CPU per request, mostly under one GIL ({_http_stack()} HTTP, FastAPI routing, "
        "pydantic validation, the exact search; the store read and the user-tower pass on a "
        "cache miss; a known user's answer runs on the event loop, see "
        "`dayzero.serve.routes.recommendations`), so one worker is bound near "
        f"{1000 / known['server_cpu_ms_per_request']:.0f} req/s, and it shares the 2 cores with "
        "the load client and with the machine's other jobs (load average above): the tail "
        "latency is queueing behind that. The exact search costs about 0.85 ms per query over "
        "100k x 67 floats (measured in-process). More throughput: a second worker process per "
        "extra core (`dayzero serve --workers N`, measured by `bench/ray_scale.py`), top-K lists "
        "stored for known users without new events (`dayzero toplists`), HNSW above ~50k "
        "items for a ~0.6 ms saving at recall ~0.98.",
        "",
        "`known_user` runs with the default user-vector cache: a user's vector and seen items "
        "are recomputed after each of their events or profile writes (and when items are added "
        "or the version changes; at most 30 s old otherwise). The requests pick users at "
        "random from 1,000, so many repeat: cache hits / misses per size are in the JSON. "
        f"`{NOCACHE}` is the same load with the cache off (store read + user tower on every "
        "request).",
        "",
        payload["vectors"],
    ]
    return "\n".join(lines) + "\n"


def _http_stack() -> str:
    """Which HTTP parser and event loop uvicorn picks here (it prefers httptools + uvloop)."""
    import importlib.util

    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
    return " + ".join(fast) if fast else "pure-Python h11"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp", help="The load client.")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="Rewrite serve_load.md from the saved serve_load.json without measuring.",
    )
    args = parser.parse_args()
    if args.markdown_only:
        payload = json.loads((RESULTS / "serve_load.json").read_text())
        (RESULTS / "serve_load.md").write_text(markdown(payload))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    global client_name
    client_name = args.client
    cache = _cache()
    base = build_base(cache)
    runs = [run_size(cache, base, n, args.requests, args.seed) for n in args.sizes]
    payload = {
        "machine": machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(["HF_HUB_OFFLINE=1 python bench/serve_load.py", *sys.argv[1:]]),
        "client": client_name,
        "model": "two-tower, frozen all-MiniLM-L6-v2, dim 64 (+3 bias columns), exact index",
        "vectors": (
            f"Item vectors: {BASE_ITEMS:,} base items encoded by the model (MiniLM text + item "
            "tower); the rest are mixtures of two random base items' serving vectors plus "
            "noise, flagged content-only (encoding 100k texts would take most of an hour on 2 "
            "shared cores; search cost depends only on count and width)."
        ),
        "scenarios": {k: {"share": v[0], "concurrency": v[1]} for k, v in SCENARIOS.items()},
        "targets": TARGETS,
        "runs": runs,
    }
    print(save("serve_load", payload))
    (RESULTS / "serve_load.md").write_text(markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
