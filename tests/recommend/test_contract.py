"""The base-class contract (params protocol, save/load of folded-in history) and the behaviour every
classical baseline shares, parametrised over the registered baselines."""

from __future__ import annotations

import copy
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Interactions
from dayzero.recommend.contract import (
    REGISTRY,
    NotFittedError,
    Recommender,
    history_from_json,
    history_to_json,
    positive_threshold,
)
from tests.recommend.conftest import BASELINES, build

EXPECTED = {
    "global-mean",
    "item-mean",
    "item-mean-user-bias",
    "popularity",
    "item-knn",
    "mf",
    "content-knn",
    "feature-hybrid",
}


def test_every_baseline_is_registered():
    assert set(BASELINES) >= EXPECTED
    assert set(BASELINES) <= set(REGISTRY)


def _pairs(catalogue):
    users = ["ua0", "ub0", "ua1", "nobody", "nobody", "ub3"]
    items = ["a1", "r1", "unknown-item", "a2", "unknown-item", "a_cold"]
    return users, items


def _history(user: str = "ua0") -> Interactions:
    return Interactions.from_records([(user, "r2", 5.0), (user, "a3", 1.0), (user, "zzz", 3.0)])


@pytest.mark.parametrize("name", BASELINES)
def test_params_are_stored_unchanged(name):
    model = build(name)
    params = model.get_params()
    assert type(model)(**params).get_params() == params
    json.dumps(params)  # save() writes them as JSON
    with pytest.raises(NotFittedError):
        model.predict(["u"], ["i"])


@pytest.mark.parametrize("name", BASELINES)
def test_unknown_users_and_items_get_finite_fallbacks(name, fitted, catalogue):
    model = fitted(name)
    users, items = _pairs(catalogue)
    for history in (None, _history("nobody")):
        scores = model.predict(users, items, history=history)
        assert scores.shape == (len(users),)
        assert np.all(np.isfinite(scores))
    ids, scores = model.recommend("nobody", k=3)
    assert len(ids) == 3 and np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", BASELINES)
def test_save_load_round_trip_gives_identical_predictions(name, fitted, catalogue, tmp_path):
    model = fitted(name)
    users, items = _pairs(catalogue)
    folder = model.save(tmp_path / name)
    files = {p.name for p in folder.iterdir()}
    assert files <= {"dayzero.json", "weights.safetensors", "card.json", "card.html"}
    assert {"card.json", "card.html"} <= files
    loaded = Recommender.load(folder)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    for history in (None, _history("ua0"), _history("nobody")):
        np.testing.assert_array_equal(
            loaded.predict(users, items, history=history), model.predict(users, items, history)
        )
    a, sa = model.recommend("ub1", k=5, history=_history("ub1"))
    b, sb = loaded.recommend("ub1", k=5, history=_history("ub1"))
    assert a == b
    np.testing.assert_array_equal(sa, sb)


@pytest.mark.parametrize("name", BASELINES)
def test_recommend_filters_seen_and_sorts(name, fitted, catalogue):
    model = fitted(name)
    history = _history("ua0")
    ids, scores = model.recommend("ua0", k=50, history=history)
    seen = model.seen_["ua0"] | {"r2", "a3", "zzz"}
    assert not set(ids) & seen
    assert set(ids) == set(model.item_map_.ids) - seen
    assert np.all(np.diff(scores) <= 0)
    ids_all, _ = model.recommend("ua0", k=50, history=history, filter_seen=False)
    assert set(model.seen_["ua0"]) <= set(ids_all)
    some, some_scores = model.recommend("ua0", k=2, items=["a1", "r1", "a_cold"], filter_seen=False)
    assert len(some) == 2 and some_scores[0] >= some_scores[1]


@pytest.mark.parametrize("name", BASELINES)
def test_history_is_used_for_one_call_only(name, fitted, catalogue):
    model = fitted(name)
    users, items = _pairs(catalogue)
    before = model.predict(users, items)
    seen_before = {u: set(v) for u, v in model.seen_.items()}
    for user in ("ua0", "nobody"):
        model.predict(users, items, history=_history(user))
        model.recommend(user, k=3, history=_history(user))
    np.testing.assert_array_equal(model.predict(users, items), before)
    assert "nobody" not in model.user_map_ and "zzz" not in model.item_map_
    assert model.seen_ == seen_before


@pytest.mark.parametrize("name", BASELINES)
def test_history_of_other_users_is_ignored(name, fitted, catalogue):
    model = fitted(name)
    alone = model.predict(["nobody", "ua0"], ["a1", "r1"])
    others = model.predict(["nobody", "ua0"], ["a1", "r1"], history=_history("someone-else"))
    np.testing.assert_array_equal(alone, others)


@pytest.mark.parametrize("name", BASELINES)
def test_partial_fit_makes_unknown_entities_known(name, catalogue):
    model = build(name).fit(catalogue.dataset)
    new_user = Interactions.from_records([("newbie", "a1", 5.0), ("newbie", "r1", 1.0)])
    model.partial_fit_users(new_user)
    assert "newbie" in model.user_map_ and model.seen_["newbie"] == {"a1", "r1"}
    new_item_rows = [
        ("ua0", "brand-new", 5.0),
        ("ua1", "brand-new", 4.0),
        ("ub0", "brand-new", 1.0),
    ]
    entities = catalogue.dataset.items.subset(["a0"])
    entities.frame.index = ["brand-new"]
    model.partial_fit_items(entities, Interactions.from_records(new_item_rows))
    assert "brand-new" in model.item_map_
    scores = model.predict(["newbie", "ua0", "nobody"], ["brand-new", "brand-new", "a1"])
    assert np.all(np.isfinite(scores))
    ids, _ = model.recommend("newbie", k=100)
    assert "brand-new" in ids and "a1" not in ids


@pytest.mark.parametrize("name", BASELINES)
def test_fit_rejects_empty_interactions(name, catalogue):
    empty = Dataset(
        Interactions.empty(), users=catalogue.dataset.users, items=catalogue.dataset.items
    )
    with pytest.raises(ValueError, match="no interactions"):
        build(name).fit(empty)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_sklearn_clone_and_params_protocol(name):
    from sklearn.base import clone

    model = build(name)
    params = model.get_params(deep=False)
    deep = model.get_params(deep=True)
    assert deep == model.get_params() and params.items() <= deep.items()
    for config in model.config_params:  # config fields are nested params, as in sklearn
        fields = {k for k in deep if k.startswith(f"{config}__")}
        assert fields and all(deep[k] == getattr(model._config(config), k.split("__")[1])
                              for k in fields)  # fmt: skip
    assert set(deep) - set(params) == {
        k for k in deep if k.split("__")[0] in model.config_params and "__" in k
    }
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params(deep=False) == params
    first = next(iter(params), None)
    if first is not None:
        assert model.set_params(**{first: params[first]}) is model
    with pytest.raises(ValueError, match="no_such_param"):
        model.set_params(no_such_param=1)


@pytest.mark.parametrize("name", BASELINES)
def test_clone_of_a_fitted_model_is_unfitted(name, fitted):
    from sklearn.base import clone

    model = fitted(name)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "item_map_")
    with pytest.raises(NotFittedError):
        copy.predict(["ua0"], ["a1"])


TIMESTAMPS = {
    "int-seconds": [1_700_000_000, 1_700_000_100],
    "naive": [pd.Timestamp("2024-03-01 12:00"), pd.Timestamp("2024-03-31 03:30")],
    "named-zone": [
        pd.Timestamp("2024-03-01 12:00", tz="Europe/Berlin"),
        pd.Timestamp("2024-03-31 03:30", tz="Europe/Berlin"),  # after the DST switch
    ],
    "fixed-offset": [
        dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2024, 3, 2, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
    "python-naive": [dt.datetime(2024, 3, 1, 12), dt.datetime(2024, 3, 2, 12)],
    "far-past": [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)],  # beyond int64 nanoseconds
}


@pytest.mark.parametrize("kind", TIMESTAMPS)
def test_history_json_round_trip_keeps_timestamps(kind):
    stamps = TIMESTAMPS[kind]
    rows = [("u1", "i1", 5.0, stamps[0]), (np.int64(7), "i2", 1.0, stamps[1])]
    history = Interactions.from_records(rows)
    data = json.loads(json.dumps(history_to_json(history)))
    back = history_from_json(data)
    pd.testing.assert_series_equal(back.frame["user"], history.frame["user"], check_dtype=False)
    assert back.frame["value"].tolist() == [5.0, 1.0]
    assert [pd.Timestamp(v) for v in back.frame["timestamp"]] == [pd.Timestamp(v) for v in stamps]


def test_history_json_reads_the_formats_saved_before():
    plain = {"user": ["u"], "item": ["i"], "value": [4.0]}
    assert history_from_json(plain).frame.to_dict(orient="list") == plain
    sequential = {  # SequentialRecommender wrote datetimes as int64 nanoseconds
        "columns": {"user": ["u"], "item": ["i"], "value": [4.0], "timestamp": [10**18]},
        "datetimes": ["timestamp"],
    }
    stamp = history_from_json(sequential).frame["timestamp"].iloc[0]
    assert stamp == pd.Timestamp(10**18, unit="ns")


def test_folded_in_timestamps_in_two_zones_become_utc_and_naive_with_aware_is_refused(fitted):
    model = copy.deepcopy(fitted("item-mean"))
    berlin = pd.Timestamp("2024-03-01 12:00", tz="Europe/Berlin")
    model._remember_interactions(Interactions.from_records([("u", "a1", 5.0, berlin)]))
    utc = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    model._remember_interactions(Interactions.from_records([("u", "a2", 5.0, utc)]))
    stamps = model._extra_history.frame["timestamp"]
    assert str(stamps.dt.tz) == "UTC" and stamps.is_monotonic_increasing
    naive = Interactions.from_records([("u", "a3", 5.0, dt.datetime(2024, 3, 2))])
    with pytest.raises(ValueError, match=r"timestamp.*timezone-naive.*tz_localize"):
        model._remember_interactions(naive)


def test_every_registered_class_is_a_builtin_with_the_right_path():
    from dayzero.recommend.contract import BUILTIN_MODELS

    for name, path in BUILTIN_MODELS.items():
        cls = REGISTRY[name]
        assert f"{cls.__module__}:{cls.__qualname__}" == path and cls.name == name


def test_naming_and_fitting_a_baseline_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dayzero.core.schema import Dataset, Interactions\n"
        "from dayzero.recommend import REGISTRY, make_recommender\n"
        "names = sorted(REGISTRY)\n"
        "data = Dataset(Interactions.from_records([('u', 'i', 4.0), ('v', 'i', 2.0)]))\n"
        "make_recommender('item-mean').fit(data).recommend('u', k=1)\n"
        "assert 'two-tower' in names and 'torch' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_params_take_dataclasses_dicts_and_nested_set_params():
    from sklearn.base import clone

    from dayzero.recommend.two_tower import TowersConfig, TwoTowerRecommender, TwoTowerTraining

    model = TwoTowerRecommender(encoder="my-model", towers={"dim": 8})
    assert model._config("towers") == TowersConfig(dim=8)
    assert model._config("encoder").model == "my-model"
    model.set_params(training__epochs=3, towers__hidden=16, encoder__max_length=32)
    assert model.training == TwoTowerTraining(epochs=3)
    assert model.towers == TowersConfig(dim=8, hidden=16)
    assert (model.encoder.model, model.encoder.max_length) == ("my-model", 32)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(ValueError, match="`towers` has no field 'width'"):
        TwoTowerRecommender(towers={"width": 3})._config("towers")
    with pytest.raises(ValueError, match="`training` has no field 'nope'"):
        model.set_params(training__nope=1)
    other = TwoTowerRecommender()
    assert other.training == TwoTowerTraining()  # the shared default was not changed


def test_exposure_floor_promotes_the_best_fresh_items_into_the_last_slots():
    from dayzero.recommend.contract import exposure_floor

    ranked = ["a", "b", "c", "d", "n1", "e", "n2"]
    scores = np.array([7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    ids, top = exposure_floor(ranked, scores, 4, 2, {"n1", "n2"})
    assert ids == ["a", "b", "n1", "n2"] and top.tolist() == [7.0, 6.0, 3.0, 1.0]
    assert exposure_floor(ranked, scores, 4, 0, {"n1"})[0] == ["a", "b", "c", "d"]
    assert exposure_floor(ranked, scores, 5, 1, {"n1"})[0] == ["a", "b", "c", "d", "n1"]
    # not enough fresh items: as many as there are; a predicate works too
    assert exposure_floor(ranked, scores, 3, 3, lambda i: i == "n2")[0] == ["a", "b", "n2"]
    with pytest.raises(ValueError, match="floor"):
        exposure_floor(ranked, scores, 3, -1, set())


@pytest.mark.parametrize("name", BASELINES)
def test_rank_scores_are_the_predictions_and_an_exposure_floor_needs_fresh_items(
    name, fitted, catalogue
):
    model = fitted(name)
    users, items = ["ua0", "ub0", "nobody"], ["a1", "r1", "a2"]
    np.testing.assert_array_equal(model.rank_scores(users, items), model.predict(users, items))
    ids, _ = model.recommend("ub0", k=3, exposure=1, fresh={"a2"})
    assert "a2" in ids or "a2" in model.seen_items("ub0")
    if type(model).content_only_items is Recommender.content_only_items:
        with pytest.raises(NotImplementedError, match="fresh="):
            model.recommend("ub0", k=3, exposure=1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 1.0, 1.0], None),  # implicit feedback: every interaction
        ([0.0, 1.0, 1.0], 1.0),  # dislike / like
        ([1.0, 2.0, 3.0, 4.0, 5.0, 4.0], 4.0),  # 1-5 stars: rating >= 4
        ([0.5, 1.5, 2.0, 3.5, 4.0, 5.0], 4.0),  # half stars
        (list(range(1, 11)), 8.0),  # 1-10
        ([0.3, 1.7, 12.5, 40.0], None),  # hours played: off any rating grid
        (list(range(1, 40)), None),  # play counts: too many levels for a rating scale
    ],
)
def test_positive_threshold_reads_the_kind_of_feedback(values, expected):
    assert positive_threshold(np.array(values, dtype=float)) == expected


def test_positive_threshold_keeps_a_given_number_and_refuses_other_words():
    assert positive_threshold(np.array([1.0, 5.0]), 3) == 3.0
    assert positive_threshold(np.array([1.0, 5.0]), None) is None
    with pytest.raises(ValueError, match="'auto'"):
        positive_threshold(np.array([1.0]), "top")
