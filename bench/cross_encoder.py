"""Cross-encoder (MiniLM + LoRA) on ml-1m-melu, MeLU protocol, on a budget; and as a re-ranker.

A cross-encoder costs one transformer pass per (user, item) pair, so it is trained on a sample
of the training ratings (``--pairs``, one epoch) and evaluated on a fixed random sample of
``--tasks`` tasks per segment (seeded). The two-tower (frozen cached MiniLM vectors) is fitted
and scored on the same tasks; re-ranking = re-scoring the two-tower's ranking of the 10 query
items with the cross-encoder (alone, and averaged with the two-tower's prediction).

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python bench/cross_encoder.py`` (writes
``bench/results/cross_encoder.json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, save

ITEM_FIELDS = ["title", "year", "genres", "director", "actors", "plot"]
USER_FIELDS = ["gender", "age", "occupation"]


def sample_segments(split, n_tasks: int, seed: int) -> dict:
    """A sub-Segment of ``n_tasks`` random users (their support and query) per test segment."""
    from dayzero.core.split import Segment

    rng = np.random.default_rng(seed)
    out = {}
    for name, segment in split.segments.items():
        users = list(segment.query.users)
        chosen = rng.choice(len(users), size=min(n_tasks, len(users)), replace=False)
        keep = [users[k] for k in sorted(chosen)]
        out[name] = Segment(name, segment.support.for_users(keep), segment.query.for_users(keep))
    return out


def task_predictions(model, segment) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Per task: true query values and predictions, and the seconds for all of them.

    One ``predict`` call per segment with the whole segment's support as ``history``: each user's
    prediction sees only that user's support rows, so this equals one call per task, and it lets
    the cross-encoder fill its batches (a task has only 10 pairs).
    """
    query = segment.query.frame
    start = time.perf_counter()
    pred = model.predict(query["user"].tolist(), query["item"].tolist(), history=segment.support)
    seconds = time.perf_counter() - start
    truths, preds = [], []
    for rows in query.groupby("user", sort=False).indices.values():
        truths.append(query["value"].to_numpy()[rows])
        preds.append(pred[rows])
    return truths, preds, seconds


def mean_metrics(truths: list[np.ndarray], preds: list[np.ndarray]) -> dict[str, float]:
    from dayzero.evaluate.runner import rating_metrics

    rows = [rating_metrics(t, p, 5) for t, p in zip(truths, preds, strict=True)]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="/work/shared/data")
    parser.add_argument("--pairs", type=int, default=3000, help="training pairs (CPU budget)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=150, help="sampled tasks per segment")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--no-two-tower", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from dayzero.core.templates import FieldSpec, Template
    from dayzero.datasets.melu import load_ml1m_melu
    from dayzero.evaluate.protocols.melu import melu_split
    from dayzero.recommend.cross_encoder import CrossEncoderRecommender

    split = melu_split(load_ml1m_melu(args.data))
    segments = sample_segments(split, args.tasks, args.seed)
    item_template = Template(
        [FieldSpec(f, thousands=f != "year") for f in ITEM_FIELDS], prefix=""
    ).to_dict()
    user_template = Template(USER_FIELDS).to_dict()
    ce = CrossEncoderRecommender(
        item_template=item_template,
        user_template=user_template,
        encoder={"max_length": args.max_length},
        user_share=0.6,
        training={
            "max_train_pairs": args.pairs,
            "epochs": 1,
            "batch_size": 32,
            "lr": args.lr,
            "validation": 0.05,
        },
        random_state=args.seed,
        progress=True,
    )
    start = time.perf_counter()
    ce.fit(split.train)
    ce_fit = time.perf_counter() - start
    print(f"cross-encoder fit {ce_fit:.0f}s history {ce.history_}", flush=True)

    tt = None
    tt_fit = None
    if not args.no_two_tower:
        from dayzero.recommend.two_tower import TwoTowerRecommender

        tt = TwoTowerRecommender(
            encoder={"cache_dir": "/tmp/dz_cache"},
            training={"epochs": 10, "retrieval_weight": 0.0},
            random_state=args.seed,
        )
        start = time.perf_counter()
        tt.fit(split.train)
        tt_fit = time.perf_counter() - start
        print(f"two-tower fit {tt_fit:.0f}s", flush=True)

    results: dict[str, dict] = {}
    for name, segment in segments.items():
        truths, ce_pred, ce_seconds = task_predictions(ce, segment)
        pairs = sum(len(t) for t in truths)
        row = {
            "tasks": len(truths),
            "pairs": pairs,
            "cross_encoder": mean_metrics(truths, ce_pred),
            "cross_encoder_seconds": ce_seconds,
            "cross_encoder_pairs_per_s": pairs / ce_seconds,
        }
        if tt is not None:
            _, tt_pred, tt_seconds = task_predictions(tt, segment)
            blend = [(a + b) / 2 for a, b in zip(ce_pred, tt_pred, strict=True)]
            row.update(
                two_tower=mean_metrics(truths, tt_pred),
                two_tower_seconds=tt_seconds,
                # Re-ranking the two-tower's 10 query candidates = ordering them by the
                # cross-encoder's scores (alone, or averaged with the two-tower's).
                rerank_by_cross_encoder_ndcg5=row["cross_encoder"]["ndcg@5"],
                rerank_by_average_ndcg5=mean_metrics(truths, blend)["ndcg@5"],
                average=mean_metrics(truths, blend),
                rerank_cost_ms_per_user=1000 * ce_seconds / len(truths),
                two_tower_ms_per_user=1000 * tt_seconds / len(truths),
            )
        results[name] = row
        print(name, row, flush=True)

    payload = {
        "benchmark": "ml-1m-melu cross-encoder (budget) and re-ranking",
        "protocol": "MeLU task files; metrics per user then averaged; sampled tasks per segment",
        "settings": {
            **vars(args),
            "model_params": ce.get_params(),
            "strategy": ce.strategy_config_.name,
            "two_tower": None if tt is None else tt.get_params(),
        },
        "cross_encoder_fit_seconds": ce_fit,
        "cross_encoder_train_seconds": ce.train_seconds_,
        "cross_encoder_validation": ce.history_,
        "two_tower_fit_seconds": tt_fit,
        "segments": results,
        "machine": machine(),
    }
    print(save("cross_encoder", payload))


if __name__ == "__main__":
    main()
