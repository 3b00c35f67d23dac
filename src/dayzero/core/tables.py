"""Reading tables from files: CSV, TSV, semicolon files, Parquet, JSON Lines.

Used by ``dayzero risk`` (applicants) and by :meth:`dayzero.core.schema.Dataset.from_files`
(interactions, items, users).

The format comes from the extension (``.csv``, ``.txt``, ``.tsv``, ``.tab``, ``.parquet``,
``.pq``, ``.jsonl``, ``.ndjson``, ``.json``; ``.gz`` / ``.bz2`` / ``.xz`` compressed text too),
or from ``format``; the separator of a delimited file from ``sep`` or, when not given, from its
first lines (comma, tab, semicolon or pipe, whichever splits them into the same number of
fields). A file that is not a table fails with a :class:`TableError` whose message names the
file, the line (or row) and the column where it can, and the fix: empty files, header-only
files, ragged rows, unnamed or repeated header names, unknown extensions, text that is not in
the encoding, broken JSON lines, unreadable Parquet. pandas' own errors never reach the user.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

FORMATS = ("csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSED: dict[str, Callable[..., IO[Any]]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
_SEPARATORS = (",", "\t", ";", "|")
_SEP_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SNIFF_BYTES = 65_536
_NOT_TABLES = {
    ".xlsx": "an Excel workbook: save the sheet as CSV (File > Save As > CSV) and pass that",
    ".xls": "an Excel workbook: save the sheet as CSV (File > Save As > CSV) and pass that",
    ".zip": "a ZIP archive: unzip it and pass the table inside",
    ".pkl": "a pickle, which dayzero never reads: write the frame with to_parquet or to_csv",
    ".pickle": "a pickle, which dayzero never reads: write the frame with to_parquet or to_csv",
}
_MAGIC = {
    b"PK\x03\x04": "a ZIP archive or an Excel workbook (.xlsx): export the sheet as CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls): export the sheet as CSV",
    b"PAR1": "a Parquet file: name it .parquet or pass --format parquet",
}


def first_undecodable_line(path: Path, encoding: str, opener: Callable[..., IO[Any]] = open) -> int:
    """The 1-based line of the first byte sequence that ``encoding`` cannot decode (``opener``
    opens the file in binary mode: ``gzip.open`` for a compressed one)."""
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return number
    return 1


class TableError(ValueError):
    """A file cannot be read as a table; the message names the file, where, and the fix."""


@dataclass(frozen=True)
class Table:
    """A table read by :func:`read_table`.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows, columns named by the header.
    path : Path
        The file.
    format : str
        One of :data:`FORMATS`.
    sep : str or None
        The separator of a delimited file.
    decimal : str
        The decimal mark of its numbers (``","`` in some semicolon files).
    encoding : str
        The text encoding it was read with.
    """

    frame: pd.DataFrame
    path: Path
    format: str
    sep: str | None
    decimal: str
    encoding: str

    def describe(self) -> str:
        """``"4,000 rows, 25 columns (tab-separated)"``."""
        kind = {
            "jsonl": "JSON Lines",
            "parquet": "Parquet",
        }.get(self.format, f"{_SEP_NAMES.get(self.sep or '', repr(self.sep))}-separated")
        if self.decimal != ".":
            kind += ", decimal comma"
        return f"{len(self.frame):,} rows, {self.frame.shape[1]} columns ({kind})"

    def where(self, row: int) -> str:
        """Where data row ``row`` (0-based) is in the file: ``"line 12"`` (or ``"row 12"``)."""
        if self.format == "parquet":
            return f"row {row + 1}"
        if self.format == "jsonl":
            lines = _nonblank_lines(self.path, self.encoding)
        else:
            lines = _record_lines(self.path, self.sep or ",", self.encoding)
        for seen, line in enumerate(lines):
            if seen == row + (0 if self.format == "jsonl" else 1):
                return f"line {line}"
        return f"row {row + 1}"


def _opener(path: Path) -> Callable[..., IO[Any]]:
    return _COMPRESSED.get(path.suffix.lower(), open)


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _text(path: Path, encoding: str) -> IO[str]:
    return _opener(path)(path, "rt", encoding=encoding, newline="")


def _record_lines(path: Path, sep: str, encoding: str) -> Iterator[int]:
    """The first line of every non-blank record (the header first), as pandas counts rows."""
    with _text(path, encoding) as handle:
        reader = csv.reader(handle, delimiter=sep)
        start = 1
        for fields in reader:
            if fields:
                yield start
            start = reader.line_num + 1


def _nonblank_lines(path: Path, encoding: str) -> Iterator[int]:
    with _text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number


def _parse_sep(sep: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(sep.lower(), sep)
    if len(value) != 1 or value in '"\r\n':
        raise TableError(
            f"--sep {sep!r} is not a one-character separator: pass ',', ';', '|', or tab "
            "(--sep tab, or --sep $'\\t' in bash)"
        )
    return value


def _detect(path: Path, format: str | None, sep: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise TableError(f"--format {format!r} is not one of {list(FORMATS)}")
        return format
    suffix = _base_suffix(path)
    if suffix in _NOT_TABLES:
        raise TableError(f"{path} is {_NOT_TABLES[suffix]}")
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if sep is not None:
        return "csv"
    raise TableError(
        f"{path}: unknown extension {suffix or '(none)'!r}; dayzero reads "
        f"{sorted(EXTENSIONS)} (also compressed with {sorted(_COMPRESSED)}): rename the file, "
        f"or pass --format {'|'.join(FORMATS)} (or --sep for a delimited text file)"
    )


def _head_text(path: Path, encoding: str) -> str:
    """The first bytes of the file as text (a partial last line and character dropped)."""
    with _opener(path)(path, "rb") as handle:
        raw = handle.read(_SNIFF_BYTES)
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise TableError(f"{path} is {what}")
    if b"\x00" in raw:
        raise TableError(
            f"{path} holds binary data (NUL bytes), not text: pass a CSV, TSV, JSON Lines or "
            "Parquet file"
        )
    text = raw.decode(encoding, errors="ignore")
    if len(raw) == _SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]
    return text


def sniff_separator(sample: str) -> str:
    """The separator that splits ``sample``'s lines into the same number (> 1) of fields.

    Parameters
    ----------
    sample : str
        The first lines of a delimited file, header first.

    Returns
    -------
    str
        One of comma, tab, semicolon, pipe; comma when none splits the header.
    """
    best, best_score = ",", (0, 0)
    for sep in _SEPARATORS:
        try:
            records = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if r]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        agreeing = sum(len(r) == width for r in records)
        score = (agreeing, width)
        if score > best_score:
            best, best_score = sep, score
    return best


_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_DECIMAL_POINT = re.compile(r"^-?\d+\.\d+$")


def sniff_decimal(sample: str, sep: str) -> str:
    """``","`` when a semicolon file writes its numbers with decimal commas (``1,5``), else ``"."``.

    Spreadsheets in many locales save CSV as semicolon-separated with decimal commas; read with
    a point, such a column would silently become text.
    """
    if sep == ",":
        return "."
    fields = [f.strip() for r in csv.reader(io.StringIO(sample), delimiter=sep) for f in r]
    comma = sum(bool(_DECIMAL_COMMA.match(f)) for f in fields)
    point = sum(bool(_DECIMAL_POINT.match(f)) for f in fields)
    return "," if comma and not point else "."


def _check_given_sep(path: Path, sep: str, head: str) -> None:
    """Refuse a ``--sep`` that leaves the header in one column when another separator splits it.

    Read that way, every row would be one long text column and the error would come later as
    "no column 'default'", far from its cause.
    """
    first = next((r for r in csv.reader(io.StringIO(head), delimiter=sep) if r), [])
    if len(first) != 1:
        return
    sniffed = sniff_separator(head)
    if sniffed == sep:
        return
    width = len(next(r for r in csv.reader(io.StringIO(head), delimiter=sniffed) if r))
    if width < 2:
        return
    given, found = _SEP_NAMES.get(sep, repr(sep)), _SEP_NAMES[sniffed]
    shown = {"\t": "tab"}.get(sniffed, sniffed)
    raise TableError(
        f"{path} line 1: --sep {given} leaves the header in one column, but the file is "
        f"{found}-separated ({width} columns): pass --sep '{shown}', or leave --sep out to "
        "detect it"
    )


def _check_header(path: Path, columns: list[Any]) -> None:
    names = [str(c) for c in columns]
    blank = [i for i, name in enumerate(names, start=1) if not name.strip()]
    if blank:
        raise TableError(
            f"{path} line 1: column {blank[0]} has no name (a saved index?): name it in the "
            "header, or write the file without the index (DataFrame.to_csv(index=False))"
        )
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        positions = [i for i, name in enumerate(names, start=1) if name == repeated[0]]
        raise TableError(
            f"{path} line 1: column {repeated[0]!r} appears {len(positions)} times (columns "
            f"{positions}); give every column its own name"
        )


def _check_fields(path: Path, sep: str, encoding: str) -> None:
    """A header with distinct names and every record as wide, or an error naming the first line
    where not.

    pandas fills short rows with missing values without a word and refuses long ones with a
    parser message; a ragged file is almost always a wrong separator or an unquoted value.
    """
    name = _SEP_NAMES.get(sep, repr(sep))
    with _text(path, encoding) as handle:
        reader = csv.reader(handle, delimiter=sep)
        header: list[str] | None = None
        start, bad, first = 1, 0, None
        try:
            for fields in reader:
                if fields:
                    if header is None:
                        header = fields
                        _check_header(path, header)
                    elif len(fields) != len(header):
                        bad += 1
                        if first is None:
                            first = (start, len(fields))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise TableError(
                f"{path} line {reader.line_num}: cannot split it into fields ({exc}); check the "
                "quotes on that line"
            ) from None
    if first is not None and header is not None:
        line, width = first
        shown = header if len(header) <= 8 else [*header[:8], "..."]
        cause = (
            f"a value holds an unquoted {name}: quote it"
            if width > len(header)
            else "fields are missing: add empty fields for missing values"
        )
        raise TableError(
            f"{path} line {line}: {width} fields, but the header has {len(header)} {shown} "
            f"({bad} such rows, {name}-separated); {cause}, or pass the right --sep"
        )


def _read_delimited(path: Path, sep: str, encoding: str, decimal: str) -> pd.DataFrame:
    _check_fields(path, sep, encoding)
    try:
        return pd.read_csv(path, sep=sep, encoding=encoding, decimal=decimal, low_memory=False)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty: write the column names on line 1") from None
    except pd.errors.ParserError as exc:
        if "EOF inside string" in str(exc):
            *_, line = _record_lines(path, sep, encoding)
            raise TableError(
                f'{path} line {line}: a quote (") opens a value and is never closed; close it, '
                'or write a quote inside a value as two ("")'
            ) from None
        raise TableError(f"{path}: cannot split it into columns ({exc}); check --sep") from None


def _read_jsonl(path: Path, encoding: str, lists: bool, rows: str) -> pd.DataFrame:
    records = []
    with _text(path, encoding) as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise TableError(f"{path}: not valid JSON ({exc}); fix the file") from None
        numbered = list(enumerate(loaded, start=1))
        where = "record"
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except ValueError as exc:
                raise TableError(
                    f"{path} line {number}: not a JSON object ({exc.args[0]}); JSON Lines hold "
                    f"one object per line, e.g. {_example(rows)}"
                ) from None
        where = "line"
    for number, record in numbered:
        if not isinstance(record, dict):
            raise TableError(
                f"{path} {where} {number}: {type(record).__name__}, not an object; write one "
                f"object per {rows}, e.g. {_example(rows)}"
            )
        for key, value in record.items():
            if (
                lists
                and isinstance(value, list)
                and not any(isinstance(v, (dict, list)) for v in value)
            ):
                continue  # a list of plain values: a multi-valued field (genres, tags)
            if isinstance(value, (dict, list)):
                raise TableError(
                    f"{path} {where} {number}, column {key!r}: nested JSON "
                    f"({type(value).__name__}); flatten it into plain values"
                )
        records.append(record)
    if not records:
        raise TableError(f"{path} has no rows: write one JSON object per line")
    return pd.DataFrame.from_records(records)


def _example(rows: str) -> str:
    if rows == "applicant":
        return '{"age": 30, "default": 0}'
    return '{"user": "u1", "item": "i1", "rating": 4}'


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError types
        raise TableError(
            f"{path} is not a readable Parquet file ({type(exc).__name__}: {exc}); write it "
            "again with DataFrame.to_parquet, or pass --format for another format"
        ) from None


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    format: str | None = None,
    encoding: str = "utf-8",
    lists: bool = False,
    rows: str = "applicant",
) -> Table:
    """Read a table; any problem is a :class:`TableError` naming the fix.

    Parameters
    ----------
    path : str or Path
        The file.
    sep : str, optional
        Separator of a delimited file (``","``, ``";"``, ``"|"``, ``"tab"`` or a tab
        character); sniffed from the first lines when not given.
    format : {"csv", "tsv", "jsonl", "parquet"}, optional
        Overrides the extension.
    encoding : str, default "utf-8"
        Text encoding (a UTF-8 byte-order mark is skipped).
    lists : bool, default False
        Accept JSON lists of plain values (multi-valued fields such as genres) in JSON Lines;
        nested objects are refused either way.
    rows : str, default "applicant"
        What one row is, for the messages ("one row per applicant").

    Returns
    -------
    Table

    Raises
    ------
    TableError
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path} does not exist: check the path")
    if not path.is_file():
        raise TableError(f"{path} is not a file: pass the table, not a folder")
    separator = None if sep is None else _parse_sep(sep)
    kind = _detect(path, format, separator)
    if separator is not None and kind in ("jsonl", "parquet"):
        raise TableError(f"--sep applies to delimited text files; {path} is read as {kind}")
    decimal = "."
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        if kind == "parquet":
            frame = _read_parquet(path)
        else:
            head = _head_text(path, encoding)
            if not head.strip():
                raise TableError(
                    f"{path} is empty: it needs a header line with the column names, then "
                    f"one row per {rows}"
                )
            if kind == "jsonl":
                frame = _read_jsonl(path, encoding, lists, rows)
            else:
                if separator is not None:
                    _check_given_sep(path, separator, head)
                separator = separator or ("\t" if kind == "tsv" else sniff_separator(head))
                decimal = sniff_decimal(head, separator)
                frame = _read_delimited(path, separator, encoding, decimal)
    except UnicodeDecodeError as exc:
        line = first_undecodable_line(path, encoding, _opener(path))
        raise TableError(
            f"{path} line {line}: text is not {encoding.removesuffix('-sig')} ({exc.reason}); "
            "save the file as UTF-8, or pass its encoding (--encoding latin-1, cp1252, ...)"
        ) from None
    except LookupError:
        raise TableError(f"--encoding {encoding!r} is not a known text encoding") from None
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise TableError(f"{path} cannot be read ({exc}); check the file") from None
    if kind in ("jsonl", "parquet"):
        _check_header(path, list(frame.columns))
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise TableError(
            f"{path} has a header but no rows ({list(frame.columns)[:8]}): add one row per {rows}"
        )
    return Table(frame, path, kind, separator, decimal, encoding)


def output_format(path: str | Path) -> str:
    """The format a table written to ``path`` gets from its extension (checked before work).

    Raises
    ------
    TableError
        An unknown extension, or a folder that does not exist.
    """
    path = Path(path)
    suffix = _base_suffix(path)
    if suffix not in EXTENSIONS or suffix == ".json":
        known = sorted(s for s in EXTENSIONS if s != ".json")
        raise TableError(
            f"{path}: cannot write a table with extension {suffix or '(none)'!r}; name the output "
            f"with one of {known}"
        )
    if not path.parent.is_dir():
        raise TableError(f"{path}: the folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise TableError(f"{path} is a folder; name a file to write")
    return EXTENSIONS[suffix]


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` in the format of ``path``'s extension (see :func:`output_format`)."""
    path = Path(path)
    kind = output_format(path)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
