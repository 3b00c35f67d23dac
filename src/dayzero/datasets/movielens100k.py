"""MovieLens-100K from RecBole's atomic files (``ml-100k.inter``, ``.item``, ``.user``).

Atomic files are tab-separated with a typed header (``user_id:token	rating:float ...``); any
dataset in that form loads with :func:`dayzero.datasets.recbole.load_recbole`. This loader adds
what is particular to ml-100k: ids kept as the integers MovieLens uses, the year repairs and the
"unknown" markers.
"""

from __future__ import annotations

import os

import pandas as pd

from dayzero.core.schema import Dataset, Entities, FieldKind, Interactions
from dayzero.datasets._files import dataset_dir, require_file
from dayzero.datasets._read import header_line_of, to_number
from dayzero.datasets.recbole import read_atomic

FOLDER = "ml-100k"
FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
# RecBole's copy spells the one unknown movie's title and year "unkonwn" (item 267).
UNKNOWN_MARKERS = ["unkonwn", "unknown"]
_FIX = "use the RecBole atomic files of ml-100k (tab-separated, header 'name:type')"

ITEM_FIELDS: dict[str, FieldKind] = {
    "movie_title": "text",
    "release_year": "numeric",
    "genres": "multi",
}
USER_FIELDS: dict[str, FieldKind] = {
    "age": "numeric",
    "gender": "categorical",
    "occupation": "categorical",
    "zip_code": "categorical",
}


def _repair_year_in_title(raw: pd.DataFrame) -> pd.DataFrame:
    """Move a ``(YYYY)`` at the end of the title into ``release_year`` when the year is not a year.

    RecBole split the original title "Land Before Time III: The Time of the Great Giving (1995)
    (V)" (item 1412) at the last parenthesis, leaving ``"V"`` as its year.
    """
    year_ok = raw["release_year"].str.fullmatch(r"\d{4}") | raw["release_year"].isin(
        UNKNOWN_MARKERS
    )
    in_title = raw["movie_title"].str.extract(r"^(.*\S)\s+\((\d{4})\)$")
    fix = ~year_ok & in_title[1].notna()
    if fix.any():
        raw = raw.copy()
        raw.loc[fix, "movie_title"] = in_title.loc[fix, 0]
        raw.loc[fix, "release_year"] = in_title.loc[fix, 1]
    return raw


def load_ml100k(path: str | os.PathLike | None = None) -> Dataset:
    """Load MovieLens-100K as a :class:`~dayzero.core.schema.Dataset`.

    Parameters
    ----------
    path
        The ``ml-100k`` folder or the data root holding it; default ``$DAYZERO_DATA/ml-100k``.

    Returns
    -------
    Dataset
        100,000 ratings (``value`` 1-5, ``timestamp`` int64 Unix seconds), 943 users (``age``,
        ``gender``, ``occupation``, ``zip_code``) and 1,682 items (``movie_title`` without the
        year, ``release_year`` -- missing for the one unknown movie, item 267; taken from the
        title for item 1412, whose year RecBole's copy gives as ``"V"`` -- and ``genres`` as a
        list).
        User and item ids are ints.

    Raises
    ------
    DataNotFoundError
        The folder or one of the three atomic files is missing.
    MalformedDataError
        A header is not RecBole's ``name:type`` form, a row has the wrong number of fields or
        a value the wrong type; names the file and line.
    """
    directory = dataset_dir(FOLDER, path)
    inter_file, item_file, user_file = (require_file(directory, name) for name in FILES)

    raw = read_atomic(inter_file, ["user_id", "item_id", "rating", "timestamp"])
    line_of = header_line_of(inter_file)
    inter = pd.DataFrame(
        {
            "user": to_number(raw, "user_id", inter_file, _FIX, line_of, integer=True),
            "item": to_number(raw, "item_id", inter_file, _FIX, line_of, integer=True),
            "value": to_number(raw, "rating", inter_file, _FIX, line_of),
            "timestamp": to_number(raw, "timestamp", inter_file, _FIX, line_of, integer=True),
        }
    )

    raw = _repair_year_in_title(
        read_atomic(item_file, ["item_id", "movie_title", "release_year", "class"])
    )
    line_of = header_line_of(item_file)
    items = pd.DataFrame(
        {
            "movie_title": raw["movie_title"]
            .where(~raw["movie_title"].isin(UNKNOWN_MARKERS))
            .to_numpy(),
            "release_year": to_number(
                raw,
                "release_year",
                item_file,
                _FIX,
                line_of,
                integer=True,
                missing=UNKNOWN_MARKERS,
                allow_missing=True,
            ).array,
            "genres": [g.split() for g in raw["class"]],
        },
        index=pd.Index(
            to_number(raw, "item_id", item_file, _FIX, line_of, integer=True), name="item"
        ),
    )

    raw = read_atomic(user_file, ["user_id", "age", "gender", "occupation", "zip_code"])
    line_of = header_line_of(user_file)
    users = pd.DataFrame(
        {
            "age": to_number(raw, "age", user_file, _FIX, line_of, integer=True).to_numpy(),
            "gender": raw["gender"].to_numpy(),
            "occupation": raw["occupation"].to_numpy(),
            "zip_code": raw["zip_code"].to_numpy(),
        },
        index=pd.Index(
            to_number(raw, "user_id", user_file, _FIX, line_of, integer=True), name="user"
        ),
    )
    return Dataset(
        Interactions(inter),
        Entities(users, dict(USER_FIELDS), kind="user"),
        Entities(items, dict(ITEM_FIELDS), kind="item"),
        name="ml-100k",
    )
