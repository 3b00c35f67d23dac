"""Popularity ranks by count or by sum of values, the same for everyone."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Interactions
from dayzero.recommend.baselines.popularity import Popularity

RECORDS = [("u", "a", 1.0), ("v", "a", 1.0), ("w", "a", 1.0), ("u", "b", 10.0), ("v", "c", 2.0)]


@pytest.fixture
def data() -> Dataset:
    return Dataset(Interactions.from_records(RECORDS))


def test_count_and_sum(data):
    by_count = Popularity().fit(data)
    np.testing.assert_allclose(by_count.predict(["x"] * 4, ["a", "b", "c", "z"]), [3, 1, 1, 0])
    by_sum = Popularity(by="sum").fit(data)
    assert by_sum.recommend("x", k=3)[0] == ["b", "a", "c"]
    assert by_count.recommend("x", k=3)[0] == ["a", "b", "c"]


def test_seen_items_are_filtered_and_history_only_filters(data):
    model = Popularity().fit(data)
    assert model.recommend("u", k=3)[0] == ["c"]
    history = Interactions.from_records([("x", "a", 1.0)])
    ids, scores = model.recommend("x", k=3, history=history)
    assert ids == ["b", "c"] and scores.tolist() == [1.0, 1.0]


def test_partial_fit_counts_new_interactions(data):
    model = Popularity().fit(data)
    model.partial_fit_users(
        Interactions.from_records([("n", "c", 1.0), ("n", "c", 1.0), ("m", "d", 1)])
    )
    assert model.recommend("x", k=4)[0] == ["a", "c", "b", "d"]


def test_bad_param(data):
    with pytest.raises(ValueError, match="by must be"):
        Popularity(by="mean").fit(data)
