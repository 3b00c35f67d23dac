from __future__ import annotations

import pytest

from dayzero.core.schema import SchemaError
from dayzero.core.settings import DataNotFoundError
from dayzero.datasets._files import MalformedDataError
from dayzero.datasets.movielens100k import load_ml100k
from dayzero.datasets.recbole import atomic_header, load_recbole


def _write(folder, name, header, rows):
    folder.mkdir(exist_ok=True)
    lines = ["\t".join(header), *("\t".join(map(str, r)) for r in rows)]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _books(tmp_path):
    folder = tmp_path / "books"
    _write(
        folder,
        "books.inter",
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
        [("u1", "b1", 5, 100), ("u1", "b2", 3, 200), ("u2", "b1", 4, 150), ("u3", "b3", 1, 90)],
    )
    _write(
        folder,
        "books.item",
        ["item_id:token", "book_title:token_seq", "categories:token_seq", "price:float",
         "vector:float_seq"],
        [("b1", "The Old Man and the Sea", "fiction classics", 9.5, "0.1 0.2"),
         ("b2", "Gardening at Home", "garden howto", 15, "0.3 0.1"),
         ("b3", "Sea Stories", "fiction", "", "0 0")],
    )  # fmt: skip
    _write(
        folder,
        "books.user",
        ["user_id:token", "age:float", "country:token"],
        [("u1", 31, "usa"), ("u2", 45, "spain"), ("u3", 23, "")],
    )
    return folder


def test_known_answer_on_a_book_set(tmp_path):
    data = load_recbole(_books(tmp_path))
    assert data.name == "books" and len(data.interactions) == 4
    frame = data.interactions.frame
    assert frame["value"].tolist() == [5.0, 3.0, 4.0, 1.0] and "timestamp" in frame.columns
    assert data.items.fields == {"book_title": "text", "categories": "multi", "price": "numeric"}
    assert data.items.record("b1")["categories"] == ["fiction", "classics"]
    assert data.items.record("b1")["book_title"] == "The Old Man and the Sea"
    assert data.users.fields == {"age": "numeric", "country": "categorical"}
    assert data.users.record("u2") == {"age": 45.0, "country": "spain"}
    assert data.columns["value"] == "rating" and data.columns["timestamp"] == "timestamp"


def test_overrides_and_implicit_feedback(tmp_path):
    folder = _books(tmp_path)
    _write(folder, "books.inter", ["user_id:token", "item_id:token"], [("u1", "b1"), ("u2", "b3")])
    data = load_recbole(folder, fields={"categories": "text", "price": None})
    assert data.items.fields == {"book_title": "text", "categories": "text"}
    assert data.interactions.frame["value"].tolist() == [1.0, 1.0]


def test_bad_files_are_named(tmp_path):
    folder = _books(tmp_path)
    text = (folder / "books.item").read_text().replace("\t15\t", "\tfifteen\t")
    (folder / "books.item").write_text(text)
    with pytest.raises(
        MalformedDataError, match=r"books.item, line 3: column 'price' has 'fifteen'"
    ):
        load_recbole(folder)
    _write(folder, "books.item", ["item_id", "title:token_seq"], [("b1", "x")])
    with pytest.raises(MalformedDataError, match=r"header field 1 is 'item_id', not 'name:type'"):
        load_recbole(folder)
    _write(folder, "books.item", ["id:token", "title:token_seq"], [("b1", "x")])
    with pytest.raises(MalformedDataError, match="lacks the id column 'item_id'"):
        load_recbole(folder)
    _write(folder, "books.item", ["item_id:token", "title:token_seq"], [("b1", "x"), ("b1", "y")])
    with pytest.raises(SchemaError, match="repeats"):
        load_recbole(folder)
    (folder / "books.inter").unlink()
    with pytest.raises(DataNotFoundError, match=r"holds no RecBole \.inter file"):
        load_recbole(folder)


@pytest.mark.slow
def test_ml100k_through_the_generic_loader(real_dataset):
    folder = real_dataset("ml-100k") / "ml-100k"
    generic, specific = load_recbole(folder), load_ml100k(folder)
    assert len(generic.interactions) == len(specific.interactions) == 100_000
    assert len(generic.items) == len(specific.items) and len(generic.users) == 943
    assert atomic_header(folder / "ml-100k.inter")["rating"] == "float"
    assert generic.items.fields["movie_title"] == "text"
    assert generic.items.fields["class"] == "multi"
