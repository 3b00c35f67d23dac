"""Issue 15's targets, side by side on one machine: one process against Ray (and uvicorn workers).

    HF_HUB_OFFLINE=1 DAYZERO_DATA=../shared/data nice -n 5 python bench/ray_scale.py \
        [--texts 20000] [--epochs 8] [--items 100000] [--requests 2000] [--parts encode train serve]
    python bench/ray_scale.py --quick        # tiny sizes, to try the script (writes nothing)
    python bench/ray_scale.py --report       # the BENCHMARKS.md section from the saved .json

Three parts, each run once, in this order:

* ``encode``: catalogue encoding with all-MiniLM-L6-v2 (no disk cache) of real item texts:
  ``title`` + ``genres`` of the Steam games catalogue (``steam-games``, 32,132 games, list style
  ``"Title: Portal 2 | Genres: Action, Adventure"``, about 17 tokens). Beyond the distinct texts
  of the catalogue (``--texts`` above 32,127), text n pairs game n's title with the genres of
  another game (seeded), so every text stays distinct: ``TextEncoder`` encodes each distinct
  text once, and a cycled catalogue would have let it skip the repeats. Runs: the
  single-process ``TextEncoder.encode`` with 1 and with 2 torch threads (each in a fresh
  process), then :func:`dayzero.distributed.encode.encode_catalogue` from a Parquet file with 1
  and with 2 actors of 1 CPU (1 torch thread) each. The default is 20,000 texts, not the
  issue's 100,000: at the 59-152 texts/s the four runs reached here (results JSON), four
  runs over 100k texts would take over an hour of the shared 2 cores. Every vector is
  compared with the single-process ones (max abs difference).
* ``train``: the frozen-MiniLM two-tower (retrieval head on, every default but the epochs) on
  the ML-1M training interactions of MeLU's states
  (:func:`~dayzero.evaluate.protocols.catalogue.melu_catalogue_split`; never its test users),
  less a validation slice carved from them: 10 ratings each of 500 seeded users with at least
  20. Fits: the plain ``fit`` (a fresh process, 1 torch thread), then
  :func:`dayzero.distributed.train.fit_on_ray` with 1 and with 2 Ray Train workers of 1 CPU
  (1 torch thread) each; the same settings and seed for the three, ``--epochs`` epochs, no
  early stopping (``training.validation=0``: every fit runs every epoch). Reported: wall
  time of the fit call, validation MAE (``predict`` on the held-out ratings) and Recall@20
  (each validation user's held-out ratings >= 4 among the top 20 of ``recommend`` over every
  item, training items excluded), and each fit's training-loss curve.
* ``serve``: ``bench/serve_load.py``'s set-up (a frozen-MiniLM two-tower on 2,000 generated
  items and 1,000 users, the catalogue grown to ``--items`` with mixed vectors) served by
  ``dayzero serve --workers 1`` and ``--workers 2`` (uvicorn processes, pinned to the 2 cores),
  then by Ray Serve (:func:`dayzero.distributed.serve.serve_on_ray`) with 1 and 2 replicas of
  1 CPU, each over the same SQLite store and registry. Load: ``serve_load``'s client (bounded
  async aiohttp, on the same 2 cores; with 2 workers the known-user load is run a second time
  with the httpx client, side by side: see ``serve_load``'s docstring for why the client
  changed) with its ``known_user`` (``--requests`` GETs, 8 at a time)
  and ``new_user`` (a quarter as many one-sentence profiles, 2 at a time) scenarios, after a
  60-request warm-up over 8 connections (so that every worker has answered). Measured:
  latencies, throughput, and CPU per request of the whole server (every worker process, or
  every process of the Ray cluster, by part), of the load client, and of everything else
  the shared machine ran meanwhile.

Ray's local cluster: ``ray_cluster(num_cpus=3)`` on 2 physical cores. Ray Data refuses an
actor pool that reserves every CPU (its read, repartition and write tasks would wait for ever
behind the actors), so 2 actors of 1 CPU need a third logical CPU for those tasks; they do
little work (the driver streams the vectors into Parquet) while each actor runs one torch
thread, so the 2 cores are not oversubscribed. Ray Train's 2 workers of 1 CPU fit in the same
cluster. Ray Serve starts its own cluster (every core: 2 CPUs) for 2 replicas of 1 CPU.

The machine is shared (2 cores, other engineers' jobs): every time is an upper bound under
the load average recorded beside it. Writes ``bench/results/ray_scale.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_load
from _common import RESULTS, machine, run_isolated, save

NAME = "ray_scale"
CLUSTER_CPUS = 3
MODEL = "all-MiniLM-L6-v2"
ENCODE_BATCH = 32
FIXED_TEXTS = 64
FIELDS = ["title", "genres"]
VALIDATION_USERS = 500
VALIDATION_RATINGS = 10
POSITIVE = 4.0
K = 20
TARGETS = {
    "known_user_p99_ms": 50.0,
    "known_user_requests_per_s": 500.0,
    "new_user_p99_ms": 80.0,
}
RERUN = "HF_HUB_OFFLINE=1 DAYZERO_DATA=../shared/data nice -n 5 python bench/ray_scale.py"
QUICK = {"texts": 300, "epochs": 1, "items": 10_000, "requests": 200}
# The committed run took 21 minutes on 2 shared cores at load 4.6-6 (encode 13.5, train 3,
# serve and profile 4.5).
DEFAULTS = {"texts": 20_000, "epochs": 8, "items": 100_000, "requests": 2_000}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------- encode
def item_catalogue(n: int, seed: int = 0) -> tuple[Any, int]:
    """``n`` Steam games as ``item_id``, ``title``, ``genres`` (distinct texts), and how many
    are real records (the rest pair a title with another game's genres)."""
    import pandas as pd

    from dayzero.core.templates import Template
    from dayzero.datasets.steam import load_steam_games

    games = load_steam_games().frame.reset_index()
    texts = Template(FIELDS).render_frame(games)
    real = games.loc[~pd.Series(texts).duplicated().to_numpy()].reset_index(drop=True)
    rows = {
        "item_id": [f"g{i}" for i in real["item"][:n]],
        "title": list(real["title"][:n]),
        "genres": [list(g) for g in real["genres"][:n]],
    }
    seen = set(Template(FIELDS).render_frame(pd.DataFrame(rows)))
    rng = np.random.default_rng(seed)
    while len(rows["item_id"]) < n:
        a, b = (int(x) for x in rng.integers(len(real), size=2))
        row = {"title": real["title"][a], "genres": list(real["genres"][b])}
        text = Template(FIELDS).render(row)
        if text in seen:
            continue
        seen.add(text)
        rows["item_id"].append(f"m{len(rows['item_id'])}")
        rows["title"].append(row["title"])
        rows["genres"].append(row["genres"])
    return pd.DataFrame(rows), min(n, len(real))


def encode_single(source: str, threads: int, out: str) -> dict:
    """The single-process encoder over the catalogue file (load included), vectors to ``out``."""
    import pandas as pd
    import torch

    from dayzero.core.templates import Template
    from dayzero.text.encoder import TextEncoder
    from dayzero.text.quiet import quiet_loading

    torch.set_num_threads(threads)
    frame = pd.read_parquet(source)
    texts = Template(FIELDS).render_frame(frame)
    started = time.perf_counter()
    with quiet_loading():
        encoder = TextEncoder(MODEL)
    loaded = time.perf_counter() - started
    vectors = encoder.encode(texts, batch_size=ENCODE_BATCH)
    seconds = time.perf_counter() - started
    np.save(out, vectors)
    tokens = encoder.tokenizer(texts, truncation=True, max_length=encoder.max_length)["input_ids"]
    return {
        "threads": threads,
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        "texts_per_s_past_fixed_cost": _past(len(texts), seconds - loaded),
        "fixed_seconds": loaded,
        "mean_tokens": float(np.mean([len(t) for t in tokens])),
    }


def run_encode(n_texts: int, work: Path, single_threads: tuple[int, ...] = (1, 2)) -> dict:
    from dayzero.distributed.encode import read_vectors

    frame, real = item_catalogue(n_texts)
    source = work / "items.parquet"
    frame.to_parquet(source)
    out: dict[str, Any] = {
        "texts": n_texts,
        "real_records": real,
        "recombined_texts": n_texts - real,
        "fields": FIELDS,
        "model": MODEL,
        "encode_batch_size": ENCODE_BATCH,
        "cache": "off (every text encoded)",
        "load_average_start": _load(),
        "runs": [],
    }
    reference = None
    for threads in sorted(set(single_threads)):
        path = str(work / f"single-{threads}.npy")
        row = run_isolated(encode_single, source=str(source), threads=threads, out=path)
        vectors = np.load(path)
        reference = vectors if reference is None else reference
        row.update(kind="single process", workers=1, rows=len(vectors))
        row["max_abs_diff_vs_single_1_thread"] = float(np.abs(vectors - reference).max())
        out["mean_tokens"] = row.pop("mean_tokens")
        row["load_average_after"] = _load()
        out["runs"].append(row)
        _print_encode(row)
    blocks = max(4, n_texts // 1000)
    tiny = work / "tiny.parquet"
    frame.head(FIXED_TEXTS).to_parquet(tiny)
    for actors in (1, 2):
        # The fixed cost of a call (actors started, encoder loaded in each, an almost empty
        # pipeline run), from a catalogue of FIXED_TEXTS rows just before the timed call.
        fixed = _encode_on_ray(tiny, work / f"tiny-{actors}", actors, 2 * actors)[0]
        seconds, manifest = _encode_on_ray(source, work / f"ray-{actors}", actors, blocks)
        ids, vectors = read_vectors(work / f"ray-{actors}")
        row = {
            "kind": "Ray Data actor pool",
            "workers": actors,
            "threads": 1,
            "seconds": seconds,
            "texts_per_s": n_texts / seconds,
            "fixed_seconds": fixed,
            "texts_per_s_past_fixed_cost": _past(n_texts - FIXED_TEXTS, seconds - fixed),
            "rows": int(manifest["rows"]),
            "ids_in_input_order": ids.tolist() == frame["item_id"].tolist(),
            "max_abs_diff_vs_single_1_thread": float(np.abs(vectors - reference).max()),
        }
        row["load_average_after"] = _load()
        out["runs"].append(row)
        _print_encode(row)
    out["blocks"], out["rows_per_actor_call"] = blocks, 500
    out["ratios"] = _ratios(out["runs"], "texts_per_s")
    out["ratios_past_fixed_cost"] = _ratios(out["runs"], "texts_per_s_past_fixed_cost")
    out["load_average_end"] = _load()
    return out


def _past(texts: int, seconds: float) -> float | None:
    """Texts per second past the fixed cost; None where the run was too short to tell."""
    return texts / seconds if seconds >= 1.0 and texts > 0 else None


def _ratios(runs: list[dict], key: str) -> dict[str, float | None]:
    by = {(r["kind"], r["workers"], r["threads"]): r[key] for r in runs}
    two, one = by[("Ray Data actor pool", 2, 1)], by[("Ray Data actor pool", 1, 1)]
    single_1, single_2 = by[("single process", 1, 1)], by.get(("single process", 1, 2))

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    return {
        "ray_2_actors_vs_ray_1_actor": ratio(two, one),
        "ray_2_actors_vs_single_1_thread": ratio(two, single_1),
        "ray_2_actors_vs_single_2_threads": ratio(two, single_2),
        "ray_1_actor_vs_single_1_thread": ratio(one, single_1),
    }


def _num(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _encode_on_ray(source: Path, out: Path, actors: int, blocks: int) -> tuple[float, dict]:
    from dayzero.distributed.encode import EncoderSpec, encode_catalogue

    started = time.perf_counter()
    manifest = encode_catalogue(
        source, out, id_column="item_id", fields=FIELDS, encoder=EncoderSpec(model=MODEL),
        num_actors=actors, cpus_per_actor=1.0, batch_size=500, encode_batch_size=ENCODE_BATCH,
        blocks=blocks, progress=False,
    )  # fmt: skip
    return time.perf_counter() - started, manifest


def _print_encode(row: dict) -> None:
    print(
        f"encode  {row['kind']:<20} x{row['workers']} ({row['threads']} thread)  "
        f"{row['texts_per_s']:7.1f} texts/s ({_num(row['texts_per_s_past_fixed_cost'])} past "
        f"{row['fixed_seconds']:4.1f} s)  {row['seconds']:6.1f} s  "
        f"max|diff| {row['max_abs_diff_vs_single_1_thread']:.2e}",
        flush=True,
    )


# ---------------------------------------------------------------------- train
def ml1m_split(seed: int = 0) -> tuple[Any, Any]:
    """The MeLU-states training part of ML-1M, less a validation slice carved from it."""
    import pandas as pd

    from dayzero.core.schema import Dataset, Interactions
    from dayzero.datasets.melu import load_ml1m_melu
    from dayzero.evaluate.protocols.catalogue import melu_catalogue_split

    train = melu_catalogue_split(load_ml1m_melu(), seed=seed).train
    frame = train.interactions.frame.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    counts = frame["user"].value_counts()
    eligible = np.sort(counts.index[counts >= 2 * VALIDATION_RATINGS].to_numpy())
    chosen = rng.choice(eligible, size=min(VALIDATION_USERS, len(eligible)), replace=False)
    held = np.zeros(len(frame), dtype=bool)
    rows = frame.groupby("user").indices
    for user in chosen:
        held[rng.choice(rows[user], size=VALIDATION_RATINGS, replace=False)] = True
    fit_data = Dataset(
        Interactions(frame.loc[~held].reset_index(drop=True)),
        users=train.users,
        items=train.items,
        name="ml-1m-melu-train",
    )
    return fit_data, pd.DataFrame(frame.loc[held]).reset_index(drop=True)


def two_tower_params(epochs: int) -> dict:
    import retrieval

    return {
        "training__epochs": epochs,
        "training__validation": 0.0,
        "encoder__cache_dir": retrieval.CACHE,
    }


def validate(model: Any, validation: Any) -> dict:
    """Validation MAE and Recall@K of a fitted two-tower on the held-out slice."""
    users, items = validation["user"].tolist(), validation["item"].tolist()
    predicted = model.predict(users, items)
    positives = validation[validation["value"] >= POSITIVE]
    recalls = []
    for user, group in positives.groupby("user"):
        top, _ = model.recommend(user, k=K)
        recalls.append(float(np.isin(group["item"].to_numpy(), list(top)).mean()))
    errors = np.abs(predicted - validation["value"].to_numpy())
    return {
        "mae": float(errors.mean()),
        f"recall_at_{K}": float(np.mean(recalls)),
        "validation_ratings": len(validation),
        "validation_users_with_positives": len(recalls),
        # Per rating and per user, for the paired intervals against the plain fit (not saved).
        "abs_errors": errors.tolist(),
        "recalls": recalls,
    }


def _paired_difference(row: dict, plain: dict) -> dict:
    """``row`` minus the plain fit on the same validation slice, with 95 % paired bootstrap
    intervals (ratings resampled for MAE, users for Recall@K)."""
    from dayzero.evaluate.intervals import bootstrap_ci

    def difference(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(a) - np.mean(b))

    out = {}
    for name, key in (("mae", "abs_errors"), (f"recall_at_{K}", "recalls")):
        point, low, high = bootstrap_ci(
            difference, np.asarray(row[key]), np.asarray(plain[key]), random_state=0
        )
        out[name] = {"difference": point, "low": low, "high": high}
    return out


def fit_plain(epochs: int, seed: int) -> dict:
    import torch

    from dayzero.recommend.two_tower import TwoTowerRecommender

    torch.set_num_threads(1)
    fit_data, validation = ml1m_split(seed)
    model = TwoTowerRecommender().set_params(**two_tower_params(epochs))
    started = time.perf_counter()
    model.fit(fit_data)
    seconds = time.perf_counter() - started
    return {
        "kind": "plain fit",
        "workers": 1,
        "seconds": seconds,
        **validate(model, validation),
        "loss_curve": [float(e["train_loss"]) for e in model.history_],
        "steps": int(model.history_[-1]["step"]),
        "interactions": len(fit_data.interactions),
    }


def run_train(epochs: int, seed: int) -> dict:
    import torch

    from dayzero.distributed.train import fit_on_ray
    from dayzero.recommend.two_tower import TwoTowerRecommender

    out: dict[str, Any] = {
        "model": "two-tower, frozen all-MiniLM-L6-v2 (text cache warm), retrieval head",
        "params": two_tower_params(epochs),
        "validation": f"{VALIDATION_RATINGS} ratings each of {VALIDATION_USERS} seeded training "
        f"users with >= {2 * VALIDATION_RATINGS}; Recall@{K} on those >= {POSITIVE:g}",
        "load_average_start": _load(),
        "runs": [],
    }
    plain = run_isolated(fit_plain, epochs=epochs, seed=seed)
    plain.pop("wall_seconds", None)
    out["interactions"] = plain.pop("interactions")
    plain["load_average_after"] = _load()
    out["runs"].append(plain)
    _print_train(plain)
    torch.set_num_threads(1)
    fit_data, validation = ml1m_split(seed)
    base_lr = TwoTowerRecommender().get_params()["training"].lr
    # 2 workers of batch b step as one process of batch 2b: half the steps. Two more rows, fixed
    # before the run, not tuned: twice the learning rate (the linear scaling rule), and twice
    # the epochs (as many optimizer steps as the plain fit).
    for workers, lr_scale, epoch_scale in ((1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 1, 2)):
        params = two_tower_params(epochs * epoch_scale)
        if lr_scale != 1:
            params["training__lr"] = base_lr * lr_scale
        model = TwoTowerRecommender().set_params(**params)
        started = time.perf_counter()
        fitted = fit_on_ray(model, fit_data, num_workers=workers, cpus_per_worker=1.0)
        seconds = time.perf_counter() - started
        history = fitted.distributed_["metrics"]["history"]
        kind = "Ray Train (TorchTrainer, gloo)" + (f", lr x{lr_scale}" if lr_scale != 1 else "")
        kind += f", {epochs * epoch_scale} epochs" if epoch_scale != 1 else ""
        row = {
            "kind": kind,
            "workers": workers,
            "lr": base_lr * lr_scale,
            "epochs": epochs * epoch_scale,
            "seconds": seconds,
            **validate(fitted, validation),
            "loss_curve": [float(e["train_loss"]) for e in history],
            "steps": int(history[-1]["step"]),
        }
        row["vs_plain"] = _paired_difference(row, plain)
        row["load_average_after"] = _load()
        out["runs"].append(row)
        _print_train(row)
    for row in out["runs"]:
        row.pop("abs_errors"), row.pop("recalls")
    one = out["runs"][1]["loss_curve"]
    out["ray_1_worker_max_rel_loss_diff_vs_plain"] = float(
        np.max(np.abs(np.array(one) - plain["loss_curve"]) / np.abs(plain["loss_curve"]))
    )
    out["load_average_end"] = _load()
    return out


def _print_train(row: dict) -> None:
    print(
        f"train   {row['kind']:<31} x{row['workers']}  {row['seconds']:6.1f} s  "
        f"MAE {row['mae']:.4f}  Recall@{K} {row[f'recall_at_{K}']:.4f}  steps {row['steps']}",
        flush=True,
    )


# ---------------------------------------------------------------------- serve
def _process_cpu(proc: Any) -> float:
    import psutil

    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def _uvicorn_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the server: its supervisor process and every worker process."""
    import psutil

    root = psutil.Process(pid)
    workers = sorted(root.children(recursive=True), key=lambda p: p.pid)
    if not workers:
        return {"server": _process_cpu(root)}
    # One entry per process: whether the load is spread over the workers shows here.
    return {
        "supervisor": _process_cpu(root),
        **{f"process {n}": _process_cpu(p) for n, p in enumerate(workers)},
    }


#: Ray's process titles (``ray::ServeReplica:...``) by role.
RAY_ROLES = {"ServeReplica": "replicas", "ProxyActor": "proxy"}


def _ray_cpu() -> dict[str, float]:
    """CPU seconds of the local Ray cluster this process started, by role: its GCS, raylet and
    their workers (Serve's controller, proxy and replicas) are this process's descendants; the
    process itself runs the load client and is not counted."""
    import psutil

    out = {"replicas": 0.0, "proxy": 0.0, "other Ray processes": 0.0}
    for proc in psutil.Process().children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            continue
        role = next((v for k, v in RAY_ROLES.items() if k in title), "other Ray processes")
        out[role] += _process_cpu(proc)
    return out


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (every process, every core)."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def measure(url: str, requests: list, concurrency: int, cpu) -> dict:
    """``serve_load``'s measurement, with the CPU of the whole server (``cpu()``: seconds by
    part), of the load client (this process) and of everything else on the machine."""
    import psutil

    # The warm-up opens 8 connections at least, so that every worker process (each takes the
    # connections it accepts) has answered before the clock starts.
    asyncio.run(serve_load._drive(url, requests[: min(60, len(requests))], max(8, concurrency)))
    me = psutil.Process()
    before, client, busy = cpu(), _process_cpu(me), _busy_seconds()
    latencies, wall, statuses = asyncio.run(serve_load._drive(url, requests, concurrency))
    after = cpu()
    client, busy = _process_cpu(me) - client, _busy_seconds() - busy
    parts = {k: (after[k] - before[k]) * 1000 / len(requests) for k in after if after[k]}
    server = sum(parts.values())
    client_ms = client * 1000 / len(requests)
    ms = latencies * 1000
    return {
        "requests": len(requests),
        "concurrency": concurrency,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "requests_per_s": len(requests) / wall,
        "wall_s": wall,
        "server_cpu_ms_per_request": server,
        "server_cpu_ms_per_request_by_part": parts,
        "client_cpu_ms_per_request": client_ms,
        # What the other jobs on the shared machine took meanwhile, per request of ours.
        "other_cpu_ms_per_request": max(0.0, busy * 1000 / len(requests) - server - client_ms),
        "machine_busy_cores": busy / wall,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "load_average_after": _load(),
    }


def _scenarios(url: str, total: int, seed: int, cpu) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("known_user", "new_user"):
        share, concurrency = serve_load.SCENARIOS[name]
        requests = serve_load.scenario_requests(name, max(20, int(total * share)), rng)
        out[name] = measure(url, requests, concurrency, cpu)
    return out


def _uvicorn_run(folder: Path, workers: int, total: int, seed: int, kind: str) -> dict:
    """Both scenarios against a freshly started ``dayzero serve --workers`` over ``folder``."""
    slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
    log = serve_load._cache() / f"ray-scale-{slug}-{workers}.log"
    proc, url, startup = serve_load.start_server(folder, log, "--workers", str(workers))
    try:
        # /healthz answers once one worker is up; the load's keep-alive connections must
        # not all go to it while the other still loads the version.
        startup += _wait_workers(url, workers)
        row = {"kind": kind, "workers": workers, "startup_s": startup}
        row["client"] = serve_load.client_name
        row.update(_scenarios(url, total, seed, lambda pid=proc.pid: _uvicorn_cpu(pid)))
    finally:
        serve_load._stop(proc)
    _print_serve(row)
    return row


def _with_client(name: str, run: Any) -> Any:
    """``run()`` with ``serve_load``'s load client set to ``name``."""
    before, serve_load.client_name = serve_load.client_name, name
    try:
        return run()
    finally:
        serve_load.client_name = before


def _print_serve(row: dict) -> None:
    for name in ("known_user", "new_user"):
        r = row[name]
        print(
            f"serve   {row['kind']:<22} x{row['workers']}  {name:<10}  p50 {r['p50_ms']:6.1f} ms"
            f"  p99 {r['p99_ms']:6.1f} ms  {r['requests_per_s']:6.0f} req/s  "
            f"cpu server {r['server_cpu_ms_per_request']:.2f} client "
            f"{r['client_cpu_ms_per_request']:.2f} others {r['other_cpu_ms_per_request']:.2f} "
            f"ms/req  busy {r['machine_busy_cores']:.2f} cores  {r['statuses']}",
            flush=True,
        )


def run_serve(n_items: int, total: int, seed: int, ray_serve: bool) -> dict:
    cache = serve_load._cache()
    base = serve_load.build_base(cache)
    folder = serve_load.build_size(cache, base, n_items)
    out: dict[str, Any] = {
        "items": n_items,
        "set_up": "bench/serve_load.py's base model and store, the catalogue grown with mixed "
        "vectors (see its docstring)",
        "load_average_start": _load(),
        "runs": [],
    }
    for workers in (1, 2):
        out["runs"].append(_uvicorn_run(folder, workers, total, seed, "dayzero serve (uvicorn)"))
    # The earlier load client against a fresh server (a cold user cache again), side by side.
    kind = "dayzero serve (uvicorn), httpx client"
    out["runs"].append(_with_client("httpx", lambda: _uvicorn_run(folder, 2, total, seed, kind)))
    # Known users answered from top-K lists stored by `dayzero toplists` (issue 15, item 4).
    from dayzero.distributed.toplists import precompute_toplists

    out["toplists"] = precompute_toplists(
        folder / "events.db", folder / "models", k=100, num_actors=1, progress=False
    )
    kind = "dayzero serve (uvicorn), top-K lists stored"
    out["runs"].append(_uvicorn_run(folder, 2, total, seed, kind))
    if ray_serve:
        out["runs"] += run_ray_serve(folder, total, seed)
    out["load_average_end"] = _load()
    return out


def run_ray_serve(folder: Path, total: int, seed: int) -> list[dict]:
    import ray
    from ray import serve

    from dayzero.distributed.serve import serve_on_ray
    from dayzero.serve.app import ServeConfig

    config = ServeConfig(
        store=folder / "events.db", registry=folder / "models", api_key=serve_load.API_KEY
    )
    rows = []
    try:
        for replicas in (1, 2):
            port = serve_load._free_port()
            started = time.perf_counter()
            serve_on_ray(config, replicas=replicas, cpus_per_replica=1.0, port=port)
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url)
            row = {
                "kind": "Ray Serve",
                "workers": replicas,
                "startup_s": time.perf_counter() - started,
            }
            try:
                row.update(_scenarios(url, total, seed, _ray_cpu))
            finally:
                serve.shutdown()
            rows.append(row)
            _print_serve(row)
    finally:
        ray.shutdown()
    return rows


def _wait_workers(url: str, workers: int, seconds: float = 300.0) -> float:
    """Seconds until ``workers`` different processes have answered ``/healthz``."""
    import httpx

    started = time.perf_counter()
    seen: set[int] = set()
    while len(seen) < workers:
        if time.perf_counter() - started > seconds:
            raise RuntimeError(f"only {len(seen)} of {workers} workers answered in {seconds:g} s")
        with httpx.Client(timeout=10) as fresh:  # a new connection each time
            seen.add(fresh.get(f"{url}/healthz").json()["process"])
        time.sleep(0.05)
    return time.perf_counter() - started


def _wait_ready(url: str, seconds: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Ray Serve did not answer {url}/healthz in {seconds:g} s")


def profile_serve(n_items: int, seconds: float, seed: int, top: int = 60) -> dict:
    """Where ``dayzero serve --workers 2`` spends its GIL under the known-user load: py-spy
    samples every worker process (stacks that hold the GIL only, 100 Hz, ``--nonblocking``
    so that the workers are not paused) while the same client drives ``known_user``
    requests. ``process_share`` is each worker's share of the samples."""
    import collections

    cache = serve_load._cache()
    folder = serve_load.build_size(cache, serve_load.build_base(cache), n_items)
    raw = cache / "ray-scale-profile.txt"
    proc, url, _ = serve_load.start_server(
        folder, cache / "ray-scale-profile.log", "--workers", "2"
    )
    try:
        rng = np.random.default_rng(seed)
        warm = serve_load.scenario_requests("known_user", 60, rng)
        asyncio.run(serve_load._drive(url, warm, 8))
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid),
             "--subprocesses", "--nonblocking", "--gil", "--function", "--format", "raw",
             "--duration", str(int(seconds)), "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(1.0)  # py-spy attaches
        served = 0
        while spy.poll() is None:
            requests = serve_load.scenario_requests("known_user", 400, rng)
            asyncio.run(serve_load._drive(url, requests, 8))
            served += len(requests)
        spy.wait()
    finally:
        serve_load._stop(proc)
    inclusive: collections.Counter = collections.Counter()
    leaf: collections.Counter = collections.Counter()
    by_process: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        # Each stack starts with the processes, 'process PID:"command line"' (the command
        # line may hold ';'), the supervisor's first and the worker's next.
        processes = re.findall(r'process (\d+):"[^"]*";', stack)
        frames = re.sub(r'process \d+:"[^"]*";', "", stack).split(";")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        by_process[processes[-1] if processes else "?"] += n
        for frame in set(frames):
            inclusive[frame] += n
        leaf[frames[-1]] += n
    return {
        "items": n_items,
        "seconds": seconds,
        "requests_during": served,
        "samples": total,
        "tool": "py-spy record --subprocesses --nonblocking --gil --function --format raw "
        "(100 Hz; only stacks holding the GIL)",
        "process_share": sorted((n / total for n in by_process.values()), reverse=True),
        "inclusive_share": [[f, n / total] for f, n in inclusive.most_common(top)],
        "self_share": [[f, n / total] for f, n in leaf.most_common(top)],
    }


# ---------------------------------------------------------------------- targets + report
def verdicts(serve: dict) -> list[dict]:
    """Each serving target at 2 workers / replicas: measured, met, and by how much if not."""
    out = []
    for row in serve["runs"]:
        if row["workers"] != 2 or row.get("client", serve_load.client_name) != "aiohttp":
            continue
        known, new = row["known_user"], row["new_user"]
        for target, value, bound, lower in (
            ("known-user p99 ms", known["p99_ms"], TARGETS["known_user_p99_ms"], True),
            ("known-user req/s", known["requests_per_s"], TARGETS["known_user_requests_per_s"],
             False),
            ("new-user p99 ms", new["p99_ms"], TARGETS["new_user_p99_ms"], True),
        ):  # fmt: skip
            met = value <= bound if lower else value >= bound
            out.append(
                {
                    "server": f"{row['kind']} x2",
                    "target": f"{target} {'<=' if lower else '>='} {bound:g}",
                    "measured": value,
                    "met": met,
                    "miss_share": None if met else abs(value - bound) / bound,
                }
            )
    return out


# Frames under which every request runs (the worker, the middleware): left out of the profile.
_WRAPPERS = ("_worker ", "MetricsMiddleware.__call__ ", "BodyLimitMiddleware.__call__ ")


def markdown(payload: dict) -> str:
    lines = [
        "## Ray scale (issue 15) (`bench/ray_scale.py` → `bench/results/ray_scale.json`)",
        "",
        f"One run, {payload['started']} on {payload['machine']['cpus']} shared cores "
        f"(load average {payload['load_average_start']} at the start, "
        f"{payload['load_average_end']} at the end; other engineers' jobs ran too). "
        f"Rerun: `{payload['command']}`.",
    ]
    enc = payload.get("encode")
    if enc:
        lines += [
            "",
            f"**Catalogue encoding**, {enc['texts']:,} distinct Steam item texts "
            f"(`{' + '.join(enc['fields'])}`, {enc['mean_tokens']:.0f} tokens on average; "
            f"{enc['real_records']:,} real records"
            + (
                f", {enc['recombined_texts']:,} pairing a title with another game's genres"
                if enc["recombined_texts"]
                else ""
            )
            + f"), {enc['model']}, no cache. Ray: a local cluster of {CLUSTER_CPUS} logical "
            "CPUs on the 2 cores, actors of 1 CPU / 1 torch thread; time includes actor start, "
            "model load and the Parquet write.",
            "",
            "| encoder | workers | torch threads each | seconds | texts/s | fixed cost s | "
            "texts/s past it | max abs diff vs single process |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in enc["runs"]:
            lines.append(
                f"| {r['kind']} | {r['workers']} | {r['threads']} | {r['seconds']:.1f} | "
                f"{r['texts_per_s']:.1f} | {r['fixed_seconds']:.1f} | "
                f"{_num(r['texts_per_s_past_fixed_cost'])} | "
                f"{r['max_abs_diff_vs_single_1_thread']:.1e} |"
            )
        lines += ["", "Throughput ratios (whole call; past the fixed cost):"]
        names = {
            "ray_2_actors_vs_ray_1_actor": "2 actors / 1 actor",
            "ray_2_actors_vs_single_1_thread": "2 actors / single process, 1 thread",
            "ray_2_actors_vs_single_2_threads": "2 actors / single process, 2 threads",
            "ray_1_actor_vs_single_1_thread": "1 actor / single process, 1 thread",
        }
        lines += [
            f"- {name}: {_num(enc['ratios'][key], '.2f', 'x')}; "
            f"{_num(enc['ratios_past_fixed_cost'][key], '.2f', 'x')}"
            for key, name in names.items()
        ]
        lines += [
            "",
            "Fixed cost: the single process's encoder load; for Ray, a call on "
            f"{FIXED_TEXTS} texts just before (actors started, the encoder loaded in each, "
            "an almost empty pipeline).",
        ]
    train = payload.get("train")
    if train:
        lines += [
            "",
            f"**Training**: {train['model']}, {train['params']['training__epochs']} epochs, "
            f"{train['interactions']:,} ML-1M training interactions (MeLU states); validation: "
            f"{train['validation']} (carved from the training rows, never test). 1 torch "
            "thread per process / worker.",
            "",
            f"| fit | workers | wall s | steps (rank 0) | validation MAE | Recall@{K} | "
            f"MAE - plain fit [95 % CI] | Recall@{K} - plain fit [95 % CI] |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in train["runs"]:
            vs = r.get("vs_plain")
            diffs = (
                " | ".join(
                    f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
                    for d in (vs["mae"], vs[f"recall_at_{K}"])
                )
                if vs
                else " | "
            )
            lines.append(
                f"| {r['kind']} | {r['workers']} | {r['seconds']:.1f} | {r['steps']} | "
                f"{r['mae']:.4f} | {r[f'recall_at_{K}']:.4f} | {diffs} |"
            )
        lines += [
            "",
            "1 Ray worker against the plain fit: largest relative difference of the per-epoch "
            f"training loss {train['ray_1_worker_max_rel_loss_diff_vs_plain']:.1e}.",
        ]
    serve = payload.get("serve")
    if serve:
        lines += [
            "",
            f"**Serving** over {serve['items']:,} items ({serve['set_up']}); the load client "
            f"({payload.get('client', 'httpx')}; a row named after a client used that one) "
            "shares the 2 cores with the server.",
            "",
            "| server | workers / replicas | known-user p50 ms | p99 ms | req/s | CPU ms/req: "
            "server / client / other jobs | new-user p50 ms | p99 ms | req/s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in serve["runs"]:
            k, n = r["known_user"], r["new_user"]
            lines.append(
                f"| {r['kind']} | {r['workers']} | {k['p50_ms']:.1f} | {k['p99_ms']:.1f} | "
                f"{k['requests_per_s']:.0f} | {k['server_cpu_ms_per_request']:.2f} / "
                f"{k['client_cpu_ms_per_request']:.2f} / {k['other_cpu_ms_per_request']:.2f} | "
                f"{n['p50_ms']:.1f} | {n['p99_ms']:.1f} | {n['requests_per_s']:.0f} |"
            )
        if not payload.get("ray_serve", True):
            lines += ["", "Ray Serve was not run (`--no-ray-serve`)."]
        lines += ["", "| server | target | measured | met |", "|---|---|---|---|"]
        for v in payload["verdicts"]:
            miss = "yes" if v["met"] else f"no (off by {100 * v['miss_share']:.0f} %)"
            lines.append(f"| {v['server']} | {v['target']} | {v['measured']:.1f} | {miss} |")
    prof = payload.get("serve_profile")
    if prof:
        shares = ", ".join(f"{100 * x:.0f} %" for x in prof["process_share"])
        ours = [
            (f, x)
            for f, x in prof["inclusive_share"]
            if ("dayzero/" in f or "sqlalchemy" in f) and not f.startswith(_WRAPPERS)
        ][:10]
        lines += [
            "",
            f"**Profile** of `dayzero serve --workers 2` over {prof['items']:,} items under the "
            f"known-user load ({prof['seconds']:g} s, {prof['requests_during']:,} requests; "
            f"{prof['tool']}): {prof['samples']:,} samples, by process {shares}. The frames "
            "holding the GIL most by their own time (self share of samples, any library):",
            "",
            "| frame | self share |",
            "|---|---|",
            *(f"| `{f}` | {100 * x:.1f} % |" for f, x in prof["self_share"][:12]),
        ]
        if ours:
            lines += [
                "",
                "The dayzero and SQLAlchemy frames by inclusive share (the worker and middleware "
                "frames every request runs under left out):",
                "",
                "| frame | share |",
                "|---|---|",
                *(f"| `{f}` | {100 * x:.1f} % |" for f, x in ours),
            ]
    if payload.get("notes"):
        lines += ["", payload["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--parts", nargs="*", default=["encode", "train", "serve"])
    parser.add_argument("--no-ray-serve", action="store_true", help="Skip the Ray Serve runs.")
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=20.0,
        help="py-spy profile of `serve --workers 2` under the known-user load after the serve "
        "part (0: none).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--single-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="Torch threads of the single-process encoder runs (1 must be among them: the "
        "reference vectors); 2 threads ran 2.6x slower than 1 on the shared cores.",
    )
    parser.add_argument(
        "--client", choices=serve_load.CLIENTS, default="aiohttp", help="The load client."
    )
    parser.add_argument("--quick", action="store_true", help="Tiny sizes; writes no results.")
    parser.add_argument("--report", action="store_true", help="Print the markdown of the .json.")
    args = parser.parse_args()
    if 1 not in args.single_threads:
        parser.error("--single-threads must include 1 (the reference vectors)")
    if args.report:
        print(markdown(json.loads((RESULTS / f"{NAME}.json").read_text())), end="")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve_load.client_name = args.client
    # Always a local cluster started here: its processes are the ones timed and counted.
    os.environ.pop("RAY_ADDRESS", None)
    sizes = {k: getattr(args, k) or (QUICK if args.quick else DEFAULTS)[k] for k in DEFAULTS}
    payload: dict[str, Any] = {
        "machine": {**machine(), "physical_cores": _physical_cores()},
        "cores_shared": True,
        "shared_note": "2 cores shared with other engineers' jobs (tests, benchmarks); every "
        "time is an upper bound under the load averages recorded",
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_start": _load(),
        "command": " ".join([RERUN, *sys.argv[1:]]),
        "niceness": os.nice(0),
        "sizes": sizes,
        "ray_cluster_cpus": CLUSTER_CPUS,
        "ray_serve": not args.no_ray_serve,
        "ray": _ray_version(),
        "commit": _commit(),
        "client": serve_load.client_name,
    }
    work = Path(tempfile.mkdtemp(prefix="dayzero-ray-scale-"))
    try:
        if {"encode", "train"} & set(args.parts):
            from dayzero.distributed.cluster import ray_cluster

            started = time.perf_counter()
            with ray_cluster(num_cpus=CLUSTER_CPUS, progress=False):
                payload["ray_cluster_start_s"] = time.perf_counter() - started
                if "encode" in args.parts:
                    payload["encode"] = run_encode(sizes["texts"], work, tuple(args.single_threads))
                if "train" in args.parts:
                    payload["train"] = run_train(sizes["epochs"], args.seed)
        if "serve" in args.parts:
            payload["serve"] = run_serve(
                sizes["items"], sizes["requests"], args.seed, not args.no_ray_serve
            )
            payload["verdicts"] = verdicts(payload["serve"])
            if args.profile_seconds > 0:
                payload["serve_profile"] = profile_serve(
                    sizes["items"], args.profile_seconds, args.seed
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    payload["load_average_end"] = _load()
    payload["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    earlier = RESULTS / f"{NAME}.json"
    if not args.quick and earlier.exists():  # the parts not rerun stay, marked as earlier
        previous = json.loads(earlier.read_text())
        kept = {
            "encode": ("encode",),
            "train": ("train", "ray_cluster_start_s"),
            "serve": ("serve", "verdicts", "serve_profile"),
        }
        for part, keys in kept.items():
            if part not in args.parts and part in previous:
                for key in keys:
                    if key in previous:
                        payload[key] = previous[key]
                payload.setdefault("earlier_parts", {})[part] = {
                    "started": previous.get("earlier_parts", {})
                    .get(part, {})
                    .get("started", previous.get("started")),
                    "commit": previous.get("earlier_parts", {})
                    .get(part, {})
                    .get("commit", previous.get("commit")),
                }
    if args.quick:
        print(markdown(payload))
        return
    print(save(NAME, payload))
    print(markdown(payload))


def _physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (subprocess.CalledProcessError, OSError):
        return "unknown"
    return out.stdout.strip()


def _ray_version() -> str:
    import ray

    return ray.__version__


if __name__ == "__main__":
    main()
