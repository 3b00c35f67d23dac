"""A synthetic catalogue where the right answer is known, and fast settings for every baseline.

Two user groups (A, B) and two item groups (action, romance): group A rates action 4-5 and
romance 1-2, group B the reverse. Item text and genre reveal the group. ``a_cold``/``r_cold`` have
fields but no interactions (cold items); users carry a ``segment`` field that reveals their group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.recommend.contract import REGISTRY, Recommender, make_recommender

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
ACTION_TEXT = "explosions car chase fight gun hero"
ROMANCE_TEXT = "love kiss wedding romance heart couple"


@dataclass
class Catalogue:
    dataset: Dataset
    users_a: list[str]
    users_b: list[str]
    action: list[str]
    romance: list[str]
    cold_action: str = "a_cold"
    cold_romance: str = "r_cold"

    def items_entities(self, ids: list[str]) -> Entities:
        return self.dataset.items.subset(ids)


def _item_frame(ids: list[str], action: bool) -> pd.DataFrame:
    text = ACTION_TEXT if action else ROMANCE_TEXT
    genre = ["Action", "Thriller"] if action else ["Romance", "Drama"]
    return pd.DataFrame(
        {
            "id": ids,
            "title": [f"{text} {i}" for i in ids],
            "genre": [genre] * len(ids),
            "year": ["1999"] * len(ids),
        }
    )


def make_catalogue(seed: int = 0) -> Catalogue:
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
    items = pd.concat(
        [
            _item_frame([*action, "a_cold"], True),
            _item_frame([*romance, "r_cold"], False),
        ]
    )
    item_entities = Entities.from_frame(
        items, "id", {"title": "text", "genre": "multi", "year": "categorical"}
    )
    users = pd.DataFrame(
        {"id": users_a + users_b, "segment": ["A"] * len(users_a) + ["B"] * len(users_b)}
    )
    user_entities = Entities.from_frame(users, "id", {"segment": "categorical"}, kind="user")
    dataset = Dataset(Interactions.from_records(rows), users=user_entities, items=item_entities)
    return Catalogue(dataset, users_a, users_b, action, romance)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
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
