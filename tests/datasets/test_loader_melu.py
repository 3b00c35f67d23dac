from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from dayzero.core.schema import SchemaError
from dayzero.core.settings import DataNotFoundError
from dayzero.core.split import NEW_ITEMS, NEW_USERS
from dayzero.core.templates import is_missing
from dayzero.datasets._files import MalformedDataError
from dayzero.datasets.melu import STATES, load_melu, load_ml1m_melu
from dayzero.evaluate.protocols.catalogue import melu_catalogue_split
from dayzero.evaluate.protocols.melu import make_meta_tasks, melu_split

MOVIE_LINE = (
    "{id}::Movie {id}::1995::PG::22 Nov 1995::Animation, Comedy::Jane Doe::A, B::X, Y::"
    "A plot about {id}.::http://poster\r\n"
)


def write_melu_fixture(root: Path, n_users: int = 6, n_movies: int = 30, seed: int = 1) -> Path:
    """A tiny ml-1m-melu folder in the real format, tasks made by MeLU's rule."""
    folder = root / "ml-1m-melu"
    (folder / "original").mkdir(parents=True)
    rng = random.Random(seed)
    (folder / "original" / "movies_extrainfos.dat").write_text(
        "".join(MOVIE_LINE.format(id=i) for i in range(1, n_movies + 1))
        + "31::No Plot::N/A::N/A::N/A::Drama::N/A::N/A::N/A::N/A::N/A\r\n",
        encoding="utf-8",
    )
    users = "".join(f"{u}::{'F' if u % 2 else 'M'}::25::20::1000{u}\n" for u in range(1, 40))
    (folder / "original" / "users.dat").write_text(users)
    user = 1
    for state in STATES:
        movies, ratings = {}, {}
        for _ in range(n_users):
            n = rng.choice([5, 13, 20])
            movies[str(user)] = rng.sample(range(1, n_movies + 1), n)
            ratings[str(user)] = [rng.randint(1, 5) for _ in range(n)]
            user += 1
        (folder / f"{state}.json").write_text(json.dumps(movies))
        (folder / f"{state}_y.json").write_text(json.dumps(ratings))
    data = load_ml1m_melu(folder)
    task_rng = random.Random(13)
    for state in STATES:
        support, query = make_meta_tasks(data.states[state], task_rng)
        out = folder / "tasks" / state
        out.mkdir(parents=True)
        for stem, part in (("support_u_movies", support), ("query_u_movies", query)):
            groups = part.groupby_user()
            (out / f"{stem}.json").write_text(
                json.dumps({str(u): g["item"].tolist() for u, g in groups.items()})
            )
            (out / f"{stem}_y.json").write_text(
                json.dumps({str(u): [int(v) for v in g["value"]] for u, g in groups.items()})
            )
    return folder


def test_loads_states_movies_and_users(tmp_path):
    folder = write_melu_fixture(tmp_path)
    data = load_ml1m_melu(tmp_path)  # the data root works as well as the folder
    assert set(data.states) == set(STATES)
    train = data.states["meta_training"]
    expected = json.loads((folder / "meta_training.json").read_text())
    assert len(train) == sum(len(v) for v in expected.values())
    assert train.frame["user"].dtype.kind == "i" and train.frame["item"].dtype.kind == "i"
    movie = data.items.record(1)
    assert movie["genres"] == ["Animation", "Comedy"] and movie["plot"] == "A plot about 1."
    assert is_missing(data.items.record(31)["plot"]) and data.items.record(31)["director"] == []
    assert data.users.record(2) == {
        "gender": "male",
        "age": "25-34",
        "occupation": "writer",
        "zip": "10002",
    }
    _support, query = data.task_files("warm_up")
    assert query.frame.groupby("user").size().eq(10).all()
    assert len(data.dataset().interactions) == len(train)


def test_missing_file_is_named(tmp_path):
    folder = write_melu_fixture(tmp_path)
    (folder / "warm_up_y.json").unlink()
    with pytest.raises(DataNotFoundError, match=r"warm_up_y.json"):
        load_ml1m_melu(folder)


def test_malformed_movie_line_is_named(tmp_path):
    folder = write_melu_fixture(tmp_path)
    path = folder / "original" / "movies_extrainfos.dat"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "3::Broken::1995\r\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(MalformedDataError, match=r"movies_extrainfos.dat, line 3: expected 11"):
        load_ml1m_melu(folder)


def test_mismatched_ratings_are_reported(tmp_path):
    folder = write_melu_fixture(tmp_path)
    ratings = json.loads((folder / "warm_up_y.json").read_text())
    first = next(iter(ratings))
    ratings[first] = ratings[first][:-1]
    (folder / "warm_up_y.json").write_text(json.dumps(ratings))
    with pytest.raises(MalformedDataError, match=f"user {first} has"):
        load_ml1m_melu(folder)


def test_invalid_json_names_line(tmp_path):
    folder = write_melu_fixture(tmp_path)
    (folder / "meta_training.json").write_text('{"1": [1, 2,\n ]}')
    with pytest.raises(MalformedDataError, match=r"meta_training.json, line 2"):
        load_ml1m_melu(folder)


@pytest.mark.slow
def test_real_counts(real_data):
    data = load_ml1m_melu(real_data)
    assert sum(len(s) for s in data.states.values()) == 1_000_209
    assert len(data.states["meta_training"]) == 585_366
    assert len(data.users) == 6040 and len(data.items) == 3881
    with_plot = data.items.frame["plot"].notna().mean()
    assert with_plot > 0.99


def write_books_melu(root: Path, seed: int = 3) -> Path:
    """A book dataset in MeLU's generator layout: ``warm_state`` trains, ISBN ids (text),
    item and user tables as CSV files."""
    folder = root / "books-melu"
    folder.mkdir()
    rng = random.Random(seed)
    isbns = [f"0{n:09d}X" if n % 3 == 0 else f"0{n:09d}" for n in range(1, 41)]
    pd.DataFrame(
        {
            "isbn": isbns,
            "title": [f"Book {n} about {'gardens' if n % 2 else 'ships'}" for n in range(40)],
            "author": [f"Author {n % 7}" for n in range(40)],
            "year": [1990 + n % 20 for n in range(40)],
        }
    ).to_csv(folder / "books.csv", index=False)
    pd.DataFrame({"user_id": range(1, 31), "country": ["usa", "canada", "spain"] * 10}).to_csv(
        folder / "users.csv", index=False
    )
    user = 1
    for state in ("warm_state", "user_cold_state", "item_cold_state"):
        pool = isbns[:30] if state != "item_cold_state" else isbns[30:]
        books, ratings = {}, {}
        for _ in range(10 if state == "warm_state" else 5):
            n = rng.choice([5, 13, 15])
            books[str(user if state != "item_cold_state" else rng.randint(1, 10))] = rng.sample(
                pool, min(n, len(pool))
            )
            ratings[str(user if state != "item_cold_state" else list(books)[-1])] = [
                rng.randint(1, 10) for _ in books[list(books)[-1]]
            ]
            user += 1
        (folder / f"{state}.json").write_text(json.dumps(books))
        (folder / f"{state}_y.json").write_text(json.dumps(ratings))
    return folder


def test_load_melu_reads_any_dataset_in_the_format(tmp_path):
    folder = write_books_melu(tmp_path)
    with pytest.raises(SchemaError, match="no item id column among \\['isbn'"):
        load_melu(folder, items=folder / "books.csv")
    data = load_melu(
        folder, items=folder / "books.csv", users=folder / "users.csv", item_col="isbn"
    )
    assert data.train_state == "warm_state" and data.name == "books-melu"
    assert data.test_states == {"user_cold_state": NEW_USERS, "item_cold_state": NEW_ITEMS}
    train = data.states["warm_state"]
    assert train.frame["item"].map(type).eq(str).all()  # ISBNs stay text: "0000000003X"
    assert set(train.frame["item"]) <= set(data.items.ids)
    assert data.items.fields["title"] == "text" and data.items.fields["year"] == "numeric"
    assert data.users.record(2)["country"] == "canada"
    # the MeLU protocol runs on it, tasks rebuilt by MeLU's rule (the folder has no task files)
    with pytest.raises(DataNotFoundError, match="tasks='regenerate'"):
        melu_split(data)
    split = melu_split(data, tasks="regenerate")
    assert set(split.segments) == {NEW_USERS, NEW_ITEMS}
    assert split.segments[NEW_ITEMS].query.frame.groupby("user").size().eq(10).all()
    catalogue = melu_catalogue_split(data)
    assert set(catalogue.new_items) == set(data.states["item_cold_state"].frame["item"])


def test_load_melu_reads_ml1m_as_load_ml1m_melu_does(tmp_path):
    folder = write_melu_fixture(tmp_path)
    generic, specific = load_melu(folder), load_ml1m_melu(folder)
    assert generic.train_state == specific.train_state == "meta_training"
    assert generic.test_states == specific.test_states
    for state in STATES:
        pd.testing.assert_frame_equal(generic.states[state].frame, specific.states[state].frame)
    assert generic.items.record(1) == specific.items.record(1)


def test_load_melu_explains_what_it_needs(tmp_path):
    folder = write_books_melu(tmp_path)
    (folder / "warm_state.json").rename(folder / "train_part.json")
    (folder / "warm_state_y.json").rename(folder / "train_part_y.json")
    with pytest.raises(DataNotFoundError, match="pass train_state="):
        load_melu(folder, items=folder / "books.csv", item_col="isbn")
    data = load_melu(folder, items=folder / "books.csv", train_state="train_part", item_col="isbn")
    assert len(data.dataset().interactions) == len(data.states["train_part"])
    with pytest.raises(ValueError, match="more than one state"):
        twice = {"user_cold_state": NEW_USERS, "item_cold_state": NEW_USERS}
        load_melu(folder, train_state="train_part", test_states=twice)
    with pytest.raises(SchemaError, match="no column 'book'"):
        load_melu(folder, items=folder / "books.csv", train_state="train_part", item_col="book")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="holds no MeLU state"):
        load_melu(empty)
