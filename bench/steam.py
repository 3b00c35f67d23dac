"""Steam: newly released games and new players (Recall@20, NDCG@20 with 95 % bootstrap CIs).

    DAYZERO_DATA=../shared/data nice -n 5 python bench/steam.py --epochs 10 --max-users 1000
        [--models popularity ...] [--protocols new-games ...] [--lora] [--append]
    python bench/steam.py --report-only      # rewrite steam.md from steam.json

Data: the positive ("recommend") reviews of steam-reviews joined to steam-games metadata
(join rates reported), one row per (player, game); game text = title + genres + tags + specs +
developer. steam-200k is joined to steam-games by title and its join rates are reported.
Protocols (dayzero.evaluate.protocols.steam): *new games* (latest 15 % of the games by release date
held out entirely; ranked among the new games and among every game) and *new players* (20 % of
the players with >= 2 positives held out; first k = 1, 3, 5 actions revealed), and *new games*
again on steam-200k plays joined to steam-games (no timestamps, so nothing can be cut at the split
time there: flagged in the report). In the new-games protocols everything is fit on what was known
at the split time (dayzero.evaluate.protocols.steam): interactions dated before the cut-off, the
item table and text statistics of the games released before it; the new games are folded in after
the fit, and each test history stops at the player's split time. Models: popularity, item-kNN,
content kNN on TF-IDF and on frozen MiniLM vectors, ID-only SASRec, the two-tower hybrid (positives
as rating 1), and the text-initialised sequential model (frozen encoder with and without ID
embeddings; LoRA with ``--lora``). Each (protocol, model) runs in its own process (wall time and
peak memory are its own: data loading + fit + evaluation), with one torch thread. The content weight
of the -content and -fusion variants is chosen per protocol from ``CONTENT_WEIGHTS`` on the
protocol's validation split (carved out of the training data: an earlier cut-off among the old
games, or a slice of the training players), never on test users. Writes ``bench/results/steam.json``
and ``bench/results/steam.md``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, run_isolated, save

CACHE = str(Path(__file__).resolve().parent.parent / ".dayzero_cache" / "encoder")
BASELINES = ("popularity", "item-knn", "content-tfidf", "content-minilm", "sasrec-id", "two-tower")
TEXT_MODELS = ("sequential-text", "sequential-text-only")
#: Constructor parameters of the SequentialRecommender rows (opt-in variants run with --models).
SEQUENTIAL_VARIANTS = {
    "sasrec-id": {"text": False},
    "sequential-text": {"strategy": "frozen"},
    "sequential-text-only": {"strategy": "frozen", "use_ids": False},
    "sequential-lora": {"strategy": "lora"},
    # Field-token bags (tags, genres, specs, developer, publisher) in the item vectors.
    "sequential-text-tokens": {"strategy": "frozen", "content__field_tokens": True},
    # ... and a content-similarity term in the logits (w from CONTENT_WEIGHTS, see TUNED).
    "sequential-text-content": {"strategy": "frozen", "content__field_tokens": True},
    # ... the same term added at scoring only (late fusion with a content kNN).
    "sequential-text-fusion": {
        "strategy": "frozen",
        "content__field_tokens": True,
        "content__content_training": False,
    },
}
#: Settings chosen on the protocol's validation split (training players only): parameter, grid.
#: 100 was added when the validation split chose 30, the top of 1-30, in three of six cases.
CONTENT_WEIGHTS = (1.0, 3.0, 10.0, 30.0, 100.0)
TUNED = {
    "sequential-text-content": ("content__content_weight", CONTENT_WEIGHTS),
    "sequential-text-fusion": ("content__content_weight", CONTENT_WEIGHTS),
}
#: Validation users per grid value (seeded draw).
VALIDATION_USERS = 400
MODELS = BASELINES + TEXT_MODELS
ID_ONLY = ("popularity", "item-knn", "sasrec-id")
PROTOCOLS = ("new-games", "new-players", "new-games-200k")
#: The two-tower rating model has no signal in implicit data (measured on steam-reviews).
SKIP = {("new-games-200k", "two-tower")}
K = 20
VARIANT_NOTES = {
    "sequential-text-tokens": "+ field-token bags (tags, genres, specs, developer, publisher)",
    "sequential-text-content": "+ tokens + content-cosine term (weight w) in training and scoring",
    "sequential-text-fusion": "+ tokens + content-cosine term (weight w) at scoring only",
}


class TfidfContent:
    """Content kNN for implicit feedback: a candidate's score is the sum of its TF-IDF cosine
    to the games in the history (the game text view). The vocabulary and IDF are fit on the
    games given here (those known at the split time); :meth:`partial_fit_items` adds games
    through them, refitting nothing."""

    def __init__(self, texts: dict) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.ids = list(texts)
        self.row = {item: n for n, item in enumerate(self.ids)}
        self.vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True)
        self.vectors = self.vectorizer.fit_transform([texts[i] for i in self.ids])

    def _embed(self, texts: list[str]):
        return self.vectorizer.transform(texts)

    def partial_fit_items(self, items) -> TfidfContent:
        """Add games (Entities) by their text, with the fitted statistics."""
        import numpy as np
        import scipy.sparse as sp

        from dayzero.evaluate.protocols.steam import game_texts

        texts = {i: t for i, t in game_texts(items).items() if i not in self.row}
        if texts:
            fresh = self._embed(list(texts.values()))
            stack = sp.vstack if sp.issparse(self.vectors) else np.vstack
            self.vectors = stack([self.vectors, fresh])
            for item in texts:
                self.row[item] = len(self.ids)
                self.ids.append(item)
        return self

    def __call__(self, history, candidates):
        import numpy as np

        hist = [self.row[i] for i in history if i in self.row]
        if not hist:
            return np.zeros(len(candidates))
        rows = [self.row[c] for c in candidates]  # every candidate is known or folded in
        sims = self.vectors[rows] @ self.vectors[hist].T
        return np.asarray(sims.sum(axis=1)).ravel()


class EncoderContent(TfidfContent):
    """The same content kNN on frozen all-MiniLM-L6-v2 vectors of the game text (cached)."""

    def __init__(self, texts: dict) -> None:
        from dayzero.text.encoder import TextEncoder

        self.ids = list(texts)
        self.row = {item: n for n, item in enumerate(self.ids)}
        self.encoder = TextEncoder(cache_dir=CACHE)
        self.vectors = self._embed([texts[i] for i in self.ids])

    def _embed(self, texts: list[str]):
        return self.encoder.encode(texts, normalize=True)


def _data(protocol: str = "new-games"):
    from dayzero.datasets.steam import load_steam_200k, load_steam_games, load_steam_reviews
    from dayzero.evaluate.protocols.steam import steam_200k_implicit, steam_implicit

    if protocol == "new-games-200k":
        return steam_200k_implicit(load_steam_200k(behaviour="play"), load_steam_games())
    return steam_implicit(load_steam_reviews())


def _split(protocol: str, dataset, seed: int):
    from dayzero.evaluate.protocols.steam import new_games_split, new_players_split

    if protocol == "new-games-200k":
        # steam-200k has no timestamps (its file order is by playtime): nothing can be cut.
        return new_games_split(dataset, fraction=0.15, allow_untimed=True)
    if protocol.startswith("new-games"):
        return new_games_split(dataset, fraction=0.15)
    return new_players_split(dataset, fraction=0.2, min_interactions=2, seed=seed)


def _without_release(entities):
    """The attribute encoder takes numeric fields as floats: leave the release date out."""
    from dayzero.core.schema import Entities

    fields = {k: v for k, v in entities.fields.items() if k != "release_date"}
    return Entities(entities.frame, fields, entities.kind)


class _NoRelease:
    """Folds items into ``model`` without their release date (see :func:`_without_release`)."""

    def __init__(self, model) -> None:
        self.model = model

    def partial_fit_items(self, items):
        return self.model.partial_fit_items(_without_release(items))


def _fit(model: str, split, seed: int, epochs: int, params: dict | None = None):
    """Fit ``model`` on ``split.train`` (what was known at the split time), fold in the
    split's new games, and return (scorer, extra info). ``params`` override the constructor's."""
    from dayzero.evaluate.protocols.steam import GAME_TEMPLATE, game_texts
    from dayzero.evaluate.ranking import recommender_scorer, sequence_scorer

    train = split.train
    if model == "popularity":
        from dayzero.recommend.baselines.popularity import Popularity

        fitted = split.fold_in(Popularity().fit(train))
        return recommender_scorer(fitted), {}
    if model == "item-knn":
        from dayzero.recommend.baselines.item_knn import ItemKNN

        knn = ItemKNN(k_neighbors=100, centered=False, scoring="similarity").fit(train)
        return recommender_scorer(split.fold_in(knn)), {"k_neighbors": 100}
    if model in ("content-tfidf", "content-minilm"):
        kind = TfidfContent if model == "content-tfidf" else EncoderContent
        scorer = split.fold_in(kind(game_texts(train.items)))
        return scorer, {"fit_games": len(train.items)}
    if model == "two-tower":
        from dayzero.core.schema import Dataset
        from dayzero.recommend.two_tower import TwoTowerRecommender

        train = Dataset(
            train.interactions,
            None,
            _without_release(train.items),
            train.name,
            train.user_map,
            train.item_map,
        )
        tt = TwoTowerRecommender(
            item_template=GAME_TEMPLATE.to_dict(),
            encoder={"cache_dir": CACHE},
            training={
                "epochs": min(epochs, 10),
                "ranking_weight": 1.0,
                "retrieval_weight": 0.0,  # the rows as measured; bench/retrieval.py has the head
            },
            random_state=seed,
        ).fit(train)
        split.fold_in(_NoRelease(tt))
        return recommender_scorer(tt), {"note": "positives as rating 1 (implicit)"}
    from dayzero.recommend.sequential import SequentialRecommender

    seq = SequentialRecommender(
        item_template=GAME_TEMPLATE.to_dict(), random_state=seed
    ).set_params(
        encoder__cache_dir=CACHE,
        training__epochs=epochs,
        **{**SEQUENTIAL_VARIANTS[model], **(params or {})},
    )
    seq.fit(train)
    split.fold_in(seq)
    info = {
        "epochs_run": len(getattr(seq, "history_", [])),
        "encode_seconds": getattr(seq, "encode_seconds_", None),
        "train_seconds": getattr(seq, "train_seconds_", None),
    }
    return sequence_scorer(seq), info


def _tuned(model: str, split, seed: int, epochs: int) -> dict:
    """The settings of ``model`` chosen on ``split.validation_split()`` (training data only)."""
    from dayzero.evaluate.ranking import select_setting

    if model not in TUNED:
        return {}
    name, grid = TUNED[model]
    selection = select_setting(
        lambda value, validation: _fit(model, validation, seed, epochs, {name: value})[0],
        split.validation_split(),
        grid,
        k=K,
        max_users=VALIDATION_USERS,
        seed=seed,
    )
    return {name: selection.chosen, "_selection": {"param": name, **selection.to_dict()}}


def measure(protocol: str, model: str, seed: int, max_users: int | None, epochs: int) -> dict:
    import time

    import torch

    from dayzero.evaluate.ranking import catalogue, evaluate_protocol

    # One thread: on a shared, oversubscribed machine more threads spin and run ~10x slower.
    torch.set_num_threads(1)
    data = _data(protocol).dataset
    split = _split(protocol, data, seed)
    start = time.perf_counter()
    params = _tuned(model, split, seed, epochs)
    selection = params.pop("_selection", None)
    select_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scorer, info = _fit(model, split, seed, epochs, params)
    if selection is not None:
        info = {**info, "selection": selection, "select_seconds": select_seconds}
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rows = evaluate_protocol(
        scorer, split, catalogue(data), k=K, max_users=max_users, seed=seed, n_resamples=1000
    )
    return {
        "protocol": protocol,
        "model": model,
        "fit_seconds": fit_seconds,
        "eval_seconds": time.perf_counter() - start,
        "info": info,
        "split": split.summary(),
        "rows": rows,
    }


def data_report() -> dict:
    """Join rates of steam-reviews and steam-200k to steam-games, and dataset sizes."""
    from dayzero.datasets.steam import (
        load_steam_200k,
        load_steam_games,
        match_steam_200k_to_games,
    )

    report = {"steam-reviews": _data().report}
    games = load_steam_games()
    for behaviour in ("purchase", "play"):
        s200 = load_steam_200k(behaviour=behaviour)
        match = match_steam_200k_to_games(s200, games)
        report[f"steam-200k-{behaviour}"] = {
            "rows": len(s200.interactions),
            "games": len(s200.items),
            "join_rate_games": match.rate,
            "join_rate_rows": match.interaction_rate,
        }
    return report


def _cell(row: dict, metric: str) -> str:
    low, high = row["ci"][metric]
    return f"{row['metrics'][metric]:.4f} [{low:.4f}, {high:.4f}]"


def markdown(results: list[dict], data: dict, seed: int, max_users: int | None) -> str:
    recall, ndcg = f"recall@{K}", f"ndcg@{K}"
    reviews = data["steam-reviews"]
    lines = [
        "### Steam: new games and new players",
        "",
        f"steam-reviews positive verdicts joined to steam-games: join rate "
        f"{reviews['join_rate_rows']:.1%} of rows ({reviews['join_rate_games']:.1%} of games); "
        f"{reviews['positive_rows']:,} positive (player, game) rows, {reviews['players']:,} "
        f"players, {reviews['positive_games']:,} games ({reviews['negative_rows_dropped']:,} "
        "negative verdicts kept out). steam-200k joined by title: "
        + ", ".join(
            f"{name[len('steam-200k-') :]} {d['join_rate_games']:.1%} of games / "
            f"{d['join_rate_rows']:.1%} of rows"
            for name, d in data.items()
            if name.startswith("steam-200k")
        )
        + ".",
        "",
    ]
    for protocol in PROTOCOLS:
        subset = [r for r in results if r["protocol"] == protocol]
        if not subset:
            continue
        summary = subset[0]["split"]
        if protocol.startswith("new-games"):
            source = "steam-200k plays" if protocol.endswith("200k") else "steam-reviews"
            if summary.get("timed", True):
                cut = (
                    f"training = {summary['train_interactions']:,} rows dated before the "
                    f"cut-off ({summary.get('train_rows_after_cutoff', 0):,} later or undated "
                    "rows left out); histories stop at each player's split time "
                    f"({summary.get('history_rows_after_split_time', 0):,} rows cut)"
                )
            else:
                cut = (
                    "no timestamps: training and histories are not cut at the split time, so a "
                    "history may hold actions taken after the held-out ones (optimistic)"
                )
            lines.append(
                f"**New games, {source}** (released on or after {summary['cutoff']}: "
                f"{summary['new_games']} of {summary['new_games'] + summary['old_games']} games, "
                f"{summary['test_interactions']:,} test rows; {cut}; users with a history "
                f"only, {summary['users_without_history']} without one left out)."
            )
        else:
            lines.append(
                f"**New players** ({summary['players']:,} held out of "
                f"{summary['eligible_players']:,} with >= 2 positives; players with <= k actions "
                f"skipped: {summary.get('skipped', {})})."
            )
        settings = [row["setting"] for row in subset[0]["rows"]]
        lines.append("")
        lines.append(
            "| model | "
            + " | ".join(f"{s}: Recall@{K} [95% CI] | NDCG@{K}" for s in settings)
            + " | wall s | peak MiB |"
        )
        lines.append("|---" * (2 * len(settings) + 3) + "|")
        chance = {row["setting"]: row["chance"][recall] for row in subset[0]["rows"]}
        users = {row["setting"]: row["users"] for row in subset[0]["rows"]}
        for r in subset:
            cells = []
            for row in r["rows"]:
                cells += [_cell(row, recall), f"{row['metrics'][ndcg]:.4f}"]
            lines.append(
                f"| {r['model']} | "
                + " | ".join(cells)
                + f" | {r['wall_seconds']:.0f} | {r['peak_rss_mib']:.0f} |"
            )
        cells = [cell for s in settings for cell in (f"{chance[s]:.4f}", "")]
        lines.append("| *chance (random ranking)* | " + " | ".join(cells) + " | | |")
        lines.append("")
        lines.append("Users per setting: " + ", ".join(f"{s}: {n}" for s, n in users.items()))
        lines.append("")
    cap = "all test users" if max_users is None else f"at most {max_users} users per setting"
    lines.append(f"Seed {seed}; {cap}; ties broken at random (seeded).")
    variants = [m for m in VARIANT_NOTES if any(r["model"] == m for r in results)]
    if variants:
        lines += [
            "",
            "Sequential variants: " + "; ".join(f"{m}: {VARIANT_NOTES[m]}" for m in variants),
        ]
        chosen = []
        for r in results:
            selection = r.get("info", {}).get("selection")
            if selection is not None:
                scores = ", ".join(f"{k}: {v:.4f}" for k, v in selection["scores"].items())
                chosen.append(
                    f"{r['protocol']} {r['model']}: w = {selection['chosen']:g} ({scores}; "
                    f"{selection['users']} validation users)"
                )
        lines.append("")
        lines.append(
            "The content weight w is chosen per protocol from "
            + ", ".join(f"{w:g}" for w in CONTENT_WEIGHTS)
            + f" by the mean Recall@{K} over the protocol's settings on its validation split, "
            "carved out of the training data (new games: the latest old games held out at an "
            "earlier cut-off; new players: a slice of the training players), never on test "
            "users: " + ("; ".join(chosen) if chosen else "no selection recorded") + "."
        )
    lines.append("")
    lines.append(
        "The intervals are bootstraps over users of one seed and do not cover the variance "
        "between training seeds (rerun with --seed to see it)."
    )
    lines += ["", *targets(results)]
    return "\n".join(lines)


def targets(results: list[dict]) -> list[str]:
    """Met / missed for the issue's targets, with numbers: each text-initialised model against
    the best baseline of each setting (Recall@20; "clear" = the 95 % intervals do not overlap)."""
    recall = f"recall@{K}"
    out = ["**Targets** (Recall@20, text model vs the best baseline of the setting):", ""]
    goals = {
        "new-games": ("new games among new games", "new games among all games"),
        "new-games-200k": ("new games among new games", "new games among all games"),
        "new-players": ("k=1", "k=3"),
    }
    for protocol, settings in goals.items():
        rows = {r["model"]: {x["setting"]: x for x in r["rows"]} for r in results
                if r["protocol"] == protocol}  # fmt: skip
        base = [m for m in rows if m in BASELINES]
        for model in (m for m in rows if m not in BASELINES):
            for setting in settings:
                best = max(base, key=lambda m: rows[m][setting]["metrics"][recall])
                ours, theirs = rows[model][setting], rows[best][setting]
                a, b = ours["metrics"][recall], theirs["metrics"][recall]
                clear = ours["ci"][recall][0] > theirs["ci"][recall][1]
                verdict = "met" if a > b and clear else ("not clear" if a > b else "missed")
                out.append(
                    f"- {protocol}, {setting}: {model} {a:.4f} vs {best} {b:.4f} -> {verdict}"
                )
    for protocol in ("new-games", "new-games-200k"):
        for r in results:
            if r["protocol"] != protocol or r["model"] not in ID_ONLY:
                continue
            row = r["rows"][0]  # among the new games
            low, high = row["ci"][recall]
            chance = row["chance"][recall]
            where = "contains" if low <= chance <= high else "excludes"
            out.append(
                f"- {protocol}, ID-only {r['model']}: {row['metrics'][recall]:.4f} "
                f"[{low:.4f}, {high:.4f}] {where} chance {chance:.4f}"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--protocols", nargs="*", default=list(PROTOCOLS))
    parser.add_argument("--lora", action="store_true", help="also the LoRA-adapted model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-users", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite steam.md from steam.json"
    )
    parser.add_argument(
        "--append", action="store_true", help="keep the other models' results in steam.json"
    )
    args = parser.parse_args()
    if args.report_only:
        payload = json.loads((RESULTS / "steam.json").read_text())
        text = markdown(payload["results"], payload["data"], payload["seed"], payload["max_users"])
        (RESULTS / "steam.md").write_text(text + "\n")
        print(text)
        return
    models = list(args.models) + (["sequential-lora"] if args.lora else [])
    results = []
    previous = RESULTS / "steam.json"
    if args.append and previous.is_file():
        # Keep earlier runs of the (protocol, model) pairs not run now.
        ran = {(p, m) for p in args.protocols for m in models}
        old = json.loads(previous.read_text())["results"]
        results = [r for r in old if (r["protocol"], r["model"]) not in ran]
    for protocol in args.protocols:
        for model in models:
            if (protocol, model) in SKIP:
                continue
            out = run_isolated(
                measure,
                protocol=protocol,
                model=model,
                seed=args.seed,
                max_users=args.max_users,
                epochs=args.epochs,
            )
            results.append(out)
            cells = {row["setting"]: round(row["metrics"][f"recall@{K}"], 4) for row in out["rows"]}
            print(
                f"{protocol:12s} {model:16s} {out['wall_seconds']:7.1f}s  "
                f"{out['peak_rss_mib']:6.0f} MiB  recall@{K} {cells}",
                flush=True,
            )
    order = {m: n for n, m in enumerate((*MODELS, *SEQUENTIAL_VARIANTS))}
    results.sort(key=lambda r: (PROTOCOLS.index(r["protocol"]), order.get(r["model"], 99)))
    data = run_isolated(data_report)
    payload = {
        "machine": machine(),
        "seed": args.seed,
        "max_users": args.max_users,
        "epochs": args.epochs,
        "data": data,
        "results": results,
    }
    path = save("steam", payload)
    text = markdown(results, data, args.seed, args.max_users)
    (RESULTS / "steam.md").write_text(text + "\n")
    print(text)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
