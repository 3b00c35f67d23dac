"""DropoutNet (the reimplemented peer): the known answer on the two-group catalogue, cold items
from their text alone, WMF fold-in of new users, save/load without implicit, seeds, settings.

Tests that fit skip when implicit (the ``bench`` extra, ``make bench-deps``) is absent.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp

from dayzero.core.schema import Interactions
from dayzero.recommend.contract import REGISTRY, Recommender, make_recommender
from dayzero.recommend.dropoutnet import DropoutNet, _fold_in

SETTINGS = {
    "factors": 4,
    "regularization": 0.1,
    "content_dim": 8,
    "hidden": 32,
    "dim": 8,
    "epochs": 30,
    "pairs_per_epoch": 2000,
    "batch_size": 128,
    "lr": 3e-3,
    "threshold": 4.0,
}


@pytest.fixture(scope="module")
def model(catalogue):
    pytest.importorskip("implicit", reason="dropoutnet's WMF step needs implicit: make bench-deps")
    return make_recommender("dropoutnet", **SETTINGS).fit(catalogue.dataset)


def test_it_is_registered():
    assert REGISTRY["dropoutnet"] is DropoutNet


def test_without_implicit_fit_names_the_extra(catalogue, monkeypatch):
    for module in ("implicit", "implicit.cpu", "implicit.cpu.als"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"`bench` extra; run `make bench-deps`"):
        DropoutNet().fit(catalogue.dataset)


def test_known_users_get_their_groups_items(model, catalogue):
    for users, liked in (
        (catalogue.users_a, catalogue.action),
        (catalogue.users_b, catalogue.romance),
    ):
        for user in users:
            top, _ = model.recommend(user, k=4, filter_seen=False)
            assert set(top) <= set(liked) | {catalogue.cold_action, catalogue.cold_romance}, top


def test_cold_items_are_scored_from_their_text(model, catalogue):
    # a_cold / r_cold were never interacted with: only the content input tells them apart
    assert set(model.content_only_items()) == {catalogue.cold_action, catalogue.cold_romance}
    cold = [catalogue.cold_action, catalogue.cold_romance]
    for users, first in ((catalogue.users_a, 0), (catalogue.users_b, 1)):
        scores = np.array([model.predict([u, u], cold) for u in users])
        assert np.all(scores[:, first] > scores[:, 1 - first]), scores


def test_a_new_item_from_its_fields_joins_its_group(catalogue):
    pytest.importorskip("implicit")
    model = make_recommender("dropoutnet", **SETTINGS).fit(catalogue.dataset)
    model.partial_fit_items(catalogue.new_items(["a_new"], action=True))
    model.partial_fit_items(catalogue.new_items(["r_new"], action=False))
    assert {"a_new", "r_new"} <= set(model.content_only_items())
    for user in catalogue.users_a:
        a, r = model.predict([user, user], ["a_new", "r_new"])
        assert a > r
    for user in catalogue.users_b:
        a, r = model.predict([user, user], ["a_new", "r_new"])
        assert r > a


def test_the_fold_in_is_als_closed_form(model):
    # implicit's own recalculate_user on the same confidences gives the same user vector
    from implicit.cpu.als import AlternatingLeastSquares

    solver = AlternatingLeastSquares(factors=4, regularization=0.1, alpha=1.0)
    solver.item_factors = model.item_factors_
    cols = model.item_map_.to_internal(["r0", "r1", "r2"])
    row = sp.csr_matrix(
        (np.full(3, 1.0 + model.alpha, dtype=np.float32), (np.zeros(3), cols)),
        shape=(1, len(model.item_map_)),
    )
    expected = np.asarray(solver.recalculate_user(0, row))
    ours = _fold_in(model.item_factors_, model._gram, cols, model.alpha, model.regularization)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_a_new_user_is_folded_in_from_a_few_ratings(model, catalogue):
    for liked, group in (
        (catalogue.romance, catalogue.romance),
        (catalogue.action, catalogue.action),
    ):
        rows = [("newcomer", liked[0], 5.0), ("newcomer", liked[1], 4.0)]
        top, _ = model.recommend("newcomer", k=3, history=Interactions.from_records(rows))
        assert set(top) <= set(group) | {catalogue.cold_action, catalogue.cold_romance}, top
    assert "newcomer" not in model.user_map_


def test_save_load_scores_identically_without_implicit(model, catalogue, tmp_path, monkeypatch):
    folder = model.save(tmp_path / "dn")
    assert not [p for p in folder.rglob("*") if p.suffix in {".pkl", ".pickle"}]
    for module in ("implicit", "implicit.cpu", "implicit.cpu.als"):
        monkeypatch.setitem(sys.modules, module, None)
    loaded = Recommender.load(folder)
    users = ["ua0", "ub1", "nobody", "ua3"]
    items = ["a1", "r1", catalogue.cold_romance, catalogue.cold_action]
    history = Interactions.from_records([("nobody", "r0", 5.0)])
    for given in (None, history):
        np.testing.assert_array_equal(
            loaded.predict(users, items, given), model.predict(users, items, given)
        )


def test_a_seed_fixes_the_fit(catalogue):
    pytest.importorskip("implicit")
    small = {**SETTINGS, "epochs": 3}
    users, items = ["ua0", "ua1", "ub0"], ["a0", "r0", catalogue.cold_action]
    a = make_recommender("dropoutnet", **small).fit(catalogue.dataset).predict(users, items)
    b = make_recommender("dropoutnet", **small).fit(catalogue.dataset).predict(users, items)
    c = make_recommender("dropoutnet", **small, random_state=3).fit(catalogue.dataset)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(c.predict(users, items), a)


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"dropout": 1.0}, "dropout"),
        ({"factors": 0}, "factors"),
        ({"threshold": 9.0}, r"threshold=9\.0"),
        ({"hidden": 2.5}, "hidden"),
    ],
)
def test_bad_settings_are_refused_naming_them(setting, match, catalogue):
    pytest.importorskip("implicit")
    with pytest.raises(ValueError, match=match):
        make_recommender("dropoutnet", **setting).fit(catalogue.dataset)
