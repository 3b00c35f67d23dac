"""Entity features beside a tower's text vector: dense attributes from typed fields (one-hot
categories, multi-hot lists, standardised numbers), bags of field tokens (high-cardinality
values) and a TF-IDF weighted bag of the words of the entity's text (the lexical features).

Fields with too many distinct values (actors, zip codes) are left to the text view and the token
bags: one-hot vectors of thousands of rare values only add noise and parameters.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.schema import Entities
from dayzero.core.templates import is_missing


def _number(value: Any) -> float:
    """A numeric field's value as a float; dates and timestamps (a release date typed
    ``numeric``) as seconds since the epoch."""
    if isinstance(value, dt.date | np.datetime64):
        return pd.Timestamp(value).timestamp()
    return float(value)


class AttributeEncoder:
    """Maps entity records to a fixed-width float32 vector.

    Parameters
    ----------
    max_values
        Categorical / multi fields with more distinct values than this (after dropping values
        seen fewer than ``min_count`` times) are skipped.
    min_count
        Values seen fewer times than this share no column (they encode as all zeros).
    """

    def __init__(self, max_values: int = 64, min_count: int = 2) -> None:
        self.max_values = max_values
        self.min_count = min_count
        self.columns_: list[tuple[str, str, Any]] = []  # (field, kind, value or stats)

    @property
    def width(self) -> int:
        return len(self.columns_)

    def fit(self, entities: Entities | None) -> AttributeEncoder:
        self.columns_ = []
        if entities is None:
            return self
        frame = entities.frame
        for name, kind in entities.fields.items():
            values = frame[name].tolist()
            if kind in ("categorical", "boolean", "multi"):
                counts: Counter = Counter()
                for v in values:
                    if is_missing(v):
                        continue
                    counts.update(v if kind == "multi" else [v])
                kept = sorted((str(v) for v, c in counts.items() if c >= self.min_count))
                if 0 < len(kept) <= self.max_values:
                    self.columns_.extend((name, kind, v) for v in kept)
            elif kind == "numeric":
                numbers = np.array(
                    [_number(v) for v in values if not is_missing(v)], dtype=np.float64
                )
                if len(numbers) > 1 and numbers.std() > 0:
                    self.columns_.append(
                        (name, kind, [float(numbers.mean()), float(numbers.std())])
                    )
        return self

    def transform_records(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        out = np.zeros((len(records), self.width), dtype=np.float32)
        for col, (name, kind, spec) in enumerate(self.columns_):
            for row, record in enumerate(records):
                value = record.get(name)
                if is_missing(value):
                    continue
                if kind == "numeric":
                    mean, std = spec
                    out[row, col] = np.clip((_number(value) - mean) / std, -5, 5)
                elif kind == "multi":
                    out[row, col] = float(spec in {str(v) for v in value})
                else:
                    out[row, col] = float(str(value) == spec)
        return out

    @property
    def fields(self) -> list[str]:
        """Fields that got at least one column."""
        return list(dict.fromkeys(c[0] for c in self.columns_))

    def transform(self, entities: Entities | None, ids: Sequence[Hashable]) -> np.ndarray:
        """Rows for ``ids`` in order; ids without a record get zeros."""
        if entities is None or self.width == 0:
            return np.zeros((len(ids), self.width), dtype=np.float32)
        records = [entities.record(i) if i in entities else {} for i in ids]
        return self.transform_records(records)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_values": self.max_values,
            "min_count": self.min_count,
            "columns": [list(c) for c in self.columns_],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttributeEncoder:
        encoder = cls(data["max_values"], data["min_count"])
        encoder.columns_ = [tuple(c) for c in data["columns"]]
        return encoder


class TokenEncoder:
    """High-cardinality categorical / multi fields (directors, actors, tags) as bags of tokens.

    Each frequent ``field=value`` pair gets an index; an entity becomes the list of its token
    indices, fed to an ``EmbeddingBag`` (the LightFM idea: an embedding per feature value, so a
    new film by a known director inherits what was learned about the director).

    Parameters
    ----------
    exclude
        Fields already one-hot encoded by an :class:`AttributeEncoder`.
    min_count
        Values seen fewer times get no token.
    max_tokens
        Keep at most this many tokens (most frequent first).
    """

    def __init__(self, exclude: Sequence[str] = (), min_count: int = 2, max_tokens: int = 50_000):
        self.exclude = list(exclude)
        self.min_count = min_count
        self.max_tokens = max_tokens
        self.vocab_: dict[str, int] = {}
        self.fields_: list[tuple[str, str]] = []

    @property
    def size(self) -> int:
        return len(self.vocab_)

    def fit(self, entities: Entities | None) -> TokenEncoder:
        self.vocab_, self.fields_ = {}, []
        if entities is None:
            return self
        counts: Counter = Counter()
        for name, kind in entities.fields.items():
            if kind not in ("categorical", "multi") or name in self.exclude:
                continue
            self.fields_.append((name, kind))
            for value in entities.frame[name].tolist():
                counts.update(self._tokens(name, kind, value))
        frequent = [t for t, c in counts.most_common(self.max_tokens) if c >= self.min_count]
        self.vocab_ = {t: i for i, t in enumerate(sorted(frequent))}
        return self

    @staticmethod
    def _tokens(name: str, kind: str, value: Any) -> list[str]:
        if is_missing(value):
            return []
        values = value if kind == "multi" else [value]
        return [f"{name}={v}" for v in values if not is_missing(v)]

    def transform(
        self, entities: Entities | None, ids: Sequence[Hashable]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, offsets)`` for ``torch.nn.EmbeddingBag``; unknown ids get empty bags."""
        indices: list[int] = []
        offsets = np.zeros(len(ids), dtype=np.int64)
        for row, entity in enumerate(ids):
            offsets[row] = len(indices)
            if entities is None or entity not in entities:
                continue
            record = entities.record(entity)
            for name, kind in self.fields_:
                for token in self._tokens(name, kind, record.get(name)):
                    index = self.vocab_.get(token)
                    if index is not None:
                        indices.append(index)
        return np.asarray(indices, dtype=np.int64), offsets

    def to_json(self) -> dict[str, Any]:
        return {
            "exclude": self.exclude,
            "min_count": self.min_count,
            "max_tokens": self.max_tokens,
            "fields": [list(f) for f in self.fields_],
            "vocab": sorted(self.vocab_, key=self.vocab_.get),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenEncoder:
        encoder = cls(data["exclude"], data["min_count"], data["max_tokens"])
        encoder.fields_ = [tuple(f) for f in data["fields"]]
        encoder.vocab_ = {t: i for i, t in enumerate(data["vocab"])}
        return encoder


class LexicalEncoder:
    """The words of an entity's text as a TF-IDF weighted bag (the sparse lexical features).

    The vocabulary and the IDF statistics come from the texts given to :meth:`fit` (the
    training items only); later texts are transformed with them, so a new item's unseen words
    are dropped and its weights use the training IDF. Each row is ``(1 + log tf) * idf``
    normalised to unit length, returned as ``(indices, offsets, weights)`` for a
    ``torch.nn.EmbeddingBag(mode="sum")`` with ``per_sample_weights``.

    Parameters
    ----------
    min_df
        Words in fewer training texts get no index (1 keeps a word shared by one training item
        and a new one: a sequel, an author).
    max_features
        Keep at most this many words (most frequent first).
    """

    def __init__(self, min_df: int = 1, max_features: int = 50_000) -> None:
        self.min_df = min_df
        self.max_features = max_features
        self.vocab_: list[str] = []
        self.idf_ = np.zeros(0, dtype=np.float64)

    @property
    def size(self) -> int:
        return len(self.vocab_)

    def fit(self, texts: Sequence[str]) -> LexicalEncoder:
        """Learn the vocabulary and IDF of ``texts``; no usable word leaves it empty."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vocab_, self.idf_ = [], np.zeros(0, dtype=np.float64)
        texts = [t for t in texts if t.strip()]
        if not texts:
            return self
        vectorizer = TfidfVectorizer(
            min_df=min(self.min_df, len(texts)),
            max_features=self.max_features,
            stop_words="english",
        )
        try:
            vectorizer.fit(texts)
        except ValueError:  # only stop words or no token at all
            return self
        self.vocab_ = vectorizer.get_feature_names_out().tolist()
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float64)
        return self

    def transform(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indices, offsets, weights)`` of ``texts`` (int64, int64, float32)."""
        if not self.vocab_ or not len(texts):
            return (
                np.zeros(0, dtype=np.int64),
                np.zeros(len(texts), dtype=np.int64),
                np.zeros(0, dtype=np.float32),
            )
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        counts = CountVectorizer(vocabulary=self.vocab_).transform(list(texts)).tocsr()
        counts.data = (1.0 + np.log(counts.data)) * self.idf_[counts.indices]
        rows = normalize(counts).tocsr()
        rows.sort_indices()
        return (
            rows.indices.astype(np.int64),
            rows.indptr[:-1].astype(np.int64),
            rows.data.astype(np.float32),
        )

    def to_json(self) -> dict[str, Any]:
        """Settings and vocabulary (the IDF is an array: the caller saves it beside)."""
        return {"min_df": self.min_df, "max_features": self.max_features, "vocab": self.vocab_}

    @classmethod
    def from_json(cls, data: dict[str, Any], idf: np.ndarray) -> LexicalEncoder:
        encoder = cls(data["min_df"], data["max_features"])
        encoder.vocab_ = list(data["vocab"])
        encoder.idf_ = np.asarray(idf, dtype=np.float64)
        return encoder
