"""TALLRec's fixed MovieLens-100K few-shot evaluation sets (``valid.json``, ``test.json``).

Each example asks whether a user who liked some movies and disliked others will like a target
movie; ``output`` is ``"Yes."`` or ``"No."``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file
from dayzero.datasets.labelled import LabelledFrame

FOLDER = "tallrec-movie"
FILES = {"valid": "valid.json", "test": "test.json"}
ANSWERS = {"Yes.": 1, "No.": 0}
_INPUT = re.compile(
    r"^User Preference: (.*)\nUser Unpreference: (.*)\n"
    r'Whether the user will like the target movie "(.*)"\?$',
    re.S,
)
_FIX = "restore the file from SAI990323/TALLRec data/movie/"


def parse_titles(text: str) -> list[str]:
    """``'"A (1990)", "B, The (1995)"'`` -> ``['A (1990)', 'B, The (1995)']`` (empty text -> [])."""
    if not text:
        return []
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"titles must be double-quoted and joined by ', ': {text[:60]!r}")
    return text[1:-1].split('", "')


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


def _read_split(file: Path) -> pd.DataFrame:
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
                problem = "input does not follow 'User Preference: ...' / target movie form"
            else:
                try:
                    liked, disliked = parse_titles(match[1]), parse_titles(match[2])
                except ValueError as exc:
                    problem = str(exc)
        if problem is not None:
            starts = starts or _line_numbers(raw)
            line = starts[position] if position < len(starts) else None
            raise MalformedDataError(file, line, f"example {position}: {problem}", _FIX)
        rows.append(
            {
                "instruction": record["instruction"],
                "input": record["input"],
                "output": record["output"],
                "liked": liked,
                "disliked": disliked,
                "target_title": match[3],
                "label": ANSWERS[record["output"]],
            }
        )
    return pd.DataFrame(rows)


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
    parts = {split: _read_split(require_file(directory, name)) for split, name in FILES.items()}
    return tallrec_frame(parts, "tallrec-movie")


def tallrec_frame(
    parts: dict[str, pd.DataFrame], name: str, extra_columns: list[str] | None = None
) -> LabelledFrame:
    """TALLRec examples of each split (name -> rows) as one :class:`LabelledFrame`.

    ``X`` holds ``input``, ``liked``, ``disliked`` and ``target_title``, ``y`` is ``label`` (1 =
    ``"Yes."``); ``instruction``, ``output`` and ``extra_columns`` are kept for reference.
    """
    return LabelledFrame.from_splits(
        parts,
        "label",
        ["input"],
        [0, 1],
        name,
        features=["input", "liked", "disliked", "target_title"],
        class_names={0: "No.", 1: "Yes."},
        extra_columns=["instruction", "output", *(extra_columns or [])],
        kinds={"liked": "multi", "disliked": "multi", "target_title": "text"},
    )
