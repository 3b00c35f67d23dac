"""Request and response bodies of the HTTP service (pydantic v2).

Every bound lives here (ids, texts, batch sizes, ``k``) so that an invalid request is refused
with a 422 whose ``detail`` names the field, before any work is done.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)

from dayzero.online.store import MAX_KEY_LENGTH, MAX_TS, MIN_TS, id_problem

MAX_ID = 256
MAX_TEXT = 4_000
MAX_BATCH_ENTITIES = 1_000
MAX_BATCH_EVENTS = 1_000
MAX_RECENT = 200
MAX_K = 100
MAX_FIELDS = 64
MAX_APPLICANTS = 100
MAX_TOP_REASONS = 10
# An Idempotency-Key header: the n-th event's key is "<key>#n", within the store's 128.
MAX_BATCH_KEY = 100
# Ratings, clicks and weights are small numbers; a bound keeps user vectors finite.
MAX_ABS_VALUE = 1e6
# Attributes and context are small JSON documents: bounded in size and depth, so that one
# request cannot fill the store (or the encoder's input) with megabytes of JSON.
MAX_JSON_BYTES = 16_384
MAX_JSON_DEPTH = 8


def _valid_id(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"the id {problem}")
    return value


# The store's one rule for ids (dayzero.online.store.id_problem): an id that is accepted can be
# read back as one URL path segment.
IdStr = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID), AfterValidator(_valid_id)
]
# JSON booleans are not numbers and JSON strings are not counts: no silent coercion.
Value = Annotated[float, Strict(), Field(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
# The store's event kinds: short identifiers such as "rating", "click", "purchase".
KindStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")]


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _surrogate_path(value: Any, path: str) -> str | None:
    """The first place in ``value`` holding a lone surrogate (text JSON allows, Unicode not)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = _surrogate_path(key, f"{path} key" if path else "key")
            found = where or _surrogate_path(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _bounded_json(value: dict[str, Any], name: str) -> dict[str, Any]:
    """``value`` if it is a small JSON document (see MAX_JSON_BYTES / MAX_JSON_DEPTH)."""

    def depth(item: Any) -> int:
        if isinstance(item, dict):
            return 1 + max((depth(v) for v in item.values()), default=0)
        if isinstance(item, list):
            return 1 + max((depth(v) for v in item), default=0)
        return 0

    if depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"{name} nests deeper than {MAX_JSON_DEPTH} levels; flatten it")
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    if size > MAX_JSON_BYTES:
        raise ValueError(
            f"{name} is {size} bytes of JSON; at most {MAX_JSON_BYTES}: keep long text in "
            "`text` and large data out of the service"
        )
    return value


class _Strict(BaseModel):
    # Unknown keys are refused so that a misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        # A lone surrogate ("\ud800") is valid JSON text but not Unicode: refused here, before
        # it can reach the store, the tokenizer or an error message that echoes it.
        where = _surrogate_path(data, "")
        if where is not None:
            raise ValueError(
                f"{where} contains an unpaired surrogate (not valid Unicode); send UTF-8 text"
            )
        return data


class EntityIn(_Strict):
    """An item or a user: free text plus JSON attributes."""

    id: IdStr
    text: str = Field("", max_length=MAX_TEXT, description="Description or profile text.")
    fields: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_FIELDS,
        description=f"JSON attributes (genre, price, ...); at most {MAX_JSON_BYTES} bytes.",
    )

    @field_validator("fields")
    @classmethod
    def _fields_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _bounded_json(value, "fields")


def _unique_ids(entities: list[EntityIn], name: str) -> list[EntityIn]:
    seen: dict[str, int] = {}
    for position, entity in enumerate(entities):
        if entity.id in seen:
            raise ValueError(
                f"{name}[{position}].id {entity.id!r} repeats {name}[{seen[entity.id]}].id; "
                "send each id once per batch (a batch is stored all or nothing)"
            )
        seen[entity.id] = position
    return entities


class ItemsIn(_Strict):
    """``POST /v1/items``: a batch of items to add or replace."""

    items: list[EntityIn] = Field(min_length=1, max_length=MAX_BATCH_ENTITIES)

    @field_validator("items")
    @classmethod
    def _once(cls, value: list[EntityIn]) -> list[EntityIn]:
        return _unique_ids(value, "items")


class UsersIn(_Strict):
    """``POST /v1/users``: a batch of user profiles to add or replace."""

    users: list[EntityIn] = Field(min_length=1, max_length=MAX_BATCH_ENTITIES)

    @field_validator("users")
    @classmethod
    def _once(cls, value: list[EntityIn]) -> list[EntityIn]:
        return _unique_ids(value, "users")


class EventIn(_Strict):
    """One interaction."""

    user: IdStr
    item: IdStr
    kind: KindStr = "rating"
    value: Value = Field(1.0, description="Rating or weight (a finite JSON number).")
    ts: datetime | None = Field(
        None,
        description=f"When it happened ({MIN_TS.year} to {MAX_TS.year}); naive times are UTC; "
        "the server's clock when omitted.",
    )
    context: dict[str, Any] = Field(default_factory=dict, max_length=MAX_FIELDS)
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="A unique key per event (e.g. a UUID): a retried event with a key already "
        "stored is not stored again.",
    )

    @field_validator("value")
    @classmethod
    def _value_finite(cls, value: float) -> float:
        return _finite(value, "value")

    @field_validator("ts")
    @classmethod
    def _ts_in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=UTC)  # naive times are read as UTC, the store's clock
        try:
            in_range = MIN_TS <= value <= MAX_TS
        except OverflowError:  # +14:00 on 0001-01-01 has no UTC time
            in_range = False
        if not in_range:
            raise ValueError(
                f"{value.isoformat()} is outside {MIN_TS.date()} .. {MAX_TS.date()} (UTC); send "
                "the time the event happened, or omit ts for the server's clock"
            )
        return value

    @field_validator("context")
    @classmethod
    def _context_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _bounded_json(value, "context")


class EventsIn(_Strict):
    """``POST /v1/events``: a batch of interactions, stored in one transaction."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class WriteAck(BaseModel):
    """What a write stored (committed before this answer was sent)."""

    stored: int = Field(description="Records stored by this call.")
    ids: list[int] = Field(description="Store-assigned sequence numbers (events: event ids).")
    duplicates: int = Field(
        0,
        description="Events not stored again because their idempotency key was already stored "
        "(their ids are the stored events' ids).",
    )


class RecentItem(_Strict):
    """An interaction revealed by an anonymous user at request time (never stored)."""

    item: IdStr
    value: Value = 1.0
    kind: KindStr = "rating"

    @field_validator("value")
    @classmethod
    def _value_finite(cls, value: float) -> float:
        return _finite(value, "value")


class RecommendIn(_Strict):
    """``POST /v1/recommendations``: an anonymous or brand-new user described in the body."""

    profile: str | None = Field(None, max_length=MAX_TEXT, description="Free-text profile.")
    recent: list[RecentItem] = Field(default_factory=list, max_length=MAX_RECENT)
    k: StrictInt = Field(10, ge=1, le=MAX_K)
    exclude_seen: StrictBool = Field(True, description="Leave out the items in ``recent``.")


class HistoryContribution(BaseModel):
    item: str
    contribution: float = Field(description="Drop in the item's score without this history item.")


class FieldContribution(BaseModel):
    field: str
    contribution: float = Field(description="Drop in the item's score without this item field.")


class Explanation(BaseModel):
    """Why an item was recommended (``explain=true``): leave-one-out through the served model."""

    history: list[HistoryContribution] = Field(
        description="The user's history items that raised the score most, largest first."
    )
    fields: list[FieldContribution] | None = Field(
        None,
        description="The item's fields that raised its score most (two-tower models with the "
        "item's record); None when the model cannot attribute to fields (see notes).",
    )
    notes: list[str] = Field(default_factory=list, description="What could not be explained.")


class Recommendation(BaseModel):
    item: str
    score: float
    title: str | None = Field(
        None,
        description="What to show people: the item's title (or name) field, else the start of "
        "its text (the store's record, else the catalogue of `dayzero fit`); None when unknown.",
    )
    explanation: Explanation | None = Field(
        None, description="With `explain=true`: the history items and item fields behind it."
    )


class RecommendOut(BaseModel):
    """Items best first, with their scores (inner products of the served model)."""

    user: str | None
    version: str
    items: list[Recommendation]
    new_user: bool = Field(description="True when served from profile / events only.")


class SimilarOut(BaseModel):
    item: str
    version: str
    items: list[Recommendation]


class ItemOut(BaseModel):
    """``GET /v1/items/{item_id}``: what the service knows of one item."""

    item: str
    title: str | None = Field(description="Its title (or name) field, else the start of its text.")
    text: str = Field(description="Its free text (the catalogue's short text when not stored).")
    fields: dict[str, Any] = Field(description="Its JSON attributes in the event store.")
    stored: bool = Field(description="The event store holds a record of it.")
    served: bool = Field(description="The served version can recommend it (it has a vector).")


class RiskIn(_Strict):
    """``POST /v1/risk/score``: applicants as rows of the training columns."""

    applicants: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_APPLICANTS,
        description="One object per applicant: the model's columns (a missing key or null is a "
        "missing value). The label column and the ids `dayzero risk fit --exclude` named may "
        "be present; they are not scored. Any other key is refused, naming it.",
    )
    top: StrictInt = Field(3, ge=1, le=MAX_TOP_REASONS, description="Reason codes per applicant.")
    target: str | None = Field(
        None,
        max_length=200,
        description="Label column present in the applicants, dropped before scoring. Default: "
        "the model's target (training.json of `dayzero risk fit`).",
    )

    @field_validator("applicants")
    @classmethod
    def _rows_bounded(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_bounded_json(row, f"applicants[{i}]") for i, row in enumerate(value)]


class Reason(BaseModel):
    field: str
    value: Any
    contribution: float = Field(description="Log-odds of default the field adds (> 0: riskier).")
    points: float


class RiskScore(BaseModel):
    probability: float = Field(description="Probability of default.")
    points: float
    reasons: list[Reason]
    ids: dict[str, Any] = Field(
        default_factory=dict,
        description="The applicant's pass-through columns (the ids `dayzero risk fit --exclude` "
        "named) as sent, so each score can be matched to its applicant.",
    )


class RiskOut(BaseModel):
    scores: list[RiskScore]


class ModelOut(BaseModel):
    version: str | None
    metrics: dict[str, Any]
    watermark: int | None
    config: dict[str, Any]
    index_size: int
    index_kind: str | None
    folded_items: int = Field(description="Items folded in since the version was loaded.")
    notice: str | None = Field(
        None,
        description="Why the served version is not the registry's current one (a damaged "
        "version the service refused), or None.",
    )


class PromoteIn(_Strict):
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class AdminOut(BaseModel):
    version: str
    previous: str | None
    index_size: int


class Health(BaseModel):
    status: Literal["ok", "no-model"]
    version: str | None
    process: int = Field(description="The answering process id (one of several workers).")


class ErrorOut(BaseModel):
    """An error: a message naming the field and the fix, or (422 from request validation)
    FastAPI's list of ``{"loc", "msg", "type"}`` entries."""

    detail: str | list[dict[str, Any]]
