"""The interface the service needs of a recommender: scores as inner products of vectors.

A recommender that implements :class:`VectorServable` can be served by
:class:`~dayzero.online.serving.ServingModel` behind a vector index: every item has a vector,
a user's vector is computed per request from their history (and a profile sentence, where the
model reads text), and ::

    rank_score(user, item) == serving_offset + <user_serving_vector(user, ...), item_serving_vector>

up to a monotone transform the model applies after it (clipping to the rating range), so an
inner-product index ranks items exactly as :meth:`Recommender.recommend` does
(:meth:`Recommender.rank_scores`: the predicted rating for most models, the retrieval head's
score for a two-tower that has one). Predicted ratings of a served user come from
:meth:`VectorServable.serving_ratings` (by default the same inner products). Implemented by
:class:`~dayzero.recommend.two_tower.TwoTowerRecommender` and
:class:`~dayzero.recommend.baselines.matrix_factorization.MatrixFactorization`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence

import numpy as np


class VectorServable(ABC):
    """Mixin for a :class:`~dayzero.recommend.contract.Recommender` servable from an index.

    Ids are the model's external ids; ``user_map_``, ``item_map_`` and ``seen_items`` come from
    the recommender contract.
    """

    @property
    @abstractmethod
    def serving_dim(self) -> int:
        """Width of the serving vectors."""

    @property
    @abstractmethod
    def serving_offset(self) -> float:
        """The constant added to every inner product (a global mean)."""

    @abstractmethod
    def served_items(self) -> list[Hashable]:
        """Ids of every item that has a serving vector, in the order of
        :meth:`item_serving_vectors` with no argument."""

    @abstractmethod
    def item_serving_vectors(self, items: Sequence[Hashable] | None = None) -> np.ndarray:
        """``(n, serving_dim)`` float32 rows for ``items`` (ids in :meth:`served_items`;
        default: all of them)."""

    @abstractmethod
    def user_serving_vector(
        self,
        user: Hashable | None,
        items: Sequence[Hashable] = (),
        values: Sequence[float] | np.ndarray = (),
        text: str | None = None,
    ) -> np.ndarray:
        """One user's ``(serving_dim,)`` float32 row from what the model holds for ``user``
        (``None``: an anonymous visitor) plus ``items`` / ``values`` revealed for this call and,
        for models that read text, a profile sentence ``text`` (ignored by the others)."""

    @abstractmethod
    def serving_value_range(self) -> tuple[float, float]:
        """The smallest and largest training value (an implicit signal counts as the largest)."""

    def serving_ratings(
        self,
        user: Hashable | None,
        items: Sequence[Hashable],
        history_items: Sequence[Hashable] = (),
        history_values: Sequence[float] | np.ndarray = (),
        text: str | None = None,
    ) -> np.ndarray:
        """Predicted values (ratings) of ``items`` for a user served as by
        :meth:`user_serving_vector` (``history_items`` / ``history_values`` revealed for this
        call). Default: ``serving_offset + <user row, item rows>``; a model whose index ranks
        by another head than its ratings overrides it."""
        vector = self.user_serving_vector(user, history_items, history_values, text=text)
        rows = self.item_serving_vectors(list(items)).astype(np.float64)
        return self.serving_offset + rows @ vector.astype(np.float64)

    def accept_item_text(self, field: str) -> None:  # noqa: B027 - optional hook
        """Items folded in later may describe themselves in free text under ``field``: models
        that read text add it to their item text view (default: nothing to do)."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load what the model loads lazily (an encoder), so a first request does not pay."""


__all__ = ["VectorServable"]
