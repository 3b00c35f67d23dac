from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Interactions
from dayzero.distributed.train import fit_on_ray
from dayzero.recommend.two_tower import TwoTowerRecommender
from dayzero.testing import catalogue_entities

FAST = {
    "towers__dim": 8,
    "towers__hidden": 32,
    "training__epochs": 6,
    "training__batch_users": 4,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


@pytest.fixture(scope="module")
def groups() -> tuple[Dataset, list[str], list[str]]:
    """Group A rates action 4-5 and romance 1-2, group B the reverse."""
    rng = np.random.default_rng(0)
    users_a, users_b = [f"ua{i}" for i in range(8)], [f"ub{i}" for i in range(8)]
    action, romance = [f"a{i}" for i in range(6)], [f"r{i}" for i in range(6)]
    rows = [
        (user, item, float(rng.integers(4, 6) if (item in action) == (user in users_a) else 1))
        for user in users_a + users_b
        for item in action + romance
        if rng.random() < 0.7
    ]
    users, items = catalogue_entities(users_a, users_b, action, romance)
    return Dataset(Interactions.from_records(rows), users=users, items=items), action, romance


def test_one_worker_trains_as_the_plain_fit_and_two_learn_the_groups(
    ray_local, groups, tiny_bert_dir
):
    dataset, action, romance = groups
    model = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **FAST)
    plain = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **FAST).fit(dataset)
    one = fit_on_ray(model, dataset, num_workers=1, cpus_per_worker=1)
    losses = [e["train_loss"] for e in plain.history_]
    ray_losses = [e["train_loss"] for e in one.distributed_["metrics"]["history"]]
    assert ray_losses == pytest.approx(losses, rel=1e-4)  # the same loss curve
    users, items = ["ua0", "ub0"] * 12, [i for i in action + romance for _ in range(2)]
    np.testing.assert_allclose(one.predict(users, items), plain.predict(users, items), atol=1e-4)
    assert not hasattr(model, "user_map_")  # the caller's estimator stays unfitted

    two = fit_on_ray(model, dataset, num_workers=2, cpus_per_worker=1)
    assert two.distributed_["workers"] == 2
    users_a = [u for u in dataset.interactions.users if str(u).startswith("ua")]
    for m in (plain, two):  # both learn who likes what: 16 users x action vs romance
        right = 0
        for user in dataset.interactions.users:
            gap = m.predict([user] * 6, action).mean() - m.predict([user] * 6, romance).mean()
            right += (gap > 0) == (user in users_a)
        assert right >= 14, (type(m), right)


def test_bad_requests_name_the_problem(ray_local, groups):
    with pytest.raises(ValueError, match="exceed the cluster's 2 CPUs"):
        fit_on_ray(TwoTowerRecommender(), groups[0], num_workers=3)
    with pytest.raises(ValueError, match="num_workers must be >= 1"):
        fit_on_ray(TwoTowerRecommender(), groups[0], num_workers=0)
