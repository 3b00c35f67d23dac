"""DropoutNet's settings search on the validation split of CiteULike's tags protocol (never the
test users): Recall@20 among the validation split's new items for each setting given.

    DAYZERO_DATA=../shared/data python bench/dropoutnet_tune.py \\
        "base={}" "long={'epochs': 30, 'pairs_per_epoch': 100_000}" ...

Each argument is ``name={overrides of BASE}``. Prints one line per setting (Recall@20 on at
most 800 validation users, wall seconds); ``bench/retrieval_peers.py`` records the settings
tried and the one chosen. Recall here is hits / min(20, relevant), a ranking of the settings,
not a number to compare with the harness's rows.
"""

from __future__ import annotations

import ast
import sys
import time

import numpy as np

BASE = {
    "factors": 64,
    "regularization": 1.0,
    "alpha": 10.0,
    "content_dim": 300,
    "hidden": 256,
    "dim": 128,
    "epochs": 10,
    "pairs_per_epoch": 50_000,
    "num_threads": 1,
    "random_state": 0,
}


def main(settings: list[str]) -> None:
    import torch

    from dayzero.datasets.citeulike import load_citeulike, load_heater_split
    from dayzero.evaluate.protocols.catalogue import heater_catalogue_split
    from dayzero.recommend.contract import make_recommender

    torch.set_num_threads(1)
    data, heater = load_citeulike(with_citations=True), load_heater_split()
    validation = heater_catalogue_split(data, heater, side="tags", seed=0).validation_split()
    tasks = validation.new_item_tasks()[:800]
    new = list(validation.new_items)
    for setting in settings:
        name, overrides = setting.split("=", 1)
        start = time.perf_counter()
        model = make_recommender("dropoutnet", **{**BASE, **ast.literal_eval(overrides)})
        validation.fold_in(model.fit(validation.train))
        recall = []
        for task in tasks:
            ids, _ = model.recommend(task.user, k=20, items=new, filter_seen=False)
            relevant = set(task.relevant)
            recall.append(len(relevant & set(ids)) / min(20, len(relevant)))
        print(f"{name} {np.mean(recall):.4f} {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
