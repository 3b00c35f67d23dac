"""dayzero.risk.reasons: field and value labels, and the wording of a reason code."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.risk.reasons import field_name, labelled, reason_text, split_labels, value_text


def test_split_labels_field_names_and_value_labels():
    fields, values = split_labels(
        {"credit_amount": "amount of credit", "SEX": {1: "male", 2.0: "female"}}
    )
    assert fields == {"credit_amount": "amount of credit"}
    assert values == {"SEX": {"1": "male", "2": "female"}}  # codes canonical: 2.0 -> "2"
    assert split_labels(None) == ({}, {})


def test_split_labels_bad_entries_name_the_column():
    with pytest.raises(TypeError, match=r"labels\['SEX'\] must be a field name .* got int"):
        split_labels({"SEX": 1})
    with pytest.raises(TypeError, match=r"labels\['SEX'\] has a missing code"):
        split_labels({"SEX": {None: "unknown"}})


def test_value_labels_match_codes_whatever_their_type():
    names = {"1": "male", "2": "female"}
    assert [labelled(v, names) for v in (2, 2.0, "2", np.int64(1))] == [
        "female",
        "female",
        "female",
        "male",
    ]
    assert labelled(3, names) == 3 and labelled(None, names) is None and labelled(2, None) == 2


def test_value_text():
    assert value_text(2, {"2": "female"}) == "female"
    assert value_text(1169.0, unit="DM") == "1,169 DM"
    assert value_text(None) == value_text(np.nan) == "not given"
    assert value_text("  car  (new) ") == "car (new)"
    long = "word " * 40
    shown = value_text(long, is_text=True)
    assert shown.startswith('"word word') and shown.endswith(' ..."') and len(shown) < 70


def test_reason_text():
    fields, values = split_labels({"SEX": {1: "male", 2: "female"}, "LIMIT_BAL": "credit limit"})
    assert reason_text("SEX", 2, 0.3, fields, values, {}) == "SEX is female (raises risk)"
    assert (
        reason_text("LIMIT_BAL", 20000, -0.1, fields, values, {"LIMIT_BAL": "NT$"})
        == "credit limit is 20,000 NT$ (lowers risk)"
    )
    assert reason_text("pay_status", None, 0.2, fields, values, {}) == (
        "pay status is not given (raises risk)"
    )
    assert reason_text("SEX", 3, 0.1, fields, values, {}, unknown=True) == (
        "SEX is 3 (unseen category, raises risk)"
    )
    assert field_name("duration_in_month", {}) == "duration in month"
