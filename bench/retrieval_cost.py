"""Fit cost of the two-tower with the retrieval head: does it grow as a line?

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 nice -n 5 python bench/retrieval_cost.py \
        [--parts ml-1m synthetic] [--repeats 3] [--warm-cache]
    python bench/retrieval_cost.py --report      # the BENCHMARKS.md tables from the .json

The model is bench/retrieval_two_tower.py's ``two-tower-retrieval`` row (frozen
all-MiniLM-L6-v2 with its text cache, retrieval head, logQ 1) trained for exactly one epoch
(``training__epochs=1``; every other setting its own), so the time of an epoch is measured,
not how many epochs early stopping happens to run. Two series:

* ``ml-1m``: the training interactions of ML-1M on MeLU's states
  (``dayzero.evaluate.protocols.catalogue.melu_catalogue_split``), a seeded 25 / 50 / 100 %
  share of the rows (users and items tables kept).
* ``synthetic``: catalogues of 4,000 / 20,000 / 100,000 items with the same 200,000
  interactions of 2,000 users (every item has one; the rest drawn from 40 genres with a
  popularity skew), item texts from a seeded word generator (a title of three made-up words,
  a genre, two tags). The catalogues share their first items, so one cache holds every text.
  There are 20,000 distinct texts: item n has the text of item n % 20,000 (its own id, ID
  embedding and interactions): filling the cache took 15 minutes for 20,000 texts on the
  shared 2 cores (load 6-8), so 100,000 would have taken over an hour. What a fit computes
  per item (cache look-up, TF-IDF bag, token bag, item vector) is the same for a repeated
  text; only the cache reads are fewer (1.8 s at the measured 56k texts/s for 100k distinct
  ones).

Each fit runs in its own process (bench/_common.run_isolated) with one torch thread; it is
timed by phase: ``encode`` (text vectors, from the cache once warm: ``--warm-cache`` fills it
first, untimed), ``train`` (the epoch, its closing validation pass included), ``validation``
(that pass alone), ``calibrate`` (content-only calibration) and ``fit`` (all of it). Reported:
medians of ``--repeats`` runs, seconds per epoch, per 1,000 interactions and per training step,
the process's peak memory, ``os.getloadavg()`` before and after each run, and the ratios
between sizes. An epoch is one pass over the training *users* (``batch_users`` per step, each
with a support of at most ``max_history`` rows and ``query_size`` query rows), so its cost
follows users and their capped histories more than the number of interactions; a step
computes only the items it needs, so catalogue size enters through the per-item work above,
the validation pass and the calibration (both over every item).

The machine is shared (2 cores, other jobs): every time is an upper bound under the load
recorded beside it. Writes ``bench/results/retrieval_cost.json`` (``BENCH_RESULTS`` overrides
the folder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import retrieval
import retrieval_two_tower

if os.environ.get("BENCH_RESULTS"):
    _common.RESULTS = retrieval.RESULTS = Path(os.environ["BENCH_RESULTS"])

NAME = "retrieval_cost"
FRACTIONS = (0.25, 0.5, 1.0)
ITEMS = (4_000, 20_000, 100_000)
SYNTHETIC_INTERACTIONS = 200_000
SYNTHETIC_USERS = 2_000
GENRES = 40
#: Distinct item texts: the 100k catalogue repeats them (see the module docstring).
DISTINCT_TEXTS = 20_000
CACHE = str(Path(retrieval.CACHE).parent / "encoder-synthetic")
PARAMS = {
    **retrieval_two_tower.RETRIEVAL,
    "training__logq_correction": 1.0,
    "training__epochs": 1,
}


def _word(rng: Any) -> str:
    syllables = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sha", "dor", "lin", "bex")
    return "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))


def synthetic_dataset(n_items: int, seed: int = 0) -> Any:
    """``n_items`` items (text fields from a seeded generator) and the fixed interactions."""
    import numpy as np
    import pandas as pd

    from dayzero.core.schema import Dataset, Entities, Interactions

    # Texts: drawn for the largest catalogue, so the smaller ones are its first items; item n
    # has the text of item n % DISTINCT_TEXTS (see the module docstring).
    rng = np.random.default_rng(seed)
    largest = max(ITEMS)
    vocabulary = np.array(sorted({_word(rng) for _ in range(4000)}))
    genres = [f"genre {g}" for g in range(GENRES)]
    source = np.arange(largest) % DISTINCT_TEXTS
    genre = rng.integers(0, GENRES, size=largest)[source]
    words = rng.integers(0, len(vocabulary), size=(largest, 5))[source]
    ids = [f"i{n:06d}" for n in range(n_items)]
    items = pd.DataFrame(
        {
            "title": [" ".join(vocabulary[w[:3]]) for w in words[:n_items]],
            "genre": [genres[g] for g in genre[:n_items]],
            "tags": [list(vocabulary[w[3:]]) for w in words[:n_items]],
        },
        index=pd.Index(ids, name="item"),
    )
    # Interactions: every item once (a user fond of its genre), the rest by genre and skew.
    rng = np.random.default_rng(seed + 1)
    fond = rng.integers(0, GENRES, size=(SYNTHETIC_USERS, 2))
    genre = genre[:n_items]
    fans = {g: np.flatnonzero((fond == g).any(axis=1)) for g in range(GENRES)}
    first_users = np.array([rng.choice(fans[g]) if len(fans[g]) else 0 for g in genre])
    # Oversampled, then the first SYNTHETIC_INTERACTIONS distinct (user, item) pairs kept.
    rest = 3 * SYNTHETIC_INTERACTIONS
    users = rng.integers(0, SYNTHETIC_USERS, size=rest)
    by_genre = [np.flatnonzero(genre == g) for g in range(GENRES)]
    liked = rng.random(rest) < 0.7
    chosen_genre = fond[users, rng.integers(0, 2, size=rest)]
    skew = rng.random(rest) ** 3  # a popularity skew within each genre
    picks = rng.integers(0, n_items, size=rest)
    for g in range(GENRES):
        rows = np.flatnonzero(liked & (chosen_genre == g))
        if len(by_genre[g]):
            picks[rows] = by_genre[g][(skew[rows] * len(by_genre[g])).astype(np.int64)]
    good = np.concatenate([np.ones(n_items, bool), liked])
    values = np.where(good, rng.integers(4, 6, size=len(good)), rng.integers(1, 4, size=len(good)))
    frame = pd.DataFrame(
        {
            "user": np.concatenate([first_users, users]),
            "item": np.concatenate([np.arange(n_items), picks]),
            "value": values.astype(float),
        }
    ).drop_duplicates(["user", "item"])
    frame = frame.iloc[:SYNTHETIC_INTERACTIONS]
    frame = frame.assign(
        user=[f"u{u:05d}" for u in frame["user"]], item=[ids[i] for i in frame["item"]]
    )
    entities = Entities(items, {"title": "text", "genre": "categorical", "tags": "multi"})
    return Dataset(Interactions(frame), items=entities, name=f"synthetic-{n_items}")


def ml1m_dataset(fraction: float, seed: int = 0) -> Any:
    """A seeded ``fraction`` of the ML-1M MeLU-states training rows, with the tables."""
    import numpy as np

    from dayzero.core.schema import Dataset, Interactions
    from dayzero.datasets.melu import load_ml1m_melu
    from dayzero.evaluate.protocols.catalogue import melu_catalogue_split

    train = melu_catalogue_split(load_ml1m_melu(), seed=seed).train
    frame = train.interactions.frame
    keep = np.sort(
        np.random.default_rng(seed).choice(
            len(frame), size=round(fraction * len(frame)), replace=False
        )
    )
    return Dataset(
        Interactions(frame.iloc[keep]), users=train.users, items=train.items, name="ml-1m"
    )


class _Phases:
    """Seconds spent in some methods of the model, by name (wrapped for one fit)."""

    def __init__(self, cls: Any, names: tuple[str, ...]) -> None:
        self.seconds = dict.fromkeys(names, 0.0)
        self.calls = dict.fromkeys(names, 0)
        for name in names:
            setattr(cls, name, self._timed(name, getattr(cls, name)))

    def _timed(self, name: str, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return wrapper


def measure(part: str, size: float, seed: int, cache_dir: str) -> dict:
    import resource

    import torch

    from dayzero.recommend.two_tower import TwoTowerRecommender

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    start = time.perf_counter()
    data = ml1m_dataset(size, seed) if part == "ml-1m" else synthetic_dataset(int(size), seed)
    data_seconds = time.perf_counter() - start
    phases = _Phases(TwoTowerRecommender, ("_train", "_validation_recall", "_calibrate_cold"))
    model = retrieval._two_tower({**PARAMS, "encoder__cache_dir": cache_dir})
    model._text_encoder()  # the encoder is loaded before the clock starts
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    model.fit(data)
    fit_seconds = time.perf_counter() - start
    frame = data.interactions.frame
    users = int(frame["user"].nunique())
    train_users = round(users * (1 - model.training_.validation))
    return {
        "part": part,
        "size": size,
        "interactions": len(frame),
        "users": users,
        "items": len(model.item_map_),
        "known_items": model.n_known_items_,
        "steps": -(-train_users // model.training_.batch_users),
        "data_seconds": data_seconds,
        "fit_seconds": fit_seconds,
        "encode_seconds": model.encode_seconds_,
        "train_seconds": phases.seconds["_train"],
        "validation_seconds": phases.seconds["_validation_recall"],
        "calibrate_seconds": phases.seconds["_calibrate_cold"],
        "epochs_run": len(model.history_),
        "rss_before_fit_mib": rss_before,
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
    }


def warm_cache(cache_dir: str) -> dict:
    """Encode every synthetic item text once into the cache (untimed preparation)."""
    import torch

    torch.set_num_threads(1)
    data = synthetic_dataset(DISTINCT_TEXTS)
    model = retrieval._two_tower({**PARAMS, "encoder__cache_dir": cache_dir})
    from dayzero.core.templates import entity_template

    model.item_template_ = entity_template(None, data.items)
    texts = model._item_texts(data.items, list(data.items.ids))
    start = time.perf_counter()
    encoder = model._text_encoder()
    for begin in range(0, len(texts), 5000):  # the cache keeps each chunk as it is done
        encoder.encode(texts[begin : begin + 5000], batch_size=64, normalize=True)
        print(f"encoded {begin + 5000} texts, {time.perf_counter() - start:.0f} s", flush=True)
    return {"texts": len(texts), "seconds": time.perf_counter() - start}


def end_to_end(seed: int = 0) -> dict:
    """The ML-1M cost target (fit + every segment <= 10 minutes on 2 cores), from the
    harness's ``two-tower-retrieval`` row in ``retrieval_ml-1m.json`` (bench/retrieval.py's own
    process timings, selection on validation included). That run scores at most
    ``max_users`` users per setting; the scoring time of every task of every setting is
    extrapolated from its seconds per task."""
    from dayzero.evaluate.protocols.catalogue import NEW_ITEMS

    path = _common.RESULTS / "retrieval_ml-1m.json"
    if not path.is_file():
        return {"missing": str(path)}
    payload = json.loads(path.read_text())
    row = next((r for r in payload["results"] if r["model"] == "two-tower-retrieval"), None)
    if row is None:
        return {"missing": f"two-tower-retrieval in {path}"}
    spec = retrieval.DATASETS["ml-1m"]
    _, (split, catalogue) = next(iter(spec.protocols(seed).items()))
    tasks = sum(
        len(s.tasks)
        for s in split.ranking_settings(catalogue, spec.ks)
        if s.name != f"{NEW_ITEMS} among {NEW_ITEMS}"
    )
    per_task = row["score_seconds"] / row["scored_tasks"]
    every = row["wall_seconds"] + per_task * (tasks - row["scored_tasks"])
    return {
        "source": f"{path.name}, commit {payload.get('commit')}",
        "max_users": payload.get("max_users"),
        **{
            k: row[k]
            for k in (
                "data_seconds",
                "select_seconds",
                "fit_seconds",
                "fold_in_seconds",
                "score_seconds",
                "scored_tasks",
                "wall_seconds",
                "peak_rss_mib",
            )
        },
        "every_task": tasks,
        "every_task_wall_seconds_extrapolated": every,
        "target_seconds": 600,
    }


def _median(runs: list[dict], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def summarise(runs: list[dict]) -> list[dict]:
    """Medians per (part, size), per-unit costs and ratios to the smallest size."""
    out = []
    for part in dict.fromkeys(r["part"] for r in runs):
        rows = []
        for size in dict.fromkeys(r["size"] for r in runs if r["part"] == part):
            group = [r for r in runs if r["part"] == part and r["size"] == size]
            row = {
                "part": part,
                "size": size,
                "repeats": len(group),
                **{k: group[0][k] for k in ("interactions", "users", "items", "known_items")},
                "steps": group[0]["steps"],
            }
            for key in (
                "fit_seconds",
                "train_seconds",
                "validation_seconds",
                "calibrate_seconds",
                "encode_seconds",
                "peak_rss_mib",
            ):
                row[key] = _median(group, key)
            row["epoch_seconds"] = row["train_seconds"]
            row["seconds_per_1k_interactions"] = 1000 * row["fit_seconds"] / row["interactions"]
            row["ms_per_step"] = (
                1000 * (row["train_seconds"] - row["validation_seconds"]) / max(row["steps"], 1)
            )
            row["loadavg_1min"] = [round(r["loadavg_before"][0], 2) for r in group]
            rows.append(row)
        base = rows[0]
        unit = "interactions" if part == "ml-1m" else "items"
        for row in rows:
            row["size_ratio"] = row[unit] / base[unit]
            row["fit_ratio"] = row["fit_seconds"] / base["fit_seconds"]
            row["epoch_ratio"] = row["epoch_seconds"] / base["epoch_seconds"]
        out += rows
    return out


def report(payload: dict) -> str:
    lines = [
        "| series | size | interactions | users | items | steps | fit s | epoch s (val. s) | "
        "calibrate s | encode s | ms / step | s / 1k inter. | peak MiB | size x | fit x | "
        "load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["summary"]:
        size = f"{r['size']:.0%}" if r["part"] == "ml-1m" else f"{int(r['size']):,} items"
        lines.append(
            f"| {r['part']} | {size} | {r['interactions']:,} | {r['users']:,} | {r['items']:,} | "
            f"{r['steps']} | {r['fit_seconds']:.1f} | {r['epoch_seconds']:.1f} "
            f"({r['validation_seconds']:.1f}) | {r['calibrate_seconds']:.1f} | "
            f"{r['encode_seconds']:.1f} | {r['ms_per_step']:.0f} | "
            f"{r['seconds_per_1k_interactions']:.3f} | {r['peak_rss_mib']:.0f} | "
            f"{r['size_ratio']:.2f} | {r['fit_ratio']:.2f} | "
            + ", ".join(f"{x:.1f}" for x in r["loadavg_1min"])
            + " |"
        )
    e2e = payload.get("ml1m_end_to_end", {})
    if "wall_seconds" in e2e:
        lines += [
            "",
            f"ML-1M end to end ({e2e['source']}, at most {e2e['max_users']} users per setting): "
            f"wall {e2e['wall_seconds']:.0f} s = selection {e2e['select_seconds']:.0f} + fit "
            f"{e2e['fit_seconds']:.0f} + fold-in {e2e['fold_in_seconds']:.0f} + scoring "
            f"{e2e['score_seconds']:.0f} ({e2e['scored_tasks']:,} tasks) + data; every task of "
            f"every setting ({e2e['every_task']:,}): "
            f"{e2e['every_task_wall_seconds_extrapolated']:.0f} s extrapolated; target "
            f"{e2e['target_seconds']} s.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="*", default=["ml-1m", "synthetic"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="default: the harness's, per part")
    parser.add_argument("--warm-cache", action="store_true", help="fill the synthetic cache")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--end-to-end", action="store_true", help="only the ML-1M target")
    args = parser.parse_args()
    path = _common.RESULTS / f"{NAME}.json"
    if args.report:
        print(report(json.loads(path.read_text())))
        return
    if args.end_to_end:
        print(json.dumps(end_to_end(args.seed), indent=2))
        return
    if args.warm_cache:
        print(_common.run_isolated(warm_cache, cache_dir=args.cache_dir or CACHE), flush=True)
    runs = []
    for part in args.parts:
        sizes = FRACTIONS if part == "ml-1m" else ITEMS
        cache = args.cache_dir or (retrieval.CACHE if part == "ml-1m" else CACHE)
        for repeat in range(args.repeats):
            for size in sizes:
                out = _common.run_isolated(
                    measure, part=part, size=size, seed=args.seed, cache_dir=cache
                )
                out["repeat"] = repeat
                runs.append(out)
                print(
                    f"{part} {size} #{repeat}: fit {out['fit_seconds']:.1f}s train "
                    f"{out['train_seconds']:.1f}s calibrate {out['calibrate_seconds']:.1f}s "
                    f"encode {out['encode_seconds']:.1f}s peak {out['peak_rss_mib']:.0f} MiB "
                    f"load {out['loadavg_before'][0]:.1f}",
                    flush=True,
                )
    payload = {
        "machine": _common.machine(),
        "commit": retrieval._commit(),
        "params": PARAMS,
        "runs": runs,
        "summary": summarise(runs) if runs else [],
        "ml1m_end_to_end": end_to_end(args.seed),
    }
    _common.save(NAME, payload)
    print(report(payload))


if __name__ == "__main__":
    main()
