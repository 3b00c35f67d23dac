"""CiteULike-a (Wang, Chen & Li 2013): users' article libraries; article text is its tags.

``users.dat`` and ``item-tag.dat`` hold one line per user / article: ``"<count> <ids...>"`` with
0-based ids; a user's id is its line number minus one, an article's likewise. The abstracts are
not in this copy, so an article's text is its tags.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dayzero.core.schema import Dataset, Entities, FieldKind, Interactions
from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file

FOLDER = "citeulike-a"
FILES = ("users.dat", "item-tag.dat", "tags.dat")
ITEM_FIELDS: dict[str, FieldKind] = {"tags": "multi", "text": "text"}
_FIX = "restore the file from the citeulike-a repository (js05212/citeulike-a)"


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


def load_citeulike(path: str | os.PathLike | None = None) -> Dataset:
    """Load CiteULike-a as implicit feedback with tag-only article text.

    Parameters
    ----------
    path
        The ``citeulike-a`` folder or the data root holding it; default
        ``$DAYZERO_DATA/citeulike-a``.

    Returns
    -------
    Dataset
        204,986 user-article pairs with ``value`` 1.0 and no timestamp; user ids 0..5,550 (line
        number - 1 in ``users.dat``); item entities for all 16,980 articles with ``tags`` (list of
        tag strings, in file order) and ``text`` (the tags joined by ``", "``; empty for untagged
        articles).

    Raises
    ------
    DataNotFoundError
        The folder or ``users.dat`` / ``item-tag.dat`` / ``tags.dat`` is missing.
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
    return Dataset(
        Interactions(inter), None, Entities(items, dict(ITEM_FIELDS), kind="item"), "citeulike-a"
    )
