"""MovieLens-1M as split by the MeLU protocol (``ml-1m-melu``).

The folder holds five *states* (``meta_training`` and four test states), each a pair of JSON files
mapping a user id to the movies rated and the ratings; the ``tasks/`` sub-folder holds the fixed
support/query task files every published number on this benchmark uses (see ANCHORS.md §1);
``original/`` holds movie metadata with OMDb plots and user demographics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.core.split import NEW_BOTH, NEW_ITEMS, NEW_USERS, WARM
from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file

FOLDER = "ml-1m-melu"
TRAIN_STATE = "meta_training"
#: Test states in the order MeLU generated them, with dayzero's segment names.
TEST_STATES: dict[str, str] = {
    "warm_up": WARM,
    "user_cold_testing": NEW_USERS,
    "item_cold_testing": NEW_ITEMS,
    "user_and_item_cold_testing": NEW_BOTH,
}
STATES: tuple[str, ...] = (TRAIN_STATE, *TEST_STATES)

# MovieLens-1M README codes, so that profile text reads "age 25-34", "occupation writer".
AGE_GROUPS = {
    1: "under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56 or older",
}
OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
]  # fmt: skip
ITEM_FIELDS = {
    "title": "text",
    "year": "numeric",
    "rated": "categorical",
    "released": "text",
    "genres": "multi",
    "director": "multi",
    "writer": "multi",
    "actors": "multi",
    "plot": "text",
}
USER_FIELDS = {
    "gender": "categorical",
    "age": "categorical",
    "occupation": "categorical",
    "zip": "text",
}


@dataclass
class MeluData:
    """Everything in ``ml-1m-melu``: rating states, movie and user tables, the task folder."""

    states: dict[str, Interactions]
    users: Entities
    items: Entities
    root: Path

    def dataset(self, state: str = TRAIN_STATE) -> Dataset:
        """One state's ratings with the full user and movie tables."""
        return Dataset(self.states[state], self.users, self.items, name=f"{FOLDER}/{state}")

    def task_files(self, state: str) -> tuple[Interactions, Interactions]:
        """``(support, query)`` of ``state`` read from ``tasks/<state>/``, in file order."""
        if state not in STATES:
            raise KeyError(f"unknown state {state!r}; choose one of {STATES}")
        folder = self.root / "tasks" / state
        support = _read_state_pair(folder, "support_u_movies")
        query = _read_state_pair(folder, "query_u_movies")
        return support, query


def load_ml1m_melu(path: str | os.PathLike | None = None) -> MeluData:
    """Load ``ml-1m-melu``: five rating states, movie metadata (with plots) and demographics.

    Parameters
    ----------
    path
        The ``ml-1m-melu`` folder or the data root holding it; default ``$DAYZERO_DATA``.

    Returns
    -------
    MeluData
        ``states`` maps each state to Interactions in file order (user ids and movie ids are
        ints); ``items`` has title, year, rated, released, genres, director, writer, actors,
        plot; ``users`` has gender, age group, occupation, zip code.
    """
    root = dataset_dir(FOLDER, path)
    states = {state: _read_state_pair(root, state) for state in STATES}
    return MeluData(states, _read_users(root), _read_movies(root), root)


def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MalformedDataError(
            file, exc.lineno, f"invalid JSON ({exc.msg})", "restore the file"
        ) from exc
    if not isinstance(data, dict):
        raise MalformedDataError(
            file, 1, "expected a JSON object user id -> list", "restore the file"
        )
    return data


def _read_state_pair(folder: Path, stem: str) -> Interactions:
    """``<stem>.json`` (user -> movies) and ``<stem>_y.json`` (user -> ratings) as Interactions."""
    ids_file, y_file = require_file(folder, f"{stem}.json"), require_file(folder, f"{stem}_y.json")
    movies, ratings = _read_json(ids_file), _read_json(y_file)
    if movies.keys() != ratings.keys():
        diff = sorted(set(movies) ^ set(ratings), key=str)[:5]
        raise MalformedDataError(
            y_file, None, f"users differ from {ids_file.name} (e.g. {diff})", "restore both files"
        )
    users, items, values = [], [], []
    for user, user_movies in movies.items():
        user_ratings = ratings[user]
        if len(user_movies) != len(user_ratings):
            raise MalformedDataError(
                y_file,
                None,
                f"user {user} has {len(user_movies)} movies but {len(user_ratings)} ratings",
                "restore both files from the same source",
            )
        users.extend([int(user)] * len(user_movies))
        items.extend(int(m) for m in user_movies)
        values.extend(float(r) for r in user_ratings)
    return Interactions(pd.DataFrame({"user": users, "item": items, "value": values}))


def _split_list(text: str) -> list[str]:
    return [] if text in ("N/A", "") else [p.strip() for p in text.split(",") if p.strip()]


def _read_movies(root: Path) -> Entities:
    file = require_file(root / "original", "movies_extrainfos.dat")
    rows = []
    with file.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            parts = line.rstrip("\r\n").split("::")
            if len(parts) != 11:
                raise MalformedDataError(
                    file,
                    lineno,
                    f"expected 11 '::'-separated fields, found {len(parts)}",
                    "restore the file (id::title::year::rate::released::genre::director::"
                    "writer::actors::plot::poster)",
                )
            movie_id, title, year, rated, released, genre, director, writer, actors, plot, _ = parts
            try:
                movie = int(movie_id)
            except ValueError as exc:
                raise MalformedDataError(
                    file, lineno, f"movie id {movie_id!r} is not an integer", "restore the file"
                ) from exc
            rows.append(
                {
                    "movie_id": movie,
                    "title": title,
                    "year": int(year) if year.isdigit() else None,
                    "rated": None if rated == "N/A" else rated,
                    "released": None if released == "N/A" else released,
                    "genres": _split_list(genre),
                    "director": _split_list(director),
                    "writer": _split_list(writer),
                    "actors": _split_list(actors),
                    "plot": None if plot == "N/A" else plot,
                }
            )
    return Entities.from_frame(pd.DataFrame(rows), "movie_id", ITEM_FIELDS, kind="item")


def _read_users(root: Path) -> Entities:
    file = require_file(root / "original", "users.dat")
    rows: list[dict[str, Hashable]] = []
    with file.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            parts = line.rstrip("\r\n").split("::")
            try:
                user, gender, age, occupation, zipcode = parts
                age_group, job = AGE_GROUPS[int(age)], OCCUPATIONS[int(occupation)]
            except (ValueError, KeyError, IndexError) as exc:
                raise MalformedDataError(
                    file,
                    lineno,
                    f"cannot parse {line.strip()!r} ({exc})",
                    "each line must be UserID::Gender::Age::Occupation::Zip-code with "
                    "MovieLens-1M codes",
                ) from exc
            rows.append(
                {
                    "user_id": int(user),
                    "gender": {"F": "female", "M": "male"}.get(gender, gender),
                    "age": age_group,
                    "occupation": job,
                    "zip": zipcode,
                }
            )
    return Entities.from_frame(pd.DataFrame(rows), "user_id", USER_FIELDS, kind="user")
