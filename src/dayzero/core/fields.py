"""Field kinds and how dayzero guesses them from the values of a column.

A field of a user or an item is one of

``text``
    Free text the encoder reads (titles, descriptions, profiles).
``categorical``
    One value out of a small set (a city, an occupation).
``numeric``
    A number (a price, a year).
``multi``
    Several values out of a set (genres, tags): a list, or a string such as
    ``"Animation|Comedy"``.
``boolean``
    Yes / no.
``date``
    A calendar date or time; rendered into the text view as written, not used as a number.

:func:`infer_field` guesses the kind of one column from its values, :func:`infer_fields` every
column of a frame (with the kinds you already know given as overrides), and each guess says why
(:class:`FieldGuess`), so that what was inferred can be printed and corrected.
:func:`prepare_columns` then turns values into what the kind needs (``"a|b"`` into
``["a", "b"]``, ``"yes"`` into ``True``, ``"4.5"`` into ``4.5``).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

FieldKind = Literal["text", "categorical", "numeric", "multi", "boolean", "date"]
FIELD_KINDS: tuple[str, ...] = ("text", "categorical", "numeric", "multi", "boolean", "date")

#: Strings longer than this on average are text, whatever else holds.
LONG_TEXT = 40
#: Separators of multi-valued strings, tried in this order.
MULTI_SEPARATORS: tuple[str, ...] = ("|", ";", ",")
TRUE_WORDS = frozenset({"true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "f"})
_DATE = re.compile(
    r"^\d{4}[-/.]\d{1,2}([-/.]\d{1,2})?([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
    r"|^\d{1,2}[-/.](\d{1,2}|[A-Za-z]{3,9})[-/.]\d{2,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$"
)
#: Column names whose strings are text whatever their length (a one-word title is still a title).
TEXT_NAMES = frozenset(
    {"title", "name", "description", "desc", "plot", "overview", "summary", "synopsis",
     "bio", "about", "profile", "text", "review", "abstract", "content"}
)  # fmt: skip
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class FieldGuess:
    """What was decided for one column, and why.

    Parameters
    ----------
    column : str
        The column.
    kind : str or None
        Its kind; None when the column is not used (all missing, or it looks like an id).
    reason : str
        Why, in a few words (``"312 distinct of 400, 2.1 words on average"``).
    given : bool
        True when the kind was given (``fields=``), not inferred.
    separator : str or None
        For a ``multi`` field written as strings, what separates the values.
    """

    column: str
    kind: str | None
    reason: str
    given: bool = False
    separator: str | None = None


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set | np.ndarray):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _tokens(values: Sequence[str], separator: str) -> list[str]:
    return [t.strip() for v in values for t in v.split(separator) if t.strip()]


def _multi_separator(values: Sequence[str]) -> str | None:
    """The separator that makes ``values`` lists of short repeated labels, or None.

    ``|`` and ``;`` rarely occur in prose, so a fifth of the values holding one is enough. A
    comma occurs in any sentence: its tokens must also be short (at most three words) and
    repeat (half as many distinct tokens as tokens, at least).
    """
    for separator in MULTI_SEPARATORS:
        holding = sum(separator in v for v in values) / len(values)
        if holding < 0.2:
            continue
        tokens = _tokens(values, separator)
        if not tokens:
            continue
        mean_length = np.mean([len(t) for t in tokens])
        if separator != ",":
            if mean_length <= 30:
                return separator
            continue
        words = np.mean([len(t.split()) for t in tokens])
        if mean_length <= 20 and words <= 3 and len(set(tokens)) <= 0.5 * len(tokens):
            return separator
    return None


def _looks_like_dates(values: Sequence[str]) -> bool:
    if not all(_DATE.match(v.strip()) for v in values):
        return False
    parsed = pd.to_datetime(pd.Series(values), errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def infer_field(values: Iterable[Any], column: str = "field") -> FieldGuess:
    """Guess the kind of one column from its values.

    Parameters
    ----------
    values : iterable
        The column's values (Python or numpy scalars, lists, strings; missing values are
        skipped).
    column : str
        Its name, kept in the guess.

    Returns
    -------
    FieldGuess

    Examples
    --------
    >>> infer_field(["Animation|Comedy", "Drama", "Comedy|Drama"]).kind
    'multi'
    >>> infer_field(["Toy Story", "Heat", "Grumpier Old Men"]).kind
    'text'
    >>> infer_field(["Paris", "Lyon", "Paris", "Paris"]).kind
    'categorical'
    >>> infer_field([1995, 2001, None]).kind
    'numeric'
    """
    present = [v for v in values if not _missing(v)]
    if not present:
        return FieldGuess(column, None, "every value is missing: not used")
    n = len(present)
    if any(isinstance(v, dict) for v in present):
        return FieldGuess(column, None, "nested objects: not used (flatten them into columns)")
    if all(isinstance(v, bool | np.bool_) for v in present):
        return FieldGuess(column, "boolean", "true / false values")
    if all(isinstance(v, list | tuple | set | np.ndarray) for v in present):
        return FieldGuess(column, "multi", "lists of values")
    if all(isinstance(v, pd.Timestamp | np.datetime64) for v in present) or all(
        hasattr(v, "isoformat") and not _is_number(v) for v in present
    ):
        return FieldGuess(column, "date", "dates")
    if all(_is_number(v) for v in present):
        return FieldGuess(column, "numeric", f"numbers ({len(set(present))} distinct)")
    if not all(isinstance(v, str) for v in present):
        return FieldGuess(column, "categorical", "a mix of numbers and text: used as labels")
    strings = [v.strip() for v in present]
    lowered = {v.lower() for v in strings}
    if lowered <= TRUE_WORDS | FALSE_WORDS and len(lowered) <= 2:
        return FieldGuess(column, "boolean", f"only {sorted(lowered)}")
    if all(_NUMBER.match(v) for v in strings):
        return FieldGuess(column, "numeric", "numbers written as text")
    if _looks_like_dates(strings):
        return FieldGuess(column, "date", f"dates such as {strings[0]!r}")
    separator = _multi_separator(strings)
    if separator is not None:
        tokens = _tokens(strings, separator)
        return FieldGuess(
            column,
            "multi",
            f"{separator!r}-separated labels ({len(set(tokens))} distinct)",
            separator=separator,
        )
    length = float(np.mean([len(v) for v in strings]))
    words = float(np.mean([len(v.split()) for v in strings]))
    distinct = len(set(strings))
    if length > LONG_TEXT:
        return FieldGuess(column, "text", f"long strings ({length:.0f} characters on average)")
    if re.sub(r"[\s_\-]", "", column.lower()) in TEXT_NAMES:
        return FieldGuess(column, "text", f"strings in a column named {column!r}")
    if distinct > 0.5 * n and words >= 1.5:
        return FieldGuess(
            column, "text", f"{distinct} distinct of {n}, {words:.1f} words on average"
        )
    if distinct == n and n >= 20 and words == 1.0:
        return FieldGuess(
            column, None, f"one word, different on every row ({n}): looks like an id, not used"
        )
    return FieldGuess(column, "categorical", f"{distinct} distinct of {n}, short labels")


def infer_kind(values: Iterable[Any]) -> str | None:
    """The kind :func:`infer_field` guesses for ``values`` (None: not used)."""
    return infer_field(values).kind


def infer_fields(
    frame: pd.DataFrame,
    given: Mapping[str, str | None] | None = None,
    exclude: Iterable[Hashable] = (),
) -> list[FieldGuess]:
    """One :class:`FieldGuess` per column of ``frame``: the kinds in ``given`` as they are
    (None: leave the column out), the others inferred from the values.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per entity.
    given : mapping, optional
        Column -> kind for the columns whose kind you know. Columns not in ``frame`` are not
        checked here (the caller names them).
    exclude : iterable
        Columns not to consider (an id column).

    Returns
    -------
    list of FieldGuess
    """
    given = dict(given or {})
    skip = set(exclude)
    out = []
    for column in frame.columns:
        if column in skip:
            continue
        values = frame[column].tolist()
        if column in given:
            kind = given[column]
            separator = None
            if kind == "multi":
                strings = [v for v in values if isinstance(v, str) and v.strip()]
                separator = _multi_separator(strings) if strings else None
                if separator is None and strings:
                    separator = max(MULTI_SEPARATORS, key=lambda s: sum(s in v for v in strings))
            reason = "given" if kind is not None else "given as not used"
            out.append(FieldGuess(str(column), kind, reason, given=True, separator=separator))
        else:
            out.append(infer_field(values, str(column)))
    return out


def _split(value: Any, separator: str | None) -> Any:
    if _missing(value):
        return []
    if isinstance(value, list | tuple | set | np.ndarray):
        return [v for v in value if not _missing(v)]
    if isinstance(value, str):
        if separator is None:
            return [value.strip()]
        return [t.strip() for t in value.split(separator) if t.strip()]
    return [value]


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS or word == "1":
            return True
        if word in FALSE_WORDS or word == "0":
            return False
        return None
    if _missing(value):
        return None
    return bool(value)


def prepare_columns(frame: pd.DataFrame, guesses: Sequence[FieldGuess]) -> pd.DataFrame:
    """A copy of ``frame`` whose values fit their kinds: ``multi`` strings split into lists,
    ``boolean`` words (``yes`` / ``no`` / ``true`` ...) as booleans, numbers written as text as
    numbers. Values that do not fit are left as they are (text, categorical and date fields
    are not touched).
    """
    out = frame.copy()
    for guess in guesses:
        column = guess.column
        if column not in out.columns:
            continue
        if guess.kind == "multi":
            out[column] = [_split(v, guess.separator) for v in out[column].tolist()]
        elif guess.kind == "boolean" and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = pd.array([_boolean(v) for v in out[column].tolist()], dtype="boolean")
        elif guess.kind == "numeric" and not pd.api.types.is_numeric_dtype(out[column]):
            numbers = pd.to_numeric(out[column], errors="coerce")
            if numbers.notna().sum() == out[column].map(lambda v: not _missing(v)).sum():
                out[column] = numbers
    return out


def describe(guesses: Sequence[FieldGuess]) -> str:
    """``"title: text (given); genres: multi ('|'-separated labels ...)"``: one line."""
    parts = []
    for guess in guesses:
        kind = guess.kind or "not used"
        parts.append(f"{guess.column}: {kind} ({guess.reason})")
    return "; ".join(parts)


TITLE_NAMES = ("title", "name")


def title_of(
    fields: Mapping[str, Any] | None, text: str | None = None, limit: int = 80
) -> str | None:
    """What to show people for an entity: its ``title`` (or ``name``) field, else the start of
    its text (cut at a word, ``limit`` characters at most); None when it has neither.

    >>> title_of({"title": "Toy Story", "year": 1995})
    'Toy Story'
    >>> title_of({}, "A quiet cafe by the river with vegan cakes and strong coffee", 30)
    'A quiet cafe by the river ...'
    """
    for key, value in (fields or {}).items():
        normal = re.sub(r"[\s_\-]", "", str(key).lower())
        if normal in TITLE_NAMES and isinstance(value, str | int | float) and not _missing(value):
            return _shorten(str(value), limit)
    if text is not None and text.strip():
        return _shorten(text, limit)
    return None


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 4].rsplit(" ", 1)[0] + " ..."


__all__ = [
    "FIELD_KINDS",
    "LONG_TEXT",
    "FieldGuess",
    "FieldKind",
    "describe",
    "infer_field",
    "infer_fields",
    "infer_kind",
    "prepare_columns",
    "title_of",
]
