"""Warm-up curve on ml-1m-melu: how good are recommendations for a brand-new user after their
first 0, 1, 2, 5, 10, 20 ratings?

    DAYZERO_DATA=../shared/data nice -n 5 python bench/warmup_curve.py [--users 400]

New users are the MeLU user-cold test users (``user_cold_testing``, never in training) with more
than 20 ratings; a seeded sample of ``--users`` of them keeps the run under 20 minutes on 2
cores. Each user's ratings are taken in file order (the state files carry no timestamps; file
order stands in for time). The first n are revealed; the query is fixed for every n: all ratings
after the first 20. Per user: MAE and nDCG@5 of the query ratings, Recall@10 of the query items
rated >= 4 among all items (revealed ones excluded); then averaged over users.

Arms:

* ``fold-in``: the two-tower model (frozen encoder, the ``bench/ml1m_coldstart.py`` setting)
  trained on ``meta_training``, the revealed ratings passed as request-time history (no
  training) - what the service does between updates.
* ``fold-in + fine-tune``: the same model after :meth:`TwoTowerRecommender.fine_tune` on every
  sampled user's revealed ratings plus ``--replay-ratio`` replayed training ratings per new one
  (seeded), ``--epochs`` passes - what ``dayzero update`` does; the revealed ratings are then the
  user's training history.
* ``item-mean`` and ``popularity`` (ranking only: no MAE).

Writes ``bench/results/warmup_curve.json``, ``.png`` and ``.md`` (the BENCHMARKS.md section).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, run_isolated, save

REVEAL = (0, 1, 2, 5, 10, 20)
ARMS = ("fold-in", "fold-in + fine-tune", "item-mean", "popularity")
# The rating head as measured (the retrieval head, on by default since issue 12, is pinned off;
# bench/retrieval.py measures it on the full-catalogue warm-up).
TWO_TOWER = {
    "training__epochs": 20,
    "training__ranking_weight": 0.5,
    "training__retrieval_weight": 0.0,
}
RELEVANT = 4.0
RECALL_K = 10


def _shrinkage() -> float | None:
    """The ``support_shrinkage`` bench/ml1m_coldstart.py chose on validation (never on test)."""
    path = RESULTS / "ml1m_coldstart.json"
    if path.is_file():
        return json.loads(path.read_text())["shrinkage_selection"]["chosen"]
    return 10.0


def _score_users(model, users, revealed, query, n, use_history: bool) -> dict[str, float]:
    """Mean over users of MAE, nDCG@5 (query ratings) and Recall@10 (all items)."""
    import numpy as np

    from dayzero.core.schema import Interactions
    from dayzero.evaluate.metrics import ndcg_at_k, recall_at_k

    history = revealed[revealed["rank"] < n]
    hist = Interactions(history[["user", "item", "value"]]) if use_history and n else None
    pred = model.predict(query["user"].tolist(), query["item"].tolist(), history=hist)
    frame = query.assign(pred=pred)
    maes, ndcgs, recalls = [], [], []
    for user, group in frame.groupby("user", sort=False):
        maes.append(float(np.abs(group["pred"] - group["value"]).mean()))
        ndcgs.append(ndcg_at_k(group["value"].to_numpy(), group["pred"].to_numpy(), 5))
        relevant = group.loc[group["value"] >= RELEVANT, "item"].tolist()
        if relevant:
            user_hist = None if hist is None else hist.for_users([user])
            ids, _ = model.recommend(user, k=RECALL_K, history=user_hist)
            shown = set(history.loc[history["user"] == user, "item"])
            ids = [i for i in ids if i not in shown]
            recalls.append(recall_at_k(ids, relevant, RECALL_K))
    return {
        "mae": float(np.mean(maes)),
        "ndcg@5": float(np.mean(ndcgs)),
        f"recall@{RECALL_K}": float(np.mean(recalls)),
        "users": len(maes),
    }


def measure(
    n_users: int, seed: int, epochs: int, replay_ratio: float, cache_dir: str
) -> dict[str, object]:
    import tempfile

    import numpy as np
    import torch

    from dayzero.core.schema import Interactions
    from dayzero.datasets.melu import load_ml1m_melu
    from dayzero.recommend.contract import make_recommender
    from dayzero.recommend.two_tower import TwoTowerRecommender

    torch.set_num_threads(2)
    data = load_ml1m_melu()
    train = data.dataset("meta_training")
    cold = data.states["user_cold_testing"].frame.copy()
    cold["rank"] = cold.groupby("user", sort=False).cumcount()
    counts = cold.groupby("user", sort=False).size()
    eligible = np.sort(counts.index[counts > max(REVEAL)].to_numpy())
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(eligible, size=min(n_users, len(eligible)), replace=False).tolist())
    cold = cold[cold["user"].isin(chosen)]
    revealed = cold[cold["rank"] < max(REVEAL)]
    query = cold[cold["rank"] >= max(REVEAL)]

    timings: dict[str, float] = {}
    start = time.perf_counter()
    params = {**TWO_TOWER, "support_shrinkage": _shrinkage()}
    model = TwoTowerRecommender().set_params(encoder__cache_dir=cache_dir, **params).fit(train)
    timings["fit_two_tower"] = time.perf_counter() - start
    baselines = {name: make_recommender(name).fit(train) for name in ("item-mean", "popularity")}

    results: dict[str, dict[str, dict]] = {arm: {} for arm in ARMS}
    tune_seconds = []
    train_frame = train.interactions.frame
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "base")
        for n in REVEAL:
            results["fold-in"][str(n)] = _score_users(
                model, chosen, revealed, query, n, use_history=True
            )
            for name, baseline in baselines.items():
                scores = _score_users(baseline, chosen, revealed, query, n, use_history=True)
                if name == "popularity":
                    scores.pop("mae")  # a ranking score, not a rating
                results[name][str(n)] = scores
            if n == 0:  # nothing to fine-tune on
                results["fold-in + fine-tune"]["0"] = results["fold-in"]["0"]
                continue
            shown = revealed[revealed["rank"] < n]
            new = Interactions(shown[["user", "item", "value"]])
            size = min(len(train_frame), round(replay_ratio * len(new)))
            rows = np.random.default_rng(seed + n).choice(len(train_frame), size, replace=False)
            replay = Interactions(train_frame.iloc[np.sort(rows)])
            tuned = TwoTowerRecommender.load(Path(tmp) / "base")
            start = time.perf_counter()
            tuned.fine_tune(new, epochs=epochs, replay=replay, random_state=seed)
            tune_seconds.append(time.perf_counter() - start)
            results["fold-in + fine-tune"][str(n)] = _score_users(
                tuned, chosen, revealed, query, n, use_history=False
            )
            print(n, {a: round(results[a][str(n)].get("mae", 0), 4) for a in ARMS}, flush=True)
    timings["fine_tune_median"] = float(np.median(tune_seconds))
    return {
        "results": results,
        "users": len(chosen),
        "eligible_users": len(eligible),
        "query_ratings": len(query),
        "two_tower_params": params,
        "fine_tune": {"epochs": epochs, "replay_ratio": replay_ratio, "lr_scale": 0.3},
        "timings": timings,
    }


def markdown(out: dict) -> str:
    """The BENCHMARKS.md section: protocol, one table per metric, the plot."""
    results = out["results"]
    tune = out["fine_tune"]
    timings = out.get("timings", {})
    lines = [
        "## Warm-up curve for new users on ml-1m-melu "
        "(`bench/warmup_curve.py` → `bench/results/warmup_curve.json`)",
        "",
        f"{out['users']} of the {out['eligible_users']} MeLU user-cold test users with more than "
        f"{max(REVEAL)} ratings (seeded sample, to keep the run short on 2 cores); never in "
        "training. Each user's ratings in file order (the state files carry no timestamps); the "
        "first n are revealed, and every n is scored on the same query: all ratings after the "
        f"first {max(REVEAL)} ({out['query_ratings']:,} ratings). MAE and nDCG@5 over each "
        f"user's query ratings, Recall@{RECALL_K} of the query items rated >= {RELEVANT:g} "
        "among all items (revealed ones excluded), averaged over users.",
        "",
        "* **fold-in**: the frozen-encoder two-tower of `bench/ml1m_coldstart.py` trained on "
        "`meta_training`, the revealed ratings pooled at request time (no training): what the "
        "service does between updates.",
        f"* **fold-in + fine-tune**: the same model after `fine_tune` on all sampled users' "
        f"revealed ratings plus {tune['replay_ratio']:g} replayed training ratings per new one, "
        f"{tune['epochs']} epochs at {tune['lr_scale']:g} x lr (new users get ID embeddings): "
        "what `dayzero update` does; one fine-tune per n, for all users at once"
        + (f", median {timings['fine_tune_median']:.0f} s" if "fine_tune_median" in timings else "")
        + ".",
        "* **item-mean**, **popularity**: baselines (popularity ranks only: no MAE).",
        "",
    ]
    for metric in ("mae", "ndcg@5", f"recall@{RECALL_K}"):
        better = "lower" if metric == "mae" else "higher"
        lines.append(f"{metric} ({better} is better) after n revealed ratings:")
        lines.append("")
        lines.append("| arm | " + " | ".join(f"n={n}" for n in REVEAL) + " |")
        lines.append("|---" * (len(REVEAL) + 1) + "|")
        for arm in ARMS:
            cells = [
                f"{results[arm][str(n)][metric]:.4f}" if metric in results[arm][str(n)] else "—"
                for n in REVEAL
            ]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("![warm-up curve](bench/results/warmup_curve.png)")
    lines.append("")
    wall = out.get("wall_seconds")
    if wall is not None:
        lines.append(
            f"Wall time {wall / 60:.1f} min (fit {timings.get('fit_two_tower', 0):.0f} s), peak "
            f"{out.get('peak_rss_mib', 0):.0f} MiB, on the shared 2-core machine under "
            f"`nice -n 5`. Rerun: `DAYZERO_DATA=../shared/data {out.get('command', '')}`."
        )
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("mae", "ndcg@5", f"recall@{RECALL_K}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    for ax, metric in zip(axes, metrics, strict=True):
        for arm in ARMS:
            points = [
                (n, out["results"][arm][str(n)][metric])
                for n in REVEAL
                if metric in out["results"][arm][str(n)]
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", label=arm)
        ax.set_xlabel("ratings revealed")
        ax.set_title(f"{metric}{' (lower is better)' if metric == 'mae' else ''}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(REVEAL, [str(n) for n in REVEAL])
        ax.grid(alpha=0.3)
    axes[1].legend()  # the nDCG panel has every arm
    fig.suptitle(f"ml-1m-melu warm-up curve, {out['users']} new users")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--replay-ratio", type=float, default=4.0)
    parser.add_argument("--cache-dir", default=".dayzero_cache")
    parser.add_argument(
        "--report-only", action="store_true", help="Redo the plot and Markdown from the JSON."
    )
    args = parser.parse_args()
    if args.report_only:
        out = json.loads((RESULTS / "warmup_curve.json").read_text())
        plot(out, RESULTS / "warmup_curve.png")
        (RESULTS / "warmup_curve.md").write_text(markdown(out) + "\n")
        return
    out = run_isolated(
        measure,
        n_users=args.users,
        seed=args.seed,
        epochs=args.epochs,
        replay_ratio=args.replay_ratio,
        cache_dir=args.cache_dir,
    )
    out["machine"] = machine()
    out["command"] = " ".join(["nice -n 5 .venv/bin/python bench/warmup_curve.py", *sys.argv[1:]])
    path = save("warmup_curve", out)
    plot(out, RESULTS / "warmup_curve.png")
    table = markdown(out)
    (RESULTS / "warmup_curve.md").write_text(table + "\n")
    print(table)
    print(f"wall {out['wall_seconds']:.0f} s, peak {out['peak_rss_mib']:.0f} MiB; wrote {path}")


if __name__ == "__main__":
    main()
