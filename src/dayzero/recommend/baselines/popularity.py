"""Popularity: rank items by how often (or how strongly) they were interacted with."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Literal, Self

import numpy as np

from dayzero.core.schema import Dataset, IdMap, Interactions
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register, seen_by_user


@register("popularity")
class Popularity(_common.AbsorbFoldIn, _common.SavedAttributes, Recommender):
    """Scores every item by its interaction count (``by="count"``) or sum of values (``"sum"``).

    A ranking model, not a rating predictor: :meth:`predict` returns the popularity score, the
    same for every user.

    Parameters
    ----------
    by
        ``"count"``: number of interactions; ``"sum"``: sum of their values (e.g. play counts).

    Notes
    -----
    Cold fallback: an unknown item scores 0; every user, known or not, gets the same scores;
    ``history`` only marks items as seen in :meth:`recommend`.

    Examples
    --------
    >>> from dayzero.core.schema import Dataset, Interactions
    >>> data = Dataset(Interactions.from_records([("u", "a", 1), ("v", "a", 1), ("v", "b", 1)]))
    >>> Popularity().fit(data).recommend("new", k=2)[0]
    ['a', 'b']
    """

    _SAVED_ARRAYS = ("item_score_",)

    def __init__(self, by: Literal["count", "sum"] = "count") -> None:
        self.by = by

    def fit(self, dataset: Dataset) -> Self:
        if self.by not in ("count", "sum"):
            raise ValueError(f"by must be 'count' or 'sum', got {self.by!r}")
        inter = _common.training_interactions(dataset, self.name)
        self.user_map_ = IdMap()
        self.item_map_ = IdMap()
        self.seen_ = seen_by_user(inter)
        self.item_score_ = np.zeros(0)
        self._absorb(inter, update_seen=False)
        return self

    def _absorb(self, interactions: Interactions, update_seen: bool = True) -> None:
        self.user_map_.add(interactions.users)
        items = self.item_map_.add(interactions.frame["item"])
        if update_seen:
            _common.update_seen(self.seen_, interactions)
        weights = np.ones(len(items)) if self.by == "count" else interactions.values
        self.item_score_ = _common.grow(self.item_score_, len(self.item_map_))
        np.add.at(self.item_score_, items, weights)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        index = self.item_map_.to_internal(items, missing=-1)
        return np.where(index >= 0, self.item_score_[np.maximum(index, 0)], 0.0)

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        return self.item_score_.copy()
