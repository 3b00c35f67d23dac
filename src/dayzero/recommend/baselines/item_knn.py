"""Item-based k nearest neighbours on the user-item matrix (Sarwar et al. 2001)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register

_BLOCK = 512


@register("item-knn")
class ItemKNN(_common.AbsorbFoldIn, _common.RatingMatrix, _common.SavedAttributes, Recommender):
    """Item-item cosine similarity, top-``k_neighbors`` per item, over a sparse user-item matrix.

    Parameters
    ----------
    k_neighbors
        Neighbours kept per item (the most similar, positive similarities only).
    centered
        Subtract each item's mean value before the cosine (adjusted cosine, for explicit
        ratings). ``False`` uses raw values (implicit feedback).
    scoring
        ``"rating"``: ``item mean + sum_j s_ij (r_uj - mean_j) / sum_j s_ij`` over the item's
        neighbours ``j`` the user rated (training + ``history``), clipped to the training range.
        ``"similarity"``: ``sum_j s_ij`` over the user's items, a ranking score.

    Notes
    -----
    Cold fallback (rating): unknown item -> global mean; an item none of whose neighbours the
    user rated -> its item mean; unknown user -> personalised by ``history`` alone, else the item
    mean. With ``scoring="similarity"`` all of these score 0. ``history`` items the model does not
    know have no similarities and are only marked as seen.

    ``partial_fit_users`` adds users' ratings (and updates item means); similarities are not
    recomputed. ``partial_fit_items`` adds items' ratings and gives every newly known item its own
    neighbour list computed against the current matrix; existing lists are kept until refit.

    Examples
    --------
    >>> from dayzero.core.schema import Dataset, Interactions
    >>> rows = [(u, i, 1.0) for u in "ab" for i in "xy"] + [(u, i, 1.0) for u in "cd" for i in "zw"]
    >>> data = Dataset(Interactions.from_records(rows))
    >>> model = ItemKNN(centered=False, scoring="similarity").fit(data)
    >>> model.similar_items("x", k=1)[0]
    ['y']
    """

    _SAVED_SPARSE = ("ratings_", "similarity_")

    def __init__(
        self,
        k_neighbors: int = 50,
        centered: bool = True,
        scoring: Literal["rating", "similarity"] = "rating",
    ) -> None:
        self.k_neighbors = k_neighbors
        self.centered = centered
        self.scoring = scoring

    # ----------------------------------------------------------------- learning
    def fit(self, dataset: Dataset) -> Self:
        if self.k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {self.k_neighbors}")
        if self.scoring not in ("rating", "similarity"):
            raise ValueError(f"scoring must be 'rating' or 'similarity', got {self.scoring!r}")
        self._fit_ratings(_common.training_interactions(dataset, self.name))
        self._update_stats()
        self.similarity_ = self._neighbours(np.arange(len(self.item_map_)))
        return self

    def _update_stats(self) -> None:
        ratings = self.ratings_
        self.item_sum_ = np.asarray(ratings.sum(axis=0)).ravel()
        self.item_count_ = np.diff(ratings.tocsc().indptr).astype(np.float64)
        self.value_min_ = float(ratings.data.min())
        self.value_max_ = float(ratings.data.max())
        self._similarity_csc = None

    @property
    def global_mean_(self) -> float:
        return float(self.ratings_.data.mean())

    def item_means_(self) -> np.ndarray:
        counts = np.maximum(self.item_count_, 1.0)
        return np.where(self.item_count_ > 0, self.item_sum_ / counts, self.global_mean_)

    def _centred_columns(self) -> sp.csc_matrix:
        """Items as columns, mean-centred if asked, each scaled to unit norm."""
        matrix = self.ratings_.tocsc(copy=True)
        if self.centered:
            counts = np.diff(matrix.indptr)
            matrix.data = matrix.data - np.repeat(self.item_means_(), counts)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (matrix @ sp.diags(scale)).tocsc()

    def _neighbours(self, items: np.ndarray) -> sp.csr_matrix:
        """Top-k positive similarities of ``items`` (rows) to every item; other rows empty."""
        unit = self._centred_columns()
        unit_t = unit.T.tocsr()
        n = len(self.item_map_)
        k = min(self.k_neighbors, max(n - 1, 1))
        rows, cols, vals = [], [], []
        for start in range(0, len(items), _BLOCK):
            block = items[start : start + _BLOCK]
            sims = (unit_t[block] @ unit).toarray()
            sims[np.arange(len(block)), block] = 0.0
            if k < n:
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                top = np.tile(np.arange(n), (len(block), 1))
            top_sims = np.take_along_axis(sims, top, axis=1)
            keep = top_sims > 0
            rows.append(np.repeat(block, keep.sum(axis=1)))
            cols.append(top[keep])
            vals.append(top_sims[keep])
        matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        matrix.sort_indices()
        return matrix

    def _absorb(self, interactions: Interactions) -> np.ndarray:
        """Add interactions to the matrix; returns the indices of items that were new."""
        before = len(self.item_map_)
        self._absorb_ratings(interactions)
        n = len(self.item_map_)
        self.similarity_ = _common.resize_csr(self.similarity_, (n, n))
        self._update_stats()
        return np.arange(before, n)

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items with their interactions; items without any stay unknown (no neighbours)."""
        self._check_fitted()
        if interactions is None or len(interactions) == 0:
            return self
        new = self._absorb(interactions)
        if len(new):
            # rows of new items are empty after the resize, so adding fills exactly them
            self.similarity_ = (self.similarity_ + self._neighbours(new)).tocsr()
            self.similarity_.sort_indices()
            self._similarity_csc = None
        return self

    # ----------------------------------------------------------------- scoring
    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        if self._similarity_csc is None:
            self._similarity_csc = self.similarity_.tocsc()
        cols, values, _ = self._user_ratings(user, history)
        neighbours = self._similarity_csc[:, cols]
        weight = np.asarray(neighbours.sum(axis=1)).ravel()
        if self.scoring == "similarity":
            return weight
        means = self.item_means_()
        offset = neighbours @ (values - means[cols]) if len(cols) else np.zeros(len(means))
        ratio = np.divide(offset, weight, out=np.zeros_like(weight), where=weight > 0)
        return _common.clip(means + ratio, self.value_min_, self.value_max_)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        index = self.item_map_.to_internal(items, missing=-1)
        fallback = 0.0 if self.scoring == "similarity" else self.global_mean_
        out = np.full(len(items), fallback)
        for user, positions in _common.positions_by_user(users).items():
            known = positions[index[positions] >= 0]
            if len(known):
                out[known] = self._score_items(user, history)[index[known]]
        return out

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """The item's stored neighbours, most similar first (fewer than ``k`` if it has fewer)."""
        self._check_fitted()
        if item not in self.item_map_:
            raise KeyError(f"unknown item {item!r}: it has no interactions in this model")
        row = self.similarity_[int(self.item_map_.to_internal([item])[0])]
        order = np.argsort(-row.data, kind="stable")[:k]
        return self.item_map_.to_external(row.indices[order]), row.data[order]

    # ----------------------------------------------------------------- persistence
    def _after_load(self) -> None:
        self._update_stats()
