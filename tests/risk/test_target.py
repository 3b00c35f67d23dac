"""The label column of a risk model: checked, stored beside the model, dropped when scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dayzero.risk.target import (
    TRAINING_FILE,
    ColumnError,
    TargetError,
    TrainingInfo,
    binary_columns,
    check_target,
    default_flags,
    scoring_columns,
)


def test_binary_columns_ignore_missing_values_and_keep_order():
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "bad": ["y", "n", None, "n"],
            "age": [30, 41, 52, 30],
            "default": [0, 1, 1, 0],
            "const": [1, 1, 1, 1],
        }
    )
    assert binary_columns(frame) == ["bad", "default"]


def test_check_target_accepts_two_labels():
    check_target(pd.Series([0, 1, 1, 0]), "default")
    check_target(pd.Series(["good", "bad"]), "risk")


def test_check_target_names_the_first_empty_row():
    with pytest.raises(TargetError, match="empty in 2 of 5 rows") as caught:
        check_target(pd.Series([0, 1, None, 0, np.nan]), "default")
    assert caught.value.row == 2 and caught.value.column == "default"


def test_check_target_one_value_and_many_values_suggest_candidates():
    with pytest.raises(TargetError, match="one value only") as caught:
        check_target(pd.Series([0, 0, 0]), "default", ["default", "flag"])
    assert "binary columns of this table: ['flag']" in str(caught.value)
    assert caught.value.row is None
    with pytest.raises(TargetError, match="has 3 values") as caught:
        check_target(pd.Series(["paid", "late", "charged off", "paid"]), "status", ["status"])
    message = str(caught.value)
    assert "'paid': 2" in message and "map it to two values" in message
    assert "binary columns" not in message  # the only candidate is the column itself


def test_training_info_round_trip_with_numpy_label(tmp_path):
    info = TrainingInfo("default", np.int64(1), ["age", "checking"], ["id"])
    path = info.save(tmp_path)
    assert path == tmp_path / TRAINING_FILE
    assert json.loads(path.read_text())["positive_label"] == 1
    assert TrainingInfo.load(tmp_path, features=["age", "checking"]) == TrainingInfo(
        "default", 1, ["age", "checking"], ["id"]
    )
    assert TrainingInfo.load(tmp_path / "elsewhere") is None


def test_training_info_refuses_a_foreign_or_stale_file(tmp_path):
    TrainingInfo("default", 1, ["age"]).save(tmp_path)
    with pytest.raises(ValueError, match="left by another model"):
        TrainingInfo.load(tmp_path, features=["age", "income"])
    (tmp_path / TRAINING_FILE).write_text('{"target": "x"}')
    with pytest.raises(ValueError, match="not a training description"):
        TrainingInfo.load(tmp_path)
    (tmp_path / TRAINING_FILE).write_text("not json")
    with pytest.raises(ValueError, match="refit the model"):
        TrainingInfo.load(tmp_path)


def test_scoring_columns_drop_target_and_carry_passthrough():
    plan = scoring_columns(
        ["id", "age", "default", "checking"],
        ["age", "checking"],
        target="default",
        passthrough=["id"],
    )
    assert plan.target == "default" and plan.passthrough == ["id"]
    plain = scoring_columns(["checking", "age"], ["age", "checking"], target="default")
    assert plain.target is None and plain.passthrough == []


def test_scoring_columns_name_unknown_and_missing_columns():
    with pytest.raises(ColumnError) as caught:
        scoring_columns(["age", "salary", "default"], ["age", "checking"])
    error = caught.value
    assert error.unexpected == ["salary", "default"] and error.missing == ["checking"]
    assert "not fitted on: ['salary', 'default']" in str(error)
    assert "missing: ['checking']" in str(error)


def test_default_flags_match_labels_read_back_as_other_types():
    classes = np.array([0, 1])
    np.testing.assert_array_equal(
        default_flags(pd.Series(["1", "0", "1"], name="y"), classes, 1), [True, False, True]
    )
    np.testing.assert_array_equal(
        default_flags(pd.Series([1.0, 0.0], name="y"), classes, np.int64(1)), [True, False]
    )
    np.testing.assert_array_equal(
        default_flags(pd.Series(["bad", "good"], name="y"), np.array(["bad", "good"]), "bad"),
        [True, False],
    )


def test_default_flags_name_the_first_bad_row():
    with pytest.raises(TargetError, match="'maybe' \\(row 1\\)") as caught:
        default_flags(pd.Series([0, "maybe", 1], name="y"), np.array([0, 1]), 1)
    assert caught.value.row == 1
    with pytest.raises(TargetError, match="empty in 1 rows") as caught:
        default_flags(pd.Series([0.0, 1.0, None], name="y"), np.array([0, 1]), 1)
    assert caught.value.row == 2
