"""CiteULike-a (Wang, Chen & Li 2013): users' article libraries; article text is its tags.

``users.dat``, ``item-tag.dat`` and ``citations.dat`` hold one line per user / article:
``"<count> <ids...>"`` with 0-based ids; a user's id is its line number minus one, an article's
likewise. The abstracts are not in this copy, so an article's side is its tags and its citations
(the articles it is linked to, in either direction).

``heater-split/`` holds Heater's (SIGIR 2020) item cold-start split of the same pairs
(:func:`load_heater_split`): ``train.csv``, ``vali.csv`` and ``test.csv`` of ``uid,iid`` rows
(0-based, the ids above) and ``test_item_ids.csv``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dayzero.core.schema import Dataset, Entities, FieldKind, Interactions
from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file
from dayzero.datasets._read import read_csv

FOLDER = "citeulike-a"
FILES = ("users.dat", "item-tag.dat", "tags.dat")
CITATIONS = "citations.dat"
ITEM_FIELDS: dict[str, FieldKind] = {"tags": "multi", "text": "text"}
HEATER_FOLDER = "heater-split"
HEATER_FILES = ("train.csv", "vali.csv", "test.csv", "test_item_ids.csv")
_FIX = "restore the file from the citeulike-a repository (js05212/citeulike-a)"
_HEATER_FIX = "restore heater-split/ from Zziwei/Heater--Cold-Start-Recommendation (data/CiteULike)"


def read_count_lists(file: Path, max_id: int | None = None) -> list[np.ndarray]:
    """Parse a ``"<count> <id> <id> ..."`` file into one int array per line.

    Raises :class:`MalformedDataError` naming the line when a token is not an integer, the count
    does not match the ids that follow, or an id is negative or above ``max_id``.
    """
    out = []
    with open(file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            tokens = line.split()
            if not tokens:
                raise MalformedDataError(file, number, "line is empty", _FIX)
            try:
                values = np.array(tokens, dtype=np.int64)
            except ValueError as exc:
                raise MalformedDataError(file, number, f"not all integers ({exc})", _FIX) from exc
            count, ids = int(values[0]), values[1:]
            if count != len(ids):
                raise MalformedDataError(
                    file, number, f"count says {count} ids but {len(ids)} follow", _FIX
                )
            if len(ids) and (ids.min() < 0 or (max_id is not None and ids.max() > max_id)):
                raise MalformedDataError(
                    file, number, f"an id is outside 0..{max_id} (0-based ids expected)", _FIX
                )
            out.append(ids)
    return out


def load_citeulike(path: str | os.PathLike | None = None, with_citations: bool = False) -> Dataset:
    """Load CiteULike-a as implicit feedback with tag-only article text.

    Parameters
    ----------
    path
        The ``citeulike-a`` folder or the data root holding it; default
        ``$DAYZERO_DATA/citeulike-a``.
    with_citations
        Also read ``citations.dat``: the items get a ``citations`` field (``multi``), the ids
        of the articles each one is linked to, in file order.

    Returns
    -------
    Dataset
        204,986 user-article pairs with ``value`` 1.0 and no timestamp; user ids 0..5,550 (line
        number - 1 in ``users.dat``); item entities for all 16,980 articles with ``tags`` (list of
        tag strings, in file order) and ``text`` (the tags joined by ``", "``; empty for untagged
        articles); with ``with_citations`` also ``citations`` (list of article ids).

    Raises
    ------
    DataNotFoundError
        The folder or ``users.dat`` / ``item-tag.dat`` / ``tags.dat`` (``citations.dat``) is
        missing.
    MalformedDataError
        A line's count disagrees with its ids, a token is not an integer, or an id is out of
        range; names the file and line.
    """
    directory = dataset_dir(FOLDER, path)
    users_file, item_tag_file, tags_file = (require_file(directory, name) for name in FILES)
    with open(tags_file, encoding="utf-8") as handle:
        tag_names = np.array(handle.read().splitlines(), dtype=object)
    item_tags = read_count_lists(item_tag_file, max_id=len(tag_names) - 1)
    libraries = read_count_lists(users_file, max_id=len(item_tags) - 1)

    sizes = np.fromiter((len(x) for x in libraries), dtype=np.int64, count=len(libraries))
    inter = pd.DataFrame(
        {
            "user": np.repeat(np.arange(len(libraries), dtype=np.int64), sizes),
            "item": np.concatenate(libraries) if libraries else np.empty(0, np.int64),
            "value": 1.0,
        }
    )
    tags = [tag_names[ids].tolist() for ids in item_tags]
    items = pd.DataFrame(
        {"tags": tags, "text": [", ".join(t) for t in tags]},
        index=pd.Index(np.arange(len(item_tags), dtype=np.int64), name="item"),
    )
    fields = dict(ITEM_FIELDS)
    if with_citations:
        file = require_file(directory, CITATIONS)
        links = read_count_lists(file, max_id=len(item_tags) - 1)
        if len(links) != len(item_tags):
            raise MalformedDataError(
                file,
                None,
                f"{len(links)} lines but item-tag.dat has {len(item_tags)} articles",
                _FIX,
            )
        items["citations"] = [ids.tolist() for ids in links]
        fields["citations"] = "multi"
    return Dataset(Interactions(inter), None, Entities(items, fields, kind="item"), "citeulike-a")


@dataclass
class HeaterSplit:
    """Heater's item cold-start split of CiteULike-a (``heater-split/``).

    Attributes
    ----------
    train
        The training pairs (warm articles), value 1.0, in file order.
    validation
        ``vali.csv``: pairs of the validation cold articles.
    test
        ``test.csv``: pairs of the test cold articles.
    test_items
        The cold test articles: the distinct articles of ``test.csv``, in order of first
        appearance (2,378).
    listed_test_ids
        ``test_item_ids.csv`` as published, in file order. It does not list the articles of
        ``test.csv`` (3,396 ids, 2,713 of them training articles: another numbering of
        Heater's), so nothing here reads it; it is kept for comparison only.
    """

    train: Interactions
    validation: Interactions
    test: Interactions
    test_items: list[int]
    listed_test_ids: list[int]


def _read_pairs(file: Path) -> Interactions:
    frame = read_csv(file, columns=["uid", "iid"], fix=_HEATER_FIX)
    for column in ("uid", "iid"):
        values = frame[column]
        if not pd.api.types.is_integer_dtype(values) or (len(values) and values.min() < 0):
            raise MalformedDataError(
                file, None, f"column {column!r} must hold 0-based integer ids", _HEATER_FIX
            )
    return Interactions.from_frame(frame, user="uid", item="iid", value=None)


def load_heater_split(path: str | os.PathLike | None = None) -> HeaterSplit:
    """Load Heater's train / validation / test item cold-start split of CiteULike-a.

    Parameters
    ----------
    path
        The ``citeulike-a`` folder (or the data root holding it, or ``heater-split/``
        itself); default ``$DAYZERO_DATA/citeulike-a``.

    Returns
    -------
    HeaterSplit
        164,210 training, 13,037 validation and 27,739 test pairs (value 1.0, no timestamps) of
        the same 0-based ids as :func:`load_citeulike`, and the 2,378 cold test articles
        (those of ``test.csv``).

    Raises
    ------
    DataNotFoundError
        The folder or one of its four files is missing.
    MalformedDataError
        A file lacks the ``uid,iid`` header or holds a non-integer id, or the three parts
        share an article.
    """
    given = Path(path).expanduser() if path is not None else None
    if given is not None and given.name == HEATER_FOLDER and given.is_dir():
        folder = given
    else:
        folder = dataset_dir(FOLDER, path) / HEATER_FOLDER
    train, validation, test, ids = (require_file(folder, name) for name in HEATER_FILES)
    parts = {name: _read_pairs(file) for name, file in (
        ("train.csv", train), ("vali.csv", validation), ("test.csv", test))}  # fmt: skip
    seen: dict[int, str] = {}
    for name, part in parts.items():
        for item in part.items.tolist():
            if item in seen:
                raise MalformedDataError(
                    folder / name,
                    None,
                    f"article {item} is also in {seen[item]}: the parts must not share articles",
                    _HEATER_FIX,
                )
            seen[item] = name
    with open(ids, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    try:
        listed = [int(line) for line in lines]
    except ValueError as exc:
        raise MalformedDataError(ids, None, f"not all integers ({exc})", _HEATER_FIX) from exc
    test = parts["test.csv"]
    return HeaterSplit(parts["train.csv"], parts["vali.csv"], test, test.items.tolist(), listed)
