"""The recommender contract every dayzero model follows, and safe save/load.

Modelled on ``implicit``'s ``RecommenderBase`` and LightFM: ``fit`` on a :class:`Dataset`,
``predict(users, items)`` for ratings, ``recommend(user, k) -> (ids, scores)``, ``similar_items``,
and ``partial_fit_users`` / ``partial_fit_items`` to fold in entities that arrive later.

Cold start is explicit. A user or item is *known* when the model saw interactions for it in
``fit`` or a ``partial_fit_*`` call; being in an id map is not enough. For unknown entities each
model documents its cold fallback (for example the global mean), and never returns NaN.

``history`` is the interactions a caller reveals at request time (a new user's first ratings, the
support set of a MeLU task). Models use them for that call only and do not change their state, so
one test user's support can never leak into another's prediction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Hashable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import metadata_routing

from dayzero.core.artifact import Artifact, ArtifactError, load_artifact, save_artifact
from dayzero.core.card import (
    CARD_JSON,
    ModelCard,
    encoder_section,
    read_card,
    sensitive_columns,
    summarize_dataset,
    write_card,
)
from dayzero.core.config import ConfigParams, as_dict
from dayzero.core.schema import Dataset, Entities, IdMap, Interactions

#: The models dayzero ships, by name: imported only when first used, so that naming or
#: fitting a baseline never imports torch.
BUILTIN_MODELS: dict[str, str] = {
    "global-mean": "dayzero.recommend.baselines.means:GlobalMean",
    "item-mean": "dayzero.recommend.baselines.means:ItemMean",
    "item-mean-user-bias": "dayzero.recommend.baselines.means:ItemMeanUserBias",
    "popularity": "dayzero.recommend.baselines.popularity:Popularity",
    "item-knn": "dayzero.recommend.baselines.item_knn:ItemKNN",
    "mf": "dayzero.recommend.baselines.matrix_factorization:MatrixFactorization",
    "content-knn": "dayzero.recommend.baselines.content_knn:ContentKNN",
    "feature-hybrid": "dayzero.recommend.baselines.feature_hybrid:FeatureHybrid",
    "two-tower": "dayzero.recommend.two_tower:TwoTowerRecommender",
    "sequential": "dayzero.recommend.sequential:SequentialRecommender",
    "cross-encoder": "dayzero.recommend.cross_encoder:CrossEncoderRecommender",
    "implicit-als": "dayzero.recommend.peers:ImplicitALS",
    "implicit-bpr": "dayzero.recommend.peers:ImplicitBPR",
    "lightfm": "dayzero.recommend.peers:LightFMRecommender",
    "dropoutnet": "dayzero.recommend.dropoutnet:DropoutNet",
    "hybrid": "dayzero.recommend.hybrid:HybridRecommender",
}


class ModelRegistry(MutableMapping):
    """Name -> recommender class; built-in classes are imported on first access.

    Iterating lists the names without importing anything; ``REGISTRY[name]`` imports that
    model's module. Models of your own join with :func:`register`.
    """

    def __init__(self, builtins: dict[str, str]) -> None:
        self._paths = dict(builtins)
        self._classes: dict[str, type[Recommender]] = {}

    def __getitem__(self, name: str) -> type[Recommender]:
        if name not in self._classes:
            if name not in self._paths:
                raise KeyError(f"unknown model {name!r}; available: {sorted(self)}")
            module, attribute = self._paths[name].split(":")
            cls = getattr(importlib.import_module(module), attribute)
            self._classes.setdefault(name, cls)
        return self._classes[name]

    def __setitem__(self, name: str, cls: type[Recommender]) -> None:
        self._classes[name] = cls

    def __delitem__(self, name: str) -> None:
        self._classes.pop(name, None)
        self._paths.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._paths) | set(self._classes)))

    def __len__(self) -> int:
        return len(set(self._paths) | set(self._classes))

    def __contains__(self, name: object) -> bool:
        return name in self._paths or name in self._classes

    def claimed_by(self, name: str) -> str | None:
        """``module:Class`` a built-in name belongs to (None for other names)."""
        return self._paths.get(name)


REGISTRY = ModelRegistry(BUILTIN_MODELS)


def register(name: str):
    """Class decorator: make a recommender available by ``name`` (CLI, ``load``)."""

    def wrap(cls: type[Recommender]) -> type[Recommender]:
        builtin = REGISTRY.claimed_by(name)
        owner = f"{cls.__module__}:{cls.__qualname__}"
        if builtin is not None and builtin != owner:
            raise ValueError(f"recommender name {name!r} is already registered ({builtin})")
        if builtin is None and name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"recommender name {name!r} is already registered")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


def make_recommender(name: str, **params: Any) -> Recommender:
    """Instantiate a registered recommender by name with ``params``: constructor parameters
    or scikit-learn nested ones (``training__epochs=5``), as :meth:`set_params` takes them.

    >>> make_recommender("item-mean").get_params()
    {}
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]().set_params(**params)


class NotFittedError(RuntimeError):
    """The model was used before ``fit``."""


class Recommender(ConfigParams, BaseEstimator, ABC):
    """Base class of every recommender.

    Subclasses store their constructor arguments unchanged (scikit-learn style), keep fitted
    state in attributes ending in ``_``, and implement :meth:`fit`, :meth:`_score_pairs`,
    :meth:`_score_items` and the state hooks for save/load. The parameter protocol is
    scikit-learn's own (:class:`sklearn.base.BaseEstimator`): ``get_params(deep=True)``,
    ``set_params(**params)``, and ``sklearn.base.clone(model)`` gives an unfitted copy with
    equal params. :func:`dayzero.testing.check_recommender` checks the whole contract.
    """

    name: ClassVar[str] = "recommender"
    # fit and predict take a Dataset and ids, not sklearn's (X, y) with routed metadata: no
    # set_fit_request / set_predict_request methods.
    __metadata_request__fit: ClassVar[dict] = {"dataset": metadata_routing.UNUSED}
    __metadata_request__predict: ClassVar[dict] = {
        "users": metadata_routing.UNUSED,
        "items": metadata_routing.UNUSED,
        "history": metadata_routing.UNUSED,
    }
    #: What the model card (:meth:`card`) says the model is for, and its known limits.
    card_intended_use: ClassVar[str] = (
        "Ranking items for users, including users and items with no interactions yet, on data "
        "like the training data; a list to show people, not a decision about them."
    )
    card_limitations: ClassVar[tuple[str, ...]] = ()
    #: Arrays in ``_state()`` are saved in safetensors; everything else JSON.
    user_map_: IdMap
    item_map_: IdMap
    #: Summary of the fitted dataset for the model card (recorded by every ``fit``).
    training_data_: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is None or getattr(fit, "_records_training_data", False):
            return

        # Wrapping here rather than asking each model to call a helper: every recommender,
        # a user's own included, gets a card that says what it was trained on.
        @functools.wraps(fit)
        def recording_fit(self, dataset, *args, **kwargs):
            fitted = fit(self, dataset, *args, **kwargs)
            if isinstance(dataset, Dataset):
                self.training_data_ = summarize_dataset(dataset)
            return fitted

        recording_fit._records_training_data = True
        cls.fit = recording_fit

    # ----------------------------------------------------------------- params
    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    # ----------------------------------------------------------------- contract
    @abstractmethod
    def fit(self, dataset: Dataset) -> Self:
        """Learn from ``dataset.interactions`` (and entity fields where the model uses them)."""

    def predict(
        self,
        users: Sequence[Hashable],
        items: Sequence[Hashable],
        history: Interactions | None = None,
    ) -> np.ndarray:
        """Predicted value (rating) for each ``(users[i], items[i])`` pair.

        Parameters
        ----------
        users, items
            External ids, same length. Unknown ids get the model's cold fallback.
        history
            Extra interactions revealed at request time (a new user's support ratings). Used for
            this call only.
        """
        return self._pair_scores(users, items, history, self._score_pairs)

    def rank_scores(
        self,
        users: Sequence[Hashable],
        items: Sequence[Hashable],
        history: Interactions | None = None,
    ) -> np.ndarray:
        """The scores :meth:`recommend` ranks by, for each ``(users[i], items[i])`` pair.

        For most models these are the predictions (the default: :meth:`predict`). A model with
        a separate ranking head (the two-tower's retrieval head) returns that head's scores
        here and keeps :meth:`predict` for ratings. Parameters as :meth:`predict`.
        """
        return self.predict(users, items, history)

    def _pair_scores(self, users, items, history, scorer) -> np.ndarray:
        """``scorer(users, items, history)`` after the checks of :meth:`predict`."""
        self._check_fitted()
        users, items = list(users), list(items)
        if len(users) != len(items):
            raise ValueError(
                f"users and items must have the same length ({len(users)} vs {len(items)})"
            )
        if not users:
            return np.zeros(0, dtype=np.float64)
        scores = np.asarray(scorer(users, items, history), dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            raise FloatingPointError(f"{type(self).__name__} produced a non-finite prediction")
        return scores

    def recommend(
        self,
        user: Hashable,
        k: int = 10,
        history: Interactions | None = None,
        filter_seen: bool = True,
        items: Sequence[Hashable] | None = None,
        exposure: int = 0,
        fresh: Collection[Hashable] | None = None,
    ) -> tuple[list[Hashable], np.ndarray]:
        """Top-``k`` items for ``user`` as ``(ids, scores)``, best first, by :meth:`rank_scores`.

        Parameters
        ----------
        user
            External id; an unknown user gets the cold fallback (personalised by ``history`` if
            given).
        k
            Number of items.
        history
            Interactions revealed at request time for this user.
        filter_seen
            Drop items the user interacted with in training or in ``history``.
        items
            Restrict the candidates to these external ids (unknown ones are scored cold).
        exposure
            Exposure floor, a product knob (off by default): at least this many of the ``k``
            slots go to ``fresh`` items, the best of them replacing the lowest others
            (:func:`exposure_floor`). The model's scores are unchanged; report metrics with a
            floor apart from the unboosted ones.
        fresh
            The items the floor is for (new since a cut-off, say); default: the model's
            :meth:`content_only_items` (models that have them).
        """
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if exposure > 0:
            if fresh is None:
                fresh = self.content_only_items()
            pool = len(self.item_map_) if items is None else len(items)
            ranked, scores = self.recommend(user, max(k, pool), history, filter_seen, items)
            return exposure_floor(ranked, scores, k, exposure, fresh)
        if items is None:
            candidates = self.item_map_.ids
            scores = np.asarray(self._score_items(user, history), dtype=np.float64)
        else:
            candidates = list(items)
            scores = self.rank_scores([user] * len(candidates), candidates, history)
        exclude = self.seen_items(user, history) if filter_seen else set()
        return top_candidates(candidates, scores, k, exclude)

    def content_only_items(self) -> list[Hashable]:
        """Items the model scores from their content alone (no collaborative part: folded in
        from their fields, never trained on): the default ``fresh`` items of an exposure
        floor. Models that cannot tell raise ``NotImplementedError``: give ``fresh=``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not know which items are content-only; pass "
            "recommend(..., fresh=[item ids]) for an exposure floor"
        )

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """Items most similar to ``item`` (itself excluded) as ``(ids, scores)``."""
        raise NotImplementedError(f"{type(self).__name__} has no item similarity")

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Fold in new (or more) interactions of users and their profiles without refitting.

        The interactions' items count as seen by their users from now on (``filter_seen``).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support partial_fit_users")

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add new items (from their fields, and interactions if any) without refitting.

        ``interactions`` (of these items or any other) are folded in as by
        :meth:`partial_fit_users`: they count for their users at request time and their items
        are seen by them. A model that does not read item fields keeps an item without
        interactions unknown (each documents its cold fallback).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support partial_fit_items")

    def _remember_interactions(self, interactions: Interactions) -> None:
        """Keep folded-in interactions in ``_extra_history`` (models pool them at request
        time) and mark their items as seen."""
        if not len(interactions):
            return
        previous = getattr(self, "_extra_history", None)
        if previous is None:
            self._extra_history = interactions
        else:
            self._extra_history = Interactions(
                pd.concat(_same_timezone(previous.frame, interactions.frame), ignore_index=True)
            )
        seen = getattr(self, "seen_", None)
        if seen is None:
            seen = self.seen_ = {}
        for user, group in interactions.frame.groupby("user", sort=False):
            seen.setdefault(user, set()).update(group["item"].tolist())

    # ----------------------------------------------------------------- hooks
    @abstractmethod
    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        """Scores for aligned user/item pairs (external ids)."""

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        """Ranking scores (:meth:`rank_scores`) of ``user`` for every item in ``item_map_``
        order. Default: via pairs."""
        ids = self.item_map_.ids
        return self._score_pairs([user] * len(ids), ids, history)

    def seen_items(self, user: Hashable, history: Interactions | None = None) -> set[Hashable]:
        """Items the user interacted with in training or in ``history``."""
        seen: set[Hashable] = set(getattr(self, "seen_", {}).get(user, ()))
        if history is not None and len(history):
            frame = history.frame
            seen.update(frame.loc[frame["user"] == user, "item"].tolist())
        return seen

    def _forget_fit(self, keep: Sequence[str] = ()) -> None:
        """Drop every attribute but what ``__init__`` sets (and ``keep``): whatever an earlier
        ``fit``, ``partial_fit_*`` or ``add_user_text`` left, so that a second ``fit`` equals a
        fresh one."""
        from_init = set(vars(type(self)(**self.get_params(deep=False))))
        for attribute in set(vars(self)) - from_init - set(keep):
            delattr(self, attribute)

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_map_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(dataset) first")

    # ----------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Fitted state as (arrays for safetensors, JSON-serialisable extras)."""
        return {}, {}

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        """Restore what :meth:`_state` returned."""

    def _save_parts(self, folder: Path) -> None:
        """Write the model's parts (e.g. an adapted encoder) as sub-folders of ``folder``."""

    def _load_parts(self, folder: Path) -> None:
        """Restore what :meth:`_save_parts` wrote."""

    def save(self, path: str | Path) -> Path:
        """Write the model to folder ``path`` in the artifact format of
        :mod:`dayzero.core.artifact` (``dayzero.json`` + ``weights.safetensors``, parts in
        sub-folders; no pickle)."""
        self._check_fitted()
        arrays, extras = self._state()
        seen = getattr(self, "seen_", {})
        state = {
            "user_ids": self.user_map_.to_json(),
            "item_ids": self.item_map_.to_json(),
            "seen": [[u, sorted(map(_json_id, v), key=str)] for u, v in _json_items(seen)],
            "extras": extras,
        }
        params = json.loads(json.dumps(self.get_params(deep=False), default=_json_id))
        artifact = Artifact("recommender", self.name, params, state, arrays)
        folder = save_artifact(path, artifact)
        self._save_parts(folder)
        write_card(folder, self.card(), fresh=True)
        return folder

    def card(self) -> ModelCard:
        """The model card (:mod:`dayzero.core.card`): training data, settings chosen on
        validation carves, encoder, intended use and limits. :meth:`save` writes it as
        ``card.json`` and ``card.html``; evaluation results and audits are attached to the
        saved folder later (``dayzero card``)."""
        self._check_fitted()
        params = json.loads(json.dumps(self.get_params(deep=False), default=_json_card))
        data = dict(getattr(self, "training_data_", {}))
        return ModelCard(
            kind="recommender",
            name=self.name,
            params=params,
            training_data=data,
            selection=self._card_selection(),
            encoder=encoder_section(self.get_params(deep=False)),
            intended_use=self.card_intended_use,
            limitations=[*self.card_limitations, *_data_limitations(data)],
        )

    def _card_selection(self) -> dict[str, Any]:
        """Settings the fit chose on validation carves of the training data, for the card."""
        return {}

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save` (any registered class when called on the base)."""
        folder = Path(path)
        artifact = load_artifact(folder, "recommender")
        if artifact.name not in REGISTRY:
            raise ArtifactError(
                f"{folder}: unknown model {artifact.name!r}; register its class "
                f"(@register({artifact.name!r})) before loading; known: {sorted(REGISTRY)}"
            )
        target = REGISTRY[artifact.name]
        if cls is not Recommender and not issubclass(target, cls):
            raise TypeError(f"{folder} holds a {target.__name__}, not a {cls.__name__}")
        state = artifact.state
        model = target(**_configs_back(target, artifact.params))
        model.user_map_ = IdMap(state["user_ids"])
        model.item_map_ = IdMap(state["item_ids"])
        model.seen_ = {u: set(v) for u, v in state["seen"]}
        model._set_state(artifact.arrays, state["extras"])
        model._load_parts(folder)
        if (folder / CARD_JSON).is_file():
            model.training_data_ = read_card(folder).training_data
        return model


def _json_card(value: Any) -> Any:
    converted = _json_id(value)
    return str(converted) if converted is value else converted


def _data_limitations(data: dict[str, Any]) -> list[str]:
    """What the training data implies for the card's limitations."""
    if not data:
        return []
    out = []
    if not data.get("item_fields"):
        out.append(
            "no item fields were given: a new item cannot be ranked from its content until it "
            "has interactions"
        )
    if not data.get("user_fields"):
        out.append("no user fields were given: a new user is ranked from revealed history only")
    protected = sensitive_columns(data.get("user_fields") or {})
    if protected:
        out.append(
            f"the training data's user fields {protected} name protected attributes: where "
            "the model reads user fields, audit exposure and quality per group before serving"
        )
    return out


def _json_id(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_dict(value)
    if isinstance(value, set):
        return sorted(value, key=str)
    return value


def _configs_back(target: type[Recommender], params: dict[str, Any]) -> dict[str, Any]:
    """Saved params with config dataclasses rebuilt (a dict of all their fields was one)."""
    params = dict(params)
    for name, default in target.config_params.items():
        value = params.get(name)
        names = {f.name for f in dataclasses.fields(default)}
        if isinstance(value, dict) and set(value) == names:
            params[name] = type(default)(**value)
    return params


def _json_items(mapping: dict) -> list[tuple[Any, Any]]:
    return [(_json_id(k), v) for k, v in mapping.items()]


def _same_timezone(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two frames with comparable timestamps: timezone-aware ones in different zones are
    both converted to UTC (order unchanged); naive mixed with aware is refused."""
    if "timestamp" not in old.columns or "timestamp" not in new.columns:
        return old, new
    a, b = old["timestamp"], new["timestamp"]
    if not (pd.api.types.is_datetime64_any_dtype(a) and pd.api.types.is_datetime64_any_dtype(b)):
        return old, new
    tz_a, tz_b = getattr(a.dt, "tz", None), getattr(b.dt, "tz", None)
    if (tz_a is None) != (tz_b is None):
        raise ValueError(
            "interactions `timestamp`: these are timezone-"
            f"{'naive' if tz_b is None else 'aware'} but the ones folded in before are timezone-"
            f"{'naive' if tz_a is None else 'aware'}; give every timestamp with a timezone "
            "(e.g. frame['timestamp'].dt.tz_localize('UTC')) or none"
        )
    if tz_a is not None and str(tz_a) != str(tz_b):
        old = old.assign(timestamp=a.dt.tz_convert("UTC"))
        new = new.assign(timestamp=b.dt.tz_convert("UTC"))
    return old, new


def history_to_json(interactions: Interactions) -> dict[str, Any]:
    """Interactions (folded-in history) as JSON: ids and values as they are, timestamps as ISO
    8601 text (naive, timezone-aware or python ``datetime`` objects alike).

    Returns
    -------
    dict
        ``{"columns": {name: values}, "iso_datetimes": {name: timezone or None},
        "iso_objects": [names]}``; read back by :func:`history_from_json`.
    """
    columns: dict[str, list] = {}
    iso_datetimes: dict[str, str | None] = {}
    iso_objects: list[str] = []
    for name in interactions.frame.columns:
        values = interactions.frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            tz = getattr(values.dt, "tz", None)
            iso_datetimes[name] = None if tz is None else str(tz)
            columns[name] = [None if pd.isna(v) else v.isoformat() for v in values]
        elif values.dtype == object and any(isinstance(v, dt.date) for v in values):
            iso_objects.append(name)
            columns[name] = [
                v.isoformat() if isinstance(v, dt.date) else None if pd.isna(v) else _json_id(v)
                for v in values
            ]
        else:
            columns[name] = [_json_id(v) for v in values.tolist()]
    return {"columns": columns, "iso_datetimes": iso_datetimes, "iso_objects": iso_objects}


def history_from_json(data: dict[str, Any]) -> Interactions:
    """Inverse of :func:`history_to_json`; also reads the formats saved before it (a plain
    column dict, and ``"datetimes"`` columns as int64 nanoseconds)."""
    if "columns" not in data:
        return Interactions(pd.DataFrame(data))
    frame = pd.DataFrame(data["columns"])
    for name in data.get("datetimes", []):
        frame[name] = pd.to_datetime(frame[name], unit="ns")
    for name, tz in data.get("iso_datetimes", {}).items():
        parsed = pd.to_datetime(frame[name], format="ISO8601", utc=tz is not None)
        frame[name] = parsed if tz is None else parsed.dt.tz_convert(tz)
    for name in data.get("iso_objects", []):
        frame[name] = pd.Series(
            [pd.Timestamp(v) if isinstance(v, str) else v for v in frame[name]], dtype=object
        )
    return Interactions(frame)


def top_candidates(
    candidates: Sequence[Hashable], scores: np.ndarray, k: int, exclude: set[Hashable]
) -> tuple[list[Hashable], np.ndarray]:
    """The ``k`` best of ``candidates`` not in ``exclude`` as ``(ids, scores)``, best first (ties
    keep the candidates' order)."""
    if exclude:
        keep = np.array([c not in exclude for c in candidates], dtype=bool)
        candidates = [c for c, m in zip(candidates, keep, strict=True) if m]
        scores = scores[keep]
    order = np.argsort(-scores, kind="stable")[:k]
    return [candidates[i] for i in order], scores[order]


def exposure_floor(
    ranked: Sequence[Hashable],
    scores: np.ndarray,
    k: int,
    floor: int,
    fresh: Callable[[Hashable], bool] | Collection[Hashable],
) -> tuple[list[Hashable], np.ndarray]:
    """The top ``k`` of a ranked list with at least ``floor`` slots for *fresh* items.

    A product knob, not a model: when fewer than ``min(floor, k)`` of the first ``k`` items
    are fresh, the best fresh items from further down replace the lowest non-fresh ones. The
    result stays ordered by score (promoted items score below every item they displaced, so
    they take the last slots); without enough fresh items in ``ranked`` the floor is met as far
    as it can be. ``floor=0`` returns the plain top ``k``.

    Parameters
    ----------
    ranked, scores
        Every candidate, best first, and their scores (what ``recommend`` returns for a large
        ``k``).
    k
        Length of the list shown.
    floor
        Slots reserved for fresh items.
    fresh
        Which items are fresh (new since a cut-off, or without an ID embedding): a set of ids
        or a predicate.

    Examples
    --------
    >>> ids, _ = exposure_floor(["a", "b", "c", "n"], np.array([4.0, 3.0, 2.0, 1.0]), 3, 1, {"n"})
    >>> ids
    ['a', 'b', 'n']
    """
    check = fresh if callable(fresh) else set(fresh).__contains__
    ranked, scores = list(ranked), np.asarray(scores, dtype=np.float64)
    if floor < 0:
        raise ValueError(f"floor must be >= 0, got {floor}")
    top = list(range(min(k, len(ranked))))
    missing = min(floor, k) - sum(bool(check(ranked[n])) for n in top)
    if missing > 0:
        extra = [n for n in range(len(top), len(ranked)) if check(ranked[n])][:missing]
        drop = [n for n in reversed(top) if not check(ranked[n])][: len(extra)]
        top = sorted(set(top) - set(drop) | set(extra))
    return [ranked[n] for n in top], scores[top]


def seen_by_user(interactions: Interactions) -> dict[Hashable, set[Hashable]]:
    """User -> set of items in ``interactions`` (what ``filter_seen`` removes)."""
    frame = interactions.frame
    return {u: set(g.tolist()) for u, g in frame.groupby("user", sort=False)["item"]}


RATING_LEVELS = 11  # at most this many distinct values on a regular grid reads as a rating scale


def positive_threshold(values: np.ndarray, setting: float | str | None = "auto") -> float | None:
    """The value from which an interaction counts as a positive (an engagement).

    Parameters
    ----------
    values : ndarray
        The training interactions' values.
    setting : float, "auto" or None
        A number is used as it is; ``None`` makes every interaction a positive. ``"auto"``
        reads the values: one distinct value (implicit feedback) or values off a rating grid
        (play counts, hours) -> ``None``, every interaction is an engagement; two values (like /
        dislike, 0 / 1) -> the larger; a rating scale (3 to 11 levels on a regular grid, such as
        1-5 stars or half stars) -> the top quarter of the scale, ``min + 0.75 (max - min)``
        (4 on 1-5 stars, the usual "rating >= 4" relevance).

    Returns
    -------
    float or None
        The threshold (``value >= threshold`` is a positive), or ``None`` for all.
    """
    if setting is None or (isinstance(setting, int | float) and not isinstance(setting, bool)):
        return None if setting is None else float(setting)
    if setting != "auto":
        raise ValueError(
            f"positive_threshold must be a number, None (every interaction) or 'auto'; "
            f"got {setting!r}"
        )
    levels = np.unique(np.asarray(values, dtype=np.float64))
    if len(levels) <= 1:
        return None
    if len(levels) == 2:
        return float(levels[1])
    if len(levels) > RATING_LEVELS:
        return None
    steps = np.diff(levels)
    step = float(steps.min())
    on_grid = np.allclose(np.round((levels - levels[0]) / step), (levels - levels[0]) / step)
    if not on_grid:
        return None
    low, high = float(levels[0]), float(levels[-1])
    cut = low + 0.75 * (high - low)
    return float(levels[np.searchsorted(levels, cut - 1e-9)])
