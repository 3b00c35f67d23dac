"""Sentiment sets: Financial PhraseBank, Twitter financial news, ChnSentiCorp, waimai-10k.

Every loader returns a :class:`LabelledFrame` with a ``text`` column and a ``label`` column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dayzero.datasets._files import MalformedDataError, dataset_dir, require_file
from dayzero.datasets._read import (
    check_complete,
    header_line_of,
    no_header_line_of,
    read_csv,
    to_number,
)
from dayzero.datasets.labelled import LabelledFrame

PHRASEBANK_FOLDER = "financial-phrasebank"
PHRASEBANK_FILES = {"50agree": "all-data.csv", "allagree": "financial_phrasebank_ishu.csv"}
PHRASEBANK_CLASSES = ["negative", "neutral", "positive"]
TWITTER_FOLDER = "twitter-financial-news"
TWITTER_FILES = {"train": "sent_train.csv", "valid": "sent_valid.csv"}
TWITTER_NAMES = {0: "bearish", 1: "bullish", 2: "neutral"}
CHNSENTICORP_FOLDER, CHNSENTICORP_FILE = "chnsenticorp-htl", "ChnSentiCorp_htl_all.csv"
WAIMAI_FOLDER, WAIMAI_FILE = "waimai-10k", "waimai_10k.csv"
BINARY_NAMES = {0: "negative", 1: "positive"}


def _check_labels(labels: pd.Series, allowed: list, file: Path, line_of, fix: str) -> None:
    bad = ~labels.isin(allowed).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = labels.iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise MalformedDataError(
            file, line_of(row), f"label {value!r} is not one of {allowed}", fix
        )


def load_financial_phrasebank(
    path: str | os.PathLike | None = None, agreement: str = "50agree"
) -> LabelledFrame:
    """Load Financial PhraseBank (Malo et al. 2014), one of its two agreement levels.

    Parameters
    ----------
    path
        The ``financial-phrasebank`` folder or the data root holding it.
    agreement
        ``"50agree"``: ``all-data.csv``, sentences at least half the annotators agreed on
        (4,846; Latin-1 text, ``label,sentence`` rows with an optional ``label,news`` header).
        ``"allagree"``: ``financial_phrasebank_ishu.csv``, sentences all annotators agreed on
        (2,264). That file's header says ``label,sentence`` but every row is
        ``row index, sentence, label`` with label 0 negative / 1 neutral / 2 positive (checked
        against the 50 % file: the 2,217 sentences found in both carry the same sentiment).

    Returns
    -------
    LabelledFrame
        Columns ``text`` and ``label`` (``"negative"``, ``"neutral"``, ``"positive"``); no
        source-defined split.
    """
    if agreement not in PHRASEBANK_FILES:
        raise ValueError(f"agreement must be one of {list(PHRASEBANK_FILES)}, not {agreement!r}")
    file = require_file(dataset_dir(PHRASEBANK_FOLDER, path), PHRASEBANK_FILES[agreement])
    fix = "restore the file from the Financial PhraseBank release"
    if agreement == "50agree":
        with open(file, "rb") as handle:
            has_header = handle.readline().lower().startswith(b"label,")
        frame = read_csv(
            file,
            header=None,
            names=["label", "text"],
            skiprows=int(has_header),
            encoding="latin-1",
            dtype=str,
            fix=fix,
        )
        line_of = (header_line_of if has_header else no_header_line_of)(file, "latin-1")
        check_complete(frame, ["label", "text"], file, fix, line_of)
        frame["label"] = frame["label"].str.strip()
    else:
        raw = read_csv(
            file, header=None, names=["row", "text", "code"], skiprows=1, dtype=str, fix=fix
        )
        line_of = header_line_of(file)
        check_complete(raw, ["text"], file, fix, line_of)
        codes = to_number(raw, "code", file, fix, line_of, integer=True)
        _check_labels(codes, [0, 1, 2], file, line_of, fix)
        frame = pd.DataFrame(
            {
                "label": np.asarray(PHRASEBANK_CLASSES, dtype=object)[codes.to_numpy()],
                "text": raw["text"],
            }
        )
    _check_labels(frame["label"], PHRASEBANK_CLASSES, file, line_of, fix)
    return LabelledFrame(
        frame[["text", "label"]].reset_index(drop=True),
        "label",
        ["text"],
        list(PHRASEBANK_CLASSES),
        f"financial-phrasebank-{agreement}",
    )


def _read_text_label(
    file: Path, text_column: str, allowed: list, fix: str, drop_missing_text: bool
) -> pd.DataFrame:
    raw = read_csv(file, columns=[text_column, "label"], dtype=str, fix=fix)
    line_of = header_line_of(file)
    labels = to_number(raw, "label", file, fix, line_of, integer=True)
    _check_labels(labels, allowed, file, line_of, fix)
    frame = pd.DataFrame({"text": raw[text_column], "label": labels})
    if drop_missing_text:
        frame = frame[frame["text"].notna() & (frame["text"].str.strip() != "")]
    else:
        check_complete(frame, ["text"], file, fix, line_of)
    return frame.reset_index(drop=True)


def load_twitter_financial_news(path: str | os.PathLike | None = None) -> LabelledFrame:
    """Load Twitter financial news sentiment (zeroshot/twitter-financial-news-sentiment, MIT).

    Returns
    -------
    LabelledFrame
        9,543 ``train`` and 2,388 ``valid`` tweets (column ``split``; use ``.split("train")``),
        ``text`` and ``label``: 0 bearish, 1 bullish, 2 neutral (``class_names``).
    """
    directory = dataset_dir(TWITTER_FOLDER, path)
    fix = "restore sent_train.csv / sent_valid.csv (columns text,label)"
    parts = {
        split: _read_text_label(
            require_file(directory, name), "text", list(TWITTER_NAMES), fix, False
        )
        for split, name in TWITTER_FILES.items()
    }
    return LabelledFrame.from_splits(
        parts,
        "label",
        ["text"],
        list(TWITTER_NAMES),
        "twitter-financial-news",
        class_names=dict(TWITTER_NAMES),
    )


def _load_binary(
    folder: str, file_name: str, name: str, path, drop_missing_text: bool
) -> LabelledFrame:
    file = require_file(dataset_dir(folder, path), file_name)
    frame = _read_text_label(
        file, "review", [0, 1], "restore the file (columns label,review)", drop_missing_text
    )
    return LabelledFrame(frame, "label", ["text"], [0, 1], name, class_names=dict(BINARY_NAMES))


def load_chnsenticorp(
    path: str | os.PathLike | None = None, drop_missing_text: bool = True
) -> LabelledFrame:
    """Load ChnSentiCorp hotel reviews (Chinese): ``text``, ``label`` 1 positive / 0 negative.

    The file has 7,766 rows; one (line 6,376: ``0,`` with no review) has no text.
    ``drop_missing_text=True`` (default) drops rows without text, giving 7,765; with
    ``False`` an empty review raises :class:`MalformedDataError` naming its line.
    """
    return _load_binary(
        CHNSENTICORP_FOLDER, CHNSENTICORP_FILE, "chnsenticorp-htl", path, drop_missing_text
    )


def load_waimai(
    path: str | os.PathLike | None = None, drop_missing_text: bool = True
) -> LabelledFrame:
    """Load waimai-10k delivery reviews (Chinese): 11,987 rows, ``label`` 1 positive / 0 negative.

    ``drop_missing_text`` as in :func:`load_chnsenticorp` (this file has no empty reviews).
    """
    return _load_binary(WAIMAI_FOLDER, WAIMAI_FILE, "waimai-10k", path, drop_missing_text)
