"""Every baseline on every ml-1m-melu scenario (MeLU protocol) and on ml-100k (held-out new users
and items, each new user revealing 5 ratings).

    DAYZERO_DATA=../shared/data python bench/baselines.py [--models item-mean mf ...]

Writes ``bench/results/baselines.json`` and prints the Markdown table for ``BENCHMARKS.md``.
Each (dataset, model) runs in its own process so its wall time and peak memory are its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, run_isolated, save

MODELS = (
    "global-mean",
    "item-mean",
    "item-mean-user-bias",
    "popularity",
    "item-knn",
    "mf",
    "content-knn",
    "feature-hybrid",
)
SETUPS = (("ml-1m-melu", "melu"), ("ml-100k", "holdout"))
# Ranking-only models: their "predictions" are scores, so MAE is not reported for them.
RANKING_ONLY = {"popularity"}


def measure(dataset: str, protocol: str, model: str, seed: int) -> dict:
    from dayzero.evaluate.experiments import get_experiment
    from dayzero.evaluate.runner import evaluate_split
    from dayzero.recommend.contract import make_recommender

    experiment = get_experiment(dataset, protocol)
    split = experiment.split(seed=seed)
    result = evaluate_split(
        make_recommender(model), split, task=experiment.task, k=experiment.k, progress=False
    )
    return {"split": split.summary(), **result.to_dict()}


def markdown(rows: list[dict]) -> str:
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        subset = [r for r in rows if r["dataset"] == dataset]
        segments = list(subset[0]["segments"])
        k = 5
        lines.append(f"\n#### {dataset} ({subset[0]['protocol']}): MAE / nDCG@{k} per segment\n")
        lines.append("| model | " + " | ".join(segments) + " | wall s | peak MiB |")
        lines.append("|---" * (len(segments) + 3) + "|")
        for r in subset:
            cells = [
                ("—" if r["model"] in RANKING_ONLY else f"{r['segments'][s]['metrics']['mae']:.4f}")
                + f" / {r['segments'][s]['metrics'][f'ndcg@{k}']:.4f}"
                for s in segments
            ]
            lines.append(
                f"| {r['model']} | "
                + " | ".join(cells)
                + f" | {r['wall_seconds']:.1f} | {r['peak_rss_mib']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for dataset, protocol in SETUPS:
        for model in args.models:
            out = run_isolated(
                measure, dataset=dataset, protocol=protocol, model=model, seed=args.seed
            )
            out["dataset"] = dataset
            rows.append(out)
            maes = {s: round(v["metrics"]["mae"], 4) for s, v in out["segments"].items()}
            print(f"{dataset:12s} {model:20s} {out['wall_seconds']:7.1f}s  MAE {maes}", flush=True)
    path = save("baselines", {"machine": machine(), "seed": args.seed, "results": rows})
    print(markdown(rows))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
