"""A blend of recommenders whose weights are chosen on a validation carve of the training data.

The project's rule is that a model it ships is never worse than its parts (lexical,
collaborative, dense language model) and better where text carries signal.
:class:`HybridRecommender` makes that a fitted property: it fits its parts, carves a
validation set out of its *training* data (new items, new users revealing a few interactions,
the last interactions of warm users), and chooses per length of the user's revealed history
the blend weights (every one-part vertex of the simplex among them) that find the most held-out
items there. On that carve the chosen blend is never below its best part.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from dayzero.core.schema import ITEM, TIMESTAMP, USER, Dataset, Entities, IdMap, Interactions
from dayzero.recommend import _common
from dayzero.recommend.contract import (
    REGISTRY,
    Recommender,
    make_recommender,
    register,
    seen_by_user,
)

#: The default parts: collaborative (popularity, item-kNN similarity, implicit's weighted ALS
#: with the settings the peer benchmarks chose on validation on 7 of 8 protocols), lexical
#: (TF-IDF cosines of the liked history and the profile text) and the dense language-model
#: two-tower ranked by its retrieval head (MiniLM text vector, TF-IDF bag and ID embeddings).
DEFAULT_PARTS: dict[str, dict[str, Any]] = {
    "popularity": {"model": "popularity"},
    "item-knn": {
        "model": "item-knn",
        "params": {"scoring": "similarity", "centered": False, "k_neighbors": 50},
    },
    "als": {
        "model": "implicit-als",
        "params": {"factors": 64, "regularization": 0.1, "alpha": 1.0},
    },
    "content": {"model": "content-knn", "params": {"scoring": "similarity"}},
    "two-tower": {
        "model": "two-tower",
        "params": {"training__retrieval_weight": 1.0, "training__epochs": 20},
    },
}
DEFAULT_BUCKETS = (0, 1, 3, 10)
DEFAULT_OFFSETS = (0.0, -0.5, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: Recall cut-off the weights are chosen by.
SELECT_K = 20
_PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
WARM = "warm"
NEW_USERS = "new users"
#: How content-only items are ordered among themselves: by weights of their own, chosen on
#: the carve's new-item targets ranked among the content-only items ("own"), or by the
#: bucket's weights for the whole list ("shared", the blend before issue 12's follow-up).
NEW_ITEM_WEIGHTS = ("own", "shared")
#: Content-only weight vectors tried per bucket, best among the content-only items first.
_OWN_CANDIDATES = 8


@dataclass
class _Task:
    """One validation user: who, what they revealed, what is to be found."""

    segment: str
    user: Hashable
    history: Interactions | None
    targets: set
    length: int


@dataclass
class _Carve:
    """The validation carve: training data of the parts, fold-ins, tasks and counts."""

    train: Dataset
    new_items: Entities | None
    new_item_ids: list
    new_users: Entities | None
    tasks: list[_Task] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@register("hybrid")
class HybridRecommender(Recommender):
    """Top-K blend of registered recommenders, weights chosen on a carve of the training data.

    Each part is a registered :class:`~dayzero.recommend.contract.Recommender` (built by
    :func:`~dayzero.recommend.contract.make_recommender`) and its :meth:`rank_scores` are what
    is blended. For a user, every part's scores over the whole catalogue (the items the hybrid
    knows) are standardised to z-scores; an item with interactions scores ``sum_p w[b, p]
    z_p``, an item known from its content alone (no interaction in training or folded in)
    ``sum_p v[b, p] z_p + offset[b]``, with weights ``w[b]`` and ``v[b]`` on the simplex and
    the offset chosen per bucket ``b`` of the user's history length (training + folded-in +
    ``history`` items). ``v`` orders the content-only items among themselves, ``offset``
    places them among the rest.

    Why z-scores: the parts score on unrelated scales (counts, cosine sums, logits), and a
    z-score keeps how far a part's top items stand out from its catalogue (a part that is sure
    pushes harder than one whose scores are flat) where a rank percentile would flatten every
    part to the same uniform spread, and it is defined for an item outside the catalogue from
    the same catalogue statistics (so :meth:`predict` of any pair equals the ranking score).
    A part whose scores are constant for a user (item-kNN for a user without history) gives
    zeros: it abstains. The offset is there because collaborative parts score an item without
    interactions at their floor (popularity 0), so without it a new item could never compete
    with ID-bearing ones in a blend that gives them weight (issue 12, item 5).

    Weight selection (in :meth:`fit`, never on test data): a validation carve of the training
    data, time-aware where it has timestamps: the newest ``new_item_share`` of the items (by
    first interaction; seeded at random without timestamps) become new items, their
    interactions removed and their fields folded in after the fit, as a deployed model gets
    them; the newest ``new_user_share`` of the users (at most ``validation_users``, at least
    ``min_bucket_tasks`` where a quarter of the users allows it; seeded without timestamps)
    are held out whole and reveal their first ``k`` interactions with
    known items (time order, else seeded), ``k`` each bucket's lower bound (*new users*); up
    to ``validation_users`` other users have the last ``warm_share`` of their interactions
    (with known and new items alike) held out (*warm*). A user's targets are their held-out
    relevant interactions with known items *and* with new items, pooled: new items count in
    proportion to how often users turn to them (scored as a segment of their own, an offset
    that puts every new item on top of every list would win it, at the cost of everything
    else). The parts are fitted on the rest, and per bucket, on the points of a simplex grid
    (weights multiples of ``1 / grid_points``, every one-part vertex included; ties: the
    earlier point, vertices and offset 0 first), ``w`` and the offset (every one in
    ``offsets``) are the point of best mean Recall@20 over the whole carve catalogue (history
    items excluded) over all the bucket's tasks, warm and new users alike (a mean of segment
    means would let two warm users weigh as much as seventy new ones), with ``v = w``. Then
    ``v`` becomes the point that ranks the content-only items better among themselves (more
    new-item targets in their top 20, mean over the tasks with such targets) where ``w`` and
    the offset rechosen with new items so ordered lose nothing over the whole catalogue: a
    change that helps the new items and costs the list nothing, on the carve. With
    ``new_item_weights="shared"`` that step is skipped. The parts are then refitted on all
    the data.
    The chosen weights and every part's validation Recall@20 are in :attr:`blend_`
    (:meth:`summary` prints them). A bucket with fewer than ``min_bucket_tasks`` validation
    tasks takes the choice made over all of them together; with no tasks at all every part
    gets an equal weight.

    Parameters
    ----------
    parts
        Part name -> ``{"model": registered name, "params": {...}}`` (params as
        :func:`make_recommender` takes them, nested ones like ``training__epochs`` too).
        ``None``: :data:`DEFAULT_PARTS` (popularity, item-kNN, implicit ALS, TF-IDF content,
        two-tower retrieval).
    buckets
        Lower bounds of the history-length buckets, increasing, starting at 0 (``None``:
        :data:`DEFAULT_BUCKETS`, i.e. 0, 1-2, 3-9, 10+).
    threshold
        Relevant = ``value >= threshold`` (``None``: every interaction): the validation
        targets, and a part with a ``threshold`` parameter it was not given gets this one.
    grid_points
        Resolution of the weight simplex (weights are multiples of ``1 / grid_points``).
    offsets
        Candidate offsets of content-only items, in z units; must contain 0 (``None``:
        :data:`DEFAULT_OFFSETS`).
    new_item_share, new_user_share, warm_share
        Shares of the items held out as new, of the users held out as new, and of a warm
        user's interactions held out.
    validation_users
        Cap on the users per validation segment (seeded draw): keeps the carve's cost bounded.
    min_bucket_tasks
        A bucket with fewer validation tasks takes the choice made over every bucket's tasks
        together: a handful of users cannot pick one of hundreds of grid points.
    new_item_weights
        ``"own"``: content-only items are ordered by weights chosen for them (``v`` above);
        ``"shared"``: by the bucket's weights ``w``.
    release_field
        An item field of dates (a release date): the carve's new items are then the latest
        released items, as a catalogue meets its new items (``None``: the newest by first
        interaction, seeded without timestamps).
    random_state
        Seed of the carve.

    Attributes
    ----------
    parts_ : dict
        Part name -> the fitted part (refitted on all the data).
    weights_ : ndarray of shape (n_buckets, n_parts)
        Chosen weights per bucket (parts in ``parts_`` order).
    content_only_weights_ : ndarray of shape (n_buckets, n_parts)
        Chosen weights of the content-only items per bucket (``weights_`` with
        ``new_item_weights="shared"``).
    offsets_ : ndarray of shape (n_buckets,)
        Chosen content-only offsets per bucket.
    blend_ : dict
        The choice, per bucket: weights, offset, the blend's and every part's validation
        Recall@20, tasks per segment; and the carve's counts.
    content_only_ : set
        Items known from their fields alone.

    Notes
    -----
    ``partial_fit_users`` / ``partial_fit_items`` are delegated to every part (a part that
    does not support one keeps its cold fallback for those entities); saving writes each part
    to its own sub-folder (``parts/<name>``, the artifact format), the blend in the hybrid's
    own ``dayzero.json`` and ``weights.safetensors``. The two-tower part dominates the cost:
    it is fitted twice (carve, then all the data).
    """

    _WEIGHTS_FOLDER: ClassVar[str] = "parts"

    def __init__(
        self,
        parts: dict[str, dict[str, Any]] | None = None,
        buckets: Sequence[int] | None = None,
        threshold: float | None = None,
        grid_points: int = 4,
        offsets: Sequence[float] | None = None,
        new_item_share: float = 0.1,
        new_user_share: float = 0.1,
        warm_share: float = 0.2,
        validation_users: int = 300,
        min_bucket_tasks: int = 30,
        new_item_weights: str = "own",
        release_field: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.parts = parts
        self.buckets = buckets
        self.threshold = threshold
        self.grid_points = grid_points
        self.offsets = offsets
        self.new_item_share = new_item_share
        self.new_user_share = new_user_share
        self.warm_share = warm_share
        self.validation_users = validation_users
        self.min_bucket_tasks = min_bucket_tasks
        self.new_item_weights = new_item_weights
        self.release_field = release_field
        self.random_state = random_state

    # ----------------------------------------------------------------- params
    def _part_specs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """``parts`` checked: name -> (registered model, params)."""
        parts = DEFAULT_PARTS if self.parts is None else self.parts
        if not isinstance(parts, dict) or not parts:
            raise ValueError(
                "parts must be a non-empty dict of part name -> {'model': registered name, "
                f"'params': {{...}}}}, got {parts!r}"
            )
        out = {}
        for name, spec in parts.items():
            if not isinstance(name, str) or not _PART_NAME.match(name):
                raise ValueError(
                    f"parts: part name {name!r} must be a string of letters, digits, '_', '-' "
                    "or '.' (it names the part's folder when saved)"
                )
            if not isinstance(spec, dict) or "model" not in spec:
                raise ValueError(
                    f"parts[{name!r}] must be a dict with a 'model' (a registered name), "
                    f"got {spec!r}"
                )
            unknown = set(spec) - {"model", "params"}
            if unknown:
                raise ValueError(
                    f"parts[{name!r}] has unknown keys {sorted(unknown)}; use 'model' and 'params'"
                )
            model = spec["model"]
            if model not in REGISTRY or model == self.name:
                raise ValueError(
                    f"parts[{name!r}]['model']: {model!r} is not a registered recommender "
                    f"(a hybrid cannot hold a hybrid); available: "
                    f"{sorted(n for n in REGISTRY if n != self.name)}"
                )
            params = spec.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError(f"parts[{name!r}]['params'] must be a dict, got {params!r}")
            out[name] = (model, dict(params))
        return out

    def _check_params(self) -> tuple[list[int], list[float]]:
        buckets = list(DEFAULT_BUCKETS if self.buckets is None else self.buckets)
        if (
            not buckets
            or not all(isinstance(b, int | np.integer) and not isinstance(b, bool) for b in buckets)
            or buckets[0] != 0
            or any(b >= c for b, c in itertools.pairwise(buckets))
        ):
            raise ValueError(
                f"buckets must be increasing integer lower bounds starting at 0 (e.g. "
                f"{DEFAULT_BUCKETS}), got {self.buckets!r}"
            )
        try:
            offsets = [
                float(o) for o in (DEFAULT_OFFSETS if self.offsets is None else self.offsets)
            ]
        except (TypeError, ValueError):
            offsets = []
        if not offsets or not all(np.isfinite(offsets)) or 0.0 not in offsets:
            raise ValueError(
                f"offsets must be finite numbers including 0 (no offset), got {self.offsets!r}"
            )
        if not isinstance(self.grid_points, int) or self.grid_points < 1:
            raise ValueError(f"grid_points must be an integer >= 1, got {self.grid_points!r}")
        for name in ("new_item_share", "new_user_share", "warm_share"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if not isinstance(self.validation_users, int) or self.validation_users < 1:
            raise ValueError(
                f"validation_users must be an integer >= 1, got {self.validation_users!r}"
            )
        if not isinstance(self.min_bucket_tasks, int) or self.min_bucket_tasks < 1:
            raise ValueError(
                f"min_bucket_tasks must be an integer >= 1, got {self.min_bucket_tasks!r}"
            )
        if self.new_item_weights not in NEW_ITEM_WEIGHTS:
            raise ValueError(
                f"new_item_weights must be one of {NEW_ITEM_WEIGHTS}, got {self.new_item_weights!r}"
            )
        if self.release_field is not None and not isinstance(self.release_field, str):
            raise ValueError(
                f"release_field must be an item field name or None, got {self.release_field!r}"
            )
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number or None, got {self.threshold!r}")
        return buckets, offsets

    def _build_parts(self) -> dict[str, Recommender]:
        parts = {}
        for name, (model, params) in self._part_specs().items():
            part = make_recommender(model, **params)
            if (
                self.threshold is not None
                and "threshold" in part.get_params(deep=False)
                and "threshold" not in params
            ):
                part.set_params(threshold=self.threshold)
            parts[name] = part
        return parts

    # ----------------------------------------------------------------- fit
    def fit(self, dataset: Dataset) -> Self:
        buckets, offsets = self._check_params()
        self._part_specs()
        inter = _common.training_interactions(dataset, self.name)
        self._forget_fit()
        grid = simplex_grid(len(self._part_specs()), self.grid_points)
        carve = carve_validation(
            dataset,
            threshold=self.threshold,
            reveal=buckets,
            new_item_share=self.new_item_share,
            new_user_share=self.new_user_share,
            warm_share=self.warm_share,
            max_users=self.validation_users,
            seed=self.random_state,
            min_new_users=self.min_bucket_tasks if self.new_user_share > 0 else 0,
            release_field=self.release_field,
        )
        results, part_names = None, list(self._part_specs())
        if carve.tasks:
            carve_parts = _fit_parts(self._build_parts(), carve.train)
            _fold_in(carve_parts, carve.new_items, carve.new_users)
            results = _validation_scores(carve_parts, carve, grid, offsets, self.random_state)
            del carve_parts
        self.weights_, self.content_only_weights_, self.offsets_, self.blend_ = _choose(
            results,
            carve,
            buckets,
            grid,
            offsets,
            part_names,
            self.min_bucket_tasks,
            own=self.new_item_weights == "own",
        )
        self.parts_ = _fit_parts(self._build_parts(), dataset)
        self.user_map_ = IdMap(inter.users)
        if dataset.users is not None:
            self.user_map_.add(dataset.users.ids)
        self.item_map_ = IdMap(inter.items)
        if dataset.items is not None:
            self.item_map_.add(dataset.items.ids)
        interacted = set(inter.items)
        self.content_only_ = {i for i in self.item_map_.ids if i not in interacted}
        self.seen_ = seen_by_user(inter)
        self._buckets = np.asarray(buckets)
        self._positions: dict[str, tuple[int, int, np.ndarray]] = {}
        self._mask: np.ndarray | None = None
        return self

    # ----------------------------------------------------------------- fold-in
    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Fold users' interactions (and profiles) into every part that supports it."""
        self._check_fitted()
        for part in self.parts_.values():
            with contextlib.suppress(NotImplementedError):
                part.partial_fit_users(interactions, users=users)
        self._absorb_ids(interactions, users=users)
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items (from their fields, and interactions if any) to every part that
        supports it; an item without interactions is content-only until some are folded in."""
        self._check_fitted()
        for part in self.parts_.values():
            with contextlib.suppress(NotImplementedError):
                part.partial_fit_items(items, interactions)
        fresh = [i for i in items.ids if i not in self.item_map_]
        self.item_map_.add(fresh)
        self.content_only_.update(fresh)
        self._mask = None
        if interactions is not None:
            self._absorb_ids(interactions)
        return self

    def _absorb_ids(self, interactions: Interactions, users: Entities | None = None) -> None:
        if users is not None:
            self.user_map_.add(users.ids)
        if not len(interactions):
            return
        self._mask = None
        self.user_map_.add(interactions.users)
        self.item_map_.add(interactions.items)
        self.content_only_.difference_update(interactions.items)
        _common.update_seen(self.seen_, interactions)

    def content_only_items(self) -> list[Hashable]:
        """Items known from their fields alone (no interaction in training or folded in)."""
        self._check_fitted()
        return [i for i in self.item_map_.ids if i in self.content_only_]

    # ----------------------------------------------------------------- scoring
    def _bucket(self, user: Hashable, history: Interactions | None) -> int:
        length = len(self.seen_items(user, history))
        return int(np.searchsorted(self._buckets, length, side="right") - 1)

    def _content_mask(self) -> np.ndarray:
        """Whether each catalogue item is content-only (cached until a fold-in)."""
        if self._mask is None or len(self._mask) != len(self.item_map_):
            self._mask = np.array([i in self.content_only_ for i in self.item_map_.ids], dtype=bool)
        return self._mask

    def _part_positions(self, name: str, part: Recommender) -> np.ndarray:
        """Positions of the hybrid's items in the part's item map (-1: unknown), cached."""
        key = (len(self.item_map_), len(part.item_map_))
        cached = self._positions.get(name)
        if cached is not None and cached[:2] == key:
            return cached[2]
        positions = part.item_map_.to_internal(self.item_map_.ids, missing=-1)
        self._positions[name] = (*key, positions)
        return positions

    def _part_scores(
        self, user: Hashable, history: Interactions | None, extra: list[Hashable]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each part's rank scores over the catalogue (parts x items) and for ``extra`` ids
        the hybrid does not know."""
        n = len(self.item_map_)
        every = np.empty((len(self.parts_), n))
        outside = np.empty((len(self.parts_), len(extra)))
        for row, (name, part) in enumerate(self.parts_.items()):
            every[row] = part_catalogue_scores(
                part, self._part_positions(name, part), self.item_map_.ids, user, history
            )
            if extra:
                outside[row] = part.rank_scores([user] * len(extra), extra, history)
        return every, outside

    def _blend(
        self, user: Hashable, history: Interactions | None, extra: list[Hashable] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        every, outside = self._part_scores(user, history, list(extra))
        mean, scale = standardiser(every)
        bucket = self._bucket(user, history)
        z = (every - mean) / scale
        own, offset = self.content_only_weights_[bucket], self.offsets_[bucket]
        inside = np.where(self._content_mask(), own @ z + offset, self.weights_[bucket] @ z)
        # an id the hybrid does not know has neither fields nor interactions here: the parts'
        # cold fallbacks, blended by the bucket's weights without the new-item offset (which is
        # for items known from their fields; an unknown id must not be lifted above them)
        return inside, self.weights_[bucket] @ ((outside - mean) / scale)

    def _score_items(self, user: Hashable, history: Interactions | None) -> np.ndarray:
        return self._blend(user, history)[0]

    def _score_pairs(
        self, users: list[Hashable], items: list[Hashable], history: Interactions | None
    ) -> np.ndarray:
        index = self.item_map_.to_internal(items, missing=-1)
        out = np.empty(len(items))
        for user, positions in _common.positions_by_user(users).items():
            unknown = positions[index[positions] < 0]
            extra = list(dict.fromkeys(items[p] for p in unknown))
            inside, outside = self._blend(user, history, extra)
            known = positions[index[positions] >= 0]
            out[known] = inside[index[known]]
            if extra:
                where = {item: n for n, item in enumerate(extra)}
                out[unknown] = outside[[where[items[p]] for p in unknown]]
        return out

    # ----------------------------------------------------------------- report
    def summary(self) -> str:
        """The chosen blend per bucket, with the blend's and every part's validation
        Recall@20 (also printed by ``print(model.summary())``)."""
        self._check_fitted()
        names = list(self.parts_)
        lines = [
            f"HybridRecommender: parts {', '.join(names)}; weights chosen per history-length "
            f"bucket on a validation carve of the training data (Recall@{SELECT_K}).",
            "carve: " + ", ".join(f"{k} {v}" for k, v in self.blend_["carve"].items()),
            "| history | "
            + " | ".join(names)
            + " | new-item weights | new-item offset | blend R@20 | "
            + " | ".join(f"{n} R@20" for n in names)
            + " | new-item share / blend R@20 on them | tasks | chosen by |",
            "|---" * (2 * len(names) + 7) + "|",
        ]
        for bucket in self.blend_["buckets"]:
            weights = " | ".join(f"{bucket['weights'][n]:.2f}" for n in names)
            own = bucket.get("content_only_weights", bucket["weights"])
            own_text = " / ".join(f"{own[n]:.2f}" for n in names)
            recall = bucket["validation_recall"]
            parts = " | ".join(
                "" if bucket["part_recall"].get(n) is None else f"{bucket['part_recall'][n]:.4f}"
                for n in names
            )
            tasks = ", ".join(f"{k} {v}" for k, v in bucket["tasks"].items()) or "none"
            share = bucket.get("new_item_share")
            fresh = bucket.get("pooled_recall", {}).get("blend", {}).get("new_items")
            new_items = (
                ""
                if share is None
                else f"{share:.3f} / " + ("-" if fresh is None else f"{fresh:.4f}")
            )
            lines.append(
                f"| {bucket['history']} | {weights} | {own_text} | {bucket['offset']:g} | "
                f"{'' if recall is None else f'{recall:.4f}'} | {parts} | {new_items} | {tasks} | "
                f"{bucket['source']} |"
            )
        return "\n".join(lines)

    # ----------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "weights": self.weights_,
            "content_only_weights": self.content_only_weights_,
            "offsets": self.offsets_,
        }
        extras = {
            "blend": self.blend_,
            "parts": list(self.parts_),
            "content_only": [
                _common_json(i) for i in self.item_map_.ids if i in self.content_only_
            ],
        }
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        # artifacts saved before content-only weights existed ordered new items by weights_
        if "content_only_weights" not in arrays:
            self.new_item_weights = "shared"
        self.content_only_weights_ = np.asarray(
            arrays.get("content_only_weights", arrays["weights"]), dtype=np.float64
        )
        self.offsets_ = np.asarray(arrays["offsets"], dtype=np.float64)
        self.blend_ = extras["blend"]
        self.content_only_ = set(extras["content_only"])
        self._part_order = list(extras["parts"])
        self._buckets, _ = self._check_params()
        self._buckets = np.asarray(self._buckets)
        self._positions = {}
        self._mask = None

    def _save_parts(self, folder: Path) -> None:
        for name, part in self.parts_.items():
            part.save(folder / self._WEIGHTS_FOLDER / name)

    def _load_parts(self, folder: Path) -> None:
        order = self.__dict__.pop("_part_order")
        parts = {}
        for name in order:
            parts[name] = Recommender.load(folder / self._WEIGHTS_FOLDER / name)
        self.parts_ = parts


def _common_json(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------- scoring helpers
def part_catalogue_scores(
    part: Recommender,
    positions: np.ndarray,
    ids: list[Hashable],
    user: Hashable,
    history: Interactions | None,
) -> np.ndarray:
    """A part's rank scores of ``ids`` (at ``positions`` in its item map, -1: unknown): one
    ``_score_items`` call (the contract's all-items hook, the scores ``recommend`` ranks by)
    for the items it knows, ``rank_scores`` (its cold fallback) for the rest."""
    out = np.empty(len(ids))
    known = positions >= 0
    if known.any():
        every = np.asarray(part._score_items(user, history), dtype=np.float64)
        out[known] = every[positions[known]]
    if not known.all():
        cold = [ids[n] for n in np.flatnonzero(~known)]
        out[~known] = part.rank_scores([user] * len(cold), cold, history)
    return out


def standardiser(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean and scale of the z-score over the catalogue (scale 1 for a constant row,
    which then standardises to zeros)."""
    mean = scores.mean(axis=1, keepdims=True)
    scale = scores.std(axis=1, keepdims=True)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def simplex_grid(n_parts: int, points: int) -> np.ndarray:
    """Weights on the simplex that are multiples of ``1 / points``: the one-part vertices
    first (in part order), then the rest."""
    grid = [
        np.array(c, dtype=np.float64) / points
        for c in itertools.product(range(points + 1), repeat=n_parts)
        if sum(c) == points
    ]
    vertices = [g for g in grid if np.count_nonzero(g) == 1]
    vertices.sort(key=lambda g: int(np.argmax(g)))
    others = [g for g in grid if np.count_nonzero(g) > 1]
    return np.array(vertices + others)


# --------------------------------------------------------------------- the carve
def _fit_parts(parts: dict[str, Recommender], dataset: Dataset) -> dict[str, Recommender]:
    for part in parts.values():
        part.fit(dataset)
    return parts


def _fold_in(parts: dict[str, Recommender], items: Entities | None, users: Entities | None) -> None:
    """Day-zero information after the fit, as a deployed model gets it."""
    for part in parts.values():
        if items is not None and len(items):
            with contextlib.suppress(NotImplementedError):
                part.partial_fit_items(items)
        if users is not None and len(users):
            with contextlib.suppress(NotImplementedError):
                part.partial_fit_users(Interactions.empty(), users=users)


def _ordered(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Rows in time order (ties in frame order), or in a seeded random order."""
    if TIMESTAMP in frame.columns:
        stamps = pd.to_datetime(frame[TIMESTAMP]) if len(frame) else frame[TIMESTAMP]
        key = pd.Series(stamps.to_numpy(), index=np.arange(len(frame)))
        return frame.iloc[key.sort_values(kind="stable", na_position="last").index.to_numpy()]
    return frame.iloc[rng.permutation(len(frame))]


def _draw(ids: list, n: int, rng: np.random.Generator) -> list:
    if n >= len(ids):
        return list(ids)
    keep = np.sort(rng.choice(len(ids), size=n, replace=False))
    return [ids[i] for i in keep]


def _latest_released(dataset: Dataset, items: list, field_name: str, n: int) -> list:
    """The ``n`` latest released of ``items`` by the item field ``field_name`` (dates; ties
    and order within a day as in ``items``; undated items never count)."""
    if dataset.items is None or field_name not in dataset.items.frame.columns:
        raise ValueError(
            f"release_field={field_name!r}: the items have no such field; give the name of an "
            "item field holding release dates, or None to carve new items by first interaction"
        )
    dates = pd.to_datetime(dataset.items.frame[field_name], errors="coerce")
    dated = dates.reindex(items).dropna()
    order = dated.reset_index(drop=True).sort_values(kind="stable").index
    latest = [dated.index[i] for i in order]
    return latest[len(latest) - min(n, len(latest)) :]


def carve_validation(
    dataset: Dataset,
    threshold: float | None,
    reveal: Sequence[int],
    new_item_share: float = 0.1,
    new_user_share: float = 0.1,
    warm_share: float = 0.2,
    max_users: int = 300,
    seed: int = 0,
    min_new_users: int = 0,
    release_field: str | None = None,
) -> _Carve:
    """A validation carve of ``dataset`` (see :class:`HybridRecommender`): the training data
    of the parts, the new items' and users' fields to fold in, and the tasks.

    New items are the newest ``new_item_share`` of the items with interactions (by first
    interaction; seeded without timestamps); new users the newest ``new_user_share`` of the
    users (the same rule; at most ``max_users``), revealing their first ``k`` interactions
    for each ``k`` in ``reveal``; warm users (at most ``max_users``) have their last
    ``warm_share`` held out. On small data at least ``min(min_new_users, n_users // 4)`` users
    are new, so that each reveal can have more validation tasks. With
    ``release_field`` (an item field of dates, e.g. a release date) the new items are the
    latest released of the items with interactions (undated ones are never new).
    """
    rng = np.random.default_rng(seed)
    frame = _ordered(dataset.interactions.frame, rng).reset_index(drop=True)
    relevant = (
        np.ones(len(frame), dtype=bool)
        if threshold is None
        else frame["value"].to_numpy() >= threshold
    )
    frame = frame.assign(_relevant=relevant)
    items = list(pd.unique(frame[ITEM]))
    n_new_items = round(new_item_share * len(items)) if len(items) >= 5 else 0
    if release_field is not None:
        new_items = _latest_released(dataset, items, release_field, n_new_items)
    elif TIMESTAMP in frame.columns:
        new_items = items[len(items) - n_new_items :]  # first seen last
    else:
        new_items = _draw(items, n_new_items, rng)
    new_item_set = set(new_items)
    users = list(pd.unique(frame[USER]))  # in order of first interaction
    n_new_users = min(
        max_users,
        max(round(new_user_share * len(users)), min(min_new_users, len(users) // 4)),
    )
    n_new_users = n_new_users if len(users) >= 5 else 0
    if TIMESTAMP in frame.columns:
        new_users = users[len(users) - n_new_users :]  # arrived last
    else:
        new_users = _draw(users, n_new_users, rng)
    new_user_set = set(new_users)
    on_new_item = frame[ITEM].isin(new_item_set).to_numpy()
    of_new_user = frame[USER].isin(new_user_set).to_numpy()
    # warm users: the last warm_share of their interactions held out, known and new items
    # alike, so new items are as large a share of the targets as of what the user does next
    # (every new-item row a target would inflate it: several-fold without timestamps)
    rest = frame[~on_new_item & ~of_new_user]
    counts = rest.groupby(USER, sort=False).size()
    eligible = [u for u in users if u not in new_user_set and counts.get(u, 0) >= 2]
    warm_users = set(_draw(eligible, max_users, rng)) if warm_share > 0 else set()
    held = np.zeros(len(frame), dtype=bool)
    warm_rows = frame[~of_new_user & frame[USER].isin(warm_users)]
    for _, group in warm_rows.groupby(USER, sort=False):
        n_held = max(1, round(warm_share * len(group)))
        held[group.index[len(group) - n_held :]] = True
    train_rows = frame[~on_new_item & ~of_new_user & ~held]
    train_inter = Interactions(train_rows.drop(columns="_relevant"))
    known_items = set(train_inter.items)
    if dataset.items is not None:
        known_items |= {i for i in dataset.items.ids if i not in new_item_set}
    item_fields = dataset.items
    new_item_fields = None
    if item_fields is not None:
        new_item_fields = item_fields.subset([i for i in new_items if i in item_fields])
        item_fields = item_fields.subset([i for i in item_fields.ids if i not in new_item_set])
    user_fields = dataset.users
    new_user_fields = None
    if user_fields is not None:
        new_user_fields = user_fields.subset([u for u in new_users if u in user_fields])
        user_fields = user_fields.subset([u for u in user_fields.ids if u not in new_user_set])
    train = Dataset(train_inter, users=user_fields, items=item_fields)
    # items the carve's models can rank: known ones and the new ones with fields
    reachable_new = set(new_item_fields.ids) if new_item_fields is not None else set()
    seen = seen_by_user(train_inter)
    tasks: list[_Task] = []
    # Targets pool known and new items, as a deployed list meets them: new items get the
    # weight of their share of what users go on to do (scored apart, a new-items segment
    # would reward pushing every new item to the top of every list).
    held_rows = frame[held & relevant]
    held_by = {u: set(g[ITEM]) for u, g in held_rows.groupby(USER, sort=False)}
    fresh_rows = frame[on_new_item & relevant & frame[ITEM].isin(reachable_new)]
    fresh_by = {u: set(g[ITEM]) for u, g in fresh_rows.groupby(USER, sort=False)}
    # warm: the last interactions of known users, with known and with new items
    for user in (u for u in users if u in warm_users):
        targets = held_by.get(user, set()) & (known_items | reachable_new)
        targets -= seen.get(user, set())
        if targets:
            tasks.append(_Task(WARM, user, None, targets, len(seen.get(user, ()))))
    # new users, revealing their first k interactions with known items
    for user, group in frame[of_new_user].groupby(USER, sort=False):
        known = group[group[ITEM].isin(known_items)]
        for k in reveal:
            if k >= len(known) and k > 0:
                continue
            shown, rest = known.iloc[:k], known.iloc[k:]
            history = Interactions(shown.drop(columns="_relevant")) if k else None
            shown_items = set(shown[ITEM])
            targets = set(rest.loc[rest["_relevant"], ITEM]) | fresh_by.get(user, set())
            targets -= shown_items
            if targets:
                tasks.append(_Task(NEW_USERS, user, history, targets, len(shown_items)))
    summary = {
        "train_interactions": len(train_inter),
        "new_items": len(new_items),
        "new_users": len(new_users),
        "warm_users": len(warm_users),
        "tasks": len(tasks),
    }
    return _Carve(train, new_item_fields, new_items, new_user_fields, tasks, summary)


def _validation_scores(
    parts: dict[str, Recommender],
    carve: _Carve,
    grid: np.ndarray,
    offsets: list[float],
    seed: int,
) -> _Scores:
    """Every task's top-``SELECT_K`` lists at every weight vector of ``grid``, over the carve's
    whole catalogue: the known items' list and the content-only items' list apart (with which
    entries are targets), from which :class:`_Scores` merges the list of any (weights,
    content-only weights, offset) point exactly."""
    catalogue = IdMap()
    for part in parts.values():
        catalogue.add(part.item_map_.ids)
    ids = catalogue.ids
    # targets no part can rank (no interaction left and no fields) are dropped
    for task in carve.tasks:
        task.targets = {i for i in task.targets if i in catalogue}
    carve.tasks = [t for t in carve.tasks if t.targets]
    carve.counts["tasks"] = len(carve.tasks)
    interacted = set(carve.train.interactions.items)
    content_only = np.array([i not in interacted for i in ids], dtype=bool)
    positions = {name: part.item_map_.to_internal(ids, missing=-1) for name, part in parts.items()}
    seen = seen_by_user(carve.train.interactions)
    rng = np.random.default_rng(seed)
    k = min(SELECT_K, len(ids))
    n_tasks, n_grid = len(carve.tasks), len(grid)
    known_top = np.full((n_tasks, n_grid, k), -np.inf)
    known_hit = np.zeros((n_tasks, n_grid, k), dtype=bool)
    new_top = np.full_like(known_top, -np.inf)
    new_hit = np.zeros_like(known_hit)
    n_targets = np.array([len(t.targets) for t in carve.tasks], dtype=np.float64)
    n_new = np.zeros(n_tasks)
    for row, task in enumerate(carve.tasks):
        every = np.stack(
            [
                part_catalogue_scores(part, positions[name], ids, task.user, task.history)
                for name, part in parts.items()
            ]
        )
        mean, scale = standardiser(every)
        z = (every - mean) / scale
        exclude = set(seen.get(task.user, ())) if task.history is None else set()
        if task.history is not None:
            exclude |= set(task.history.frame[ITEM])
        drop = catalogue.to_internal([i for i in exclude if i in catalogue], missing=-1)
        is_target = np.zeros(len(ids), dtype=bool)
        is_target[catalogue.to_internal(list(task.targets))] = True
        n_new[row] = (is_target & content_only).sum()
        # seeded jitter below any real difference: ties broken at random, the same way for
        # every point of the grid
        jitter = 1e-9 * rng.random(len(ids))
        base = grid @ z + jitter
        base[:, drop[drop >= 0]] = -np.inf
        for side, top, hit in (
            (~content_only, known_top, known_hit),
            (content_only, new_top, new_hit),
        ):
            where = np.flatnonzero(side)
            if not len(where):
                continue
            m = min(k, len(where))
            scores = base[:, where]
            best = np.argpartition(-scores, m - 1, axis=1)[:, :m]
            order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
            best = np.take_along_axis(best, order, axis=1)
            top[row, :, :m] = np.take_along_axis(scores, best, axis=1)
            hit[row, :, :m] = is_target[where[best]]
    return _Scores(known_top, known_hit, new_top, new_hit, n_new, n_targets, np.asarray(offsets))


@dataclass
class _Scores:
    """Validation lists: per task (rows) and weight vector of the grid, the top-``SELECT_K``
    known items and the top-``SELECT_K`` content-only items by score (descending) and which
    of them are targets; the merge of the two is the list over the whole catalogue."""

    known_top: np.ndarray
    known_hit: np.ndarray
    new_top: np.ndarray
    new_hit: np.ndarray
    n_new: np.ndarray
    n_targets: np.ndarray
    offsets: np.ndarray

    def content_only_recall(self, rows: list[int]) -> np.ndarray:
        """Recall@20 among the content-only items of the new-item targets, per row and
        content-only weight vector (rows without new-item targets give NaN)."""
        hits = self.new_hit[rows].sum(axis=2).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n_new[rows, None] > 0, hits / self.n_new[rows, None], np.nan)

    def merged(self, rows: list[int], own: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Recall@20 over the whole catalogue and hits among new-item targets, per row and
        (offset, weights) column (the grid's points for offsets[0], then offsets[1], ...),
        content-only items ordered by the grid's point ``own`` (``None``: by the column's own
        weights)."""
        known, known_hit = self.known_top[rows], self.known_hit[rows]
        if own is None:
            new, new_hit = self.new_top[rows], self.new_hit[rows]
        else:
            shape = known.shape
            new = np.broadcast_to(self.new_top[rows, own][:, None, :], shape)
            new_hit = np.broadcast_to(self.new_hit[rows, own][:, None, :], shape)
        k = known.shape[2]
        recall = np.empty((len(rows), len(self.offsets), known.shape[1]))
        fresh = np.empty_like(recall)
        flags = np.concatenate([known_hit, new_hit], axis=2)
        is_new = np.concatenate([np.zeros_like(known_hit), np.ones_like(new_hit)], axis=2)
        for n, offset in enumerate(self.offsets):
            merged = np.concatenate([known, new + offset], axis=2)
            top = np.argsort(-merged, axis=2, kind="stable")[:, :, :k]
            found = np.take_along_axis(flags, top, axis=2)
            recall[:, n] = found.sum(axis=2) / self.n_targets[rows, None]
            fresh[:, n] = (found & np.take_along_axis(is_new, top, axis=2)).sum(axis=2)
        return recall.reshape(len(rows), -1), fresh.reshape(len(rows), -1)


def _pooled(
    recall: np.ndarray, new_hits: np.ndarray, n_new: np.ndarray, n_targets: np.ndarray
) -> dict[str, float | None]:
    """Recall of the known-item and of the new-item targets of some rows (one column), pooled."""
    n_fresh, n_all = n_new.sum(), n_targets.sum()
    new = new_hits.sum()
    every = (recall * n_targets).sum()
    return {
        "known_items": None if n_all == n_fresh else float((every - new) / (n_all - n_fresh)),
        "new_items": None if n_fresh == 0 else float(new / n_fresh),
    }


def _history_label(buckets: list[int], b: int) -> str:
    low = buckets[b]
    if b + 1 == len(buckets):
        return f"{low}+"
    high = buckets[b + 1] - 1
    return str(low) if high == low else f"{low}-{high}"


def _choose(
    results: _Scores | None,
    carve: _Carve,
    buckets: list[int],
    grid: np.ndarray,
    offsets: list[float],
    names: list[str],
    min_tasks: int = 1,
    own: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Per bucket, the (weights, offset) of best mean Recall@20 over the whole catalogue over
    its tasks (warm and new users alike), with the recall of the known-item and the new-item
    targets apart. With ``own``, content-only items get weights of their own where some point
    of the grid orders them better *among themselves* than the chosen weights do (more
    new-item targets in the top 20 of the content-only items, mean over the tasks with such
    targets) and the (weights, offset) rechosen with new items so ordered lose nothing over
    the whole catalogue: of those points, the best among the content-only items that passes
    (at most ``_OWN_CANDIDATES`` tried). A bucket with fewer than ``min_tasks`` tasks (for
    the content-only weights: tasks with new-item targets) takes the choice over every task
    (a handful of users cannot pick one of hundreds of grid points)."""
    n_buckets = len(buckets)
    bucket_of = [
        int(np.searchsorted(np.asarray(buckets), t.length, side="right") - 1) for t in carve.tasks
    ]
    zero = offsets.index(0.0)
    # offset 0 first, then the order given; within an offset the grid's order
    order = [zero, *[n for n in range(len(offsets)) if n != zero]]
    columns = [n * len(grid) + g for n in order for g in range(len(grid))]
    vertex = {name: zero * len(grid) + p for p, name in enumerate(names)}
    every_row = list(range(len(carve.tasks)))
    rows_of = [[n for n, c in enumerate(bucket_of) if c == b] for b in range(n_buckets)]
    cache: dict[tuple[tuple[int, ...], int | None], tuple[np.ndarray, np.ndarray]] = {}

    def merged(rows: list[int], own_index: int | None) -> tuple[np.ndarray, np.ndarray]:
        """``results.merged``, once per (rows, content-only weights)."""
        key = (tuple(rows), own_index)
        if key not in cache:
            cache[key] = results.merged(rows, own_index)
        return cache[key]

    def best_column(rows: list[int], own_index: int | None) -> tuple[int, float]:
        score = merged(rows, own_index)[0].mean(axis=0)
        best = columns[int(np.argmax(score[columns]))]
        return best, float(score[best])

    weights = np.full((n_buckets, len(names)), 1.0 / len(names))
    content_weights = weights.copy()
    chosen_offsets = np.zeros(n_buckets)
    report = []
    for b in range(n_buckets):
        rows = rows_of[b]
        if results is not None and len(rows) >= min_tasks:
            chooser, source = rows, "validation"
        elif results is not None and every_row:
            chooser = every_row
            source = f"{len(rows)} tasks (< {min_tasks}): the choice over every bucket"
        else:
            chooser, source = [], "no validation tasks: equal weights"
        best, own_index = None, None
        own_entry: dict[str, Any] = {
            "source": "the bucket's weights"
            + (" (no validation tasks)" if own else " (new_item_weights='shared')")
        }
        if chooser:
            best, shared_score = best_column(chooser, None)
        if chooser and own:
            fresh = [n for n in rows if results.n_new[n] > 0]
            own_source = "validation"
            if len(fresh) < min_tasks:
                own_source = f"{len(fresh)} tasks (< {min_tasks}): the choice over every bucket"
                fresh = [n for n in every_row if results.n_new[n] > 0]
            own_entry = {"source": "no new-item targets: the bucket's weights", "tasks": 0}
            if fresh:
                among = results.content_only_recall(fresh).mean(axis=0)
                shared = best % len(grid)
                better = [int(g) for g in np.argsort(-among, kind="stable")]
                better = [g for g in better if among[g] > among[shared] + 1e-12]
                for g in better[:_OWN_CANDIDATES]:
                    column, score = best_column(chooser, g)
                    if score >= shared_score - 1e-12:
                        own_index, best = g, column
                        break
                if own_index is None:
                    own_source = (
                        "no point orders them better than the bucket's weights"
                        if not better
                        else "every point that orders them better loses over the whole catalogue"
                    )
                own_entry = {
                    "source": own_source,
                    "tasks": len(fresh),
                    "recall": float(among[shared if own_index is None else own_index]),
                    "shared_recall": float(among[shared]),
                    "part_recall": {name: float(among[p]) for p, name in enumerate(names)},
                }
        entry: dict[str, Any] = {
            "validation_recall": None,
            "part_recall": {},
            "tasks": {},
            "segment_recall": {},
            "new_item_share": None,
            "pooled_recall": {},
        }
        if best is not None:
            weights[b] = grid[best % len(grid)]
            chosen_offsets[b] = offsets[best // len(grid)]
        content_weights[b] = weights[b] if own_index is None else grid[own_index]
        if rows and best is not None:
            recall, new_hits = merged(rows, own_index)
            score = recall.mean(axis=0)
            # a part alone orders the content-only items by itself too
            alone, alone_hits = merged(rows, None)
            segments: dict[str, list[int]] = {}
            for position, n in enumerate(rows):
                segments.setdefault(carve.tasks[n].segment, []).append(position)

            def pooled(column: int, recall=recall, new_hits=new_hits, rows=rows):
                return _pooled(
                    recall[:, column],
                    new_hits[:, column],
                    results.n_new[rows],
                    results.n_targets[rows],
                )

            entry = {
                "validation_recall": float(score[best]),
                "part_recall": {name: float(alone[:, c].mean()) for name, c in vertex.items()},
                "tasks": {s: len(idx) for s, idx in segments.items()},
                "segment_recall": {
                    s: float(recall[idx, best].mean()) for s, idx in segments.items()
                },
                "new_item_share": float(
                    results.n_new[rows].sum() / max(results.n_targets[rows].sum(), 1.0)
                ),
                "pooled_recall": {
                    "blend": pooled(best),
                    **{name: pooled(c, alone, alone_hits) for name, c in vertex.items()},
                },
            }
        report.append(
            {
                "history": _history_label(buckets, b),
                "min_history": buckets[b],
                "weights": {name: float(w) for name, w in zip(names, weights[b], strict=True)},
                "offset": float(chosen_offsets[b]),
                "content_only_weights": {
                    name: float(w) for name, w in zip(names, content_weights[b], strict=True)
                },
                "content_only": own_entry,
                **entry,
                "source": source,
            }
        )
    blend = {
        "parts": list(names),
        "select": f"recall@{SELECT_K}",
        "carve": dict(carve.counts),
        "buckets": report,
    }
    return weights, content_weights, chosen_offsets, copy.deepcopy(blend)
