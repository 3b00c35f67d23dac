"""Rebuild TALLRec's MovieLens-100K few-shot train / valid / test sets from the rating log.

TALLRec (Bao et al., RecSys 2023) ships only its valid and test sets (``tallrec-movie``). Its
train part is rebuilt here by the rule those files were made with:

1. per user, the interactions sorted by timestamp (stable: ties keep file order);
2. every position ``i >= 10`` gives a record: the previous 10 interactions are the history, the
   interaction at ``i`` the target;
3. the records of all users are concatenated, users in the order they first appear in the
   interaction file, and only the last 10,000 records are kept;
4. the first 80 % are train, the next 10 % valid, the last 10 % test.

A record is rendered as TALLRec's prompt: history movies rated ``> 3`` are liked, the others
disliked; each movie is named ``movie_title (release_year)`` and the names are double-quoted and
joined by ``", "`` in history order. :func:`compare_with_files` checks the rebuilt valid and test
parts against the shipped files example by example.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dayzero.core.checks import check_k
from dayzero.core.schema import ITEM, TIMESTAMP, USER, VALUE
from dayzero.datasets._files import dataset_dir, require_file
from dayzero.datasets.labelled import SPLIT, LabelledFrame
from dayzero.datasets.movielens100k import FOLDER as ML100K_FOLDER
from dayzero.datasets.movielens100k import UNKNOWN_MARKERS, load_ml100k, read_atomic
from dayzero.datasets.tallrec import tallrec_frame

HISTORY_LENGTH = 10
KEEP_LAST = 10_000
LIKE_THRESHOLD = 3.0
SPLIT_NAMES = ("train", "valid", "test")
INSTRUCTION = (
    "Given the user's preference and unpreference, identify whether the user will like the "
    'target movie by answering "Yes." or "No.".'
)
ANSWER = {1: "Yes.", 0: "No."}
# The original u.item names the one unknown movie (item 267) just "unknown"; RecBole's copy
# spells its title and year "unkonwn". It is in no valid/test example, so this cannot be checked.
UNKNOWN_MOVIE_NAME = "unknown"


def render_title(title: str, year: str) -> str:
    """A movie's name as TALLRec writes it: ``"Toy Story (1995)"``.

    Parameters
    ----------
    title, year
        The raw ``movie_title`` and ``release_year`` fields of RecBole's ``ml-100k.item``. An
        unknown title and year (``"unkonwn"``) give ``"unknown"``, the original ``u.item`` name.
    """
    if title in UNKNOWN_MARKERS and year in UNKNOWN_MARKERS:
        return UNKNOWN_MOVIE_NAME
    return f"{title} ({year})"


def render_input(liked: list[str], disliked: list[str], target: str) -> str:
    """TALLRec's ``input`` text for one example.

    Examples
    --------
    >>> lines = render_input(["Heat (1995)", "Dave (1993)"], [], "Scream (1996)").splitlines()
    >>> lines[0]
    'User Preference: "Heat (1995)", "Dave (1993)"'
    >>> lines[1:]
    ['User Unpreference: ', 'Whether the user will like the target movie "Scream (1996)"?']
    """
    quote = ", ".join(f'"{name}"' for name in liked)
    unquote = ", ".join(f'"{name}"' for name in disliked)
    return (
        f"User Preference: {quote}\nUser Unpreference: {unquote}\n"
        f'Whether the user will like the target movie "{target}"?'
    )


def movie_names(path: str | os.PathLike | None = None) -> dict[int, str]:
    """``{item id: "Title (year)"}`` from the raw fields of ``ml-100k.item``.

    The raw fields are used, not :func:`~dayzero.datasets.movielens100k.load_ml100k`'s
    repaired ones, because TALLRec's names are the original ``u.item`` titles: item 1412 is
    ``"Land Before Time III: The Time of the Great Giving (1995) (V)"`` there, which the raw
    title and year (``"V"``) reproduce.

    Parameters
    ----------
    path
        The ``ml-100k`` folder or the data root holding it; default ``$DAYZERO_DATA/ml-100k``.
    """
    file = require_file(dataset_dir(ML100K_FOLDER, path), "ml-100k.item")
    raw = read_atomic(file, ["item_id", "movie_title", "release_year"])
    return {
        int(item): render_title(title, year)
        for item, title, year in zip(
            raw["item_id"], raw["movie_title"], raw["release_year"], strict=True
        )
    }


def build_records(interactions: pd.DataFrame, history_length: int = HISTORY_LENGTH) -> pd.DataFrame:
    """Every (previous ``history_length`` interactions, target) record of every user.

    Parameters
    ----------
    interactions
        Columns ``user``, ``item``, ``value`` (the rating) and ``timestamp``, in file order.
    history_length
        Interactions before the target that form the history (TALLRec: 10).

    Returns
    -------
    pandas.DataFrame
        One row per record, users in the order they first appear in ``interactions`` and each
        user's records in time order: ``user``, ``history_items`` and ``history_ratings``
        (lists, oldest first), ``target_item``, ``target_rating``, ``target_timestamp``.
        A user with ``n`` interactions gives ``max(0, n - history_length)`` records.
    """
    history_length = check_k(history_length, "history_length")
    missing = [c for c in (USER, ITEM, VALUE, TIMESTAMP) if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"interactions lack columns {missing}; pass the frame of load_ml100k(...).interactions"
        )
    users = interactions[USER].to_numpy()
    first_seen = {user: rank for rank, user in enumerate(pd.unique(users))}
    rank = np.fromiter((first_seen[u] for u in users), dtype=np.int64, count=len(users))
    # lexsort is stable, so equal timestamps of one user keep their file order.
    order = np.lexsort((interactions[TIMESTAMP].to_numpy(), rank))
    user = users[order]
    item = interactions[ITEM].to_numpy()[order]
    rating = interactions[VALUE].to_numpy(dtype=float)[order]
    stamp = interactions[TIMESTAMP].to_numpy()[order]
    starts = np.r_[0, np.flatnonzero(user[1:] != user[:-1]) + 1]
    position = np.arange(len(user)) - np.repeat(starts, np.diff(np.r_[starts, len(user)]))
    targets = np.flatnonzero(position >= history_length)
    window = targets[:, None] - np.arange(history_length, 0, -1)[None, :]
    return pd.DataFrame(
        {
            USER: user[targets],
            "history_items": [row.tolist() for row in item[window]],
            "history_ratings": [row.tolist() for row in rating[window]],
            "target_item": item[targets],
            "target_rating": rating[targets],
            "target_timestamp": stamp[targets],
        }
    )


def split_records(records: pd.DataFrame, keep_last: int = KEEP_LAST) -> dict[str, pd.DataFrame]:
    """Keep the last ``keep_last`` records and cut them 80 / 10 / 10 in order.

    Parameters
    ----------
    records
        The output of :func:`build_records`.
    keep_last
        Records kept from the end (TALLRec: 10,000); all of them when there are fewer.

    Returns
    -------
    dict
        ``{"train", "valid", "test"}`` -> consecutive slices: with ``n`` kept records, train is
        the first ``int(0.8 n)``, valid the next ``int(0.9 n) - int(0.8 n)``, test the rest.
    """
    keep_last = check_k(keep_last, "keep_last")
    kept = records.iloc[max(0, len(records) - keep_last) :].reset_index(drop=True)
    n = len(kept)
    cuts = [0, int(n * 0.8), int(n * 0.9), n]
    return {
        name: kept.iloc[cuts[i] : cuts[i + 1]].reset_index(drop=True)
        for i, name in enumerate(SPLIT_NAMES)
    }


def render_records(records: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """Add TALLRec's text columns to records of :func:`build_records`.

    Returns
    -------
    pandas.DataFrame
        ``records`` plus ``liked`` and ``disliked`` (names in history order), ``target_title``,
        ``label`` (1 if the target rating is ``> 3``), ``instruction``, ``input`` and ``output``.
    """
    unknown = {i for row in records["history_items"] for i in row} | set(records["target_item"])
    unknown -= set(names)
    if unknown:
        raise ValueError(f"items {sorted(unknown)[:5]} have no name; pass the matching item table")
    out = records.copy()
    out["liked"] = [
        [names[i] for i, r in zip(items, ratings, strict=True) if r > LIKE_THRESHOLD]
        for items, ratings in zip(records["history_items"], records["history_ratings"], strict=True)
    ]
    out["disliked"] = [
        [names[i] for i, r in zip(items, ratings, strict=True) if r <= LIKE_THRESHOLD]
        for items, ratings in zip(records["history_items"], records["history_ratings"], strict=True)
    ]
    out["target_title"] = [names[i] for i in records["target_item"]]
    out["label"] = (records["target_rating"] > LIKE_THRESHOLD).astype(np.int64)
    out["instruction"] = INSTRUCTION
    out["input"] = [
        render_input(liked, disliked, target)
        for liked, disliked, target in zip(
            out["liked"], out["disliked"], out["target_title"], strict=True
        )
    ]
    out["output"] = out["label"].map(ANSWER)
    return out


def build_tallrec_movie(
    path: str | os.PathLike | None = None, keep_last: int = KEEP_LAST
) -> LabelledFrame:
    """TALLRec's train, valid and test sets rebuilt from ``ml-100k``.

    Parameters
    ----------
    path
        The ``ml-100k`` folder or the data root holding it; default ``$DAYZERO_DATA/ml-100k``.
    keep_last
        Records kept from the end before the 80/10/10 cut (TALLRec: 10,000).

    Returns
    -------
    LabelledFrame
        The columns of :func:`~dayzero.datasets.tallrec.load_tallrec_movie` (``X`` holds
        ``input``, ``liked``, ``disliked``, ``target_title``; ``y`` is ``label``) plus the ids
        and ratings behind each example, with ``split`` = ``train`` (8,000), ``valid`` and
        ``test`` (1,000 each).
    """
    dataset = load_ml100k(path)
    records = build_records(dataset.interactions.frame)
    parts = split_records(records, keep_last)
    names = movie_names(path)
    rendered = {split: render_records(part, names) for split, part in parts.items()}
    return tallrec_frame(
        rendered,
        "tallrec-movie-rebuilt",
        [
            USER,
            "history_items",
            "history_ratings",
            "target_item",
            "target_rating",
            "target_timestamp",
        ],
    )


@dataclass
class ReproductionReport:
    """How the rebuilt valid / test parts compare with TALLRec's files.

    Attributes
    ----------
    sizes
        ``{split: (rebuilt examples, file examples)}``.
    mismatches
        ``{split: [positions whose instruction, input or output differ]}``.
    first_difference
        A readable description of the first differing example, or ``None``.
    """

    sizes: dict[str, tuple[int, int]]
    mismatches: dict[str, list[int]] = field(default_factory=dict)
    first_difference: str | None = None

    @property
    def identical(self) -> bool:
        """True when every split has the same number of examples and none differs."""
        return all(a == b for a, b in self.sizes.values()) and not any(self.mismatches.values())


def compare_with_files(rebuilt: LabelledFrame, files: LabelledFrame) -> ReproductionReport:
    """Compare rebuilt and shipped valid / test sets example by example, in order.

    Parameters
    ----------
    rebuilt
        :func:`build_tallrec_movie`'s output.
    files
        :func:`~dayzero.datasets.tallrec.load_tallrec_movie`'s output.

    Returns
    -------
    ReproductionReport
        ``identical`` is True when ``instruction``, ``input`` and ``output`` agree everywhere.
    """
    columns = ["instruction", "input", "output"]
    report = ReproductionReport(sizes={})
    for split in ("valid", "test"):
        ours = rebuilt.frame.loc[rebuilt.frame[SPLIT] == split, columns].reset_index(drop=True)
        theirs = files.frame.loc[files.frame[SPLIT] == split, columns].reset_index(drop=True)
        report.sizes[split] = (len(ours), len(theirs))
        n = min(len(ours), len(theirs))
        differs = ~(ours.iloc[:n] == theirs.iloc[:n]).all(axis=1).to_numpy()
        report.mismatches[split] = np.flatnonzero(differs).tolist()
        if report.first_difference is None and report.mismatches[split]:
            at = report.mismatches[split][0]
            report.first_difference = (
                f"{split} example {at}:\nrebuilt {ours.iloc[at].to_dict()!r}\n"
                f"file    {theirs.iloc[at].to_dict()!r}"
            )
    return report
