"""Helpers the baseline recommenders share: history slicing, growing arrays, sparse state, and
the mixins for saved state (:class:`SavedAttributes`), fold-in through ``_absorb``
(:class:`AbsorbFoldIn`) and a users x items ratings matrix (:class:`RatingMatrix`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions, SchemaError
from dayzero.recommend.contract import seen_by_user


def training_interactions(dataset: Dataset, model: str) -> Interactions:
    """``dataset.interactions``, checked to be non-empty and finite."""
    inter = dataset.interactions
    if len(inter) == 0:
        raise SchemaError(f"{model}: the dataset has no interactions to fit on")
    if not np.all(np.isfinite(inter.values)):
        bad = int(np.flatnonzero(~np.isfinite(inter.values))[0])
        raise SchemaError(
            f"{model}: interaction row {bad} has a non-finite value; drop or fill it before fit"
        )
    return inter


def aggregate(interactions: Interactions) -> pd.DataFrame:
    """One row per (user, item) with the mean value; repeated events count once."""
    frame = interactions.frame
    if not frame.duplicated(["user", "item"]).any():
        return frame[["user", "item", "value"]]
    return frame.groupby(["user", "item"], sort=False, as_index=False)["value"].mean()


def update_seen(seen: dict[Hashable, set[Hashable]], interactions: Interactions) -> None:
    """Add ``interactions`` to a user -> items mapping in place."""
    for user, items in interactions.frame.groupby("user", sort=False)["item"]:
        seen.setdefault(user, set()).update(items.tolist())


def history_frame(history: Interactions | None, users: Sequence[Hashable]) -> pd.DataFrame:
    """Rows of ``history`` whose user is in ``users`` (empty frame when there is none)."""
    if history is None or len(history) == 0:
        return pd.DataFrame({"user": [], "item": [], "value": []})
    frame = history.frame
    if not np.all(np.isfinite(frame["value"].to_numpy())):
        raise SchemaError("history has a non-finite value; drop or fill it before predicting")
    return frame.loc[frame["user"].isin(list(set(users))), ["user", "item", "value"]]


def user_history(history: Interactions | None, user: Hashable) -> tuple[list[Hashable], np.ndarray]:
    """``(items, values)`` of one user's ``history`` rows, duplicates averaged."""
    frame = history_frame(history, [user])
    if frame.empty:
        return [], np.zeros(0)
    agg = frame.groupby("item", sort=False)["value"].mean()
    return agg.index.tolist(), agg.to_numpy(dtype=np.float64)


def positions_by_user(users: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    """User -> positions in ``users`` where it occurs, users in order of first appearance."""
    codes, uniques = pd.factorize(pd.Series(list(users), dtype=object), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {uniques[k]: order[bounds[k] : bounds[k + 1]] for k in range(len(uniques))}


def pair_scores(
    item_map: IdMap,
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    score: Callable[[Hashable, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Scores of the aligned pairs ``(users[i], items[i])``: ``score(user, item indices)`` once
    per distinct user, an item that is not in ``item_map`` given as index -1."""
    index = item_map.to_internal(items, missing=-1)
    out = np.empty(len(items))
    for user, positions in positions_by_user(users).items():
        out[positions] = score(user, index[positions])
    return out


def grow(array: np.ndarray, n: int, fill: float = 0.0) -> np.ndarray:
    """``array`` padded along axis 0 to length ``n`` with ``fill`` (unchanged if long enough)."""
    if len(array) >= n:
        return array
    pad = np.full((n - len(array), *array.shape[1:]), fill, dtype=array.dtype)
    return np.concatenate([array, pad])


def resize_csr(matrix: sp.csr_matrix, shape: tuple[int, int]) -> sp.csr_matrix:
    """A copy of ``matrix`` with a larger shape (new rows/columns empty)."""
    out = matrix.tocsr(copy=True)
    out.resize(shape)
    return out


def set_entries(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, values: np.ndarray):
    """``matrix`` with ``(rows, cols)`` set to ``values`` (new entries added, old overwritten)."""
    coo = matrix.tocoo()
    keep = np.ones(coo.nnz, dtype=bool)
    if coo.nnz and len(rows):
        old = coo.row.astype(np.int64) * matrix.shape[1] + coo.col
        keep = ~np.isin(old, rows.astype(np.int64) * matrix.shape[1] + cols)
    out = sp.coo_matrix(
        (
            np.concatenate([coo.data[keep], values]),
            (np.concatenate([coo.row[keep], rows]), np.concatenate([coo.col[keep], cols])),
        ),
        shape=matrix.shape,
    )
    return out.tocsr()


def interaction_matrix(frame: pd.DataFrame, user_map: IdMap, item_map: IdMap) -> sp.csr_matrix:
    """Users x items CSR of the (aggregated) values in ``frame`` under the given maps."""
    rows = user_map.to_internal(frame["user"])
    cols = item_map.to_internal(frame["item"])
    values = frame["value"].to_numpy(dtype=np.float64)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(user_map), len(item_map)))
    matrix.sort_indices()
    return matrix


def csr_state(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as safetensors-ready arrays (shape stored too)."""
    matrix = matrix.tocsr()
    return {
        f"{prefix}.data": np.asarray(matrix.data, dtype=np.float64),
        f"{prefix}.indices": np.asarray(matrix.indices, dtype=np.int64),
        f"{prefix}.indptr": np.asarray(matrix.indptr, dtype=np.int64),
        f"{prefix}.shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_state(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    """Inverse of :func:`csr_state`."""
    shape = tuple(int(s) for s in arrays[f"{prefix}.shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]),
        shape=shape,
    )


def cosine_to(vectors: np.ndarray, target: int) -> np.ndarray:
    """Cosine similarity of every row of ``vectors`` to row ``target`` (0 for zero rows)."""
    norms = np.linalg.norm(vectors, axis=1)
    return vectors @ vectors[target] / np.maximum(norms * norms[target], 1e-12)


def most_similar(
    item_map: IdMap, sims: np.ndarray, target: int, k: int
) -> tuple[list[Hashable], np.ndarray]:
    """``similar_items``: the ``k`` items of highest ``sims`` but ``target`` itself, as
    ``(ids, similarities)``, ties in id-map order (``sims`` is changed in place)."""
    sims[target] = -np.inf
    order = np.argsort(-sims, kind="stable")[: min(k, len(sims) - 1)]
    return item_map.to_external(order), sims[order]


def clip(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Predictions kept inside the range of values seen in training."""
    return np.clip(values, low, high)


#: ``_SAVED_EXTRAS`` of :class:`SavedAttributes`: attribute -> the type it is read back as.
SavedExtras = dict[str, Callable[[Any], Any]]


def _saved_name(attribute: str) -> str:
    return attribute.removesuffix("_")


class SavedAttributes:
    """Mixin: ``_state`` / ``_set_state`` of a baseline from three class tables of fitted
    attributes, each saved under its name without the trailing ``_``.

    ``_SAVED_ARRAYS`` names numpy arrays, ``_SAVED_SPARSE`` CSR matrices (saved by
    :func:`csr_state`), ``_SAVED_EXTRAS`` JSON values, each with the type it is read back as.
    :meth:`_after_load` recomputes what is derived from them.
    """

    _SAVED_ARRAYS: ClassVar[tuple[str, ...]] = ()
    _SAVED_SPARSE: ClassVar[tuple[str, ...]] = ()
    _SAVED_EXTRAS: ClassVar[SavedExtras] = {}

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {_saved_name(name): getattr(self, name) for name in self._SAVED_ARRAYS}
        for name in self._SAVED_SPARSE:
            arrays.update(csr_state(_saved_name(name), getattr(self, name)))
        extras = {_saved_name(name): getattr(self, name) for name in self._SAVED_EXTRAS}
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        for name in self._SAVED_ARRAYS:
            setattr(self, name, arrays[_saved_name(name)])
        for name in self._SAVED_SPARSE:
            setattr(self, name, csr_from_state(_saved_name(name), arrays))
        for name, read in self._SAVED_EXTRAS.items():
            setattr(self, name, read(extras[_saved_name(name)]))
        self._after_load()

    def _after_load(self) -> None:
        """Recompute what the saved attributes imply (default: nothing)."""


class AbsorbFoldIn:
    """Mixin: ``partial_fit_users`` / ``partial_fit_items`` fold interactions in through the
    model's ``_absorb(interactions)``; item fields are not read."""

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Fold in users' interactions (the statistics of their items are updated too)."""
        self._check_fitted()
        self._absorb(interactions)
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Fold in items' interactions; items without any stay unknown (the cold fallback)."""
        self._check_fitted()
        if interactions is not None:
            self._absorb(interactions)
        return self


class RatingMatrix:
    """Mixin of the baselines that keep the users x items matrix of (mean) ratings in
    ``ratings_``: built in ``fit``, grown by ``partial_fit_*`` and read per user the same way."""

    def _fit_ratings(self, interactions: Interactions, items: Iterable[Hashable] = ()) -> None:
        """``user_map_``, ``item_map_`` (the interactions' items, then ``items``), ``seen_`` and
        ``ratings_`` from the training ``interactions``."""
        frame = aggregate(interactions)
        self.user_map_ = IdMap(frame["user"])
        self.item_map_ = IdMap(frame["item"])
        self.item_map_.add(items)
        self.seen_ = seen_by_user(interactions)
        self.ratings_ = interaction_matrix(frame, self.user_map_, self.item_map_)

    def _fit_value_stats(self) -> None:
        """``global_mean_``, ``value_min_`` and ``value_max_`` of the training ratings."""
        self.global_mean_ = float(self.ratings_.data.mean())
        self.value_min_ = float(self.ratings_.data.min())
        self.value_max_ = float(self.ratings_.data.max())

    def _absorb_ratings(self, interactions: Interactions) -> pd.DataFrame:
        """Add ``interactions`` to the id maps, ``seen_`` and ``ratings_`` (grown to the maps'
        sizes; a pair's mean replaces its stored value); returns the aggregated rows."""
        frame = aggregate(interactions)
        self.user_map_.add(frame["user"])
        self.item_map_.add(frame["item"])
        update_seen(self.seen_, interactions)
        ratings = resize_csr(self.ratings_, (len(self.user_map_), len(self.item_map_)))
        rows = self.user_map_.to_internal(frame["user"])
        cols = self.item_map_.to_internal(frame["item"])
        self.ratings_ = set_entries(ratings, rows, cols, frame["value"].to_numpy(float))
        self.ratings_.sort_indices()
        return frame

    def _user_ratings(
        self, user: Hashable, history: Interactions | None
    ) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """The user's ratings in training and ``history``: see :meth:`_merged_ratings`."""
        return self._merged_ratings(user, *user_history(history, user))

    def _merged_ratings(
        self, user: Hashable, items: list[Hashable], values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """``(item indices, values)`` of the user's training ratings updated by ``items`` /
        ``values`` (which win on the same item), and the values given to unknown items."""
        merged: dict[int, float] = {}
        if user in self.user_map_:
            row = self.ratings_[int(self.user_map_.to_internal([user])[0])]
            merged.update(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        index = self.item_map_.to_internal(items, missing=-1)
        merged.update((int(i), float(v)) for i, v in zip(index, values, strict=True) if i >= 0)
        unknown = [float(v) for i, v in zip(index, values, strict=True) if i < 0]
        cols = np.fromiter(merged.keys(), dtype=np.int64, count=len(merged))
        return cols, np.fromiter(merged.values(), dtype=np.float64, count=len(merged)), unknown
