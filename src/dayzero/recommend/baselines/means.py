"""Mean baselines: the global mean, the per-item mean, and the item mean plus a shrunk user bias.

On the MeLU MovieLens-1M protocol the plain item mean beats both meta-learners on warm and
new-user tasks (see ANCHORS.md), so every other model is compared with these first.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar, Self

import numpy as np

from dayzero.core.schema import Dataset, IdMap, Interactions
from dayzero.recommend import _common
from dayzero.recommend.contract import Recommender, register, seen_by_user


@register("global-mean")
class GlobalMean(_common.AbsorbFoldIn, _common.SavedAttributes, Recommender):
    """Predicts the mean of all training values for every user-item pair.

    Cold fallback: unknown users, unknown items and both get the same global mean; ``history`` is
    ignored (it only marks items as seen in :meth:`recommend`). ``partial_fit_*`` add the new
    values to the running mean.

    Examples
    --------
    >>> from dayzero.core.schema import Dataset, Interactions
    >>> data = Dataset(Interactions.from_records([("u", "a", 4.0), ("v", "a", 2.0)]))
    >>> GlobalMean().fit(data).predict(["w"], ["z"]).tolist()
    [3.0]
    """

    _SAVED_EXTRAS: ClassVar[_common.SavedExtras] = {
        "value_sum_": float,
        "count_": int,
    }

    def __init__(self) -> None:
        pass

    def fit(self, dataset: Dataset) -> Self:
        inter = _common.training_interactions(dataset, self.name)
        self.user_map_ = IdMap(inter.users)
        self.item_map_ = IdMap(inter.items)
        self.seen_ = seen_by_user(inter)
        self.value_sum_ = float(inter.values.sum())
        self.count_ = len(inter)
        return self

    @property
    def global_mean_(self) -> float:
        return self.value_sum_ / self.count_

    def _absorb(self, interactions: Interactions) -> None:
        self.user_map_.add(interactions.users)
        self.item_map_.add(interactions.items)
        _common.update_seen(self.seen_, interactions)
        self.value_sum_ += float(interactions.values.sum())
        self.count_ += len(interactions)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        return np.full(len(items), self.global_mean_)


@register("item-mean")
class ItemMean(_common.AbsorbFoldIn, _common.SavedAttributes, Recommender):
    """Predicts the item's mean training value, optionally plus a shrunk user bias.

    Parameters
    ----------
    user_bias
        Add the user's bias: the mean residual ``value - item mean`` over the user's training
        interactions and ``history``, shrunk towards zero as ``sum / (n + reg)``.
    reg
        Shrinkage of the user bias (pseudo-count of zero residuals). Unused without ``user_bias``.

    Notes
    -----
    Cold fallback: an unknown item gets the global mean (its residual in ``history`` is taken
    against the global mean too); an unknown user with no ``history`` gets bias 0, so the plain
    item mean; an unknown user with ``history`` gets the bias of the history alone. Unknown user
    and item: global mean plus that bias. With a bias, predictions are clipped to the range of
    training values. Residuals folded in by ``partial_fit_*`` are taken against the item means at
    that time.

    Examples
    --------
    >>> from dayzero.core.schema import Dataset, Interactions
    >>> rows = [("u", "a", 4.0), ("v", "a", 2.0), ("v", "b", 5.0)]
    >>> data = Dataset(Interactions.from_records(rows))
    >>> ItemMean().fit(data).predict(["u", "u"], ["a", "zz"]).round(3).tolist()
    [3.0, 3.667]
    """

    _SAVED_ARRAYS = ("item_sum_", "item_count_", "user_residual_sum_", "user_count_")
    _SAVED_EXTRAS: ClassVar[_common.SavedExtras] = {
        "value_sum_": float,
        "count_": int,
        "value_min_": float,
        "value_max_": float,
    }

    def __init__(self, user_bias: bool = False, reg: float = 5.0) -> None:
        self.user_bias = user_bias
        self.reg = reg

    def fit(self, dataset: Dataset) -> Self:
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg}")
        inter = _common.training_interactions(dataset, self.name)
        self.user_map_ = IdMap()
        self.item_map_ = IdMap()
        self.seen_ = {}
        self.value_sum_, self.count_ = 0.0, 0
        self.value_min_, self.value_max_ = np.inf, -np.inf
        self.item_sum_ = np.zeros(0)
        self.item_count_ = np.zeros(0)
        self.user_residual_sum_ = np.zeros(0)
        self.user_count_ = np.zeros(0)
        self._absorb(inter)
        return self

    # ----------------------------------------------------------------- learning
    def _absorb(self, interactions: Interactions) -> None:
        """Add interactions: item sums first, then user residuals against the updated means."""
        if len(interactions) == 0:
            return
        users = self.user_map_.add(interactions.frame["user"])
        items = self.item_map_.add(interactions.frame["item"])
        values = interactions.values.astype(np.float64)
        _common.update_seen(self.seen_, interactions)
        self.value_sum_ += float(values.sum())
        self.count_ += len(values)
        self.value_min_ = min(self.value_min_, float(values.min()))
        self.value_max_ = max(self.value_max_, float(values.max()))
        n_items, n_users = len(self.item_map_), len(self.user_map_)
        self.item_sum_ = _common.grow(self.item_sum_, n_items)
        self.item_count_ = _common.grow(self.item_count_, n_items)
        np.add.at(self.item_sum_, items, values)
        np.add.at(self.item_count_, items, 1.0)
        residuals = values - self.item_means_()[items]
        self.user_residual_sum_ = _common.grow(self.user_residual_sum_, n_users)
        self.user_count_ = _common.grow(self.user_count_, n_users)
        np.add.at(self.user_residual_sum_, users, residuals)
        np.add.at(self.user_count_, users, 1.0)

    # ----------------------------------------------------------------- scoring
    @property
    def global_mean_(self) -> float:
        return self.value_sum_ / self.count_

    def item_means_(self) -> np.ndarray:
        """Mean value of every item in ``item_map_`` order."""
        counts = np.maximum(self.item_count_, 1.0)
        return np.where(self.item_count_ > 0, self.item_sum_ / counts, self.global_mean_)

    def _item_baseline(self, items: list[Hashable]) -> np.ndarray:
        index = self.item_map_.to_internal(items, missing=-1)
        means = self.item_means_()
        return np.where(index >= 0, means[np.maximum(index, 0)], self.global_mean_)

    def user_biases(self, users: list[Hashable], history: Interactions | None) -> np.ndarray:
        """Shrunk mean residual of each user (training + ``history``), aligned with ``users``."""
        index = self.user_map_.to_internal(users, missing=-1)
        known = index >= 0
        sums = np.where(known, self.user_residual_sum_[np.maximum(index, 0)], 0.0)
        counts = np.where(known, self.user_count_[np.maximum(index, 0)], 0.0)
        extra = _common.history_frame(history, users)
        if not extra.empty:
            residual = extra["value"].to_numpy(np.float64) - self._item_baseline(
                extra["item"].tolist()
            )
            grouped = (
                extra.assign(residual=residual)
                .groupby("user", sort=False)["residual"]
                .agg(["sum", "count"])
            )
            for user, positions in _common.positions_by_user(users).items():
                if user in grouped.index:
                    sums[positions] += grouped.at[user, "sum"]
                    counts[positions] += grouped.at[user, "count"]
        return sums / (counts + self.reg) if self.reg > 0 else sums / np.maximum(counts, 1.0)

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        base = self._item_baseline(items)
        if not self.user_bias:
            return base
        scores = base + self.user_biases(users, history)
        return _common.clip(scores, self.value_min_, self.value_max_)


@register("item-mean-user-bias")
class ItemMeanUserBias(ItemMean):
    """:class:`ItemMean` with ``user_bias=True``: item mean + shrunk mean residual of the user.

    Parameters
    ----------
    reg
        Shrinkage of the user bias: ``residual_sum / (n + reg)``.

    Notes
    -----
    Cold fallback as in :class:`ItemMean`: unknown item -> global mean + user bias; unknown user
    without ``history`` -> bias 0.
    """

    def __init__(self, reg: float = 5.0) -> None:
        super().__init__(user_bias=True, reg=reg)
