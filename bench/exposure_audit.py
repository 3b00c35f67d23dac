"""Exposure and fairness audit of top-10 lists on ML-1M (MeLU states) and Steam-200k.

    DAYZERO_DATA=../shared/data nice -n 5 python bench/exposure_audit.py [--users 600] [--seed 0]
    python bench/exposure_audit.py --report-only   # the BENCHMARKS.md tables from the JSON

Protocols and scorers are bench/retrieval.py's (full-catalogue ranking, history items never
candidates, new items folded in from their fields after the fit): ML-1M ``MeLU states``
(settings ``warm`` and ``new users k=5``), Steam-200k ``new games`` (its one setting) and
``new players`` (``k=5``). Models:

* ``popularity``: training interaction count;
* ``two-tower``: what ``dayzero fit`` trains by default (``TwoTowerRecommender()``: frozen
  MiniLM, retrieval head ranks), with the dataset's item template;
* ``content-tfidf``: the TF-IDF content reference (sum of TF-IDF cosines to the liked history
  items, ContentKNN's vectors).

Per setting and model, on a seeded draw of ``--users`` users (the same draw for every model)
- kept small so that the whole run stays near 15 minutes on 2 shared cores - the top 10 over
every item are audited with :func:`dayzero.evaluate.exposure.exposure_audit`: mean training
popularity of the recommended items vs the user's history and the catalogue, its popularity
percentile (share of catalogue items with a smaller count, ties half), share of the 10 slots
going to new items (no training interaction) vs their share of the catalogue, Gini of exposure
over the catalogue, coverage, Steck genre miscalibration against the history's genres, and
Recall@10 (relevant: rating >= 4 on ML-1M, every interaction on Steam) per user group (ML-1M:
gender and age band of the users table). Per-user means carry 95 % bootstrap intervals.
Nothing is chosen on test users: every model runs with fixed settings.

Writes ``bench/results/exposure_audit.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval
from _common import machine, save

K = 10
AUDITS = {
    # dataset -> protocol -> settings audited
    "ml-1m": {"MeLU states": ("warm", "new users k=5")},
    "steam-200k": {"new games": ("new games",), "new players": ("k=5",)},
}
GENRES = {"ml-1m": "genres", "steam-200k": "genres"}
GROUPS = {"ml-1m": ("gender", "age")}
MODELS = ("popularity", "two-tower", "content-tfidf")


def _model(name: str, dataset: str, cache_dir: str, threshold: float | None):
    """(unfitted model, scorer factory) of ``name`` with its fixed settings."""
    template = retrieval.DATASETS[dataset].template()
    if name == "two-tower":
        from dayzero.recommend.two_tower import TwoTowerRecommender

        params: dict[str, Any] = {"encoder__cache_dir": cache_dir}
        if template is not None:
            params["item_template"] = template
        return TwoTowerRecommender().set_params(**params), retrieval._recommender_scorer
    spec = retrieval.MODELS[name]
    return spec.build(
        retrieval._params(spec, retrieval.DATASETS[dataset], "default", cache_dir, threshold)
    ), spec.scorer


def _user_groups(dataset: str) -> dict[str, dict[Any, Any]]:
    """Group field -> {user: label} (ML-1M's users table; none for Steam)."""
    if dataset != "ml-1m":
        return {}
    from dayzero.datasets.melu import load_ml1m_melu

    frame = load_ml1m_melu().users.frame
    return {field: frame[field].to_dict() for field in GROUPS[dataset]}


def _percentiles(popularity: dict, catalogue: list) -> dict:
    """Item -> share of catalogue items with a smaller training count (ties count half)."""
    import numpy as np

    counts = np.array([popularity.get(i, 0.0) for i in catalogue], dtype=float)
    ordered = np.sort(counts)
    below = np.searchsorted(ordered, counts, side="left")
    upto = np.searchsorted(ordered, counts, side="right")
    share = (below + (upto - below) / 2) / len(counts)
    return dict(zip(catalogue, share.tolist(), strict=True))


def audit_dataset(
    dataset: str, users: int, seed: int, cache_dir: str, models: tuple = MODELS
) -> dict:
    import numpy as np
    import torch

    from dayzero.evaluate.exposure import exposure_audit, metric_by_group
    from dayzero.evaluate.intervals import mean_ci
    from dayzero.evaluate.metrics import recall_at_k
    from dayzero.evaluate.ranking import top_k

    torch.set_num_threads(1)  # shared cores: more threads only spin
    spec = retrieval.DATASETS[dataset]
    protocols = spec.protocols(seed)
    groups = _user_groups(dataset)
    out: dict[str, Any] = {}
    for protocol, settings in AUDITS[dataset].items():
        split, catalogue_ids = protocols[protocol]
        threshold = getattr(split, "threshold", None)
        train = split.train
        popularity = train.interactions.frame["item"].value_counts().to_dict()
        by_name = {s.name: s for s in split.ranking_settings(catalogue_ids, spec.ks)}
        every = next(iter(by_name.values())).candidates
        catalogue = max(every.values(), key=len)
        new_items = [i for i in catalogue if popularity.get(i, 0) == 0]
        percentile = _percentiles(popularity, catalogue)
        genres = _genres(split, catalogue, GENRES[dataset])
        result: dict[str, Any] = {"catalogue": len(catalogue), "new_items": len(new_items)}
        rng = np.random.default_rng(seed)
        drawn = {}
        for name in settings:
            tasks = by_name[name].tasks
            pick = rng.choice(len(tasks), size=min(users, len(tasks)), replace=False)
            drawn[name] = [tasks[i] for i in sorted(pick)]
        for model_name in models:
            start = time.perf_counter()
            model, scorer_of = _model(model_name, dataset, cache_dir, threshold)
            model.fit(train)
            split.fold_in(model)
            scorer = scorer_of(model, split, threshold)
            fit_seconds = time.perf_counter() - start
            for name in settings:
                start = time.perf_counter()
                tie = np.random.default_rng(seed)
                lists, histories, recalls, owners = [], [], [], []
                for task in drawn[name]:
                    seen = set(task.history)
                    candidates = [c for c in catalogue if c not in seen]
                    scores = scorer.score_task(task, candidates)
                    top = top_k(scores, candidates, K, tie)
                    lists.append(top)
                    histories.append(list(task.history))
                    if task.relevant:
                        recalls.append(recall_at_k(top, task.relevant, K))
                        owners.append(task.user)
                audit = exposure_audit(
                    lists, histories, catalogue, popularity, new_items,
                    genres=genres, random_state=seed,
                )  # fmt: skip
                audit["popularity_percentile_recommended"] = mean_ci(
                    [np.mean([percentile[i] for i in r]) for r in lists], random_state=seed
                )
                audit["popularity_percentile_history"] = mean_ci(
                    [np.mean([percentile[i] for i in h]) for h in histories if h],
                    random_state=seed,
                )
                audit["recall_at_10"] = mean_ci(recalls, random_state=seed)
                audit["recall_at_10_by_group"] = {
                    field: {
                        str(g): v
                        for g, v in metric_by_group(
                            recalls, [labels.get(u, "unknown") for u in owners], seed
                        ).items()
                    }
                    for field, labels in groups.items()
                }
                audit["score_seconds"] = time.perf_counter() - start
                audit["fit_seconds"] = fit_seconds
                result.setdefault(name, {})[model_name] = audit
                print(f"{dataset} / {name} / {model_name}: done", flush=True)
        out[protocol] = result
    return out


def _genres(split, catalogue, field: str) -> dict | None:
    """Item -> its genres (an item without any gets ``["(none)"]``), from the training items
    and the split's fold-in items (``item_fields`` of a catalogue split, the new games'
    table of the Steam new-games split)."""
    from dayzero.core.schema import Entities

    candidates = (
        split.train.items,
        getattr(split, "item_fields", None),
        getattr(split, "new_items", None),
    )
    tables = [t for t in candidates if isinstance(t, Entities) and field in t.fields]
    if not tables:
        return None
    out: dict = {}
    for table in tables:
        if field not in table.frame.columns:
            continue
        for item, value in table.frame[field].items():
            values = list(value) if isinstance(value, list | tuple) else []
            out.setdefault(item, values or ["(none)"])
    return {i: out.get(i, ["(none)"]) for i in catalogue}


def _ci(triple, digits: int = 3) -> str:
    mean, low, high = triple
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown(payload: dict) -> str:
    """The BENCHMARKS.md tables of a results file."""
    lines = [
        "| dataset / setting | model | popularity of recs (percentile) | history | catalogue "
        "| new-item share (catalogue) | Gini | coverage | miscalibration | Recall@10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: list[str] = []
    for dataset, protocols in payload["results"].items():
        for protocol in protocols.values():
            for setting, models in protocol.items():
                if not isinstance(models, dict):
                    continue
                for model, a in models.items():
                    pct = a["popularity_percentile_recommended"][0]
                    lines.append(
                        f"| {dataset} / {setting} | {model} "
                        f"| {a['mean_popularity_recommended'][0]:,.0f} ({pct:.2f}) "
                        f"| {a['mean_popularity_history'][0]:,.0f} "
                        f"| {a['mean_popularity_catalogue']:,.1f} "
                        f"| {a['new_item_share'][0]:.3f} ({a['new_item_catalogue_share']:.3f}) "
                        f"| {a['gini_exposure']:.3f} | {a['coverage']:.3f} "
                        f"| {a['miscalibration'][0]:.2f} | {_ci(a['recall_at_10'])} |"
                    )
                    for field, by in a["recall_at_10_by_group"].items():
                        cells = ", ".join(
                            f"{g} {v['mean_ci'][0]:.3f} (n={v['n']})" for g, v in by.items()
                        )
                        groups.append(f"| {dataset} / {setting} | {model} | {field} | {cells} |")
    if groups:
        lines += [
            "",
            "| dataset / setting | model | group | Recall@10 per group |",
            "|---|---|---|---|",
        ]
        lines += groups
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=600, help="users per setting (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=retrieval.CACHE, help="text-encoder cache")
    parser.add_argument("--datasets", nargs="*", default=list(AUDITS))
    parser.add_argument("--report-only", action="store_true", help="print the tables of the JSON")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="also: hybrid")
    parser.add_argument(
        "--append", action="store_true", help="add these models' rows to the existing JSON"
    )
    args = parser.parse_args()
    if args.report_only:
        import json

        from _common import RESULTS

        print(markdown(json.loads((RESULTS / "exposure_audit.json").read_text())))
        return
    start = time.perf_counter()
    results = {
        d: audit_dataset(d, args.users, args.seed, args.cache_dir, tuple(args.models))
        for d in args.datasets
    }
    payload = {
        "k": K,
        "users_per_setting": args.users,
        "seed": args.seed,
        "sampling": f"a seeded draw of at most {args.users} users per setting (seed "
        f"{args.seed}), the same for every model, to keep the run near 15 min on 2 cores",
        "models": {
            "popularity": "training interaction count",
            "two-tower": "TwoTowerRecommender() defaults (what `dayzero fit` trains): frozen "
            "MiniLM, retrieval head ranks; the dataset's item template",
            "content-tfidf": retrieval.MODELS["content-tfidf"].note,
        },
        "settings": {d: {p: list(s) for p, s in AUDITS[d].items()} for d in args.datasets},
        "machine": {**machine(), "shared_cores": True, "note": "2 shared cores, nice -n 5"},
        "wall_seconds": None,
        "results": results,
    }
    payload["wall_seconds"] = time.perf_counter() - start
    if args.append:
        import json

        from _common import RESULTS

        old = json.loads((RESULTS / "exposure_audit.json").read_text())
        for dataset, protocols in results.items():
            for protocol, settings in protocols.items():
                into = old["results"].setdefault(dataset, {}).setdefault(protocol, {})
                for setting, rows in settings.items():
                    if isinstance(rows, dict):
                        into.setdefault(setting, {}).update(rows)
                    else:
                        into[setting] = rows
        for name in args.models:
            if name not in old["models"]:
                old["models"][name] = retrieval.MODELS[name].note
        old.setdefault("appended", []).append(
            {
                "models": args.models,
                "datasets": args.datasets,
                "wall_seconds": payload["wall_seconds"],
            }
        )
        payload = old
    print(f"wrote {save('exposure_audit', payload)}")


if __name__ == "__main__":
    main()
