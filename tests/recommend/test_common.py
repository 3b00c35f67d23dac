"""Helpers shared by the baselines: grouping, growing, sparse state."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from dayzero.core.schema import Interactions, SchemaError
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
