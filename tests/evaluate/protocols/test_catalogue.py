from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.datasets.melu import MeluData
from dayzero.evaluate.protocols.catalogue import (
    ALL_ITEMS,
    NEW_BOTH,
    NEW_ITEMS,
    WARM,
    citeulike_items,
    heater_catalogue_split,
    holdout_catalogue_split,
    melu_catalogue_split,
    new_users_setting,
    states_catalogue_split,
    steam_protocols,
    temporal_catalogue_split,
)
from dayzero.evaluate.ranking import catalogue, evaluate_protocol, recommender_scorer
from dayzero.recommend.baselines.content_knn import ContentKNN
from dayzero.recommend.baselines.popularity import Popularity

KS = (0, 1, 3, 5)


def _catalogue(timed: bool = True, n_users: int = 60, n_items: int = 30) -> Dataset:
    """Users of three tastes rate 12 items each (5 = their genre, 1-2 otherwise), one rating per
    day from a start date that grows with the user; items enter the catalogue over time (an
    item is only rated after its first day), so a time cut leaves both users and items new."""
    rng = np.random.default_rng(0)
    genres = [f"genre{i % 3}" for i in range(n_items)]
    words = {"genre0": "space robots", "genre1": "love letters", "genre2": "haunted houses"}
    item_start = {i: i * 4 for i in range(n_items)}
    rows = []
    for u in range(n_users):
        start = u * 2
        available = [i for i in range(n_items) if item_start[i] <= start + 60]
        chosen = rng.choice(available, size=min(12, len(available)), replace=False)
        for day, item in enumerate(sorted(chosen, key=lambda i: item_start[i])):
            stamp = max(start + day, item_start[item])
            value = 5.0 if genres[item] == f"genre{u % 3}" else float(rng.integers(1, 3))
            rows.append((f"u{u}", f"i{item}", value, 1_000_000 + 86_400 * stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    frame = frame.iloc[rng.permutation(len(frame))]  # file order is not time order
    if not timed:
        frame = frame.drop(columns="timestamp")
    items = pd.DataFrame(
        {
            "title": [f"{words[g]} {i}" for i, g in enumerate(genres)],
            "genres": [[g] for g in genres],
        },
        index=[f"i{i}" for i in range(n_items)],
    )
    users = pd.DataFrame({"taste": [f"t{u % 3}" for u in range(n_users)]},
                         index=[f"u{u}" for u in range(n_users)])  # fmt: skip
    return Dataset(
        Interactions(frame),
        Entities(users, {"taste": "categorical"}, kind="user"),
        Entities(items, {"title": "text", "genres": "multi"}),
        name="synthetic",
    )


def _pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user"], frame["item"], strict=True))


def _settings(split, ks=KS):
    return {s.name: s for s in split.ranking_settings(catalogue(split.train), ks)}


# --- leakage ------------------------------------------------------------------------------------


def test_temporal_no_test_interaction_or_new_item_metadata_in_train():
    data = _catalogue()
    split = temporal_catalogue_split(data, quantile=0.6)
    train = split.train.interactions.frame
    cutoff = split.params["cutoff"]
    assert (train["timestamp"] < cutoff).all()
    held = pd.concat([split.warm.frame, split.new_item_rows.frame, split.new_user_rows.frame])
    assert (held["timestamp"] >= cutoff).all()
    assert len(train) + len(held) == len(data.interactions)
    assert not _pairs(train) & _pairs(held)
    # New items: none in the training rows, fields, id map; their fields wait for fold_in.
    new = set(split.new_items)
    assert new and not new & set(train["item"])
    assert not new & set(split.train.items.ids)
    assert not new & set(split.train.item_map.ids)
    assert set(split.item_fields.ids) == new
    assert set(split.new_item_rows.frame["item"]) <= new
    assert not new & set(split.warm.frame["item"])
    # New users: no training row, no profile in train; their profiles wait for fold_in.
    new_users = set(split.new_user_rows.frame["user"])
    assert new_users and not new_users & set(train["user"])
    assert not new_users & set(split.train.users.ids)
    assert not new_users & set(split.train.user_map.ids)
    assert set(split.user_fields.ids) == new_users
    assert set(split.warm.frame["user"]) <= set(train["user"])


def test_text_statistics_are_fit_on_known_items_and_new_items_fold_in():
    data = _catalogue()
    split = temporal_catalogue_split(data, quantile=0.6)
    model = ContentKNN().fit(split.train)
    assert not set(split.new_items) & set(model.item_map_.ids)
    numbers = {title.split()[-1] for title in split.item_fields.frame["title"]}
    assert not numbers & set(model.vocabulary_)  # "space robots 27": 27 is only in a new title
    split.fold_in(model)
    assert set(split.new_items) <= set(model.item_map_.ids)
    assert model.vocabulary_ == ContentKNN().fit(split.train).vocabulary_  # nothing refit
    # A folded-in item is scored from its text: it shares words with its genre.
    new_item = split.new_items[0]
    ids, sims = model.similar_items(new_item, k=3)
    genre = data.items.record(new_item)["genres"]
    assert all(data.items.record(i)["genres"] == genre for i in ids) and sims[0] > 0


def test_histories_are_cut_in_time():
    data = _catalogue()
    split = temporal_catalogue_split(data, quantile=0.6)
    stamps = data.interactions.frame.set_index(["user", "item"])["timestamp"]
    for setting in split.ranking_settings(catalogue(split.train), KS):
        assert setting.tasks
        for task in setting.tasks:
            if not task.history:
                continue
            latest = max(stamps[(task.user, i)] for i in task.history)
            assert latest <= min(stamps[(task.user, i)] for i in task.relevant), setting.name
            assert list(task.history) == sorted(task.history, key=lambda i: stamps[(task.user, i)])


def test_validation_is_built_from_training_data_only():
    data = _catalogue()
    for split in (
        temporal_catalogue_split(data, quantile=0.6),
        holdout_catalogue_split(_catalogue(timed=False), seed=3),
    ):
        validation = split.validation_split()
        train = split.train.interactions.frame
        parts = [
            validation.train.interactions.frame,
            validation.warm.frame,
            validation.new_item_rows.frame,
            validation.new_user_rows.frame,
        ]
        assert set().union(*map(_pairs, parts)) == _pairs(train)
        assert set(validation.catalogue) <= set(train["item"])
        assert not set(validation.catalogue) & set(split.new_items)
        assert set(validation.item_fields.ids) <= set(split.train.items.ids)
        assert set(validation.train.items.ids) <= set(split.train.items.ids)
        assert set(validation.user_fields.ids) <= set(split.train.users.ids)
        assert validation.params["builder"] == split.params["builder"]
        assert _settings(validation)  # the same protocol, with tasks
    temporal = temporal_catalogue_split(data, quantile=0.6)
    inner = temporal.validation_split()
    assert inner.params["cutoff"] < temporal.params["cutoff"]
    assert inner.params["quantile"] == temporal.params["quantile"]


# --- segments and k-shot semantics ----------------------------------------------------------------


def test_k_shot_reveals_the_first_k_and_asks_for_the_rest():
    data = _catalogue()
    split = temporal_catalogue_split(data, quantile=0.6)
    settings = _settings(split)
    frame = data.interactions.frame.sort_values("timestamp", kind="stable")
    sequences = {u: g for u, g in frame.groupby("user", sort=False)}
    new = set(split.new_items)
    users = None
    for k in KS:
        tasks = settings[new_users_setting(k)].tasks
        if users is None:
            users = [t.user for t in tasks]
        assert [t.user for t in tasks] == users  # the same users at every k
        for task in tasks:
            rows = sequences[task.user]
            assert task.history == tuple(rows["item"].iloc[:k])
            assert task.values == tuple(rows["value"].iloc[:k])
            assert not task.known_user
            rest = rows.iloc[k:]
            wanted = rest.loc[(rest["value"] >= 4) & ~rest["item"].isin(new), "item"]
            assert task.relevant == frozenset(wanted)
    # Everyone kept has something left to find at the largest k.
    assert all(settings[new_users_setting(max(KS))].tasks)
    assert settings[new_users_setting(0)].tasks[0].history == ()
    both = settings[NEW_BOTH]
    for task in both.tasks:
        rows = sequences[task.user]
        assert len(task.history) == split.params["both_k"]
        rest = rows.iloc[split.params["both_k"] :]
        assert task.relevant == frozenset(
            rest.loc[(rest["value"] >= 4) & rest["item"].isin(new), "item"]
        )


def test_untimed_reveal_order_is_seeded_and_histories_are_prefixes():
    data = _catalogue(timed=False)
    a = holdout_catalogue_split(data, seed=1)
    b = holdout_catalogue_split(data, seed=1)
    c = holdout_catalogue_split(data, seed=2)
    assert a.params["order"] == "seeded"
    first = a.new_user_rows.frame
    assert first.equals(b.new_user_rows.frame)
    assert not first.reset_index(drop=True).equals(c.new_user_rows.frame.reset_index(drop=True))
    settings = _settings(a)
    by_user = {k: {t.user: t for t in settings[new_users_setting(k)].tasks} for k in KS}
    for user, task in by_user[max(KS)].items():
        for k in KS:
            assert by_user[k][user].history == task.history[:k]
    # Within a user, the reveal order is not file order.
    original = data.interactions.frame
    user = first["user"].iloc[0]
    assert first.loc[first["user"] == user, "item"].tolist() != (
        original.loc[original["user"] == user, "item"].tolist()
    )


def test_warm_and_new_item_tasks_use_the_training_history():
    data = _catalogue()
    split = temporal_catalogue_split(data, quantile=0.6)
    settings = _settings(split)
    train = split.train.interactions.frame.sort_values("timestamp", kind="stable")
    history = {u: tuple(g["item"]) for u, g in train.groupby("user", sort=False)}
    warm = split.warm.frame
    for task in settings[WARM].tasks:
        assert task.known_user and task.history == history[task.user]
        rows = warm[warm["user"] == task.user]
        assert task.relevant == frozenset(rows.loc[rows["value"] >= 4, "item"])
    rows = split.new_item_rows.frame
    for task in settings[NEW_ITEMS].tasks:
        assert task.known_user and task.relevant <= set(split.new_items)
    assert set(settings[NEW_ITEMS].candidates) == {NEW_ITEMS, ALL_ITEMS}
    assert settings[NEW_ITEMS].candidates[NEW_ITEMS] == split.new_items
    every = settings[WARM].candidates[ALL_ITEMS]
    assert set(every) == set(data.interactions.frame["item"])
    assert set(settings[NEW_ITEMS].candidates[ALL_ITEMS]) == set(every)
    assert {t.user for t in settings[NEW_ITEMS].tasks} == set(rows.loc[rows["value"] >= 4, "user"])


def test_implicit_data_makes_every_held_out_row_relevant():
    data = _catalogue()
    low = data.interactions.frame.assign(value=1.0)
    implicit = Dataset(Interactions(low), data.users, data.items)
    split = temporal_catalogue_split(implicit, quantile=0.6, threshold=None)
    tasks = _settings(split)[WARM].tasks
    warm = split.warm.frame
    assert sum(len(t.relevant) for t in tasks) == len(warm)


def test_evaluate_protocol_runs_every_segment_and_an_oracle_finds_everything():
    data = _catalogue()
    split = temporal_catalogue_split(data, quantile=0.6)
    model = split.fold_in(Popularity().fit(split.train))
    rows = evaluate_protocol(
        recommender_scorer(model), split, split.catalogue, k=(5, 10), ks=KS, n_resamples=50
    )
    names = [r["setting"] for r in rows]
    assert names[0] == WARM and names[1] == new_users_setting(0)
    assert f"{NEW_ITEMS} among {NEW_ITEMS}" in names and f"{NEW_BOTH} among {ALL_ITEMS}" in names
    assert set(rows[0]["metrics"]) == {"recall@5", "ndcg@5", "recall@10", "ndcg@10"}
    # Popularity knows no new item: they rank below every known one (30 items in all).
    among_all = next(r for r in rows if r["setting"] == f"{NEW_ITEMS} among {ALL_ITEMS}")
    assert among_all["metrics"]["recall@5"] == 0.0

    class Oracle:
        def score_task(self, task, candidates):
            return np.array([1.0 if c in task.relevant else 0.0 for c in candidates])

    perfect = evaluate_protocol(Oracle(), split, split.catalogue, k=20, ks=KS, n_resamples=20)
    assert all(r["metrics"]["ndcg@20"] == 1.0 for r in perfect)


def test_fold_in_gives_new_users_profiles_and_new_items_fields():
    split = temporal_catalogue_split(_catalogue(), quantile=0.6)

    class Recorder:
        def partial_fit_items(self, items):
            self.items = items

        def partial_fit_users(self, interactions, users=None):
            self.users, self.interactions = users, interactions

    model = split.fold_in(Recorder())
    assert set(model.items.ids) == set(split.new_items)
    assert set(model.users.ids) == set(split.new_user_rows.frame["user"])
    assert len(model.interactions) == 0

    class Neither:
        def partial_fit_items(self, items):
            raise NotImplementedError

        def partial_fit_users(self, interactions, users=None):
            raise NotImplementedError

    split.fold_in(Neither())  # keeps its cold fallback


# --- builders -------------------------------------------------------------------------------------


def test_holdout_fractions_and_segments():
    data = _catalogue(timed=False)
    split = holdout_catalogue_split(data, new_users=0.2, new_items=0.2, warm_test=0.2, seed=0)
    train = split.train.interactions.frame
    assert split.summary()["new_users"] >= 12  # 20 % of 60, plus any left without a training row
    assert set(split.new_items) == set(data.interactions.frame["item"]) - set(train["item"])
    assert len(split.warm) > 0 and set(split.warm.frame["user"]) <= set(train["user"])
    assert split.params["validation"] == {
        "builder": "holdout", "new_users": 0.2, "new_items": 0.2, "warm_test": 0.2
    }  # fmt: skip
    with pytest.raises(ValueError, match="new_users must be a fraction"):
        holdout_catalogue_split(data, new_users=1.0)
    with pytest.raises(ValueError, match="threshold"):
        holdout_catalogue_split(data, threshold="4")


def test_temporal_needs_timestamps_and_a_cut_inside_them():
    with pytest.raises(ValueError, match="timestamp"):
        temporal_catalogue_split(_catalogue(timed=False))
    data = _catalogue()
    with pytest.raises(ValueError, match="test part empty"):
        temporal_catalogue_split(data, cutoff=10**12)
    with pytest.raises(ValueError, match="quantile"):
        temporal_catalogue_split(data, quantile=1.5)
    with pytest.raises(ValueError, match="k must be an integer"):
        temporal_catalogue_split(data).ranking_settings([], ks=(-1,))


def test_melu_states_map_to_segments():
    data = _catalogue(timed=False)
    frame = data.interactions.frame
    cold_users = {f"u{u}" for u in range(0, 60, 5)}
    cold_items = {f"i{i}" for i in range(0, 30, 6)}
    user_new = frame["user"].isin(cold_users)
    item_new = frame["item"].isin(cold_items)
    rng = np.random.default_rng(0)
    warm_draw = ~user_new & ~item_new & (rng.random(len(frame)) < 0.1)
    part = lambda mask: Interactions(frame.loc[mask])  # noqa: E731
    states = {
        "meta_training": part(~user_new & ~item_new & ~warm_draw),
        "warm_up": part(warm_draw),
        "user_cold_testing": part(user_new & ~item_new),
        "item_cold_testing": part(~user_new & item_new),
        "user_and_item_cold_testing": part(user_new & item_new),
    }
    melu = MeluData(states, data.users, data.items, Path("unused"))
    split = melu_catalogue_split(melu, seed=0)
    assert _pairs(split.warm.frame) == _pairs(states["warm_up"].frame)
    assert _pairs(split.new_item_rows.frame) == _pairs(states["item_cold_testing"].frame)
    new_user_pairs = _pairs(states["user_cold_testing"].frame) | _pairs(
        states["user_and_item_cold_testing"].frame
    )
    assert _pairs(split.new_user_rows.frame) == new_user_pairs
    assert set(split.new_items) == cold_items
    assert split.params["order"] == "seeded" and split.params["builder"] == "melu-states"
    fractions = split.params["validation"]
    assert fractions["new_users"] == pytest.approx(len(cold_users) / 60, abs=1e-4)
    assert fractions["new_items"] == pytest.approx(len(cold_items) / 30, abs=1e-4)
    validation = split.validation_split()
    assert set(validation.catalogue) <= set(states["meta_training"].frame["item"])


def test_heater_split_ranks_cold_articles_with_tags_or_citations_only():
    rows = [(u, i) for u in range(8) for i in range(6) if (u + i) % 2 == 0]
    rows += [(u, 6 + u % 2) for u in range(8)]  # articles 6 and 7 are cold
    frame = pd.DataFrame(rows, columns=["user", "item"]).assign(value=1.0)
    links = {0: [6], 1: [2], 2: [1], 6: [0, 7], 7: [6]}
    items = pd.DataFrame(
        {
            "tags": [[f"tag{i % 2}"] for i in range(8)],
            "text": [f"tag{i % 2}" for i in range(8)],
            "citations": [links.get(i, []) for i in range(8)],
        },
        index=pd.Index(range(8), name="item"),
    )
    data = Dataset(
        Interactions(frame), None,
        Entities(items, {"tags": "multi", "text": "text", "citations": "multi"}),
    )  # fmt: skip
    cold = frame["item"] >= 6
    heater = SimpleNamespace(
        train=Interactions(frame.loc[~cold]),
        test=Interactions(frame.loc[cold]),
        test_items=[6, 7],
    )
    known, every = citeulike_items(data, "citations", heater.test_items)
    assert known.record(0)["citations"] == ["c0"]  # its link to the new article 6 waits
    assert every.record(6)["citations"] == ["c6", "c0", "c7"]
    assert known.record(1)["citations"] == ["c1", "c2"]
    for side in ("tags", "citations"):
        split = heater_catalogue_split(data, heater, side=side, seed=0)
        assert list(split.train.items.fields) == [side]
        assert set(split.train.items.ids) == set(range(6))
        assert split.threshold is None and split.new_items == [6, 7]
        settings = _settings(split)
        assert list(settings) == [NEW_ITEMS]
        assert {t.user for t in settings[NEW_ITEMS].tasks} == set(range(8))
    with pytest.raises(ValueError, match="side must be one of"):
        citeulike_items(data, "abstracts")


def test_states_split_refuses_a_new_item_with_training_rows():
    data = _catalogue(timed=False)
    frame = data.interactions.frame
    with pytest.raises(AssertionError, match="new item has a training interaction"):
        states_catalogue_split(
            Interactions(frame.iloc[:100]), [Interactions(frame.iloc[100:])],
            [frame["item"].iloc[0]], None, data.items,
        )  # fmt: skip


def test_steam_protocols_plug_into_the_same_evaluation():
    rng = np.random.default_rng(0)
    release = pd.Series(pd.date_range("2012-01-01", periods=12, freq="90D"))
    rows = []
    for u in range(40):
        for item in rng.choice(12, size=4, replace=False):
            stamp = release[item] + pd.Timedelta(days=int(rng.integers(1, 90)))
            rows.append((f"u{u}", int(item), 1.0, stamp))
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    games = pd.DataFrame(
        {"title": [f"G{i}" for i in range(12)], "release_date": release.to_numpy()},
        index=range(12),
    )
    data = Dataset(Interactions(frame), None, Entities(games, {"title": "text"}))
    protocols = steam_protocols(data, seed=0)
    assert list(protocols) == ["new games", "new players"]
    for split in protocols.values():
        model = split.fold_in(Popularity().fit(split.train))
        rows = evaluate_protocol(
            recommender_scorer(model), split, catalogue(data), k=(10, 20), ks=(1, 3),
            n_resamples=20,
        )  # fmt: skip
        assert rows and all("recall@10" in r["metrics"] for r in rows)
        assert split.validation_split().train.interactions.frame.shape[0] > 0
