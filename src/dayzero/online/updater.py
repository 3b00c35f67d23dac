"""Online updates: bootstrap a first version, then fine-tune it incrementally behind a gate.

``OnlineUpdater(store, registry, config)``:

* :meth:`OnlineUpdater.bootstrap` fits a first two-tower model on a :class:`Dataset` or on the
  store's contents, publishes it with ``watermark = store.last_event_id()`` and promotes it.
* :meth:`OnlineUpdater.update` takes the events after the current version's watermark and

  1. turns them into ratings (kind mapping of :mod:`dayzero.online.serving`; one rating
     per user-item pair, the latest explicit event winning);
  2. holds out, per user with at least two new ratings, the most recent ``holdout`` fraction
     (at least one) as the gate slice; the rest is the training slice;
  3. loads a copy of the current version, folds in every store item it does not know, and
     fine-tunes it (:meth:`TwoTowerRecommender.fine_tune`) on the training slice plus a seeded
     uniform sample of older events (``replay_ratio`` older ratings per new one) so it does not
     forget; new users and items get ID embeddings;
  4. scores the gate slice with the current version (fold-in: each user's earlier events as
     request-time history) and with the candidate, exactly as the service would (profile text
     and every event before the held-out ones): MAE over the held-out ratings and nDCG@k over
     the held-out items of users with at least two;
  5. passes when ``candidate MAE <= current MAE + tolerance`` and (when nDCG is defined)
     ``candidate nDCG >= current nDCG - tolerance``.

  The candidate is **published in any case** (its ``metrics.json`` holds the gate numbers and
  ``"status": "promoted"`` or ``"rejected"``, so a rejection can be inspected or promoted by
  hand) and **promoted only when the gate passes**. A rejected candidate does not move the
  current watermark: the next update sees its events again. Held-out events are not trained on
  in this update; they stay in the store, are pooled at request time by the service and can be
  replayed by later updates. With no held-out slice (no user has two new ratings) the update is
  rejected with status ``"no-gate"`` unless ``promote_without_gate`` is set.

  Promotion is a compare-and-swap on the registry pointer (``promote(version, expected=parent)``):
  if an operator (or another updater) promoted or rolled back while this update trained, the
  candidate is not promoted and the status is ``"superseded"``; an update never undoes an
  operator's decision. (A change in the instant between publishing and promoting leaves a
  candidate whose ``metrics.json`` says ``"promoted"``; the registry's history says what was.)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dayzero.core.fields import infer_kind
from dayzero.core.schema import Dataset, Entities, Interactions, SchemaError
from dayzero.core.templates import FieldSpec, Template
from dayzero.evaluate.metrics import ndcg_at_k
from dayzero.online.registry import StalePromotionError
from dayzero.online.serving import (
    DEFAULT_KIND_VALUES,
    TEXT_FIELD,
    ServingModel,
    records_to_entities,
    resolve_events,
)
from dayzero.recommend.two_tower import TwoTowerRecommender

if TYPE_CHECKING:
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import EntityRecord, Event, EventStore

log = logging.getLogger("dayzero.online.updater")

# Bootstrap defaults for a first model: the frozen-encoder two-tower of bench/ml1m_coldstart.py.
DEFAULT_MODEL_PARAMS: dict[str, Any] = {
    "training__epochs": 20,
    "training__ranking_weight": 0.5,
    "training__validation": 0.1,
}


@dataclass
class UpdaterConfig:
    """Settings of :class:`OnlineUpdater`.

    Parameters
    ----------
    model_params
        :class:`TwoTowerRecommender` parameters for :meth:`OnlineUpdater.bootstrap`, as
        ``set_params`` takes them (``{"training__epochs": 20}`` or ``{"training": {...}}``).
    epochs, lr_scale
        Fine-tuning passes and learning rate (fraction of the model's ``lr``).
    replay_ratio
        Older ratings replayed per new training rating (sampled uniformly, seeded).
    holdout
        Fraction of each user's most recent new ratings held out for the gate.
    tolerance
        Allowed regression: MAE may rise and nDCG@k fall by at most this much.
    k
        Cutoff of the gate's nDCG.
    promote_without_gate
        Promote when there is no held-out slice (else the update is rejected, status
        ``"no-gate"``, and its events wait for the next update).
    kind_values, implicit_value
        How events become ratings (see :class:`ServingModel`); default the served version's.
    seed
        Seeds replay sampling and fine-tuning.
    """

    model_params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL_PARAMS))
    epochs: int = 2
    lr_scale: float = 0.3
    replay_ratio: float = 4.0
    holdout: float = 0.2
    tolerance: float = 0.0
    k: int = 5
    promote_without_gate: bool = False
    kind_values: dict[str, float | None] | None = None
    implicit_value: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.replay_ratio < 0 or not math.isfinite(self.replay_ratio):
            raise ValueError(f"replay_ratio must be a finite number >= 0, got {self.replay_ratio}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")
        if not math.isfinite(self.tolerance):
            raise ValueError(f"tolerance must be finite, got {self.tolerance}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.lr_scale <= 0:
            raise ValueError(f"lr_scale must be > 0, got {self.lr_scale}")


@dataclass
class GateResult:
    """The gate's numbers: current vs candidate on the held-out slice."""

    current_mae: float | None
    candidate_mae: float | None
    current_ndcg: float | None
    candidate_ndcg: float | None
    k: int
    tolerance: float
    heldout_ratings: int
    heldout_users: int
    passed: bool
    reason: str


@dataclass
class UpdateResult:
    """What :meth:`OnlineUpdater.update` did.

    ``status`` is ``"promoted"``, ``"rejected"`` (gate failed), ``"no-gate"`` (no held-out
    slice), ``"superseded"`` (the current version changed while the update ran, so its
    candidate was not promoted) or ``"no-new-events"``; ``version`` is the published candidate
    (None when nothing was published).
    """

    status: str
    promoted: bool
    version: str | None
    parent: str
    watermark: int
    new_events: int
    train_ratings: int
    replay_ratings: int
    gate: GateResult | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def string_ids(dataset: Dataset) -> Dataset:
    """A copy of ``dataset`` with every user and item id as ``str`` (what the service uses)."""
    frame = dataset.interactions.frame.copy()
    frame["user"] = frame["user"].astype(str)
    frame["item"] = frame["item"].astype(str)

    def entities(table: Entities | None) -> Entities | None:
        if table is None:
            return None
        out = table.frame.copy()
        out.index = pd.Index([str(i) for i in out.index], dtype=object)
        return Entities(out, dict(table.fields), table.kind)

    return Dataset(
        Interactions(frame), entities(dataset.users), entities(dataset.items), dataset.name
    )


def typed_entities(records: Sequence[EntityRecord], kind: str) -> Entities:
    """Store records as Entities with field kinds inferred from the JSON values
    (:func:`dayzero.core.fields.infer_kind`: numbers, booleans, lists, dates, short labels as
    categories, long or many-worded distinct strings as text)."""
    entities = records_to_entities(records, kind)
    fields: dict[str, str] = {TEXT_FIELD: "text"}
    for column in entities.frame.columns:
        if column == TEXT_FIELD:
            continue
        inferred = infer_kind(entities.frame[column].tolist())
        if inferred is not None:
            fields[column] = inferred
    return Entities(entities.frame, fields, kind)


def _text_template(entities: Entities | None) -> dict | None:
    """The text view of store entities: the free text plus long text fields (structured
    fields enter as attributes and tokens, not twice)."""
    if entities is None:
        return None
    names = [n for n, k in entities.fields.items() if k == "text"]
    return Template([FieldSpec(n, max_chars=600) for n in names]).to_dict()


def events_to_interactions(
    events: Sequence[Event], kind_values: dict[str, float | None], implicit: float
) -> Interactions:
    rows = resolve_events(events, kind_values, implicit)
    if not rows:
        return Interactions.empty()
    return Interactions(pd.DataFrame(rows, columns=["user", "item", "value"]))


def dataset_from_store(
    store: EventStore,
    upto: int | None = None,
    kind_values: dict[str, float | None] | None = None,
    implicit_value: float | None = None,
) -> Dataset:
    """Every item, user and event (up to ``upto``) of the store as a :class:`Dataset`.

    Events become ratings by ``kind_values`` (default: ``rating`` events keep their value);
    other kinds count as ``implicit_value`` (default: the highest explicit value, else 1.0).
    """
    from dayzero.online.store import Event

    frame = store.events_frame(upto=upto)
    events = [
        Event(user=u, item=i, kind=k, value=float(v), id=int(n))
        for n, u, i, k, v in zip(
            frame["id"], frame["user"], frame["item"], frame["kind"], frame["value"], strict=True
        )
    ]
    kinds = DEFAULT_KIND_VALUES if kind_values is None else kind_values
    if implicit_value is None:
        explicit = [e.value for e in events if e.kind in kinds and kinds[e.kind] is None]
        implicit_value = max(explicit) if explicit else 1.0
    interactions = events_to_interactions(events, kinds, implicit_value)
    if len(interactions) == 0:
        raise SchemaError("the store holds no events: add events before bootstrapping a model")
    items, users = store.items(), store.users()
    return Dataset(
        interactions,
        typed_entities(users, "user") if users else None,
        typed_entities(items, "item") if items else None,
        name="store",
    )


class OnlineUpdater:
    """Bootstraps and incrementally updates the served two-tower model (see module notes).

    Parameters
    ----------
    store
        The event store.
    registry
        The model registry.
    config
        :class:`UpdaterConfig` (defaults if None).
    """

    def __init__(
        self, store: EventStore, registry: ModelRegistry, config: UpdaterConfig | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self.config = config or UpdaterConfig()

    # ------------------------------------------------------------------ bootstrap
    def bootstrap(self, source: Dataset | EventStore | None = None) -> str:
        """Fit a first model on ``source`` (a Dataset, or the store: default), publish it with
        ``watermark = store.last_event_id()`` and promote it. Returns the version."""
        start = time.perf_counter()
        params = dict(self.config.model_params)
        if source is None or not isinstance(source, Dataset):
            store = self.store if source is None else source
            watermark = store.last_event_id()
            dataset = dataset_from_store(store, upto=watermark, **self._kinds(None))
            params.setdefault("item_template", _text_template(dataset.items))
            params.setdefault("user_template", _text_template(dataset.users))
        else:
            watermark = self.store.last_event_id()
            dataset = string_ids(source)
        model = TwoTowerRecommender().set_params(**params).fit(dataset)
        serving = ServingModel(model, **self._kinds(None))
        metrics = {
            "status": "bootstrap",
            "interactions": len(dataset.interactions),
            "users": len(dataset.interactions.users),
            "items": len(dataset.interactions.items),
            "seconds": time.perf_counter() - start,
        }
        if getattr(model, "history_", None):
            metrics["last_epoch"] = model.history_[-1]
        version = self.registry.publish(
            serving.save,
            metrics=_jsonable(metrics),
            watermark=watermark,
            config={"kind": "bootstrap", "source": dataset.name, "updater": asdict(self.config)},
        )
        self.registry.promote(version)
        log.info("bootstrapped %s on %d interactions", version, len(dataset.interactions))
        return version

    # ------------------------------------------------------------------ update
    def update(self) -> UpdateResult:
        """Fine-tune the current version on the events after its watermark, gate, publish,
        and promote if the gate passes (see the module notes)."""
        start = time.perf_counter()
        config = self.config
        parent = self.registry.current()
        if parent is None:
            raise RuntimeError(
                f"no promoted version in {self.registry.root}: bootstrap one first "
                "(OnlineUpdater.bootstrap, or `dayzero serve --bootstrap-demo`)"
            )
        folder = Path(self.registry.path(parent))
        info = self.registry.info(parent)
        watermark = int(info["watermark"])
        last = self.store.last_event_id()
        new_events = self.store.events(after=watermark, upto=last)
        current = ServingModel.load(folder)
        kinds = self._kinds(current)
        ratings = events_to_interactions(new_events, kinds["kind_values"], kinds["implicit_value"])
        if not new_events or len(ratings) == 0:
            log.info("update: no events after watermark %d of %s", watermark, parent)
            return UpdateResult(
                "no-new-events", False, None, parent, watermark, 0, 0, 0, None,
                time.perf_counter() - start,
            )  # fmt: skip
        train, heldout = self._split(ratings)

        candidate = ServingModel.load(folder)
        records = self._unknown_items(candidate)
        for chunk in range(0, len(records), 256):
            candidate.add_items(records[chunk : chunk + 256])
            current.add_items(records[chunk : chunk + 256])
        replay = self._replay(watermark, len(train), kinds)
        users = self._user_records(train)
        candidate.model.fine_tune(
            train,
            epochs=config.epochs,
            replay=replay,
            users=users,
            lr_scale=config.lr_scale,
            random_state=config.seed,
        )
        gate = self._gate(current, candidate, heldout, new_events)
        if gate.heldout_ratings == 0:
            status = "promoted" if config.promote_without_gate else "no-gate"
        else:
            status = "promoted" if gate.passed else "rejected"
        if status == "promoted" and self.registry.current() != parent:
            status = "superseded"
        promote = status == "promoted"
        result_metrics = {
            "status": status,
            "parent": parent,
            "gate": asdict(gate),
            "new_events": len(new_events),
            "train_ratings": len(train),
            "replay_ratings": len(replay),
        }
        version = self.registry.publish(
            candidate.save,
            metrics=_jsonable(result_metrics),
            watermark=int(last),
            config={"kind": "fine-tune", "parent": parent, "updater": asdict(config)},
        )
        if promote:
            try:
                self.registry.promote(version, expected=parent)
            except StalePromotionError as exc:
                log.warning("update: %s", exc)
                status, promote = "superseded", False
        log.info(
            "update %s -> %s: %s (MAE %s -> %s, nDCG@%d %s -> %s, %d held-out ratings; %s)",
            parent, version, status, _fmt(gate.current_mae), _fmt(gate.candidate_mae), gate.k,
            _fmt(gate.current_ndcg), _fmt(gate.candidate_ndcg), gate.heldout_ratings, gate.reason,
        )  # fmt: skip
        return UpdateResult(
            status=status,
            promoted=promote,
            version=version,
            parent=parent,
            watermark=int(last),
            new_events=len(new_events),
            train_ratings=len(train),
            replay_ratings=len(replay),
            gate=gate,
            seconds=time.perf_counter() - start,
        )

    # ------------------------------------------------------------------ pieces
    def _kinds(self, serving: ServingModel | None) -> dict[str, Any]:
        config = self.config
        kind_values = config.kind_values
        implicit = config.implicit_value
        if serving is not None:
            kind_values = serving.kind_values if kind_values is None else kind_values
            implicit = serving.implicit_value if implicit is None else implicit
        return {
            "kind_values": dict(DEFAULT_KIND_VALUES if kind_values is None else kind_values),
            "implicit_value": implicit,
        }

    def _split(self, ratings: Interactions) -> tuple[Interactions, Interactions]:
        """Per user with >= 2 new ratings, the most recent ``holdout`` share (>= 1) is held out."""
        frame = ratings.frame
        position = frame.groupby("user", sort=False).cumcount().to_numpy()
        size = frame.groupby("user", sort=False)["item"].transform("size").to_numpy()
        held_n = np.where(size >= 2, np.maximum(1, np.floor(self.config.holdout * size)), 0)
        held = position >= size - held_n
        return ratings.select(~held), ratings.select(held)

    def _unknown_items(self, serving: ServingModel) -> list[EntityRecord]:
        known = serving.known_items()
        return [r for r in self.store.items() if r.id not in known]

    def _user_records(self, train: Interactions) -> Entities | None:
        """Store profiles of the users in ``train`` (for new users' content)."""
        wanted = set(train.users.tolist())
        records = [r for r in self.store.users() if r.id in wanted]
        return records_to_entities(records, "user") if records else None

    def _replay(self, watermark: int, n_new: int, kinds: dict[str, Any]) -> Interactions:
        size = round(self.config.replay_ratio * n_new)
        if size == 0 or watermark == 0:
            return Interactions.empty()
        frame = self.store.events_frame(upto=watermark)
        if frame.empty:
            return Interactions.empty()
        rng = np.random.default_rng(self.config.seed)
        rows = np.sort(rng.choice(len(frame), size=min(size, len(frame)), replace=False))
        picked = frame.iloc[rows]
        from dayzero.online.store import Event

        events = [
            Event(user=u, item=i, kind=k, value=float(v))
            for u, i, k, v in zip(
                picked["user"], picked["item"], picked["kind"], picked["value"], strict=True
            )
        ]
        return events_to_interactions(events, kinds["kind_values"], kinds["implicit_value"])

    def _gate(
        self,
        current: ServingModel,
        candidate: ServingModel,
        heldout: Interactions,
        new_events: Sequence[Event],
    ) -> GateResult:
        config = self.config
        frame = heldout.frame
        if frame.empty:
            return GateResult(
                None, None, None, None, config.k, config.tolerance, 0, 0, False,
                "no user has two new ratings: nothing to hold out",
            )  # fmt: skip
        # The first new event of each held-out pair: the user's history is what came before.
        first_id: dict[tuple[str, str], int] = {}
        for event in new_events:
            first_id.setdefault((event.user, event.item), event.id)
        both = current.known_items() & candidate.known_items()
        truth, pred_current, pred_candidate, per_user = [], [], [], []
        for user, group in frame.groupby("user", sort=False):
            group = group[group["item"].isin(both)]
            if group.empty:
                continue
            cutoff = min(first_id[(user, i)] for i in group["item"])
            before = self.store.events(user=user, upto=cutoff - 1)
            record = self.store.get_user(user)
            text = record.text if record is not None and record.text.strip() else None
            items = group["item"].tolist()
            values = group["value"].to_numpy(np.float64)
            scores = [m.predict(user, text, before, items) for m in (current, candidate)]
            truth.append(values)
            pred_current.append(scores[0])
            pred_candidate.append(scores[1])
            if len(items) >= 2:
                relevance = values - min(0.0, values.min())  # nDCG needs gains >= 0
                per_user.append(
                    (
                        ndcg_at_k(relevance, scores[0], config.k),
                        ndcg_at_k(relevance, scores[1], config.k),
                    )
                )
        if not truth:
            return GateResult(
                None, None, None, None, config.k, config.tolerance, 0, 0, False,
                "no held-out item has a vector in both versions",
            )  # fmt: skip
        y = np.concatenate(truth)
        mae_current = float(np.abs(np.concatenate(pred_current) - y).mean())
        mae_candidate = float(np.abs(np.concatenate(pred_candidate) - y).mean())
        ndcg_current = float(np.mean([p[0] for p in per_user])) if per_user else None
        ndcg_candidate = float(np.mean([p[1] for p in per_user])) if per_user else None
        reasons = []
        if mae_candidate > mae_current + config.tolerance:
            reasons.append(f"MAE {mae_candidate:.4f} > {mae_current:.4f} + {config.tolerance}")
        if ndcg_current is not None and ndcg_candidate < ndcg_current - config.tolerance:
            reasons.append(
                f"nDCG@{config.k} {ndcg_candidate:.4f} < {ndcg_current:.4f} - {config.tolerance}"
            )
        return GateResult(
            current_mae=mae_current,
            candidate_mae=mae_candidate,
            current_ndcg=ndcg_current,
            candidate_ndcg=ndcg_candidate,
            k=config.k,
            tolerance=config.tolerance,
            heldout_ratings=len(y),
            heldout_users=len(truth),
            passed=not reasons,
            reason="; ".join(reasons) or "candidate is not worse than current beyond tolerance",
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars and tuples converted)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = [
    "GateResult",
    "OnlineUpdater",
    "UpdateResult",
    "UpdaterConfig",
    "dataset_from_store",
    "string_ids",
]
