"""Behaviour every classical baseline shares, parametrised over the registered baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BASELINES, build
from dayzero.data.schema import Dataset, Interactions
from dayzero.models.base import REGISTRY, NotFittedError, Recommender

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
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "state.safetensors"]
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
    entities = catalogue.items_entities(["a0"])
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
