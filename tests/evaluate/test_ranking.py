from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.evaluate.protocols.steam import new_games_split, new_players_split
from dayzero.evaluate.ranking import (
    RankingTask,
    evaluate_protocol,
    evaluate_ranking,
    expected_recall_at_k,
    recommender_scorer,
    sequence_scorer,
    subsample,
    top_k,
)
from dayzero.recommend.baselines.popularity import Popularity

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
    release = pd.Series(pd.date_range("2012-01-01", periods=12, freq="90D"))
    rows = []
    for u in range(30):
        for item in rng.choice(12, size=int(rng.integers(2, 6)), replace=False):
            # Players act on a game after its release.
            stamp = release[item] + pd.Timedelta(days=int(rng.integers(1, 90)))
            rows.append((f"u{u}", int(item), 1.0, stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
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
    with pytest.raises(TypeError, match="ranking_settings"):
        evaluate_protocol(popularity(games), object(), catalogue)


def _genre_data(test_genre_shift: int = 0) -> Dataset:
    """30 games of three genres released 2010-2015; each player keeps to one genre and acts on
    games after their release. ``test_genre_shift`` rewrites only the interactions with the
    latest games (the held-out ones of a 20 % new-games split)."""
    rng = np.random.default_rng(0)
    release = pd.Series(pd.date_range("2010-01-01", periods=30, freq="60D"))
    games = pd.DataFrame(
        {
            "title": [f"G{i}" for i in range(30)],
            "genres": [[f"genre{i % 3}"] for i in range(30)],
            "release_date": release.to_numpy(),
        },
        index=range(30),
    )
    rows = []
    for u in range(120):
        genre = u % 3
        mine = [i for i in range(30) if i % 3 == genre]
        for item in rng.choice(mine, size=6, replace=False):
            if item >= 24:  # held out below: the player's genre is ignored there
                item = 24 + (item + test_genre_shift) % 6
            stamp = release[item] + pd.Timedelta(days=int(rng.integers(1, 300)))
            rows.append((f"u{u}", int(item), 1.0, stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    frame = frame.drop_duplicates(["user", "item"])
    return Dataset(Interactions(frame), None, Entities(games, {"title": "text", "genres": "multi"}))


def test_select_setting_chooses_on_training_players_only():
    from dayzero.evaluate.ranking import select_setting

    seen = []

    def fit(weight, validation):
        seen.append(validation)
        items = validation.train.items.add(validation.new_items)  # the fold-in
        genre = {i: items.record(i)["genres"][0] for i in items.ids}
        noise = {i: np.random.default_rng(i).random() for i in items.ids}

        def score(history, candidates):
            liked = [genre[h] for h in history]
            return np.array([weight * liked.count(genre[c]) + noise[c] for c in candidates])

        return score

    grid = (0.0, 1.0, 10.0)
    split = new_games_split(_genre_data(), fraction=0.2)
    selection = select_setting(fit, split.validation_split(), grid, k=3, n_resamples=20)
    # Content helps on the validation players: a positive weight wins over noise alone.
    assert selection.chosen > 0.0
    assert selection.scores[selection.chosen] > selection.scores[0.0]
    assert selection.users > 0
    # The fit never saw a test interaction, a held-out game, or anything after the cut-off.
    test_pairs = set(zip(split.test.frame["user"], split.test.frame["item"], strict=True))
    for validation in seen:
        for frame in (validation.train.interactions.frame, validation.test.frame):
            assert not frame["item"].isin(split.new_games).any()
            assert (frame["timestamp"] < split.cutoff).all()
            assert not set(zip(frame["user"], frame["item"], strict=True)) & test_pairs
        assert not set(validation.new_items.ids) & set(split.new_games)
    # Altering the test interactions changes nothing in the choice.
    other = new_games_split(_genre_data(test_genre_shift=1), fraction=0.2)
    assert _key(other.test.frame) != _key(split.test.frame)
    again = select_setting(fit, other.validation_split(), grid, k=3, n_resamples=20)
    assert again.scores == selection.scores and again.chosen == selection.chosen
    with pytest.raises(ValueError, match="grid is empty"):
        select_setting(fit, split.validation_split(), ())


def _key(frame: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, frame[["user", "item"]].astype(str).to_numpy().tolist()))


def test_new_games_are_ranked_among_all_games_when_the_catalogue_is_the_training_one():
    from dayzero.evaluate.ranking import catalogue

    split = new_games_split(_genre_data(), fraction=0.2)
    games = catalogue(split.train)
    assert not set(games) & set(split.new_games)  # known at the cut-off only

    def scorer(history, candidates):
        return np.array([1.0 if c in split.new_games else 0.0 for c in candidates])

    rows = evaluate_protocol(scorer, split, games, k=20, n_resamples=20)
    assert rows[1]["n_candidates"] == len(games) + len(split.new_games)
    assert rows[1]["metrics"]["recall@20"] == 1.0


def test_several_cutoffs_read_one_ranking():
    rng = np.random.default_rng(4)
    items = list(range(60))
    tasks = [
        RankingTask(n, tuple(rng.choice(60, 3, replace=False).tolist()),
                    frozenset(rng.choice(60, 5, replace=False).tolist()))
        for n in range(40)
    ]  # fmt: skip
    weights = rng.random(60)

    def scorer(history, candidates):
        return np.round(weights[list(candidates)], 1)  # many ties: the seeded draw matters

    both = evaluate_ranking(scorer, tasks, {"all": items}, k=(10, 20), n_resamples=50)["all"]
    for cut in (10, 20):
        alone = evaluate_ranking(scorer, tasks, {"all": items}, k=cut, n_resamples=50)["all"]
        for metric in (f"recall@{cut}", f"ndcg@{cut}"):
            assert both.metrics[metric] == alone.metrics[metric]
            assert both.ci[metric] == alone.ci[metric]
        assert both.chance[f"recall@{cut}"] == alone.chance[f"recall@{cut}"]
    with pytest.raises(ValueError, match="k is empty"):
        evaluate_ranking(scorer, tasks, {"all": items}, k=())


class _Recorder(Popularity):
    """Popularity that records the user and history each scoring call gets."""

    def _score_items(self, user, history):
        frame = None if history is None else history.frame
        self.calls.append((user, None if frame is None else frame["value"].tolist()))
        return super()._score_items(user, history)


def test_recommender_scorer_reads_the_task():
    rows = [("u0", "a", 5.0), ("u0", "b", 3.0), ("u1", "a", 4.0), ("u1", "c", 2.0)]
    model = _Recorder().fit(Dataset(Interactions.from_records(rows)))
    model.calls = []
    scorer = recommender_scorer(model)
    items = ["a", "b", "c", "z"]  # z: unknown to the model, scored by its cold fallback
    warm = RankingTask("u0", ("a", "b"), frozenset({"c"}), values=(5.0, 3.0), known_user=True)
    new = RankingTask("n1", ("a",), frozenset({"b"}), values=(2.0,))
    trained = RankingTask("u1", ("c",), frozenset({"b"}))  # a training user tested on history
    scores = scorer.score_task(warm, items)
    assert scores.tolist() == [2.0, 1.0, 1.0, 0.0]
    scorer.score_task(new, items)
    scorer.score_task(trained, items)
    scorer(["a"], items)
    assert model.calls == [
        ("u0", None),  # a known user is scored as itself, its training items not repeated
        ("n1", [2.0]),  # a new user under its own id, with the revealed rating
        ("__query__", [1.0]),  # a training user described by history alone: the placeholder
        ("__query__", [1.0]),
    ]
    # The all-items path gives what Recommender.recommend gives.
    ranked = dict(zip(*model.recommend("u0", k=3, filter_seen=False), strict=True))
    assert scores[:3].tolist() == [ranked[i] for i in items[:3]]
    # evaluate_ranking hands the whole task to a scorer that reads tasks.
    model.calls = []
    evaluate_ranking(scorer, [warm, new], {"all": items}, k=2, n_resamples=20)
    assert [user for user, _ in model.calls] == ["u0", "n1"]


def test_recommender_scorer_ranks_unknown_items_by_the_ranking_head():
    class Ranked(Popularity):
        def rank_scores(self, users, items, history=None):
            return np.full(len(items), 7.0)  # a ranking head that differs from predict

    rows = [("u0", "a", 1.0), ("u1", "b", 1.0)]
    scorer = recommender_scorer(Ranked().fit(Dataset(Interactions.from_records(rows))))
    task = RankingTask("n", ("a",), frozenset({"z"}))
    assert scorer.score_task(task, ["a", "z"]).tolist() == [1.0, 7.0]
