"""Full-catalogue cold start: Recall@10/20 and NDCG@10/20 (95 % bootstrap CIs) per segment.

    DAYZERO_DATA=../shared/data nice -n 5 python bench/retrieval.py --dataset ml-1m
        [--models popularity item-knn ...] [--max-users 2000] [--seed 0] [--append]
    python bench/retrieval.py --dataset ml-1m --report-only   # rewrite the .md from the .json
    python bench/retrieval.py --summary                       # the BENCHMARKS.md tables
    python bench/retrieval.py --dataset ml-1m --time-scoring  # the three scoring paths, timed

Protocols (dayzero.evaluate.protocols.catalogue): every segment ranked over the whole
catalogue, history items never candidates. ``ml-1m``: MeLU's states (warm_up = warm,
user_cold_testing = new users revealing their first k = 0/1/3/5/10 ratings in a seeded order,
item_cold_testing = new items, user_and_item_cold_testing = both); ``ml-100k``: a time cut at the
70 % quantile of the timestamps (new users and items = first seen after it); ``citeulike``:
Heater's item cold-start split, the cold test articles ranked among themselves and among every
article, the item side once the tags and once the citations only; ``steam-reviews`` /
``steam-200k``: the Steam new-games and new-players protocols (dayzero.evaluate.protocols.steam);
``restaurant``: the UCI restaurant data, 30 % of the diners and 20 % of the restaurants held
out. Relevant = rating >= 4 (restaurant: 2 of 0-2), every positive on implicit data. Training
data holds only the known users' profiles and the known items' fields; the new ones are folded
in after the fit. Settings a model has to choose (``MODELS[name].grid``) are chosen on the
protocol's ``validation_split()`` (carved out of the training data), never on test users.

Every (protocol, model) runs in its own process (bench/_common.run_isolated): fit, fold-in and
scoring seconds are its own, peak memory is the process's (data loading included), with one
torch thread. Each setting evaluates at most ``--max-users`` users (a seeded draw, the same one
for every model). Writes ``bench/results/retrieval_<dataset>.json`` and ``.md``.

Adding a model: an entry in ``MODELS`` (how to build it, which data it can learn from, the grid
of settings to choose on validation, and its scorer). A name that is not there but is
registered in dayzero's REGISTRY (``@register``, or ``BUILTIN_MODELS``) runs with its default
parameters through ``recommender_scorer``: registered peers just work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import RESULTS, machine, run_isolated, save
from steam import TfidfContent

if os.environ.get("BENCH_RESULTS"):  # trial runs that must not touch the committed files
    _common.RESULTS = RESULTS = Path(os.environ["BENCH_RESULTS"])

CACHE = str(Path(__file__).resolve().parent.parent / ".dayzero_cache" / "encoder")
CUTOFFS = (10, 20)
SELECT_K = 20
#: Validation users per setting and grid value (seeded draw).
VALIDATION_USERS = 500
DEFAULT_MAX_USERS = 2000


# --- datasets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """How to load a dataset and build its protocols."""

    protocols: Callable[[int], dict[str, tuple[Any, list]]]
    feedback: str  # "explicit" or "implicit"
    ks: tuple[int, ...] = (0, 1, 3, 5, 10)
    template: Callable[[], dict | None] = lambda: None
    note: str = ""
    #: Protocols that differ from the first one only in the item fields: a model that reads
    #: no item field is run on the first one alone.
    item_side_variants: tuple[str, ...] = ()
    #: The item field of release dates, where the data has one (the Steam protocols define
    #: their new games by it): a model that carves its own validation reads it.
    release_field: str | None = None


def _ml1m(seed: int) -> dict:
    from dayzero.datasets.melu import load_ml1m_melu
    from dayzero.evaluate.protocols.catalogue import melu_catalogue_split

    split = melu_catalogue_split(load_ml1m_melu(), seed=seed)
    return {"MeLU states": (split, split.catalogue)}


def _ml100k(seed: int) -> dict:
    from dayzero.datasets.movielens100k import load_ml100k
    from dayzero.evaluate.protocols.catalogue import ml100k_catalogue_split

    split = ml100k_catalogue_split(load_ml100k(), seed=seed)
    return {"time cut": (split, split.catalogue)}


def _citeulike(seed: int) -> dict:
    from dayzero.datasets.citeulike import load_citeulike, load_heater_split
    from dayzero.evaluate.protocols.catalogue import CITEULIKE_SIDES, heater_catalogue_split

    data, heater = load_citeulike(with_citations=True), load_heater_split()
    out = {}
    for side in CITEULIKE_SIDES:
        split = heater_catalogue_split(data, heater, side=side, seed=seed)
        out[f"Heater split, {side}"] = (split, split.catalogue)
    return out


def _steam(which: str) -> Callable[[int], dict]:
    def build(seed: int) -> dict:
        from dayzero.evaluate.protocols.catalogue import steam_protocols
        from dayzero.evaluate.ranking import catalogue

        if which == "steam-200k":
            from dayzero.datasets.steam import load_steam_200k, load_steam_games
            from dayzero.evaluate.protocols.steam import steam_200k_implicit

            data = steam_200k_implicit(load_steam_200k(behaviour="play"), load_steam_games())
        else:
            from dayzero.datasets.steam import load_steam_reviews
            from dayzero.evaluate.protocols.steam import steam_implicit

            data = steam_implicit(load_steam_reviews())
        games = catalogue(data.dataset)
        protocols = steam_protocols(data.dataset, seed=seed, timed=which != "steam-200k")
        return {name: (split, games) for name, split in protocols.items()}

    return build


def _steam_template() -> dict:
    from dayzero.evaluate.protocols.steam import GAME_TEMPLATE

    return GAME_TEMPLATE.to_dict()


def _restaurant(seed: int) -> dict:
    from dayzero.datasets.restaurant import load_restaurant
    from dayzero.evaluate.protocols.catalogue import restaurant_catalogue_split

    split = restaurant_catalogue_split(load_restaurant(), seed=seed)
    return {"holdout": (split, split.catalogue)}


DATASETS: dict[str, DatasetSpec] = {
    "ml-1m": DatasetSpec(_ml1m, "explicit", note="ML-1M on MeLU's states, seeded reveal order"),
    # The warm-up curve of issue 12's ML-1M target (k = 0..20); kept apart because a deeper
    # max(k) keeps fewer users in every new-user setting.
    "ml-1m-warmup": DatasetSpec(
        _ml1m,
        "explicit",
        ks=(0, 1, 2, 3, 5, 10, 15, 20),
        note="ML-1M on MeLU's states, new users revealing up to 20 ratings",
    ),
    "ml-100k": DatasetSpec(_ml100k, "explicit", note="time cut at the 70 % quantile"),
    "citeulike": DatasetSpec(
        _citeulike,
        "implicit",
        ks=(),
        note="Heater's split",
        item_side_variants=("Heater split, citations",),
    ),
    "steam-reviews": DatasetSpec(
        _steam("steam-reviews"),
        "implicit",
        ks=(0, 1, 3, 5, 10),
        template=_steam_template,
        release_field="release_date",
    ),
    "steam-200k": DatasetSpec(
        _steam("steam-200k"),
        "implicit",
        ks=(0, 1, 3, 5, 10),
        template=_steam_template,
        note="no timestamps: file order stands in for time",
        release_field="release_date",
    ),
    "restaurant": DatasetSpec(_restaurant, "explicit", ks=(0, 1, 3, 5)),
}


# --- models ---------------------------------------------------------------------------------------


class TfidfHistory(TfidfContent):
    """bench/steam.py's content-tfidf scoring (the sum of TF-IDF cosines between a candidate and
    the history items) over a fitted :class:`ContentKNN`'s vectors: vocabulary and IDF of the
    known items' text, new items embedded by ``ContentKNN.partial_fit_items`` (the protocol's
    fold-in), nothing refit. On ratings only the liked history items (value >= threshold)
    count, all of them when none is liked."""

    def __init__(self, model: Any, threshold: float | None) -> None:
        self.model = model
        self.threshold = threshold
        self.ids = model.item_map_.ids
        self.row = {item: n for n, item in enumerate(self.ids)}
        self.vectors = model.item_vectors_

    def score_task(self, task: Any, candidates: list) -> Any:
        history = list(task.history)
        if self.threshold is not None and task.values is not None:
            liked = [i for i, v in zip(history, task.values, strict=True) if v >= self.threshold]
            history = liked or history
        return self(history, candidates)


def _recommender(name: str) -> Callable[[dict], Any]:
    def build(params: dict) -> Any:
        from dayzero.recommend.contract import make_recommender

        return make_recommender(name, **params)

    return build


def _recommender_scorer(model: Any, split: Any, threshold: float | None) -> Any:
    from dayzero.evaluate.ranking import recommender_scorer

    return recommender_scorer(model)


def _content_tfidf_scorer(model: Any, split: Any, threshold: float | None) -> Any:
    return TfidfHistory(model, threshold)


def _two_tower(params: dict) -> Any:
    from dayzero.recommend.two_tower import TwoTowerRecommender

    return TwoTowerRecommender().set_params(**params)


def _hybrid(params: dict) -> Any:
    """HybridRecommender over its default parts (popularity, item-kNN, implicit ALS, TF-IDF
    content, the frozen-MiniLM two-tower's retrieval head, as the ``two-tower-retrieval`` row
    trains it):
    the dataset's template and the encoder cache go to the parts that read them."""
    from dayzero.recommend.hybrid import DEFAULT_PARTS, HybridRecommender

    params = dict(params)
    template, cache_dir = params.pop("template", None), params.pop("cache_dir", None)
    parts = {
        name: {**spec, "params": dict(spec.get("params", {}))}
        for name, spec in DEFAULT_PARTS.items()
    }
    if template is not None:
        parts["content"]["params"]["template"] = template
        parts["two-tower"]["params"]["item_template"] = template
    if cache_dir is not None:
        parts["two-tower"]["params"]["encoder__cache_dir"] = cache_dir
    return HybridRecommender(parts=parts, **params)


@dataclass(frozen=True)
class ModelSpec:
    """How the harness runs a model.

    Attributes
    ----------
    build
        ``build(params) -> model`` with ``fit(dataset)`` (unfitted; ``params`` = the fixed
        ``params`` updated by the chosen grid value; ``template`` / ``cache_dir`` entries are
        filled per dataset where the model takes them).
    feedback
        Data it can learn from: ``("explicit", "implicit")``, or one of them.
    params
        Fixed settings.
    grid
        Name -> settings, chosen on the protocol's validation split by mean Recall@20 over its
        segments (first wins ties); one entry: nothing to choose.
    score_time
        The grid's settings act at scoring only: the validation model is fitted once and each
        value set on it.
    scorer
        ``scorer(fitted model, split, threshold) -> scorer``.
    template_param, cache_param
        The parameter taking the dataset's item template / the text-encoder cache folder.
    threshold_param
        The parameter taking the protocol's relevance threshold (``value >= threshold``).
    release_param
        The parameter taking the dataset's release-date field (where it has one).
    reads_items
        Whether it reads item fields (``False``: it is not rerun on protocols that differ only
        in them).
    note
        One line for the report.
    """

    build: Callable[[dict], Any]
    feedback: tuple[str, ...] = ("explicit", "implicit")
    params: dict = field(default_factory=dict)
    grid: dict[str, dict] = field(default_factory=lambda: {"default": {}})
    score_time: bool = False
    scorer: Callable[[Any, Any, float | None], Any] = _recommender_scorer
    template_param: str | None = None
    cache_param: str | None = None
    threshold_param: str | None = None
    release_param: str | None = None
    reads_items: bool = True
    note: str = ""


def _hybrid_spec(note: str, release_param: str | None = None, **fixed: Any) -> ModelSpec:
    """The harness's spec of the hybrid (or a variant with ``fixed`` parameters): the
    dataset's template, encoder cache and relevance threshold go to it."""
    return ModelSpec(
        (lambda params: _hybrid({**params, **fixed})) if fixed else _hybrid,
        template_param="template",
        cache_param="cache_dir",
        threshold_param="threshold",
        release_param=release_param,
        note=note,
    )


#: Variants of the hybrid measured beside it, not run by default.
ABLATIONS = ("hybrid-shared", "hybrid-release")
RATINGS_ONLY = (
    "fits ratings: on implicit data every target is 1 (no signal); ALS/BPR are the peers' package"
)
MODELS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(
        _recommender("popularity"), reads_items=False, note="interaction count"
    ),
    "item-knn": ModelSpec(
        _recommender("item-knn"),
        grid={
            "similarity, 50 neighbours": {
                "scoring": "similarity",
                "centered": False,
                "k_neighbors": 50,
            },
            "similarity, 200 neighbours": {
                "scoring": "similarity",
                "centered": False,
                "k_neighbors": 200,
            },
        },
        reads_items=False,
        note="sum of item-item cosines to the user's items",
    ),
    "mf": ModelSpec(
        _recommender("mf"),
        feedback=("explicit",),
        grid={f"reg {r:g}": {"reg": r} for r in (3.0, 10.0, 30.0)},
        reads_items=False,
        note="biased MF (ALS), ranked by predicted rating; " + RATINGS_ONLY,
    ),
    "content-knn": ModelSpec(
        _recommender("content-knn"),
        feedback=("explicit",),
        template_param="template",
        note="ContentKNN as it is: ranked by its predicted rating; " + RATINGS_ONLY,
    ),
    "content-tfidf": ModelSpec(
        _recommender("content-knn"),
        scorer=_content_tfidf_scorer,
        template_param="template",
        note="sum of TF-IDF cosines to the (liked) history items, ContentKNN's vectors",
    ),
    "two-tower": ModelSpec(
        _two_tower,
        feedback=("explicit",),
        params={
            "training__epochs": 20,
            "training__ranking_weight": 0.5,
            "training__retrieval_weight": 0.0,
        },
        grid={
            "no support shift": {"support_shrinkage": None},
            "shift 10": {"support_shrinkage": 10.0},
        },
        score_time=True,
        template_param="item_template",
        cache_param="encoder__cache_dir",
        note="frozen MiniLM two-tower, rating head (+0.5 pairwise), ranked by predicted rating; "
        "the rating head has no signal on implicit data",
    ),
    "hybrid": _hybrid_spec(
        "HybridRecommender: popularity + item-kNN + implicit ALS + TF-IDF content "
        "(liked history and profile cosines) + two-tower retrieval head, z-scored per user "
        "over the catalogue; weights, content-only items' own weights and a new-item offset "
        "per history-length bucket chosen inside fit on a carve of the training data "
        "(Recall@20)"
    ),
    "hybrid-shared": _hybrid_spec(
        "the hybrid with new_item_weights='shared': content-only items ordered by the "
        "bucket's blend weights (the hybrid before they got weights of their own)",
        new_item_weights="shared",
    ),
    "hybrid-release": _hybrid_spec(
        "the hybrid with release_field set to the dataset's release dates (Steam): the "
        "carve's new items are the latest released, as the protocol's new games are",
        release_param="release_field",
    ),
}
DEFAULT_MODELS = tuple(m for m in MODELS if m not in ABLATIONS)


def resolve(name: str) -> ModelSpec:
    """The harness's spec of ``name``, or a registered recommender with its defaults."""
    if name in MODELS:
        return MODELS[name]
    from dayzero.recommend.contract import REGISTRY

    if name not in REGISTRY:
        raise SystemExit(
            f"unknown model {name!r}: add it to MODELS in bench/retrieval.py or register it "
            f"(dayzero.recommend.contract.register); known: {sorted({*MODELS, *REGISTRY})}"
        )
    return ModelSpec(_recommender(name), note="registered model, default parameters")


# --- one measurement ------------------------------------------------------------------------------


def _params(
    spec: ModelSpec,
    dataset: DatasetSpec,
    value: str,
    cache_dir: str,
    threshold: float | None = None,
) -> dict:
    params = {**spec.params, **spec.grid[value]}
    if spec.threshold_param:
        params[spec.threshold_param] = threshold
    template = dataset.template()
    if spec.template_param and template is not None:
        params[spec.template_param] = template
    if spec.cache_param:
        params[spec.cache_param] = cache_dir
    if spec.release_param and dataset.release_field is not None:
        params[spec.release_param] = dataset.release_field
    return params


def _fit(spec: ModelSpec, params: dict, split: Any) -> Any:
    model = spec.build(params).fit(split.train)
    return split.fold_in(model)


def _select(spec, dataset, split, seed, cache_dir, threshold) -> dict | None:
    from dayzero.evaluate.ranking import select_setting

    if len(spec.grid) < 2:
        return None
    fitted: dict[str, Any] = {}

    def fit(value: str, validation: Any) -> Any:
        params = _params(spec, dataset, value, cache_dir, threshold)
        if spec.score_time:
            if "model" not in fitted:
                fitted["model"] = _fit(spec, params, validation)
            model = fitted["model"].set_params(**spec.grid[value])
        else:
            model = _fit(spec, params, validation)
        return spec.scorer(model, validation, threshold)

    selection = select_setting(
        fit,
        split.validation_split(),
        list(spec.grid),
        k=SELECT_K,
        ks=dataset.ks,
        max_users=VALIDATION_USERS,
        seed=seed,
    )
    return selection.to_dict()


def measure(
    dataset: str, protocol: str, model: str, seed: int, max_users: int | None, cache_dir: str
) -> dict:
    import time

    import torch

    from dayzero.evaluate.ranking import evaluate_protocol

    # One thread: on a shared, oversubscribed machine more threads spin and run ~10x slower.
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = DATASETS[dataset]
    split, games = data.protocols(seed)[protocol]
    data_seconds = time.perf_counter() - start
    spec = resolve(model)
    threshold = getattr(split, "threshold", None)
    start = time.perf_counter()
    selection = _select(spec, data, split, seed, cache_dir, threshold)
    select_seconds = time.perf_counter() - start
    chosen = selection["chosen"] if selection else next(iter(spec.grid))
    start = time.perf_counter()
    fitted = spec.build(_params(spec, data, chosen, cache_dir, threshold)).fit(split.train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    split.fold_in(fitted)
    fold_seconds = time.perf_counter() - start
    scorer = spec.scorer(fitted, split, threshold)
    start = time.perf_counter()
    rows = evaluate_protocol(
        scorer,
        split,
        games,
        k=CUTOFFS,
        ks=data.ks,
        max_users=max_users,
        seed=seed,
        n_resamples=1000,
    )
    score_seconds = time.perf_counter() - start
    tasks = sum(r["users"] for r in rows if not r["setting"].endswith(" among new items"))
    # a model that chooses its own settings inside fit (the hybrid's blend) reports them
    extra = {"blend": fitted.blend_} if hasattr(fitted, "blend_") else {}
    return {
        **extra,
        "dataset": dataset,
        "protocol": protocol,
        "model": model,
        "note": spec.note,
        "chosen": chosen,
        "params": {
            k: v
            for k, v in _params(spec, data, chosen, cache_dir, threshold).items()
            if k not in (spec.cache_param, spec.template_param)
        },
        "selection": selection,
        "data_seconds": data_seconds,
        "select_seconds": select_seconds,
        "fit_seconds": fit_seconds,
        "fold_in_seconds": fold_seconds,
        "score_seconds": score_seconds,
        "scored_tasks": tasks,
        "split": split.summary(),
        "rows": rows,
    }


def time_scoring(dataset: str, model: str, seed: int, users: int, cache_dir: str) -> dict:
    """Milliseconds per task of three ways to score the whole catalogue, on the users of the
    protocol's first setting with a revealed history (else its first): ``Recommender.predict``
    over every candidate, ``recommend(k=all)`` read through a dict (the scorer before the
    harness work), and one ``_score_items`` call read at cached positions (the scorer now).
    Each gets the same request: a known user as itself, a new user with the revealed values."""
    import time

    import numpy as np
    import torch

    from dayzero.evaluate.ranking import history_interactions, recommender_scorer, subsample

    torch.set_num_threads(1)
    data = DATASETS[dataset]
    name, (split, games) = next(iter(data.protocols(seed).items()))
    spec = resolve(model)
    fitted = _fit(spec, _params(spec, data, next(iter(spec.grid)), cache_dir), split)
    settings = split.ranking_settings(games, data.ks)
    revealed = [s for s in settings if not s.tasks[0].known_user and s.tasks[0].history]
    setting = (revealed or settings)[0]
    tasks = subsample(setting.tasks, users, seed)
    union = list(dict.fromkeys(i for c in setting.candidates.values() for i in c))
    fast = recommender_scorer(fitted)

    def request(task):
        if task.known_user:
            return task.user, None
        user = fast.user if task.user in getattr(fitted, "seen_", {}) else task.user
        return user, history_interactions(user, task.history, task.values)

    requests = [request(t) for t in tasks]
    paths = {
        "predict": lambda u, e: fitted.predict([u] * len(union), union, history=e),
        "recommend + dict": lambda u, e: fast._score_by_recommend(u, e, union),
        "_score_items": lambda u, e: fast._score(u, e, union),
    }
    out: dict[str, Any] = {
        "dataset": dataset,
        "protocol": name,
        "model": model,
        "setting": setting.name,
        "users": len(tasks),
        "items": len(union),
    }
    reference = None
    for label, path in paths.items():
        start = time.perf_counter()
        scores = [path(user, events) for user, events in requests]
        out[f"{label} ms/task"] = 1000 * (time.perf_counter() - start) / len(tasks)
        reference = scores if reference is None else reference
        out[f"{label} max |diff|"] = float(
            max(np.max(np.abs(a - b)) for a, b in zip(scores, reference, strict=True))
        )
    return out


# --- report ---------------------------------------------------------------------------------------


def _cell(row: dict, metric: str) -> str:
    low, high = row["ci"][metric]
    return f"{row['metrics'][metric]:.4f} [{low:.4f}, {high:.4f}]"


def _order(results: list[dict]) -> list[dict]:
    order = {m: n for n, m in enumerate(MODELS)}
    return sorted(results, key=lambda r: (r["protocol"], order.get(r["model"], 99), r["model"]))


def _protocol_line(protocol: str, summary: dict) -> str:
    if summary.get("protocol") == "full-catalogue":
        parts = [
            f"catalogue {summary['catalogue']:,} items",
            f"training {summary['train_interactions']:,} interactions of "
            f"{summary['train_users']:,} users on {summary['train_items']:,} items",
            f"warm {summary['warm_rows']:,} held-out rows ({summary['warm_users']:,} users)",
            f"new users {summary['new_users']:,} ({summary['new_user_rows']:,} rows, reveal "
            f"order: {summary['order']})",
            f"new items {summary['new_items']:,} ({summary['new_item_rows']:,} rows of known "
            "users)",
            f"new users + new items reveal {summary['both_k']}",
            "relevant: "
            + (
                "every held-out interaction"
                if summary["threshold"] is None
                else f"value >= {summary['threshold']:g}"
            ),
        ]
        if summary.get("time_cut"):
            parts.append(f"time cut at {summary['cutoff']} (quantile {summary['quantile']})")
        return f"**{protocol}**: " + "; ".join(parts) + "."
    if summary.get("protocol") == "new-games":
        timed = (
            "histories cut at each player's split time"
            if summary.get("timed", True)
            else ("no timestamps: nothing cut at the split time (optimistic)")
        )
        return (
            f"**{protocol}**: games released on or after {summary['cutoff']} held out "
            f"({summary['new_games']} of {summary['new_games'] + summary['old_games']}); "
            f"{summary['train_interactions']:,} training rows; {timed}."
        )
    return (
        f"**{protocol}**: {summary.get('players', 0):,} players held out of "
        f"{summary.get('eligible_players', 0):,} with >= 2 positives; first k actions revealed."
    )


def _note(result: dict) -> str:
    """A row's note: stored with it, else its spec's (rows appended by a script that adds its
    own MODELS entries, such as bench/retrieval_two_tower.py, may not resolve here)."""
    if result.get("note"):
        return result["note"]
    name = result["model"]
    if name in MODELS:
        return MODELS[name].note
    return "appended by a script that adds it to MODELS (bench/retrieval_peers.py for the peers)"


def markdown(payload: dict) -> str:
    results = _order(payload["results"])
    dataset = payload["dataset"]
    cap = payload["max_users"]
    lines = [
        f"### Full-catalogue cold start: {dataset}",
        "",
        f"`bench/retrieval.py --dataset {dataset}` (seed {payload['seed']}, at most "
        f"{cap if cap is not None else 'all'} users per setting, commit "
        f"`{payload.get('commit', '?')}`). Recall and NDCG over users, 95 % bootstrap CIs; "
        "ties broken at random (seeded).",
        "",
    ]
    for protocol in dict.fromkeys(r["protocol"] for r in results):
        subset = [r for r in results if r["protocol"] == protocol]
        lines += [_protocol_line(protocol, subset[0]["split"]), ""]
        lines.append("| setting | model | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | users |")
        lines.append("|---|---|---|---|---|---|---|")
        settings = list(dict.fromkeys(row["setting"] for r in subset for row in r["rows"]))
        for setting in settings:
            chance = None
            for r in subset:
                row = next((x for x in r["rows"] if x["setting"] == setting), None)
                if row is None:
                    continue
                chance = row["chance"]
                cells = [_cell(row, m) for m in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")]
                lines.append(
                    f"| {setting} | {r['model']} | " + " | ".join(cells) + f" | {row['users']} |"
                )
            if chance is not None:
                lines.append(
                    f"| {setting} | *chance* | {chance['recall@10']:.4f} | "
                    f"{chance['recall@20']:.4f} | | | |"
                )
        lines += [
            "",
            "| model | setting chosen on validation | fit s | fold-in s | score s | "
            "ms / task | peak MiB | wall s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in subset:
            chosen = r["chosen"]
            if r.get("selection"):
                scores = ", ".join(f"{k}: {v:.4f}" for k, v in r["selection"]["scores"].items())
                chosen = f"{chosen} (Recall@20 {scores})"
            per_task = 1000 * r["score_seconds"] / max(1, r["scored_tasks"])
            lines.append(
                f"| {r['model']} | {chosen} | {r['fit_seconds']:.1f} | {r['fold_in_seconds']:.1f}"
                f" | {r['score_seconds']:.1f} | {per_task:.1f} | {r['peak_rss_mib']:.0f} | "
                f"{r['wall_seconds']:.0f} |"
            )
        lines.append("")
    notes = [f"- {r['model']}: {_note(r)}" for r in {r["model"]: r for r in results}.values()]
    skipped = payload.get("skipped", [])
    if skipped:
        notes.append("- not run here: " + "; ".join(skipped))
    lines += ["Models:", "", *notes, ""]
    lines.append(
        "Settings are chosen on each protocol's validation split (carved out of its training "
        f"data), by mean Recall@{SELECT_K} over its segments on at most {VALIDATION_USERS} users "
        "per segment; the test users are never looked at. The intervals are bootstraps over "
        "users of one seed: they do not cover the variance between training seeds."
    )
    return "\n".join(lines)


def summary_tables() -> str:
    """One compact table per dataset (Recall@20 [95 % CI] per segment) for BENCHMARKS.md."""
    out = []
    for dataset in DATASETS:
        path = RESULTS / f"retrieval_{dataset}.json"
        if not path.is_file():
            continue
        payload = json.loads(path.read_text())
        results = _order(payload["results"])
        for protocol in dict.fromkeys(r["protocol"] for r in results):
            subset = [r for r in results if r["protocol"] == protocol]
            settings = list(dict.fromkeys(x["setting"] for r in subset for x in r["rows"]))
            out.append(
                f"**{dataset}, {protocol}** (Recall@20 [95 % CI]; users per setting: "
                + ", ".join(
                    f"{s} {next(x['users'] for x in subset[0]['rows'] if x['setting'] == s)}"
                    for s in settings
                    if any(x["setting"] == s for x in subset[0]["rows"])
                )
                + ")"
            )
            out.append("")
            out.append("| model | " + " | ".join(settings) + " | fit s | score s | peak MiB |")
            out.append("|---" * (len(settings) + 4) + "|")
            for r in subset:
                by = {x["setting"]: x for x in r["rows"]}
                cells = []
                for s in settings:
                    if s not in by:
                        cells.append("")
                        continue
                    low, high = by[s]["ci"]["recall@20"]
                    cells.append(f"{by[s]['metrics']['recall@20']:.3f} [{low:.3f}, {high:.3f}]")
                out.append(
                    f"| {r['model']} | "
                    + " | ".join(cells)
                    + f" | {r['fit_seconds']:.0f} | {r['score_seconds']:.0f} | "
                    f"{r['peak_rss_mib']:.0f} |"
                )
            out.append("")
    return "\n".join(out)


def _commit() -> str:
    """The commit measured: ``$BENCH_COMMIT`` (a run from an exported tree), else git's HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(DATASETS))
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--max-users", type=int, default=DEFAULT_MAX_USERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=CACHE, help="text-encoder cache folder")
    parser.add_argument("--append", action="store_true", help="keep the other models' results")
    parser.add_argument("--report-only", action="store_true", help="rewrite the .md from .json")
    parser.add_argument("--summary", action="store_true", help="print the BENCHMARKS tables")
    parser.add_argument(
        "--time-scoring",
        type=int,
        default=0,
        metavar="USERS",
        help="time the scoring paths on this many users instead",
    )
    args = parser.parse_args()
    if args.summary:
        print(summary_tables())
        return
    if args.dataset is None:
        parser.error("--dataset is required")
    name = f"retrieval_{args.dataset}"
    if args.report_only:
        text = markdown(json.loads((RESULTS / f"{name}.json").read_text()))
        (RESULTS / f"{name}.md").write_text(text + "\n")
        print(text)
        return
    spec = DATASETS[args.dataset]
    models = args.models if args.models is not None else list(DEFAULT_MODELS)
    if args.time_scoring:
        timings = [
            run_isolated(
                time_scoring,
                dataset=args.dataset,
                model=m,
                seed=args.seed,
                users=args.time_scoring,
                cache_dir=args.cache_dir,
            )
            for m in models
        ]
        path = RESULTS / f"{name}_scoring.json"
        path.write_text(
            json.dumps({"machine": machine(), "commit": _commit(), "timings": timings}, indent=2)
            + "\n"
        )
        print(json.dumps(timings, indent=2))
        return
    protocols = list(run_isolated(_protocol_names, dataset=args.dataset, seed=args.seed)["names"])
    results, skipped = [], []
    previous = RESULTS / f"{name}.json"
    if args.append and previous.is_file():
        old = json.loads(previous.read_text())
        results = [r for r in old["results"] if r["model"] not in models]
        skipped = [s for s in old.get("skipped", []) if s.split()[0].rstrip(":") not in models]
    for model in models:
        model_spec = resolve(model)
        if spec.feedback not in model_spec.feedback:
            skipped.append(f"{model}: {model_spec.note.split('; ')[-1]}")
            continue
        for protocol in protocols:
            if protocol in spec.item_side_variants and not model_spec.reads_items:
                note = f"{model} on {protocol}: reads no item field, as on {protocols[0]}"
                skipped.append(note)
                continue
            out = run_isolated(
                measure,
                dataset=args.dataset,
                protocol=protocol,
                model=model,
                seed=args.seed,
                max_users=args.max_users,
                cache_dir=args.cache_dir,
            )
            results.append(out)
            cells = {row["setting"]: round(row["metrics"]["recall@20"], 4) for row in out["rows"]}
            print(
                f"{protocol:24s} {model:14s} {out['wall_seconds']:7.1f}s "
                f"{out['peak_rss_mib']:6.0f} MiB  recall@20 {cells}",
                flush=True,
            )
    payload = {
        "dataset": args.dataset,
        "machine": machine(),
        "commit": _commit(),
        "seed": args.seed,
        "max_users": args.max_users,
        "ks": list(spec.ks),
        "cutoffs": list(CUTOFFS),
        "validation_users": VALIDATION_USERS,
        "skipped": skipped,
        "results": _order(results),
    }
    path = save(name, payload)
    text = markdown(payload)
    (RESULTS / f"{name}.md").write_text(text + "\n")
    print(text)
    print(f"\nwrote {path}")


def _protocol_names(dataset: str, seed: int) -> dict:
    """The protocol names of a dataset (built in a child process, so the parent stays small)."""
    return {"names": list(DATASETS[dataset].protocols(seed))}


if __name__ == "__main__":
    main()
