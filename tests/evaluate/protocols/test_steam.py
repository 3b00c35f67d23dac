from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.core.templates import Template
from dayzero.evaluate.protocols.steam import (
    GAME_TEMPLATE,
    game_texts,
    new_games_split,
    new_players_split,
    steam_implicit,
    time_order,
    user_sequences,
)
from dayzero.evaluate.ranking import catalogue, history_interactions


def _games(n: int = 20) -> Entities:
    release = pd.to_datetime("2010-01-01") + pd.to_timedelta(np.arange(n) * 100, unit="D")
    release = pd.Series(release, index=range(n)).astype("datetime64[ns]")
    if n > 3:
        release.iloc[3] = pd.NaT  # an undated game stays in training
    frame = pd.DataFrame(
        {
            "title": [f"Game {i}" for i in range(n)],
            "genres": [["Action"] if i % 2 else ["Puzzle"] for i in range(n)],
            "tags": [[f"tag{i % 3}"] for i in range(n)],
            "specs": [["Single-player"]] * n,
            "developer": [f"Studio {i % 4}" for i in range(n)],
            "release_date": release.to_numpy(),
        },
        index=pd.Index(range(n), name="item"),
    )
    return Entities(frame, {"title": "text", "genres": "multi", "release_date": "numeric"})


def _dataset(seed: int = 0, n_users: int = 40, n_games: int = 20) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        count = int(rng.integers(1, 8))
        items = rng.choice(n_games, size=count, replace=False)
        for item in items:
            day = int(rng.integers(0, 30))  # few distinct days: many ties
            stamp = (
                pd.NaT
                if rng.random() < 0.2
                else pd.Timestamp("2014-01-01") + pd.Timedelta(days=day)
            )
            rows.append((f"u{u}", int(item), 1.0, stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    return Dataset(Interactions(frame), None, _games(n_games))


def _key(frame: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, frame[["user", "item"]].astype(str).to_numpy().tolist()))


# --- data -----------------------------------------------------------------------------------------


def test_time_order_puts_undated_last_and_keeps_ties_in_frame_order():
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2015-01-02", None, "2015-01-01", "2015-01-02", None]),
        }
    )
    assert time_order(frame).tolist() == [2, 0, 3, 1, 4]


def test_steam_implicit_keeps_positive_known_games_once_and_reports_join_rate():
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b"],
            "item": [1, 1, 2, 99, 2],
            "value": [1.0, 1.0, 0.0, 1.0, 1.0],
            "timestamp": pd.to_datetime(["2015-02-01", "2015-01-01", "2015-01-01", None, None]),
        }
    )
    out = steam_implicit(Dataset(Interactions(frame), None, _games(5)))
    kept = out.dataset.interactions.frame
    assert kept[["user", "item"]].values.tolist() == [["a", 1], ["b", 2]]
    # The earliest copy of the repeated pair is kept.
    assert kept["timestamp"].iloc[0] == pd.Timestamp("2015-01-01")
    assert out.report["join_rate_rows"] == pytest.approx(4 / 5)
    assert out.report["join_rate_games"] == pytest.approx(2 / 3)
    assert out.report["negative_rows_dropped"] == 1
    assert out.report["duplicate_pairs_dropped"] == 1
    assert set(out.dataset.items.ids) == {1, 2}


def test_steam_implicit_needs_game_metadata():
    with pytest.raises(ValueError, match="with_games=True"):
        steam_implicit(Dataset(Interactions.from_records([("a", 1, 1.0)])))


def test_game_text_view_has_the_template_fields():
    text = game_texts(_games(2))[1]
    assert text == (
        "Title: Game 1 | Genres: Action | Tags: tag1 | Specs: Single-player | Developer: Studio 1"
    )
    assert [s.name for s in GAME_TEMPLATE.specs] == [
        "title",
        "genres",
        "tags",
        "specs",
        "developer",
    ]


def test_user_sequences_follow_time_order():
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "b", "a"],
            "item": [1, 2, 3, 4],
            "value": 1.0,
            "timestamp": pd.to_datetime(["2015-03-01", None, "2015-01-01", "2015-01-01"]),
        }
    )
    assert user_sequences(Interactions(frame)) == {"a": [4, 1, 2], "b": [3]}


# --- new games ------------------------------------------------------------------------------------


def test_new_games_are_the_latest_releases_and_never_in_training():
    data = _dataset()
    split = new_games_split(data, fraction=0.15)
    release = data.items.frame["release_date"]
    train_items = set(split.train.interactions.frame["item"])
    assert not train_items & set(split.new_games)
    assert set(split.new_games).isdisjoint(split.old_games)
    # Every interaction with a new game is test, and only those are.
    test = split.test.frame
    assert test["item"].isin(split.new_games).all()
    everything = data.interactions.frame
    assert _key(test) == _key(everything[everything["item"].isin(split.new_games)])
    # Nothing lost but the interactions with old games dated on or after the cut-off (undated
    # ones included): they were not known at the split time.
    old = everything[~everything["item"].isin(split.new_games)]
    known = old[old["timestamp"] < split.cutoff]
    assert _key(split.train.interactions.frame) == _key(known)
    assert split.params["train_rows_after_cutoff"] == len(old) - len(known) > 0
    # Cut-off: every new game released on or after it, every dated old game before it.
    assert (release[split.new_games] >= split.cutoff).all()
    old_dated = release[split.old_games].dropna()
    assert (old_dated < split.cutoff).all()
    assert 3 in split.old_games  # undated game stays in training
    played = everything["item"].unique()
    dated = release[played].notna().sum()
    assert len(split.new_games) >= int(np.ceil(0.15 * dated))


def test_new_games_split_is_deterministic_and_keeps_new_metadata_apart():
    data = _dataset()
    a, b = new_games_split(data), new_games_split(data)
    assert a.new_games == b.new_games and a.cutoff == b.cutoff
    # Training knows only the games known at the cut-off (the undated one included); the held-out
    # games' metadata comes separately, to be folded in after the fit.
    release = data.items.frame["release_date"]
    later = set(release.index[release >= a.cutoff])
    assert set(a.new_games) <= later
    assert set(a.train.items.ids) == set(data.items.ids) - later
    assert not later & set(a.train.item_map.ids)
    assert set(a.new_items.ids) == later
    assert 3 in a.train.items  # undated


def test_new_games_tasks_use_training_history_and_count_users_without_one():
    data = _dataset()
    split = new_games_split(data)
    tasks = split.tasks(min_history=1)
    train = split.train.interactions.frame
    history = user_sequences(split.train.interactions)
    for task in tasks:
        assert set(task.history) <= set(train.loc[train["user"] == task.user, "item"])
        assert list(task.history) == [i for i in history[task.user] if i in task.history]
        assert task.relevant <= set(split.new_games)
        assert not set(task.history) & task.relevant
    test_users = split.test.frame["user"].nunique()
    assert len(tasks) + split.params["users_without_history"] == test_users


def _spanning() -> Dataset:
    """Six games, the last released 2016-01-10 (held out); players whose histories span it."""
    games = _games(6)
    games.frame["release_date"] = pd.to_datetime(
        ["2010-01-01", "2011-01-01", "2012-01-01", "2013-01-01", "2014-01-01", "2016-01-10"]
    )
    rows = [
        # p: an old game, the new one in early access (before its release), then old games
        # later the same year, after the release and undated: only the first is history.
        ("p", 0, "2015-01-01"),
        ("p", 5, "2015-03-01"),
        ("p", 1, "2015-06-01"),
        ("p", 4, "2016-02-01"),
        ("p", 2, None),
        # q: reviews the new game undated (later than everything): cut at the release date.
        ("q", 0, "2015-01-01"),
        ("q", 1, "2015-12-01"),
        ("q", 2, "2016-01-10"),
        ("q", 5, None),
        # r: the same day as the held-out review cannot be ordered: left out.
        ("r", 1, "2014-05-05"),
        ("r", 2, "2015-05-05"),
        ("r", 5, "2015-05-05"),
        ("s", 0, "2013-01-01"),
        ("s", 1, "2013-02-01"),
    ]
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).assign(value=1.0)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return Dataset(Interactions(frame), None, games)


def test_new_games_history_never_holds_an_event_after_the_split_time():
    split = new_games_split(_spanning(), fraction=0.15)
    assert split.new_games == [5] and split.cutoff == pd.Timestamp("2016-01-10")
    tasks = {t.user: t for t in split.tasks()}
    assert tasks["p"].history == (0,)
    assert tasks["q"].history == (0, 1)
    assert tasks["r"].history == (1,)
    times = split.split_times()
    assert times.to_dict() == {
        "p": pd.Timestamp("2015-03-01"),
        "q": pd.Timestamp("2016-01-10"),
        "r": pd.Timestamp("2015-05-05"),
    }
    assert split.params["history_rows_after_split_time"] == 2  # p's 2015-06-01, r's same day
    # Training stops at the cut-off: nothing dated on or after it, nothing undated.
    train = split.train.interactions.frame
    assert (train["timestamp"] < split.cutoff).all()
    assert split.params["train_rows_after_cutoff"] == 3
    pairs = zip(train["user"], train["item"], strict=True)
    stamps = dict(zip(pairs, train["timestamp"], strict=True))
    for task in tasks.values():
        for item in task.history:
            assert stamps[(task.user, item)] < times[task.user]


def test_new_games_split_needs_timestamps_unless_told_otherwise():
    frame = _spanning().interactions.frame.drop(columns="timestamp")
    data = Dataset(Interactions(frame), None, _spanning().items)
    with pytest.raises(ValueError, match="allow_untimed=True"):
        new_games_split(data)
    split = new_games_split(data, allow_untimed=True)
    assert split.summary()["timed"] is False
    assert {t.user: t.history for t in split.tasks()}["p"] == (0, 1, 4, 2)


def test_new_games_text_statistics_are_fit_on_games_known_at_the_cut_off():
    from dayzero.recommend.baselines.content_knn import ContentKNN

    data = _spanning()
    data.items.frame["title"] = [
        f"Game {w}" for w in ("alpha", "beta", "gamma", "delta", "eps")
    ] + ["Game beta zyzzyva"]
    split = new_games_split(data, fraction=0.15)
    model = ContentKNN(template=Template(["title"]).to_dict()).fit(split.train)
    assert "beta" in model.vocabulary_
    assert "zyzzyva" not in model.vocabulary_  # only in the held-out game's text
    vocabulary, idf = list(model.vocabulary_), model.idf_.copy()
    split.fold_in(model)  # new games through the fitted statistics, nothing refit
    assert model.vocabulary_ == vocabulary
    np.testing.assert_array_equal(model.idf_, idf)
    assert model.similar_items(5, k=1)[0] == [1]  # shares "beta" with game 1


def _timeline(seed: int = 0, n_users: int = 80, n_games: int = 20) -> Dataset:
    """Players acting on games after their release (2010-2015), over six years."""
    rng = np.random.default_rng(seed)
    games = _games(n_games)
    release = pd.Series(games.frame["release_date"]).fillna(pd.Timestamp("2010-01-01"))
    rows = []
    for u in range(n_users):
        for item in rng.choice(n_games, size=int(rng.integers(2, 8)), replace=False):
            stamp = release[item] + pd.Timedelta(days=int(rng.integers(1, 400)))
            rows.append((f"u{u}", int(item), 1.0, stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    return Dataset(Interactions(frame), None, games)


def test_validation_splits_are_built_from_training_data_only():
    data = _timeline()
    games = new_games_split(data, fraction=0.2)
    inner = games.validation_split()
    assert inner.cutoff < games.cutoff
    assert set(inner.test.frame["item"]) <= set(games.old_games)
    assert not set(inner.new_items.ids) & set(games.new_items.ids)
    assert set(inner.train.items.ids) | set(inner.new_items.ids) == set(games.train.items.ids)
    train = set(_key(games.train.interactions.frame))
    assert set(_key(pd.concat([inner.train.interactions.frame, inner.test.frame]))) <= train
    assert len(inner.tasks()) > 0
    players = new_players_split(data, seed=0)
    slice_ = players.validation_split()
    assert set(slice_.players) <= set(players.train.interactions.frame["user"])
    assert not set(slice_.players) & set(players.players)
    with pytest.raises(ValueError, match="nothing to train on"):
        new_games_split(_dataset(), fraction=0.2).validation_split()


def test_new_games_split_rejects_bad_input():
    data = _dataset()
    with pytest.raises(ValueError, match="fraction"):
        new_games_split(data, fraction=1.5)
    no_dates = Dataset(data.interactions, None, Entities(data.items.frame[["title"]]))
    with pytest.raises(ValueError, match="release_date"):
        new_games_split(no_dates)


# --- new players ----------------------------------------------------------------------------------


def test_new_players_are_held_out_entirely_and_nothing_is_lost():
    data = _dataset()
    split = new_players_split(data, fraction=0.2, min_interactions=2, seed=3)
    train, test = split.train.interactions.frame, split.test.frame
    assert set(train["user"]).isdisjoint(split.players)
    assert set(test["user"]) == set(split.players)
    assert _key(pd.concat([train, test])) == _key(data.interactions.frame)
    counts = data.interactions.frame.groupby("user").size()
    assert (counts[split.players] >= 2).all()
    assert len(split.players) == round(0.2 * (counts >= 2).sum())


def test_new_players_split_is_seeded():
    data = _dataset()
    same = new_players_split(data, seed=1).players == new_players_split(data, seed=1).players
    other = new_players_split(data, seed=1).players != new_players_split(data, seed=2).players
    assert same and other


@pytest.mark.parametrize("k", [1, 3, 5])
def test_support_is_the_first_k_in_time_order_and_before_the_query(k):
    data = _dataset()
    split = new_players_split(data, seed=0)
    support, query = split.support_query(k)
    ordered = split.test.frame.iloc[time_order(split.test.frame)]
    rank = {
        (u, i): n for n, (u, i) in enumerate(zip(ordered["user"], ordered["item"], strict=True))
    }
    s, q = support.frame, query.frame
    for user, group in s.groupby("user"):
        assert len(group) == k
        query_rows = q[q["user"] == user]
        assert len(query_rows) >= 1
        latest_support = max(rank[(user, i)] for i in group["item"])
        earliest_query = min(rank[(user, i)] for i in query_rows["item"])
        assert latest_support < earliest_query
        # Strict time order wherever both dates are known and differ.
        stamps_s = group["timestamp"].dropna()
        stamps_q = query_rows["timestamp"]
        if len(stamps_s) and stamps_q.notna().any():
            assert stamps_s.max() <= stamps_q.dropna().min()
        if stamps_s.size < len(group):  # an undated support row: the whole query is undated
            assert stamps_q.isna().all()
    # Players with <= k rows are skipped, and counted.
    tasks = split.tasks(k)
    sizes = split.test.frame.groupby("user").size()
    assert len(tasks) == int((sizes > k).sum())
    assert split.params["skipped"][k] == int((sizes <= k).sum())
    assert {t.user for t in tasks} == set(s["user"])
    for task in tasks:
        assert len(task.history) == k
        assert set(task.history) == set(s.loc[s["user"] == task.user, "item"])
        assert task.relevant == set(q.loc[q["user"] == task.user, "item"])


def test_new_players_split_rejects_bad_input():
    data = _dataset()
    with pytest.raises(ValueError, match="min_interactions"):
        new_players_split(data, min_interactions=1)
    with pytest.raises(ValueError, match="fraction"):
        new_players_split(data, fraction=0.0)
    with pytest.raises(ValueError, match="k must be"):
        new_players_split(data).support_query(0)


def test_catalogue_and_history_helpers():
    data = _dataset(n_games=25)
    items = catalogue(data)
    assert len(items) == len(set(items)) == 25
    events = history_interactions("p", [3, 1])
    assert events.frame[["user", "item", "value"]].values.tolist() == [["p", 3, 1.0], ["p", 1, 1.0]]
    assert len(history_interactions("p", [])) == 0


def test_steam_200k_implicit_maps_names_to_app_ids_once_per_pair():
    from dayzero.evaluate.protocols.steam import steam_200k_implicit

    names = pd.DataFrame({"name": ["Game 1", "GAME 2!", "Nope"]}, index=pd.Index([7, 8, 9]))
    inter = Interactions.from_records([(1, 7, 3.0), (1, 7, 1.0), (1, 8, 2.0), (2, 9, 5.0)])
    s200 = Dataset(inter, None, Entities(names, {"name": "text"}))
    out = steam_200k_implicit(s200, _games(5))
    frame = out.dataset.interactions.frame
    assert frame[["user", "item", "value"]].values.tolist() == [[1, 1, 1.0], [1, 2, 1.0]]
    assert out.report["join_rate_games"] == pytest.approx(2 / 3)
    assert out.report["join_rate_rows"] == pytest.approx(3 / 4)
    assert set(out.dataset.items.ids) == {1, 2}
