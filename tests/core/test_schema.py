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


# ------------------------------------------------------------------ from_frames / from_files


def test_entities_without_fields_infer_them_instead_of_typing_nothing():
    items = Entities(
        pd.DataFrame(
            {"title": ["Toy Story", "Heat Wave"], "genres": ["Animation|Comedy", "Action"]},
            index=["i1", "i2"],
        )
    )
    assert items.fields == {"title": "text", "genres": "multi"}
    assert items.record("i2")["genres"] == ["Action"]
    assert [g.column for g in items.guesses] == ["title", "genres"]
    assert Entities(items.frame, {}).fields == {}  # an explicit {} still types nothing
    with pytest.raises(SchemaError, match="'infer'"):
        Entities(items.frame, "guess")


def _files(tmp_path, ratings: str, items: str | None = None, users: str | None = None):
    paths = []
    for name, text in (("ratings.csv", ratings), ("items.csv", items), ("users.csv", users)):
        if text is not None:
            (tmp_path / name).write_text(text)
            paths.append(tmp_path / name)
        else:
            paths.append(None)
    return paths


RATINGS = "userId,item_id,rating,ts\n1,10,5,2024-01-01\n1,11,3,2024-01-02\n2,10,4,2024-01-03\n"
ITEMS = "item_id,title,genres,year\n10,Toy Story,Animation|Comedy,1995\n11,Heat,Action|Crime,1995\n"
USERS = "user,age,bio\n1,25,I love animated films with friends and family\n2,40,\n"


def test_from_files_reads_three_csv_files(tmp_path):
    data = Dataset.from_files(*_files(tmp_path, RATINGS, ITEMS, USERS))
    assert data.columns == {
        "user": "userId",
        "item": "item_id",
        "value": "rating",
        "timestamp": "ts",
    }
    assert data.interactions.frame["user"].tolist() == ["1", "1", "2"]  # ids are strings
    assert data.interactions.values.tolist() == [5.0, 3.0, 4.0]
    assert data.interactions.has_timestamp
    assert data.items.fields == {"title": "text", "genres": "multi", "year": "numeric"}
    assert data.items.record("10")["genres"] == ["Animation", "Comedy"]
    assert data.users.fields == {"age": "numeric", "bio": "text"}
    assert data.n_items == 2 and data.n_users == 2 and data.name == "ratings"
    report = {(r["table"], r["column"]): r for r in data.field_report()}
    assert report[("items", "genres")]["how"] == "inferred"
    assert report[("interactions", "userId")]["kind"] == "user"


def test_from_files_overrides_and_named_columns(tmp_path, capsys):
    ratings = "who,what,stars\nu1,m1,4\nu2,m1,2\n"
    items = "what,title,year\nm1,Heat,1995\n"
    paths = _files(tmp_path, ratings, items)
    data = Dataset.from_files(
        *paths,
        user_col="who",
        item_col="what",
        value_col="stars",
        fields={"year": "categorical"},
        verbose=True,
    )
    assert data.items.fields == {"title": "text", "year": "categorical"}
    assert "categorical  given" in capsys.readouterr().out
    implicit = Dataset.from_files(*_files(tmp_path, "user,item\nu1,m1\n"))
    assert implicit.interactions.values.tolist() == [1.0] and implicit.columns["value"] is None


def test_from_frames_keeps_id_types_and_matches_them_across_tables():
    ratings = pd.DataFrame({"user": [1, 2], "item": [10, 11], "score": [1.0, 0.0]})
    items = pd.DataFrame({"item": ["10", "11"], "title": ["A b", "C d"]})
    data = Dataset.from_frames(ratings, items)
    assert data.n_items == 2  # 10 and "10" are one item
    same = Dataset.from_frames(ratings)
    assert same.interactions.frame["user"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("ratings", "items", "match"),
    [
        ("a,b\n1,2\n", None, r"ratings.csv: no user column .*user_col"),
        ("user,item,rating\n1,10,good\n", None, r"ratings.csv line 2, column 'rating': 'good'"),
        ("user,item,rating\n1,10,4\n,11,3\n", None, r"line 3, column 'user': the user id is empty"),
        ("user,item,ts\n1,10,yesterday\n", None, r"line 2, column 'ts': 'yesterday' is not a time"),
        ("user,item\n1,10\n", "item,title\n10,A\n10,B\n", r"items.csv line 3, column 'item'"),
        ("user,item\n1,10\n", "title\nA\n", r"items.csv: no item id column"),
        ("user,user_id,item\n1,1,10\n", None, r"could all be the user column"),
    ],
)
def test_bad_files_name_the_file_line_column_and_fix(tmp_path, ratings, items, match):
    with pytest.raises(SchemaError, match=match):
        Dataset.from_files(*_files(tmp_path, ratings, items))


def test_bad_fields_argument_names_the_fix(tmp_path):
    paths = _files(tmp_path, RATINGS, ITEMS)
    with pytest.raises(SchemaError, match="not a column of the items or users"):
        Dataset.from_files(*paths, fields={"plot": "text"})
    with pytest.raises(SchemaError, match="has kind 'words'"):
        Dataset.from_files(*paths, fields={"title": "words"})
    with pytest.raises(SchemaError, match="no column 'movie'"):
        Dataset.from_files(*paths, item_col="movie")


def test_from_files_reads_json_lines_with_lists(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"user": "u", "item": "a", "rating": 3}\n')
    (tmp_path / "i.jsonl").write_text('{"item": "a", "tags": ["x", "y"], "title": "Big Fish"}\n')
    data = Dataset.from_files(tmp_path / "r.jsonl", tmp_path / "i.jsonl")
    assert data.items.fields["tags"] == "multi" and data.items.record("a")["tags"] == ["x", "y"]
