"""TALLRec-style instruction sets for any item type (:func:`load_tallrec`), and TALLRec's fixed
MovieLens-100K few-shot evaluation sets (:func:`load_tallrec_movie`).

Each example asks whether a user who liked some items and disliked others will like a target
item; ``output`` is ``"Yes."`` or ``"No."``. TALLRec writes the items of its movie set as
quoted titles (``"Heat (1995)"``) and those of its book set as a quoted title and its author
(``"Friday" written by Robert Heinlein``); both forms are read, for any item noun ("movie",
"book", "game" ...).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from dayzero.core.settings import DataNotFoundError
from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file
from dayzero.datasets.labelled import LabelledFrame

FOLDER = "tallrec-movie"
FILES = {"valid": "valid.json", "test": "test.json"}
#: Split files :func:`load_tallrec` reads when present, in this order.
SPLIT_FILES = {"train": "train.json", "valid": "valid.json", "test": "test.json"}
ANSWERS = {"Yes.": 1, "No.": 0}
_INPUT = re.compile(
    r"^User Preference: (.*)\nUser Unpreference: (.*)\n"
    r'Whether the user will like the target (\w[\w -]*?) "(.*)"\?$',
    re.S,
)
# One item of a list: a quoted title, optionally "written by" its creator, then ", " or the end.
_ENTRY = re.compile(r'"(?P<title>.*?)"(?: written by (?P<creator>.*?))?(?:, (?=")|$)', re.S)
_FIX = "restore the file from SAI990323/TALLRec data/<item type>/"


def parse_titles(text: str) -> list[str]:
    """``'"A (1990)", "B, The (1995)"'`` -> ``['A (1990)', 'B, The (1995)']`` (empty text -> [])."""
    return [title for title, _creator in parse_items(text)]


def parse_items(text: str) -> list[tuple[str, str | None]]:
    """A TALLRec item list as ``(title, creator)`` pairs, creator None when not given.

    >>> parse_items('"Friday" written by Robert Heinlein, "Heat (1995)"')
    [('Friday', 'Robert Heinlein'), ('Heat (1995)', None)]
    """
    items: list[tuple[str, str | None]] = []
    position = 0
    while position < len(text):
        match = _ENTRY.match(text, position)
        if match is None:
            raise ValueError(
                "items must be double-quoted titles, each optionally followed by 'written by "
                f"<creator>', joined by ', ': {text[position : position + 60]!r}"
            )
        items.append((match["title"], match["creator"]))
        position = match.end()
    return items


def _target(text: str) -> tuple[str, str | None]:
    """The target item: a bare title (movies) or a quoted title with its creator (books)."""
    if text.startswith('"'):
        parsed = parse_items(text)
        if len(parsed) == 1:
            return parsed[0]
    return text, None


def _line_numbers(raw: str) -> list[int]:
    """The 1-based line on which each top-level ``{`` of a JSON array of objects starts."""
    lines, depth, in_string, escaped, line = [], 0, False, False, 1
    for char in raw:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth == 2 and char == "{":
                lines.append(line)
        elif char in "]}":
            depth -= 1
    return lines


def _read_split(file: Path, item_type: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """The examples of one split file, and the item noun its targets use."""
    raw = file.read_text(encoding="utf-8")
    try:
        records = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedDataError(file, exc.lineno, f"invalid JSON ({exc.msg})", _FIX) from exc
    if not isinstance(records, list):
        raise MalformedDataError(file, 1, "expected a JSON array of examples", _FIX)
    starts = None
    rows = []
    for position, record in enumerate(records):
        problem = None
        if not isinstance(record, dict) or not {"instruction", "input", "output"} <= set(record):
            problem = "example lacks 'instruction', 'input' or 'output'"
        elif record["output"] not in ANSWERS:
            problem = f"output is {record['output']!r}, not 'Yes.' or 'No.'"
        else:
            match = _INPUT.match(record["input"])
            if match is None:
                problem = "input does not follow the 'User Preference: ...' / target item form"
            elif item_type is not None and match[3] != item_type:
                problem = f"the target is a {match[3]!r}, the examples before it a {item_type!r}"
            else:
                item_type = match[3]
                try:
                    liked, disliked = parse_items(match[1]), parse_items(match[2])
                except ValueError as exc:
                    problem = str(exc)
        if problem is not None:
            starts = starts or _line_numbers(raw)
            line = starts[position] if position < len(starts) else None
            raise MalformedDataError(file, line, f"example {position}: {problem}", _FIX)
        title, creator = _target(match[4])
        rows.append(
            {
                "instruction": record["instruction"],
                "input": record["input"],
                "output": record["output"],
                "liked": [t for t, _ in liked],
                "disliked": [t for t, _ in disliked],
                "target_title": title,
                "liked_creators": [c for _, c in liked if c],
                "disliked_creators": [c for _, c in disliked if c],
                "target_creator": creator,
                "label": ANSWERS[record["output"]],
            }
        )
    return pd.DataFrame(rows), item_type


def load_tallrec_movie(path: str | os.PathLike | None = None) -> LabelledFrame:
    """Load TALLRec's movie valid and test sets (1,000 examples each).

    Parameters
    ----------
    path
        The ``tallrec-movie`` folder or the data root holding it.

    Returns
    -------
    LabelledFrame
        Columns ``instruction``, ``input``, ``output`` (kept as given), ``liked`` and
        ``disliked`` (lists of ``"Title (year)"`` in history order, parsed from ``input``),
        ``target_title``, ``label`` (1 if ``output`` is ``"Yes."``, else 0) and ``split``
        (``"valid"`` / ``"test"``). ``text_columns == ["input"]``; ``X`` holds ``input``,
        ``liked``, ``disliked`` and ``target_title``.

    Raises
    ------
    DataNotFoundError
        The folder, ``valid.json`` or ``test.json`` is missing.
    MalformedDataError
        Invalid JSON or an example whose ``input`` / ``output`` does not have TALLRec's form;
        names the file and the line the example starts on.
    """
    directory = dataset_dir(FOLDER, path)
    for name in FILES.values():
        require_file(directory, name)
    return load_tallrec(directory, item_type="movie", name=FOLDER, splits=tuple(FILES))


def load_tallrec(
    path: str | os.PathLike,
    item_type: str | None = None,
    name: str | None = None,
    splits: tuple[str, ...] | None = None,
) -> LabelledFrame:
    """Load a TALLRec-style instruction set of any item type (``train.json``, ``valid.json``,
    ``test.json``: whichever are present).

    Parameters
    ----------
    path
        The folder holding the split files.
    item_type
        The item noun the examples must use ("movie", "book" ...); default the noun of the
        first example, which every other example must share.
    name
        The set's name; default the folder's name.
    splits
        The splits to read (each must exist); default every split file present.

    Returns
    -------
    LabelledFrame
        Columns ``instruction``, ``input``, ``output`` (kept as given), ``liked`` and
        ``disliked`` (lists of item titles in history order, parsed from ``input``),
        ``target_title``, ``label`` (1 if ``output`` is ``"Yes."``, else 0) and ``split``.
        Sets whose items carry a creator ("written by ...", TALLRec's books) also have
        ``liked_creators``, ``disliked_creators`` and ``target_creator`` in ``X``.
        ``text_columns == ["input"]``.

    Raises
    ------
    DataNotFoundError
        The folder or a named split is missing, or the folder holds no split file.
    MalformedDataError
        Invalid JSON, an example whose ``input`` / ``output`` does not have TALLRec's form, or a
        target of another item type: names the file and the line the example starts on.

    Examples
    --------
    >>> books = load_tallrec("TALLRec/data/book")  # doctest: +SKIP
    >>> books.frame[["target_title", "target_creator"]].head(1)  # doctest: +SKIP
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DataNotFoundError(
            f"TALLRec folder {directory} not found; pass the folder that holds train.json / "
            "valid.json / test.json"
        )
    if splits is None:
        splits = tuple(s for s, f in SPLIT_FILES.items() if (directory / f).is_file())
        if not splits:
            raise DataNotFoundError(
                f"{directory} holds none of {list(SPLIT_FILES.values())}; point to the folder "
                "of a TALLRec-style set"
            )
    parts = {}
    for split in splits:
        file = require_file(directory, SPLIT_FILES.get(split, f"{split}.json"))
        parts[split], item_type = _read_split(file, item_type)
    return tallrec_frame(parts, name or directory.name)


def tallrec_frame(
    parts: dict[str, pd.DataFrame], name: str, extra_columns: list[str] | None = None
) -> LabelledFrame:
    """TALLRec examples of each split (name -> rows) as one :class:`LabelledFrame`.

    ``X`` holds ``input``, ``liked``, ``disliked`` and ``target_title`` (and the creator
    columns when any item has a creator), ``y`` is ``label`` (1 = ``"Yes."``);
    ``instruction``, ``output`` and ``extra_columns`` are kept for reference.
    """
    features = ["input", "liked", "disliked", "target_title"]
    kinds = {"liked": "multi", "disliked": "multi", "target_title": "text"}
    creators = ["liked_creators", "disliked_creators", "target_creator"]
    with_creators = any(
        c in part.columns and part[c].map(bool).any() for part in parts.values() for c in creators
    )
    if with_creators:
        features += creators
        kinds |= {"liked_creators": "multi", "disliked_creators": "multi", "target_creator": "text"}
    parts = {
        split: part.drop(columns=[c for c in creators if c in part.columns and not with_creators])
        for split, part in parts.items()
    }
    return LabelledFrame.from_splits(
        parts,
        "label",
        ["input"],
        [0, 1],
        name,
        features=features,
        class_names={0: "No.", 1: "Yes."},
        extra_columns=["instruction", "output", *(extra_columns or [])],
        kinds=kinds,
    )
