"""Request bodies: every bound and refusal names its field."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from dayzero.serve import schemas as s


def _fields(exc: ValidationError) -> set[str]:
    return {str(part) for error in exc.errors() for part in error["loc"]}


def test_defaults():
    event = s.EventIn(user="u", item="i")
    assert (event.kind, event.value, event.ts, event.context) == ("rating", 1.0, None, {})
    body = s.RecommendIn()
    assert (body.profile, body.recent, body.k, body.exclude_seen) == (None, [], 10, True)
    assert s.EntityIn(id="x").text == ""


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (s.EntityIn, {"id": ""}, "id"),
        (s.EntityIn, {"id": "   "}, "id"),
        (s.EntityIn, {"id": "x" * (s.MAX_ID + 1)}, "id"),
        (s.EntityIn, {"id": "x", "text": "t" * (s.MAX_TEXT + 1)}, "text"),
        (s.EntityIn, {"id": "x", "colour": "red"}, "colour"),
        (s.EntityIn, {"id": "x", "fields": {str(n): n for n in range(s.MAX_FIELDS + 1)}}, "fields"),
        (s.ItemsIn, {"items": []}, "items"),
        (s.UsersIn, {"users": [{"id": "u"}] * (s.MAX_BATCH_ENTITIES + 1)}, "users"),
        (s.EventIn, {"user": "u", "item": "i", "value": math.inf}, "value"),
        (s.EventIn, {"user": "u", "item": "i", "value": math.nan}, "value"),
        (s.EventIn, {"user": "u", "item": "i", "kind": "two words"}, "kind"),
        (s.EventIn, {"user": "u", "item": "i", "kind": "k" * 33}, "kind"),
        (s.EventIn, {"user": "u", "item": "i", "ts": "yesterday"}, "ts"),
        (s.EventsIn, {"events": [{"user": "u", "item": "i"}] * (s.MAX_BATCH_EVENTS + 1)}, "events"),
        (s.RecommendIn, {"k": 0}, "k"),
        (s.RecommendIn, {"k": s.MAX_K + 1}, "k"),
        (s.RecommendIn, {"recent": [{"item": "i"}] * (s.MAX_RECENT + 1)}, "recent"),
        (s.RecommendIn, {"recent": [{"item": "i", "value": math.nan}]}, "value"),
        (s.RiskIn, {"applicants": []}, "applicants"),
        (s.RiskIn, {"applicants": [{}], "top": 0}, "top"),
        (s.PromoteIn, {"version": "../../etc"}, "version"),
        (s.EntityIn, {"id": "a/b"}, "id"),
        (s.EntityIn, {"id": ".."}, "id"),
        (s.EntityIn, {"id": "x", "fields": {"a": "x" * s.MAX_JSON_BYTES}}, "fields"),
        (s.ItemsIn, {"items": [{"id": "x"}, {"id": "x"}]}, "items"),
        (s.UsersIn, {"users": [{"id": "x"}, {"id": "y"}, {"id": "x"}]}, "users"),
        (s.EventIn, {"user": "u", "item": "i", "value": True}, "value"),
        (s.EventIn, {"user": "u", "item": "i", "value": "4"}, "value"),
        (s.EventIn, {"user": "u", "item": "i", "ts": "1899-12-31T23:00:00Z"}, "ts"),
        (s.EventIn, {"user": "u", "item": "i", "ts": "0001-01-01T00:00:00+14:00"}, "ts"),
        (s.EventIn, {"user": "u", "item": "i", "idempotency_key": ""}, "idempotency_key"),
        (s.RecommendIn, {"k": "5"}, "k"),
        (s.RecommendIn, {"exclude_seen": 1}, "exclude_seen"),
        (s.RiskIn, {"applicants": [{}], "top": 2.0}, "top"),
    ],
)
def test_refusals_name_the_field(model, data, field):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert field in _fields(caught.value)


def test_bounds_are_inclusive():
    assert s.RecommendIn(k=s.MAX_K).k == s.MAX_K
    assert len(s.EventsIn(events=[{"user": "u", "item": "i"}] * s.MAX_BATCH_EVENTS).events) == (
        s.MAX_BATCH_EVENTS
    )
    assert s.EventIn(user="u", item="i", kind="_click2").kind == "_click2"


def test_naive_times_are_utc_and_the_range_is_inclusive():
    assert s.EventIn(user="u", item="i", ts="2024-01-01T00:00:00").ts.utcoffset().seconds == 0
    assert s.EventIn(user="u", item="i", ts="1900-01-01T00:00:00Z").ts.year == 1900
    assert s.EventIn(user="u", item="i", ts="2200-01-01T00:00:00Z").ts.year == 2200
    assert s.EventIn(user="u", item="i", value=4).value == 4.0  # JSON integers are numbers


def test_a_lone_surrogate_anywhere_is_refused_with_its_place():
    with pytest.raises(ValidationError, match=r"items\[0\]\.fields\.a\[1\] contains an unpaired"):
        s.ItemsIn.model_validate({"items": [{"id": "x", "fields": {"a": ["ok", "\ud800"]}}]})
    with pytest.raises(ValidationError, match="profile contains an unpaired"):
        s.RecommendIn.model_validate({"profile": "\udfff"})
