"""Helpers the baseline recommenders share: history slicing, growing arrays, sparse state."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dayzero.core.schema import Dataset, IdMap, Interactions, SchemaError


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


def clip(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Predictions kept inside the range of values seen in training."""
    return np.clip(values, low, high)
