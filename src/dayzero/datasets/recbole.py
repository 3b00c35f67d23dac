"""RecBole atomic files of any dataset (``<name>.inter``, ``.item``, ``.user``).

RecBole's atomic files are tab-separated with a typed header, ``name:type``, each type one of
``token`` (an id or a category), ``token_seq`` (space-separated tokens), ``float`` and
``float_seq`` (see RecBole's "Atomic Files" documentation). :func:`load_recbole` reads any
dataset in that form as a :class:`~dayzero.core.schema.Dataset`: the ``.inter`` file gives the
interactions, the optional ``.item`` and ``.user`` files the item and user tables, with every
field's kind taken from its declared type (``float`` is numeric, ``token`` categorical,
``token_seq`` a list of tokens, or text when the column is named like text: ``title``,
``description`` ...). ``float_seq`` columns (pretrained vectors and the like) are left out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from dayzero.core.fields import TEXT_NAMES
from dayzero.core.schema import Dataset
from dayzero.core.settings import DataNotFoundError
from dayzero.datasets._files import MalformedDataError
from dayzero.datasets._read import QUOTE_NONE, header_line_of, read_csv, to_number

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
SUFFIXES = ("inter", "item", "user")
_HEADER = re.compile(r"^([A-Za-z_][\w]*):([a-z_]+)$")
_FIX = "use RecBole atomic files (tab-separated, header 'name:type', type one of " + (
    "token, token_seq, float, float_seq)"
)


def atomic_header(file: Path) -> dict[str, str]:
    """Column name -> declared type of a RecBole atomic file, from its first line."""
    with open(file, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    types: dict[str, str] = {}
    for position, cell in enumerate(header, start=1):
        match = _HEADER.match(cell)
        if not match or match.group(2) not in ATOMIC_TYPES:
            raise MalformedDataError(
                file, 1, f"header field {position} is {cell!r}, not 'name:type'", _FIX
            )
        types[match.group(1)] = match.group(2)
    return types


def read_atomic(file: Path, columns: list[str]) -> pd.DataFrame:
    """Read a RecBole atomic file as strings, with the ``:type`` suffixes stripped from the header.

    Parameters
    ----------
    file
        The atomic file.
    columns
        Column names (without type) that must be present.
    """
    names = list(atomic_header(file))
    missing = [c for c in columns if c not in names]
    if missing:
        raise MalformedDataError(file, 1, f"header lacks columns {missing} (has {names})", _FIX)
    return read_csv(
        file,
        sep="\t",
        header=0,
        names=names,
        dtype=str,
        quoting=QUOTE_NONE,
        keep_default_na=False,
        fix=_FIX,
    )


def _typed_frame(file: Path, id_columns: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The file's columns converted by their declared types, and each field's kind."""
    types = atomic_header(file)
    raw = read_atomic(file, [])
    line_of = header_line_of(file)
    out: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for column, declared in types.items():
        values = raw[column]
        if column in id_columns:
            out[column] = values.to_numpy()
        elif declared == "float":
            out[column] = to_number(
                raw, column, file, _FIX, line_of, missing=("",), allow_missing=True
            )
            kinds[column] = "numeric"
        elif declared == "token":
            out[column] = values.where(values != "").to_numpy()
            kinds[column] = "categorical"
        elif declared == "token_seq":
            text = any(word in TEXT_NAMES for word in re.split(r"[_\W]+", column.lower()))
            if text:
                out[column] = values.where(values != "").to_numpy()
                kinds[column] = "text"
            else:
                out[column] = [v.split() for v in values]
                kinds[column] = "multi"
    return pd.DataFrame(out), kinds


def _find_stem(directory: Path, name: str | None) -> str:
    if name is not None:
        return name
    if (directory / f"{directory.name}.inter").is_file():
        return directory.name
    found = sorted(p.stem for p in directory.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataNotFoundError(
            f"{directory} holds no RecBole .inter file; point to the folder of the atomic files "
            "(<name>.inter, and optionally <name>.item / <name>.user)"
        )
    raise DataNotFoundError(
        f"{directory} holds several .inter files {found}: pass name=... to say which"
    )


def load_recbole(
    path: str | os.PathLike,
    name: str | None = None,
    fields: Mapping[str, Any] | Literal["infer"] = "infer",
    user_col: str = "user_id",
    item_col: str = "item_id",
    value_col: str | None = None,
    time_col: str | None = None,
) -> Dataset:
    """Load a dataset from RecBole atomic files.

    Parameters
    ----------
    path
        The folder holding ``<name>.inter`` (and, optionally, ``<name>.item`` and
        ``<name>.user``).
    name
        The atomic files' name; default the folder's name, or the one ``.inter`` file in it.
    fields
        Kinds that override the ones the declared types give (``{"genre": "text"}``; None
        leaves a column out), for the item and user tables.
    user_col, item_col
        The id columns (RecBole's convention: ``user_id``, ``item_id``).
    value_col, time_col
        The rating and time columns of the ``.inter`` file; default ``rating`` / ``label`` /
        ``timestamp`` when present, implicit feedback (every row 1.0) without a rating.

    Returns
    -------
    Dataset
        Ids are kept as the strings the files hold; ``dataset.columns`` names the columns each
        role was read from.

    Raises
    ------
    DataNotFoundError
        The folder or its ``.inter`` file is missing.
    MalformedDataError
        A header that is not ``name:type``, a row with the wrong number of fields, a ``float``
        value that is not a number: names the file and the line.
    SchemaError
        A missing id column, an empty or repeated id.

    Examples
    --------
    >>> data = load_recbole("dataset/amazon-books")  # doctest: +SKIP
    >>> data.field_report()  # doctest: +SKIP
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DataNotFoundError(
            f"RecBole folder {directory} not found; pass the folder of the atomic files"
        )
    stem = _find_stem(directory, name)
    files = {suffix: directory / f"{stem}.{suffix}" for suffix in SUFFIXES}
    if not files["inter"].is_file():
        raise DataNotFoundError(f"expected file {files['inter']} is missing")
    inter, _ = _typed_frame(files["inter"], (user_col, item_col))
    inter_types = atomic_header(files["inter"])
    if value_col is None:
        value_col = next((c for c in ("rating", "label", "score") if c in inter_types), None)
    if time_col is None:
        time_col = "timestamp" if "timestamp" in inter_types else None
    keep = [c for c in (user_col, item_col, value_col, time_col) if c is not None]
    missing = [c for c in keep if c not in inter.columns]
    if missing:
        raise MalformedDataError(files["inter"], 1, f"header lacks columns {missing}", _FIX)
    tables: dict[str, pd.DataFrame | None] = {}
    overrides: dict[str, dict[str, Any]] = {}
    for suffix, id_col in (("item", item_col), ("user", user_col)):
        if not files[suffix].is_file():
            tables[suffix] = None
            continue
        frame, kinds = _typed_frame(files[suffix], (id_col,))
        if id_col not in frame.columns:
            raise MalformedDataError(
                files[suffix], 1, f"header lacks the id column {id_col!r}", _FIX
            )
        tables[suffix] = frame
        overrides[f"{suffix}s"] = {**kinds, **_for_table(fields, f"{suffix}s", frame)}
    return Dataset.from_frames(
        inter[keep],
        tables["item"],
        tables["user"],
        fields=overrides or "infer",
        user_col=user_col,
        item_col=item_col,
        value_col=value_col,
        time_col=time_col,
        name=stem,
    )


def _for_table(fields: Mapping[str, Any] | str, table: str, frame: pd.DataFrame) -> dict[str, Any]:
    """The caller's overrides that concern ``table`` (given per table or as one mapping)."""
    if isinstance(fields, str):
        return {}
    if table in fields and isinstance(fields[table], Mapping):
        return dict(fields[table])
    return {c: k for c, k in fields.items() if c in frame.columns}


__all__ = ["ATOMIC_TYPES", "atomic_header", "load_recbole", "read_atomic"]
