"""A fitted recommender in the shape the service needs: inner-product vectors and fold-in.

The index ranks by the model's ranking score (:meth:`Recommender.rank_scores`, what
``recommend`` ranks by) as one inner product of augmented vectors. For a two-tower with the
rating head only that is the rating ``mu + b_u + b_i + <p_u, q_i>`` plus the support shift on
items scored from content alone::

    item = [q_i, b_i, 1, content_only_i]        user = [p_u, 1, b_u, shift_u]
    mu + <user, item> == TwoTowerRecommender.predict(user, item)

and for a two-tower with the retrieval head (``training.retrieval_weight > 0``) the retrieval
score, content-only items calibrated (``a``, ``c``: the cold calibration)::

    item = [c_i r_i, c_i beta_i + a_i, 1, content_only_i]    user = [r_u / T, 1, 0, 0]
    <user, item> == TwoTowerRecommender.rank_scores(user, item)      (mu = 0)

so an inner-product index over the item rows ranks items exactly as ``recommend`` does. Ratings
(:meth:`ServingModel.predict`, what the updater's gate compares) always come from the rating
head through the model's ``serving_ratings``, whichever head the index ranks by.

Fold-in, with no training:

* :meth:`ServingModel.add_items` gives new items their vector from their text and fields at
  once (the model's item text view gains a free ``text`` field through
  ``accept_item_text``, so an item described by text alone works with any text model).
* :meth:`ServingModel.user_vector` computes a user's vector per request from a profile sentence
  and every event so far; nothing is stored, so concurrent requests never see each other.

Events become history ratings by kind: kinds mapped to ``None`` in ``kind_values`` (default
``rating``) use the event's value; kinds mapped to a number use that number; any other kind
(``click``, ``purchase``, ``like`` ...) counts as ``implicit_value`` (default: the highest
training value, i.e. a strong positive signal). Per item the latest explicit event wins over
any implicit one. Events on items the model already holds for that user (its training history)
are not counted twice: the trained rating stays until the next fine-tune.

All ids are strings.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dayzero.core.artifact import (
    CONFIG_FILE,
    Artifact,
    ArtifactError,
    check_files,
    load_artifact,
    save_artifact,
)
from dayzero.core.schema import Entities, SchemaError
from dayzero.recommend.contract import NotFittedError, Recommender
from dayzero.recommend.servable import VectorServable

if TYPE_CHECKING:
    from dayzero.online.store import EntityRecord, Event

ARTIFACT_KIND = "serving-model"
MODEL_FOLDER = "model"
INDEX_FOLDER = "index"
TEXT_FIELD = "text"
DEFAULT_KIND_VALUES: dict[str, float | None] = {"rating": None}


def records_to_entities(records: Sequence[EntityRecord], kind: str = "item") -> Entities:
    """Store records as :class:`Entities`: their fields plus the free ``text`` as a text field.

    A non-empty ``record.text`` wins over a ``text`` key in ``fields``.
    """
    rows, ids = [], []
    for position, record in enumerate(records):
        if not isinstance(record.id, str) or not record.id.strip():
            raise SchemaError(
                f"{kind} record {position}: `id` must be a non-empty string, got {record.id!r}"
            )
        if not isinstance(record.fields, Mapping):
            raise SchemaError(
                f"{kind} record {record.id!r}: `fields` must be a JSON object (a dict)"
            )
        row = dict(record.fields)
        if record.text:
            row[TEXT_FIELD] = record.text
        rows.append(row)
        ids.append(record.id)
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise SchemaError(f"{kind} id {duplicate!r} appears twice in one batch; send it once")
    frame = pd.DataFrame(rows, index=pd.Index(ids, dtype=object))
    if TEXT_FIELD not in frame.columns:
        frame[TEXT_FIELD] = ""
    return Entities(frame, {TEXT_FIELD: "text"}, kind)


def event_value(event: Event, kind_values: Mapping[str, float | None], implicit: float):
    """``(explicit, value)`` of one event under a kind mapping (see the module notes)."""
    if event.kind in kind_values:
        fixed = kind_values[event.kind]
        return (True, float(event.value)) if fixed is None else (False, float(fixed))
    return False, float(implicit)


def resolve_events(
    events: Sequence[Event],
    kind_values: Mapping[str, float | None],
    implicit: float,
    by_user: bool = True,
) -> list[tuple[str | None, str, float]]:
    """One ``(user, item, value)`` per user-item pair of ``events`` (oldest first): the latest
    explicit event wins over any implicit one, else the latest implicit one counts.
    ``by_user=False`` treats every event as one user's (user ``None``)."""
    latest: dict[tuple[str | None, str], tuple[bool, float]] = {}
    for event in events:
        explicit, value = event_value(event, kind_values, implicit)
        key = (event.user if by_user else None, event.item)
        previous = latest.get(key)
        if previous is None or explicit or not previous[0]:
            latest[key] = (explicit, value)
    return [(user, item, value) for (user, item), (_, value) in latest.items()]


class ServingModel:
    """A fitted :class:`~dayzero.recommend.servable.VectorServable` recommender (string ids)
    served as inner products: the two-tower, matrix factorisation, or any model of yours that
    implements the interface.

    The ServingModel owns the model from now on (it folds items into it and lets items carry
    free ``text``); use :meth:`from_recommender` or :meth:`load`.

    Parameters
    ----------
    model
        Fitted recommender implementing ``VectorServable``, whose user and item ids are all
        strings.
    kind_values
        Event kind -> history value (``None``: the event's own value). Default
        ``{"rating": None}``.
    implicit_value
        History value of kinds not in ``kind_values``; default the highest training value.

    Attributes
    ----------
    dim : int
        Width of the serving vectors (``model.serving_dim``).
    mu : float
        The global offset: ``rank score = mu + <user_vector, item_vector>`` (0 for a
        retrieval head).
    """

    def __init__(
        self,
        model: VectorServable,
        kind_values: Mapping[str, float | None] | None = None,
        implicit_value: float | None = None,
    ) -> None:
        if not isinstance(model, VectorServable):
            raise TypeError(
                f"{type(model).__name__} cannot be served from a vector index: it does not "
                "implement dayzero.recommend.servable.VectorServable (serve a two-tower or an "
                "mf model, or implement the interface)"
            )
        if not hasattr(model, "item_map_"):
            raise NotFittedError(f"{type(model).__name__} is not fitted; fit it before serving")
        for name, ids in (("user", model.user_map_.ids), ("item", model.item_map_.ids)):
            bad = next((i for i in ids if not isinstance(i, str)), None)
            if bad is not None:
                raise SchemaError(
                    f"ServingModel needs string {name} ids; {name} {bad!r} is "
                    f"{type(bad).__name__}. Fit on string ids (see "
                    "dayzero.online.updater.string_ids)"
                )
        self.model = model
        self.kind_values = dict(DEFAULT_KIND_VALUES if kind_values is None else kind_values)
        if implicit_value is None:
            implicit_value = model.serving_value_range()[1]
        self.implicit_value = float(implicit_value)
        model.accept_item_text(TEXT_FIELD)
        self.dim = model.serving_dim

    @classmethod
    def from_recommender(cls, model: VectorServable, **kwargs: Any) -> ServingModel:
        """Wrap a fitted model (see the class parameters for ``kwargs``)."""
        return cls(model, **kwargs)

    @property
    def mu(self) -> float:
        return self.model.serving_offset

    # ------------------------------------------------------------------ items
    def known_items(self) -> set[str]:
        """Ids of every item with a vector (trained, or folded in from its fields)."""
        return set(self.model.served_items())

    def known_users(self) -> set[str]:
        """Ids of users the model holds a profile or training history for."""
        return set(self.model.user_map_.ids)

    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every item's id and serving vector ``(n, dim)`` float32, for the index."""
        return self.model.served_items(), self.model.item_serving_vectors()

    def add_items(self, records: Sequence[EntityRecord]) -> tuple[list[str], np.ndarray]:
        """Fold items in from their text and fields; returns ``(ids, vectors)`` for the index.

        New ids get a vector at once where the model can make one from content (one encoder
        call for the batch; a model without content leaves them out). Ids the model already
        holds keep their vector (returned too, so the index can be re-synced); edited text takes
        effect at the next bootstrap.
        """
        if not records:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        entities = records_to_entities(records, "item")
        self.model.partial_fit_items(entities)
        served = set(self.model.served_items())
        ids = [i for i in entities.ids if i in served]
        if not ids:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        return ids, self.model.item_serving_vectors(ids)

    # ------------------------------------------------------------------ users
    def history(self, user: str | None, events: Sequence[Event]) -> tuple[list[str], np.ndarray]:
        """``(items, values)`` the user tower pools from ``events`` (see the module notes)."""
        held = self.model.seen_items(user) if user is not None else set()
        fresh = [e for e in events if e.item not in held]
        rows = resolve_events(fresh, self.kind_values, self.implicit_value, by_user=False)
        return [r[1] for r in rows], np.array([r[2] for r in rows], dtype=np.float32)

    def user_vector(
        self, user: str | None, profile_text: str | None, events: Sequence[Event]
    ) -> np.ndarray:
        """A user's serving vector ``(dim,)`` float32 from profile text and every event so far.

        Parameters
        ----------
        user
            Store id, or ``None`` for an anonymous visitor.
        profile_text
            A sentence describing the user; used (as ``add_user_text`` would, for this call
            only) when the model holds no profile for the user.
        events
            The user's events, oldest first (all of them, or those after the model's
            watermark: events already in the model's training history are not counted twice).
        """
        items, values = self.history(user, events)
        text = self._profile_text(user, profile_text)
        return self.model.user_serving_vector(user, items, values, text=text)

    def predict(self, user: str | None, profile_text: str | None, events, items) -> np.ndarray:
        """Predicted ratings of ``items`` (known ids) for a user served as by
        :meth:`user_vector`: the model's ``serving_ratings`` (``mu + <user_vector,
        item_vector>`` when the index ranks by ratings; the rating head of a two-tower whose
        index ranks by its retrieval head)."""
        model = self.model
        history_items, values = self.history(user, events)
        text = self._profile_text(user, profile_text)
        return np.asarray(
            model.serving_ratings(user, list(items), history_items, values, text=text),
            dtype=np.float64,
        )

    def _profile_text(self, user: str | None, profile_text: str | None) -> str | None:
        text = profile_text if profile_text is not None and profile_text.strip() else None
        if text is not None and user is not None and user in self.model.user_map_:
            return None  # the model's trained profile wins for users it knows
        return text

    def exposure_floor(
        self,
        vector: np.ndarray,
        ids: Sequence[str],
        scores: np.ndarray,
        k: int,
        floor: int,
        fresh: Sequence[str] | None = None,
        exclude: Collection[str] = (),
    ) -> tuple[list[str], np.ndarray]:
        """An index result ``(ids, scores)`` (best first, inner products with ``vector`` as the
        index returns them, at least ``k`` long) with at least ``floor`` of its ``k`` slots
        for fresh items (a product knob; default fresh items:
        those scored from content alone). Fresh items are scored from ``vector`` directly (they
        are few), so the best of them are found even when the index result holds none.
        """
        from dayzero.recommend.contract import exposure_floor

        if floor <= 0:
            return list(ids[:k]), np.asarray(scores[:k])
        if fresh is None:
            fresh = self.fresh_items()
        served = set(self.model.served_items())
        pool = [i for i in fresh if i in served and i not in exclude and i not in set(ids)]
        extra = self.model.item_serving_vectors(pool) @ vector if pool else []
        ranked = list(ids) + pool
        all_scores = np.concatenate([np.asarray(scores, np.float64), np.asarray(extra)])
        order = np.argsort(-all_scores, kind="stable")
        return exposure_floor([ranked[n] for n in order], all_scores[order], k, floor, set(fresh))

    def fresh_items(self) -> list[str]:
        """Items the model scores from content alone (no ID embedding), if it says."""
        listing = getattr(self.model, "content_only_items", None)
        return list(listing()) if listing is not None else []

    # ------------------------------------------------------------------ persistence
    def warm_up(self) -> ServingModel:
        """Load what the model loads lazily (its text encoder), so the first request does not
        pay for it."""
        self.model.warm_up()
        return self

    def build_index(self, kind: str = "auto"):
        """A :class:`~dayzero.online.index.VectorIndex` over :meth:`item_vectors`."""
        from dayzero.online.index import VectorIndex  # the service layer; imported on use only

        index = VectorIndex(dim=self.dim, kind=kind)
        ids, vectors = self.item_vectors()
        if ids:
            index.add(ids, vectors)
        return index

    def save(self, folder: str | Path, index: Any | None = None) -> Path:
        """Write a ``"serving-model"`` artifact (:mod:`dayzero.core.artifact`): the serving
        settings in ``dayzero.json``, the model as the part ``model/`` and the index as the part
        ``index/`` (``index``, or one built from :meth:`item_vectors`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / MODEL_FOLDER)
        (index if index is not None else self.build_index()).save(folder / INDEX_FOLDER)
        params = {
            "dim": self.dim,
            "kind_values": self.kind_values,
            "implicit_value": self.implicit_value,
        }
        return save_artifact(folder, Artifact(ARTIFACT_KIND, type(self.model).__name__, params))

    @classmethod
    def load(cls, folder: str | Path) -> ServingModel:
        """Load what :meth:`save` wrote (the index is loaded by the service itself).

        Every file is checked first (:func:`~dayzero.core.artifact.check_files`: no pickle, valid
        JSON, whole safetensors); any failure is an :class:`ArtifactError` naming the file.
        """
        folder = Path(folder)
        check_files(folder)
        config = load_artifact(folder, ARTIFACT_KIND).params
        try:
            model = Recommender.load(folder / MODEL_FOLDER)
        except ArtifactError:
            raise
        except Exception as exc:  # any failure of the model's own files: say where
            raise ArtifactError(
                f"{MODEL_FOLDER}/ (dayzero.json, weights.safetensors, encoder/): cannot be loaded "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        try:
            serving = cls(model, config["kind_values"], config["implicit_value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{CONFIG_FILE}: {type(exc).__name__}: {exc}") from None
        if serving.dim != config.get("dim"):
            raise ArtifactError(
                f"{CONFIG_FILE}: dim {config.get('dim')!r} != model width {serving.dim}"
            )
        return serving.warm_up()
