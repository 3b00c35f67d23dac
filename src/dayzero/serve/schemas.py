"""Request and response bodies of the HTTP service (pydantic v2).

Every bound lives here (ids, texts, batch sizes, ``k``) so that an invalid request is refused
with a 422 whose ``detail`` names the field, before any work is done.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_ID = 256
MAX_TEXT = 4_000
MAX_BATCH_ENTITIES = 1_000
MAX_BATCH_EVENTS = 1_000
MAX_RECENT = 200
MAX_K = 100
MAX_FIELDS = 64
MAX_APPLICANTS = 100
MAX_TOP_REASONS = 10
# Ratings, clicks and weights are small numbers; a bound keeps user vectors finite.
MAX_ABS_VALUE = 1e6

# At least one non-space character: the store refuses empty ids.
IdStr = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=r"\S")]
# The store's event kinds: short identifiers such as "rating", "click", "purchase".
KindStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")]


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


class _Strict(BaseModel):
    # Unknown keys are refused so that a misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class EntityIn(_Strict):
    """An item or a user: free text plus JSON attributes."""

    id: IdStr
    text: str = Field("", max_length=MAX_TEXT, description="Description or profile text.")
    fields: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_FIELDS,
        description="JSON attributes (genre, price, ...).",
    )


class ItemsIn(_Strict):
    """``POST /v1/items``: a batch of items to add or replace."""

    items: list[EntityIn] = Field(min_length=1, max_length=MAX_BATCH_ENTITIES)


class UsersIn(_Strict):
    """``POST /v1/users``: a batch of user profiles to add or replace."""

    users: list[EntityIn] = Field(min_length=1, max_length=MAX_BATCH_ENTITIES)


class EventIn(_Strict):
    """One interaction."""

    user: IdStr
    item: IdStr
    kind: KindStr = "rating"
    value: float = Field(
        1.0, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE, description="Rating or weight (finite)."
    )
    ts: datetime | None = Field(None, description="UTC time; the server's clock when omitted.")
    context: dict[str, Any] = Field(default_factory=dict, max_length=MAX_FIELDS)

    @field_validator("value")
    @classmethod
    def _value_finite(cls, value: float) -> float:
        return _finite(value, "value")


class EventsIn(_Strict):
    """``POST /v1/events``: a batch of interactions, stored in one transaction."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class WriteAck(BaseModel):
    """What a write stored (committed before this answer was sent)."""

    stored: int
    ids: list[int] = Field(description="Store-assigned sequence numbers (events: event ids).")


class RecentItem(_Strict):
    """An interaction revealed by an anonymous user at request time (never stored)."""

    item: IdStr
    value: float = Field(1.0, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)
    kind: KindStr = "rating"

    @field_validator("value")
    @classmethod
    def _value_finite(cls, value: float) -> float:
        return _finite(value, "value")


class RecommendIn(_Strict):
    """``POST /v1/recommendations``: an anonymous or brand-new user described in the body."""

    profile: str | None = Field(None, max_length=MAX_TEXT, description="Free-text profile.")
    recent: list[RecentItem] = Field(default_factory=list, max_length=MAX_RECENT)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = Field(True, description="Leave out the items in ``recent``.")


class Recommendation(BaseModel):
    item: str
    score: float


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


class RiskIn(_Strict):
    """``POST /v1/risk/score``: applicants as rows of the training columns."""

    applicants: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_APPLICANTS)
    top: int = Field(3, ge=1, le=MAX_TOP_REASONS, description="Reason codes per applicant.")


class Reason(BaseModel):
    field: str
    value: Any
    contribution: float = Field(description="Log-odds of default the field adds (> 0: riskier).")
    points: float


class RiskScore(BaseModel):
    probability: float = Field(description="Probability of default.")
    points: float
    reasons: list[Reason]


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


class PromoteIn(_Strict):
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class AdminOut(BaseModel):
    version: str
    previous: str | None
    index_size: int


class Health(BaseModel):
    status: Literal["ok", "no-model"]
    version: str | None


class ErrorOut(BaseModel):
    """An error: a message naming the field and the fix, or (422 from request validation)
    FastAPI's list of ``{"loc", "msg", "type"}`` entries."""

    detail: str | list[dict[str, Any]]
