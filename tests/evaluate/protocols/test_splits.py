"""The generic cold-start protocols and few-shot sampling (dayzero.evaluate.protocols.splits)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dayzero.core.schema import Dataset, Entities, Interactions, SchemaError
from dayzero.core.split import NEW_BOTH, NEW_ITEMS, NEW_USERS, WARM, ColdStartSplit
from dayzero.evaluate.protocols.splits import (
    holdout_split,
    kshot_sample,
    kshot_users_split,
    temporal_split,
    train_test_split_stratified,
)

# --- helpers --------------------------------------------------------------------------------------


def grid(n_users: int, n_items: int, timestamps: bool = True) -> Dataset:
    """Every user rates every item once; timestamp = user * 100 + item."""
    rows = [
        (f"u{u}", f"i{i}", float((u + i) % 5 + 1), *((u * 100 + i,) if timestamps else ()))
        for u in range(n_users)
        for i in range(n_items)
    ]
    return Dataset(Interactions.from_records(rows), name="grid")


def random_dataset(n_users: int, n_items: int, density: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = [
        (u, f"i{i}", float(rng.integers(1, 6)), int(rng.integers(0, 1000)))
        for u in range(n_users)
        for i in range(n_items)
        if rng.random() < density
    ]
    return Dataset(Interactions.from_records(rows))


def row_set(inter: Interactions) -> set[tuple]:
    return set(map(tuple, inter.frame.itertuples(index=False, name=None)))


def row_counter(inter: Interactions) -> Counter:
    return Counter(map(tuple, inter.frame.itertuples(index=False, name=None)))


def users(inter: Interactions) -> set:
    return set(inter.users.tolist())


def items(inter: Interactions) -> set:
    return set(inter.items.tolist())


def assert_no_leakage(split: ColdStartSplit) -> None:
    train = split.train.interactions
    train_users, train_items = users(train), items(train)
    for name, seg in split.segments.items():
        assert not row_set(seg.support) & row_set(seg.query), f"{name}: support and query overlap"
        if name in (NEW_USERS, NEW_BOTH):
            assert not (users(seg.query) | users(seg.support)) & train_users, name
        else:
            assert users(seg.query) <= train_users, name
            assert len(seg.support) == 0, name
        if name in (NEW_ITEMS, NEW_BOTH):
            assert not items(seg.query) & train_items, name
        else:
            assert items(seg.query) <= train_items, name


def assert_nothing_lost(split: ColdStartSplit, dataset: Dataset) -> None:
    """Train + every query + the distinct support rows are exactly the original rows."""
    parts = [split.train.interactions, *(s.query for s in split.segments.values())]
    supports = [s.support for s in split.segments.values() if len(s.support)]
    support_rows = set().union(*(row_set(s) for s in supports)) if supports else set()
    combined = sum((row_counter(p) for p in parts), Counter()) + Counter(support_rows)
    assert combined == row_counter(dataset.interactions)


def assert_entities_kept(split: ColdStartSplit, dataset: Dataset) -> None:
    assert split.train.users is dataset.users and split.train.items is dataset.items
    assert split.train.user_map.ids == dataset.user_map.ids
    assert split.train.item_map.ids == dataset.item_map.ids


# --- holdout --------------------------------------------------------------------------------------


def test_holdout_known_grid_case():
    data = grid(4, 4)
    split = holdout_split(data, new_users=0.25, new_items=0.25, warm_test=0.0, seed=0)
    assert split.protocol == "holdout"
    assert set(split.segments) == {NEW_USERS, NEW_ITEMS, NEW_BOTH}  # warm_test=0: no warm rows
    assert len(split.train.interactions) == 9  # 3 warm users x 3 warm items
    assert [len(split.segments[s].query) for s in (NEW_USERS, NEW_ITEMS, NEW_BOTH)] == [3, 3, 1]
    (cold_user,) = users(split.segments[NEW_USERS].query)
    (cold_item,) = items(split.segments[NEW_ITEMS].query)
    assert split.segments[NEW_BOTH].query.frame[["user", "item"]].values.tolist() == [
        [cold_user, cold_item]
    ]
    assert split.params["held_out_users"] == 1 and split.params["held_out_items"] == 1
    assert_no_leakage(split)
    assert_nothing_lost(split, data)


def test_holdout_warm_test_fraction_and_zero_fractions():
    data = grid(10, 10)
    split = holdout_split(data, new_users=0.0, new_items=0.0, warm_test=0.1, seed=3)
    assert set(split.segments) == {WARM}
    assert len(split.segments[WARM].query) == 10
    assert len(split.train.interactions) == 90
    only_users = holdout_split(data, new_users=0.3, new_items=0.0, warm_test=0.0, seed=3)
    assert set(only_users.segments) == {NEW_USERS}
    assert only_users.segments[NEW_USERS].n_users == 3


def test_holdout_keeps_entity_tables_and_id_maps():
    data = grid(5, 5)
    data.users = Entities(pd.DataFrame({"age": range(5)}, index=[f"u{u}" for u in range(5)]))
    data.items = Entities(pd.DataFrame({"title": list("abcde")}, index=[f"i{i}" for i in range(5)]))
    split = holdout_split(data, seed=1)
    assert_entities_kept(split, data)
    cold_user = next(iter(users(split.segments[NEW_USERS].query)))
    assert split.train.users.record(cold_user) == data.users.record(cold_user)


def test_holdout_warm_rows_never_strip_an_entity_of_training():
    # "solo" has one interaction: with warm_test=0.9 it would almost surely be drawn, but then solo
    # would have no training row, so it stays in training.
    rows = [(f"u{u}", f"i{i}", 1.0) for u in range(6) for i in range(6)] + [("solo", "i0", 2.0)]
    data = Dataset(Interactions.from_records(rows))
    for seed in range(10):
        split = holdout_split(data, new_users=0.0, new_items=0.0, warm_test=0.9, seed=seed)
        assert "solo" in users(split.train.interactions)
        assert_no_leakage(split)
        assert_nothing_lost(split, data)


def test_holdout_entities_left_without_training_are_segmented_as_new():
    # "lonely" only rated "rare"; when "rare" is held out, lonely has no training row although it
    # was not held out, so its row must count as new user + new item.
    rows = [(f"u{u}", f"i{i}", 1.0) for u in range(8) for i in range(8)] + [("lonely", "rare", 3.0)]
    data = Dataset(Interactions.from_records(rows))
    seen_case = False
    for seed in range(30):
        split = holdout_split(data, new_users=0.2, new_items=0.3, seed=seed)
        assert_no_leakage(split)
        if "lonely" not in users(split.train.interactions):
            seen_case = seen_case or split.params["users_left_without_training"] == 1
    assert seen_case


def test_holdout_support_k_reveals_earliest_interactions():
    data = grid(5, 6)  # timestamps grow with the item index
    split = holdout_split(data, new_users=0.2, new_items=0.0, warm_test=0.0, support_k=2, seed=0)
    seg = split.segments[NEW_USERS]
    assert seg.support.frame["item"].tolist() == ["i0", "i1"]
    assert sorted(seg.query.frame["item"]) == ["i2", "i3", "i4", "i5"]
    assert split.params["support_order"] == "time"
    assert_nothing_lost(split, data)


def test_holdout_support_k_without_timestamps_is_random_but_seeded():
    data = grid(5, 8, timestamps=False)
    a = holdout_split(data, new_users=0.2, new_items=0.0, support_k=3, seed=5)
    b = holdout_split(data, new_users=0.2, new_items=0.0, support_k=3, seed=5)
    assert a.params["support_order"] == "random"
    assert a.segments[NEW_USERS].support.frame.equals(b.segments[NEW_USERS].support.frame)
    assert len(a.segments[NEW_USERS].support) == 3


def test_holdout_support_k_counts_users_without_query():
    data = grid(5, 3)
    split = holdout_split(data, new_users=0.4, new_items=0.0, warm_test=0.0, support_k=3, seed=0)
    assert split.params["new_users_without_query"] == 2
    assert len(split.segments[NEW_USERS].query) == 0
    assert_nothing_lost(split, data)


def test_holdout_is_deterministic_per_seed():
    data = random_dataset(30, 20, 0.4, seed=0)
    a, b, c = (holdout_split(data, seed=s) for s in (7, 7, 8))
    assert a.train.interactions.frame.equals(b.train.interactions.frame)
    for name in a.segments:
        assert a.segments[name].query.frame.equals(b.segments[name].query.frame)
    assert not a.train.interactions.frame.equals(c.train.interactions.frame)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"new_users": 1.0}, r"new_users must be a fraction in \[0, 1\)"),
        ({"new_items": -0.1}, r"new_items must be a fraction"),
        ({"warm_test": "0.1"}, r"warm_test must be a fraction"),
        ({"support_k": -1}, r"support_k must be an integer >= 0"),
        ({"new_users": 0.9}, r"leaves none for training"),
    ],
)
def test_holdout_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        holdout_split(grid(2, 4), **kwargs)


def test_holdout_rejects_empty_data():
    with pytest.raises(ValueError, match="no interactions"):
        holdout_split(Dataset(Interactions.empty()))


# --- k-shot new users -----------------------------------------------------------------------------


def test_kshot_users_known_case():
    data = grid(5, 6)
    split = kshot_users_split(data, k=2, test_users=0.4, seed=0)
    assert split.protocol == "kshot_users"
    assert set(split.segments) == {NEW_USERS}
    seg = split.segments[NEW_USERS]
    assert seg.n_users == 2
    for _, support, query in seg.tasks():
        assert support.frame["item"].tolist() == ["i0", "i1"]
        assert sorted(query.frame["item"]) == ["i2", "i3", "i4", "i5"]
    assert len(split.train.interactions) == 18
    assert_no_leakage(split)
    assert_nothing_lost(split, data)


def test_kshot_users_drops_users_with_too_few_interactions_and_reports_them():
    rows = [(f"u{u}", f"i{i}", 1.0, i) for u in range(10) for i in range(5)]
    rows += [(f"short{u}", "i0", 1.0, 0) for u in range(10)]
    data = Dataset(Interactions.from_records(rows))
    split = kshot_users_split(data, k=3, test_users=0.5, seed=2, min_query=2)
    held_short = split.params["dropped_users"]
    assert held_short >= 1
    assert split.params["dropped_interactions"] == held_short
    query_users = users(split.segments[NEW_USERS].query)
    train_users = users(split.train.interactions)
    assert not any(u.startswith("short") for u in query_users)
    # a dropped user is in neither training nor test
    short_seen = {u for u in train_users if u.startswith("short")}
    assert len(short_seen) == 10 - held_short
    for _, support, query in split.segments[NEW_USERS].tasks():
        assert len(support) == 3 and len(query) >= 2


def test_kshot_users_training_set_does_not_depend_on_k():
    data = random_dataset(40, 15, 0.5, seed=1)
    trains = [kshot_users_split(data, k=k, seed=4).train.interactions.frame for k in (0, 1, 3, 5)]
    assert all(t.equals(trains[0]) for t in trains)
    zero = kshot_users_split(data, k=0, seed=4)
    assert all(len(s.support) == 0 for s in zero.segments.values())


def test_kshot_users_cold_items_get_their_own_segment():
    rows = [(f"u{u}", f"i{i}", 1.0, i) for u in range(5) for i in range(4)]
    rows += [(f"u{u}", f"only_u{u}", 2.0, 9) for u in range(5)]
    data = Dataset(Interactions.from_records(rows))
    split = kshot_users_split(data, k=1, test_users=0.4, seed=0)
    assert set(split.segments) == {NEW_USERS, NEW_BOTH}
    both = split.segments[NEW_BOTH]
    assert {i.startswith("only_") for i in items(both.query)} == {True}
    # the same revealed interaction is the support in both segments
    assert row_set(both.support) <= row_set(split.segments[NEW_USERS].support)
    assert_no_leakage(split)


def test_kshot_users_random_order_and_determinism():
    data = grid(10, 8, timestamps=False)
    a = kshot_users_split(data, k=3, order="random", seed=1)
    b = kshot_users_split(data, k=3, order="random", seed=1)
    c = kshot_users_split(data, k=3, order="random", seed=2)
    assert a.segments[NEW_USERS].support.frame.equals(b.segments[NEW_USERS].support.frame)
    assert not a.segments[NEW_USERS].support.frame.equals(c.segments[NEW_USERS].support.frame)
    with pytest.raises(SchemaError, match="order='time' needs a 'timestamp' column"):
        kshot_users_split(data, k=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": -1}, r"k must be an integer >= 0"),
        ({"k": 1, "test_users": 0.0}, r"test_users must be a fraction in \(0, 1\)"),
        ({"k": 1, "min_query": 0}, r"min_query must be an integer >= 1"),
        ({"k": 1, "order": "sorted"}, r"order must be 'time' or 'random'"),
    ],
)
def test_kshot_users_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kshot_users_split(grid(5, 5), **kwargs)


# --- temporal -------------------------------------------------------------------------------------


def test_temporal_known_case():
    rows = [
        ("a", "x", 5.0, 1),
        ("b", "y", 4.0, 2),
        ("a", "y", 3.0, 3),  # test from here (cutoff 3)
        ("b", "x", 2.0, 4),  # warm
        ("c", "x", 1.0, 5),  # new user
        ("a", "z", 2.0, 6),  # new item
        ("c", "z", 4.0, 7),  # new user and item
    ]
    data = Dataset(Interactions.from_records(rows))
    split = temporal_split(data, cutoff=3)
    assert len(split.train.interactions) == 2
    got = {n: s.query.frame[["user", "item"]].values.tolist() for n, s in split.segments.items()}
    assert got == {
        WARM: [["a", "y"], ["b", "x"]],
        NEW_USERS: [["c", "x"]],
        NEW_ITEMS: [["a", "z"]],
        NEW_BOTH: [["c", "z"]],
    }
    assert_nothing_lost(split, data)
    # support_k=1: c's first test interaction (c, x) is revealed, in both new-user segments
    revealed = temporal_split(data, cutoff=3, support_k=1)
    assert NEW_USERS not in revealed.segments or len(revealed.segments[NEW_USERS].query) == 0
    assert revealed.segments[NEW_BOTH].support.frame[["user", "item"]].values.tolist() == [
        ["c", "x"]
    ]
    assert revealed.segments[NEW_BOTH].query.frame[["user", "item"]].values.tolist() == [["c", "z"]]
    assert_nothing_lost(revealed, data)
    assert_no_leakage(revealed)


def test_temporal_datetime_cutoff_and_errors():
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "b"],
            "item": ["x", "y", "x"],
            "value": [1.0, 2.0, 3.0],
            "timestamp": pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]),
        }
    )
    data = Dataset(Interactions(frame))
    split = temporal_split(data, "2020-06-01")
    assert len(split.train.interactions) == 1
    with pytest.raises(ValueError, match="leaves the training part empty"):
        temporal_split(data, "2019-01-01")
    with pytest.raises(ValueError, match="leaves the test part empty"):
        temporal_split(data, "2030-01-01")
    with pytest.raises(SchemaError, match="needs a 'timestamp' column"):
        temporal_split(grid(2, 2, timestamps=False), 1)
    with pytest.raises(ValueError, match="support_k must be an integer >= 0"):
        temporal_split(data, "2020-06-01", support_k=-2)


# --- property-based invariants --------------------------------------------------------------------

pairs = st.sets(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=50)


def dataset_from(pair_set: set, stamps: list[int]) -> Dataset:
    rows = [
        (f"u{u}", f"i{i}", float((u * i) % 5), stamps[n % len(stamps)])
        for n, (u, i) in enumerate(sorted(pair_set))
    ]
    return Dataset(Interactions.from_records(rows))


stamp_lists = st.lists(st.integers(0, 20), min_size=1, max_size=10)
fractions = st.sampled_from([0.0, 0.1, 0.25, 0.5])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs, stamp_lists, fractions, fractions, fractions, st.integers(0, 3), st.integers(0, 9))
def test_holdout_properties(pair_set, stamps, nu, ni, wt, k, seed):
    data = dataset_from(pair_set, stamps)
    try:
        split = holdout_split(data, nu, ni, wt, support_k=k, seed=seed)
    except ValueError as exc:  # too few users/items for the fractions asked
        assert "training" in str(exc)
        return
    assert_no_leakage(split)
    assert_nothing_lost(split, data)
    assert_entities_kept(split, data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs, stamp_lists, st.integers(0, 20), st.integers(0, 3))
def test_temporal_properties(pair_set, stamps, cutoff, k):
    data = dataset_from(pair_set, stamps)
    try:
        split = temporal_split(data, cutoff, support_k=k)
    except ValueError as exc:
        assert "empty" in str(exc)
        return
    assert_no_leakage(split)
    assert_nothing_lost(split, data)
    assert (split.train.interactions.frame["timestamp"] < cutoff).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs, stamp_lists, st.integers(0, 4), st.sampled_from([0.2, 0.5]), st.integers(0, 9))
def test_kshot_users_properties(pair_set, stamps, k, frac, seed):
    data = dataset_from(pair_set, stamps)
    try:
        split = kshot_users_split(data, k=k, test_users=frac, seed=seed)
    except ValueError as exc:
        assert "training" in str(exc)
        return
    assert_no_leakage(split)
    for seg in split.segments.values():
        for _, support, query in seg.tasks():
            assert len(support) == k and len(query) >= 1


# --- few-shot row sampling ------------------------------------------------------------------------


def test_kshot_sample_balanced_known_counts():
    y = np.array([0] * 5 + [1] * 3)
    idx = kshot_sample(y, 4, seed=0)
    assert len(set(idx.tolist())) == 4 and list(idx) == sorted(idx)
    assert Counter(y[idx].tolist()) == {0: 2, 1: 2}
    # 3 classes, k=4: two classes get one row, a random one gets the extra row
    y3 = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 4)
    counts = sorted(Counter(y3[kshot_sample(y3, 4, seed=1)].tolist()).values())
    assert counts == [1, 1, 2]
    extra_classes = {
        max(Counter(y3[kshot_sample(y3, 4, seed=s)].tolist()).items(), key=lambda kv: kv[1])[0]
        for s in range(20)
    }
    assert len(extra_classes) > 1
    assert len(kshot_sample(y, 0)) == 0


def test_kshot_sample_plain_random_and_determinism():
    y = np.array([0] * 9 + [1])
    idx = kshot_sample(y, 5, seed=3, balanced=False)
    assert len(set(idx.tolist())) == 5
    assert np.array_equal(idx, kshot_sample(y, 5, seed=3, balanced=False))
    assert not np.array_equal(idx, kshot_sample(y, 5, seed=4, balanced=False))


@pytest.mark.parametrize(
    ("y", "k", "kwargs", "message"),
    [
        ([0, 0, 0, 0, 1], 4, {}, r"class 1 has 1 rows but the balanced sample needs 2"),
        ([0, 1, 2], 2, {}, r"needs k >= the number of classes \(3\)"),
        ([0, 0, 1, 1, 2, 2], 4, {"remainder": "error"}, r"not a multiple of the 3 classes"),
        ([0, 1], 3, {"balanced": False}, r"k=3 is more than the 2 rows"),
        ([0, 1], -1, {}, r"k must be an integer >= 0"),
        ([0, None], 2, {}, r"y contains a missing label"),
    ],
)
def test_kshot_sample_errors(y, k, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kshot_sample(np.array(y, dtype=object), k, **kwargs)


def test_train_test_split_stratified():
    y = np.array([0] * 80 + [1] * 20)
    train, test = train_test_split_stratified(y, test_size=0.2, seed=0)
    assert len(test) == 20 and Counter(y[test].tolist()) == {0: 16, 1: 4}
    assert set(train) | set(test) == set(range(100)) and not set(train) & set(test)
    tr_a, _ = train_test_split_stratified(100, test_size=0.3, seed=1)
    tr_b, _ = train_test_split_stratified(100, test_size=0.3, seed=1)
    tr_c, _ = train_test_split_stratified(100, test_size=0.3, seed=2)
    assert len(tr_a) == 70 and np.array_equal(tr_a, tr_b) and not np.array_equal(tr_a, tr_c)
    with pytest.raises(ValueError, match=r"test_size must be a fraction in \(0, 1\)"):
        train_test_split_stratified(y, test_size=1.0)
    with pytest.raises(ValueError, match="class 1 has a single row"):
        train_test_split_stratified([0, 0, 0, 1])
