"""MeLU state files for any dataset (:func:`load_melu`), and MovieLens-1M as MeLU split it
(``ml-1m-melu``, :func:`load_ml1m_melu`).

MeLU (and MAMO, MetaHIN's JSON exports and other code built on it) stores a cold-start split as
*states*: for each state ``<name>.json`` maps a user id to the items the user rated and
``<name>_y.json`` maps it to the ratings, in the same order. MeLU's published MovieLens files
name their states ``meta_training``, ``warm_up``, ``user_cold_testing``, ``item_cold_testing``
and ``user_and_item_cold_testing``; MeLU's generator code names them ``warm_state`` (training),
``user_cold_state``, ``item_cold_state`` and ``user_and_item_cold_state``. Both spellings are
recognised (:data:`SEGMENT_OF_STATE`); others are named by the caller.

The ``ml-1m-melu`` folder holds the five published states; its ``tasks/`` sub-folder holds the
fixed support/query task files every published number on this benchmark uses (see ANCHORS.md
§1); ``original/`` holds movie metadata with OMDb plots and user demographics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dayzero.core.schema import Dataset, Entities, Interactions, SchemaError
from dayzero.core.settings import DataNotFoundError
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
#: Every state name the loader knows, with its segment (None: the training state).
SEGMENT_OF_STATE: dict[str, str | None] = {
    TRAIN_STATE: None,
    **TEST_STATES,
    "warm_state": None,  # MeLU's generator trains on its warm state
    "user_cold_state": NEW_USERS,
    "item_cold_state": NEW_ITEMS,
    "user_and_item_cold_state": NEW_BOTH,
}
#: Training state names, the first one present wins.
TRAIN_STATE_NAMES: tuple[str, ...] = (TRAIN_STATE, "warm_state")

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
    users: Entities | None
    items: Entities | None
    root: Path
    #: The state models train on.
    train_state: str = TRAIN_STATE
    #: Test state -> segment (``warm``, ``new_users``, ``new_items``, ``new_users_items``).
    test_states: dict[str, str] = field(default_factory=lambda: dict(TEST_STATES))
    name: str = FOLDER

    def dataset(self, state: str | None = None) -> Dataset:
        """One state's ratings (default: the training state) with the full user and item tables."""
        state = self.train_state if state is None else state
        return Dataset(self.states[state], self.users, self.items, name=f"{self.name}/{state}")

    def task_files(self, state: str) -> tuple[Interactions, Interactions]:
        """``(support, query)`` of ``state`` read from ``tasks/<state>/``, in file order."""
        if state not in self.states:
            raise KeyError(f"unknown state {state!r}; choose one of {tuple(self.states)}")
        folder = self.root / "tasks" / state
        if not folder.is_dir():
            raise DataNotFoundError(
                f"{folder} not found: this copy has no fixed task files; pass "
                "tasks='regenerate' to melu_split to rebuild them with MeLU's rule"
            )
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
    return load_melu(dataset_dir(FOLDER, path), train_state=TRAIN_STATE, test_states=TEST_STATES)


def load_melu(
    path: str | os.PathLike,
    items: str | os.PathLike | pd.DataFrame | None = None,
    users: str | os.PathLike | pd.DataFrame | None = None,
    *,
    fields: Mapping[str, Any] | Literal["infer"] = "infer",
    train_state: str | None = None,
    test_states: Mapping[str, str] | None = None,
    item_col: str | None = None,
    user_col: str | None = None,
    name: str | None = None,
) -> MeluData:
    """Load MeLU-format state files of any dataset, with item and user tables from any file.

    Parameters
    ----------
    path
        The folder holding the ``<state>.json`` / ``<state>_y.json`` pairs (every pair found
        is loaded).
    items, users
        Item / user tables: a CSV / TSV / Parquet / JSON Lines file
        (:func:`dayzero.core.tables.read_table`) or a DataFrame, with an id column found by name
        (``item`` / ``item_id`` / ``id`` ..., or ``item_col`` / ``user_col``) and any fields.
        Without ``items``, a folder laid out like ``ml-1m-melu`` (``original/
        movies_extrainfos.dat`` and ``users.dat``) gives the MovieLens tables; otherwise the
        dataset has no item (user) table.
    fields
        ``"infer"`` guesses each field's kind; a mapping overrides some guesses, as in
        :meth:`dayzero.core.schema.Dataset.from_frames`.
    train_state
        The state models train on; default the first of :data:`TRAIN_STATE_NAMES` present.
    test_states
        Test state -> segment (``warm``, ``new_users``, ``new_items``, ``new_users_items``);
        default every present state :data:`SEGMENT_OF_STATE` knows.
    item_col, user_col
        The id column of the item / user table when it is not recognised by name.
    name
        The dataset's name; default the folder's name.

    Returns
    -------
    MeluData
        ``states`` maps every state found to Interactions in file order. Ids are integers when
        every id in the states and tables is one, strings otherwise.

    Raises
    ------
    DataNotFoundError
        The folder is missing or holds no state pair, or a named state is missing.
    MalformedDataError
        Invalid JSON, users that differ between the two files of a state, or a user whose
        lists differ in length: the message names the file and the fix.
    SchemaError
        An item or user table without a recognisable id column, or with repeated ids.

    Examples
    --------
    >>> data = load_melu("bookcrossing-melu", items="books.csv")  # doctest: +SKIP
    >>> split = melu_split(data, tasks="regenerate")  # doctest: +SKIP
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(
            f"MeLU state folder {root} not found; pass the folder that holds <state>.json "
            "and <state>_y.json"
        )
    stems = sorted(
        p.stem
        for p in root.glob("*.json")
        if not p.stem.endswith("_y") and (root / f"{p.stem}_y.json").is_file()
    )
    if not stems:
        raise DataNotFoundError(
            f"{root} holds no MeLU state (a pair <state>.json + <state>_y.json); point to the "
            "folder with the state files"
        )
    if train_state is None:
        train_state = next((s for s in TRAIN_STATE_NAMES if s in stems), None)
        if train_state is None:
            raise DataNotFoundError(
                f"{root} has no training state ({' or '.join(TRAIN_STATE_NAMES)}); found "
                f"{stems}: pass train_state= naming the one models train on"
            )
    if test_states is None:
        test_states = {
            s: SEGMENT_OF_STATE[s]
            for s in stems
            if SEGMENT_OF_STATE.get(s) is not None and s != train_state
        }
    segments = list(test_states.values())
    repeated = sorted({s for s in segments if segments.count(s) > 1})
    if repeated:
        raise ValueError(
            f"test_states give segment(s) {repeated} to more than one state: {dict(test_states)}; "
            "give each test state its own segment name"
        )
    for state in (train_state, *test_states):
        if state not in stems:
            raise DataNotFoundError(
                f"state {state!r} not found in {root}: expected {state}.json and "
                f"{state}_y.json (found {stems})"
            )
    order = [train_state, *(s for s in stems if s != train_state)]
    states = {s: _read_state_pair(root, s) for s in order}
    movielens = items is None and (root / "original" / "movies_extrainfos.dat").is_file()
    if movielens:
        item_table, user_table = _read_movies(root), _read_users(root)
    else:
        item_table, user_table = _entity_tables(
            states[train_state], items, users, fields, item_col, user_col
        )
    states = _common_id_types(states, item_table, user_table)
    return MeluData(
        states, user_table, item_table, root, train_state, dict(test_states), name or root.name
    )


def _entity_tables(
    train: Interactions,
    items: str | os.PathLike | pd.DataFrame | None,
    users: str | os.PathLike | pd.DataFrame | None,
    fields: Mapping[str, Any] | str,
    item_col: str | None,
    user_col: str | None,
) -> tuple[Entities | None, Entities | None]:
    """The item and user tables, built as :meth:`Dataset.from_frames` builds them (id column,
    field kinds, id types matched to the training state's)."""
    from dayzero.core.tables import read_table

    frames: dict[str, pd.DataFrame | None] = {}
    for role, table, rows, col, key in (
        ("items", items, "item", item_col, "item"),
        ("users", users, "user", user_col, "user"),
    ):
        if table is not None and not isinstance(table, pd.DataFrame):
            table = read_table(table, lists=True, rows=rows).frame
        if table is not None and col is not None:
            if col not in table.columns:
                raise SchemaError(
                    f"the {role} table has no column {col!r} (given as its id column); its "
                    f"columns are {[str(c) for c in table.columns]}"
                )
            table = table.rename(columns={col: key})
        frames[role] = table
    dataset = Dataset.from_frames(
        train.frame, frames["items"], frames["users"], fields,
        user_col="user", item_col="item", value_col="value",
    )  # fmt: skip
    return dataset.items, dataset.users


def _common_id_types(
    states: dict[str, Interactions], items: Entities | None, users: Entities | None
) -> dict[str, Interactions]:
    """States whose ids all have one type: strings when a table's ids or any state's ids are
    text, ints otherwise (``1`` and ``"1"`` would be two items)."""
    text = {}
    for col, table in (("item", items), ("user", users)):
        in_table = table is not None and np.asarray(table.ids).dtype.kind in "OUS"
        in_states = any(s.frame[col].dtype.kind in "OUS" for s in states.values())
        text[col] = in_table or in_states
    out = {}
    for state, inter in states.items():
        frame = inter.frame
        if any(text.values()):
            frame = frame.astype({col: str for col, is_text in text.items() if is_text})
        out[state] = Interactions(frame)
    return out


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
        users.extend([user] * len(user_movies))
        items.extend(user_movies)
        values.extend(float(r) for r in user_ratings)
    return Interactions(pd.DataFrame({"user": _ids(users), "item": _ids(items), "value": values}))


def _ids(values: list[Any]) -> list[Any]:
    """Ids as ints when every one is an integer (MeLU writes user keys as strings), else str."""
    if all(isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit()) for v in values):
        return [int(v) for v in values]
    return [str(v) for v in values]


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
