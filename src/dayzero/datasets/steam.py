"""Steam: McAuley's game metadata and review verdicts, the playtime subset, and steam-200k.

Steam app ids are kept as ints. ``steam-games`` is one Python dict literal per line (``u'...'``
strings), so it is read with :func:`ast.literal_eval`, not as JSON.

Which review file: ``steam-reviews`` holds two cleaned copies of McAuley's "Australian users"
reviews. ``user_reviews_LFarahCometti.csv.gz`` keeps every one of the 59,161 reviews and the
posting date (``posted``, ``YYYY-MM-DD``; missing for 10,091 reviews whose original "Posted
<Month> <day>." had no year). ``user_reviews_KamusDroid.parquet`` keeps only 58,430 rows and
only the posting year, so it can give neither the README's counts nor timestamps. The loaders
read the CSV.
"""

from __future__ import annotations

import ast
import gzip
import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dayzero.core.schema import Dataset, Entities, FieldKind, Interactions
from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file
from dayzero.datasets._read import header_line_of, read_csv, to_boolean, to_number

GAMES_FOLDER, GAMES_FILE = "steam-games", "steam_games.json.gz"
REVIEWS_FOLDER = "steam-reviews"
REVIEWS_FILE = "user_reviews_LFarahCometti.csv.gz"
PLAYTIME_FILE = "users_items_subset_teamlider.parquet"
STEAM200K_FOLDER, STEAM200K_FILE = "steam-200k", "steam.zip"
STEAM200K_MEMBERS = {
    "items": "steam/item_info.dat",
    "users": "steam/user_info.dat",
    "purchase": "steam/game_purchase.dat",
    "play": "steam/game_play.dat",
}

GAME_FIELDS: dict[str, FieldKind] = {
    "title": "text",
    "tags": "multi",
    "genres": "multi",
    "specs": "multi",
    "developer": "categorical",
    "publisher": "categorical",
    "release_date": "numeric",
    "price": "numeric",
    "early_access": "boolean",
}
_APP_IN_URL = re.compile(r"/app/(\d+)")
_PRICE_IN_TEXT = re.compile(r"\$\s*(\d+(?:\.\d+)?)")
_FIX_GAMES = "restore steam_games.json.gz from McAuley's Steam data (one dict literal per line)"
_FIX_REVIEWS = f"restore {REVIEWS_FILE} (columns user_id, item_id, posted, recommend, ...)"
_FIX_200K = "restore steam.zip (Kaggle steam-video-games as split by A. Fortes)"


def read_steam_games(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The raw game records, one row per line of ``steam_games.json.gz`` (32,135), keys as columns.

    Raises :class:`MalformedDataError` naming the line that is not a Python dict literal.
    """
    file = require_file(dataset_dir(GAMES_FOLDER, path), GAMES_FILE)
    records = []
    with gzip.open(file, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = ast.literal_eval(line)
            except (ValueError, SyntaxError) as exc:
                raise MalformedDataError(
                    file,
                    number,
                    f"not a Python dict literal ({exc.__class__.__name__})",
                    _FIX_GAMES,
                ) from exc
            if not isinstance(record, dict):
                raise MalformedDataError(file, number, "line is not a dict", _FIX_GAMES)
            records.append(record)
    return pd.DataFrame.from_records(records)


def _price(value: object) -> float:
    """Numbers as given; ``"Free..."`` / ``"Play for Free!"`` -> 0.0; ``"Starting at $449.00"``
    -> 449.0; other text (``"Install Now"``) and missing -> NaN."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if "free" in value.lower():
            return 0.0
        match = _PRICE_IN_TEXT.search(value)
        if match:
            return float(match.group(1))
    return float("nan")


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def load_steam_games(path: str | os.PathLike | None = None) -> Entities:
    """Load Steam game metadata as item :class:`~dayzero.core.schema.Entities` indexed by app id.

    Parameters
    ----------
    path
        The ``steam-games`` folder or the data root holding it.

    Returns
    -------
    Entities
        32,132 games with distinct app ids. The file's 32,135 lines hold one record with no id
        at all (only a price and the store's front-page URL: dropped), one record without
        ``id`` whose store URL gives app 200260, which is already listed, and a second copy of
        app 612880; for repeated ids the first record is kept. Fields:
        ``title`` (``app_name`` where ``title`` is missing), ``tags``, ``genres``, ``specs``
        (lists, empty when absent), ``developer``, ``publisher``, ``release_date`` (datetime;
        other dated forms like "Dec 2017" or "2018" parse to the first day they name; NaT for
        "Coming Soon", "Q1 2018" and the like; the raw text is kept in
        ``release_date_text``), ``price`` (float; free -> 0.0, other text -> NaN; the raw value
        in ``price_text``) and ``early_access``. Other keys (``url``, ``sentiment``,
        ``metascore``, ...) are kept as untyped columns.
    """
    raw = read_steam_games(path)
    ids = pd.to_numeric(raw.get("id"), errors="coerce").astype("float64")
    from_url = pd.to_numeric(raw["url"].astype("string").str.extract(_APP_IN_URL)[0])
    from_url = from_url.astype("float64")
    ids = ids.fillna(from_url)
    games = raw.assign(app_id=ids)[ids.notna()]
    games = games.drop_duplicates("app_id", keep="first").copy()
    games["app_id"] = games["app_id"].astype("int64")
    title = games["title"] if "title" in games else pd.Series(np.nan, index=games.index)
    games["title"] = title.fillna(games.get("app_name"))
    for column in ("tags", "genres", "specs"):
        values = games[column] if column in games else [None] * len(games)
        games[column] = [_as_list(v) for v in values]
    games["release_date_text"] = games["release_date"]
    text = games["release_date"].astype("string")
    exact = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    # Other forms ("Dec 2017", "Nov 14, 2016", "2018") only where a plausible year is present:
    # without one, "mixed" parsing invents year 1 for "Jul 14".
    has_year = text.str.contains(r"\b(?:19[7-9]\d|20[0-4]\d)\b", regex=True).fillna(False)
    loose = pd.to_datetime(text[exact.isna() & has_year], format="mixed", errors="coerce")
    games["release_date"] = exact.fillna(loose).astype("datetime64[ns]")
    games["price_text"] = games["price"]
    games["price"] = [_price(v) for v in games["price"]]
    games["early_access"] = games["early_access"].astype("boolean")
    for column in ("developer", "publisher"):
        if column not in games:
            games[column] = np.nan
    frame = games.drop(columns=["id"], errors="ignore").set_index("app_id")
    frame.index.name = "item"
    return Entities(frame, dict(GAME_FIELDS), kind="item")


def _games_for(path: str | os.PathLike | None, directory: Path, games_path) -> Entities:
    """Steam games found next to the reviews folder, or at ``games_path`` / ``$DAYZERO_DATA``."""
    if games_path is not None:
        return load_steam_games(games_path)
    if path is not None:
        return load_steam_games(directory.parent)
    return load_steam_games()


def read_steam_reviews(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """All 59,161 review rows: ``user`` (str), ``item`` (app id), ``recommend`` (bool),
    ``timestamp`` (datetime, NaT where the date lacked a year), ``sentiment`` (0/1/2, a label
    derived from the removed review text by the people who published this copy), ``helpful``,
    ``funny``."""
    file = require_file(dataset_dir(REVIEWS_FOLDER, path), REVIEWS_FILE)
    raw = read_csv(
        file,
        columns=["user_id", "item_id", "posted", "recommend", "sentiment_analysis"],
        dtype=str,
        compression="gzip",
        fix=_FIX_REVIEWS,
    )
    line_of = header_line_of(file, opener=gzip.open)
    posted = pd.to_datetime(raw["posted"], format="%Y-%m-%d", errors="coerce")
    bad = (posted.isna() & raw["posted"].notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise MalformedDataError(
            file,
            line_of(row),
            f"posted is {raw['posted'].iloc[row]!r}, not YYYY-MM-DD",
            _FIX_REVIEWS,
        )
    return pd.DataFrame(
        {
            "user": raw["user_id"].to_numpy(),
            "item": to_number(raw, "item_id", file, _FIX_REVIEWS, line_of, integer=True),
            "recommend": to_boolean(raw, "recommend", file, _FIX_REVIEWS, line_of),
            "timestamp": posted.astype("datetime64[ns]"),
            "sentiment": to_number(
                raw, "sentiment_analysis", file, _FIX_REVIEWS, line_of, integer=True
            ),
            "helpful": raw.get("helpful"),
            "funny": raw.get("funny"),
        }
    )


def load_steam_reviews(
    path: str | os.PathLike | None = None,
    games_path: str | os.PathLike | None = None,
    with_games: bool = True,
) -> Dataset:
    """Load Steam review verdicts as a :class:`~dayzero.core.schema.Dataset`.

    Parameters
    ----------
    path
        The ``steam-reviews`` folder or the data root holding it.
    games_path
        Where ``steam-games`` is; default: next to the reviews folder (or ``$DAYZERO_DATA``).
    with_games
        Attach game metadata as item entities (``False`` skips reading ``steam-games``).

    Returns
    -------
    Dataset
        59,161 interactions (``user`` = Steam user id string, ``item`` = app id, ``value`` = 1.0
        recommend / 0.0 not, ``timestamp`` = posting date, NaT for 10,091 reviews; see the module
        notes for why this file). 25,467 users and 3,682 games; item entities are the games
        found in ``steam-games`` (about 87 % of the games, carrying 91 % of the reviews). The same
        (user, game) pair appears twice for 919 rows, as in the source. No user entities.
    """
    directory = dataset_dir(REVIEWS_FOLDER, path)
    reviews = read_steam_reviews(directory)
    inter = pd.DataFrame(
        {
            "user": reviews["user"],
            "item": reviews["item"],
            "value": reviews["recommend"].astype("float64"),
            "timestamp": reviews["timestamp"],
        }
    )
    items = None
    if with_games:
        items = _games_for(path, directory, games_path).subset(pd.unique(reviews["item"]))
    return Dataset(Interactions(inter), None, items, name="steam-reviews")


def load_steam_playtime(
    path: str | os.PathLike | None = None,
    games_path: str | os.PathLike | None = None,
    with_games: bool = True,
) -> Dataset:
    """Load the playtime subset (``users_items_subset_teamlider.parquet``, 88,176 rows).

    Returns
    -------
    Dataset
        ``user`` = Steam user id string, ``item`` = app id, ``value`` = ``playtime_forever``
        (minutes, as in McAuley's data), no timestamp. The subset is thin: 87,496 users, most
        with a single row, so it suits item statistics more than user histories. Item
        entities: the games found in ``steam-games`` (``with_games``); the source's
        ``item_name`` fills in for the others under ``title``.
    """
    directory = dataset_dir(REVIEWS_FOLDER, path)
    file = require_file(directory, PLAYTIME_FILE)
    try:
        raw = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MalformedDataError(
            file, None, f"cannot read Parquet ({exc})", f"restore {PLAYTIME_FILE}"
        ) from exc
    missing = [c for c in ("user_id", "item_id", "item_name", "playtime_forever") if c not in raw]
    if missing:
        raise MalformedDataError(file, None, f"columns {missing} are missing", "restore the file")
    bad = raw[["user_id", "item_id", "playtime_forever"]].isna().any(axis=1).to_numpy()
    if bad.any():
        raise MalformedDataError(
            file,
            None,
            f"row {int(np.flatnonzero(bad)[0])} lacks a user, item or playtime",
            f"restore {PLAYTIME_FILE}",
        )
    inter = pd.DataFrame(
        {
            "user": raw["user_id"].astype(str).to_numpy(),
            "item": raw["item_id"].astype("int64").to_numpy(),
            "value": raw["playtime_forever"].astype("float64").to_numpy(),
        }
    )
    names = raw.drop_duplicates("item_id").set_index("item_id")["item_name"]
    names.index = names.index.astype("int64")
    if with_games:
        games = _games_for(path, directory, games_path)
        known = games.subset(names.index).frame
        extra = pd.DataFrame({"title": names[~names.index.isin(known.index)]})
        for column, kind in GAME_FIELDS.items():
            if column not in extra:
                extra[column] = [[] for _ in range(len(extra))] if kind == "multi" else np.nan
        frame = pd.concat([known, extra])
    else:
        frame = pd.DataFrame({"title": names})
    frame.index.name = "item"
    fields = dict(GAME_FIELDS) if with_games else {"title": "text"}
    return Dataset(Interactions(inter), None, Entities(frame, fields), name="steam-playtime")


def _zip_member(file: Path, archive: zipfile.ZipFile, member: str) -> io.TextIOWrapper:
    try:
        return io.TextIOWrapper(archive.open(member), encoding="utf-8")
    except KeyError as exc:
        raise MalformedDataError(file, None, f"archive lacks {member}", _FIX_200K) from exc


def _read_member(file: Path, member: str, columns: list[str]) -> pd.DataFrame:
    with zipfile.ZipFile(file) as archive, _zip_member(file, archive, member) as handle:
        text = handle.read()
    where = Path(f"{file}!{member}")
    frame = read_csv(io.StringIO(text), sep="\t", dtype=str, fix=_FIX_200K)
    if list(frame.columns)[: len(columns)] != columns:
        raise MalformedDataError(
            where, 1, f"header is {list(frame.columns)}, expected {columns}", _FIX_200K
        )
    frame.attrs["where"], frame.attrs["text"] = where, text
    return frame


def _member_line_of(frame: pd.DataFrame):
    lines = frame.attrs["text"].splitlines()
    data_lines = [n for n, line in enumerate(lines, start=1) if line.strip()][1:]
    return lambda row: data_lines[row] if row < len(data_lines) else None


def load_steam_200k(path: str | os.PathLike | None = None, behaviour: str = "purchase") -> Dataset:
    """Load steam-200k (Kaggle "steam-video-games", ids re-numbered by A. Fortes).

    Parameters
    ----------
    path
        The ``steam-200k`` folder or the data root holding it (reads ``steam.zip`` directly).
    behaviour
        ``"purchase"``: 129,511 rows, ``value`` 1.0. ``"play"``: 70,489 rows, ``value`` = hours
        played. (The archive's README says 129,512 and 70,490: it counts the header line.)

    Returns
    -------
    Dataset
        ``user`` and ``item`` are the archive's ints (1-based). Item entities: all 5,155 games with
        ``name`` (text; no other metadata; see :func:`match_steam_200k_to_games`). User entities:
        12,393 users with the original ``steam_user_id`` (untyped). No timestamps.
    """
    if behaviour not in ("purchase", "play"):
        raise ValueError(f"behaviour must be 'purchase' or 'play', not {behaviour!r}")
    file = require_file(dataset_dir(STEAM200K_FOLDER, path), STEAM200K_FILE)
    value_column = "Purchase" if behaviour == "purchase" else "Hours"
    raw = _read_member(file, STEAM200K_MEMBERS[behaviour], ["User_ID", "Game_ID", value_column])
    where, line_of = raw.attrs["where"], _member_line_of(raw)
    inter = pd.DataFrame(
        {
            "user": to_number(raw, "User_ID", where, _FIX_200K, line_of, integer=True),
            "item": to_number(raw, "Game_ID", where, _FIX_200K, line_of, integer=True),
            "value": to_number(raw, value_column, where, _FIX_200K, line_of),
        }
    )
    raw = _read_member(file, STEAM200K_MEMBERS["items"], ["Game_ID", "Game Name"])
    where, line_of = raw.attrs["where"], _member_line_of(raw)
    items = pd.DataFrame(
        {"name": raw["Game Name"].to_numpy()},
        index=pd.Index(
            to_number(raw, "Game_ID", where, _FIX_200K, line_of, integer=True).to_numpy(),
            name="item",
        ),
    )
    raw = _read_member(file, STEAM200K_MEMBERS["users"], ["New_ID", "Real_ID"])
    where, line_of = raw.attrs["where"], _member_line_of(raw)
    users = pd.DataFrame(
        {"steam_user_id": to_number(raw, "Real_ID", where, _FIX_200K, line_of, integer=True).array},
        index=pd.Index(
            to_number(raw, "New_ID", where, _FIX_200K, line_of, integer=True).to_numpy(),
            name="user",
        ),
    )
    return Dataset(
        Interactions(inter),
        Entities(users, {}, kind="user"),
        Entities(items, {"name": "text"}, kind="item"),
        name=f"steam-200k-{behaviour}",
    )


def normalise_title(title: object) -> str:
    """Lower-case ASCII letters and digits separated by single spaces; ``&`` -> ``and``.

    ``"The Elder Scrolls V: Skyrim™"`` and ``"The Elder Scrolls V Skyrim"`` both become
    ``"the elder scrolls v skyrim"``. Missing -> ``""``.
    """
    if not isinstance(title, str):
        return ""
    # Strip trademark signs first: NFKD would turn "™" into the letters "TM".
    text = re.sub("[\u2122\u00ae\u00a9]", " ", title)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = text.lower().replace("&", " and ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


@dataclass
class TitleMatch:
    """Result of joining steam-200k game names to steam-games titles.

    Attributes
    ----------
    mapping
        One row per steam-200k game: ``item`` (steam-200k id), ``name``, ``key`` (normalised
        name), ``app_id`` (matched Steam app id, ``<NA>`` if none) and ``candidates`` (how many
        steam-games entries share that normalised title; the lowest app id is taken).
    rate
        Share of steam-200k games that found a match.
    interaction_rate
        Share of interactions whose game found a match (when interactions were given).
    """

    mapping: pd.DataFrame
    rate: float
    interaction_rate: float | None = None


def match_steam_200k_to_games(steam200k: Dataset, games: Entities) -> TitleMatch:
    """Join steam-200k game names to steam-games app ids by normalised title.

    A name matches a game whose ``title`` or ``app_name`` normalises (:func:`normalise_title`)
    to the same key. Reports the share of games and of interactions that matched.
    """
    frame = games.frame
    keys = []
    for column in ("title", "app_name"):
        if column in frame:
            keys.append(
                pd.DataFrame(
                    {"key": frame[column].map(normalise_title), "app_id": frame.index.to_numpy()}
                )
            )
    lookup = pd.concat(keys).query("key != ''").drop_duplicates()
    grouped = lookup.groupby("key")["app_id"].agg(["min", "nunique"])
    names = steam200k.items.frame["name"]
    mapping = pd.DataFrame({"item": names.index.to_numpy(), "name": names.to_numpy()})
    mapping["key"] = mapping["name"].map(normalise_title)
    found = grouped.reindex(mapping["key"])
    mapping["app_id"] = pd.array(found["min"].to_numpy(), dtype="Int64")
    mapping["candidates"] = found["nunique"].fillna(0).astype("int64").to_numpy()
    matched = mapping["app_id"].notna()
    rate = float(matched.mean()) if len(mapping) else 0.0
    inter_items = steam200k.interactions.frame["item"]
    matched_ids = set(mapping.loc[matched, "item"])
    interaction_rate = float(inter_items.isin(matched_ids).mean()) if len(inter_items) else None
    return TitleMatch(mapping, rate, interaction_rate)
