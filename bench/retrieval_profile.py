"""Does a new user's profile move their list? Recall / NDCG of new users with and without it.

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 nice -n 5 python bench/retrieval_profile.py \
        --dataset ml-1m [--models two-tower-retrieval lightfm popularity] [--label before] \
        [--max-users 2000] [--append]
    python bench/retrieval_profile.py --report     # the BENCHMARKS.md tables from the .json

On bench/retrieval.py's protocols (``dayzero.evaluate.protocols.catalogue``: ML-1M on MeLU's
states, ml-100k's time cut, the restaurant holdout), each model is fitted once on the
protocol's training data (which holds the known users' profiles) and copied; one copy gets
the protocol's fold-in as it is (the new items' fields and the new users' profiles), the
other the same fold-in with the new users' profiles removed (``user_fields=None``: those users
are described by nothing but what they reveal). Both copies then rank the whole catalogue for
the same new users (bench/retrieval.py's users: those with something left to find after 10
revealed ratings, at most ``--max-users``, seeded) at k = 0, 1 and 3 revealed ratings:
Recall@10/20 and NDCG@10 with 95 % bootstrap CIs, and the paired difference (with - without)
per user with its own bootstrap CI.

Diversity of the k = 0 lists: the top-10 of every new user from their profile alone; 1000
seeded pairs of distinct new users; mean |A & B| / 10 with a bootstrap CI (ties in a list
broken by item order, so a model that ignores the profile scores exactly 1.0, as popularity
does). Two example users with different profiles and their top-5 are kept in the results.

Models (fixed settings, nothing chosen on test users): ``two-tower-retrieval`` is
bench/retrieval_two_tower.py's row with logQ 1 (the frozen MiniLM two-tower with the retrieval
head; its text cache); ``lightfm`` is the peer of bench/retrieval_peers.py (WARP, identity +
field-token features of users and items, 64 factors, features only: the setting chosen on
ml-100k's validation split), whose new users are placed by their profile tokens alone;
``popularity`` is the reference (no profile read). Every (dataset, model, label) runs in its
own process. Writes ``bench/results/retrieval_profile.json`` (``BENCH_RESULTS`` overrides the
folder); ``--label`` names the code version measured (``before`` / ``after`` a fix).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
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

NAME = "retrieval_profile"
DATASETS = ("ml-1m", "ml-100k", "restaurant")
KS = (0, 1, 3)
CUTOFFS = (10, 20)
METRICS = ("recall@10", "recall@20", "ndcg@10")
PAIRS = 1000
THRESHOLDS = {"ml-1m": 4.0, "ml-100k": 4.0, "restaurant": 2.0}
LIGHTFM = {
    "loss": "warp",
    "epochs": 20,
    "learning_rate": 0.05,
    "num_threads": 1,
    "random_state": 0,
    "factors": 64,
    "history_features": False,
}
#: Very different free-text self-descriptions (``add_user_text``), per domain.
MOVIE_SENTENCES = {
    "sci-fi": "I am a 25 year old male software engineer who loves science fiction, space "
    "battles and robots.",
    "romance": "I'm a 60 year old retired woman; I love romantic comedies, period dramas and "
    "musicals.",
    "kids": "A 10 year old kid who likes cartoons, animation and funny family movies.",
    "horror": "Horror fan: slashers, zombies, gore and scary thrillers late at night.",
    "documentaries": "I only watch serious documentaries and foreign art-house films.",
}
SENTENCES = {
    "ml-1m": MOVIE_SENTENCES,
    "ml-100k": MOVIE_SENTENCES,
    "restaurant": {
        "budget": "A student on a tight budget who wants cheap tacos and fast food near campus.",
        "family": "A family with small kids looking for a quiet, informal place to eat.",
        "fine dining": "I love fine dining: formal dress, an elegant bar, wine and "
        "international cuisine.",
        "vegetarian": "Vegetarian who wants healthy salads, coffee and a cafe to work in.",
        "night out": "Late-night drinks with friends: a loud bar, beer and pub food.",
    },
}
MODELS = ("two-tower-retrieval", "two-tower", "lightfm", "profile-popularity", "popularity")
#: Fields with more distinct values than this are not segments of ``profile-popularity``.
MAX_SEGMENTS = 64


class ProfilePopularity:
    """What the profile fields alone carry, by a fixed rule (nothing tuned): a new user's score
    of an item is the mean of its share of the training positives overall and among the
    training users sharing each of the user's categorical profile values (fields with at most
    ``MAX_SEGMENTS`` values); revealed ratings are ignored, so every k ranks the same."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def fit(self, dataset: Any) -> ProfilePopularity:
        import numpy as np

        frame = dataset.interactions.frame
        positives = frame[frame["value"] >= self.threshold]
        self.items_ = list(dict.fromkeys(frame["item"]))
        index = {item: n for n, item in enumerate(self.items_)}
        columns = positives["item"].map(index).to_numpy()
        self.overall_ = np.bincount(columns, minlength=len(self.items_)) / max(len(columns), 1)
        users = dataset.users
        self.fields_ = [
            name
            for name, kind in users.fields.items()
            if kind in ("categorical", "boolean") and users.frame[name].nunique() <= MAX_SEGMENTS
        ]
        self.shares_: dict[tuple, Any] = {}
        values = users.frame.reindex(positives["user"].to_numpy())
        for name in self.fields_:
            for value, rows in values.groupby(values[name].astype(str).to_numpy()).indices.items():
                counts = np.bincount(columns[rows], minlength=len(self.items_))
                self.shares_[(name, value)] = counts / counts.sum()
        self.profiles_: dict = {}
        return self

    def partial_fit_items(self, items: Any, interactions: Any = None) -> ProfilePopularity:
        return self

    def partial_fit_users(self, interactions: Any, users: Any = None) -> ProfilePopularity:
        if users is not None:
            for user in users.ids:
                self.profiles_[user] = users.record(user)
        return self

    def score_task(self, task: Any, candidates: list) -> Any:
        import numpy as np

        parts = [self.overall_]
        record = self.profiles_.get(task.user, {})
        for name in self.fields_:
            share = self.shares_.get((name, str(record.get(name))))
            if share is not None:
                parts.append(share)
        scores = dict(zip(self.items_, np.mean(parts, axis=0), strict=True))
        return np.array([scores.get(c, 0.0) for c in candidates], dtype=np.float64)


def _build(model: str, dataset: str) -> Any:
    from dayzero.recommend.contract import make_recommender

    if model == "two-tower-retrieval":
        params = {
            **retrieval_two_tower.RETRIEVAL,
            "training__logq_correction": 1.0,
            "encoder__cache_dir": retrieval.CACHE,
        }
        template = retrieval.DATASETS[dataset].template()
        if template is not None:
            params["item_template"] = template
        return retrieval._two_tower(params)
    if model == "two-tower":
        spec = retrieval.MODELS["two-tower"]
        return retrieval._two_tower(
            {
                **spec.params,
                "training__retrieval_weight": 0.0,  # the rating head, whatever the default
                "support_shrinkage": None,
                "encoder__cache_dir": retrieval.CACHE,
            }
        )
    if model == "lightfm":
        return make_recommender("lightfm", threshold=THRESHOLDS[dataset], **LIGHTFM)
    if model == "profile-popularity":
        return ProfilePopularity(THRESHOLDS[dataset])
    return make_recommender(model)


class Recording:
    """A scorer that keeps every score vector it returns, by (user, revealed count)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.scores: dict[tuple, Any] = {}

    def score_task(self, task: Any, candidates: list) -> Any:
        scores = self.inner.score_task(task, candidates)
        self.scores[(task.user, len(task.history))] = scores
        return scores


def _per_user(tasks: list, recorded: dict, union: list, seed: int) -> dict[str, list[float]]:
    """Per-user metrics from the recorded scores, ranked exactly as evaluate_ranking ranks
    (history removed, ties broken by the same seeded permutations), so the paired differences
    are those of the reported means."""
    import numpy as np

    from dayzero.evaluate import metrics

    rng = np.random.default_rng(seed)
    position = {item: n for n, item in enumerate(union)}
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for task in tasks:
        scores = np.asarray(recorded[(task.user, len(task.history))], dtype=np.float64)
        allowed = np.ones(len(union), dtype=bool)
        allowed[[position[i] for i in set(task.history) if i in position]] = False
        kept = np.flatnonzero(allowed)
        tiebreak = rng.permutation(len(kept))
        order = kept[np.lexsort((tiebreak, -scores[kept]))[: max(CUTOFFS)]]
        ranked = [union[i] for i in order]
        out["recall@10"].append(metrics.recall_at_k(ranked, task.relevant, 10))
        out["recall@20"].append(metrics.recall_at_k(ranked, task.relevant, 20))
        out["ndcg@10"].append(metrics.ndcg_at_k_list(ranked, task.relevant, 10))
    return out


def _top(scores: Any, n: int) -> list[int]:
    import numpy as np

    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:n].tolist()


def _overlap(lists: list[list[int]], seed: int) -> dict[str, Any]:
    """Mean |A & B| / 10 of the top-10 lists of ``PAIRS`` seeded pairs of distinct users."""
    import numpy as np

    from dayzero.evaluate.intervals import mean_ci

    rng = np.random.default_rng(seed)
    n = len(lists)
    first = rng.integers(0, n, size=PAIRS)
    second = (first + rng.integers(1, n, size=PAIRS)) % n  # never the same user
    values = np.array(
        [len(set(lists[a]) & set(lists[b])) / 10 for a, b in zip(first, second, strict=True)]
    )
    mean, low, high = mean_ci(values, random_state=seed)
    distinct = len({tuple(x) for x in lists})
    return {
        "mean": float(mean),
        "ci": [float(low), float(high)],
        "pairs": PAIRS,
        "users": n,
        "distinct_lists": distinct,
        "pairs_drawn": [[int(a), int(b)] for a, b in zip(first[:3], second[:3], strict=True)],
    }


def score_parts(model: Any, users: list) -> dict[str, float]:
    """Where a two-tower's k=0 scores of the known items come from (no history): the
    item-only term (the retrieval bias beta_i, or the rating bias b_i) against the term that
    reads the user (cos(r_u, r_i) / T, or <p_u, q_i>). ``item_term_sd``: its spread over the
    items; ``user_term_sd_over_items``: the user term's spread over one user's items (mean
    over users); ``user_term_sd_over_users``: how much the profile moves one item's score
    (spread over users, mean over items); ``top10_set_by_item_term``: share of a user's top 10
    that the item term alone would pick (mean over users)."""
    import numpy as np
    import torch

    net, d = model.network_, model.towers_.dim
    known = model.item_vectors_[: model.n_known_items_]
    with torch.no_grad():
        vectors = model._user_vectors(users, {})
        if model._retrieval:
            directions, bias = net.retrieval_items(known)
            user_term = net.retrieval_users(vectors, model.training_.temperature) @ directions.T
            item_term = bias
        else:
            user_term = vectors[:, :d] @ known[:, :d].T
            item_term = known[:, d]
    user_term, item_term = user_term.numpy(), item_term.numpy()
    total = user_term + item_term[None, :]
    by_item = set(np.argsort(-item_term, kind="stable")[:10].tolist())
    top = np.argsort(-total, axis=1, kind="stable")[:, :10]
    return {
        "head": "retrieval" if model._retrieval else "rating",
        "item_term_sd": float(item_term.std()),
        "user_term_sd_over_items": float(user_term.std(axis=1).mean()),
        "user_term_sd_over_users": float(user_term.std(axis=0).mean()),
        "top10_set_by_item_term": float(np.mean([len(by_item & set(t)) / 10 for t in top])),
        "users": len(users),
        "items": int(model.n_known_items_),
    }


def _profile_text(split: Any, user: Any) -> str:
    from dayzero.core.templates import entity_template

    fields = split.user_fields
    if fields is None or user not in fields:
        return ""
    return entity_template(None, fields).render_many([fields.record(user)])[0]


def _item_label(split: Any, item: Any) -> str:
    """``id: title`` (the first text field of the item table), else the id."""
    for entities in (split.train.items, split.item_fields):
        if entities is None or item not in entities:
            continue
        text = [name for name, kind in entities.fields.items() if kind == "text"]
        if text:
            return f"{item}: {entities.frame.at[item, text[0]]}"
    return str(item)


def sentence_lists(model: Any, split: Any, dataset: str) -> dict[str, Any]:
    """Top-10 lists of users described by one free-text sentence each (``add_user_text``, no
    profile fields, no interactions) and the mean top-10 overlap over every pair of them."""
    import itertools

    lists = {}
    for name, text in SENTENCES[dataset].items():
        user = f"__sentence_{name}"
        model.add_user_text(user, text)
        lists[name] = model.recommend(user, k=10)[0]
    overlaps = [
        len(set(lists[a]) & set(lists[b])) / 10 for a, b in itertools.combinations(lists, 2)
    ]
    return {
        "overlap_mean": sum(overlaps) / len(overlaps),
        "overlap_min": min(overlaps),
        "overlap_max": max(overlaps),
        "pairs": len(overlaps),
        "sentences": SENTENCES[dataset],
        "top5": {name: [_item_label(split, i) for i in ids[:5]] for name, ids in lists.items()},
    }


def measure(dataset: str, model: str, label: str, seed: int, max_users: int | None) -> dict:
    import numpy as np
    import torch

    from dayzero.evaluate.intervals import mean_ci
    from dayzero.evaluate.ranking import evaluate_ranking, recommender_scorer, subsample

    torch.set_num_threads(1)
    if model == "lightfm":
        os.environ["DAYZERO_PEER_THRESHOLD"] = str(THRESHOLDS[dataset])
    spec = retrieval.DATASETS[dataset]
    protocol, (split, catalogue) = next(iter(spec.protocols(seed).items()))
    start = time.perf_counter()
    fitted = _build(model, dataset).fit(split.train)
    fit_seconds = time.perf_counter() - start
    blank = copy.deepcopy(fitted)
    variants = {
        "with profile": split.fold_in(fitted),
        "without profile": dataclasses.replace(split, user_fields=None).fold_in(blank),
    }
    settings = {
        s.name: s
        for s in split.ranking_settings(catalogue, spec.ks)
        if s.name in {f"new users k={k}" for k in KS}
    }
    union = list(
        dict.fromkeys(i for c in next(iter(settings.values())).candidates.values() for i in c)
    )
    rows, per_user, recorded = [], {}, {}
    for variant, fitted_model in variants.items():
        inner = fitted_model if model == "profile-popularity" else recommender_scorer(fitted_model)
        scorer = Recording(inner)
        for name, setting in settings.items():
            tasks = subsample(setting.tasks, max_users, seed)
            results = evaluate_ranking(
                scorer, tasks, setting.candidates, k=CUTOFFS, n_resamples=1000, random_state=seed
            )
            result = results[retrieval_all(results)]
            values = _per_user(tasks, scorer.scores, union, seed)
            for metric in METRICS:
                # the per-user values are evaluate_ranking's (same ranking, same ties)
                assert abs(np.mean(values[metric]) - result.metrics[metric]) < 1e-9, metric
            per_user[(variant, name)] = values
            rows.append(
                {
                    "variant": variant,
                    "setting": name,
                    "users": result.users,
                    "metrics": {m: result.metrics[m] for m in METRICS},
                    "ci": {m: list(result.ci[m]) for m in METRICS},
                }
            )
        recorded[variant] = scorer.scores
    differences = []
    for name in settings:
        diff = {}
        for metric in METRICS:
            paired = np.subtract(
                per_user[("with profile", name)][metric],
                per_user[("without profile", name)][metric],
            )
            mean, low, high = mean_ci(paired, random_state=seed)
            diff[metric] = {"mean": float(mean), "ci": [float(low), float(high)]}
        differences.append({"setting": name, **diff})
    zero = subsample(settings["new users k=0"].tasks, max_users, seed)
    overlap, examples = {}, []
    for variant in variants:
        lists = [_top(recorded[variant][(t.user, 0)], 10) for t in zero]
        overlap[variant] = _overlap(lists, seed)
    parts = sentences = None
    if model.startswith("two-tower"):
        parts = score_parts(variants["with profile"], [t.user for t in zero])
        sentences = sentence_lists(variants["with profile"], split, dataset)
    first = overlap["with profile"]["pairs_drawn"][0]
    for index in first:
        user = zero[index].user
        examples.append(
            {
                "user": str(user),
                "profile": _profile_text(split, user),
                "top5": [
                    _item_label(split, union[i])
                    for i in _top(recorded["with profile"][(user, 0)], 5)
                ],
            }
        )
    return {
        "dataset": dataset,
        "protocol": protocol,
        "model": model,
        "label": label,
        "fit_seconds": fit_seconds,
        "catalogue": len(union),
        "rows": rows,
        "differences": differences,
        "overlap_k0": overlap,
        "score_parts_k0": parts,
        "sentences": sentences,
        "examples_k0": examples,
    }


def retrieval_all(results: dict) -> str:
    """The whole-catalogue result's key (new-user settings rank among all items only)."""
    from dayzero.evaluate.protocols.catalogue import ALL_ITEMS

    return ALL_ITEMS if ALL_ITEMS in results else next(iter(results))


def _cell(mean: float, ci: list) -> str:
    return f"{mean:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def report(payload: dict) -> str:
    lines = []
    results = payload["results"]
    for dataset in DATASETS:
        subset = [r for r in results if r["dataset"] == dataset]
        if not subset:
            continue
        lines += [
            f"**{dataset}, {subset[0]['protocol']}** ({subset[0]['catalogue']:,} items; "
            f"{subset[0]['rows'][0]['users']} new users)",
            "",
            "| model | code | k | Recall@10 with | without | with - without | Recall@20 with | "
            "without | with - without | NDCG@10 with - without |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in subset:
            by = {(x["variant"], x["setting"]): x for x in r["rows"]}
            for diff in r["differences"]:
                s = diff["setting"]
                w, wo = by[("with profile", s)], by[("without profile", s)]
                cells = []
                for m in ("recall@10", "recall@20"):
                    cells += [
                        _cell(w["metrics"][m], w["ci"][m]),
                        _cell(wo["metrics"][m], wo["ci"][m]),
                        _cell(diff[m]["mean"], diff[m]["ci"]),
                    ]
                cells.append(_cell(diff["ndcg@10"]["mean"], diff["ndcg@10"]["ci"]))
                k = s.split("=")[-1]
                lines.append(f"| {r['model']} | {r['label']} | {k} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "| model | code | top-10 overlap of random pairs at k=0, with profile | "
            "distinct lists | without profile |",
            "|---|---|---|---|---|",
        ]
        for r in subset:
            o, b = r["overlap_k0"]["with profile"], r["overlap_k0"]["without profile"]
            lines.append(
                f"| {r['model']} | {r['label']} | {_cell(o['mean'], o['ci'])} | "
                f"{o['distinct_lists']} of {o['users']} | {b['mean']:.3f} |"
            )
        lines.append("")
        parts = [r for r in subset if r.get("score_parts_k0")]
        if parts:
            lines += [
                "| model | code | head | item term sd over items | user term sd over items | "
                "user term sd over users | top-10 share the item term alone picks |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in parts:
                p = r["score_parts_k0"]
                lines.append(
                    f"| {r['model']} | {r['label']} | {p['head']} | {p['item_term_sd']:.3f} | "
                    f"{p['user_term_sd_over_items']:.3f} | {p['user_term_sd_over_users']:.3f} | "
                    f"{p['top10_set_by_item_term']:.2f} |"
                )
            lines.append("")
        said = [r for r in subset if r.get("sentences")]
        if said:
            lines += [
                "| model | code | top-10 overlap of pairs of one-sentence users (mean, min-max) "
                "| top 3 per sentence |",
                "|---|---|---|---|",
            ]
            for r in said:
                x = r["sentences"]
                tops = "; ".join(
                    f"*{name}*: " + ", ".join(t.split(": ", 1)[-1] for t in top[:3])
                    for name, top in x["top5"].items()
                )
                lines.append(
                    f"| {r['model']} | {r['label']} | {x['overlap_mean']:.2f} "
                    f"({x['overlap_min']:.1f}-{x['overlap_max']:.1f}, {x['pairs']} pairs) | "
                    f"{tops} |"
                )
            lines.append("")
        for r in subset:
            if r["model"] not in ("popularity", "profile-popularity"):
                lines.append(f"Example ({r['model']}, {r['label']}), two new users at k=0:")
                for e in r["examples_k0"]:
                    lines.append(f"- *{e['profile'] or e['user']}*: " + "; ".join(e["top5"]))
                lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, nargs="*", default=list(DATASETS))
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--label", default="main")
    parser.add_argument("--max-users", type=int, default=retrieval.DEFAULT_MAX_USERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true", help="keep the other rows")
    parser.add_argument("--report", action="store_true", help="print the tables only")
    args = parser.parse_args()
    path = _common.RESULTS / f"{NAME}.json"
    if args.report:
        print(report(json.loads(path.read_text())))
        return
    results = []
    if args.append and path.is_file():
        results = json.loads(path.read_text())["results"]
    for dataset in args.dataset:
        for model in args.models:
            out = _common.run_isolated(
                measure,
                dataset=dataset,
                model=model,
                label=args.label,
                seed=args.seed,
                max_users=args.max_users,
            )
            out["commit"] = retrieval._commit()
            key = (dataset, model, args.label)
            results = [r for r in results if (r["dataset"], r["model"], r["label"]) != key]
            results.append(out)
            diffs = {d["setting"]: round(d["recall@20"]["mean"], 4) for d in out["differences"]}
            print(
                f"{dataset:10s} {model:20s} {args.label:8s} {out['wall_seconds']:6.0f}s "
                f"recall@20 with - without {diffs} overlap@k=0 "
                f"{out['overlap_k0']['with profile']['mean']:.3f}",
                flush=True,
            )
            order = {d: n for n, d in enumerate(DATASETS)}
            results.sort(key=lambda r: (order[r["dataset"]], MODELS.index(r["model"]), r["label"]))
            payload = {"machine": _common.machine(), "seed": args.seed, "results": results}
            _common.save(NAME, payload)
    print(report(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
