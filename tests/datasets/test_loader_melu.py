from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dayzero.core.settings import DataNotFoundError
from dayzero.core.templates import is_missing
from dayzero.datasets._files import MalformedDataError
from dayzero.datasets.melu import STATES, load_ml1m_melu
from dayzero.evaluate.protocols.melu import make_meta_tasks

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
