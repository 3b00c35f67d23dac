"""Full-catalogue cold start: every segment ranked over the whole catalogue.

One protocol for every recommendation dataset, the top-K task a deployed recommender serves: a
user's list is drawn from every item, not from a handful of candidates. Segments (settings of
:meth:`CatalogueSplit.ranking_settings`):

* ``warm``: users with training interactions; their held-out relevant items of known items.
* ``new users k=K`` for each ``K`` in ``ks`` (default 0, 1, 3, 5, 10): users without any
  training interaction reveal their first ``K`` interactions (``history``; the first ``K`` in
  time order where there are timestamps, else in a seeded random order); the items to find are
  the rest of their relevant interactions with known items. The same users at every ``K``
  (those with something left to find at the largest one), so the settings form a warm-up curve.
* ``new items``: known users' relevant interactions with items that have no training
  interaction, ranked among every item and among the new items only.
* ``new users + new items``: new users revealing their first ``both_k`` interactions; the items
  to find are their relevant interactions with new items (among every item and the new ones).

*Relevant* is ``value >= threshold`` (4 on 1-5 ratings); with ``threshold=None`` (implicit
feedback) every held-out interaction is. Items in a task's history are never candidates. A
warm user's history is the training interactions (the model knows them: the task is marked
``known_user`` and the model scores the user as itself); a new user's history carries the
revealed values (ratings), which rating models use.

What a model sees
-----------------
``split.train`` holds the training interactions, the fields of the known items (every item
but the new ones) and the profiles of the known users (every user but the new ones), with id
maps of those alone: a vocabulary, an IDF or any text statistic fit on it has never seen a new
item. :meth:`CatalogueSplit.fold_in` gives a fitted model the new items' fields
(``partial_fit_items``) and the new users' profiles (``partial_fit_users`` without
interactions), the way the Steam new-games protocol does; nothing is refit.

Builders
--------
* :func:`temporal_catalogue_split` (timestamps): train on what happened before a cut-off (a
  quantile of the timestamps); every later interaction is test; new users and new items are
  those first seen after it. No history item of a task is later than the items to find.
* :func:`holdout_catalogue_split` (seeded): random users and items held out entirely, and a
  random share of the warm interactions; for data without timestamps.
* :func:`melu_catalogue_split`: ML-1M on MeLU's states (``meta_training`` trains,
  ``warm_up`` / ``user_cold_testing`` / ``item_cold_testing`` / ``user_and_item_cold_testing``
  are the segments).
* :func:`heater_catalogue_split`: CiteULike-a on Heater's item cold-start split, the item side
  its tags or its citations only.
* :func:`ml100k_catalogue_split`, :func:`restaurant_catalogue_split`, :func:`steam_protocols`:
  the datasets of the benchmark (``bench/retrieval.py``); each takes the loaded data and a seed.

Model selection
---------------
``split.validation_split()`` builds the same protocol from ``split.train`` alone: an earlier
cut-off (temporal), or users, items and warm interactions held out of the training data in the
test split's proportions (the other builders). Settings are chosen on it
(:func:`dayzero.evaluate.ranking.select_setting`), never on the test users.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from dayzero.core.schema import ITEM, TIMESTAMP, USER, VALUE, Dataset, Entities, Interactions
from dayzero.evaluate.protocols.steam import time_order
from dayzero.evaluate.ranking import RankingProtocol, RankingSetting, RankingTask

WARM = "warm"
NEW_ITEMS = "new items"
NEW_BOTH = "new users + new items"
ALL_ITEMS = "all items"
DEFAULT_KS = (0, 1, 3, 5, 10)
#: Interactions a new user reveals in the ``new users + new items`` segment.
DEFAULT_BOTH_K = 5
Order = Literal["time", "seeded"]


def new_users_setting(k: int) -> str:
    """The name of the new-users setting revealing ``k`` interactions: ``"new users k=3"``."""
    return f"new users k={k}"


# --- the protocol ---------------------------------------------------------------------------------


@dataclass
class CatalogueSplit:
    """Training data and the held-out interactions of every segment (see the module docstring).

    Attributes
    ----------
    train
        Training interactions with the known users' profiles and the known items' fields.
    warm
        Held-out interactions of known users with known items.
    new_item_rows
        Held-out interactions of known users with new items.
    new_user_rows
        Every interaction of the new users, grouped by user in the order they are revealed
        (time, or a seeded random order).
    new_items
        Items with held-out interactions and no training one: the ``new items`` candidates.
    catalogue
        Every item ranked: those with an interaction anywhere, training or test.
    threshold
        Smallest relevant value; ``None``: every held-out interaction is relevant.
    item_fields, user_fields
        The new items' fields and the new users' profiles, given at :meth:`fold_in`.
    params
        Builder, settings (``order``, ``both_k``, ``seed``, ``time_cut``) and how
        :meth:`validation_split` rebuilds the protocol.
    """

    train: Dataset
    warm: Interactions
    new_item_rows: Interactions
    new_user_rows: Interactions
    new_items: list[Hashable]
    catalogue: list[Hashable]
    threshold: float | None
    item_fields: Entities | None = None
    user_fields: Entities | None = None
    params: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ tasks
    def _relevant(self, frame: pd.DataFrame) -> np.ndarray:
        if self.threshold is None:
            return np.ones(len(frame), dtype=bool)
        return (frame[VALUE].to_numpy() >= self.threshold) & np.isfinite(frame[VALUE].to_numpy())

    def training_histories(self) -> dict[Hashable, tuple[tuple, tuple]]:
        """Known user -> (items, values) of their training interactions in time order
        (:func:`~dayzero.evaluate.protocols.steam.time_order`; file order without
        timestamps)."""
        cached = getattr(self, "_histories", None)
        if cached is not None:
            return cached
        frame = self.train.interactions.frame
        ordered = frame.iloc[time_order(frame)]
        out: dict[Hashable, tuple[tuple, tuple]] = {}
        for user, group in ordered.groupby(USER, sort=False):
            out[user] = (tuple(group[ITEM].tolist()), tuple(group[VALUE].tolist()))
        self._histories = out
        return out

    def _known_user_tasks(self, rows: Interactions) -> list[RankingTask]:
        frame = rows.frame.loc[self._relevant(rows.frame)]
        histories = self.training_histories()
        tasks = []
        for user, items in frame.groupby(USER, sort=False)[ITEM]:
            history, values = histories[user]
            relevant = frozenset(items.tolist()) - set(history)
            if relevant:
                tasks.append(RankingTask(user, history, relevant, values, known_user=True))
        return tasks

    def warm_tasks(self) -> list[RankingTask]:
        """Known users: their training items as history, held-out relevant known items to find."""
        return self._known_user_tasks(self.warm)

    def new_item_tasks(self) -> list[RankingTask]:
        """Known users: their training items as history, held-out relevant new items to find."""
        return self._known_user_tasks(self.new_item_rows)

    def _sequences(self) -> list[tuple[Hashable, list, list, np.ndarray]]:
        """New user -> (items, values, relevant mask) in reveal order (cached)."""
        cached = getattr(self, "_sequence_cache", None)
        if cached is not None and cached[0] is self.new_user_rows:
            return cached[1]
        frame = self.new_user_rows.frame
        relevant = self._relevant(frame)
        out = []
        positions = pd.Series(np.arange(len(frame))).groupby(frame[USER].to_numpy(), sort=False)
        for user, where in positions:
            rows = where.to_numpy()
            out.append(
                (
                    user,
                    frame[ITEM].to_numpy()[rows].tolist(),
                    frame[VALUE].to_numpy()[rows].tolist(),
                    relevant[rows],
                )
            )
        self._sequence_cache = (self.new_user_rows, out)
        return out

    def _new_user_task(
        self, user: Hashable, items: list, values: list, relevant: np.ndarray, k: int, new: bool
    ) -> RankingTask | None:
        history = tuple(items[:k])
        is_new = self._new_item_set()
        wanted = {
            item
            for item, good in zip(items[k:], relevant[k:], strict=True)
            if good and (item in is_new) == new
        } - set(history)
        if not wanted:
            return None
        return RankingTask(user, history, frozenset(wanted), tuple(values[:k]))

    def _new_item_set(self) -> set:
        cached = getattr(self, "_new_set", None)
        if cached is None or len(cached) != len(self.new_items):
            cached = self._new_set = set(self.new_items)
        return cached

    def new_user_tasks(self, k: int, ks: Sequence[int] | None = None) -> list[RankingTask]:
        """New users revealing their first ``k`` interactions; the rest of their relevant
        interactions with known items are the items to find.

        Only users with such an interaction left after ``max(ks)`` (default ``k``) are kept, so
        the settings of every ``k`` in ``ks`` hold the same users.
        """
        k = _count("k", k)
        deepest = max([k, *(ks or ())])
        tasks = []
        for user, items, values, relevant in self._sequences():
            if self._new_user_task(user, items, values, relevant, deepest, new=False) is None:
                continue
            task = self._new_user_task(user, items, values, relevant, k, new=False)
            if task is not None:
                tasks.append(task)
        return tasks

    def new_both_tasks(self, k: int | None = None) -> list[RankingTask]:
        """New users revealing their first ``k`` (default ``both_k``) interactions; their
        relevant interactions with new items after those are the items to find."""
        k = _count("k", self.params.get("both_k", DEFAULT_BOTH_K) if k is None else k)
        tasks = []
        for user, items, values, relevant in self._sequences():
            task = self._new_user_task(user, items, values, relevant, k, new=True)
            if task is not None:
                tasks.append(task)
        return tasks

    def ranking_settings(
        self, catalogue: Sequence[Hashable] = (), ks: Sequence[int] = DEFAULT_KS
    ) -> list[RankingSetting]:
        """Warm, new users at each ``k`` in ``ks``, new items, new users + new items.

        Every setting ranks among every item (``catalogue`` with this split's own catalogue and
        new items added); the two new-item settings also among the new items only. Settings
        without a task are left out.
        """
        ks = [_count("k", k) for k in ks]
        every = list(dict.fromkeys([*catalogue, *self.catalogue, *self.new_items]))
        whole = {ALL_ITEMS: every}
        new = {NEW_ITEMS: list(self.new_items), ALL_ITEMS: every}
        settings = [RankingSetting(WARM, self.warm_tasks(), whole)]
        settings += [
            RankingSetting(new_users_setting(k), self.new_user_tasks(k, ks), whole) for k in ks
        ]
        settings.append(RankingSetting(NEW_ITEMS, self.new_item_tasks(), new))
        both_k = self.params.get("both_k", DEFAULT_BOTH_K)
        settings.append(RankingSetting(NEW_BOTH, self.new_both_tasks(both_k), new))
        return [s for s in settings if s.tasks]

    # ------------------------------------------------------------------ models
    def fold_in(self, model: Any) -> Any:
        """Give a model fitted on :attr:`train` the new items' fields
        (``partial_fit_items``) and the new users' profiles (``partial_fit_users`` with no
        interactions): day-zero information, embedded with the statistics fitted on the known
        entities. A model that implements neither keeps its cold fallback. Returns the model."""
        if self.item_fields is not None and len(self.item_fields):
            with contextlib.suppress(NotImplementedError):
                model.partial_fit_items(self.item_fields)
        if self.user_fields is not None and len(self.user_fields):
            with contextlib.suppress(NotImplementedError):
                model.partial_fit_users(Interactions.empty(), users=self.user_fields)
        return model

    def validation_split(self) -> CatalogueSplit:
        """The same protocol on :attr:`train` alone (see the module docstring). Settings are
        chosen on it, never on the test users."""
        rule = self.params["validation"]
        common = {
            "threshold": self.threshold,
            "both_k": self.params.get("both_k", DEFAULT_BOTH_K),
            "seed": self.params.get("seed", 0),
        }
        if rule["builder"] == "temporal":
            return temporal_catalogue_split(self.train, quantile=rule["quantile"], **common)
        return holdout_catalogue_split(
            self.train,
            new_users=rule["new_users"],
            new_items=rule["new_items"],
            warm_test=rule["warm_test"],
            **common,
        )

    def summary(self) -> dict[str, Any]:
        """Counts of every part, and the settings."""
        users = lambda rows: int(rows.frame[USER].nunique())  # noqa: E731
        return {
            "protocol": "full-catalogue",
            "catalogue": len(self.catalogue),
            "new_items": len(self.new_items),
            "train_interactions": len(self.train.interactions),
            "train_users": int(self.train.interactions.frame[USER].nunique()),
            "train_items": int(self.train.interactions.frame[ITEM].nunique()),
            "warm_rows": len(self.warm),
            "warm_users": users(self.warm),
            "new_item_rows": len(self.new_item_rows),
            "new_user_rows": len(self.new_user_rows),
            "new_users": users(self.new_user_rows),
            "threshold": self.threshold,
            **{k: v for k, v in self.params.items() if k != "validation"},
        }


# --- assembly -------------------------------------------------------------------------------------


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _fraction(name: str, value: float) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (is_number and 0 <= value < 1):
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return float(value)


def _threshold(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"threshold must be a number or None (implicit), got {value!r}")
    return float(value)


def _reveal_order(frame: pd.DataFrame, order: Order, seed: int) -> pd.DataFrame:
    """``frame`` grouped by user (first appearance), each user's rows in time order (ties in
    frame order) or in a seeded random order."""
    if order == "time":
        ordered = frame.iloc[time_order(frame)]
    else:
        ordered = frame.iloc[np.random.default_rng(seed).permutation(len(frame))]
    codes = pd.Index(pd.unique(frame[USER])).get_indexer(ordered[USER])
    return ordered.iloc[np.argsort(codes, kind="stable")]


def _entities_without(entities: Entities | None, drop: Iterable[Hashable]) -> Entities | None:
    if entities is None:
        return None
    drop = set(drop)
    return entities.subset([i for i in entities.ids if i not in drop])


def _entities_of(entities: Entities | None, ids: Iterable[Hashable]) -> Entities | None:
    if entities is None:
        return None
    subset = entities.subset(ids)
    return subset if len(subset) else None


def assemble_catalogue_split(
    frame: pd.DataFrame,
    is_train: np.ndarray,
    new_items: Iterable[Hashable],
    users: Entities | None,
    items: Entities | None,
    threshold: float | None,
    order: Order,
    seed: int,
    both_k: int,
    params: dict[str, Any],
    name: str = "dataset",
    train_items: Entities | None = None,
) -> CatalogueSplit:
    """Build a :class:`CatalogueSplit` from every interaction and which rows train.

    Parameters
    ----------
    frame
        Every interaction (``user``, ``item``, ``value``, optional ``timestamp``).
    is_train
        Boolean mask of the training rows.
    new_items
        Items whose fields are withheld until :meth:`CatalogueSplit.fold_in`. They must have no
        training row. New users are the users without a training row.
    users, items
        Profiles and item fields of every entity (``None``: the dataset has none).
    threshold, order, seed, both_k
        As in :class:`CatalogueSplit`.
    params
        Builder settings, with ``validation`` (how :meth:`~CatalogueSplit.validation_split`
        rebuilds the protocol).
    name
        Name of the training dataset.
    train_items
        Fields of the known items as the training data should see them (default ``items``
        without the new ones): a builder whose item side links items (citations) drops the
        links to new items there.
    """
    is_train = np.asarray(is_train, dtype=bool)
    if not is_train.any():
        raise ValueError("the split leaves no training interaction; move the cut or fractions")
    new_items = list(dict.fromkeys(new_items))
    new_set = set(new_items)
    train = frame.loc[is_train]
    if train[ITEM].isin(new_set).any():
        raise AssertionError("a new item has a training interaction")
    test = frame.loc[~is_train]
    known_users = set(pd.unique(train[USER]).tolist())
    user_known = test[USER].isin(known_users).to_numpy()
    item_new = test[ITEM].isin(new_set).to_numpy()
    new_users = [u for u in pd.unique(test.loc[~user_known, USER])]
    kept_items = train_items if train_items is not None else _entities_without(items, new_set)
    train_data = Dataset(
        Interactions(train),
        _entities_without(users, new_users),
        kept_items,
        name=name,
    )
    held = [i for i in pd.unique(test.loc[item_new, ITEM])]
    catalogue = list(pd.unique(frame[ITEM]))
    return CatalogueSplit(
        train=train_data,
        warm=Interactions(test.loc[user_known & ~item_new]),
        new_item_rows=Interactions(test.loc[user_known & item_new]),
        new_user_rows=Interactions(_reveal_order(test.loc[~user_known], order, seed)),
        new_items=held,
        catalogue=catalogue,
        threshold=threshold,
        item_fields=_entities_of(items, held),
        user_fields=_entities_of(users, new_users),
        params={"order": order, "seed": seed, "both_k": both_k, **params},
    )


def _held_fractions(split: CatalogueSplit) -> dict[str, float]:
    """New users, new items and warm test rows as shares of their population: what a holdout
    validation split carved from the training data reproduces."""
    train = split.train.interactions.frame
    n_new_users = int(split.new_user_rows.frame[USER].nunique())
    n_users = int(train[USER].nunique()) + n_new_users
    n_items = int(train[ITEM].nunique()) + len(split.new_items)
    warm = len(split.warm)
    return {
        "new_users": n_new_users / n_users if n_users else 0.0,
        "new_items": len(split.new_items) / n_items if n_items else 0.0,
        "warm_test": warm / (warm + len(train)) if warm + len(train) else 0.0,
    }


def _with_holdout_validation(split: CatalogueSplit) -> CatalogueSplit:
    fractions = {k: round(v, 4) for k, v in _held_fractions(split).items()}
    split.params["validation"] = {"builder": "holdout", **fractions}
    return split


# --- builders -------------------------------------------------------------------------------------


def temporal_catalogue_split(
    dataset: Dataset,
    quantile: float = 0.7,
    cutoff: Any = None,
    threshold: float | None = 4.0,
    both_k: int = DEFAULT_BOTH_K,
    seed: int = 0,
) -> CatalogueSplit:
    """Train on what happened before a cut-off, test on everything after it.

    Parameters
    ----------
    dataset
        Interactions with a ``timestamp`` column; user and item tables optional.
    quantile
        Without ``cutoff``: the cut-off is this quantile of the timestamps (``0.7``: the
        earliest 70 % of the interactions train).
    cutoff
        A value comparable with the timestamps; wins over ``quantile``.
    threshold, both_k, seed
        Relevance threshold (``None``: implicit), the reveal size of the new users + new items
        segment, and the seed (only ties of equal timestamps keep their file order; the seed
        is passed on to the validation split).

    Returns
    -------
    CatalogueSplit
        Training rows are those dated strictly before the cut-off; new users and new items are
        those with no training row (first seen at or after it), their fields withheld until
        :meth:`~CatalogueSplit.fold_in`. Warm and new-item histories are training rows, so
        earlier than anything to find; new users reveal their first interactions in time
        order. ``validation_split()`` cuts ``split.train`` at the same quantile.
    """
    threshold = _threshold(threshold)
    frame = dataset.interactions.frame
    if len(frame) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no interactions to split")
    if TIMESTAMP not in frame.columns:
        raise ValueError(
            "temporal_catalogue_split needs a 'timestamp' column; use holdout_catalogue_split "
            "for data without timestamps"
        )
    stamps = frame[TIMESTAMP]
    if cutoff is None:
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
        cutoff = stamps.quantile(quantile, interpolation="lower")
    elif pd.api.types.is_datetime64_any_dtype(stamps):
        cutoff = pd.Timestamp(cutoff)
    is_train = (stamps < cutoff).to_numpy()
    if is_train.all() or not is_train.any():
        raise ValueError(
            f"cut-off {cutoff!r} leaves the {'test' if is_train.all() else 'training'} part "
            f"empty; timestamps run from {stamps.min()!r} to {stamps.max()!r}"
        )
    known_items = set(pd.unique(frame.loc[is_train, ITEM]).tolist())
    new_items = [i for i in pd.unique(frame[ITEM]) if i not in known_items]
    params = {
        "builder": "temporal",
        "time_cut": True,
        "cutoff": cutoff.isoformat() if isinstance(cutoff, pd.Timestamp) else _plain(cutoff),
        "quantile": quantile,
        "validation": {"builder": "temporal", "quantile": quantile},
    }
    return assemble_catalogue_split(
        frame,
        is_train,
        new_items,
        dataset.users,
        dataset.items,
        threshold,
        "time",
        seed,
        _count("both_k", both_k),
        params,
        name=dataset.name,
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def holdout_catalogue_split(
    dataset: Dataset,
    new_users: float = 0.2,
    new_items: float = 0.2,
    warm_test: float = 0.2,
    threshold: float | None = 4.0,
    both_k: int = DEFAULT_BOTH_K,
    seed: int = 0,
) -> CatalogueSplit:
    """Hold out random users and items entirely, and a random share of the warm interactions.

    Parameters
    ----------
    dataset
        The data to split (timestamps only order the new users' reveals: nothing is cut in time,
        so use :func:`temporal_catalogue_split` where there are timestamps).
    new_users, new_items
        Fractions in ``[0, 1)`` of the users and the items with interactions held out.
    warm_test
        Fraction in ``[0, 1)`` of the interactions between the other users and items held out
        as the warm segment (a drawn row that would leave its user or item with no training
        row stays in training).
    threshold, both_k, seed
        Relevance threshold (``None``: implicit), the reveal size of the new users + new items
        segment, and the seed of every draw (and of the new users' reveal order).

    Returns
    -------
    CatalogueSplit
        New users are the users left without a training row (the drawn ones and any whose
        every interaction was with a held-out item); new items likewise.
        ``validation_split()`` holds out the same fractions of ``split.train``.
    """
    threshold = _threshold(threshold)
    fractions = {
        "new_users": _fraction("new_users", new_users),
        "new_items": _fraction("new_items", new_items),
        "warm_test": _fraction("warm_test", warm_test),
    }
    frame = dataset.interactions.frame
    if len(frame) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no interactions to split")
    rng = np.random.default_rng(seed)

    def draw(ids: np.ndarray, fraction: float) -> set:
        n = round(fraction * len(ids))
        if fraction > 0:
            n = max(1, n)
        if n >= len(ids):
            raise ValueError(f"holding out {fraction} of {len(ids)} leaves none to train on")
        return set(ids[np.sort(rng.choice(len(ids), size=n, replace=False))].tolist())

    cold_users = draw(pd.unique(frame[USER]), fractions["new_users"])
    cold_items = draw(pd.unique(frame[ITEM]), fractions["new_items"])
    warm = ~frame[USER].isin(cold_users).to_numpy() & ~frame[ITEM].isin(cold_items).to_numpy()
    if not warm.any():
        raise ValueError("no interaction is left between warm users and warm items to train on")
    positions = np.flatnonzero(warm)
    drawn = np.zeros(len(frame), dtype=bool)
    drawn[
        rng.choice(positions, size=round(fractions["warm_test"] * len(positions)), replace=False)
    ] = True
    is_train = warm & ~drawn
    orphan = drawn & (
        ~frame[USER].isin(pd.unique(frame.loc[is_train, USER])).to_numpy()
        | ~frame[ITEM].isin(pd.unique(frame.loc[is_train, ITEM])).to_numpy()
    )
    is_train |= orphan
    known_items = set(pd.unique(frame.loc[is_train, ITEM]).tolist())
    held = [i for i in pd.unique(frame[ITEM]) if i not in known_items]
    order: Order = "time" if TIMESTAMP in frame.columns else "seeded"
    params = {
        "builder": "holdout",
        "time_cut": False,
        "held_out": fractions,
        "validation": {"builder": "holdout", **fractions},
    }
    return assemble_catalogue_split(
        frame,
        is_train,
        held,
        dataset.users,
        dataset.items,
        threshold,
        order,
        seed,
        _count("both_k", both_k),
        params,
        name=dataset.name,
    )


def states_catalogue_split(
    train: Interactions,
    tests: Sequence[Interactions],
    new_items: Iterable[Hashable],
    users: Entities | None,
    items: Entities | None,
    threshold: float | None = 4.0,
    both_k: int = DEFAULT_BOTH_K,
    seed: int = 0,
    name: str = "dataset",
    builder: str = "states",
    train_items: Entities | None = None,
) -> CatalogueSplit:
    """A :class:`CatalogueSplit` from given training and test interactions (published splits).

    Parameters
    ----------
    train
        The training interactions.
    tests
        Every test part; their rows are segmented by whether the user has a training row and
        whether the item is one of ``new_items``.
    new_items
        The held-out items (no training row), whose fields are withheld until fold-in.
    users, items, threshold, both_k, seed, name, train_items
        As in :func:`assemble_catalogue_split`; new users reveal in a seeded random order when
        the data has no timestamps.

    Returns
    -------
    CatalogueSplit
        ``validation_split()`` holds out, from the training data, the test split's shares of
        new users, new items and warm interactions (:func:`holdout_catalogue_split`).
    """
    parts = [train.frame, *(t.frame for t in tests)]
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    is_train = np.zeros(len(frame), dtype=bool)
    is_train[: len(train)] = True
    order: Order = "time" if TIMESTAMP in frame.columns else "seeded"
    split = assemble_catalogue_split(
        frame,
        is_train,
        new_items,
        users,
        items,
        _threshold(threshold),
        order,
        seed,
        _count("both_k", both_k),
        {"builder": builder, "time_cut": False},
        name=name,
        train_items=train_items,
    )
    return _with_holdout_validation(split)


# --- the datasets of the benchmark ----------------------------------------------------------------


def melu_catalogue_split(data: Any, seed: int = 0, both_k: int = DEFAULT_BOTH_K) -> CatalogueSplit:
    """ML-1M on MeLU's states (:func:`~dayzero.datasets.melu.load_ml1m_melu`), or any dataset
    in MeLU's format (:func:`~dayzero.datasets.melu.load_melu`: its training and test states).

    ``meta_training`` trains; ``warm_up`` is the warm segment, ``user_cold_testing`` the new
    users (each reveals its first ``k`` ratings in a seeded order: the states carry no
    timestamps), ``item_cold_testing`` the new items and ``user_and_item_cold_testing`` the new
    users + new items. New items are the movies of the two item-cold states. Relevant: rating
    >= 4.
    """
    from dayzero.core.split import NEW_BOTH, NEW_ITEMS

    states = data.states
    new_items = [
        item
        for state, segment in data.test_states.items()
        if segment in (NEW_ITEMS, NEW_BOTH)
        for item in pd.unique(states[state].frame[ITEM])
    ]
    return states_catalogue_split(
        states[data.train_state],
        [states[s] for s in data.test_states],
        new_items,
        data.users,
        data.items,
        threshold=4.0,
        both_k=both_k,
        seed=seed,
        name=getattr(data, "name", "ml-1m-melu"),
        builder="melu-states",
    )


def ml100k_catalogue_split(
    dataset: Dataset, seed: int = 0, quantile: float = 0.7, both_k: int = DEFAULT_BOTH_K
) -> CatalogueSplit:
    """MovieLens-100K in time (:func:`temporal_catalogue_split`): the earliest ``quantile`` of
    the ratings trains; relevant: rating >= 4."""
    return temporal_catalogue_split(
        dataset, quantile=quantile, threshold=4.0, both_k=both_k, seed=seed
    )


def restaurant_catalogue_split(dataset: Dataset, seed: int = 0, both_k: int = 1) -> CatalogueSplit:
    """The UCI restaurant data (ratings 0-2, no timestamps): 30 % of the diners and 20 % of the
    restaurants held out, 20 % of the other ratings as the warm segment; relevant: rating 2.
    Diners rate 8 restaurants on average, so new users + new items reveal one rating."""
    return holdout_catalogue_split(
        dataset, new_users=0.3, new_items=0.2, warm_test=0.2, threshold=2.0,
        both_k=both_k, seed=seed,
    )  # fmt: skip


CITEULIKE_SIDES = ("tags", "citations")


def citeulike_items(
    dataset: Dataset, side: str, new_items: Iterable[Hashable] = ()
) -> tuple[Entities, Entities]:
    """The item side of CiteULike-a: ``(fields of the known items, fields of every item)``.

    ``side="tags"``: the ``tags`` field. ``side="citations"``: a ``citations`` field of tokens
    ``c<id>``, the article itself and the articles it is linked to
    (:func:`~dayzero.datasets.citeulike.load_citeulike` with ``with_citations=True``); a known
    article's links to ``new_items`` are left out of its training fields (they exist only once
    the new article does), a new article keeps all of its own.
    """
    if side not in CITEULIKE_SIDES:
        raise ValueError(f"side must be one of {CITEULIKE_SIDES}, not {side!r}")
    frame = dataset.items.frame if dataset.items is not None else None
    if frame is None or side not in frame.columns:
        load = "with_citations=True" if side == "citations" else "its item table"
        raise ValueError(f"the CiteULike items have no {side!r} field: load them with {load}")
    if side == "tags":
        every = Entities(frame[["tags"]], {"tags": "multi"})
        new = set(new_items)
        return every.subset([i for i in every.ids if i not in new]), every
    new = set(new_items)

    def tokens(item: Hashable, links: Sequence[Hashable], keep_new: bool) -> list[str]:
        return [f"c{j}" for j in [item, *links] if keep_new or j not in new or j == item]

    full = [tokens(i, links, True) for i, links in frame["citations"].items()]
    every = Entities(pd.DataFrame({"citations": full}, index=frame.index), {"citations": "multi"})
    known_ids = [i for i in frame.index if i not in new]
    known = pd.DataFrame(
        {"citations": [tokens(i, frame.at[i, "citations"], False) for i in known_ids]},
        index=pd.Index(known_ids, name=frame.index.name),
    )
    return Entities(known, {"citations": "multi"}), every


def heater_catalogue_split(
    dataset: Dataset, heater: Any, side: str = "tags", seed: int = 0
) -> CatalogueSplit:
    """CiteULike-a on Heater's item cold-start split
    (:func:`~dayzero.datasets.citeulike.load_heater_split`): ``train.csv`` trains, the
    ``test.csv`` articles are the new items (ranked among the 2,378 cold test articles, as
    Heater reports, and among every article of train and test). The validation articles
    (``vali.csv``) belong to Heater's validation phase and are left out; model selection uses
    :meth:`CatalogueSplit.validation_split` (carved from ``train.csv``). Implicit: every pair is
    relevant. The item side is ``side`` (:func:`citeulike_items`).
    """
    known_fields, every = citeulike_items(dataset, side, heater.test_items)
    return states_catalogue_split(
        heater.train,
        [heater.test],
        heater.test_items,
        None,
        every,
        threshold=None,
        seed=seed,
        name=f"citeulike-a-{side}",
        builder=f"heater-{side}",
        train_items=known_fields,
    )


def steam_protocols(
    dataset: Dataset, seed: int = 0, timed: bool = True
) -> dict[str, RankingProtocol]:
    """The Steam protocols (:mod:`dayzero.evaluate.protocols.steam`) on positive interactions:
    ``"new games"`` (latest 15 % of the games by release held out) and ``"new players"`` (20 %
    of the players with >= 2 positives held out, first k actions revealed). ``timed=False``
    (steam-200k, no timestamps) keeps every training interaction in the new-games histories."""
    from dayzero.evaluate.protocols.steam import new_games_split, new_players_split

    return {
        "new games": new_games_split(dataset, fraction=0.15, allow_untimed=not timed),
        "new players": new_players_split(dataset, fraction=0.2, min_interactions=2, seed=seed),
    }


__all__: Sequence[str] = (
    "ALL_ITEMS",
    "CITEULIKE_SIDES",
    "DEFAULT_BOTH_K",
    "DEFAULT_KS",
    "NEW_BOTH",
    "NEW_ITEMS",
    "WARM",
    "CatalogueSplit",
    "assemble_catalogue_split",
    "citeulike_items",
    "heater_catalogue_split",
    "holdout_catalogue_split",
    "melu_catalogue_split",
    "ml100k_catalogue_split",
    "new_users_setting",
    "restaurant_catalogue_split",
    "states_catalogue_split",
    "steam_protocols",
    "temporal_catalogue_split",
)
