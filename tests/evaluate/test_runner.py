from __future__ import annotations

import json

import numpy as np
import pytest

from dayzero.core.schema import Dataset, IdMap, Interactions
from dayzero.core.split import ColdStartSplit, Segment
from dayzero.evaluate.report import results_table, write_json
from dayzero.evaluate.runner import evaluate_split
from dayzero.recommend.contract import Recommender, seen_by_user


class SpyModel(Recommender):
    """Predicts ``item / 10`` and records the history it was given."""

    name = "spy"

    def __init__(self) -> None:
        self.histories: list = []

    def fit(self, dataset: Dataset) -> SpyModel:
        self.user_map_ = IdMap(dataset.interactions.users)
        self.item_map_ = IdMap(sorted(dataset.interactions.items))
        self.seen_ = seen_by_user(dataset.interactions)
        return self

    def _score_pairs(self, users, items, history):
        self.histories.append(None if history is None else history.frame.copy())
        return np.asarray(items, dtype=float) / 10


def _split() -> ColdStartSplit:
    train = Interactions.from_records([("a", i, 3.0) for i in range(1, 8)])
    support = Interactions.from_records([("n", 1, 5.0), ("n", 2, 4.0)])
    query = Interactions.from_records([("n", 3, 1.0), ("n", 5, 3.0), ("n", 4, 2.0)])
    warm_q = Interactions.from_records([("a", 6, 5.0), ("a", 7, 1.0)])
    return ColdStartSplit(
        Dataset(train),
        {
            "warm": Segment("warm", Interactions.empty(), warm_q),
            "new_users": Segment("new_users", support, query),
        },
        protocol="toy",
    )


def test_rating_metrics_per_segment_known_answer():
    model = SpyModel()
    result = evaluate_split(model, _split(), task="rating", k=2, n_resamples=50, progress=False)
    new = result.segments["new_users"]
    # predictions 0.3, 0.5, 0.4 for true 1, 3, 2
    assert new.metrics["mae"] == pytest.approx(np.mean([0.7, 2.5, 1.6]))
    # ranking by prediction: items 5 (3.0), 4 (2.0) = the ideal order
    assert new.metrics["ndcg@2"] == pytest.approx(1.0)
    warm = result.segments["warm"]
    # predictions 0.6 (true 5), 0.7 (true 1): ranked 7 then 6
    dcg = 1.0 + 5.0 / np.log2(3)
    ideal = 5.0 + 1.0 / np.log2(3)
    assert warm.metrics["ndcg@2"] == pytest.approx(dcg / ideal)
    assert new.users == 1 and warm.users == 1


def test_only_the_users_support_is_revealed():
    model = SpyModel()
    evaluate_split(model, _split(), task="rating", k=2, n_resamples=10, progress=False)
    revealed = [h for h in model.histories if h is not None]
    assert len(revealed) == 1
    assert revealed[0][["user", "item", "value"]].values.tolist() == [["n", 1, 5.0], ["n", 2, 4.0]]
    assert sum(h is None for h in model.histories) == 1  # the warm user has no support


def test_ranking_task_filters_seen_and_reports_coverage():
    model = SpyModel()
    split = _split()
    result = evaluate_split(model, split, task="ranking", k=3, n_resamples=10, progress=False)
    new = result.segments["new_users"]
    # catalogue 1..7 minus support {1, 2}: top-3 by item/10 = 7, 6, 5; relevant {3, 4, 5}
    assert new.metrics["recall@3"] == pytest.approx(1 / 3)
    assert new.metrics["hit_rate@3"] == 1.0
    assert new.metrics["mrr"] == pytest.approx(1 / 3)
    assert 0 < new.metrics["coverage"] <= 1


def test_unknown_segment_and_task_are_rejected():
    with pytest.raises(KeyError, match="unknown segments"):
        evaluate_split(SpyModel(), _split(), segments=["cold"], progress=False)
    with pytest.raises(ValueError, match="task"):
        evaluate_split(SpyModel(), _split(), task="clicks", progress=False)


def test_report_table_and_json(tmp_path):
    result = evaluate_split(SpyModel(), _split(), k=2, n_resamples=10, progress=False)
    table = results_table([result], show_ci=True)
    assert [c.header for c in table.columns][:3] == ["segment", "model", "users"]
    assert table.row_count == 2
    path = write_json({"results": [result]}, tmp_path / "out" / "r.json")
    data = json.loads(path.read_text())
    assert data["results"][0]["segments"]["new_users"]["metrics"]["mae"] == pytest.approx(1.6)
    with pytest.raises(ValueError):
        results_table([])
