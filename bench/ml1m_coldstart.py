"""MovieLens-1M cold start, MeLU protocol: dayzero's two-tower (frozen encoder = zero-shot
transfer, LoRA, full fine-tuning) against the anchors of ANCHORS.md §1 and the classical
baselines.

    DAYZERO_DATA=../shared/data python bench/ml1m_coldstart.py [--rows frozen lora full]

Train on ``meta_training`` (model selection on a validation slice of its users, never on test);
per test task the model sees the support set and predicts the 10 query ratings; metrics per
task, then averaged. Each row runs in a fresh process (wall time and peak memory are its own).
Classical rows are read from ``bench/results/baselines.json`` (same protocol, same runner).
The cross-encoder is measured on a task sample by ``bench/cross_encoder.py`` (too slow on a
CPU for all 5,909 tasks).
Writes ``bench/results/ml1m_coldstart.json`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, run_isolated, save

SEGMENTS = ("warm", "new_users", "new_items", "new_users_items")
TWO_TOWER = {"epochs": 20, "ranking_weight": 0.5}
ROWS = {
    "two-tower frozen": {**TWO_TOWER},
    "two-tower lora": {**TWO_TOWER, "strategy": "lora", "adapt_steps": 60, "adapt_items": 32},
    "two-tower full": {
        **TWO_TOWER,
        "strategy": "full",
        "adapt_steps": 60,
        "adapt_items": 32,
        "adapt_lr": 3e-5,
    },
}
# Published systems measured with their own code (ANCHORS.md §1): MAE, standard nDCG@5.
ANCHORS = {
    "MeLU (anchor)": {
        "warm": (0.8210, 0.8835),
        "new_users": (0.8079, 0.8918),
        "new_items": (0.9309, 0.8304),
        "new_users_items": (0.9124, 0.8442),
    },
    "MetaHIN (anchor)": {
        "warm": (0.8184, 0.8537),
        "new_users": (0.7975, 0.8643),
        "new_items": (0.8764, 0.8375),
        "new_users_items": (0.8568, 0.8449),
    },
}
CLASSICAL = ("item-mean", "mf", "content-knn", "feature-hybrid")


def measure(params: dict, cache_dir: str) -> dict:
    import torch

    import dayzero.models  # noqa: F401
    from dayzero.data.datasets.melu import load_ml1m_melu
    from dayzero.data.meta_tasks import melu_split
    from dayzero.evaluate.runner import evaluate_split
    from dayzero.models.two_tower import TwoTowerRecommender

    torch.set_num_threads(2)
    split = melu_split(load_ml1m_melu())
    model = TwoTowerRecommender(cache_dir=cache_dir, **params)
    result = evaluate_split(model, split, progress=False).to_dict()
    result["encode_seconds"] = model.encode_seconds_
    result["epochs_run"] = len(model.history_)
    if hasattr(model, "encoder_parameters_"):
        result["encoder_trainable_parameters"] = model.encoder_parameters_[0]
    return result


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | " + " | ".join(SEGMENTS) + " | wall s | peak MiB |",
        "|---" * (len(SEGMENTS) + 3) + "|",
    ]
    for row in rows:
        cells = [
            f"{row['segments'][s]['mae']:.4f} / {row['segments'][s]['ndcg@5']:.4f}"
            if s in row["segments"]
            else "-"
            for s in SEGMENTS
        ]
        wall = f"{row['wall_seconds']:.0f}" if row.get("wall_seconds") else "-"
        peak = f"{row['peak_rss_mib']:.0f}" if row.get("peak_rss_mib") else "-"
        lines.append(f"| {row['model']} | " + " | ".join(cells) + f" | {wall} | {peak} |")
    return "\n".join(lines)


def _flat(result: dict) -> dict:
    return {
        name: {k: v for k, v in seg["metrics"].items()} for name, seg in result["segments"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS))
    parser.add_argument("--cache-dir", default=".dayzero_cache")
    args = parser.parse_args()

    rows = [
        {
            "model": name,
            "source": "ANCHORS.md §1 (their code, measured there)",
            "segments": {s: {"mae": m, "ndcg@5": n} for s, (m, n) in values.items()},
        }
        for name, values in ANCHORS.items()
    ]
    baselines = json.loads((RESULTS / "baselines.json").read_text())["results"]
    for result in baselines:
        if result["dataset"] == "ml-1m-melu" and result["model"] in CLASSICAL:
            rows.append(
                {
                    "model": result["model"],
                    "source": "bench/results/baselines.json",
                    "segments": _flat(result),
                    "wall_seconds": result["wall_seconds"],
                    "peak_rss_mib": result["peak_rss_mib"],
                }
            )
    for name in args.rows:
        out = run_isolated(measure, params=ROWS[name], cache_dir=args.cache_dir)
        row = {
            "model": name,
            "params": ROWS[name],
            "segments": _flat(out),
            **{
                k: out[k]
                for k in (
                    "wall_seconds",
                    "peak_rss_mib",
                    "fit_seconds",
                    "encode_seconds",
                    "epochs_run",
                )
                if k in out
            },
        }
        if "encoder_trainable_parameters" in out:
            row["encoder_trainable_parameters"] = out["encoder_trainable_parameters"]
        rows.append(row)
        print(
            name,
            {s: round(v["mae"], 4) for s, v in row["segments"].items()},
            f"{out['wall_seconds']:.0f}s",
            flush=True,
        )
    path = save("ml1m_coldstart", {"machine": machine(), "rows": rows})
    print(markdown(rows))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
