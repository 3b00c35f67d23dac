"""The peers (implicit ALS / BPR, LightFM: dayzero.recommend.peers; DropoutNet:
dayzero.recommend.dropoutnet) on bench/retrieval.py's
full-catalogue protocols, their settings chosen on each protocol's validation split.

    DAYZERO_DATA=../shared/data nice -n 5 python bench/retrieval_peers.py --dataset ml-100k \\
        [--models implicit-als implicit-bpr lightfm] [--max-users 2000]

Needs the ``bench`` extra (``make bench-deps``). Adds the peers' entries (grid, note) to
``retrieval.MODELS`` and runs ``retrieval.main`` with ``--append``, so the other models' rows in
``bench/results/retrieval_<dataset>.json`` are kept. The entries are made at import, so the
harness's spawned workers (which import this script as their main module) see them too.

A peer's ``threshold`` (what counts as a positive when it trains and folds in) is the protocol's
own relevance rule: rating >= 4 on ML-1M and ml-100k, 2 on the restaurant data (0-2), every
interaction on implicit data. The grids are small (2-3 values): factors, regularisation,
learning rate and, for LightFM, whether the user side carries the interacted-items features.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval
from retrieval import ModelSpec

PEERS = ("implicit-als", "implicit-bpr", "lightfm", "dropoutnet")
#: The protocols' relevance rule (bench/retrieval.py's docstring); implicit data: None.
THRESHOLDS = {"ml-1m": 4.0, "ml-1m-warmup": 4.0, "ml-100k": 4.0, "restaurant": 2.0}
_ENV = "DAYZERO_PEER_THRESHOLD"  # set by main, inherited by the spawned workers


def _peer(name: str):
    def build(params: dict):
        from dayzero.recommend.contract import make_recommender

        value = os.environ.get(_ENV, "")
        threshold = float(value) if value else None
        return make_recommender(name, **{"threshold": threshold, **params})

    return build


FOLD = "new users and items folded in after fit (dayzero.recommend.peers)"
PEER_MODELS = {
    "implicit-als": ModelSpec(
        _peer("implicit-als"),
        params={"iterations": 15, "num_threads": 1, "random_state": 0},
        grid={
            "64 factors, reg 0.1, alpha 1": {"factors": 64, "regularization": 0.1, "alpha": 1.0},
            "64 factors, reg 1, alpha 10": {"factors": 64, "regularization": 1.0, "alpha": 10.0},
            "128 factors, reg 1, alpha 10": {
                "factors": 128,
                "regularization": 1.0,
                "alpha": 10.0,
            },
        },
        note="implicit 0.7.3 AlternatingLeastSquares, confidence 1 + alpha * value on the "
        "positives; new users: implicit's recalculate_user; new items without interactions "
        "score 0; " + FOLD,
    ),
    "implicit-bpr": ModelSpec(
        _peer("implicit-bpr"),
        params={"iterations": 100, "regularization": 0.01, "num_threads": 1, "random_state": 0},
        grid={
            "64 factors, lr 0.01": {"factors": 64, "learning_rate": 0.01},
            "64 factors, lr 0.05": {"factors": 64, "learning_rate": 0.05},
            "128 factors, lr 0.05": {"factors": 128, "learning_rate": 0.05},
        },
        note="implicit 0.7.3 BayesianPersonalizedRanking; new users: mean of their positives' "
        "item vectors (implicit's BPR has no recalculate_user); new items without interactions "
        "score 0; " + FOLD,
    ),
    "lightfm": ModelSpec(
        _peer("lightfm"),
        params={
            "loss": "warp",
            "epochs": 20,
            "learning_rate": 0.05,
            "num_threads": 1,
            "random_state": 0,
        },
        grid={
            "32 factors, history features": {"factors": 32, "history_features": True},
            "32 factors, features only": {"factors": 32, "history_features": False},
            "64 factors, features only": {"factors": 64, "history_features": False},
        },
        note="LightFM 1.17 WARP, identity + field-token features (categorical / multi fields); "
        "new users and items from their features alone (with history features: plus their "
        "revealed positives); " + FOLD,
    ),
    "dropoutnet": ModelSpec(
        _peer("dropoutnet"),
        # the training budget (40 epochs of 200k pairs) and dropout 0.5 were chosen on the
        # validation split of CiteULike tags (Recall@20 among its new items: 10 x 50k pairs
        # 0.218, 30 x 100k 0.246, 40 x 200k 0.268; dropout 0.8 0.158; lr 3e-3 0.158; 500/200
        # wide towers 0.197; 100-d content 0.226; printed by bench/dropoutnet_tune.py), never on
        # test users; one setting everywhere
        params={
            "factors": 64,
            "regularization": 1.0,
            "alpha": 10.0,
            "content_dim": 300,
            "hidden": 256,
            "dim": 128,
            "dropout": 0.5,
            "epochs": 40,
            "pairs_per_epoch": 200_000,
            "num_threads": 1,
            "random_state": 0,
        },
        note="DropoutNet (Volkovs et al. 2017, dayzero.recommend.dropoutnet): WMF (implicit ALS) "
        "preference vectors + TF-IDF/SVD-300 content of the same item text, two tanh towers "
        "regressed on the WMF scores with input dropout 0.5; new items from content, new users "
        "by WMF fold-in of their positives; " + FOLD,
    ),
}
retrieval.MODELS.update(PEER_MODELS)


def main() -> None:
    args = sys.argv[1:]
    if "--dataset" in args:
        dataset = args[args.index("--dataset") + 1]
        threshold = THRESHOLDS.get(dataset)
        os.environ[_ENV] = "" if threshold is None else str(threshold)
    if "--models" not in args:
        args += ["--models", *PEERS]
    if "--append" not in args:
        args.append("--append")
    sys.argv = [sys.argv[0], *args]
    retrieval.main()


if __name__ == "__main__":
    main()
