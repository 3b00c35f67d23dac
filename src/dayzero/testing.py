"""The recommender contract as a public check, in the spirit of scikit-learn's ``check_estimator``.

:func:`check_recommender` runs every rule of :class:`~dayzero.recommend.contract.Recommender` on a
small synthetic catalogue whose answers are known (two user groups with opposite tastes over two
item groups, texts and genres that reveal the group, cold items with fields only, integer
timestamps), and raises an ``AssertionError`` naming the first check that fails. It checks the
protocol, not the quality: a model that predicts badly but keeps the contract passes.

Write a new recommender, then::

    from dayzero.testing import check_recommender

    check_recommender(MyRecommender(factors=4))

The checks, in the order they run (:data:`CHECKS`):

``params``
    scikit-learn's parameter protocol: ``get_params(deep=...)``, ``set_params`` (returns the
    model, refuses unknown names), ``sklearn.base.clone`` gives an unfitted copy with equal
    params, params are JSON (``save`` writes them).
``init_stores_params``
    ``__init__`` stores each argument unchanged (the same object) and sets nothing else.
``not_fitted``
    ``predict``, ``recommend``, ``save`` and ``partial_fit_*`` before ``fit`` raise
    :class:`~dayzero.recommend.contract.NotFittedError` (``partial_fit_*`` may raise
    ``NotImplementedError`` instead).
``empty_fit``
    ``fit`` on a dataset without interactions raises ``ValueError``.
``fit``
    ``fit`` returns the model, leaves its params unchanged, names fitted state with a trailing
    ``_`` and marks exactly each user's training items as seen.
``cold_fallbacks``
    Unknown users and items, with and without ``history``, get finite float scores.
``history_not_stored``
    ``history`` counts for one call only: predictions, seen items and id maps are unchanged
    after calls with it.
``history_of_other_users_ignored``
    Rows of other users in ``history`` change no prediction.
``recommend``
    Distinct ids, best first, at most ``k``; ``filter_seen`` drops exactly the training and
    ``history`` items; ``k`` is a prefix of a longer list; ``items`` restricts the candidates;
    scores agree with ``rank_scores`` (``predict`` unless the model ranks by another head);
    ``k < 1`` raises ``ValueError``.
``save_load``
    ``save`` writes no pickle; ``load`` (on the class and on ``Recommender``) restores the
    same type and params and identical predictions, rankings and seen items.
``partial_fit_users``
    Folding in interactions (with timezone-aware pandas timestamps) marks them seen, removes
    them from recommendations and changes the user's predictions; ``add_user_text`` where the
    model has it.
``partial_fit_items``
    New items with interactions: the interactions count for their raters (seen, filtered,
    predictions change compared with the same items folded in without them); new items are
    recommended to other users; items without interactions get finite scores.
``save_load_after_partial_fit``
    After the fold-ins above (datetime timestamps, user texts) ``save`` / ``load`` gives
    identical predictions and seen items.
``fit_idempotent``
    A second ``fit`` on the same data equals a fresh fit (``clone(model).fit(data)``): the
    same predictions, id maps and training history, no folded-in users, items or texts, no
    attribute left from before.

A check that uses ``partial_fit_users`` / ``partial_fit_items`` / ``add_user_text`` is skipped
(reported as such) when the model raises ``NotImplementedError`` for them.
"""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import json
import tempfile
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.artifact import CONFIG_FILE, PICKLE_SUFFIXES, artifact_kind
from dayzero.core.config import as_dict
from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.recommend.contract import NotFittedError, Recommender, seen_by_user

__all__ = [
    "CHECKS",
    "ContractCatalogue",
    "catalogue_entities",
    "check_recommender",
    "make_contract_catalogue",
]

ACTION_TEXT = "explosions car chase fight gun hero"
ROMANCE_TEXT = "love kiss wedding romance heart couple"
ITEM_FIELDS = {"title": "text", "genre": "multi", "year": "categorical"}
#: "Identical" predictions may differ by this much (float32 rounding of another batch size).
TOLERANCE = 1e-6


@dataclass
class ContractCatalogue:
    """The synthetic data :func:`check_recommender` runs on (see :func:`make_contract_catalogue`).

    Attributes
    ----------
    dataset : Dataset
        Training interactions (integer timestamps), user and item tables.
    users_a, users_b : list of str
        Users who rate action items 4-5 and romance 1-2 (group A), and the reverse (group B).
    action, romance : list of str
        Items of each group with interactions.
    cold_action, cold_romance : str
        Items with fields but no interactions.
    training_items : dict
        User -> the items of their training interactions (what ``filter_seen`` drops).
    """

    dataset: Dataset
    users_a: list[str]
    users_b: list[str]
    action: list[str]
    romance: list[str]
    cold_action: str = "a_cold"
    cold_romance: str = "r_cold"
    training_items: dict[Hashable, set[Hashable]] = field(default_factory=dict)

    def new_items(self, ids: Sequence[str], action: bool = True) -> Entities:
        """Fields of items that are not in the catalogue yet."""
        return Entities(_item_frame(list(ids), action).set_index("id"), dict(ITEM_FIELDS))


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


def catalogue_entities(
    users_a: Sequence[str], users_b: Sequence[str], action: Sequence[str], romance: Sequence[str]
) -> tuple[Entities, Entities]:
    """The user and item tables of a catalogue of two groups: users with a ``segment`` field
    (``"A"`` / ``"B"``), items with a title, genres and year that reveal their group, plus the
    cold items ``a_cold`` and ``r_cold`` (fields only).

    Returns
    -------
    tuple of Entities
        ``(users, items)``.
    """
    items = pd.concat(
        [_item_frame([*action, "a_cold"], True), _item_frame([*romance, "r_cold"], False)]
    )
    item_entities = Entities.from_frame(items, "id", dict(ITEM_FIELDS))
    users = pd.DataFrame(
        {"id": [*users_a, *users_b], "segment": ["A"] * len(users_a) + ["B"] * len(users_b)}
    )
    user_entities = Entities.from_frame(users, "id", {"segment": "categorical"}, kind="user")
    return user_entities, item_entities


def make_contract_catalogue(seed: int = 0, n_users: int = 8, n_items: int = 6) -> ContractCatalogue:
    """Two user groups with opposite tastes over two item groups, where the right answer is known.

    Parameters
    ----------
    seed : int, default 0
        Which ratings exist (each user rates each item with probability 0.8) and their values.
    n_users, n_items : int, default 8, 6
        Users per group and items (with interactions) per group.

    Returns
    -------
    ContractCatalogue
    """
    rng = np.random.default_rng(seed)
    users_a = [f"ua{i}" for i in range(n_users)]
    users_b = [f"ub{i}" for i in range(n_users)]
    action = [f"a{i}" for i in range(n_items)]
    romance = [f"r{i}" for i in range(n_items)]
    rows, clock = [], 1_000_000
    for user in users_a + users_b:
        for item in rng.permutation(action + romance):
            if rng.random() < 0.8:
                liked = (item in action) == (user in users_a)
                value = float(rng.integers(4, 6) if liked else rng.integers(1, 3))
                clock += int(rng.integers(1, 100))
                rows.append((user, str(item), value, clock))
    user_entities, item_entities = catalogue_entities(users_a, users_b, action, romance)
    inter = Interactions.from_records(rows)
    dataset = Dataset(inter, users=user_entities, items=item_entities)
    return ContractCatalogue(
        dataset, users_a, users_b, action, romance, "a_cold", "r_cold", seen_by_user(inter)
    )


CHECKS = (
    "params",
    "init_stores_params",
    "not_fitted",
    "empty_fit",
    "fit",
    "cold_fallbacks",
    "history_not_stored",
    "history_of_other_users_ignored",
    "recommend",
    "save_load",
    "partial_fit_users",
    "partial_fit_items",
    "save_load_after_partial_fit",
    "fit_idempotent",
)


class _Unsupported(Exception):
    """The model raised NotImplementedError for an optional method: the check is skipped."""


def check_recommender(
    estimator: Recommender | Callable[[], Recommender],
    *,
    skip: Sequence[str] = (),
) -> dict[str, str]:
    """Check that a recommender keeps the :class:`~dayzero.recommend.contract.Recommender` contract.

    Parameters
    ----------
    estimator : Recommender or callable
        An instance (it is cloned with ``sklearn.base.clone`` for every model the checks need,
        so it may be fitted or not and is never changed), or a function without arguments that
        returns a new unfitted recommender each call. Use small settings (few epochs, a tiny
        encoder): the checks fit twice and predict a few hundred pairs.
    skip : sequence of str, optional
        Names from :data:`CHECKS` not to run.

    Returns
    -------
    dict
        Check name -> ``"passed"`` or ``"skipped: <why>"``, in the order of :data:`CHECKS`.

    Raises
    ------
    AssertionError
        At the first check that fails, with a message naming the model and the check
        (``check_recommender[ItemMean] 'recommend' failed: ...``); an unexpected exception in
        a check is reported the same way, chained.
    ValueError
        ``skip`` names an unknown check.

    Examples
    --------
    >>> from dayzero.recommend import ItemMean
    >>> from dayzero.testing import check_recommender
    >>> results = check_recommender(ItemMean(user_bias=True))
    >>> results["fit_idempotent"]
    'passed'
    """
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"skip names unknown checks {unknown}; the checks are {list(CHECKS)}")
    runner = _Runner(estimator, make_contract_catalogue())
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dayzero-check-") as tmp:
        runner.tmp = Path(tmp)
        for name in CHECKS:
            if name in skip:
                results[name] = "skipped: asked"
                continue
            try:
                getattr(runner, f"check_{name}")()
            except _Unsupported as why:
                results[name] = f"skipped: {why}"
                continue
            except AssertionError as exc:
                raise AssertionError(
                    f"check_recommender[{runner.label}] {name!r} failed: {exc}"
                ) from exc
            except Exception as exc:
                raise AssertionError(
                    f"check_recommender[{runner.label}] {name!r} raised {type(exc).__name__}: {exc}"
                ) from exc
            results[name] = "passed"
    return results


# ----------------------------------------------------------------------------- helpers


def _init_params(cls: type) -> set[str]:
    """Constructor argument names of ``cls`` (no ``self``, no ``*args`` / ``**kwargs``)."""
    signature = inspect.signature(cls.__init__)
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p for p, v in signature.parameters.items() if p != "self" and v.kind not in kinds}


def _all_init_params(cls: type) -> set[str]:
    """Constructor arguments of ``cls`` and of its bases (a subclass may fix a parent's)."""
    return set().union(*(_init_params(c) for c in cls.__mro__ if "__init__" in vars(c)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    try:
        return bool(a == b)
    except Exception:  # objects without a usable ==
        return a is b


def _assert_same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Equal up to float32 rounding: a model may compute the same vectors in other batches."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape or not np.allclose(
        actual, expected, rtol=TOLERANCE, atol=TOLERANCE
    ):
        diff = np.max(np.abs(actual - expected)) if actual.shape == expected.shape else "shape"
        raise AssertionError(f"{what}: {actual!r} != {expected!r} (largest difference {diff})")


def _history(user: Hashable) -> Interactions:
    """A request-time history: a like, a dislike and an item the model never saw."""
    return Interactions.from_records([(user, "r2", 5.0), (user, "a3", 1.0), (user, "zzz", 3.0)])


PAIRS_USERS = ["ua0", "ub0", "ua1", "nobody", "nobody", "ub3"]
PAIRS_ITEMS = ["a1", "r1", "unknown-item", "a2", "unknown-item", "a_cold"]


class _Runner:
    def __init__(self, estimator: Any, catalogue: ContractCatalogue) -> None:
        if isinstance(estimator, Recommender):
            self.template: Recommender | None = estimator
            self.factory: Callable[[], Recommender] | None = None
            self.label = type(estimator).__name__
        elif callable(estimator) and not isinstance(estimator, type):
            self.template, self.factory = None, estimator
            self.label = type(estimator()).__name__
        else:
            raise TypeError(
                "check_recommender needs a Recommender instance or a function returning a new "
                f"one, got {estimator!r}"
            )
        self.catalogue = catalogue
        self.data = catalogue.dataset
        self.tmp = Path(".")
        self._fitted: Recommender | None = None
        self.fresh_keys: set[str] = set()
        self.folded: Recommender | None = None
        self.folded_users: list[Hashable] = []
        self.folded_items: list[Hashable] = []

    # ------------------------------------------------------------------ models
    def new(self) -> Recommender:
        if self.factory is not None:
            model = self.factory()
            assert isinstance(model, Recommender), (
                f"the factory returned {type(model).__name__}, not a Recommender"
            )
            assert not hasattr(model, "item_map_"), "the factory returned a fitted model"
            return model
        from sklearn.base import clone

        return clone(self.template)

    @property
    def fitted(self) -> Recommender:
        """The model fitted once on the catalogue; checks that use it must not change it."""
        if self._fitted is None:
            model = self.new()
            model.fit(self.data)
            self.fresh_keys = set(vars(model))
            self._fitted = model
        return self._fitted

    def copy_fitted(self) -> Recommender:
        return copy.deepcopy(self.fitted)

    def all_items(self, model: Recommender) -> int:
        return len(model.item_map_) + 10

    def save_and_load(self, model: Recommender, name: str) -> Recommender:
        folder = Path(model.save(self.tmp / name))
        loaded = type(model).load(folder)
        assert type(loaded) is type(model), (
            f"{type(model).__name__}.load returned a {type(loaded).__name__}"
        )
        return loaded

    # ------------------------------------------------------------------ checks
    def check_params(self) -> None:
        from sklearn.base import clone

        model = self.new()
        params = model.get_params(deep=False)
        names = _init_params(type(model))
        assert set(params) == names, (
            f"get_params() keys {sorted(params)} differ from the __init__ arguments {sorted(names)}"
        )
        deep = model.get_params(deep=True)
        for key, value in params.items():
            assert key in deep and deep[key] is value, f"get_params(deep=True) lacks {key!r}"
        assert model.set_params() is model, "set_params() must return the model"
        assert model.set_params(**params) is model, "set_params(**params) must return the model"
        try:
            model.set_params(no_such_param_=1)
        except ValueError:
            pass
        else:
            raise AssertionError("set_params(no_such_param_=1) must raise ValueError")
        copied = clone(model)
        assert type(copied) is type(model) and copied is not model, "clone must give a new model"
        for key, value in copied.get_params(deep=False).items():
            assert _same(value, params[key]), f"clone changed param {key!r}"
        assert not hasattr(copied, "item_map_"), "clone must give an unfitted model"
        try:  # config dataclasses are saved as dicts of their fields
            json.dumps({key: as_dict(value) for key, value in params.items()})
        except TypeError as exc:
            raise AssertionError(f"params must be JSON (save writes them): {exc}") from exc

    def check_init_stores_params(self) -> None:
        model = self.new()
        params = model.get_params(deep=False)
        again = type(model)(**params)
        allowed = _all_init_params(type(model))
        extra = sorted(set(vars(again)) - allowed)
        assert not extra, f"__init__ sets attributes that are not parameters: {extra}"
        for key, value in params.items():
            assert key in vars(again), f"__init__ does not store param {key!r}"
            assert vars(again)[key] is value, (
                f"__init__ must store {key!r} unchanged (validate in fit, not in __init__)"
            )

    def check_not_fitted(self) -> None:
        model = self.new()
        calls: dict[str, Callable[[], Any]] = {
            "predict": lambda: model.predict(["ua0"], ["a1"]),
            "recommend": lambda: model.recommend("ua0", k=3),
            "save": lambda: model.save(self.tmp / "unfitted"),
            "partial_fit_users": lambda: model.partial_fit_users(_history("ua0")),
            "partial_fit_items": lambda: model.partial_fit_items(
                self.catalogue.new_items(["a_new"]), _history("ua0")
            ),
        }
        for method, call in calls.items():
            try:
                call()
            except NotFittedError:
                continue
            except NotImplementedError:
                if method.startswith("partial_fit"):
                    continue
                raise
            raise AssertionError(f"{method} before fit must raise NotFittedError")

    def check_empty_fit(self) -> None:
        empty = Dataset(Interactions.empty(), users=self.data.users, items=self.data.items)
        try:
            self.new().fit(empty)
        except ValueError:
            return
        raise AssertionError("fit on a dataset without interactions must raise ValueError")

    def check_fit(self) -> None:
        model = self.new()
        params = model.get_params(deep=False)
        out = model.fit(self.data)
        assert out is model, f"fit must return the model itself, got {type(out).__name__}"
        self.fresh_keys, self._fitted = set(vars(model)), model
        for key, value in model.get_params(deep=False).items():
            assert value is params[key], (
                f"fit changed param {key!r} (store derived state in {key}_)"
            )
        public = [a for a in vars(model) if not a.startswith("_") and not a.endswith("_")]
        stray = sorted(set(public) - _all_init_params(type(model)))
        assert not stray, f"fitted state must end in '_': {stray}"
        for attr in ("user_map_", "item_map_"):
            assert hasattr(model, attr), f"a fitted model has {attr}"
        for user, items in self.catalogue.training_items.items():
            seen = model.seen_items(user)
            assert seen == items, f"seen_items({user!r}) is {sorted(seen)}, not {sorted(items)}"

    def check_cold_fallbacks(self) -> None:
        model = self.fitted
        for history in (None, _history("nobody"), _history("ua0")):
            scores = model.predict(PAIRS_USERS, PAIRS_ITEMS, history=history)
            assert isinstance(scores, np.ndarray) and scores.dtype.kind == "f", (
                f"predict must return a float array, got {type(scores).__name__}"
            )
            assert scores.shape == (len(PAIRS_USERS),), f"predict shape {scores.shape}"
            assert np.all(np.isfinite(scores)), f"non-finite cold prediction {scores}"
            ids, top = model.recommend("nobody", k=3, history=history)
            assert len(ids) == 3 and np.all(np.isfinite(top)), (
                f"recommend for an unknown user gave {ids}, {top}"
            )

    def check_history_not_stored(self) -> None:
        model = self.fitted
        before = model.predict(PAIRS_USERS, PAIRS_ITEMS)
        seen = {u: model.seen_items(u) for u in [*PAIRS_USERS, "zzz"]}
        n_users, n_items = len(model.user_map_), len(model.item_map_)
        for user in ("ua0", "nobody"):
            model.predict(PAIRS_USERS, PAIRS_ITEMS, history=_history(user))
            model.recommend(user, k=3, history=_history(user))
        _assert_same(model.predict(PAIRS_USERS, PAIRS_ITEMS), before, "predictions after history")
        after = {u: model.seen_items(u) for u in seen}
        assert after == seen, f"history changed seen items: {seen} -> {after}"
        assert (len(model.user_map_), len(model.item_map_)) == (n_users, n_items), (
            "history added ids to the model"
        )
        assert "zzz" not in model.item_map_ and "nobody" not in model.user_map_

    def check_history_of_other_users_ignored(self) -> None:
        model = self.fitted
        users, items = ["nobody", "ua0", "ub1"], ["a1", "r1", "a_cold"]
        alone = model.predict(users, items)
        others = model.predict(users, items, history=_history("someone-else"))
        _assert_same(others, alone, "predictions with another user's history")

    def check_recommend(self) -> None:
        model = self.fitted
        history = _history("ua0")
        n = self.all_items(model)
        ids, scores = model.recommend("ua0", k=n, history=history)
        assert len(ids) == len(set(ids)) == len(scores), "recommend gave repeated ids"
        assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) <= 0), (
            f"scores must be finite and best first: {scores}"
        )
        seen = self.catalogue.training_items["ua0"] | {"r2", "a3", "zzz"}
        assert not set(ids) & seen, f"filter_seen kept seen items {sorted(set(ids) & seen)}"
        assert set(ids) == set(model.item_map_.ids) - seen, (
            "recommend must rank every unseen catalogue item"
        )
        top, _ = model.recommend("ua0", k=2, history=history)
        assert top == ids[:2], f"top 2 {top} is not the prefix of the full list {ids[:2]}"
        expected = model.rank_scores(["ua0"] * len(ids), ids, history=history)
        np.testing.assert_allclose(
            scores, expected, rtol=1e-5, atol=1e-6, err_msg="recommend scores != rank_scores"
        )
        every, _ = model.recommend("ua0", k=n, history=history, filter_seen=False)
        assert set(every) == set(model.item_map_.ids), "filter_seen=False must rank every item"
        candidates = ["a1", "r1", "a_cold", "unknown-item"]
        some, some_scores = model.recommend("ua0", k=10, items=candidates, filter_seen=False)
        assert sorted(some) == sorted(candidates), f"items= gave {some}"
        np.testing.assert_allclose(
            some_scores,
            model.rank_scores(["ua0"] * len(some), some),
            rtol=1e-5,
            atol=1e-6,
            err_msg="recommend(items=...) scores != rank_scores",
        )
        try:
            model.recommend("ua0", k=0)
        except ValueError:
            pass
        else:
            raise AssertionError("recommend(k=0) must raise ValueError")

    def _assert_round_trip(
        self, model: Recommender, loaded: Recommender, users: list, items: list
    ) -> None:
        assert loaded.get_params() == model.get_params(), "load changed the params"
        for history in (None, _history("nobody"), _history("ua0")):
            _assert_same(
                loaded.predict(users, items, history),
                model.predict(users, items, history),
                f"predictions after load (history={'none' if history is None else 'given'})",
            )
        for user in dict.fromkeys(users):
            assert loaded.seen_items(user) == model.seen_items(user), (
                f"seen_items({user!r}) changed by save/load"
            )
            a, sa = model.recommend(user, k=5, history=_history(user))
            b, sb = loaded.recommend(user, k=5, history=_history(user))
            assert a == b, f"recommend({user!r}) after load: {b} != {a}"
            _assert_same(sb, sa, f"recommend({user!r}) scores after load")

    def check_save_load(self) -> None:
        model = self.fitted
        folder = Path(model.save(self.tmp / "saved"))
        files = [p for p in folder.rglob("*") if p.is_file()]
        pickled = [str(p.relative_to(folder)) for p in files if p.suffix in PICKLE_SUFFIXES]
        assert not pickled, f"save wrote files that may hold pickles: {pickled}"
        assert artifact_kind(folder) == "recommender", (
            f"save must write a recommender {CONFIG_FILE}"
        )
        loaded = type(model).load(folder)
        assert type(Recommender.load(folder)) is type(model), "Recommender.load gave another type"
        assert type(loaded) is type(model), f"load gave a {type(loaded).__name__}"
        self._assert_round_trip(model, loaded, PAIRS_USERS, PAIRS_ITEMS)

    def _fold_users(self) -> Recommender:
        if self.folded is None:
            self.folded = self.copy_fitted()
        return self.folded

    def check_partial_fit_users(self) -> None:
        model = self._fold_users()
        berlin = pd.Timestamp("2024-03-01 12:00", tz="Europe/Berlin")
        rows = Interactions.from_records(
            [
                ("newbie", "a0", 5.0, berlin),
                ("newbie", "a1", 5.0, berlin + pd.Timedelta("1h")),
                ("ub0", "a_cold", 5.0, berlin + pd.Timedelta("2h")),
            ]
        )
        items = ["a2", "r0", "r1", "a_cold", "a0", "a1"]
        before = model.predict(["newbie"] * len(items), items)
        try:
            out = model.partial_fit_users(rows)
        except NotImplementedError as exc:
            raise _Unsupported(f"partial_fit_users: {exc}") from exc
        assert out is model, "partial_fit_users must return the model"
        self.folded_users = ["newbie", "ub0"]
        for user, new in (("newbie", {"a0", "a1"}), ("ub0", {"a_cold"})):
            seen = model.seen_items(user)
            assert new <= seen, f"folded-in items {sorted(new)} not in seen_items({user!r})"
            ids, _ = model.recommend(user, k=self.all_items(model))
            assert not set(ids) & new, f"recommend({user!r}) kept folded-in items"
        after = model.predict(["newbie"] * len(items), items)
        assert np.all(np.isfinite(after)), f"non-finite predictions after fold-in: {after}"
        assert not np.array_equal(after, before), (
            "partial_fit_users changed no prediction of the folded-in user"
        )
        if hasattr(model, "add_user_text"):
            assert model.add_user_text("talker", ROMANCE_TEXT) is model, (
                "add_user_text must return the model"
            )
            self.folded_users.append("talker")
            assert np.all(np.isfinite(model.predict(["talker"] * 2, ["a1", "r1"])))

    def check_partial_fit_items(self) -> None:
        catalogue = self.catalogue
        raters = catalogue.users_b[:2]
        stamp = dt.datetime(2024, 3, 2, 8, 30, tzinfo=dt.UTC)
        rows = Interactions.from_records([(u, "a_new", 5.0, stamp) for u in raters])
        with_rows, without = self.copy_fitted(), self.copy_fitted()
        try:
            out = with_rows.partial_fit_items(catalogue.new_items(["a_new"]), rows)
        except NotImplementedError as exc:
            raise _Unsupported(f"partial_fit_items: {exc}") from exc
        assert out is with_rows, "partial_fit_items must return the model"
        for user in raters:
            assert "a_new" in with_rows.seen_items(user), (
                f"partial_fit_items ignored the interactions: 'a_new' not in seen_items({user!r})"
            )
            ids, _ = with_rows.recommend(user, k=self.all_items(with_rows))
            assert "a_new" not in ids, f"recommend({user!r}) kept the item it rated"
        ids, _ = with_rows.recommend("ua0", k=self.all_items(with_rows))
        assert "a_new" in ids, "a new item with interactions is not recommended to other users"
        users = [*raters, *raters, *raters]
        items = ["a_new"] * len(raters) + ["a1"] * len(raters) + ["r1"] * len(raters)
        scored = with_rows.predict(users, items)
        assert np.all(np.isfinite(scored)), f"non-finite predictions after fold-in: {scored}"
        try:
            without.partial_fit_items(catalogue.new_items(["a_new"]))
        except NotImplementedError:
            pass
        else:
            assert not np.array_equal(scored, without.predict(users, items)), (
                "partial_fit_items(items, interactions) predicts as if the interactions were "
                "not given: they must count for their raters"
            )
            assert np.all(np.isfinite(without.predict(["ua0", "ub0"], ["a_new", "a_new"])))
        # the same fold-in on the model of the users' check, for the round trip below
        model = self._fold_users()
        model.partial_fit_items(catalogue.new_items(["a_new"]), rows)
        model.partial_fit_items(catalogue.new_items(["r_new"], action=False))
        self.folded_items = ["a_new", "r_new"]

    def check_save_load_after_partial_fit(self) -> None:
        if self.folded is None or not (self.folded_users or self.folded_items):
            raise _Unsupported("no partial_fit_* is supported")
        model = self.folded
        loaded = self.save_and_load(model, "folded")
        users = [*self.folded_users, "ua0", "nobody"]
        items = [*self.folded_items, "a0", "r1", "a_cold", "unknown-item"]
        pairs_u = [u for u in users for _ in items]
        pairs_i = [i for _ in users for i in items]
        self._assert_round_trip(model, loaded, pairs_u, pairs_i)
        if hasattr(model, "user_texts_"):
            assert getattr(loaded, "user_texts_", None) == model.user_texts_, (
                "add_user_text was lost by save/load"
            )

    def check_fit_idempotent(self) -> None:
        fresh = self.fitted
        model = self.folded if self.folded is not None else self.copy_fitted()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.predict(PAIRS_USERS, PAIRS_ITEMS, history=_history("nobody"))
        out = model.fit(self.data)
        assert out is model, "fit must return the model"
        stale = sorted(set(vars(model)) - self.fresh_keys)
        assert not stale, f"attributes left from before the second fit: {stale}"
        assert list(model.item_map_.ids) == list(fresh.item_map_.ids), (
            "the second fit kept items that are not in the data"
        )
        assert list(model.user_map_.ids) == list(fresh.user_map_.ids), (
            "the second fit kept users that are not in the data"
        )
        users = [*self.folded_users, *PAIRS_USERS]
        items = [*self.folded_items, "a0", "r0", "a_cold"]
        pairs_u = [u for u in users for _ in items]
        pairs_i = [i for _ in users for i in items]
        _assert_same(
            model.predict(pairs_u, pairs_i),
            fresh.predict(pairs_u, pairs_i),
            "predictions after a second fit vs a fresh fit",
        )
        for user in dict.fromkeys(users):
            assert model.seen_items(user) == fresh.seen_items(user), (
                f"the second fit kept folded-in seen items of {user!r}"
            )
        if hasattr(fresh, "history_"):
            assert model.history_ == fresh.history_, (
                "history_ after a second fit differs from a fresh fit's (kept earlier runs?)"
            )
