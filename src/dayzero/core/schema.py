"""Core data model: interactions, entities and the id maps that tie them together.

External ids (whatever the source uses: ``"U1077"``, ``1199``) are kept as given. Models work on
dense internal indices handed out by an append-only :class:`IdMap`, so a new user or item gets the
next index and nothing that was built before has to be rebuilt.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

FieldKind = Literal["text", "categorical", "numeric", "multi", "boolean"]
FIELD_KINDS: tuple[str, ...] = ("text", "categorical", "numeric", "multi", "boolean")

USER, ITEM, VALUE, TIMESTAMP = "user", "item", "value", "timestamp"


class SchemaError(ValueError):
    """Raised when data does not have the shape dayzero expects; the message names the fix."""


class IdMap:
    """Append-only map between external ids and dense internal indices ``0..n-1``.

    Like LightFM's ``Dataset`` mapping, but growing: :meth:`add` gives unseen ids the next free
    indices and leaves every existing index untouched.

    Examples
    --------
    >>> m = IdMap(["a", "b"])
    >>> m.add(["b", "c"]).tolist()
    [1, 2]
    >>> m.to_external([2, 0])
    ['c', 'a']
    """

    def __init__(self, ids: Iterable[Hashable] = ()) -> None:
        self._index: dict[Hashable, int] = {}
        self._ids: list[Hashable] = []
        self.add(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external: object) -> bool:
        return external in self._index

    def __iter__(self):
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"

    @property
    def ids(self) -> list[Hashable]:
        """External ids in internal-index order (a copy)."""
        return list(self._ids)

    def add(self, ids: Iterable[Hashable]) -> np.ndarray:
        """Register ids (new ones get the next indices) and return the index of every id given."""
        out = []
        for external in ids:
            index = self._index.get(external)
            if index is None:
                index = len(self._ids)
                self._index[external] = index
                self._ids.append(external)
            out.append(index)
        return np.asarray(out, dtype=np.int64)

    def to_internal(self, ids: Iterable[Hashable], missing: int | None = None) -> np.ndarray:
        """Map external ids to indices.

        Parameters
        ----------
        ids
            External ids.
        missing
            Index to return for unknown ids (for example ``-1``). ``None`` raises ``KeyError``
            naming the first unknown id.
        """
        out = []
        for external in ids:
            index = self._index.get(external)
            if index is None:
                if missing is None:
                    raise KeyError(
                        f"unknown id {external!r}: it was never added to this IdMap; "
                        "call add() or partial_fit with it first"
                    )
                index = missing
            out.append(index)
        return np.asarray(out, dtype=np.int64)

    def to_external(self, indices: Iterable[int]) -> list[Hashable]:
        """Map internal indices back to external ids."""
        return [self._ids[int(i)] for i in indices]

    def to_json(self) -> list:
        """The external ids as a JSON-serialisable list (ints and strings kept as such)."""
        return [i.item() if isinstance(i, np.generic) else i for i in self._ids]

    @classmethod
    def from_json(cls, ids: Sequence[Hashable]) -> IdMap:
        return cls(ids)


@dataclass
class Interactions:
    """User-item interactions: one row per event with ``user``, ``item``, ``value`` and an optional
    ``timestamp``.

    The frame is copied on construction and its columns normalised: ``value`` is float64 and
    ``timestamp`` (when present) int64 seconds or a pandas datetime.

    Examples
    --------
    >>> inter = Interactions.from_records([("u1", "i1", 5.0), ("u1", "i2", 3.0)])
    >>> len(inter), inter.users.tolist()
    (2, ['u1'])
    """

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in (USER, ITEM, VALUE) if c not in self.frame.columns]
        if missing:
            raise SchemaError(
                f"Interactions needs columns 'user', 'item', 'value'; missing {missing}. "
                "Use Interactions.from_frame(df, user=..., item=..., value=...) to rename."
            )
        cols = [USER, ITEM, VALUE] + ([TIMESTAMP] if TIMESTAMP in self.frame.columns else [])
        frame = self.frame.loc[:, cols].reset_index(drop=True)
        try:
            frame[VALUE] = pd.to_numeric(frame[VALUE], errors="raise").astype("float64")
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"Interactions column 'value' must be numeric: {exc}") from exc
        if frame[[USER, ITEM]].isna().any().any():
            raise SchemaError("Interactions columns 'user' and 'item' must not contain missing ids")
        self.frame = frame

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        user: str = USER,
        item: str = ITEM,
        value: str | None = VALUE,
        timestamp: str | None = None,
    ) -> Interactions:
        """Build from any frame by naming its columns; ``value=None`` means implicit (1.0)."""
        for role, col in (
            ("user", user),
            ("item", item),
            ("value", value),
            ("timestamp", timestamp),
        ):
            if col is not None and col not in df.columns:
                raise SchemaError(
                    f"column {col!r} given as {role} is not in the frame; "
                    f"columns are {list(df.columns)}"
                )
        out = pd.DataFrame({USER: df[user].to_numpy(), ITEM: df[item].to_numpy()})
        out[VALUE] = df[value].to_numpy() if value is not None else 1.0
        if timestamp is not None:
            out[TIMESTAMP] = df[timestamp].to_numpy()
        return cls(out)

    @classmethod
    def from_records(cls, records: Iterable[Sequence]) -> Interactions:
        """Build from ``(user, item, value[, timestamp])`` tuples."""
        rows = list(records)
        width = len(rows[0]) if rows else 3
        if width not in (3, 4):
            raise SchemaError(
                "records must be (user, item, value) or (user, item, value, timestamp)"
            )
        columns = [USER, ITEM, VALUE, TIMESTAMP][:width]
        return cls(pd.DataFrame(rows, columns=columns))

    @classmethod
    def empty(cls) -> Interactions:
        return cls(pd.DataFrame({USER: [], ITEM: [], VALUE: []}))

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def has_timestamp(self) -> bool:
        return TIMESTAMP in self.frame.columns

    @property
    def users(self) -> np.ndarray:
        """Distinct user ids in order of first appearance."""
        return pd.unique(self.frame[USER])

    @property
    def items(self) -> np.ndarray:
        """Distinct item ids in order of first appearance."""
        return pd.unique(self.frame[ITEM])

    @property
    def values(self) -> np.ndarray:
        return self.frame[VALUE].to_numpy()

    def select(self, mask: np.ndarray | pd.Series) -> Interactions:
        """Rows where ``mask`` is true, as new Interactions."""
        return Interactions(self.frame[np.asarray(mask, dtype=bool)])

    def for_users(self, users: Iterable[Hashable]) -> Interactions:
        return self.select(self.frame[USER].isin(list(users)).to_numpy())

    def for_items(self, items: Iterable[Hashable]) -> Interactions:
        return self.select(self.frame[ITEM].isin(list(items)).to_numpy())

    def concat(self, *others: Interactions) -> Interactions:
        frames = [self.frame, *(o.frame for o in others)]
        frames = [f for f in frames if len(f)] or [self.frame]
        return Interactions(pd.concat(frames, ignore_index=True))

    def groupby_user(self) -> dict[Hashable, pd.DataFrame]:
        """Per-user sub-frames, users in order of first appearance, rows in original order."""
        return {u: g for u, g in self.frame.groupby(USER, sort=False)}

    def to_indices(self, user_map: IdMap, item_map: IdMap, missing: int | None = None):
        """``(user_idx, item_idx, values)`` as arrays under the given maps."""
        return (
            user_map.to_internal(self.frame[USER], missing=missing),
            item_map.to_internal(self.frame[ITEM], missing=missing),
            self.values.astype(np.float64),
        )


@dataclass
class Entities:
    """Users or items with typed fields (the day-zero information about them).

    Parameters
    ----------
    frame
        One row per entity, indexed by external id.
    fields
        Field name -> kind: ``text``, ``categorical``, ``numeric``, ``multi`` (a list of
        categories, e.g. genres) or ``boolean``. Columns not named here are kept but not typed.
    kind
        ``"user"``, ``"item"`` or ``"applicant"``; used in messages and text templates.
    """

    frame: pd.DataFrame
    fields: dict[str, FieldKind] = field(default_factory=dict)
    kind: str = "item"

    def __post_init__(self) -> None:
        if not self.frame.index.is_unique:
            dup = self.frame.index[self.frame.index.duplicated()][0]
            raise SchemaError(f"{self.kind} ids must be unique; {dup!r} appears more than once")
        for name, kind in self.fields.items():
            if name not in self.frame.columns:
                raise SchemaError(
                    f"{self.kind} field {name!r} is declared but not a column; "
                    f"columns are {list(self.frame.columns)}"
                )
            if kind not in FIELD_KINDS:
                raise SchemaError(
                    f"{self.kind} field {name!r} has kind {kind!r}; use one of {FIELD_KINDS}"
                )

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, id_column: str, fields: Mapping[str, FieldKind], kind: str = "item"
    ) -> Entities:
        if id_column not in df.columns:
            raise SchemaError(f"id column {id_column!r} is not in the {kind} frame")
        return cls(df.set_index(id_column), dict(fields), kind)

    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self.frame.index

    @property
    def ids(self) -> list[Hashable]:
        return self.frame.index.tolist()

    def record(self, entity_id: Hashable) -> dict:
        """The fields of one entity as a dict (raises ``KeyError`` naming the id if unknown)."""
        if entity_id not in self.frame.index:
            raise KeyError(f"unknown {self.kind} id {entity_id!r}")
        return self.frame.loc[entity_id].to_dict()

    def subset(self, ids: Iterable[Hashable]) -> Entities:
        ids = [i for i in ids if i in self.frame.index]
        return Entities(self.frame.loc[ids], dict(self.fields), self.kind)

    def add(self, other: Entities) -> Entities:
        """A new Entities with ``other``'s rows appended (rows for existing ids are replaced)."""
        keep = self.frame.loc[~self.frame.index.isin(other.frame.index)]
        fields = {**self.fields, **other.fields}
        return Entities(pd.concat([keep, other.frame]), fields, self.kind)


@dataclass
class Dataset:
    """Interactions plus user and item entities, with the id maps models use.

    The id maps cover every user/item that appears in the interactions or the entity tables.
    New ids are added with :meth:`add_users` / :meth:`add_items` / :meth:`add_interactions`
    without changing any existing index.
    """

    interactions: Interactions
    users: Entities | None = None
    items: Entities | None = None
    name: str = "dataset"
    user_map: IdMap = field(default_factory=IdMap)
    item_map: IdMap = field(default_factory=IdMap)

    def __post_init__(self) -> None:
        self.user_map.add(self.interactions.users)
        self.item_map.add(self.interactions.items)
        if self.users is not None:
            self.user_map.add(self.users.ids)
        if self.items is not None:
            self.item_map.add(self.items.ids)

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def add_users(self, users: Entities) -> np.ndarray:
        self.users = users if self.users is None else self.users.add(users)
        return self.user_map.add(users.ids)

    def add_items(self, items: Entities) -> np.ndarray:
        self.items = items if self.items is None else self.items.add(items)
        return self.item_map.add(items.ids)

    def add_interactions(self, interactions: Interactions) -> None:
        self.interactions = self.interactions.concat(interactions)
        self.user_map.add(interactions.users)
        self.item_map.add(interactions.items)

    def with_interactions(self, interactions: Interactions) -> Dataset:
        """Same entities and id maps (copied), other interactions: how splits build a train set."""
        return Dataset(
            interactions,
            self.users,
            self.items,
            self.name,
            IdMap(self.user_map.ids),
            IdMap(self.item_map.ids),
        )

    def summary(self) -> dict[str, int]:
        return {
            "interactions": len(self.interactions),
            "users": self.n_users,
            "items": self.n_items,
            "users_with_fields": 0 if self.users is None else len(self.users),
            "items_with_fields": 0 if self.items is None else len(self.items),
        }
