from __future__ import annotations

import random

import pandas as pd
import pytest

from dayzero.core.schema import Interactions
from dayzero.datasets.melu import STATES, load_ml1m_melu
from dayzero.evaluate.protocols.melu import make_meta_tasks, melu_split, regenerate_melu_tasks
from tests.datasets.test_loader_melu import write_melu_fixture


def _inter(counts: dict[int, int]) -> Interactions:
    rows = [(u, u * 1000 + i, float(i % 5 + 1)) for u, n in counts.items() for i in range(n)]
    return Interactions.from_records(rows)


def test_make_meta_tasks_rule():
    inter = _inter({1: 12, 2: 13, 3: 100, 4: 101, 5: 40})
    support, query = make_meta_tasks(inter, random.Random(0))
    assert query.users.tolist() == [2, 3, 5]  # 12 and 101 ratings form no task
    sizes = query.frame.groupby("user").size()
    assert (sizes == 10).all()
    assert support.frame.groupby("user").size().to_dict() == {2: 3, 3: 90, 5: 30}
    both = pd.concat([support.frame, query.frame])
    assert not both.duplicated(["user", "item"]).any()  # support and query are disjoint
    again_s, again_q = make_meta_tasks(inter, random.Random(0))
    assert again_q.frame.equals(query.frame) and again_s.frame.equals(support.frame)


def test_make_meta_tasks_matches_python_shuffle():
    inter = _inter({7: 15})
    _, query = make_meta_tasks(inter, random.Random(5))
    idx = list(range(15))
    random.Random(5).shuffle(idx)
    assert query.frame["item"].tolist() == [7000 + i for i in idx[-10:]]


def test_bad_parameters():
    with pytest.raises(ValueError, match="query_size"):
        make_meta_tasks(_inter({1: 20}), random.Random(0), query_size=13)


def test_regenerate_equals_task_files(tmp_path):
    data = load_ml1m_melu(write_melu_fixture(tmp_path))
    regenerated = regenerate_melu_tasks(data)
    for state in STATES:
        support, query = data.task_files(state)
        assert regenerated[state][0].frame.equals(support.frame)
        assert regenerated[state][1].frame.equals(query.frame)


def test_melu_split_segments_and_validation(tmp_path):
    data = load_ml1m_melu(write_melu_fixture(tmp_path))
    split = melu_split(data)
    assert list(split.segments) == ["warm", "new_users", "new_items", "new_users_items"]
    assert len(split.train.interactions) == len(data.states["meta_training"])
    assert split.validation is None

    cold = melu_split(data, validation_users=0.5, validation_mode="new_users", seed=1)
    val_users = set(cold.validation.query.users)
    assert val_users and not val_users & set(cold.train.interactions.users)

    warm = melu_split(data, validation_users=0.5, validation_mode="warm", seed=1)
    train = warm.train.interactions.frame
    held = warm.validation.query.frame
    merged = train.merge(held[["user", "item"]], on=["user", "item"])
    assert merged.empty  # no query rating of a validation user is in training
    assert set(warm.validation.support.frame["item"]) <= set(train["item"])
    with pytest.raises(ValueError, match="validation_users"):
        melu_split(data, validation_users=1.0)


@pytest.mark.slow
def test_real_task_files_are_melu_rule_and_leak_free(real_data):
    data = load_ml1m_melu(real_data)
    regenerated = regenerate_melu_tasks(data)
    expected_tasks = {
        "meta_training": 2749,
        "warm_up": 1636,
        "user_cold_testing": 687,
        "item_cold_testing": 2855,
        "user_and_item_cold_testing": 731,
    }
    for state, n_tasks in expected_tasks.items():
        support, query = data.task_files(state)
        assert len(query.users) == n_tasks
        assert regenerated[state][0].frame.equals(support.frame)
        assert regenerated[state][1].frame.equals(query.frame)

    split = melu_split(data)
    train = split.train.interactions.frame
    train_users, train_items = set(train["user"]), set(train["item"])
    for name in ("new_users", "new_users_items"):
        seg = split.segments[name]
        assert not set(seg.query.users) & train_users
    for name in ("new_items", "new_users_items"):
        seg = split.segments[name]
        assert not set(seg.query.items) & train_items
    assert set(split.segments["warm"].query.users) <= train_users
    # MeLU's warm state has a few movies no meta_training rating covers (the reference item-mean
    # uses the global mean for them): count them rather than assume none.
    warm_items = set(split.segments["warm"].query.items)
    assert len(warm_items - train_items) <= 0.01 * len(warm_items)


def test_melu_split_item_validation_holds_items_out(tmp_path):
    data = load_ml1m_melu(write_melu_fixture(tmp_path, n_users=12, n_movies=20))
    split = melu_split(data, validation_items=0.7, seed=2)
    seg = split.validation_segments["validation_new_items"]
    held = set(seg.query.items) | set(seg.support.items)
    assert held and not held & set(split.train.interactions.items)
    again = melu_split(data, validation_items=0.7, seed=2)
    assert again.validation_segments["validation_new_items"].query.frame.equals(seg.query.frame)
