"""Steam cold-start protocols: newly released games and new players.

Both protocols work on implicit feedback: :func:`steam_implicit` keeps the positive
("recommend") reviews of games that have metadata, one row per (player, game). Negative verdicts
are never targets.

Time order
----------
McAuley's review dates lack the year for reviews posted in the crawl year (``timestamp`` NaT);
every dated review is on or before 2015-12-31, so an undated review is later than every dated
one. :func:`time_order` therefore sorts by timestamp with NaT last; ties (the same day, or two
undated reviews) keep the order of the rows in the frame, so the order is deterministic.

Split time (new games)
----------------------
The *cut-off* is the release date of the earliest held-out game (midnight of that day). The
new-games protocol pretends to stand at the cut-off: everything a model or a statistic is fit
on, and everything a test player reveals, was known then.

* An event is placed in time by its ``timestamp``; an undated event (NaT) is later than every
  dated event and than the cut-off, so it is never "before" anything.
* Training interactions are the interactions with old games dated strictly before the cut-off.
* The *split time of a test player* is the earlier of the cut-off and the timestamp of the
  player's earliest interaction with a held-out game (early-access games are reviewed before
  their release date). The player's history is their training interactions dated strictly
  before it: nothing on the same day (day resolution cannot order them) and nothing later.
* The games known at the split time are the games released before the cut-off and the undated
  ones; the training dataset's item table holds only them, so a vocabulary, an IDF or any other
  text statistic fit on it has never seen a held-out game. Held-out games are folded in after
  the fit (:meth:`NewGamesSplit.fold_in`), through the fitted statistics.
* Interactions without a ``timestamp`` column (steam-200k; its file order is by playtime, not
  time) cannot be placed in time: :func:`new_games_split` refuses them unless
  ``allow_untimed=True``, which keeps every training interaction and the whole history (the
  result is then optimistic, and ``summary()["timed"]`` is ``False``).

Protocols
---------
* :func:`new_games_split` (deterministic): games with interactions, sorted by release date, the
  latest ``fraction`` held out entirely (every game released on or after the cut-off date);
  every interaction with one of them is test, none is in training. Games without a release date
  stay in training.
* :func:`new_players_split` (seeded): a ``fraction`` of the players with at least
  ``min_interactions`` interactions are held out entirely; each reveals its first ``k``
  interactions in time order, and the rest is the query.

Model selection
---------------
``split.validation_split()`` builds the same protocol again from ``split.train`` alone (an
earlier cut-off among the old games, or a slice of the training players): settings are chosen
on it (:func:`dayzero.evaluate.ranking.select_setting`), never on the test players.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.schema import ITEM, TIMESTAMP, USER, Dataset, Entities, Interactions
from dayzero.core.templates import Template
from dayzero.evaluate.ranking import RankingSetting, RankingTask

#: The game text view: title + genres + tags + specs + developer.
GAME_TEMPLATE = Template(["title", "genres", "tags", "specs", "developer"])
DEFAULT_KS = (1, 3, 5)


def game_texts(games: Entities, template: Template = GAME_TEMPLATE) -> dict[Hashable, str]:
    """Game id -> text (``"Title: ... | Genres: ... | Tags: ... | Specs: ... | Developer: ..."``).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"title": ["Portal"], "genres": [["Puzzle"]], "tags": [[]],
    ...                       "specs": [[]], "developer": ["Valve"]}, index=[400])
    >>> game_texts(Entities(frame, {"title": "text"}))[400]
    'Title: Portal | Genres: Puzzle | Developer: Valve'
    """
    return template.render_entities(games)


# --- data -----------------------------------------------------------------------------------------


@dataclass
class ImplicitSteam:
    """Positive interactions joined to game metadata, and how much of the source survived."""

    dataset: Dataset
    report: dict[str, Any]


def time_order(frame: pd.DataFrame) -> np.ndarray:
    """Row positions in time order: by ``timestamp``, NaT last, ties in frame order.

    A frame without a ``timestamp`` column keeps its row order.
    """
    if TIMESTAMP not in frame.columns:
        return np.arange(len(frame))
    stamps = pd.to_datetime(frame[TIMESTAMP]) if len(frame) else frame[TIMESTAMP]
    key = pd.Series(stamps.to_numpy(), index=np.arange(len(frame)))
    return key.sort_values(kind="stable", na_position="last").index.to_numpy()


def steam_implicit(dataset: Dataset, threshold: float = 1.0) -> ImplicitSteam:
    """Keep positive rows (``value >= threshold``) of games with metadata, once per (user, game).

    Parameters
    ----------
    dataset
        Steam reviews with game entities (:func:`~dayzero.datasets.steam.load_steam_reviews`)
        or any dataset whose items carry metadata.
    threshold
        Smallest value that counts as a positive (recommend = 1.0).

    Returns
    -------
    ImplicitSteam
        ``dataset``: rows sorted by user then :func:`time_order`, value 1.0, the earliest copy of
        a repeated (user, game) pair kept; items = the games that remain. ``report``: rows and
        games before and after each step, and the join rates to the metadata (share of rows and
        of distinct games whose game has metadata).
    """
    if dataset.items is None:
        raise ValueError(
            "steam_implicit needs game metadata: load with load_steam_reviews(with_games=True)"
        )
    frame = dataset.interactions.frame
    known = frame[ITEM].isin(dataset.items.frame.index).to_numpy()
    games = pd.unique(frame[ITEM])
    positive = (frame["value"] >= threshold).to_numpy()
    kept = frame.loc[known & positive]
    kept = kept.iloc[time_order(kept)]
    kept = kept.drop_duplicates([USER, ITEM], keep="first")
    # Group by user, keeping time order inside each user (mergesort is stable).
    kept = kept.iloc[np.argsort(pd.factorize(kept[USER])[0], kind="stable")]
    kept = kept.assign(value=1.0)
    items = dataset.items.subset(pd.unique(kept[ITEM]))
    out = Dataset(Interactions(kept), None, items, name=f"{dataset.name}-positive")
    report = {
        "rows": len(frame),
        "games": len(games),
        "join_rate_rows": float(known.mean()) if len(frame) else 0.0,
        "join_rate_games": float(np.isin(games, dataset.items.frame.index).mean())
        if len(games)
        else 0.0,
        "negative_rows_dropped": int((known & ~positive).sum()),
        "duplicate_pairs_dropped": int((known & positive).sum() - len(kept)),
        "positive_rows": len(kept),
        "players": int(kept[USER].nunique()),
        "positive_games": int(kept[ITEM].nunique()),
        "undated_rows": int(kept[TIMESTAMP].isna().sum()) if TIMESTAMP in kept else len(kept),
    }
    return ImplicitSteam(out, report)


def steam_200k_implicit(steam200k: Dataset, games: Entities) -> ImplicitSteam:
    """steam-200k rows as implicit feedback on Steam app ids (joined by title).

    Parameters
    ----------
    steam200k
        :func:`~dayzero.datasets.steam.load_steam_200k` (``"play"`` or ``"purchase"``).
    games
        :func:`~dayzero.datasets.steam.load_steam_games`.

    Returns
    -------
    ImplicitSteam
        One row per (user, app id) in file order (steam-200k has no timestamps), value 1.0,
        for the games whose name matched a steam-games title; items = those games. ``report``
        gives the join rates (games and rows) of
        :func:`~dayzero.datasets.steam.match_steam_200k_to_games`.
    """
    from dayzero.datasets.steam import match_steam_200k_to_games

    match = match_steam_200k_to_games(steam200k, games)
    mapping = match.mapping.dropna(subset=["app_id"])
    to_app = dict(zip(mapping["item"], mapping["app_id"].astype("int64"), strict=True))
    frame = steam200k.interactions.frame
    app = frame[ITEM].map(to_app)
    kept = pd.DataFrame({USER: frame[USER], ITEM: app, "value": 1.0})[app.notna()]
    kept[ITEM] = kept[ITEM].astype("int64")
    kept = kept.drop_duplicates([USER, ITEM], keep="first")
    items = games.subset(pd.unique(kept[ITEM]))
    out = Dataset(Interactions(kept), None, items, name=f"{steam200k.name}-matched")
    report = {
        "rows": len(frame),
        "games": len(steam200k.items) if steam200k.items is not None else 0,
        "join_rate_games": match.rate,
        "join_rate_rows": match.interaction_rate,
        "positive_rows": len(kept),
        "players": int(kept[USER].nunique()),
        "positive_games": int(kept[ITEM].nunique()),
    }
    return ImplicitSteam(out, report)


def user_sequences(interactions: Interactions) -> dict[Hashable, list[Hashable]]:
    """User -> items in :func:`time_order`, users in order of first appearance."""
    frame = interactions.frame
    ordered = frame.iloc[time_order(frame)]
    out: dict[Hashable, list[Hashable]] = {u: [] for u in pd.unique(frame[USER])}
    for user, item in zip(ordered[USER].to_numpy(), ordered[ITEM].to_numpy(), strict=True):
        out[user].append(item)
    return out


# --- shared ---------------------------------------------------------------------------------------


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}")
    return float(value)


def _nonempty(dataset: Dataset) -> pd.DataFrame:
    if len(dataset.interactions) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no interactions to split")
    return dataset.interactions.frame


# --- new games ------------------------------------------------------------------------------------


def event_times(frame: pd.DataFrame) -> pd.Series | None:
    """The ``timestamp`` column as naive datetimes (int64 seconds read as seconds, time zones
    converted to UTC), NaT where undated; ``None`` for a frame without timestamps."""
    if TIMESTAMP not in frame.columns:
        return None
    stamps = frame[TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(stamps):
        pass
    elif pd.api.types.is_numeric_dtype(stamps) and not pd.api.types.is_bool_dtype(stamps):
        stamps = pd.to_datetime(stamps, unit="s", errors="coerce")
    else:
        stamps = pd.to_datetime(stamps, errors="coerce", utc=True)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps


@dataclass
class NewGamesSplit:
    """What was known at the cut-off as training data; every interaction with a new game as test.

    Attributes
    ----------
    train
        Interactions with old games dated before the cut-off, with the item table of the games
        known then (released before the cut-off, or undated); see the module docstring.
    test
        Every interaction with a new game.
    new_games, old_games
        Held-out games with interactions (release date on or after ``cutoff``) and the other
        games with interactions (undated games included).
    new_items
        The item table of every game released on or after ``cutoff``: day-zero metadata, given
        to a model after its fit (:meth:`fold_in`).
    cutoff
        Release date of the earliest held-out game.
    params
        Settings and counts.
    """

    train: Dataset
    test: Interactions
    new_games: list[Hashable]
    old_games: list[Hashable]
    cutoff: pd.Timestamp
    params: dict[str, Any] = field(default_factory=dict)
    new_items: Entities | None = None

    @property
    def timed(self) -> bool:
        """Whether events carry timestamps (histories and training are cut at the split time)."""
        return bool(self.params.get("timed", True))

    def split_times(self) -> pd.Series:
        """Test player -> split time: the earlier of the cut-off and the player's first
        held-out interaction (undated ones count as later than the cut-off)."""
        frame = self.test.frame
        stamps = event_times(frame)
        if stamps is None:
            raise ValueError("the interactions have no timestamp: there is no split time")
        first = stamps.groupby(frame[USER].to_numpy(), sort=False).min()
        return first.where(first < self.cutoff, self.cutoff)

    def ranking_settings(
        self, catalogue: Sequence[Hashable], ks: Sequence[int] = ()
    ) -> list[RankingSetting]:
        """The new games ranked among the new games, and among every game (``catalogue`` plus
        the new games: a catalogue built from the training data still ranks them)."""
        every = list(dict.fromkeys([*catalogue, *self.new_games]))
        candidates = {"new games": list(self.new_games), "all games": every}
        return [RankingSetting("new games", self.tasks(), candidates)]

    def tasks(self, min_history: int = 1) -> list[RankingTask]:
        """One task per test user with at least ``min_history`` interactions before their split
        time (:meth:`split_times`): the history is those training interactions in time order,
        the relevant set the new games the user interacted with. Users with fewer are counted in
        ``params["users_without_history"]``, training rows left out of histories by the
        per-player cut in ``params["history_rows_after_split_time"]``."""
        train = self.train.interactions.frame
        relevant = self.test.frame.groupby(USER, sort=False)[ITEM].agg(frozenset)
        rows = train.loc[train[USER].isin(relevant.index)]
        cut = 0
        if self.timed:
            stamps = event_times(rows)
            limit = rows[USER].map(self.split_times())
            before = (stamps < limit).to_numpy()
            cut = int((~before).sum())
            rows = rows.loc[before]
        history = user_sequences(Interactions(rows))
        tasks, skipped = [], 0
        for user, items in relevant.items():
            seen = history.get(user, [])
            if len(seen) < min_history:
                skipped += 1
                continue
            tasks.append(RankingTask(user, tuple(seen), items))
        self.params["users_without_history"] = skipped
        self.params["history_rows_after_split_time"] = cut
        return tasks

    def fold_in(self, model: Any) -> Any:
        """Give a model fitted on :attr:`train` the held-out games' metadata
        (``model.partial_fit_items(new_items)``): they are embedded with the statistics fitted
        at the cut-off, nothing is refit. Returns the model."""
        if self.new_items is not None and len(self.new_items):
            model.partial_fit_items(self.new_items)
        return model

    def validation_split(self) -> NewGamesSplit:
        """The same protocol on :attr:`train` alone: the latest old games (same fraction) held
        out at an earlier cut-off. Settings are chosen on it, never on the test players."""
        return new_games_split(
            self.train,
            fraction=self.params["fraction"],
            release_field=self.params.get("release_field", "release_date"),
            allow_untimed=not self.timed,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": "new-games",
            "cutoff": str(self.cutoff.date()),
            "new_games": len(self.new_games),
            "old_games": len(self.old_games),
            "train_interactions": len(self.train.interactions),
            "test_interactions": len(self.test),
            "test_users": int(self.test.frame[USER].nunique()),
            **self.params,
        }


def new_games_split(
    dataset: Dataset,
    fraction: float = 0.15,
    release_field: str = "release_date",
    allow_untimed: bool = False,
) -> NewGamesSplit:
    """Hold out the latest-released ``fraction`` of the games with interactions.

    Parameters
    ----------
    dataset
        Interactions (with ``timestamp``) with item entities that carry ``release_field`` (a
        date; missing allowed).
    fraction
        Share in ``(0, 1)`` of the dated games with interactions to hold out (the latest by
        release date). Every game released on or after the cut-off date (the release date of the
        ``ceil(fraction * n)``-th latest game) is held out, so ties at the cut-off go together.
    release_field
        Item field holding the release date.
    allow_untimed
        Accept interactions without a ``timestamp`` column: nothing can then be cut at the split
        time (training and histories keep every interaction with an old game).

    Returns
    -------
    NewGamesSplit
        Deterministic (no seed): the rule depends on release dates and timestamps only. Games
        without a release date (or without metadata) stay in training. Training holds the
        interactions with old games dated before the cut-off and the item table of the games
        known then (see the module docstring for the split time).
    """
    fraction = _check_fraction("fraction", fraction)
    frame = _nonempty(dataset)
    if dataset.items is None or release_field not in dataset.items.frame.columns:
        raise ValueError(
            f"new_games_split needs item entities with a {release_field!r} column; "
            "load the games with their metadata (load_steam_reviews(with_games=True))"
        )
    stamps = event_times(frame)
    if stamps is None and not allow_untimed:
        raise ValueError(
            "new_games_split: the interactions have no 'timestamp' column, so nothing can be "
            "cut at the split time; give timestamps, or pass allow_untimed=True to keep every "
            "training interaction in the histories (optimistic)"
        )
    games = pd.unique(frame[ITEM])
    all_release = pd.to_datetime(dataset.items.frame[release_field], errors="coerce")
    release = all_release.reindex(games).dropna()
    if len(release) < 2:
        raise ValueError("new_games_split needs at least two games with a release date")
    n_new = max(1, int(np.ceil(fraction * len(release))))
    if n_new >= len(release):
        raise ValueError(f"fraction {fraction} of {len(release)} dated games leaves none to train")
    cutoff = release.sort_values(kind="stable").iloc[len(release) - n_new]
    new = set(release.index[release >= cutoff].tolist())
    if len(new) == len(release):
        raise ValueError(
            f"every dated game is released on or after {cutoff.date()}; lower the fraction"
        )
    is_new = frame[ITEM].isin(new).to_numpy()
    # NaT compares False: undated events are later than the cut-off.
    before = np.ones(len(frame), dtype=bool) if stamps is None else (stamps < cutoff).to_numpy()
    later = all_release.index[(all_release >= cutoff).to_numpy()].tolist()
    known = dataset.items.subset(dataset.items.frame.index.difference(later, sort=False))
    if not (~is_new & before).any():
        raise ValueError(
            f"new_games_split: no interaction with an old game is dated before the cut-off "
            f"{cutoff.date()}, so there is nothing to train on; lower the fraction"
        )
    train = Dataset(Interactions(frame.loc[~is_new & before]), dataset.users, known, dataset.name)
    new_games = [g for g in games if g in new]
    old_games = [g for g in games if g not in new]
    params = {
        "fraction": fraction,
        "release_field": release_field,
        "timed": stamps is not None,
        "dated_games": len(release),
        "undated_games_in_train": len(games) - len(release),
        "train_rows_after_cutoff": int((~is_new & ~before).sum()),
    }
    return NewGamesSplit(
        train,
        Interactions(frame.loc[is_new]),
        new_games,
        old_games,
        cutoff,
        params,
        dataset.items.subset(later),
    )


# --- new players ----------------------------------------------------------------------------------


@dataclass
class NewPlayersSplit:
    """Training data without the held-out players, and their interactions in time order.

    Attributes
    ----------
    train
        The dataset restricted to the other players' interactions.
    test
        Every interaction of a held-out player.
    players
        Held-out players, in order of first appearance.
    params
        Settings and counts.
    """

    train: Dataset
    test: Interactions
    players: list[Hashable]
    params: dict[str, Any] = field(default_factory=dict)

    def sequences(self) -> dict[Hashable, list[Hashable]]:
        """Held-out player -> items in time order."""
        return user_sequences(self.test)

    def support_query(self, k: int) -> tuple[Interactions, Interactions]:
        """The first ``k`` rows of each held-out player with more than ``k`` rows (support), and
        the rest of those players' rows (query)."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        frame = self.test.frame
        ordered = frame.iloc[time_order(frame)]
        rank = ordered.groupby(USER, sort=False).cumcount().to_numpy()
        size = ordered.groupby(USER, sort=False)[ITEM].transform("size").to_numpy()
        eligible = size > k
        return (
            Interactions(ordered.loc[eligible & (rank < k)]),
            Interactions(ordered.loc[eligible & (rank >= k)]),
        )

    def ranking_settings(
        self, catalogue: Sequence[Hashable], ks: Sequence[int] = DEFAULT_KS
    ) -> list[RankingSetting]:
        """One setting per ``k`` in ``ks``: the first ``k`` actions revealed, the rest ranked
        among every game."""
        candidates = {"all games": list(catalogue)}
        return [RankingSetting(f"k={k}", self.tasks(k), candidates) for k in ks]

    def tasks(self, k: int) -> list[RankingTask]:
        """One task per held-out player with more than ``k`` interactions: the first ``k`` are
        the history, the rest relevant. Skipped players are counted in
        ``params["skipped"][k]``."""
        sequences = self.sequences()
        tasks = [
            RankingTask(user, tuple(items[:k]), frozenset(items[k:]))
            for user, items in sequences.items()
            if len(items) > k
        ]
        self.params.setdefault("skipped", {})[int(k)] = len(sequences) - len(tasks)
        return tasks

    def fold_in(self, model: Any) -> Any:
        """Nothing to fold in: every game is in :attr:`train`'s item table. Returns the model."""
        return model

    def validation_split(self) -> NewPlayersSplit:
        """The same protocol on :attr:`train` alone: a slice of the training players (same
        fraction and seed) held out. Settings are chosen on it, never on the test players."""
        return new_players_split(
            self.train,
            fraction=self.params["fraction"],
            min_interactions=self.params["min_interactions"],
            seed=self.params["seed"],
        )

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": "new-players",
            "players": len(self.players),
            "train_interactions": len(self.train.interactions),
            "test_interactions": len(self.test),
            **self.params,
        }


def new_players_split(
    dataset: Dataset,
    fraction: float = 0.2,
    min_interactions: int = 2,
    seed: int = 0,
) -> NewPlayersSplit:
    """Hold out a random ``fraction`` of the players with at least ``min_interactions`` rows.

    Parameters
    ----------
    dataset
        Interactions (with timestamps for time order; see :func:`time_order`).
    fraction
        Share in ``(0, 1)`` of the eligible players held out (at least one).
    min_interactions
        Players with fewer rows are never held out (they cannot reveal one action and still
        have one to predict); they stay in training.
    seed
        Seed of the draw.

    Returns
    -------
    NewPlayersSplit
        Every interaction of a held-out player is in ``test``, every other one in ``train``.
    """
    fraction = _check_fraction("fraction", fraction)
    if isinstance(min_interactions, bool) or min_interactions < 2:
        raise ValueError(f"min_interactions must be an integer >= 2, got {min_interactions!r}")
    frame = _nonempty(dataset)
    counts = frame.groupby(USER, sort=False).size()
    eligible = counts.index[counts >= min_interactions].to_numpy()
    if len(eligible) < 2:
        raise ValueError(
            f"only {len(eligible)} players have >= {min_interactions} interactions; "
            "lower min_interactions or use more data"
        )
    n = max(1, round(fraction * len(eligible)))
    if n >= len(eligible):
        raise ValueError(f"fraction {fraction} of {len(eligible)} players leaves none to train")
    rng = np.random.default_rng(seed)
    chosen = set(eligible[np.sort(rng.choice(len(eligible), size=n, replace=False))].tolist())
    held = frame[USER].isin(chosen).to_numpy()
    train = dataset.with_interactions(Interactions(frame.loc[~held]))
    players = [u for u in pd.unique(frame[USER]) if u in chosen]
    params = {
        "fraction": fraction,
        "min_interactions": int(min_interactions),
        "seed": seed,
        "eligible_players": len(eligible),
    }
    return NewPlayersSplit(train, Interactions(frame.loc[held]), players, params)


__all__: Sequence[str] = (
    "DEFAULT_KS",
    "GAME_TEMPLATE",
    "ImplicitSteam",
    "NewGamesSplit",
    "NewPlayersSplit",
    "event_times",
    "game_texts",
    "new_games_split",
    "new_players_split",
    "steam_200k_implicit",
    "steam_implicit",
    "time_order",
    "user_sequences",
)
