"""The MeLU cold-start protocol (MeLU, KDD 2019; also MetaHIN, MAMO, TaNP).

One *task* is one user: keep users with 13 to 100 ratings, shuffle the user's ratings, the last 10
are the *query* and the rest the *support*. The model may use the support ratings (and any side
information) and predicts the query ratings.

:func:`melu_split` reads the fixed task files shipped with ``ml-1m-melu`` (the files every number in
ANCHORS.md §1 uses). :func:`make_meta_tasks` applies the same rule to any interactions, so the
files can be regenerated (``random.seed(13)`` once, states in MeLU's order, reproduces them
exactly) and the protocol can be used on other data.
"""

from __future__ import annotations

import random
from typing import Literal

import numpy as np

from dayzero.core.schema import Interactions
from dayzero.core.split import NEW_ITEMS, NEW_USERS, WARM, ColdStartSplit, Segment
from dayzero.datasets.melu import MeluData

MELU_SEED = 13


def make_meta_tasks(
    interactions: Interactions,
    rng: random.Random,
    min_ratings: int = 13,
    max_ratings: int = 100,
    query_size: int = 10,
) -> tuple[Interactions, Interactions]:
    """Split each user's interactions into support and query by MeLU's rule.

    Users are visited in order of first appearance, each user's rows in their given order. A user
    with ``min_ratings <= n <= max_ratings`` rows gets ``idx = list(range(n)); rng.shuffle(idx)``;
    the last ``query_size`` shuffled rows are the query, the others the support. Other users are
    left out (they form no task).

    Returns
    -------
    (support, query)
        Interactions, users in visiting order, rows in shuffled order.
    """
    if not 0 < query_size < min_ratings <= max_ratings:
        raise ValueError(
            "need 0 < query_size < min_ratings <= max_ratings, got "
            f"query_size={query_size}, min_ratings={min_ratings}, max_ratings={max_ratings}"
        )
    frame = interactions.frame
    support_rows: list[np.ndarray] = []
    query_rows: list[np.ndarray] = []
    positions = frame.groupby("user", sort=False).indices
    for user in interactions.users:
        rows = positions[user]
        if not min_ratings <= len(rows) <= max_ratings:
            continue
        order = list(range(len(rows)))
        rng.shuffle(order)
        shuffled = rows[order]
        support_rows.append(shuffled[:-query_size])
        query_rows.append(shuffled[-query_size:])
    empty = np.zeros(0, dtype=np.int64)
    support = np.concatenate(support_rows) if support_rows else empty
    query = np.concatenate(query_rows) if query_rows else empty
    return Interactions(frame.iloc[support]), Interactions(frame.iloc[query])


def regenerate_melu_tasks(
    data: MeluData, seed: int = MELU_SEED
) -> dict[str, tuple[Interactions, Interactions]]:
    """Rebuild every state's ``(support, query)`` from the raw state files with one seeded RNG."""
    rng = random.Random(seed)
    states = (data.train_state, *data.test_states)
    return {state: make_meta_tasks(data.states[state], rng) for state in states}


def melu_split(
    data: MeluData,
    tasks: Literal["files", "regenerate"] = "files",
    validation_users: float = 0.0,
    validation_mode: Literal["warm", "new_users"] = "new_users",
    seed: int = 0,
    validation_items: float = 0.0,
) -> ColdStartSplit:
    """The MeLU benchmark as a :class:`ColdStartSplit`.

    Training interactions are *all* ratings of the training state (``meta_training.json``, 585,366
    on ML-1M), as the reference item-mean numbers use. The test segments (warm, new users, new
    items, new users + items: those of ``data.test_states``) are the test states' tasks.

    Parameters
    ----------
    data
        From :func:`~dayzero.datasets.melu.load_ml1m_melu` or, for any dataset in MeLU's
        format, :func:`~dayzero.datasets.melu.load_melu`.
    tasks
        ``"files"`` reads ``tasks/<state>/``; ``"regenerate"`` applies the rule with seed 13
        (identical on ML-1M, tested; the only choice for a dataset without task files).
    validation_users
        Fraction of the ``meta_training`` task users held out for model selection, never test.
        Their query ratings leave the training set (``"warm"``: support stays in training), or
        all their ratings do (``"new_users"``: the validation users are cold, like the user-cold
        test state).
    seed
        Chooses the validation users and items.
    validation_items
        Fraction of the ``meta_training`` items held out as new for model selection: all
        their ratings leave the training set, and the users' ratings on them become MeLU tasks
        by the same rule (13-100 ratings, 10 query), in
        ``split.validation_segments["validation_new_items"]``.
    """
    if not 0.0 <= validation_users < 1.0:
        raise ValueError(f"validation_users must be in [0, 1), got {validation_users}")
    if validation_mode not in ("warm", "new_users"):
        raise ValueError(f"validation_mode must be 'warm' or 'new_users', not {validation_mode!r}")
    if tasks == "files":
        task_sets = {
            state: data.task_files(state) for state in (data.train_state, *data.test_states)
        }
    elif tasks == "regenerate":
        task_sets = regenerate_melu_tasks(data)
    else:
        raise ValueError(f"tasks must be 'files' or 'regenerate', not {tasks!r}")

    train = data.states[data.train_state]
    validation = None
    if validation_users > 0:
        support, query = task_sets[data.train_state]
        candidates = query.users
        rng = np.random.default_rng(seed)
        n_val = max(1, round(validation_users * len(candidates)))
        chosen = set(rng.choice(candidates, size=n_val, replace=False).tolist())
        frame = train.frame
        if validation_mode == "new_users":
            train = train.select(~frame["user"].isin(chosen).to_numpy())
        else:
            held = query.frame[query.frame["user"].isin(chosen)]
            key = ["user", "item"]
            marked = frame.merge(held[key].assign(_held=True), on=key, how="left")["_held"]
            train = train.select(marked.isna().to_numpy())
        validation = Segment(
            f"validation_{WARM if validation_mode == 'warm' else NEW_USERS}",
            support.for_users(chosen),
            query.for_users(chosen),
        )

    extra_validation: dict[str, Segment] = {}
    if validation_items > 0:
        if not 0.0 < validation_items < 1.0:
            raise ValueError(f"validation_items must be in [0, 1), got {validation_items}")
        items = np.sort(train.items)
        rng = np.random.default_rng(seed + 1)
        size = max(1, round(validation_items * len(items)))
        held_items = set(rng.choice(items, size=size, replace=False).tolist())
        is_held = train.frame["item"].isin(held_items).to_numpy()
        held = train.select(is_held)
        train = train.select(~is_held)
        support, query = make_meta_tasks(held, random.Random(seed))
        name = f"validation_{NEW_ITEMS}"
        extra_validation[name] = Segment(name, support, query)

    segments = {name: Segment(name, *task_sets[state]) for state, name in data.test_states.items()}
    return ColdStartSplit(
        train=data.dataset(data.train_state).with_interactions(train),
        segments=segments,
        protocol="melu",
        params={
            "tasks": tasks,
            "validation_users": validation_users,
            "validation_mode": validation_mode,
            "seed": seed,
            "validation_items": validation_items,
        },
        validation=validation,
        validation_segments=extra_validation,
    )
