"""A synthetic catalogue where the right answer is known, and fast settings for every baseline.

Two user groups (A, B) and two item groups (action, romance): group A rates action 4-5 and
romance 1-2, group B the reverse. Item text and genre reveal the group. ``a_cold``/``r_cold`` have
fields but no interactions (cold items); users carry a ``segment`` field that reveals their group.
"""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Interactions
from dayzero.recommend.contract import REGISTRY, Recommender, make_recommender, seen_by_user
from dayzero.testing import ContractCatalogue, catalogue_entities

BASELINE_MODULES = {
    "means",
    "popularity",
    "item_knn",
    "matrix_factorization",
    "content_knn",
    "feature_hybrid",
}
BASELINES = sorted(
    name for name, cls in REGISTRY.items() if cls.__module__.rsplit(".", 1)[-1] in BASELINE_MODULES
)
FAST_PARAMS: dict[str, dict] = {
    "mf": {"factors": 4, "iterations": 8, "reg": 1.0},
    "item-knn": {"k_neighbors": 10},
    "content-knn": {"k_neighbors": 10},
    "feature-hybrid": {"factors": 8, "epochs": 60, "lr": 0.05, "batch_size": 64},
}


def make_catalogue(seed: int = 0) -> ContractCatalogue:
    rng = np.random.default_rng(seed)
    users_a = [f"ua{i}" for i in range(10)]
    users_b = [f"ub{i}" for i in range(10)]
    action = [f"a{i}" for i in range(8)]
    romance = [f"r{i}" for i in range(8)]
    rows = []
    for user in users_a + users_b:
        likes_action = user in users_a
        for item in action + romance:
            if rng.random() < 0.7:
                liked = (item in action) == likes_action
                value = float(rng.integers(4, 6) if liked else rng.integers(1, 3))
                rows.append((user, item, value))
    users, items = catalogue_entities(users_a, users_b, action, romance)
    inter = Interactions.from_records(rows)
    dataset = Dataset(inter, users=users, items=items)
    return ContractCatalogue(
        dataset, users_a, users_b, action, romance, "a_cold", "r_cold", seen_by_user(inter)
    )


@pytest.fixture(scope="session")
def catalogue() -> ContractCatalogue:
    return make_catalogue()


def build(name: str, **override) -> Recommender:
    return make_recommender(name, **{**FAST_PARAMS.get(name, {}), **override})


@pytest.fixture(scope="session")
def fitted(catalogue):
    """name -> a model fitted on the catalogue (fit once per session; do not mutate)."""
    cache: dict[str, Recommender] = {}

    def get(name: str) -> Recommender:
        if name not in cache:
            cache[name] = build(name).fit(catalogue.dataset)
        return cache[name]

    return get
