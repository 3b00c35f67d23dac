"""The torch feature hybrid: cold entities are scored by their features, deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Entities, Interactions
from dayzero.recommend.baselines.feature_hybrid import FeatureHybrid
from tests.recommend.conftest import build


def test_cold_items_go_to_the_right_group(catalogue, fitted):
    model = fitted("feature-hybrid")
    for user in catalogue.users_a[:4]:
        pred = model.predict([user] * 2, [catalogue.cold_action, catalogue.cold_romance])
        assert pred[0] > pred[1] + 1.0
    for user in catalogue.users_b[:4]:
        top, _ = model.recommend(user, k=1, items=[catalogue.cold_action, catalogue.cold_romance])
        assert top == [catalogue.cold_romance]


def test_new_users_with_features_are_not_all_the_same(catalogue, fitted):
    model = fitted("feature-hybrid")
    model = FeatureHybrid(**model.get_params()).fit(catalogue.dataset)
    users = pd.DataFrame({"id": ["newA", "newB"], "segment": ["A", "B"]})
    model.partial_fit_users(
        Interactions.empty(), Entities.from_frame(users, "id", {"segment": "categorical"}, "user")
    )
    pred = model.predict(["newA", "newA", "newB", "newB"], ["a1", "r1", "a1", "r1"])
    assert pred[0] > pred[1] + 1.0 and pred[3] > pred[2] + 1.0


def test_history_folds_in_a_new_user(catalogue, fitted):
    model = fitted("feature-hybrid")
    history = Interactions.from_records(
        [("new", "r0", 5.0), ("new", "r1", 5.0), ("new", "a0", 1.0)]
    )
    pred = model.predict(["new", "new"], ["a3", "r3"], history=history)
    assert pred[1] > pred[0] + 0.5
    plain = model.predict(["new", "new"], ["a3", "r3"])
    assert not np.allclose(plain, pred)


def test_bpr_ranks_the_liked_group(catalogue):
    frame = catalogue.dataset.interactions.frame
    liked = frame[frame["value"] >= 4]
    model = build("feature-hybrid", loss="bpr").fit(
        catalogue.dataset.with_interactions(Interactions(liked))
    )
    top, _ = model.recommend("ua0", k=2, items=[catalogue.cold_action, catalogue.cold_romance])
    assert top[0] == catalogue.cold_action
    top, _ = model.recommend("ub0", k=2, items=[catalogue.cold_action, catalogue.cold_romance])
    assert top[0] == catalogue.cold_romance


def test_deterministic_for_a_seed(catalogue):
    a = build("feature-hybrid", epochs=3).fit(catalogue.dataset)
    b = build("feature-hybrid", epochs=3).fit(catalogue.dataset)
    np.testing.assert_array_equal(a.item_id_, b.item_id_)
    c = build("feature-hybrid", epochs=3, random_state=1).fit(catalogue.dataset)
    assert not np.array_equal(a.item_id_, c.item_id_)


def test_bad_params(catalogue):
    with pytest.raises(ValueError, match="loss"):
        FeatureHybrid(loss="hinge").fit(catalogue.dataset)
    with pytest.raises(ValueError, match="id_dropout"):
        FeatureHybrid(id_dropout=1.0).fit(catalogue.dataset)
