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


CITATIONS = "1 2\n0\n1 0\n"


def test_citations_are_read_on_request(tmp_path):
    folder = _write(tmp_path)
    (folder / "citations.dat").write_text(CITATIONS)
    assert "citations" not in load_citeulike(folder).items.frame.columns
    data = load_citeulike(folder, with_citations=True)
    assert data.items.fields == {"tags": "multi", "text": "text", "citations": "multi"}
    assert data.items.frame["citations"].tolist() == [[2], [], [0]]


def test_citations_must_cover_every_article(tmp_path):
    folder = _write(tmp_path)
    (folder / "citations.dat").write_text("1 2\n0\n")
    with pytest.raises(MalformedDataError, match=r"citations.dat: 2 lines but item-tag.dat has 3"):
        load_citeulike(folder, with_citations=True)
    (folder / "citations.dat").write_text("1 3\n0\n0\n")
    with pytest.raises(MalformedDataError, match=r"citations.dat, line 1: an id is outside 0..2"):
        load_citeulike(folder, with_citations=True)


def _write_heater(folder, train="uid,iid\n0,0\n1,0\n1,1\n", vali="uid,iid\n2,3\n",
                  test="uid,iid\n0,2\n2,4\n1,2\n", ids="7\n8\n"):  # fmt: skip
    split = folder / "heater-split"
    split.mkdir()
    for name, text in (("train", train), ("vali", vali), ("test", test)):
        (split / f"{name}.csv").write_text(text)
    (split / "test_item_ids.csv").write_text(ids)
    return split


def test_heater_split_known_answer(tmp_path):
    from dayzero.datasets.citeulike import load_heater_split

    folder = _write(tmp_path)
    _write_heater(folder)
    for where in (folder, tmp_path, folder / "heater-split"):
        split = load_heater_split(where)
        assert split.train.frame[["user", "item"]].values.tolist() == [[0, 0], [1, 0], [1, 1]]
        assert split.validation.frame["item"].tolist() == [3]
        assert split.test.frame["user"].tolist() == [0, 2, 1]
        assert set(split.test.frame["value"]) == {1.0}
        assert not split.train.has_timestamp
        # The cold test articles are test.csv's; the published id list is kept as it is.
        assert split.test_items == [2, 4]
        assert split.listed_test_ids == [7, 8]


def test_heater_split_refuses_shared_articles_and_bad_ids(tmp_path):
    from dayzero.datasets.citeulike import load_heater_split

    folder = _write(tmp_path)
    split = _write_heater(folder, test="uid,iid\n0,1\n")
    with pytest.raises(MalformedDataError, match=r"test.csv: article 1 is also in train.csv"):
        load_heater_split(folder)
    (split / "test.csv").write_text("uid,iid\n0,x\n")
    with pytest.raises(MalformedDataError, match=r"column 'iid' must hold 0-based integer ids"):
        load_heater_split(folder)
    (split / "test.csv").write_text("user,item\n0,2\n")
    with pytest.raises(MalformedDataError, match=r"uid"):
        load_heater_split(folder)
    (split / "vali.csv").unlink()
    with pytest.raises(DataNotFoundError, match=r"vali.csv"):
        load_heater_split(folder)


@pytest.mark.slow
def test_real_heater_split(real_dataset):
    from dayzero.datasets.citeulike import load_heater_split

    root = real_dataset("citeulike-a")
    split = load_heater_split(root)
    assert (len(split.train), len(split.validation), len(split.test)) == (164_210, 13_037, 27_739)
    assert split.train.frame["item"].nunique() == 13_584
    assert split.validation.frame["item"].nunique() == 1_018
    assert len(split.test_items) == 2_378
    pairs = set(map(tuple, load_citeulike(root).interactions.frame[["user", "item"]].values))
    for part in (split.train, split.validation, split.test):
        assert set(map(tuple, part.frame[["user", "item"]].values)) <= pairs
    links = load_citeulike(root, with_citations=True).items.frame["citations"]
    assert links.map(len).sum() == 2 * 44_709  # each undirected link listed at both ends
