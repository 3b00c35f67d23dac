"""Item kNN recovers a checkerboard and follows the neighbourhood formula."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.recommend.baselines.item_knn import ItemKNN


def test_checkerboard_groups_are_neighbours(catalogue, fitted):
    model = fitted("item-knn")
    for item in catalogue.action[:3]:
        neighbours, sims = model.similar_items(item, k=5)
        assert set(neighbours) <= set(catalogue.action) and np.all(sims > 0)
    for user in catalogue.users_a[:3]:
        top, _ = model.recommend(
            user, k=2, items=catalogue.action + catalogue.romance, filter_seen=False
        )
        assert set(top) <= set(catalogue.action)
    for user in catalogue.users_b[:3]:
        pred = model.predict([user] * 2, [catalogue.action[0], catalogue.romance[0]])
        assert pred[1] > pred[0] + 1.5


def test_similarity_ranking_on_implicit_checkerboard():
    rows = [(u, i, 1.0) for u in "abc" for i in "xyz"] + [(u, i, 1.0) for u in "def" for i in "pqr"]
    model = ItemKNN(centered=False, scoring="similarity").fit(
        Dataset(Interactions.from_records(rows))
    )
    history = Interactions.from_records([("new", "x", 1.0)])
    ids, scores = model.recommend("new", k=4, history=history)
    assert set(ids[:2]) == {"y", "z"} and scores[0] == pytest.approx(1.0) and scores[2] == 0.0


def test_rating_formula_by_hand():
    rows = [
        ("u1", "a", 5.0),
        ("u1", "b", 4.0),
        ("u2", "a", 1.0),
        ("u2", "b", 2.0),
        ("u3", "b", 3.0),
    ]
    model = ItemKNN(k_neighbors=5).fit(Dataset(Interactions.from_records(rows)))
    # means: a = 3, b = 3; centred a = (2, -2, .), b = (1, -1, 0): cosine 1
    assert model.similarity_[0, 1] == pytest.approx(1.0)
    # u3 rated b = 3 (residual 0) -> a = 3; with history b = 5 (residual 2) -> a = 3 + 2
    np.testing.assert_allclose(model.predict(["u3"], ["a"]), [3.0])
    history = Interactions.from_records([("u3", "b", 5.0)])
    np.testing.assert_allclose(model.predict(["u3"], ["a"], history=history), [5.0])
    # unknown item -> global mean 3; item with no rated neighbours -> its mean
    np.testing.assert_allclose(model.predict(["u3", "nobody"], ["zz", "a"]), [3.0, 3.0])


def test_partial_fit_items_gives_new_item_neighbours(catalogue):
    model = ItemKNN(k_neighbors=10).fit(catalogue.dataset)
    source = catalogue.dataset.interactions.frame
    copied = source[source["item"] == "a0"].assign(item="a0-copy")
    model.partial_fit_items(
        Entities.from_frame(copied[["item"]].drop_duplicates(), "item", {}), Interactions(copied)
    )
    neighbours, sims = model.similar_items("a0-copy", k=3)
    assert neighbours[0] == "a0" and sims[0] == pytest.approx(1.0)
    assert set(neighbours) <= set(catalogue.action)


def test_bad_params(catalogue):
    with pytest.raises(ValueError, match="k_neighbors"):
        ItemKNN(k_neighbors=0).fit(catalogue.dataset)
    with pytest.raises(ValueError, match="scoring"):
        ItemKNN(scoring="votes").fit(catalogue.dataset)
