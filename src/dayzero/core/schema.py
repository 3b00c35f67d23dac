"""Core data model: interactions, entities and the id maps that tie them together.

External ids (whatever the source uses: ``"U1077"``, ``1199``) are kept as given. Models work on
dense internal indices handed out by an append-only :class:`IdMap`, so a new user or item gets the
next index and nothing that was built before has to be rebuilt.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dayzero.core.fields import (
    FIELD_KINDS,
    FieldGuess,
    FieldKind,
    describe,
    infer_fields,
    prepare_columns,
)

log = logging.getLogger("dayzero.core.schema")

USER, ITEM, VALUE, TIMESTAMP = "user", "item", "value", "timestamp"
#: Column names recognised without being named (compared ignoring case, ``_``, ``-`` and
#: spaces: ``userId`` is ``user_id``).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    USER: ("user", "user_id"),
    ITEM: ("item", "item_id"),
    VALUE: ("rating", "value", "score"),
    TIMESTAMP: ("timestamp", "ts"),
}
_OPTION = {USER: "user_col", ITEM: "item_col", VALUE: "value_col", TIMESTAMP: "time_col"}


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
        categories, e.g. genres), ``boolean`` or ``date`` (see :mod:`dayzero.core.fields`).
        Columns not named here are kept but not typed. ``"infer"`` (the default) guesses every
        column's kind from its values (:func:`dayzero.core.fields.infer_fields`), splits
        ``"a|b"`` strings of multi fields into lists, and keeps the guesses in
        :attr:`guesses`; ``{}`` types nothing (the entities then carry no content).
    kind
        ``"user"``, ``"item"`` or ``"applicant"``; used in messages and text templates.

    Attributes
    ----------
    guesses : list of FieldGuess
        What ``fields="infer"`` decided for each column, and why (empty when fields were
        given).

    Examples
    --------
    >>> items = Entities(pd.DataFrame({"title": ["Toy Story", "Heat"], "genres":
    ...     ["Animation|Comedy", "Action|Crime"]}, index=["i1", "i2"]))
    >>> items.fields
    {'title': 'text', 'genres': 'multi'}
    >>> items.record("i1")["genres"]
    ['Animation', 'Comedy']
    """

    frame: pd.DataFrame
    fields: Mapping[str, FieldKind] | Literal["infer"] = "infer"
    kind: str = "item"
    guesses: list[FieldGuess] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.frame.index.is_unique:
            dup = self.frame.index[self.frame.index.duplicated()][0]
            raise SchemaError(f"{self.kind} ids must be unique; {dup!r} appears more than once")
        if isinstance(self.fields, str):
            if self.fields != "infer":
                raise SchemaError(
                    f"{self.kind} fields must be a dict of column -> kind or 'infer', got "
                    f"{self.fields!r}"
                )
            self.guesses = infer_fields(self.frame)
            self.frame = prepare_columns(self.frame, self.guesses)
            self.fields = {g.column: g.kind for g in self.guesses if g.kind is not None}
            if len(self.frame.columns) and not self.fields:
                log.warning(
                    "no %s column could be used as a field (%s): these %ss carry no content; "
                    "name the kinds with fields={column: kind}",
                    self.kind, describe(self.guesses), self.kind,
                )  # fmt: skip
            elif self.guesses:
                log.info("%s fields inferred: %s", self.kind, describe(self.guesses))
        self.fields = dict(self.fields)
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
        cls,
        df: pd.DataFrame,
        id_column: str,
        fields: Mapping[str, FieldKind] | Literal["infer"] = "infer",
        kind: str = "item",
    ) -> Entities:
        """Build from a frame with an id column; ``fields`` as in the class (default: infer)."""
        if id_column not in df.columns:
            raise SchemaError(
                f"id column {id_column!r} is not in the {kind} frame; columns are "
                f"{list(df.columns)}"
            )
        return cls(df.set_index(id_column), fields if fields == "infer" else dict(fields), kind)

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
    #: Role (``user``, ``item``, ``value``, ``timestamp``) -> the column it was read from, for
    #: datasets built by :meth:`from_frames` / :meth:`from_files` (None: not there).
    columns: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    _given_roles: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

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

    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        fields: Mapping[str, Any] | Literal["infer"] = "infer",
        user_col: str | None = None,
        item_col: str | None = None,
        value_col: str | None = None,
        time_col: str | None = None,
        name: str = "dataset",
        verbose: bool = False,
    ) -> Dataset:
        """A dataset from frames in one call, column roles found by name and field kinds inferred.

        Parameters
        ----------
        interactions : pandas.DataFrame
            One row per interaction. The user, item, rating and time columns are found by name
            (:data:`COLUMN_NAMES`: ``user`` / ``user_id``, ``item`` / ``item_id``, ``rating`` /
            ``value`` / ``score``, ``timestamp`` / ``ts``, ignoring case and ``_``) unless named
            by ``user_col`` ... ``time_col``. Without a rating column every interaction counts
            1.0 (implicit feedback). Time values may be numbers or date strings.
        items, users : pandas.DataFrame, optional
            One row per item / user: an id column (found the same way, or named like the
            interactions' column, or ``id``) and any fields.
        fields : "infer" or mapping, default "infer"
            ``"infer"`` guesses each field's kind (:mod:`dayzero.core.fields`). A mapping
            overrides some guesses and infers the rest: ``{"year": "categorical"}`` (a column
            of the items or users table; None leaves it out), or per table ``{"items":
            {...}, "users": {...}}``.
        user_col, item_col, value_col, time_col : str, optional
            Column names for the roles when they are not recognised.
        name : str
            The dataset's name.
        verbose : bool
            Print what was inferred (:meth:`field_report`).

        Returns
        -------
        Dataset

        Raises
        ------
        SchemaError
            A missing column, an empty id, a rating that is not a number, a repeated id: the
            message names the column, the row and the fix.

        Examples
        --------
        >>> ratings = pd.DataFrame({"userId": ["u1", "u2"], "item": ["i1", "i1"],
        ...                         "rating": [4, 5]})
        >>> items = pd.DataFrame({"item_id": ["i1"], "title": ["Toy Story"]})
        >>> data = Dataset.from_frames(ratings, items)
        >>> data.columns["user"], data.items.fields
        ('userId', {'title': 'text'})
        """
        sources = {
            "interactions": _FrameSource("the interactions frame"),
            "items": _FrameSource("the items frame"),
            "users": _FrameSource("the users frame"),
        }
        dataset = _build_dataset(
            interactions, items, users, fields, dict(user=user_col, item=item_col,
            value=value_col, timestamp=time_col), name, sources, string_ids=False,
        )  # fmt: skip
        if verbose:
            print(format_field_report(dataset.field_report()))
        return dataset

    @classmethod
    def from_files(
        cls,
        interactions: str | Path,
        items: str | Path | None = None,
        users: str | Path | None = None,
        fields: Mapping[str, Any] | Literal["infer"] = "infer",
        user_col: str | None = None,
        item_col: str | None = None,
        value_col: str | None = None,
        time_col: str | None = None,
        name: str | None = None,
        sep: str | None = None,
        encoding: str = "utf-8",
        verbose: bool = False,
    ) -> Dataset:
        """:meth:`from_frames` on files: CSV / TSV / semicolon / pipe files (separator sniffed
        or ``sep``), Parquet, JSON Lines (lists allowed for multi fields), compressed text too
        (:func:`dayzero.core.tables.read_table`).

        Ids are read as strings (``"42"``), whatever the file's column type, so that the ids
        of the three files match each other and what a service is sent. Any problem is a
        :class:`SchemaError` (or :class:`dayzero.core.tables.TableError`) naming the file, the
        line, the column and the fix. Other parameters as in :meth:`from_frames`; ``name``
        defaults to the interactions file's name.

        Examples
        --------
        >>> data = Dataset.from_files("ratings.csv", "movies.csv", "users.csv")  # doctest: +SKIP
        """
        from dayzero.core.tables import read_table

        tables = {}
        for role, path, rows in (
            ("interactions", interactions, "interaction"),
            ("items", items, "item"),
            ("users", users, "user"),
        ):
            if path is not None:
                tables[role] = read_table(path, sep=sep, encoding=encoding, lists=True, rows=rows)
        sources = {
            role: _FrameSource(str(table.path), table.where) for role, table in tables.items()
        }
        for role in ("items", "users"):
            sources.setdefault(role, _FrameSource(role))
        dataset = _build_dataset(
            tables["interactions"].frame,
            tables["items"].frame if "items" in tables else None,
            tables["users"].frame if "users" in tables else None,
            fields,
            dict(user=user_col, item=item_col, value=value_col, timestamp=time_col),
            name or Path(interactions).name.split(".")[0],
            sources,
            string_ids=True,
        )
        if verbose:
            print(format_field_report(dataset.field_report()))
        return dataset

    def field_report(self) -> list[dict[str, Any]]:
        """What each column became: one dict per column with ``table``, ``column``, ``kind``
        (a role such as ``user id`` for the interactions, a field kind, or ``not used``),
        ``how`` (``recognised``, ``given``, ``inferred``) and ``reason``."""
        rows: list[dict[str, Any]] = []
        for role in (USER, ITEM, VALUE, TIMESTAMP):
            if role not in self.columns:
                continue
            source = self.columns[role]
            if source is None:
                note = {
                    VALUE: "no rating column: every interaction counts 1.0 (implicit)",
                    TIMESTAMP: "no time column: the temporal protocol is not available",
                }.get(role, "")
                rows.append(_report_row("interactions", "-", role, "absent", note))
            else:
                how = "given" if role in self._given_roles else "recognised"
                rows.append(_report_row("interactions", source, role, how, ""))
        for table, entities in (("items", self.items), ("users", self.users)):
            if entities is None:
                continue
            if entities.guesses:
                for guess in entities.guesses:
                    how = "given" if guess.given else "inferred"
                    kind = guess.kind or "not used"
                    reason = "" if guess.reason == "given" else guess.reason
                    rows.append(_report_row(table, guess.column, kind, how, reason))
            else:
                for column, kind in entities.fields.items():
                    rows.append(_report_row(table, column, kind, "given", ""))
        return rows

    def summary(self) -> dict[str, int]:
        return {
            "interactions": len(self.interactions),
            "users": self.n_users,
            "items": self.n_items,
            "users_with_fields": 0 if self.users is None else len(self.users),
            "items_with_fields": 0 if self.items is None else len(self.items),
        }


# ------------------------------------------------------------------ building from frames


@dataclass(frozen=True)
class _FrameSource:
    """Where a frame came from, for messages: a label (a path) and row -> ``"line 12"``."""

    label: str
    where_row: Callable[[int], str] | None = None

    def at(self, row: int, column: Any) -> str:
        where = self.where_row(row) if self.where_row is not None else f"row {row}"
        return f"{self.label} {where}, column {str(column)!r}"


def _normal(name: Any) -> str:
    return re.sub(r"[\s_\-]", "", str(name).lower())


def _find(
    columns: Sequence[Any], role: str, given: str | None, source: _FrameSource, required: bool
) -> str | None:
    """The column playing ``role``: ``given`` (checked) or a recognised name."""
    option = _OPTION.get(role, "id_col")
    if given is not None:
        if given in columns:
            return given
        raise SchemaError(
            f"{source.label}: no column {given!r} (given as the {role} column); the columns "
            f"are {[str(c) for c in columns]}. Fix: pass the right name to {option} "
            f"(--{option.replace('_', '-')} on the command line)"
        )
    wanted = {_normal(n) for n in COLUMN_NAMES[role]}
    found = [c for c in columns if _normal(c) in wanted]
    if len(found) > 1:
        raise SchemaError(
            f"{source.label}: columns {[str(c) for c in found]} could all be the {role} "
            f"column; pass {option}=... (--{option.replace('_', '-')}) to say which"
        )
    if found:
        return found[0]
    if required:
        names = " / ".join(COLUMN_NAMES[role])
        raise SchemaError(
            f"{source.label}: no {role} column among {[str(c) for c in columns]}. Fix: name "
            f"it {names}, or pass {option}=... (--{option.replace('_', '-')} on the command "
            "line)"
        )
    return None


def _as_ids(values: pd.Series) -> pd.Series:
    """Ids as strings: integral floats (``3.0``, from a column pandas read with gaps) as
    ``"3"``."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.map(lambda v: v if isinstance(v, str) else str(v)).astype(object)


def _check_ids(values: pd.Series, column: Any, role: str, source: _FrameSource) -> None:
    empty = values.isna().to_numpy() | values.map(lambda v: isinstance(v, str) and not v.strip())
    if np.asarray(empty).any():
        row = int(np.flatnonzero(np.asarray(empty))[0])
        raise SchemaError(
            f"{source.at(row, column)}: the {role} id is empty. Fix: fill it in or drop the row"
        )


def _interaction_frame(
    frame: pd.DataFrame, given: dict[str, str | None], source: _FrameSource, string_ids: bool
) -> tuple[pd.DataFrame, dict[str, str | None]]:
    columns = list(frame.columns)
    roles = {
        USER: _find(columns, USER, given.get(USER), source, True),
        ITEM: _find(columns, ITEM, given.get(ITEM), source, True),
        VALUE: _find(columns, VALUE, given.get(VALUE), source, False),
        TIMESTAMP: _find(columns, TIMESTAMP, given.get(TIMESTAMP), source, False),
    }
    if len(frame) == 0:
        raise SchemaError(f"{source.label} has no interactions: add one row per interaction")
    out = pd.DataFrame(index=range(len(frame)))
    for role in (USER, ITEM):
        values = frame[roles[role]].reset_index(drop=True)
        _check_ids(values, roles[role], role, source)
        out[role] = _as_ids(values) if string_ids else values.to_numpy()
    if roles[VALUE] is None:
        out[VALUE] = 1.0
    else:
        raw = frame[roles[VALUE]].reset_index(drop=True)
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna().to_numpy() | ~np.isfinite(numbers.fillna(0).to_numpy(float))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SchemaError(
                f"{source.at(row, roles[VALUE])}: {raw.iloc[row]!r} is not a number. Fix: "
                "ratings must be numbers; drop the row, or name another column with value_col "
                "(--value-col)"
            )
        out[VALUE] = numbers.astype("float64").to_numpy()
    if roles[TIMESTAMP] is not None:
        out[TIMESTAMP] = _times(frame[roles[TIMESTAMP]].reset_index(drop=True), roles, source)
    return out, roles


def _times(raw: pd.Series, roles: dict[str, str | None], source: _FrameSource) -> Any:
    column = roles[TIMESTAMP]
    numeric = pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw)
    if pd.api.types.is_datetime64_any_dtype(raw) or numeric:
        bad = raw.isna().to_numpy()
        parsed = raw
    else:
        numbers = pd.to_numeric(raw, errors="coerce")
        if numbers.notna().all():
            return numbers.to_numpy()
        try:
            parsed = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True)
        except (ValueError, TypeError):
            parsed = pd.Series(pd.NaT, index=raw.index)
        bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"{source.at(row, column)}: {raw.iloc[row]!r} is not a time. Fix: write epoch "
            "seconds or dates such as 2024-05-01 12:30, or leave the time column out "
            "(time_col / --time-col names another)"
        )
    return parsed.to_numpy() if not hasattr(parsed, "dt") else parsed


def _split_fields(
    fields: Mapping[str, Any] | str, tables: dict[str, pd.DataFrame | None]
) -> dict[str, dict[str, Any] | None]:
    """``fields`` of :meth:`Dataset.from_frames` as per-table overrides (None: infer all)."""
    if isinstance(fields, str):
        if fields != "infer":
            raise SchemaError(f"fields must be 'infer' or a dict of column -> kind, got {fields!r}")
        return {"items": None, "users": None}
    out: dict[str, dict[str, Any]] = {"items": {}, "users": {}}
    if set(fields) <= {"items", "users"} and all(isinstance(v, Mapping) for v in fields.values()):
        for table, given in fields.items():
            out[table] = dict(given)
    else:
        for column, kind in fields.items():
            holders = [t for t, f in tables.items() if f is not None and column in f.columns]
            if not holders:
                known = {t: [str(c) for c in f.columns] for t, f in tables.items() if f is not None}
                raise SchemaError(
                    f"fields names {column!r}, which is not a column of the items or users "
                    f"table ({known}); fix the name or drop it"
                )
            for table in holders:
                out[table][column] = kind
    for table, given in out.items():
        frame = tables.get(table)
        for column, kind in given.items():
            if frame is None or column not in frame.columns:
                raise SchemaError(f"fields[{table!r}] names {column!r}, not a {table} column")
            if kind == "ignore":
                given[column] = None
            elif kind is not None and kind not in FIELD_KINDS:
                raise SchemaError(
                    f"field {column!r} has kind {kind!r}; use one of {FIELD_KINDS} (or None to "
                    "leave the column out)"
                )
    return dict(out)


def _entity_table(
    frame: pd.DataFrame,
    kind: str,
    role: str,
    interaction_column: str,
    given_id: str | None,
    overrides: dict[str, Any] | None,
    source: _FrameSource,
    string_ids: bool,
) -> Entities:
    columns = list(frame.columns)
    id_column = None
    if given_id is not None and given_id in columns:
        id_column = given_id
    if id_column is None:
        id_column = _find(columns, role, None, source, False)
    if id_column is None and interaction_column in columns:
        id_column = interaction_column
    if id_column is None and "id" in [_normal(c) for c in columns]:
        id_column = next(c for c in columns if _normal(c) == "id")
    if id_column is None:
        names = " / ".join(COLUMN_NAMES[role])
        raise SchemaError(
            f"{source.label}: no {kind} id column among {[str(c) for c in columns]}. Fix: name "
            f"it {names} or id (or {interaction_column!r}, as in the interactions), or pass "
            f"{_OPTION[role]}=... (--{_OPTION[role].replace('_', '-')})"
        )
    frame = frame.reset_index(drop=True)
    ids = frame[id_column]
    _check_ids(ids, id_column, kind, source)
    if string_ids:
        ids = _as_ids(ids)
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0])
        raise SchemaError(
            f"{source.at(row, id_column)}: {kind} id {ids.iloc[row]!r} repeats the one of "
            f"{source.at(first, id_column).split(', column')[0].removeprefix(source.label + ' ')}"
            f". Fix: one row per {kind}; merge or drop the repeated row"
        )
    body = frame.drop(columns=[id_column])
    body.index = pd.Index(ids.tolist(), dtype=object if string_ids else None)
    if overrides is None:
        return Entities(body, "infer", kind)
    guesses = infer_fields(body, overrides)
    prepared = prepare_columns(body, guesses)
    fields = {g.column: g.kind for g in guesses if g.kind is not None}
    entities = Entities(prepared, fields, kind)
    entities.guesses = guesses
    return entities


def _match_id_types(inter: pd.DataFrame, role: str, table: Entities | None) -> None:
    """Make interaction ids and table ids the same type (strings) when one side is numbers
    and the other text: ``1`` and ``"1"`` would otherwise be two items."""
    if table is None or not len(table) or not len(inter):
        return
    left, right = inter[role].iloc[0], table.frame.index[0]
    if isinstance(left, str) != isinstance(right, str):
        inter[role] = _as_ids(inter[role])
        table.frame.index = pd.Index(_as_ids(table.frame.index.to_series()).tolist(), dtype=object)


def _build_dataset(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    users: pd.DataFrame | None,
    fields: Mapping[str, Any] | str,
    given: dict[str, str | None],
    name: str,
    sources: dict[str, _FrameSource],
    string_ids: bool,
) -> Dataset:
    for label, frame in (("interactions", interactions), ("items", items), ("users", users)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise SchemaError(f"{label} must be a pandas DataFrame, got {type(frame).__name__}")
    inter, roles = _interaction_frame(interactions, given, sources["interactions"], string_ids)
    overrides = _split_fields(fields, {"items": items, "users": users})
    tables: dict[str, Entities | None] = {"items": None, "users": None}
    for table, frame, kind, role in (
        ("items", items, "item", ITEM),
        ("users", users, "user", USER),
    ):
        if frame is not None:
            tables[table] = _entity_table(
                frame, kind, role, str(roles[role]), given.get(role), overrides[table],
                sources[table], string_ids,
            )  # fmt: skip
    _match_id_types(inter, ITEM, tables["items"])
    _match_id_types(inter, USER, tables["users"])
    return Dataset(
        Interactions(inter),
        tables["users"],
        tables["items"],
        name,
        columns=dict(roles),
        _given_roles=frozenset(r for r, c in given.items() if c is not None),
    )


def _report_row(table: str, column: str, kind: str, how: str, reason: str) -> dict[str, Any]:
    return {"table": table, "column": column, "kind": kind, "how": how, "reason": reason}


def format_field_report(rows: Sequence[Mapping[str, Any]]) -> str:
    """:meth:`Dataset.field_report` as aligned plain-text lines."""
    names = ("table", "column", "kind", "how", "reason")
    widths = [max([len(n), *(len(str(r[n])) for r in rows)]) for n in names[:-1]]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names[:-1], widths, strict=True)) + "  reason"]
    for row in rows:
        cells = [str(row[n]).ljust(w) for n, w in zip(names[:-1], widths, strict=True)]
        lines.append("  ".join(cells) + "  " + str(row["reason"]))
    return "\n".join(line.rstrip() for line in lines)
