"""Reading helpers shared by the loaders: CSV reads and type checks that fail with file and line.

pandas reports a bad row by its position in the frame; the helpers here turn that into the line
number in the file (header and blank lines counted), so an error says where to look.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.tables import first_undecodable_line
from dayzero.datasets._files import MalformedDataError

_PANDAS_LINE = re.compile(r"line (\d+)")


def file_line_of_row(
    path: Path, row: int, header_lines: int = 1, encoding: str = "utf-8", opener=open
) -> int:
    """The 1-based line of data row ``row`` (0-based), skipping the header and blank lines.

    Only used on the error path, so it simply re-reads the file. Assumes no quoted line breaks,
    which holds for every CSV these loaders read.
    """
    seen = -1
    with opener(path, "rt", encoding=encoding, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= header_lines or not line.strip():
                continue
            seen += 1
            if seen == row:
                return number
    return header_lines + row + 1


def read_csv(
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    fix: str = "restore the file from the dataset's source",
    **kwargs: Any,
) -> pd.DataFrame:
    """``pd.read_csv`` that raises :class:`MalformedDataError` naming file and line.

    Parameters
    ----------
    path
        The CSV file.
    columns
        Columns the header must contain (checked after reading).
    encoding
        Text encoding of the file.
    fix
        What the user should do about a malformed file (goes into the message).
    **kwargs
        Passed to :func:`pandas.read_csv`.
    """
    try:
        frame = pd.read_csv(path, encoding=encoding, **kwargs)
    except UnicodeDecodeError as exc:
        line = first_undecodable_line(path, encoding)
        raise MalformedDataError(path, line, f"text is not {encoding} ({exc.reason})", fix) from exc
    except pd.errors.ParserError as exc:
        match = _PANDAS_LINE.search(str(exc))
        line = int(match.group(1)) if match else None
        raise MalformedDataError(path, line, f"cannot split into columns ({exc})", fix) from exc
    except pd.errors.EmptyDataError as exc:
        raise MalformedDataError(path, 1, "file is empty", fix) from exc
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MalformedDataError(
                path,
                1,
                f"header lacks columns {missing} (it has {list(frame.columns)})",
                fix,
            )
    return frame


def check_complete(
    frame: pd.DataFrame,
    columns: Iterable[str],
    path: Path,
    fix: str,
    line_of: Callable[[int], int],
) -> None:
    """Raise naming the first row where one of ``columns`` is empty."""
    for column in columns:
        empty = frame[column].isna().to_numpy()
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise MalformedDataError(path, line_of(row), f"column {column!r} is empty", fix)


def to_number(
    frame: pd.DataFrame,
    column: str,
    path: Path,
    fix: str,
    line_of: Callable[[int], int],
    *,
    integer: bool = False,
    missing: Iterable[str] = (),
    allow_missing: bool = False,
) -> pd.Series:
    """Column ``column`` as numbers; a value that is not a number raises naming its line.

    Values in ``missing`` (for example ``"?"``) become NaN; so do empty cells when
    ``allow_missing``. ``integer`` returns int64 (or nullable Int64 where values are missing).
    """
    raw = frame[column]
    markers = set(missing)
    if markers:
        raw = raw.where(~raw.astype("string").str.strip().isin(markers), None)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if not allow_missing:
        bad |= raw.isna()
    if integer:
        bad |= values.notna() & (values % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        kind = "an integer" if integer else "a number"
        value = frame[column].iloc[row]
        raise MalformedDataError(
            path, line_of(row), f"column {column!r} has {value!r}, which is not {kind}", fix
        )
    if integer:
        return values.astype("Int64" if values.isna().any() else "int64")
    return values.astype("float64")


def header_line_of(path: Path, encoding: str = "utf-8", opener=open) -> Callable[[int], int]:
    """A ``row -> line`` function for a file with one header line."""
    return lambda row: file_line_of_row(path, row, 1, encoding, opener)


def no_header_line_of(path: Path, encoding: str = "utf-8", opener=open) -> Callable[[int], int]:
    """A ``row -> line`` function for a file without a header."""
    return lambda row: file_line_of_row(path, row, 0, encoding, opener)


QUOTE_NONE = csv.QUOTE_NONE


def to_boolean(
    frame: pd.DataFrame,
    column: str,
    path: Path,
    fix: str,
    line_of: Callable[[int], int],
    *,
    true: Iterable[str] = ("true", "t", "yes", "1"),
    false: Iterable[str] = ("false", "f", "no", "0"),
) -> pd.Series:
    """Column ``column`` as nullable booleans (case-insensitive words); anything else raises."""
    raw = frame[column]
    text = raw.astype("string").str.strip().str.lower()
    mapping = {**dict.fromkeys(true, True), **dict.fromkeys(false, False)}
    values = text.map(mapping)
    bad = values.isna() & raw.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise MalformedDataError(
            path,
            line_of(row),
            f"column {column!r} has {raw.iloc[row]!r}, not one of {sorted(mapping)}",
            fix,
        )
    return values.astype("boolean")


def grouped_lists(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Values gathered into a list per key, in file order (``key -> [v1, v2, ...]``)."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()})
    frame = frame[frame["value"].notna()]
    return frame.groupby("key", sort=False)["value"].agg(list)
