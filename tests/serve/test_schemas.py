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
