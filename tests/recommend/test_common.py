"""Helpers shared by the baselines: grouping, growing, sparse state."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from dayzero.core.schema import IdMap, Interactions, SchemaError
from dayzero.recommend import _common


def test_positions_by_user_keeps_first_appearance_order():
    groups = _common.positions_by_user(["b", 1, "b", "a", 1])
    assert list(groups) == ["b", 1, "a"]
    assert [g.tolist() for g in groups.values()] == [[0, 2], [1, 4], [3]]


def test_user_history_averages_duplicates_and_ignores_others():
    history = Interactions.from_records(
        [("u", "a", 1.0), ("v", "a", 5.0), ("u", "a", 3.0), ("u", "b", 2.0)]
    )
    items, values = _common.user_history(history, "u")
    assert items == ["a", "b"] and values.tolist() == [2.0, 2.0]
    assert _common.user_history(None, "u")[0] == []
    bad = Interactions.from_records([("u", "a", float("nan"))])
    with pytest.raises(SchemaError, match="non-finite"):
        _common.user_history(bad, "u")


def test_grow_and_set_entries():
    assert _common.grow(np.ones((2, 3)), 4).tolist()[2:] == [[0, 0, 0], [0, 0, 0]]
    m = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))
    m = _common.set_entries(
        _common.resize_csr(m, (3, 2)), np.array([0, 2]), np.array([0, 1]), np.array([7.0, 8.0])
    )
    assert m.toarray().tolist() == [[7, 0], [0, 2], [0, 8]]


def test_csr_state_round_trip():
    m = sp.random(5, 4, density=0.4, random_state=0, format="csr")
    back = _common.csr_from_state("x", _common.csr_state("x", m))
    assert back.shape == m.shape and (back != m).nnz == 0


def test_saved_attributes_round_trip_under_names_without_underscore():
    class Model(_common.SavedAttributes):
        _SAVED_ARRAYS = ("bias_",)
        _SAVED_SPARSE = ("ratings_",)
        _SAVED_EXTRAS = {"count_": int, "names_": list}  # noqa: RUF012

        def _after_load(self) -> None:
            self.total_ = float(self.bias_.sum())

    model = Model()
    model.bias_ = np.array([1.0, 2.0])
    model.ratings_ = sp.csr_matrix(np.eye(2))
    model.count_, model.names_ = 3, ["a"]
    arrays, extras = model._state()
    assert sorted(arrays) == [
        "bias",
        "ratings.data",
        "ratings.indices",
        "ratings.indptr",
        "ratings.shape",
    ]
    assert extras == {"count": 3, "names": ["a"]}
    back = Model()
    back._set_state(arrays, {"count": 3.0, "names": ("a",)})
    assert back.count_ == 3 and isinstance(back.count_, int) and back.names_ == ["a"]
    assert (back.ratings_ != model.ratings_).nnz == 0 and back.total_ == 3.0


def test_pair_scores_calls_once_per_user_with_unknown_items_as_minus_one():
    calls = []

    def score(user, index):
        calls.append(user)
        return index * 10.0

    items = IdMap(["a", "b"])
    out = _common.pair_scores(items, ["u", "v", "u"], ["b", "a", "zz"], score)
    assert out.tolist() == [10.0, 0.0, -10.0] and calls == ["u", "v"]


def test_most_similar_excludes_the_item_and_keeps_id_order_on_ties():
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    sims = _common.cosine_to(vectors, 0)
    assert sims.tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    ids, top = _common.most_similar(IdMap(list("abcde")), sims, 0, 10)
    assert ids == ["b", "d", "c", "e"] and top.tolist() == [1.0, 1.0, 0.0, 0.0]
