from __future__ import annotations

import time

import pandas as pd
import pytest

from dayzero.core.settings import DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.movielens100k import load_ml100k

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t1412\t5\t881251000\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "242\tKolya\t1996\tComedy\n"
    "267\tunkonwn\tunkonwn\tunknown\n"
    "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
    "1412\tLand Before Time III: The Time of the Great Giving (1995)\tV\tAnimation Children's\n"
)
USER = (
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "186\t39\tF\texecutive\t00000\n196\t49\tM\twriter\t55105\n"
)


def _write(tmp_path, inter=INTER, item=ITEM, user=USER):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for suffix, text in (("inter", inter), ("item", item), ("user", user)):
        (folder / f"ml-100k.{suffix}").write_text(text)
    return folder


def test_tiny_known_answer(tmp_path):
    data = load_ml100k(_write(tmp_path))
    inter = data.interactions.frame
    assert inter["user"].tolist() == [196, 186, 196]
    assert inter["item"].tolist() == [242, 302, 1412]
    assert inter["value"].tolist() == [3.0, 3.0, 5.0]
    assert inter["timestamp"].tolist() == [881250949, 891717742, 881251000]
    assert str(inter["timestamp"].dtype) == "int64"
    items = data.items
    assert items.fields == {"movie_title": "text", "release_year": "numeric", "genres": "multi"}
    assert items.record(302)["genres"] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
    assert items.record(242)["release_year"] == 1996
    unknown = items.record(267)
    assert unknown["genres"] == ["unknown"]
    assert pd.isna(unknown["movie_title"]) and pd.isna(unknown["release_year"])
    # RecBole left "V" as the year of item 1412; the year in its title is used instead.
    land = items.record(1412)
    assert land["release_year"] == 1995
    assert land["movie_title"] == "Land Before Time III: The Time of the Great Giving"
    assert data.users.record(186) == {
        "age": 39,
        "gender": "F",
        "occupation": "executive",
        "zip_code": "00000",
    }


def test_bad_rating_names_file_and_line(tmp_path):
    inter = INTER.replace("186\t302\t3\t", "186\t302\tthree\t")
    with pytest.raises(MalformedDataError, match=r"ml-100k.inter, line 3: column 'rating'"):
        load_ml100k(_write(tmp_path, inter=inter))


def test_wrong_field_count_names_line(tmp_path):
    item = ITEM + "5\tToo\tMany\tFields\tHere\n"
    with pytest.raises(MalformedDataError, match=r"ml-100k.item, line 6"):
        load_ml100k(_write(tmp_path, item=item))


def test_untyped_header_is_rejected(tmp_path):
    user = USER.replace("age:token", "age")
    with pytest.raises(MalformedDataError, match=r"ml-100k.user, line 1: header field 2"):
        load_ml100k(_write(tmp_path, user=user))


def test_non_year_without_title_year_is_an_error(tmp_path):
    item = ITEM.replace("Kolya\t1996", "Kolya\tsoon")
    with pytest.raises(MalformedDataError, match=r"ml-100k.item, line 2: column 'release_year'"):
        load_ml100k(_write(tmp_path, item=item))


def test_missing_file_is_named(tmp_path):
    folder = _write(tmp_path)
    (folder / "ml-100k.user").unlink()
    with pytest.raises(DataNotFoundError, match=r"ml-100k.user"):
        load_ml100k(folder)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"ml-100k"):
        load_ml100k(tmp_path / "nowhere")


@pytest.mark.slow
def test_real_counts_and_speed(real_dataset):
    root = real_dataset("ml-100k")
    start = time.perf_counter()
    data = load_ml100k(root)
    elapsed = time.perf_counter() - start
    assert data.summary() == {
        "interactions": 100_000,
        "users": 943,
        "items": 1682,
        "users_with_fields": 943,
        "items_with_fields": 1682,
    }
    assert set(data.interactions.values) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.items.record(1)["movie_title"] == "Toy Story"
    assert data.items.frame["release_year"].isna().sum() == 1  # item 267, "unknown"
    assert elapsed < 1.0, f"loading ml-100k took {elapsed:.2f}s"
