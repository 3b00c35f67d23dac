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

from dayzero.core.checks import check_k
from dayzero.core.progress import progress_bar
from dayzero.core.schema import ITEM, USER, Dataset, Interactions
from dayzero.evaluate import metrics
from dayzero.recommend.contract import Recommender

Scorer = Callable[[Sequence[Hashable], Sequence[Hashable]], np.ndarray]


@dataclass(frozen=True)
class RankingTask:
    """One test user: the items revealed (``history``, time order) and the items to find.

    Attributes
    ----------
    user
        The user's id.
    history
        Items the user interacted with before the ones to find, in time order; they are never
        candidates.
    relevant
        The items to find.
    values
        The revealed values (ratings) of ``history``, aligned with it; ``None``: implicit
        feedback (1.0 each).
    known_user
        ``True`` when the model was trained on this user's interactions (a warm user): a
        task-aware scorer scores the user as itself, and ``history`` (the training items) only
        says what is not a candidate. ``False``: the user is described by ``history`` alone.
    """

    user: Hashable
    history: tuple[Hashable, ...]
    relevant: frozenset
    values: tuple[float, ...] | None = None
    known_user: bool = False


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


def history_interactions(
    user: Hashable, items: Sequence[Hashable], values: Sequence[float] | None = None
) -> Interactions:
    """A history list as :class:`Interactions` of ``user``: ``values`` aligned with ``items``
    (ratings), or implicit (1.0 each) when ``None``."""
    items = list(items)
    if values is None:
        values = [1.0] * len(items)
    elif len(values) != len(items):
        raise ValueError(f"history has {len(items)} items but {len(values)} values")
    frame = pd.DataFrame({USER: [user] * len(items), ITEM: items, "value": list(values)})
    return Interactions(frame)


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


def _cutoffs(k: int | Sequence[int]) -> tuple[int, ...]:
    """``k`` as a tuple of distinct cut-offs in the order given (one int: a 1-tuple)."""
    if isinstance(k, int | np.integer) and not isinstance(k, bool):
        return (check_k(k),)
    cutoffs = tuple(dict.fromkeys(check_k(c) for c in k))
    if not cutoffs:
        raise ValueError("k is empty: give a cut-off (e.g. k=20) or several (k=(10, 20))")
    return cutoffs


def _task_scores(scorer: Scorer, task: RankingTask, union: list[Hashable]) -> np.ndarray:
    """One score per candidate of ``union``: ``scorer.score_task(task, union)`` when the scorer
    reads whole tasks (user, revealed values), else ``scorer(history, union)``."""
    score_task = getattr(scorer, "score_task", None)
    if score_task is not None:
        return np.asarray(score_task(task, union), dtype=np.float64)
    return np.asarray(scorer(list(task.history), union), dtype=np.float64)


def evaluate_ranking(
    scorer: Scorer,
    tasks: Sequence[RankingTask],
    candidate_sets: Mapping[str, Sequence[Hashable]],
    k: int | Sequence[int] = 20,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
    progress: bool = False,
) -> dict[str, RankingResult]:
    """Recall@k and NDCG@k of ``scorer`` on ``tasks`` for each candidate set.

    Parameters
    ----------
    scorer
        ``scorer(history, candidates) -> scores`` (higher is better). A scorer with a
        ``score_task(task, candidates)`` method (:func:`recommender_scorer`'s) is given the
        whole :class:`RankingTask` instead: the user, whether the model knows it, and the
        revealed values.
    tasks
        Users with their history and relevant items.
    candidate_sets
        Name -> candidate ids. The union is scored once per task. For each set, history items
        are removed and the relevant items are those in the set; a user none of whose relevant
        items is in the set is left out of that set (counted in ``users``).
    k
        Cut-off, or several (``(10, 20)``): the candidates are ranked once and every cut-off
        reads the same list (a top-10 is the first half of the top-20).
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
    cutoffs = _cutoffs(k)
    deepest = max(cutoffs)
    union: list[Hashable] = list(dict.fromkeys(i for c in candidate_sets.values() for i in c))
    position = {item: n for n, item in enumerate(union)}
    sets = {
        name: np.array([position[i] for i in c], dtype=np.int64)
        for name, c in candidate_sets.items()
    }
    members = {name: set(c) for name, c in candidate_sets.items()}
    rng = np.random.default_rng(random_state)
    per_user: dict[str, dict[str, list[float]]] = {n: {} for n in candidate_sets}
    seconds = dict.fromkeys(candidate_sets, 0.0)
    allowed = np.ones(len(union), dtype=bool)
    for task in progress_bar(tasks, desc="evaluate ranking", enabled=progress):
        start = time.perf_counter()
        scores = _task_scores(scorer, task, union)
        if scores.shape != (len(union),):
            raise ValueError(
                f"the scorer returned {scores.shape} scores for {len(union)} candidates"
            )
        share = (time.perf_counter() - start) / len(sets)
        seen = [position[i] for i in set(task.history) if i in position]
        allowed[seen] = False
        for name, index in sets.items():
            relevant = task.relevant & members[name]
            if not relevant:
                continue
            begin = time.perf_counter()
            kept = index[allowed[index]]
            if not np.all(np.isfinite(scores[kept])):
                raise FloatingPointError("the scorer returned a non-finite score")
            # The same draw and order as top_k over the kept candidates, without building them.
            tiebreak = rng.permutation(len(kept))
            ranked = [union[i] for i in kept[np.lexsort((tiebreak, -scores[kept]))[:deepest]]]
            values = per_user[name]
            for cut in cutoffs:
                values.setdefault(f"recall@{cut}", []).append(
                    metrics.recall_at_k(ranked, relevant, cut)
                )
                values.setdefault(f"ndcg@{cut}", []).append(
                    metrics.ndcg_at_k_list(ranked, relevant, cut)
                )
                values.setdefault(f"_chance@{cut}", []).append(
                    expected_recall_at_k(len(relevant), len(kept), cut)
                )
            seconds[name] += share + time.perf_counter() - begin
        allowed[seen] = True
    results = {}
    for name, values in per_user.items():
        chances = {cut: values.pop(f"_chance@{cut}", []) for cut in cutoffs}
        chance = chances[cutoffs[0]]
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
            chance={f"recall@{cut}": float(np.mean(c)) if c else 0.0 for cut, c in chances.items()},
            seconds=seconds[name],
        )
    return results


class RecommenderScorer:
    """A fitted :class:`Recommender` as a scorer (see :func:`recommender_scorer`).

    ``scorer(history, candidates)`` scores an anonymous user described by ``history``
    (implicit interactions of the placeholder user); ``scorer.score_task(task, candidates)``
    reads the whole task (:func:`evaluate_ranking` prefers it): a known user is scored as
    itself, a user the model was not trained on under its own id (so a profile folded in
    for it is used) with the revealed values, a training user of the model who is tested
    on their history alone (the Steam protocols) as the placeholder, as ``__call__`` does.

    Every item the model knows is scored in one ``_score_items`` call (the contract's
    all-items hook: the scores :meth:`Recommender.recommend` ranks by), read at the
    candidates' positions; candidates it does not know get its cold fallback through
    :meth:`Recommender.rank_scores` (a ranking head's scores, else the predictions).
    """

    def __init__(self, model: Recommender, user: Hashable = "__query__") -> None:
        if user in getattr(model, "user_map_", ()):
            raise ValueError(f"placeholder user {user!r} is a real user of the model; pick another")
        self.model = model
        self.user = user
        self._positions: tuple[list[Hashable], int, np.ndarray] | None = None

    def __call__(self, history: Sequence[Hashable], candidates: Sequence[Hashable]) -> np.ndarray:
        return self._score(self.user, history_interactions(self.user, history), candidates)

    def score_task(self, task: RankingTask, candidates: Sequence[Hashable]) -> np.ndarray:
        """Scores of ``candidates`` for ``task`` (see the class docstring)."""
        if task.known_user:
            return self._score(task.user, None, candidates)
        trained = task.user in getattr(self.model, "seen_", {})
        user = self.user if trained else task.user
        events = history_interactions(user, task.history, task.values)
        return self._score(user, events, candidates)

    def _candidate_positions(self, candidates: Sequence[Hashable]) -> np.ndarray:
        """Positions of the candidates in the model's item map (-1: unknown), cached: a
        protocol passes the same candidate list for every task."""
        size = len(self.model.item_map_)
        cached = self._positions
        if cached is not None and cached[1] == size and cached[0] == candidates:
            return cached[2]
        positions = self.model.item_map_.to_internal(list(candidates), missing=-1)
        self._positions = (list(candidates), size, positions)
        return positions

    def _score(
        self, user: Hashable, events: Interactions | None, candidates: Sequence[Hashable]
    ) -> np.ndarray:
        model = self.model
        if type(model).recommend is not Recommender.recommend:
            return self._score_by_recommend(user, events, candidates)
        positions = self._candidate_positions(candidates)
        known = positions >= 0
        out = np.empty(len(candidates), dtype=np.float64)
        if known.any():
            every = np.asarray(model._score_items(user, events), dtype=np.float64)
            out[known] = every[positions[known]]
        if not known.all():
            cold = [candidates[n] for n in np.flatnonzero(~known)]
            out[~known] = self._cold_scores(user, cold, events)
        return out

    def _cold_scores(
        self, user: Hashable, items: list[Hashable], events: Interactions | None
    ) -> np.ndarray:
        """What ``recommend(items=...)`` ranks unknown items by: ``rank_scores`` where the
        model has it (a ranking head), else ``predict``."""
        rank = getattr(self.model, "rank_scores", None) or self.model.predict
        return np.asarray(rank([user] * len(items), items, history=events), dtype=np.float64)

    def _score_by_recommend(
        self, user: Hashable, events: Interactions | None, candidates: Sequence[Hashable]
    ) -> np.ndarray:
        """The public path, for a model that overrides :meth:`Recommender.recommend`."""
        model = self.model
        ids, values = model.recommend(
            user, k=max(1, len(model.item_map_)), history=events, filter_seen=False
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
            out[unknown] = self._cold_scores(user, cold, events)
        return out


def recommender_scorer(model: Recommender, user: Hashable = "__query__") -> RecommenderScorer:
    """Wrap a fitted :class:`Recommender` as a scorer.

    Called as ``scorer(history, candidates)`` the player is unknown to it and described only by
    the history, passed as implicit interactions (value 1.0) of a placeholder ``user``; through
    ``scorer.score_task(task, candidates)`` (what :func:`evaluate_ranking` calls) a task of a
    known user is scored as that user and a new user's revealed ratings keep their values
    (:class:`RecommenderScorer`).

    Known candidates are scored in one call over the model's catalogue; candidates the model
    does not know get its cold fallback through :meth:`Recommender.rank_scores`.
    """
    return RecommenderScorer(model, user)


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
    k: int | Sequence[int] = 20,
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
        Metric cut-off, or several (``(10, 20)``: one ranking, read at each).
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
