"""dayzero.testing.check_recommender: every registered recommender passes it (tiny settings), and
it catches recommenders that break the contract, naming the check."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.core.templates import Template
from dayzero.recommend.baselines.means import ItemMean
from dayzero.recommend.contract import REGISTRY, Recommender
from dayzero.testing import CHECKS, catalogue_entities, check_recommender, make_contract_catalogue

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_BERT = "<tiny bert>"  # replaced by the tiny_bert_dir fixture's folder
# One case per registered name at least (the coverage test below keeps it so); text models run
# on the tiny random BERT with a few epochs: the checks test the protocol, not the quality.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("global-mean", {}),
    ("item-mean", {}),
    ("item-mean-user-bias", {}),
    ("popularity", {}),
    ("item-knn", {"k_neighbors": 10}),
    ("mf", {"factors": 4, "iterations": 8, "reg": 1.0}),
    ("content-knn", {"k_neighbors": 10}),
    ("feature-hybrid", {"factors": 8, "epochs": 20, "lr": 0.05, "batch_size": 64}),
    (
        "two-tower",
        {
            "encoder": {"model": TINY_BERT, "max_length": 32},
            "towers": {"dim": 8, "hidden": 16},
            "training": {"epochs": 3, "batch_users": 8, "query_size": 3, "validation": 0.25},
        },
    ),
    (
        "two-tower",
        {
            "encoder": {"model": TINY_BERT, "max_length": 32},
            "towers": {"dim": 8, "hidden": 16},
            "training": {"epochs": 2, "batch_users": 8, "validation": 0.0},
            "strategy": "lora",
            "adaptation": {"steps": 2, "items": 4, "refit_epochs": 1},
        },
    ),
    (
        "cross-encoder",
        {
            "encoder": {"model": TINY_BERT, "max_length": 64},
            "item_template": Template(["genre"]).to_dict(),
            "name_field": "genre",
            "strategy_params": {"r": 2},
            "user_share": 0.8,  # room for the rating summary beside the profile
            "training": {"batch_size": 16, "epochs": 1, "max_train_pairs": 48, "validation": 0.2},
        },
    ),
    (
        "sequential",
        {
            "encoder": {"model": TINY_BERT, "max_length": 32},
            "network": {"hidden": 16, "heads": 2, "max_len": 8},
            "training": {"epochs": 2, "batch_size": 16, "validation": 0.25},
        },
    ),
    # the peers (dayzero.recommend.peers): skipped without their library, the bench extra
    ("implicit-als", {"factors": 4, "iterations": 5}),
    ("implicit-bpr", {"factors": 4, "iterations": 50}),
    ("lightfm", {"factors": 4, "epochs": 10}),
    (
        "dropoutnet",
        {"factors": 4, "content_dim": 4, "hidden": 8, "dim": 4, "epochs": 2, "pairs_per_epoch": 64},
    ),
    (
        "hybrid",
        {
            "parts": {
                "popularity": {"model": "popularity"},
                "content": {"model": "content-knn", "params": {"scoring": "similarity"}},
                "two-tower": {
                    "model": "two-tower",
                    "params": {
                        "encoder": {"model": TINY_BERT, "max_length": 32},
                        "towers": {"dim": 8, "hidden": 16},
                        "training": {
                            "epochs": 2,
                            "batch_users": 8,
                            "validation": 0.0,
                            "retrieval_weight": 1.0,
                            "negatives": 4,
                        },
                    },
                },
            },
            "grid_points": 2,
            "offsets": [0.0, 1.0],
        },
    ),
]
#: Registered names whose library is optional (``make bench-deps``): name -> module to import.
PEER_LIBRARIES = {
    "implicit-als": "implicit",
    "implicit-bpr": "implicit",
    "lightfm": "lightfm",
    "dropoutnet": "implicit",  # its WMF step
}


def _tiny(value: Any, folder) -> Any:
    if isinstance(value, dict) and value.get("model") == TINY_BERT:
        return {**value, "model": str(folder)}
    if isinstance(value, dict):  # a hybrid's parts hold their params one level down
        return {k: _tiny(v, folder) for k, v in value.items()}
    return value


def _case_id(case: tuple[str, dict]) -> str:
    name, params = case
    return name if params.get("strategy", "frozen") == "frozen" else f"{name}-{params['strategy']}"


def test_every_registered_recommender_has_a_case():
    missing = sorted(set(REGISTRY) - {name for name, _ in CASES})
    assert not missing, f"add a check_recommender case for {missing} to CASES"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_registered_recommender_passes_the_contract(case, tiny_bert_dir):
    name, params = case
    if name in PEER_LIBRARIES:
        pytest.importorskip(
            PEER_LIBRARIES[name],
            reason=f"{name} needs `{PEER_LIBRARIES[name]}`, in the bench extra (make bench-deps)",
            exc_type=ImportError,  # absent, or installed but broken (its compiled part)
        )
    params = {k: _tiny(v, tiny_bert_dir) for k, v in params.items()}
    model = REGISTRY[name](**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. history items a model cannot fold in from fields
        results = check_recommender(model)
    assert list(results) == list(CHECKS)
    assert all(v == "passed" for v in results.values()), results
    assert not hasattr(model, "item_map_"), "check_recommender must not fit the given instance"


def test_a_factory_is_accepted_and_skips_are_reported():
    results = check_recommender(lambda: ItemMean(reg=2.0), skip=["save_load"])
    assert results["save_load"] == "skipped: asked" and results["fit_idempotent"] == "passed"
    with pytest.raises(ValueError, match="unknown checks"):
        check_recommender(ItemMean(), skip=["no-such-check"])
    with pytest.raises(TypeError, match="Recommender instance"):
        check_recommender(ItemMean)


def test_the_catalogue_has_the_known_answer():
    catalogue = make_contract_catalogue()
    frame = catalogue.dataset.interactions.frame
    likes_action = frame["user"].str.startswith("ua") == frame["item"].str.startswith("a")
    assert (frame.loc[likes_action, "value"] >= 4).all()
    assert (frame.loc[~likes_action, "value"] <= 2).all()
    assert catalogue.dataset.items is not None and "a_cold" in catalogue.dataset.items
    assert "a_cold" not in set(frame["item"]) and frame["timestamp"].is_unique


# ------------------------------------------------------------------ broken recommenders
# Each is ItemMean (which passes) with one rule broken; registered only while its test runs.


class _HistoryLeaks(ItemMean):
    def _score_pairs(self, users, items, history):
        if history is not None and len(history):
            self._absorb(history)  # stores the request's history: the next call sees it
        return super()._score_pairs(users, items, history)


class _RefitAccumulates(ItemMean):
    def fit(self, dataset: Dataset) -> Self:
        if hasattr(self, "item_map_"):  # "warm start" that keeps the fold-ins of before
            self._absorb(dataset.interactions)
            return self
        return super().fit(dataset)


class _IgnoresItemInteractions(ItemMean):
    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None):
        self._check_fitted()
        return self


class _ValidatesInInit(ItemMean):
    def __init__(self, user_bias: bool = False, reg: float = 5.0) -> None:
        self.user_bias = user_bias
        self.reg = max(float(reg), 0.0)
        self.cache = {}


class _NoDeepParams(ItemMean):
    def get_params(self) -> dict:  # the old signature: sklearn.base.clone cannot call it
        return {"user_bias": self.user_bias, "reg": self.reg}


class _ForgetsFoldInOnSave(ItemMean):
    def fit(self, dataset: Dataset) -> Self:
        super().fit(dataset)
        self.fitted_sum_ = (self.value_sum_, self.count_)
        return self

    def _state(self):
        arrays, extras = super()._state()
        value_sum, count = getattr(self, "fitted_sum_", (self.value_sum_, self.count_))
        return arrays, {**extras, "value_sum": value_sum, "count": count}  # fit's, not now's


class _UnfilteredSeen(ItemMean):
    def seen_items(self, user, history=None):
        return set()


class _NaNForStrangers(ItemMean):
    def _score_pairs(self, users, items, history):
        scores = super()._score_pairs(users, items, history)
        unknown = np.array([u not in self.user_map_ for u in users])
        return np.where(unknown, np.nan, scores)


BROKEN = [
    (_HistoryLeaks, "history_not_stored"),
    (_RefitAccumulates, "fit_idempotent"),
    (_IgnoresItemInteractions, "partial_fit_items"),
    (_ValidatesInInit, "init_stores_params"),
    (_NoDeepParams, "params"),
    (_ForgetsFoldInOnSave, "save_load_after_partial_fit"),
    (_UnfilteredSeen, "fit"),
    (_NaNForStrangers, "cold_fallbacks"),
]


@pytest.fixture
def registered():
    added: list[str] = []

    def add(cls: type[Recommender]) -> type[Recommender]:
        name = f"test-broken-{cls.__name__.strip('_').lower()}"
        cls.name = name
        REGISTRY[name] = cls
        added.append(name)
        return cls

    yield add
    for name in added:
        REGISTRY.pop(name, None)


@pytest.mark.parametrize(("cls", "check"), BROKEN, ids=[c.__name__ for c, _ in BROKEN])
def test_a_broken_recommender_fails_the_named_check(cls, check, registered):
    model = registered(cls)()
    with pytest.raises(AssertionError, match=rf"check_recommender\[{cls.__name__}\] '{check}'"):
        check_recommender(model)


class _NoFoldIn(ItemMean):
    """Documents that it cannot fold in: the base class's NotImplementedError."""

    partial_fit_users = Recommender.partial_fit_users
    partial_fit_items = Recommender.partial_fit_items


def test_a_recommender_without_fold_in_skips_those_checks(registered):
    results = check_recommender(registered(_NoFoldIn)())
    assert results["partial_fit_users"].startswith("skipped: partial_fit_users")
    assert results["partial_fit_items"].startswith("skipped: partial_fit_items")
    assert results["save_load_after_partial_fit"].startswith("skipped")
    assert results["fit_idempotent"] == results["save_load"] == "passed"


def test_catalogue_entities_reveal_the_groups_and_add_the_cold_items():
    users, items = catalogue_entities(["ua"], ["ub1", "ub2"], ["a0"], ["r0", "r1"])
    assert users.kind == "user" and users.frame["segment"].tolist() == ["A", "B", "B"]
    assert list(items.ids) == ["a0", "a_cold", "r0", "r1", "r_cold"]
    assert items.fields == {"title": "text", "genre": "multi", "year": "categorical"}
    assert items.frame.loc["a_cold", "title"].startswith("explosions")
    assert items.frame.loc["r1", "genre"] == ["Romance", "Drama"]
