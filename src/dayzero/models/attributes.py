"""Dense attribute features from typed entity fields (one-hot categories, multi-hot lists,
standardised numbers), the "attributes" half of a tower's input beside its text vector.

Fields with too many distinct values (actors, zip codes) are left to the text view: one-hot
vectors of thousands of rare values only add noise and parameters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from dayzero.data.schema import Entities
from dayzero.data.templates import is_missing


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
                    [float(v) for v in values if not is_missing(v)], dtype=np.float64
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
                    out[row, col] = np.clip((float(value) - mean) / std, -5, 5)
                elif kind == "multi":
                    out[row, col] = float(spec in {str(v) for v in value})
                else:
                    out[row, col] = float(str(value) == spec)
        return out

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
