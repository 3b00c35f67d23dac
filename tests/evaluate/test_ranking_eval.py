from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.data.schema import Dataset, Entities, Interactions
from dayzero.data.steam_protocols import RankingTask, new_games_split, new_players_split
from dayzero.evaluate.ranking_eval import (
    evaluate_protocol,
    evaluate_ranking,
    expected_recall_at_k,
    recommender_scorer,
    sequence_scorer,
    subsample,
    top_k,
)
from dayzero.models.popularity import Popularity

ITEMS = list("abcdefghij")


def _oracle(relevant_by_history: dict):
    """Scores 1 for the items the task's history says are relevant, 0 elsewhere."""

    def score(history, candidates):
        good = relevant_by_history[tuple(history)]
        return np.array([1.0 if c in good else 0.0 for c in candidates])

    return score


def test_top_k_orders_by_score_and_breaks_ties_by_seeded_random():
    rng = np.random.default_rng(0)
    assert top_k(np.array([0.2, 0.9, 0.5]), ["a", "b", "c"], 2, rng) == ["b", "c"]
    flat = np.zeros(100)
    ids = list(range(100))
    first = top_k(flat, ids, 10, np.random.default_rng(1))
    assert first == top_k(flat, ids, 10, np.random.default_rng(1))
    assert first != list(range(10))  # not catalogue order
    with pytest.raises(ValueError, match="scores for 3 candidates"):
        top_k(np.zeros(2), ["a", "b", "c"], 1, rng)
    with pytest.raises(FloatingPointError):
        top_k(np.array([np.nan, 1.0]), ["a", "b"], 1, rng)


def test_known_answer_recall_and_ndcg_with_history_removed():
    tasks = [
        RankingTask("u1", ("a",), frozenset({"b", "c"})),
        RankingTask("u2", ("d",), frozenset({"e"})),
    ]
    # u1's oracle also scores its own history item highest: it must be filtered out.
    scorer = _oracle({("a",): {"a", "b"}, ("d",): {"e"}})
    result = evaluate_ranking(scorer, tasks, {"all": ITEMS}, k=1, n_resamples=50)["all"]
    # u1: top-1 = b -> recall 1/2, ndcg 1/1; u2: top-1 = e -> 1, 1.
    assert result.metrics["recall@1"] == pytest.approx(0.75)
    assert result.metrics["ndcg@1"] == pytest.approx(1.0)
    assert result.users == 2
    low, high = result.ci["recall@1"]
    assert low <= 0.75 <= high
    # Chance: 1 of 9 candidates after removing the history item.
    assert result.chance["recall@1"] == pytest.approx(1 / 9)


def test_candidate_sets_restrict_relevant_items_and_skip_users_without_any():
    tasks = [
        RankingTask("u1", ("a",), frozenset({"b", "h"})),
        RankingTask("u2", ("a",), frozenset({"c"})),
    ]
    calls = []

    def scorer(history, candidates):
        calls.append(list(candidates))
        return np.array([1.0 if c == "h" else 0.0 for c in candidates])

    results = evaluate_ranking(scorer, tasks, {"new": ["h", "i", "j"], "all": ITEMS}, k=1)
    assert results["new"].users == 1  # u2 has no relevant new item
    assert results["new"].metrics["recall@1"] == 1.0
    assert results["all"].users == 2
    assert results["all"].metrics["recall@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert len(calls) == 2  # the union is scored once per task
    assert sorted(calls[0]) == sorted(ITEMS)


def test_constant_scores_measure_chance():
    rng = np.random.default_rng(0)
    tasks = [
        RankingTask(n, (), frozenset(rng.choice(100, size=3, replace=False).tolist()))
        for n in range(400)
    ]
    result = evaluate_ranking(
        lambda h, c: np.zeros(len(c)), tasks, {"all": list(range(100))}, k=20, n_resamples=200
    )["all"]
    assert result.chance["recall@20"] == pytest.approx(0.2)
    low, high = result.ci["recall@20"]
    assert low < 0.2 < high


def test_expected_recall_and_bad_input():
    assert expected_recall_at_k(2, 50, 20) == pytest.approx(0.4)
    assert expected_recall_at_k(1, 10, 20) == 1.0
    with pytest.raises(ValueError, match="no ranking tasks"):
        evaluate_ranking(lambda h, c: np.zeros(len(c)), [], {"all": ITEMS})
    with pytest.raises(ValueError, match="candidate_sets"):
        evaluate_ranking(lambda h, c: np.zeros(len(c)), [RankingTask("u", (), frozenset("a"))], {})


def test_subsample_is_seeded_and_keeps_order():
    tasks = [RankingTask(n, (), frozenset({n})) for n in range(50)]
    a = subsample(tasks, 10, seed=3)
    assert a == subsample(tasks, 10, seed=3)
    assert [t.user for t in a] == sorted(t.user for t in a)
    assert subsample(tasks, None) == tasks


def _data() -> Dataset:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        for item in rng.choice(12, size=int(rng.integers(2, 6)), replace=False):
            stamp = pd.Timestamp("2015-01-01") + pd.Timedelta(days=int(rng.integers(0, 90)))
            rows.append((f"u{u}", int(item), 1.0, stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    release = pd.Series(pd.date_range("2012-01-01", periods=12, freq="90D"))
    games = pd.DataFrame(
        {"title": [f"G{i}" for i in range(12)], "release_date": release.to_numpy()},
        index=range(12),
    )
    return Dataset(Interactions(frame), None, Entities(games, {"title": "text"}))


def test_recommender_scorer_popularity_cannot_rank_unknown_items():
    data = _data()
    split = new_games_split(data, fraction=0.2)
    model = Popularity().fit(split.train)
    scorer = recommender_scorer(model)
    scores = scorer([0], split.new_games + split.old_games)
    assert np.all(scores[: len(split.new_games)] == 0)
    counts = split.train.interactions.frame["item"].value_counts()
    assert scores[len(split.new_games) :].tolist() == counts[split.old_games].tolist()
    with pytest.raises(ValueError, match="real user"):
        recommender_scorer(model, user="u0")


def test_sequence_scorer_keeps_candidate_order():
    class Fake:
        item_map_ = (1, 2)  # the model's catalogue; 3 is scored as an unknown candidate

        def recommend_sequence(self, history, k, exclude, items=None):
            assert exclude == ()
            items = self.item_map_ if items is None else items
            order = sorted(items, reverse=True)[:k]
            return order, np.array([10.0 * i for i in order])

    assert sequence_scorer(Fake())([1], [3, 1, 2]).tolist() == [30.0, 10.0, 20.0]


def test_evaluate_protocol_rows_for_both_protocols():
    data = _data()
    catalogue = list(range(12))
    popularity = lambda split: recommender_scorer(Popularity().fit(split.train))  # noqa: E731
    games = new_games_split(data, fraction=0.2)
    rows = evaluate_protocol(popularity(games), games, catalogue, k=5, n_resamples=50)
    assert [r["setting"] for r in rows] == [
        "new games among new games",
        "new games among all games",
    ]
    # Popularity puts every unknown (new) game below the known ones: nothing found among all.
    assert rows[1]["metrics"]["recall@5"] == 0.0
    players = new_players_split(data, seed=0)
    rows = evaluate_protocol(
        popularity(players), players, catalogue, k=5, ks=(1, 3), n_resamples=50, max_users=4
    )
    assert [r["setting"] for r in rows] == ["k=1", "k=3"]
    assert all(r["users"] <= 4 for r in rows)
    with pytest.raises(TypeError, match="NewGamesSplit"):
        evaluate_protocol(popularity(games), object(), catalogue)
