from __future__ import annotations

import pandas as pd
import pytest

from dayzero.core.schema import SchemaError
from dayzero.datasets.labelled import LabelledFrame


def _frame() -> LabelledFrame:
    df = pd.DataFrame(
        {
            "text": ["up", "down", "flat", "up again"],
            "amount": [1.0, 2.0, 3.0, 4.0],
            "raw": ["pos", "neg", "neu", "pos"],
            "label": [2, 0, 1, 2],
            "split": ["train", "train", "valid", "valid"],
        }
    )
    return LabelledFrame(
        df,
        "label",
        ["text"],
        [0, 1, 2],
        "toy",
        split_column="split",
        extra_columns=["raw"],
        kinds={"amount": "numeric"},
    )


def test_x_excludes_target_split_and_extra_columns():
    data = _frame()
    assert data.X.columns.tolist() == ["text", "amount"]
    assert data.y.tolist() == [2, 0, 1, 2]
    assert data.kinds == {"text": "text", "amount": "numeric"}


def test_split_selects_rows_and_keeps_metadata():
    data = _frame()
    assert data.splits == ["train", "valid"]
    valid = data.split("valid")
    assert valid.y.tolist() == [1, 2]
    assert valid.features == data.features and valid.name == "toy"
    with pytest.raises(KeyError, match=r"splits are"):
        data.split("test")


def test_counts_follow_class_order():
    assert _frame().counts() == {0: 1, 1: 1, 2: 2}


def test_label_outside_classes_is_rejected():
    df = pd.DataFrame({"text": ["a"], "label": [5]})
    with pytest.raises(SchemaError, match=r"outside classes"):
        LabelledFrame(df, "label", ["text"], [0, 1], "toy")


def test_to_entities_types_features():
    entities = _frame().to_entities()
    assert entities.kind == "applicant"
    assert entities.fields == {"text": "text", "amount": "numeric"}
    assert len(entities) == 4


def test_from_splits_concatenates_parts_in_order_with_a_split_column():
    parts = {
        "train": pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}),
        "valid": pd.DataFrame({"text": ["c"], "label": [1]}),
    }
    data = LabelledFrame.from_splits(parts, "label", ["text"], [0, 1], "toy", class_names={0: "n"})
    assert data.frame.columns.tolist() == ["text", "label", "split"]
    assert data.frame["split"].tolist() == ["train", "train", "valid"]
    assert data.frame.index.tolist() == [0, 1, 2] and data.features == ["text"]
    assert data.split_column == "split" and data.class_names == {0: "n"}
    assert "split" not in parts["train"].columns
