from __future__ import annotations

import pytest

from dayzero.core.settings import DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.citeulike import load_citeulike

USERS = "2 0 2\n1 1\n3 0 1 2"  # no trailing newline, like the real file
ITEM_TAG = "2 1 0\n0\n1 2\n"
TAGS = "genomics\nnetworks\nmetabolism\n"


def _write(tmp_path, users=USERS, item_tag=ITEM_TAG, tags=TAGS):
    folder = tmp_path / "citeulike-a"
    folder.mkdir()
    (folder / "users.dat").write_text(users)
    (folder / "item-tag.dat").write_text(item_tag)
    (folder / "tags.dat").write_text(tags)
    return folder


def test_tiny_known_answer(tmp_path):
    data = load_citeulike(_write(tmp_path))
    inter = data.interactions.frame
    assert inter["user"].tolist() == [0, 0, 1, 2, 2, 2]
    assert inter["item"].tolist() == [0, 2, 1, 0, 1, 2]
    assert set(inter["value"]) == {1.0}
    assert not data.interactions.has_timestamp
    assert data.items.fields == {"tags": "multi", "text": "text"}
    assert data.items.record(0) == {"tags": ["networks", "genomics"], "text": "networks, genomics"}
    assert data.items.record(1) == {"tags": [], "text": ""}
    assert data.items.record(2)["tags"] == ["metabolism"]
    assert data.users is None and data.n_users == 3 and data.n_items == 3


def test_count_mismatch_names_line(tmp_path):
    with pytest.raises(MalformedDataError, match=r"users.dat, line 2: count says 2 ids but 1"):
        load_citeulike(_write(tmp_path, users="2 0 2\n2 1\n"))


def test_non_integer_names_line(tmp_path):
    with pytest.raises(MalformedDataError, match=r"item-tag.dat, line 3: not all integers"):
        load_citeulike(_write(tmp_path, item_tag="2 1 0\n0\n1 x\n"))


def test_item_id_out_of_range_names_line(tmp_path):
    with pytest.raises(MalformedDataError, match=r"users.dat, line 1: an id is outside 0..2"):
        load_citeulike(_write(tmp_path, users="1 3\n"))


def test_missing_file_is_named(tmp_path):
    folder = _write(tmp_path)
    (folder / "tags.dat").unlink()
    with pytest.raises(DataNotFoundError, match=r"tags.dat"):
        load_citeulike(folder)


@pytest.mark.slow
def test_real_counts(real_dataset):
    data = load_citeulike(real_dataset("citeulike-a"))
    assert len(data.interactions) == 204_986  # the folder README's 204,987 is one too many
    assert data.n_users == 5551 and data.n_items == 16_980
    assert len(data.items) == 16_980
    assert not data.interactions.frame.duplicated(["user", "item"]).any()
    # 3,461 articles have no tags in item-tag.dat, so their text is empty.
    assert (data.items.frame["text"] == "").sum() == 3461
