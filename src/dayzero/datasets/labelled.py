"""Labelled tables for classification (credit risk, sentiment): a frame, a target, named splits."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dayzero.core.schema import Entities, FieldKind, SchemaError

SPLIT = "split"


@dataclass
class LabelledFrame:
    """A table of examples with a target column, for classifiers and risk scorers.

    Parameters
    ----------
    frame
        One row per example.
    target
        Name of the label column (``y``).
    text_columns
        Columns holding free text (for sentiment data the single ``"text"`` column).
    classes
        The label values, in a fixed order (the order a classifier's columns follow).
    name
        Dataset name, as in the registry.
    features
        Columns that form ``X``. ``None`` means every column except the target, the split column
        and ``extra_columns``.
    split_column
        Column naming the split each row belongs to as the source defines it (for example
        ``"train"`` / ``"valid"``), or ``None`` where the source has a single set.
    class_names
        Human-readable meaning of each class (``{0: "bearish", ...}``), where labels are codes.
    extra_columns
        Columns kept for reference but not used as features (for example the raw label text).
    kinds
        Field kind of each feature (``numeric``, ``categorical``, ``text``, ...), as in
        :class:`~dayzero.core.schema.Entities`; text columns default to ``text``.

    Examples
    --------
    >>> df = pd.DataFrame({"text": ["up", "down"], "label": [1, 0]})
    >>> data = LabelledFrame(df, "label", ["text"], [0, 1], "toy")
    >>> data.X.columns.tolist(), data.y.tolist()
    (['text'], [1, 0])
    """

    frame: pd.DataFrame
    target: str
    text_columns: list[str]
    classes: list
    name: str
    features: list[str] | None = None
    split_column: str | None = None
    class_names: dict[Hashable, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    kinds: dict[str, FieldKind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        named = [self.target, *self.text_columns, *self.extra_columns]
        if self.split_column is not None:
            named.append(self.split_column)
        missing = [c for c in named if c not in self.frame.columns]
        if missing:
            raise SchemaError(
                f"{self.name}: columns {missing} are named but not in the frame; "
                f"columns are {list(self.frame.columns)}"
            )
        if self.features is None:
            skip = {self.target, self.split_column, *self.extra_columns}
            self.features = [c for c in self.frame.columns if c not in skip]
        self.kinds = {**{c: "text" for c in self.text_columns}, **self.kinds}
        unknown = sorted(set(self.frame[self.target].dropna().unique()) - set(self.classes))
        if unknown:
            raise SchemaError(
                f"{self.name}: target {self.target!r} has values {unknown[:5]} outside "
                f"classes {self.classes}; add them to classes or fix the labels"
            )

    @classmethod
    def from_splits(
        cls,
        parts: Mapping[str, pd.DataFrame],
        target: str,
        text_columns: list[str],
        classes: list,
        name: str,
        **options: Any,
    ) -> LabelledFrame:
        """One frame of the source-defined splits ``parts`` (split name -> rows, in order), its
        ``split`` column naming each row's part; ``options`` are the other fields.

        >>> parts = {"train": pd.DataFrame({"text": ["up"], "label": [1]}),
        ...          "valid": pd.DataFrame({"text": ["down"], "label": [0]})}
        >>> LabelledFrame.from_splits(parts, "label", ["text"], [0, 1], "toy").splits
        ['train', 'valid']
        """
        frame = pd.concat(
            [part.assign(**{SPLIT: split}) for split, part in parts.items()], ignore_index=True
        )
        return cls(frame, target, text_columns, classes, name, split_column=SPLIT, **options)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def X(self) -> pd.DataFrame:
        """The feature columns."""
        return self.frame[self.features]

    @property
    def y(self) -> pd.Series:
        """The target column."""
        return self.frame[self.target]

    @property
    def splits(self) -> list[str]:
        """Names of the source-defined splits, in order of first appearance (empty if none)."""
        if self.split_column is None:
            return []
        return list(pd.unique(self.frame[self.split_column]))

    def split(self, name: str) -> LabelledFrame:
        """The rows of one source-defined split, as a new LabelledFrame.

        Raises ``KeyError`` naming the known splits when ``name`` is not one of them.
        """
        if name not in self.splits:
            raise KeyError(f"{self.name} has no split {name!r}; splits are {self.splits}")
        rows = self.frame[self.frame[self.split_column] == name].reset_index(drop=True)
        return LabelledFrame(
            rows,
            self.target,
            list(self.text_columns),
            list(self.classes),
            self.name,
            list(self.features),
            self.split_column,
            dict(self.class_names),
            list(self.extra_columns),
            dict(self.kinds),
        )

    def to_entities(self, kind: str = "applicant") -> Entities:
        """The feature columns as typed :class:`Entities` (indexed by row number), for templates."""
        fields = {c: k for c, k in self.kinds.items() if c in self.features}
        return Entities(self.X.copy(), fields, kind)

    def counts(self) -> dict:
        """Examples per class, in ``classes`` order."""
        counts = self.y.value_counts()
        return {c: int(counts.get(c, 0)) for c in self.classes}
