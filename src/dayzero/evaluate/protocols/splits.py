"""Generic cold-start protocols: hold-out, k-shot new users, temporal, and few-shot row sampling.

Every protocol is a pure function of ``(dataset, parameters, seed)`` and returns a
:class:`~dayzero.core.split.ColdStartSplit`. Two rules hold for all of them:

* ``split.train`` keeps the full user and item tables and id maps: the *fields* of a cold entity
  are day-zero information. Only the training *interactions* are restricted.
* No interaction of a cold entity is in the training interactions. Segments are assigned by what
  the training interactions actually contain: ``new_users`` rows have a user with no training
  interaction and an item with one, ``new_items`` the reverse, ``new_users_items`` neither, and
  ``warm`` both. A segment with no rows at all is left out of ``split.segments``.

When new users reveal ``k`` interactions (``support_k`` / ``k``), a user's first ``k`` rows (in time
order, or at random with the seed) are the support and the rest the query. The support of a user
is placed in every new-user segment (``new_users``, ``new_users_items``) where the user has a row,
so each task sees all that the user revealed; a support row can therefore appear in both segments.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from dayzero.core.schema import ITEM, TIMESTAMP, USER, Dataset, Interactions, SchemaError
from dayzero.core.split import (
    NEW_BOTH,
    NEW_ITEMS,
    NEW_USERS,
    SEGMENTS,
    WARM,
    ColdStartSplit,
    Segment,
)

Order = Literal["time", "random"]


# --- parameter checks -----------------------------------------------------------------------------


def _fraction(name: str, value: float, allow_zero: bool = True) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    low_ok = is_number and (value >= 0 if allow_zero else value > 0)
    if not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be a fraction in {interval}, got {value!r}")
    return float(value)


def _count(name: str, value: int, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _order(order: str, has_timestamp: bool) -> Order:
    if order not in ("time", "random"):
        raise ValueError(f"order must be 'time' or 'random', got {order!r}")
    if order == "time" and not has_timestamp:
        raise SchemaError(
            "order='time' needs a 'timestamp' column in the interactions; "
            "use order='random' or load the data with timestamps"
        )
    return order  # type: ignore[return-value]


def _interactions(dataset: Dataset) -> pd.DataFrame:
    if len(dataset.interactions) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no interactions to split")
    return dataset.interactions.frame


# --- shared steps ---------------------------------------------------------------------------------


def _hold_out(ids: np.ndarray, fraction: float, rng: np.random.Generator, kind: str) -> set:
    """A random ``fraction`` of ``ids`` (at least one when the fraction is positive)."""
    if fraction == 0:
        return set()
    n = max(1, round(fraction * len(ids)))
    if n >= len(ids):
        raise ValueError(
            f"holding out {fraction} of {len(ids)} {kind} leaves none for training; "
            f"lower the fraction or use more {kind}"
        )
    chosen = rng.choice(len(ids), size=n, replace=False)
    return set(ids[np.sort(chosen)].tolist())


def _revealed(
    frame: pd.DataFrame, rows: np.ndarray, k: int, order: Order, rng: np.random.Generator
) -> np.ndarray:
    """Mask of the first ``k`` rows of each user among ``rows`` (time order or random)."""
    out = np.zeros(len(frame), dtype=bool)
    positions = np.flatnonzero(rows)
    if k == 0 or len(positions) == 0:
        return out
    if order == "time":
        # Stable sort: rows with equal timestamps keep their order in the data.
        perm = np.argsort(frame[TIMESTAMP].to_numpy()[positions], kind="stable")
    else:
        perm = rng.permutation(len(positions))
    ordered = pd.DataFrame(
        {"user": frame[USER].to_numpy()[positions][perm], "pos": positions[perm]}
    )
    rank = ordered.groupby("user", sort=False).cumcount().to_numpy()
    out[ordered["pos"].to_numpy()[rank < k]] = True
    return out


def _segments(
    frame: pd.DataFrame,
    train: np.ndarray,
    test: np.ndarray,
    support: np.ndarray,
) -> dict[str, Segment]:
    """Assign ``test`` rows to segments by whether their user/item has a training row.

    ``support`` marks the revealed rows of new users (a subset of ``test``); a user's support goes
    to every new-user segment where that user has a row.
    """
    user_known = frame[USER].isin(pd.unique(frame.loc[train, USER])).to_numpy()
    item_known = frame[ITEM].isin(pd.unique(frame.loc[train, ITEM])).to_numpy()
    where = {
        WARM: test & user_known & item_known,
        NEW_USERS: test & ~user_known & item_known,
        NEW_ITEMS: test & user_known & ~item_known,
        NEW_BOTH: test & ~user_known & ~item_known,
    }
    if (support & user_known).any():
        raise AssertionError("support rows must belong to users without training interactions")
    segments = {}
    for name in SEGMENTS:
        rows = where[name]
        if not rows.any():
            continue
        users = pd.unique(frame.loc[rows, USER])
        seg_support = support & frame[USER].isin(users).to_numpy()
        segments[name] = Segment(
            name,
            support=Interactions(frame.loc[seg_support]),
            query=Interactions(frame.loc[rows & ~support]),
        )
    return segments


def _users_without_query(frame: pd.DataFrame, new_rows: np.ndarray, support: np.ndarray) -> int:
    """New users all of whose rows were revealed (they have nothing left to predict)."""
    with_rows = set(pd.unique(frame.loc[new_rows, USER]).tolist())
    with_query = set(pd.unique(frame.loc[new_rows & ~support, USER]).tolist())
    return len(with_rows - with_query)


def _cold_start_split(
    dataset: Dataset,
    frame: pd.DataFrame,
    train: np.ndarray,
    test: np.ndarray,
    support: np.ndarray,
    protocol: str,
    params: dict[str, Any],
) -> ColdStartSplit:
    """The split of ``frame``'s rows: ``train`` as the training dataset (entity tables kept),
    ``test`` by segment with the new users' ``support``."""
    return ColdStartSplit(
        train=dataset.with_interactions(Interactions(frame.loc[train])),
        segments=_segments(frame, train, test, support),
        protocol=protocol,
        params=params,
    )


# --- protocols ------------------------------------------------------------------------------------


def holdout_split(
    dataset: Dataset,
    new_users: float = 0.2,
    new_items: float = 0.2,
    warm_test: float = 0.1,
    support_k: int = 0,
    seed: int = 0,
) -> ColdStartSplit:
    """Hold out random users and items as new, and a random share of the warm interactions.

    Parameters
    ----------
    dataset
        The data to split. Entity tables are kept whole on ``split.train``.
    new_users, new_items
        Fractions in ``[0, 1)`` of the users and items (those with interactions) held out as new;
        a positive fraction holds out at least one. Every interaction of a held-out user with a
        warm item goes to ``new_users``, of a warm user with a held-out item to ``new_items``, of
        a held-out user with a held-out item to ``new_users_items``. A fraction of 0 leaves its
        segments empty, and empty segments are left out of ``split.segments``.
    warm_test
        Fraction in ``[0, 1)`` of the warm x warm interactions drawn at random as the ``warm``
        segment (support empty: a warm user's history is the training set). A drawn row whose
        user or item would be left with no training interaction stays in training instead.
    support_k
        ``> 0``: each new user reveals ``k`` interactions as support (the first ``k`` by timestamp
        when there is a timestamp column, else ``k`` at random with the seed); the rest is the
        query. A user with ``<= k`` interactions has no query and is counted in
        ``params["new_users_without_query"]``.
    seed
        Seed of every random choice.

    Returns
    -------
    ColdStartSplit
        Protocol ``"holdout"``. Training, all queries and all supports together hold every
        interaction of ``dataset`` (a support row may be in two segments). A user or item that
        was not held out but has only interactions with held-out entities has no training row:
        its rows are segmented as new, and ``params`` counts these entities.

    Examples
    --------
    >>> rows = [(u, i, 1.0) for u in range(10) for i in range(10)]
    >>> split = holdout_split(Dataset(Interactions.from_records(rows)), seed=1)
    >>> sorted(split.segments), split.params["held_out_users"], len(split.train.interactions)
    (['new_items', 'new_users', 'new_users_items', 'warm'], 2, 58)
    """
    new_users = _fraction("new_users", new_users)
    new_items = _fraction("new_items", new_items)
    warm_test = _fraction("warm_test", warm_test)
    support_k = _count("support_k", support_k)
    frame = _interactions(dataset)
    rng = np.random.default_rng(seed)

    cold_users = _hold_out(dataset.interactions.users, new_users, rng, "users")
    cold_items = _hold_out(dataset.interactions.items, new_items, rng, "items")
    warm = ~frame[USER].isin(cold_users).to_numpy() & ~frame[ITEM].isin(cold_items).to_numpy()
    if not warm.any():
        raise ValueError(
            "no interaction is between a warm user and a warm item, so training would be empty; "
            "lower new_users / new_items"
        )
    warm_positions = np.flatnonzero(warm)
    drawn = np.zeros(len(frame), dtype=bool)
    n_test = round(warm_test * len(warm_positions))
    drawn[np.sort(rng.choice(warm_positions, size=n_test, replace=False))] = True
    train = warm & ~drawn
    # Drawn rows that would strip a user or item of every training row stay in training, so the
    # warm segment only holds users and items the model was trained on.
    orphan = drawn & (
        ~frame[USER].isin(pd.unique(frame.loc[train, USER])).to_numpy()
        | ~frame[ITEM].isin(pd.unique(frame.loc[train, ITEM])).to_numpy()
    )
    train |= orphan

    test = ~train
    new_user_rows = test & ~frame[USER].isin(pd.unique(frame.loc[train, USER])).to_numpy()
    order: Order = "time" if dataset.interactions.has_timestamp else "random"
    support = _revealed(frame, new_user_rows, support_k, order, rng)
    train_users = set(pd.unique(frame.loc[train, USER]).tolist())
    train_items = set(pd.unique(frame.loc[train, ITEM]).tolist())
    params: dict[str, Any] = {
        "new_users": new_users,
        "new_items": new_items,
        "warm_test": warm_test,
        "support_k": support_k,
        "seed": seed,
        "support_order": order,
        "held_out_users": len(cold_users),
        "held_out_items": len(cold_items),
        "users_left_without_training": len(
            set(dataset.interactions.users.tolist()) - train_users - cold_users
        ),
        "items_left_without_training": len(
            set(dataset.interactions.items.tolist()) - train_items - cold_items
        ),
        "new_users_without_query": _users_without_query(frame, new_user_rows, support),
    }
    return _cold_start_split(dataset, frame, train, test, support, "holdout", params)


def kshot_users_split(
    dataset: Dataset,
    k: int,
    test_users: float = 0.2,
    seed: int = 0,
    order: Order = "time",
    min_query: int = 1,
) -> ColdStartSplit:
    """New users who reveal ``k`` interactions: the k-shot (warm-up) protocol.

    A random ``test_users`` share of the users is held out; none of their interactions is in
    training. Each held-out user reveals ``k`` interactions as support (the first ``k`` in time
    order, or ``k`` at random) and the rest is the query. The training set does not depend on
    ``k``, so the splits for ``k = 1, 3, 5`` with one seed form a warm-up curve on the same users
    (minus the ones dropped at larger ``k``).

    Parameters
    ----------
    dataset
        The data to split.
    k
        Interactions revealed per new user, ``>= 0`` (``0``: pure cold start).
    test_users
        Fraction in ``(0, 1)`` of the users (those with interactions) held out.
    seed
        Seed of the user draw (and of the random order).
    order
        ``"time"`` (needs a timestamp column; ties keep data order) or ``"random"``.
    min_query
        A held-out user with fewer than ``k + min_query`` interactions is dropped from the test
        (and not trained on); ``params["dropped_users"]`` and ``params["dropped_interactions"]``
        report how many.

    Returns
    -------
    ColdStartSplit
        Protocol ``"kshot_users"``: ``new_users`` holds query rows whose item has a training
        interaction, ``new_users_items`` those whose item has none.
    """
    k = _count("k", k)
    test_users = _fraction("test_users", test_users, allow_zero=False)
    min_query = _count("min_query", min_query, minimum=1)
    order = _order(order, dataset.interactions.has_timestamp)
    frame = _interactions(dataset)
    rng = np.random.default_rng(seed)

    held_out = _hold_out(dataset.interactions.users, test_users, rng, "users")
    held = frame[USER].isin(held_out).to_numpy()
    counts = frame.loc[held, USER].value_counts()
    too_few = set(counts.index[counts < k + min_query].tolist())
    dropped = held & frame[USER].isin(too_few).to_numpy()
    test = held & ~dropped
    train = ~held
    support = _revealed(frame, test, k, order, rng)
    params: dict[str, Any] = {
        "k": k,
        "test_users": test_users,
        "seed": seed,
        "order": order,
        "min_query": min_query,
        "held_out_users": len(held_out),
        "dropped_users": len(too_few),
        "dropped_interactions": int(dropped.sum()),
    }
    return _cold_start_split(dataset, frame, train, test, support, "kshot_users", params)


def temporal_split(dataset: Dataset, cutoff: Any, support_k: int = 0) -> ColdStartSplit:
    """Train on the past, test on the future: ``timestamp < cutoff`` vs ``>= cutoff``.

    Test interactions are segmented by whether their user and item appear in the training
    interactions (``warm``, ``new_users``, ``new_items``, ``new_users_items``). Deterministic: there
    is no seed.

    Parameters
    ----------
    dataset
        Interactions with a ``timestamp`` column.
    cutoff
        A value comparable with the timestamps (a number for epoch seconds, anything
        ``pandas.Timestamp`` accepts for datetimes).
    support_k
        ``> 0``: each new user's first ``k`` test interactions in time order (ties keep data
        order) are revealed as support; the rest is the query.

    Returns
    -------
    ColdStartSplit
        Protocol ``"temporal"``. Training plus every segment's support and query hold every
        interaction.

    Raises
    ------
    SchemaError
        If the interactions have no timestamp column.
    ValueError
        If the cutoff leaves the training or the test part empty, or is not comparable.
    """
    support_k = _count("support_k", support_k)
    frame = _interactions(dataset)
    if not dataset.interactions.has_timestamp:
        raise SchemaError(
            "temporal_split needs a 'timestamp' column in the interactions; load the data with "
            "timestamps or use holdout_split"
        )
    stamps = frame[TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(stamps) and not isinstance(cutoff, pd.Timestamp):
        cutoff = pd.Timestamp(cutoff)
    try:
        train = (stamps < cutoff).to_numpy()
    except TypeError as exc:
        raise ValueError(
            f"cutoff {cutoff!r} cannot be compared with timestamps of dtype {stamps.dtype}: {exc}"
        ) from exc
    if not train.any() or train.all():
        part = "training" if not train.any() else "test"
        raise ValueError(
            f"cutoff {cutoff!r} leaves the {part} part empty; timestamps run from "
            f"{stamps.min()!r} to {stamps.max()!r}"
        )
    test = ~train
    new_user_rows = test & ~frame[USER].isin(pd.unique(frame.loc[train, USER])).to_numpy()
    support = _revealed(frame, new_user_rows, support_k, "time", np.random.default_rng(0))
    params: dict[str, Any] = {
        # JSON-friendly: reports and bench results store params as they are.
        "cutoff": cutoff.isoformat() if isinstance(cutoff, pd.Timestamp) else _plain(cutoff),
        "support_k": support_k,
        "new_users_without_query": _users_without_query(frame, new_user_rows, support),
    }
    return _cold_start_split(dataset, frame, train, test, support, "temporal", params)


# --- few-shot sampling of labelled rows -----------------------------------------------------------


def _plain(label: Any) -> Any:
    """A numpy scalar as the Python value, so messages read ``1`` rather than ``np.int64(1)``."""
    return label.item() if isinstance(label, np.generic) else label


def _labels(y: Any) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels, got shape {labels.shape}")
    missing = np.flatnonzero(pd.isna(labels))
    if len(missing):
        raise ValueError(f"y contains a missing label (first at position {int(missing[0])})")
    return labels


def kshot_sample(
    y: Any,
    k: int,
    seed: int = 0,
    balanced: bool = True,
    remainder: Literal["random", "error"] = "random",
) -> np.ndarray:
    """Indices of ``k`` labelled rows for few-shot training, drawn without replacement.

    Parameters
    ----------
    y
        Labels of the pool to draw from (for example the train part of a TabLLM 80/20 split).
    k
        Number of rows, ``>= 0``.
    seed
        Seed of ``numpy.random.default_rng``.
    balanced
        ``True`` (TabLLM): ``k // n_classes`` rows of every class. ``False`` (TALLRec's few-shot
        sampling): ``k`` rows uniformly at random, whatever their class.
    remainder
        When ``balanced`` and ``k`` is not a multiple of the number of classes: ``"random"`` gives
        the ``k % n_classes`` extra rows to that many distinct classes chosen at random;
        ``"error"`` raises.

    Returns
    -------
    numpy.ndarray
        ``k`` distinct indices into ``y``, sorted ascending.

    Raises
    ------
    ValueError
        If ``k`` exceeds the pool, a class has fewer rows than its share, or (balanced)
        ``0 < k < n_classes``.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> idx = kshot_sample(y, 4, seed=0)
    >>> len(idx), sorted(int(y[i]) for i in idx)
    (4, [0, 0, 1, 1])
    """
    labels = _labels(y)
    k = _count("k", k)
    rng = np.random.default_rng(seed)
    if not balanced:
        if k > len(labels):
            raise ValueError(f"k={k} is more than the {len(labels)} rows available")
        return np.sort(rng.choice(len(labels), size=k, replace=False)).astype(np.int64)
    if remainder not in ("random", "error"):
        raise ValueError(f"remainder must be 'random' or 'error', got {remainder!r}")
    classes = pd.unique(labels)
    n_classes = len(classes)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k < n_classes:
        raise ValueError(
            f"a class-balanced sample needs k >= the number of classes ({n_classes}), got k={k}; "
            "use balanced=False"
        )
    quota = np.full(n_classes, k // n_classes)
    extra = k % n_classes
    if extra and remainder == "error":
        raise ValueError(
            f"k={k} is not a multiple of the {n_classes} classes; pass remainder='random' to give "
            "the extra rows to random classes"
        )
    quota[rng.choice(n_classes, size=extra, replace=False)] += 1
    chosen = []
    for label, want in zip(classes, quota, strict=True):
        rows = np.flatnonzero(labels == label)
        if len(rows) < want:
            raise ValueError(
                f"class {_plain(label)!r} has {len(rows)} rows but the balanced sample needs "
                f"{want}; lower k or use balanced=False"
            )
        chosen.append(rng.choice(rows, size=want, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def train_test_split_stratified(
    n_or_y: int | Any, test_size: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test row indices, stratified by label when labels are given.

    Parameters
    ----------
    n_or_y
        A row count (plain random split) or the labels (each class split in proportion, as
        scikit-learn's ``train_test_split(..., stratify=y)``).
    test_size
        Fraction of rows in the test part, in ``(0, 1)``.
    seed
        Random seed.

    Returns
    -------
    (train_idx, test_idx)
        Disjoint sorted index arrays that together cover every row.

    Examples
    --------
    >>> tr, te = train_test_split_stratified([0] * 8 + [1] * 2, test_size=0.5, seed=0)
    >>> len(tr), len(te)
    (5, 5)
    """
    test_size = _fraction("test_size", test_size, allow_zero=False)
    if isinstance(n_or_y, int | np.integer) and not isinstance(n_or_y, bool):
        n = _count("n_or_y", n_or_y, minimum=2)
        stratify = None
    else:
        stratify = _labels(n_or_y)
        n = len(stratify)
        counts = pd.Series(stratify).value_counts()
        if (counts < 2).any():
            raise ValueError(
                f"class {_plain(counts.index[counts < 2][0])!r} has a single row; a stratified "
                "split needs at least 2 rows per class"
            )
    try:
        train, test = train_test_split(
            np.arange(n), test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise ValueError(f"cannot split {n} rows with test_size={test_size}: {exc}") from exc
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)
