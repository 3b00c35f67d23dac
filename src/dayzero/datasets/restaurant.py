"""UCI Restaurant & consumer data (Vargas-Govea et al. 2011): diners, restaurants, 0-2 ratings.

The original files mark missing values with ``?``; they are read as missing. Users are identified
as in the source (``"U1077"``), restaurants by their integer ``placeID``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dayzero.core.schema import Dataset, Entities, FieldKind, Interactions
from dayzero.datasets._demo import dataset_dir_or_demo
from dayzero.datasets._files import MalformedDataError, require_file
from dayzero.datasets._read import (
    check_complete,
    grouped_lists,
    header_line_of,
    read_csv,
    to_boolean,
    to_number,
)

FOLDER = "restaurant-uci"
FILES = (
    "rating_final.csv",
    "userprofile.csv",
    "usercuisine.csv",
    "userpayment.csv",
    "geoplaces2.csv",
    "chefmozcuisine.csv",
    "chefmozaccepts.csv",
    "chefmozparking.csv",
)
RATING_COLUMNS = ("rating", "food_rating", "service_rating")
MISSING = ["?"]
_LIST_FIELDS = ("cuisines", "payments", "parking")
_FIX = "restore the file from the UCI 'Restaurant & consumer data' archive"

USER_FIELDS: dict[str, FieldKind] = {
    "smoker": "boolean",
    "drink_level": "categorical",
    "dress_preference": "categorical",
    "ambience": "categorical",
    "transport": "categorical",
    "marital_status": "categorical",
    "hijos": "categorical",
    "birth_year": "numeric",
    "interest": "categorical",
    "personality": "categorical",
    "religion": "categorical",
    "activity": "categorical",
    "color": "categorical",
    "weight": "numeric",
    "budget": "categorical",
    "height": "numeric",
    "cuisines": "multi",
    "payments": "multi",
}
ITEM_FIELDS: dict[str, FieldKind] = {
    "name": "text",
    "address": "text",
    "city": "categorical",
    "state": "categorical",
    "country": "categorical",
    "latitude": "numeric",
    "longitude": "numeric",
    "alcohol": "categorical",
    "smoking_area": "categorical",
    "dress_code": "categorical",
    "accessibility": "categorical",
    "price": "categorical",
    "Rambience": "categorical",
    "franchise": "boolean",
    "area": "categorical",
    "other_services": "categorical",
    "cuisines": "multi",
    "payments": "multi",
    "parking": "multi",
}


def read_restaurant_ratings(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """All three ratings per pair: ``user, item, rating, food_rating, service_rating``.

    Each rating is an int in 0-2. ``path`` follows the rule of :func:`load_restaurant`.
    """
    directory = dataset_dir_or_demo(FOLDER, path)
    return _read_ratings(require_file(directory, "rating_final.csv"))


def load_restaurant(path: str | os.PathLike | None = None, value: str = "rating") -> Dataset:
    """Load the restaurant data as a :class:`~dayzero.core.schema.Dataset`.

    Parameters
    ----------
    path
        The ``restaurant-uci`` folder or the data root holding it. The rule: explicit ``path`` >
        ``$DAYZERO_DATA/restaurant-uci`` > (only when ``DAYZERO_DATA`` is unset) the copy shipped
        in ``dayzero/demo_data`` (CC BY 4.0).
    value
        Which rating becomes the interaction ``value``: ``"rating"`` (overall, default),
        ``"food_rating"`` or ``"service_rating"``. All three, side by side, come from
        :func:`read_restaurant_ratings`.

    Returns
    -------
    Dataset
        1,161 interactions (no timestamps in this data), user entities for every diner (profile
        fields from ``userprofile.csv`` -- missing for the three raters without a profile -- plus
        ``cuisines`` and ``payments`` lists), item entities for the 130 restaurants of
        ``geoplaces2.csv`` plus ``cuisines``, ``payments`` and ``parking`` lists.

    Raises
    ------
    DataNotFoundError
        The folder or one of its eight CSV files is missing.
    MalformedDataError
        A file cannot be parsed, a column is missing or a value has the wrong type (names the
        file and line).
    """
    if value not in RATING_COLUMNS:
        raise ValueError(f"value must be one of {RATING_COLUMNS}, not {value!r}")
    directory = dataset_dir_or_demo(FOLDER, path)
    files = {name: require_file(directory, name) for name in FILES}
    ratings = _read_ratings(files["rating_final.csv"])
    interactions = Interactions.from_frame(ratings, value=value)
    users = _read_users(files, ratings["user"])
    items = _read_items(files)
    return Dataset(interactions, users, items, name="restaurant-uci")


def _read_ratings(file: Path) -> pd.DataFrame:
    frame = read_csv(file, columns=["userID", "placeID", *RATING_COLUMNS], dtype=str, fix=_FIX)
    line_of = header_line_of(file)
    check_complete(frame, ["userID"], file, _FIX, line_of)
    out = pd.DataFrame({"user": frame["userID"].str.strip()})
    out["item"] = to_number(frame, "placeID", file, _FIX, line_of, integer=True)
    for column in RATING_COLUMNS:
        out[column] = to_number(frame, column, file, _FIX, line_of, integer=True)
        outside = ~out[column].between(0, 2).to_numpy()
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise MalformedDataError(
                file, line_of(row), f"{column} is {out[column].iloc[row]}, outside 0-2", _FIX
            )
    return out


def _lists(file: Path, id_column: str, value_column: str, integer_ids: bool) -> pd.Series:
    frame = read_csv(
        file, columns=[id_column, value_column], dtype=str, na_values=MISSING, fix=_FIX
    )
    line_of = header_line_of(file)
    check_complete(frame, [id_column], file, _FIX, line_of)
    keys = (
        to_number(frame, id_column, file, _FIX, line_of, integer=True)
        if integer_ids
        else frame[id_column].str.strip()
    )
    return grouped_lists(keys, frame[value_column].str.strip())


def _with_lists(frame: pd.DataFrame, lists: dict[str, pd.Series]) -> pd.DataFrame:
    for column, series in lists.items():
        found = series.reindex(frame.index)
        frame[column] = [v if isinstance(v, list) else [] for v in found]
    return frame


def _typed_table(
    frame: pd.DataFrame,
    id_column: str,
    integer_ids: bool,
    fields: dict[str, FieldKind],
    file: Path,
    line_of,
) -> pd.DataFrame:
    """``frame`` indexed by its ids (integers, or stripped text) with its numeric and boolean
    ``fields`` parsed; a field missing from the header is an error."""
    missing = [c for c in fields if c not in frame.columns and c not in _LIST_FIELDS]
    if missing:
        raise MalformedDataError(file, 1, f"header lacks columns {missing}", _FIX)
    if integer_ids:
        frame[id_column] = to_number(frame, id_column, file, _FIX, line_of, integer=True)
    else:
        frame[id_column] = frame[id_column].str.strip()
    for column, kind in fields.items():
        if kind == "numeric":
            frame[column] = to_number(frame, column, file, _FIX, line_of, allow_missing=True)
        elif kind == "boolean":
            frame[column] = to_boolean(frame, column, file, _FIX, line_of)
    return frame.set_index(id_column)


def _read_users(files: dict[str, Path], rating_users: pd.Series) -> Entities:
    file = files["userprofile.csv"]
    profile = read_csv(file, columns=["userID"], dtype=str, na_values=MISSING, fix=_FIX)
    line_of = header_line_of(file)
    check_complete(profile, ["userID"], file, _FIX, line_of)
    profile = _typed_table(profile, "userID", False, USER_FIELDS, file, line_of)
    cuisines = _lists(files["usercuisine.csv"], "userID", "Rcuisine", integer_ids=False)
    payments = _lists(files["userpayment.csv"], "userID", "Upayment", integer_ids=False)
    # Three raters have no profile row; they still get an entity (lists only) so every user in
    # the ratings has one.
    ids = pd.unique(
        pd.concat(
            [
                profile.index.to_series(),
                rating_users,
                cuisines.index.to_series(),
                payments.index.to_series(),
            ]
        )
    )
    users = _with_lists(profile.reindex(ids), {"cuisines": cuisines, "payments": payments})
    users.index.name = "user"
    return Entities(users, dict(USER_FIELDS), kind="user")


def _read_items(files: dict[str, Path]) -> Entities:
    file = files["geoplaces2.csv"]
    # geoplaces2.csv is Latin-1 in the UCI archive (accented Spanish names).
    places = read_csv(
        file, columns=["placeID"], dtype=str, na_values=MISSING, encoding="latin-1", fix=_FIX
    )
    line_of = header_line_of(file, encoding="latin-1")
    places = _typed_table(places, "placeID", True, ITEM_FIELDS, file, line_of)
    lists = {
        "cuisines": _lists(files["chefmozcuisine.csv"], "placeID", "Rcuisine", integer_ids=True),
        "payments": _lists(files["chefmozaccepts.csv"], "placeID", "Rpayment", integer_ids=True),
        "parking": _lists(files["chefmozparking.csv"], "placeID", "parking_lot", integer_ids=True),
    }
    items = _with_lists(places, lists)
    items.index.name = "item"
    return Entities(items, dict(ITEM_FIELDS), kind="item")
