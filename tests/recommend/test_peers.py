"""The peers (implicit ALS / BPR, LightFM) behind dayzero's contract: the known answer on the
two-group catalogue, fold-in of new users and items, save/load, seeds, and the missing extra.

Tests that fit a peer skip when its library (the ``bench`` extra, ``make bench-deps``) is absent.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Entities, Interactions
from dayzero.recommend.contract import REGISTRY, Recommender, make_recommender
from dayzero.recommend.peers import ImplicitALS, ImplicitBPR, LightFMRecommender

LIBRARIES = {"implicit-als": "implicit", "implicit-bpr": "implicit", "lightfm": "lightfm"}
# Ratings >= 4 are the relevant ones: the catalogue rates every user's disliked group 1-2.
SETTINGS = {
    "implicit-als": {"factors": 4, "iterations": 10, "regularization": 0.1, "threshold": 4.0},
    "implicit-bpr": {
        "factors": 4,
        "iterations": 200,
        "learning_rate": 0.05,
        "threshold": 4.0,
    },
    "lightfm": {"factors": 4, "epochs": 30, "threshold": 4.0},
}
PEERS = sorted(SETTINGS)


def _group(catalogue, action: bool) -> set[str]:
    """A group's items, its cold item included (LightFM places it by its fields)."""
    if action:
        return {*catalogue.action, catalogue.cold_action}
    return {*catalogue.romance, catalogue.cold_romance}


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _skip_without(name: str) -> None:
    library = LIBRARIES[name]
    if not _installed(library):
        pytest.skip(f"{name} needs `{library}`, in the bench extra: run `make bench-deps`")


@pytest.fixture(scope="module")
def peer(catalogue):
    """name -> the peer fitted on the catalogue with SETTINGS (once per module; do not mutate)."""
    cache: dict[str, Recommender] = {}

    def get(name: str) -> Recommender:
        _skip_without(name)
        if name not in cache:
            cache[name] = make_recommender(name, **SETTINGS[name]).fit(catalogue.dataset)
        return cache[name]

    return get


def test_the_peers_are_registered_lazily():
    code = (
        "import sys; from dayzero.recommend.contract import REGISTRY; "
        "import dayzero.recommend.peers; "
        "assert {'implicit-als', 'implicit-bpr', 'lightfm'} <= set(REGISTRY); "
        "assert not {'implicit', 'lightfm'} & set(sys.modules), 'imported a peer library'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert REGISTRY["implicit-als"] is ImplicitALS and REGISTRY["lightfm"] is LightFMRecommender
    assert REGISTRY["implicit-bpr"] is ImplicitBPR


@pytest.mark.parametrize(
    ("name", "modules"),
    [
        ("implicit-als", ["implicit", "implicit.cpu", "implicit.cpu.als"]),
        ("implicit-bpr", ["implicit", "implicit.cpu", "implicit.cpu.bpr"]),
        ("lightfm", ["lightfm"]),
    ],
)
def test_without_the_library_fit_names_the_extra(name, modules, catalogue, monkeypatch):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    model = make_recommender(name)
    with pytest.raises(ImportError, match=r"`bench` extra; run `make bench-deps`"):
        model.fit(catalogue.dataset)
    assert not hasattr(model, "item_map_")


@pytest.mark.parametrize("name", PEERS)
def test_known_users_get_their_groups_items(name, catalogue, peer):
    model = peer(name)
    groups = (
        (catalogue.users_a, _group(catalogue, True)),
        (catalogue.users_b, _group(catalogue, False)),
    )
    for users, liked in groups:
        for user in users:
            top, _ = model.recommend(user, k=4, filter_seen=False)
            assert set(top) <= set(liked), f"{name}: {user} got {top}"


@pytest.mark.parametrize("name", PEERS)
def test_a_new_user_is_folded_in_from_a_few_ratings(name, catalogue, peer):
    model = peer(name)
    for liked, disliked in ((catalogue.romance, catalogue.action), (catalogue.action, [])):
        rows = [("newcomer", liked[0], 5.0), ("newcomer", liked[1], 4.0)]
        rows += [("newcomer", item, 1.0) for item in disliked[:2]]
        history = Interactions.from_records(rows)
        top, scores = model.recommend("newcomer", k=4, history=history)
        expected = _group(catalogue, liked == catalogue.action) - set(liked[:2])
        assert set(top) <= expected, f"{name}: the new user got {top}"
        assert np.all(np.isfinite(scores))
    assert "newcomer" not in model.user_map_, "history must not be stored"
    model = make_recommender(name, **SETTINGS[name]).fit(catalogue.dataset)
    model.partial_fit_users(Interactions.from_records([("late", catalogue.romance[0], 5.0)]))
    top, _ = model.recommend("late", k=3)
    assert set(top) <= _group(catalogue, False), f"{name}: the folded-in user got {top}"


def test_implicit_als_folds_in_with_implicits_recalculate_user(catalogue, peer):
    model = peer("implicit-als")
    history = Interactions.from_records(
        [("new", "r0", 5.0), ("new", "r1", 4.0), ("new", "a0", 5.0)]
    )
    ours = model.predict(["new"] * len(model.item_map_), model.item_map_.ids, history)
    # implicit's own fold-in on the same confidences (1 + alpha * value), its own top-k
    cols = model.item_map_.to_internal(["a0", "r0", "r1"])
    row = __import__("scipy.sparse").sparse.csr_matrix(
        (1.0 + np.array([5.0, 5.0, 4.0], dtype=np.float32), (np.zeros(3), cols)),
        shape=(1, len(model.item_map_)),
    )
    ids, scores = model._solver.recommend(
        0, row, N=len(model.item_map_), recalculate_user=True, filter_already_liked_items=False
    )
    np.testing.assert_allclose(ours[ids], scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["implicit-als", "implicit-bpr"])
def test_implicit_cold_fallbacks(name, catalogue, peer):
    model = peer(name)
    # a user without any relevant item: the mean trained user, which likes both groups' items
    stranger = model.predict(["nobody"] * 2, [catalogue.action[0], catalogue.romance[0]])
    np.testing.assert_allclose(model.user_vector("nobody"), model.cold_user_)
    assert np.all(np.isfinite(stranger))
    # items implicit cannot place (fields only, or never seen) score 0
    cold = model.predict(["ua0", "ub0", "ua0"], [catalogue.cold_action, "a_cold", "zzz"])
    assert np.array_equal(cold, np.zeros(3))


def test_lightfm_scores_cold_items_and_users_from_their_features(catalogue, peer):
    model = peer("lightfm")
    cold = [catalogue.cold_action, catalogue.cold_romance]
    for users, best in ((catalogue.users_a, cold[0]), (catalogue.users_b, cold[1])):
        for user in users:
            top, _ = model.recommend(user, k=1, items=cold)
            assert top == [best], f"{user} prefers {top} among the cold items"
    fresh = make_recommender("lightfm", **SETTINGS["lightfm"]).fit(catalogue.dataset)
    users = pd.DataFrame({"id": ["newA", "newB"], "segment": ["A", "B"]})
    fresh.partial_fit_users(
        Interactions.empty(), Entities.from_frame(users, "id", {"segment": "categorical"}, "user")
    )
    for user, action in (("newA", True), ("newB", False)):
        top, _ = fresh.recommend(user, k=4)
        assert set(top) <= _group(catalogue, action), f"{user} (features only) got {top}"
    fresh.partial_fit_items(catalogue.new_items(["a_late"]))
    top, _ = fresh.recommend("ua1", k=1, items=["a_late", catalogue.cold_romance])
    assert top == ["a_late"]


def test_lightfm_without_history_features_ignores_history(catalogue):
    _skip_without("lightfm")
    model = make_recommender("lightfm", **SETTINGS["lightfm"], history_features=False)
    model.fit(catalogue.dataset)
    history = Interactions.from_records([("ua0", "r0", 5.0), ("ua0", "r1", 5.0)])
    items = [*catalogue.action, *catalogue.romance]
    plain = model.predict(["ua0"] * len(items), items)
    assert np.array_equal(model.predict(["ua0"] * len(items), items, history), plain)


@pytest.mark.parametrize("name", PEERS)
def test_save_load_gives_identical_predictions(name, catalogue, peer, tmp_path, monkeypatch):
    model = peer(name)
    users = ["ua0", "ub1", "nobody", "ua3", "nobody"]
    items = ["a1", "r1", "a2", catalogue.cold_action, "zzz"]
    history = Interactions.from_records([("nobody", "r0", 5.0), ("nobody", "r2", 4.0)])
    loaded = Recommender.load(model.save(tmp_path / name))
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert not [p for p in (tmp_path / name).rglob("*") if p.suffix in {".pkl", ".pickle"}]
    for given in (None, history):
        assert np.array_equal(
            loaded.predict(users, items, given), model.predict(users, items, given)
        )
    if name == "lightfm":  # scoring reads the saved embeddings: no LightFM needed after load
        monkeypatch.setitem(sys.modules, "lightfm", None)
        again = Recommender.load(tmp_path / name)
        assert np.array_equal(
            again.predict(users, items, history), model.predict(users, items, history)
        )


@pytest.mark.parametrize("name", PEERS)
def test_a_seed_fixes_the_fit(name, catalogue):
    _skip_without(name)
    users = [u for u in catalogue.users_a[:3] for _ in range(4)]
    items = ["a0", "a1", "r0", "r1"] * 3
    a = make_recommender(name, **SETTINGS[name]).fit(catalogue.dataset).predict(users, items)
    b = make_recommender(name, **SETTINGS[name]).fit(catalogue.dataset).predict(users, items)
    c = make_recommender(name, **SETTINGS[name], random_state=7).fit(catalogue.dataset)
    assert np.array_equal(a, b)
    assert not np.array_equal(c.predict(users, items), a)


@pytest.mark.parametrize("name", PEERS)
def test_bad_settings_are_refused_naming_them(name, catalogue):
    _skip_without(name)
    with pytest.raises(ValueError, match=r"threshold=9\.0"):
        make_recommender(name, threshold=9.0).fit(catalogue.dataset)
    with pytest.raises(ValueError, match="factors"):
        make_recommender(name, factors=0).fit(catalogue.dataset)
    with pytest.raises(TypeError, match="num_threads"):
        make_recommender(name, num_threads=1.5).fit(catalogue.dataset)
