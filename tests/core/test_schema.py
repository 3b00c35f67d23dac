from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions, SchemaError


def test_idmap_is_append_only():
    m = IdMap(["a", "b"])
    before = m.to_internal(["a", "b"]).tolist()
    assert m.add(["c", "a"]).tolist() == [2, 0]
    assert m.to_internal(["a", "b"]).tolist() == before
    assert m.to_external([2, 1]) == ["c", "b"]
    assert len(m) == 3 and "c" in m and "z" not in m


def test_idmap_unknown_id_names_it():
    m = IdMap([1, 2])
    with pytest.raises(KeyError, match="unknown id 7"):
        m.to_internal([1, 7])
    assert m.to_internal([1, 7], missing=-1).tolist() == [0, -1]


def test_idmap_json_roundtrip_keeps_types():
    m = IdMap([np.int64(3), "U1", 5])
    again = IdMap.from_json(m.to_json())
    assert again == IdMap([3, "U1", 5])


def test_interactions_normalises_and_validates():
    inter = Interactions.from_records([("u1", "i1", "5"), ("u2", "i1", 3)])
    assert inter.values.dtype == np.float64 and inter.values.tolist() == [5.0, 3.0]
    with pytest.raises(SchemaError, match="'value' must be numeric"):
        Interactions.from_records([("u1", "i1", "five")])
    with pytest.raises(SchemaError, match="missing"):
        Interactions(pd.DataFrame({"user": [1], "item": [2]}))
    with pytest.raises(SchemaError, match="must not contain missing ids"):
        Interactions(pd.DataFrame({"user": [1, None], "item": [2, 3], "value": [1, 1]}))


def test_interactions_from_frame_names_bad_column():
    df = pd.DataFrame({"uid": [1], "iid": [2], "r": [4.0]})
    inter = Interactions.from_frame(df, user="uid", item="iid", value="r")
    assert inter.frame.columns.tolist() == ["user", "item", "value"]
    with pytest.raises(SchemaError, match="'rating' given as value"):
        Interactions.from_frame(df, user="uid", item="iid", value="rating")
    implicit = Interactions.from_frame(df, user="uid", item="iid", value=None)
    assert implicit.values.tolist() == [1.0]


def test_interactions_selection_and_grouping_keep_order():
    inter = Interactions.from_records(
        [("b", 1, 1.0, 10), ("a", 2, 2.0, 11), ("b", 3, 3.0, 12), ("a", 1, 4.0, 13)]
    )
    assert inter.has_timestamp
    assert inter.users.tolist() == ["b", "a"]
    groups = inter.groupby_user()
    assert list(groups) == ["b", "a"] and groups["b"]["item"].tolist() == [1, 3]
    assert len(inter.for_users(["a"])) == 2 and len(inter.for_items([1])) == 2
    both = inter.concat(Interactions.from_records([("c", 9, 1.0, 14)]))
    assert len(both) == 5 and both.users.tolist() == ["b", "a", "c"]


def test_entities_validate_fields():
    frame = pd.DataFrame({"id": [1, 2], "title": ["x", "y"]})
    ents = Entities.from_frame(frame, "id", {"title": "text"})
    assert ents.record(2) == {"title": "y"}
    with pytest.raises(SchemaError, match="declared but not a column"):
        Entities.from_frame(frame, "id", {"plot": "text"})
    with pytest.raises(SchemaError, match="has kind 'words'"):
        Entities.from_frame(frame, "id", {"title": "words"})
    with pytest.raises(SchemaError, match="appears more than once"):
        Entities(pd.DataFrame({"title": ["a", "b"]}, index=[1, 1]))
    with pytest.raises(KeyError, match="unknown item id 9"):
        ents.record(9)


def test_dataset_grows_without_rebuilding():
    inter = Interactions.from_records([("u1", "i1", 5.0), ("u2", "i2", 3.0)])
    items = Entities(pd.DataFrame({"title": ["one", "two", "three"]}, index=["i1", "i2", "i3"]))
    ds = Dataset(inter, items=items)
    assert ds.n_users == 2 and ds.n_items == 3
    old_users = ds.user_map.to_internal(["u1", "u2"]).tolist()
    ds.add_interactions(Interactions.from_records([("u3", "i4", 1.0)]))
    new_items = Entities(pd.DataFrame({"title": ["five"]}, index=["i5"]))
    assert ds.add_items(new_items).tolist() == [4]
    assert ds.user_map.to_internal(["u1", "u2"]).tolist() == old_users
    assert ds.n_users == 3 and ds.n_items == 5 and len(ds.interactions) == 3
    assert ds.items.record("i5") == {"title": "five"}
    copy = ds.with_interactions(Interactions.empty())
    copy.user_map.add(["other"])
    assert "other" not in ds.user_map
