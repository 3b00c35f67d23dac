"""Named evaluation set-ups: which protocol and task each dataset is evaluated with by default.

``dayzero evaluate --dataset X --protocol P`` and the benchmark scripts use these, so the CLI and
``bench/`` always measure the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dayzero.core.split import ColdStartSplit


@dataclass(frozen=True)
class Experiment:
    """A dataset + protocol + task, and the metric cut-off ``k``.

    ``task="history-ranking"`` set-ups (Steam) build a
    :class:`~dayzero.evaluate.protocols.steam.NewGamesSplit` or ``NewPlayersSplit`` instead of a
    :class:`ColdStartSplit` and are evaluated by :mod:`dayzero.evaluate.ranking`;
    ``model_params`` gives models the settings the data needs (implicit feedback).
    """

    dataset: str
    protocol: str
    task: str
    k: int
    build: Callable[..., Any]
    params: dict[str, Any] = field(default_factory=dict)
    relevance_threshold: float | None = None
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def split(self, path: str | os.PathLike | None = None, seed: int = 0) -> Any:
        return self.build(path=path, seed=seed, **self.params)


def _melu(path=None, seed: int = 0, **params: Any) -> ColdStartSplit:
    from dayzero.datasets.melu import load_ml1m_melu
    from dayzero.evaluate.protocols.melu import melu_split

    return melu_split(load_ml1m_melu(path), seed=seed, **params)


def _holdout(dataset_name: str) -> Callable[..., ColdStartSplit]:
    def build(path=None, seed: int = 0, **params: Any) -> ColdStartSplit:
        from dayzero.datasets import load
        from dayzero.evaluate.protocols.splits import holdout_split

        return holdout_split(load(dataset_name, path), seed=seed, **params)

    return build


def _temporal(dataset_name: str) -> Callable[..., ColdStartSplit]:
    def build(path=None, seed: int = 0, quantile: float = 0.8, **params: Any) -> ColdStartSplit:
        from dayzero.datasets import load
        from dayzero.evaluate.protocols.splits import temporal_split

        dataset = load(dataset_name, path)
        cutoff = dataset.interactions.frame["timestamp"].quantile(quantile)
        return temporal_split(dataset, cutoff, **params)

    return build


def _steam(protocol: str) -> Callable[..., Any]:
    def build(path=None, seed: int = 0, **params: Any) -> Any:
        from dayzero.datasets.steam import load_steam_reviews
        from dayzero.evaluate.protocols.steam import (
            new_games_split,
            new_players_split,
            steam_implicit,
        )

        data = steam_implicit(load_steam_reviews(path)).dataset
        if protocol == "new-games":
            return new_games_split(data, **params)
        return new_players_split(data, seed=seed, **params)

    return build


# Positive verdicts only (implicit feedback): item-knn must not centre, and ranks by similarity.
STEAM_MODELS = {
    "item-knn": {"k_neighbors": 100, "centered": False, "scoring": "similarity"},
    "sequential": {
        "item_template": {
            "fields": [{"name": n} for n in ("title", "genres", "tags", "specs", "developer")]
        }
    },
}

HOLDOUT = {"new_users": 0.2, "new_items": 0.2, "warm_test": 0.1, "support_k": 5}

EXPERIMENTS: dict[tuple[str, str], Experiment] = {
    ("ml-1m-melu", "melu"): Experiment("ml-1m-melu", "melu", "rating", 5, _melu),
    ("ml-100k", "holdout"): Experiment(
        "ml-100k", "holdout", "rating", 5, _holdout("ml-100k"), HOLDOUT
    ),
    ("ml-100k", "temporal"): Experiment(
        "ml-100k", "temporal", "rating", 5, _temporal("ml-100k"), {"support_k": 5}
    ),
    ("citeulike-a", "holdout"): Experiment(
        "citeulike-a",
        "holdout",
        "ranking",
        20,
        _holdout("citeulike-a"),
        {"new_users": 0.0, "new_items": 0.2, "warm_test": 0.1, "support_k": 0},
    ),
    ("restaurant-uci", "holdout"): Experiment(
        "restaurant-uci",
        "holdout",
        "rating",
        5,
        _holdout("restaurant-uci"),
        {"new_users": 0.25, "new_items": 0.0, "warm_test": 0.2, "support_k": 2},
    ),
    ("steam", "new-games"): Experiment(
        "steam",
        "new-games",
        "history-ranking",
        20,
        _steam("new-games"),
        {"fraction": 0.15},
        model_params=STEAM_MODELS,
    ),
    ("steam", "new-players"): Experiment(
        "steam",
        "new-players",
        "history-ranking",
        20,
        _steam("new-players"),
        {"fraction": 0.2, "min_interactions": 2},
        model_params=STEAM_MODELS,
    ),
}


def default_protocol(dataset: str) -> str:
    """The first protocol registered for ``dataset``."""
    for name, protocol in EXPERIMENTS:
        if name == dataset:
            return protocol
    raise KeyError(f"no evaluation set-up for dataset {dataset!r}; known: {available()}")


def get_experiment(dataset: str, protocol: str | None = None) -> Experiment:
    protocol = protocol or default_protocol(dataset)
    try:
        return EXPERIMENTS[(dataset, protocol)]
    except KeyError:
        raise KeyError(
            f"no set-up for dataset {dataset!r} with protocol {protocol!r}; known: {available()}"
        ) from None


def available() -> list[str]:
    return [f"{d}:{p}" for d, p in EXPERIMENTS]
