"""Offline loaders for the public datasets, and a registry of them.

``path`` arguments accept a dataset's folder or the data root holding it; without one the loaders
read ``$DAYZERO_DATA/<folder>``. The restaurant and German credit loaders fall back to the copies
shipped in ``dayzero/demo_data`` when ``DAYZERO_DATA`` is unset (explicit path > DAYZERO_DATA >
shipped copy).

Examples
--------
>>> from dayzero.datasets import DATASETS, load
>>> sorted(DATASETS)[:3]
['chnsenticorp-htl', 'citeulike-a', 'financial-phrasebank']
>>> load("german-credit").counts()  # the shipped copy when DAYZERO_DATA is unset
{0: 700, 1: 300}
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dayzero.core.settings import DATA_ENV, DEMO_DATA, DataNotFoundError
from dayzero.datasets._files import MalformedDataError
from dayzero.datasets.citeulike import load_citeulike
from dayzero.datasets.german_credit import load_german_credit
from dayzero.datasets.labelled import LabelledFrame
from dayzero.datasets.movielens100k import load_ml100k
from dayzero.datasets.restaurant import FILES as RESTAURANT_FILES
from dayzero.datasets.restaurant import load_restaurant, read_restaurant_ratings
from dayzero.datasets.sentiment import (
    load_chnsenticorp,
    load_financial_phrasebank,
    load_twitter_financial_news,
    load_waimai,
)
from dayzero.datasets.steam import (
    TitleMatch,
    load_steam_200k,
    load_steam_games,
    load_steam_playtime,
    load_steam_reviews,
    match_steam_200k_to_games,
    read_steam_reviews,
)
from dayzero.datasets.tallrec import load_tallrec, load_tallrec_movie


def _load_ml1m_melu(path=None, **kwargs):
    # Imported on use: the MeLU loader lives in its own module and is optional here.
    module = importlib.import_module("dayzero.datasets.melu")
    return module.load_ml1m_melu(path, **kwargs)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about one dataset.

    Attributes
    ----------
    name
        Registry name (``"ml-100k"``).
    folder
        Folder under the data root.
    loader
        ``loader(path=None, **kw)`` returning a Dataset, Entities, LabelledFrame or MeluData.
    required_files
        Files (relative to the folder) the loader needs.
    licence
        The licence as stated by the source.
    description
        One line on what it is.
    shipped
        True when a copy ships in ``dayzero/demo_data`` (CC BY 4.0 data only).
    """

    name: str
    folder: str
    loader: Callable[..., Any]
    required_files: tuple[str, ...]
    licence: str
    description: str
    shipped: bool = False


_MELU_FILES = (
    "meta_training.json",
    "meta_training_y.json",
    "warm_up.json",
    "warm_up_y.json",
    "user_cold_testing.json",
    "user_cold_testing_y.json",
    "item_cold_testing.json",
    "item_cold_testing_y.json",
    "user_and_item_cold_testing.json",
    "user_and_item_cold_testing_y.json",
    "original/movies_extrainfos.dat",
    "original/users.dat",
)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "ml-100k",
            "ml-100k",
            load_ml100k,
            ("ml-100k.inter", "ml-100k.item", "ml-100k.user"),
            "GroupLens terms: research use, no redistribution",
            "MovieLens-100K (RecBole atomic files): 100,000 ratings, 943 users, 1,682 movies",
        ),
        DatasetInfo(
            "ml-1m-melu",
            "ml-1m-melu",
            _load_ml1m_melu,
            _MELU_FILES,
            "GroupLens terms; plots from OMDb via MeLU",
            "MovieLens-1M split by the MeLU cold-start protocol, with OMDb plots",
        ),
        DatasetInfo(
            "citeulike-a",
            "citeulike-a",
            load_citeulike,
            ("users.dat", "item-tag.dat", "tags.dat"),
            "research use, none stated",
            "CiteULike-a: 5,551 users, 16,980 articles (text = tags), 204,986 pairs",
        ),
        DatasetInfo(
            "steam-games",
            "steam-games",
            load_steam_games,
            ("steam_games.json.gz",),
            "research use (McAuley lab)",
            "Steam game metadata (McAuley): title, tags, genres, specs, developer, price",
        ),
        DatasetInfo(
            "steam-reviews",
            "steam-reviews",
            load_steam_reviews,
            ("user_reviews_LFarahCometti.csv.gz",),
            "research use",
            "Steam recommend / not-recommend verdicts: 59,161 by 25,467 users on 3,682 games",
        ),
        DatasetInfo(
            "steam-200k",
            "steam-200k",
            load_steam_200k,
            ("steam.zip",),
            "not stated (Kaggle steam-video-games)",
            "steam-200k: 129,511 purchases and 70,489 play-hours rows, game names only",
        ),
        DatasetInfo(
            "german-credit",
            "german-credit",
            load_german_credit,
            ("germancredit.csv",),
            "CC BY 4.0 (Hofmann 1994, UCI)",
            "Statlog German credit: 1,000 applicants, 20 attributes, 700 good / 300 bad",
            shipped=True,
        ),
        DatasetInfo(
            "financial-phrasebank",
            "financial-phrasebank",
            load_financial_phrasebank,
            ("all-data.csv", "financial_phrasebank_ishu.csv"),
            "CC BY-NC-SA 3.0 (do not ship)",
            "Financial PhraseBank: 4,846 sentences (>=50% agree), 2,264 (all agree)",
        ),
        DatasetInfo(
            "twitter-financial-news",
            "twitter-financial-news",
            load_twitter_financial_news,
            ("sent_train.csv", "sent_valid.csv"),
            "MIT",
            "Finance tweets, bearish / bullish / neutral: 9,543 train, 2,388 valid",
        ),
        DatasetInfo(
            "chnsenticorp-htl",
            "chnsenticorp-htl",
            load_chnsenticorp,
            ("ChnSentiCorp_htl_all.csv",),
            "not stated",
            "ChnSentiCorp hotel reviews (Chinese), 7,766 rows, positive / negative",
        ),
        DatasetInfo(
            "waimai-10k",
            "waimai-10k",
            load_waimai,
            ("waimai_10k.csv",),
            "not stated",
            "waimai-10k food-delivery reviews (Chinese), 11,987 rows, positive / negative",
        ),
        DatasetInfo(
            "restaurant-uci",
            "restaurant-uci",
            load_restaurant,
            RESTAURANT_FILES,
            "CC BY 4.0 (Vargas-Govea et al. 2011, UCI)",
            "Restaurant & consumer data: 1,161 ratings by 138 diners on 130 restaurants",
            shipped=True,
        ),
        DatasetInfo(
            "tallrec-movie",
            "tallrec-movie",
            load_tallrec_movie,
            ("valid.json", "test.json"),
            "derived from MovieLens (GroupLens terms)",
            "TALLRec's ML-100K few-shot valid and test sets, 1,000 examples each",
        ),
    )
}


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def _missing_files(folder: Path, info: DatasetInfo) -> list[str]:
    return [f for f in info.required_files if not (folder / f).is_file()]


def available(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Which datasets can be loaded, checked by file presence only (nothing is read).

    Parameters
    ----------
    root
        The data root; default ``$DAYZERO_DATA``.

    Returns
    -------
    dict
        Name -> ``"found"``, ``"found (shipped demo copy)"`` (restaurant and German credit when
        the data root lacks them and ``DAYZERO_DATA`` is unset, the rule their loaders follow)
        or ``"missing: <files>"`` (``"missing: <folder>/"`` when the whole folder is absent,
        ``"missing: data root (set DAYZERO_DATA)"`` when no root is known).
    """
    chosen = root if root is not None else os.environ.get(DATA_ENV)
    base = Path(chosen).expanduser() if chosen else None
    report = {}
    for name, info in DATASETS.items():
        if base is None:
            status = f"missing: data root (set {DATA_ENV})"
        elif not (base / info.folder).is_dir():
            status = f"missing: {info.folder}/"
        else:
            missing = _missing_files(base / info.folder, info)
            status = "found" if not missing else "missing: " + ", ".join(missing)
        shipped_applies = info.shipped and root is None and not os.environ.get(DATA_ENV)
        if (
            status != "found"
            and shipped_applies
            and not _missing_files(DEMO_DATA / info.folder, info)
        ):
            status = "found (shipped demo copy)"
        report[name] = status
    return report


def load(name: str, path: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """Load dataset ``name`` with its registered loader (``path`` and ``kwargs`` passed on)."""
    return _info(name).loader(path, **kwargs)


__all__ = [
    "DATASETS",
    "DataNotFoundError",
    "DatasetInfo",
    "LabelledFrame",
    "MalformedDataError",
    "TitleMatch",
    "available",
    "load",
    "load_chnsenticorp",
    "load_citeulike",
    "load_financial_phrasebank",
    "load_german_credit",
    "load_ml100k",
    "load_restaurant",
    "load_steam_200k",
    "load_steam_games",
    "load_steam_playtime",
    "load_steam_reviews",
    "load_tallrec",
    "load_tallrec_movie",
    "load_twitter_financial_news",
    "load_waimai",
    "match_steam_200k_to_games",
    "read_restaurant_ratings",
    "read_steam_reviews",
]
