"""Columns of an applicant table as features of a gradient-boosted tree model.

The default :class:`~dayzero.risk.scorer.RiskScorer` reads the table itself: numerics as they
are (a missing value stays NaN: LightGBM learns where it goes), categoricals as integer codes
that LightGBM splits on as categories (a missing or never-seen value is NaN), and free-text
columns as a few principal components of their sentence vectors. This module holds those
pieces: typing the columns (:func:`split_columns`), finding free text
(:func:`detect_text_columns`), coding categories (:func:`category_codes`) and the text
reduction (:class:`TextReducer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.templates import MISSING_MARKERS, is_missing

# A string column is free text when it has many distinct values and they are sentences or
# nearly all different; a column with few values is a categorical whatever its words, because
# a tree splits on its values directly and no encoder is needed.
TEXT_MIN_DISTINCT = 30
TEXT_MIN_WORDS = 3.0
TEXT_MIN_DISTINCT_SHARE = 0.5
# Dates, codes and ids ("2017-05-04 07:13", "A-1032") are nearly all different too, but they
# are not words: at least this share of the distinct values must contain a letter.
TEXT_MIN_LETTER_SHARE = 0.5


def canonical(value: Any) -> str | None:
    """One string per category value, None when missing: ``2``, ``2.0`` and ``"2"`` are ``"2"``.

    Codes read from CSV come back as int, float (a column with a gap) or str; they must name
    the same category in ``fit``, scoring and value labels.
    """
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    text = " ".join(str(value).split())
    return text or None


def canonical_array(series: pd.Series) -> np.ndarray:
    """:func:`canonical` of every value (object array, None = missing), one call per distinct."""
    values = series.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists): one by one
        return np.array([canonical(v) for v in values], dtype=object)
    names = np.array([canonical(u) for u in uniques] + [None], dtype=object)
    return names[codes]  # the sentinel -1 picks the trailing None


def is_numeric_like(series: pd.Series) -> bool:
    """A numeric dtype (not bool), or an object column whose every present value is a number."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    present = [v for v in series if not is_missing(v)]
    if not present or any(isinstance(v, (bool, np.bool_)) for v in present):
        return False
    if not all(isinstance(v, (str, int, float, np.integer, np.floating)) for v in present):
        return False
    converted = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    return bool(converted.notna().all())


def is_datetime(series: pd.Series) -> bool:
    """A datetime dtype (naive or with a time zone)."""
    return bool(pd.api.types.is_datetime64_any_dtype(series))


def datetime_days(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 (float, NaN = missing) of dates or date strings, and the mask of
    present values that are not dates. Time zones are read as UTC."""
    values = series.map(lambda v: None if is_missing(v) else v)
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    days = (parsed - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
    days = np.asarray(days, dtype=np.float64)
    return days, np.isnan(days) & values.notna().to_numpy()


def detect_text_columns(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The free-text columns among ``columns``: strings with many distinct values that are
    sentences (mean of at least 3 words) or nearly all different (at least half distinct), and
    that are words (at least half of the distinct values contain a letter: not dates or ids).

    Parameters
    ----------
    frame : pandas.DataFrame
    columns : iterable of str
        Candidates (non-numeric columns).

    Returns
    -------
    list of str
    """
    found = []
    for column in columns:
        values = [v for v in frame[column] if isinstance(v, str) and not is_missing(v)]
        distinct = set(values)
        if len(distinct) < TEXT_MIN_DISTINCT:
            continue
        letters = np.mean([any(ch.isalpha() for ch in v) for v in distinct])
        if letters < TEXT_MIN_LETTER_SHARE:
            continue
        words = float(np.mean([len(v.split()) for v in distinct]))
        if words >= TEXT_MIN_WORDS or len(distinct) >= TEXT_MIN_DISTINCT_SHARE * len(values):
            found.append(column)
    return found


def split_columns(
    frame: pd.DataFrame,
    text_columns: Iterable[str] | None,
    categorical_override: Iterable[str] = (),
) -> tuple[list[str], list[str], list[str]]:
    """``(numeric, categorical, text)`` columns of a training frame, in frame order. Datetime
    columns are numeric (days since 1970, see :func:`datetime_days`): a tree splits on time.

    Parameters
    ----------
    frame : pandas.DataFrame
    text_columns : iterable of str or None
        The free-text columns; None: :func:`detect_text_columns` on the non-numeric ones.
    categorical_override : iterable of str
        Columns that are categorical even when their values are numbers (coded categories with
        value labels, e.g. ``SEX`` coded 1 / 2).
    """
    forced = set(categorical_override)
    named = None if text_columns is None else list(text_columns)
    numeric = [
        c
        for c in frame.columns
        if c not in forced
        and c not in (named or [])
        and (is_numeric_like(frame[c]) or is_datetime(frame[c]))
    ]
    rest = [c for c in frame.columns if c not in numeric]
    if named is None:
        text = detect_text_columns(frame, [c for c in rest if c not in forced])
    else:
        text = [c for c in frame.columns if c in set(named)]
    categorical = [c for c in rest if c not in text]
    return numeric, categorical, text


def fit_categories(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, list[str]]:
    """Column -> sorted canonical values seen in ``frame`` (missing values left out)."""
    return {c: sorted({v for v in canonical_array(frame[c]) if v is not None}) for c in columns}


def category_codes(series: pd.Series, categories: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``series`` in ``categories`` as float (NaN: missing or unseen) and the
    mask of values that are present but were never seen in ``fit``."""
    values = canonical_array(series)
    index = {c: float(i) for i, c in enumerate(categories)}
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.array([index.get(u, np.nan) for u in uniques] + [np.nan])
    seen = np.array([u in index for u in uniques] + [True])
    return lookup[codes], ~seen[codes]


def present_texts(series: pd.Series) -> list[str | None]:
    """The free text of every row, None when missing (whitespace collapsed)."""
    out: list[str | None] = []
    for value in series:
        if is_missing(value):
            out.append(None)
            continue
        text = " ".join(str(value).split())
        out.append(text if text and text not in MISSING_MARKERS else None)
    return out


class TextReducer:
    """Principal components of one text column's sentence vectors, fit on the training rows.

    Sentence vectors have hundreds of dimensions; trees split on one feature at a time, so a
    few directions of largest variance carry what the text says to the tree model at a cost
    it can afford. Rows without text get NaN components (missing, for LightGBM).

    Parameters
    ----------
    n_components : int
        At most this many components (fewer when the training texts span fewer).

    Attributes
    ----------
    mean_ : ndarray of shape (dim,)
    components_ : ndarray of shape (k, dim)
    """

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components

    def fit(self, vectors: np.ndarray) -> TextReducer:
        """Fit on the vectors of the training rows that have text (one row per applicant)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        self.mean_ = vectors.mean(axis=0) if len(vectors) else np.zeros(vectors.shape[1])
        if len(vectors) < 2:
            self.components_ = np.zeros((0, vectors.shape[1]))
            return self
        centred = vectors - self.mean_
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        keep = int(min(self.n_components, np.sum(singular > 1e-8 * max(singular[0], 1e-300))))
        # The sign of a singular vector is arbitrary; fix it so refits give the same features.
        largest = np.argmax(np.abs(vt[:keep]), axis=1)
        signs = np.sign(vt[np.arange(keep), largest])
        self.components_ = vt[:keep] * np.where(signs == 0, 1.0, signs)[:, None]
        return self

    @property
    def k(self) -> int:
        return int(self.components_.shape[0])

    def transform(self, vectors: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Components of every row, shape ``(len(present), k)``; NaN where ``present`` is False."""
        out = np.full((len(present), self.k), np.nan)
        if self.k and np.any(present):
            out[present] = (np.asarray(vectors, dtype=np.float64) - self.mean_) @ self.components_.T
        return out

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Tensors for ``weights.safetensors``."""
        return {
            f"{prefix}.mean": np.ascontiguousarray(self.mean_, dtype=np.float64),
            f"{prefix}.components": np.ascontiguousarray(self.components_, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> TextReducer:
        """Read what :meth:`to_arrays` wrote."""
        components = np.asarray(arrays[f"{prefix}.components"], dtype=np.float64)
        reducer = cls(int(components.shape[0]))
        reducer.mean_ = np.asarray(arrays[f"{prefix}.mean"], dtype=np.float64)
        reducer.components_ = components
        return reducer
