"""Top-K evaluation of a history-based recommender on ranking tasks, with bootstrap intervals.

A *scorer* maps a history (items in time order) and a candidate list to one score per candidate;
any recommender fits behind one (:func:`recommender_scorer` wraps the
:class:`~dayzero.recommend.contract.Recommender` contract, sequence models pass their own). For each
:class:`RankingTask` the candidates are scored once, the history
items are removed, and each named candidate set is ranked on its own (for example the new games
only, and every game): Recall@K and NDCG@K per user, averaged over users, each with a percentile
bootstrap interval over users. Ties are broken by a seeded random order, never by catalogue
position, so a model that gives every candidate the same score measures chance.

A protocol (the Steam protocols of :mod:`dayzero.evaluate.protocols.steam`, or any split of
yours) plugs in through :class:`RankingProtocol`: ``ranking_settings(catalogue, ks)`` yields the
named settings to evaluate, each a list of tasks and named candidate sets, and
``validation_split()`` the same protocol carved out of the training data. Settings (a fusion
weight, say) are chosen by :func:`select_setting` on that validation split: the test players are
never looked at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dayzero.core.checks import check_k
from dayzero.core.schema import ITEM, USER, Dataset, Interactions
from dayzero.evaluate import metrics
from dayzero.recommend.contract import Recommender

Scorer = Callable[[Sequence[Hashable], Sequence[Hashable]], np.ndarray]


@dataclass(frozen=True)
class RankingTask:
    """One test user: the items revealed (``history``, time order) and the items to find."""

    user: Hashable
    history: tuple[Hashable, ...]
    relevant: frozenset


@dataclass(frozen=True)
class RankingSetting:
    """One named setting of a protocol: its tasks and the candidate sets to rank them among."""

    name: str
    tasks: list[RankingTask]
    candidates: dict[str, list[Hashable]]


class RankingProtocol(Protocol):
    """What :func:`evaluate_protocol` and :func:`select_setting` need of a split."""

    train: Dataset

    def ranking_settings(
        self, catalogue: Sequence[Hashable], ks: Sequence[int]
    ) -> list[RankingSetting]: ...

    def validation_split(self) -> RankingProtocol: ...


def history_interactions(user: Hashable, items: Sequence[Hashable]) -> Interactions:
    """A history list as implicit :class:`Interactions` of ``user`` (value 1.0)."""
    items = list(items)
    return Interactions(pd.DataFrame({USER: [user] * len(items), ITEM: items, "value": 1.0}))


def catalogue(dataset: Dataset) -> list[Hashable]:
    """Every item a protocol ranks: items with interactions, then items known only by fields."""
    items: list[Hashable] = list(pd.unique(dataset.interactions.frame[ITEM]))
    if dataset.items is not None:
        present = set(items)
        items += [i for i in dataset.items.ids if i not in present]
    return items


@dataclass
class RankingResult:
    """Per-user means with bootstrap intervals for one candidate set."""

    candidates: str
    n_candidates: int
    users: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out


def top_k(
    scores: np.ndarray, candidates: Sequence[Hashable], k: int, rng: np.random.Generator
) -> list[Hashable]:
    """The ``k`` best candidates, ties broken by a random permutation drawn from ``rng``.

    Examples
    --------
    >>> top_k(np.array([0.1, 0.9, 0.5]), ["a", "b", "c"], 2, np.random.default_rng(0))
    ['b', 'c']
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(candidates),):
        raise ValueError(
            f"the scorer returned {scores.shape} scores for {len(candidates)} candidates"
        )
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError("the scorer returned a non-finite score")
    tiebreak = rng.permutation(len(candidates))
    order = np.lexsort((tiebreak, -scores))[:k]
    return [candidates[i] for i in order]


def expected_recall_at_k(n_relevant: int, n_candidates: int, k: int) -> float:
    """Recall@k of a uniformly random ranking: ``min(k, n) / n`` for ``n`` candidates."""
    if n_candidates <= 0 or n_relevant <= 0:
        return 0.0
    return min(k, n_candidates) / n_candidates


def evaluate_ranking(
    scorer: Scorer,
    tasks: Sequence[RankingTask],
    candidate_sets: Mapping[str, Sequence[Hashable]],
    k: int = 20,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
    progress: bool = False,
) -> dict[str, RankingResult]:
    """Recall@k and NDCG@k of ``scorer`` on ``tasks`` for each candidate set.

    Parameters
    ----------
    scorer
        ``scorer(history, candidates) -> scores`` (higher is better).
    tasks
        Users with their history and relevant items.
    candidate_sets
        Name -> candidate ids. The union is scored once per task. For each set, history items
        are removed and the relevant items are those in the set; a user none of whose relevant
        items is in the set is left out of that set (counted in ``users``).
    k
        Cut-off.
    n_resamples, confidence, random_state
        Bootstrap over users; ``random_state`` also seeds the tie-breaking.

    Returns
    -------
    dict
        Candidate-set name -> :class:`RankingResult`, with the chance level of Recall@k.
    """
    if not tasks:
        raise ValueError("no ranking tasks to evaluate: the protocol left no test user")
    if not candidate_sets:
        raise ValueError("candidate_sets is empty: name at least one list of candidates")
    check_k(k)
    union: list[Hashable] = list(dict.fromkeys(i for c in candidate_sets.values() for i in c))
    position = {item: n for n, item in enumerate(union)}
    sets = {name: np.array([position[i] for i in c]) for name, c in candidate_sets.items()}
    members = {name: set(c) for name, c in candidate_sets.items()}
    rng = np.random.default_rng(random_state)
    per_user: dict[str, dict[str, list[float]]] = {n: {} for n in candidate_sets}
    seconds = dict.fromkeys(candidate_sets, 0.0)
    for task in tqdm(tasks, desc="ranking", disable=not progress, leave=False):
        start = time.perf_counter()
        scores = np.asarray(scorer(list(task.history), union), dtype=np.float64)
        share = (time.perf_counter() - start) / len(sets)
        seen = set(task.history)
        for name, index in sets.items():
            relevant = task.relevant & members[name]
            if not relevant:
                continue
            begin = time.perf_counter()
            keep = np.array([union[i] not in seen for i in index], dtype=bool)
            ids = [union[i] for i in index[keep]]
            ranked = top_k(scores[index[keep]], ids, k, rng)
            values = per_user[name]
            values.setdefault(f"recall@{k}", []).append(metrics.recall_at_k(ranked, relevant, k))
            values.setdefault(f"ndcg@{k}", []).append(metrics.ndcg_at_k_list(ranked, relevant, k))
            values.setdefault("_chance", []).append(
                expected_recall_at_k(len(relevant), len(ids), k)
            )
            seconds[name] += share + time.perf_counter() - begin
    results = {}
    for name, values in per_user.items():
        chance = values.pop("_chance", [])
        means, ci = {}, {}
        for metric, v in values.items():
            mean, low, high = metrics.mean_ci(
                np.asarray(v),
                confidence=confidence,
                n_resamples=n_resamples,
                random_state=random_state,
            )
            means[metric], ci[metric] = float(mean), (float(low), float(high))
        results[name] = RankingResult(
            candidates=name,
            n_candidates=len(candidate_sets[name]),
            users=len(chance),
            metrics=means,
            ci=ci,
            chance={f"recall@{k}": float(np.mean(chance)) if chance else 0.0},
            seconds=seconds[name],
        )
    return results


def recommender_scorer(model: Recommender, user: Hashable = "__query__") -> Scorer:
    """Wrap a fitted :class:`Recommender`: the player is unknown to it and described only by the
    history, passed as implicit interactions (value 1.0) of a placeholder ``user``.

    Known candidates are scored in one call over the model's catalogue; candidates the model
    does not know get its cold fallback through :meth:`Recommender.predict`.
    """
    if user in getattr(model, "user_map_", ()):
        raise ValueError(f"placeholder user {user!r} is a real user of the model; pick another")

    def score(history: Sequence[Hashable], candidates: Sequence[Hashable]) -> np.ndarray:
        events = history_interactions(user, history)
        known_ids = model.item_map_.ids
        ids, values = model.recommend(
            user, k=max(1, len(known_ids)), history=events, filter_seen=False
        )
        by_id = dict(zip(ids, values, strict=True))
        out = np.empty(len(candidates), dtype=np.float64)
        unknown = []
        for n, item in enumerate(candidates):
            value = by_id.get(item)
            if value is None:
                unknown.append(n)
            else:
                out[n] = value
        if unknown:
            cold = [candidates[n] for n in unknown]
            out[unknown] = model.predict([user] * len(cold), cold, history=events)
        return out

    return score


def sequence_scorer(model: Any) -> Scorer:
    """Wrap a fitted sequence model with ``recommend_sequence(history, k, exclude, items)``
    (:class:`~dayzero.recommend.sequential.SequentialRecommender`): the history is the player's
    whole description, in order."""

    def score(history: Sequence[Hashable], candidates: Sequence[Hashable]) -> np.ndarray:
        # One pass over the model's catalogue (fast), then the candidates it does not know.
        ids, values = model.recommend_sequence(list(history), k=len(model.item_map_), exclude=())
        by_id = dict(zip(ids, values, strict=True))
        missing = [c for c in candidates if c not in by_id]
        if missing:
            ids, values = model.recommend_sequence(
                list(history), k=len(missing), exclude=(), items=missing
            )
            by_id.update(zip(ids, values, strict=True))
        return np.array([by_id[c] for c in candidates], dtype=np.float64)

    return score


def subsample(
    tasks: Sequence[RankingTask], max_users: int | None, seed: int = 0
) -> list[RankingTask]:
    """At most ``max_users`` tasks drawn without replacement (seeded), in their original order."""
    if max_users is None or len(tasks) <= max_users:
        return list(tasks)
    keep = np.sort(np.random.default_rng(seed).choice(len(tasks), size=max_users, replace=False))
    return [tasks[i] for i in keep]


def evaluate_protocol(
    scorer: Scorer,
    split: RankingProtocol,
    catalogue: Sequence[Hashable],
    k: int = 20,
    ks: Sequence[int] = (1, 3, 5),
    max_users: int | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every setting of a protocol as rows (``setting``, ``candidates`` + result fields).

    Parameters
    ----------
    scorer
        ``scorer(history, candidates) -> scores``.
    split
        A :class:`RankingProtocol`, e.g. a Steam
        :class:`~dayzero.evaluate.protocols.steam.NewGamesSplit` (new games ranked among the
        new games and among every game) or
        :class:`~dayzero.evaluate.protocols.steam.NewPlayersSplit` (one setting per ``k`` in
        ``ks``: the first ``k`` actions revealed, the rest ranked among ``catalogue``).
    catalogue
        Every item that can be recommended (the split may add its held-out items).
    k
        Metric cut-off.
    ks
        Revealed-history sizes, for protocols with such settings.
    max_users
        Evaluate at most this many users per setting (seeded draw); ``None``: all.
    n_resamples, seed
        Bootstrap resamples; seed of the draw, the bootstrap and the tie-breaking.
    """
    if not callable(getattr(split, "ranking_settings", None)):
        raise TypeError(
            f"split must be a ranking protocol (a NewGamesSplit, a NewPlayersSplit, or any object "
            f"with ranking_settings(catalogue, ks)), not {type(split).__name__}"
        )
    rows: list[dict[str, Any]] = []
    for setting in split.ranking_settings(catalogue, ks):
        tasks = subsample(setting.tasks, max_users, seed)
        if not tasks:
            continue
        results = evaluate_ranking(
            scorer, tasks, setting.candidates, k=k, n_resamples=n_resamples, random_state=seed
        )
        for name, result in results.items():
            label = setting.name if len(results) == 1 else f"{setting.name} among {name}"
            rows.append({"setting": label, **result.to_dict()})
    return rows


@dataclass
class Selection:
    """A setting chosen on a validation split: the value, and the criterion of every value."""

    chosen: Any
    scores: dict[Any, float]
    criterion: str
    users: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "scores": {str(k): v for k, v in self.scores.items()},
            "criterion": self.criterion,
            "users": self.users,
        }


def select_setting(
    fit: Callable[[Any, Any], Scorer],
    validation: Any,
    grid: Sequence[Any],
    k: int = 20,
    ks: Sequence[int] = (1, 3, 5),
    max_users: int | None = 400,
    n_resamples: int = 200,
    seed: int = 0,
) -> Selection:
    """Choose a setting on a validation split built from training data only.

    Parameters
    ----------
    fit
        ``fit(value, validation) -> scorer``: fit a model with setting ``value`` on
        ``validation.train`` (folding in what :meth:`validation.fold_in` gives) and return its
        scorer. It is only ever handed the validation split.
    validation
        ``split.validation_split()`` of a protocol split: the same protocol carved out of
        ``split.train`` (an earlier cut-off, or a slice of the training players). Never the
        test split.
    grid
        Candidate values, in order of preference: ties go to the earliest.
    k, ks, max_users, n_resamples, seed
        As in :func:`evaluate_protocol` (at most ``max_users`` validation users per setting).

    Returns
    -------
    Selection
        The value with the highest mean Recall@k over the protocol's settings, and every
        value's mean.
    """
    if not len(grid):
        raise ValueError("select_setting: grid is empty; give at least one value to try")
    games = catalogue(validation.train)
    scores: dict[Any, float] = {}
    users = 0
    for value in grid:
        rows = evaluate_protocol(
            fit(value, validation),
            validation,
            games,
            k=k,
            ks=ks,
            max_users=max_users,
            n_resamples=n_resamples,
            seed=seed,
        )
        scores[value] = float(np.mean([row["metrics"][f"recall@{k}"] for row in rows]))
        users = max(row["users"] for row in rows)
    best = max(scores.values())
    chosen = next(value for value in grid if scores[value] == best)
    return Selection(chosen, scores, f"mean recall@{k} over the settings", users)
