"""What an error body may echo is made JSON-encodable first."""

from __future__ import annotations

import json
import math

from dayzero.serve.errors import encodable_json, encodable_text


def test_non_finite_numbers_are_named():
    assert encodable_json([math.nan, math.inf, -math.inf, 1.5, 2]) == ["nan", "inf", "-inf", 1.5, 2]


def test_lone_surrogates_are_escaped_in_values_and_keys():
    value = {"ok": "fine", "bad\ud800": ("x\udfff", {"deep": "\ud83d"})}
    out = encodable_json(value)
    assert out == {"ok": "fine", "bad\\ud800": ["x\\udfff", {"deep": "\\ud83d"}]}
    json.dumps(out).encode("utf-8")  # encodes: no UnicodeEncodeError
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_valid_text_is_returned_unchanged():
    text = "naïve 😀 text"
    assert encodable_text(text) is text
    assert encodable_json({"n": None, "b": True, "t": text}) == {"n": None, "b": True, "t": text}
