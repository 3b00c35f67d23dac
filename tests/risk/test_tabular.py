"""dayzero.risk.tabular: column typing, free-text detection, category codes, text reduction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.risk import tabular


def test_canonical_codes_are_one_string_whatever_their_type():
    assert [tabular.canonical(v) for v in (2, 2.0, "2", np.int64(2), np.float32(2))] == ["2"] * 5
    assert tabular.canonical(2.5) == "2.5" and tabular.canonical(True) == "True"
    assert tabular.canonical("  car   (new) ") == "car (new)"
    assert [tabular.canonical(v) for v in (None, np.nan, "", "?", "   ")] == [None] * 5
    series = pd.Series([1, 2.0, None, "1", "x"], dtype=object)
    assert tabular.canonical_array(series).tolist() == ["1", "2", None, "1", "x"]


def test_numeric_like_columns():
    assert tabular.is_numeric_like(pd.Series([1, 2, np.nan]))
    assert tabular.is_numeric_like(pd.Series(["1", "2.5", None], dtype=object))
    assert not tabular.is_numeric_like(pd.Series(["1", "two"], dtype=object))
    assert not tabular.is_numeric_like(pd.Series([True, False]))
    assert not tabular.is_numeric_like(pd.Series([None, None], dtype=object))


def test_free_text_is_detected_and_categoricals_are_not():
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "purpose": rng.choice(["car (new)", "furniture / equipment", "radio / television"], n),
            "note": [f"paid back loan number {i} on time" for i in range(n)],  # sentences
            "employer": [f"acme{i % 150}" for i in range(n)],  # one word, mostly distinct
            "code": [f"c{i % 40}" for i in range(n)],  # 40 one-word values: a categorical
            "few": [f"short note {i}" for i in range(10)] * 20,  # too few distinct
            "applied": [f"2017-05-{i % 28 + 1:02d} 07:{i % 60:02d}" for i in range(n)],  # dates
            "ref": [f"{i:06d}-{i % 7}" for i in range(n)],  # an id: no letters
        }
    )
    assert tabular.detect_text_columns(frame, frame.columns) == ["note", "employer"]


def test_split_columns_named_detected_and_overridden():
    frame = pd.DataFrame(
        {
            "age": [30, 40, 50] * 20,
            "SEX": [1, 2, 1] * 20,
            "note": [f"a long free text number {i}" for i in range(60)],
            "job": ["a", "b", "c"] * 20,
        }
    )
    assert tabular.split_columns(frame, None) == (["age", "SEX"], ["job"], ["note"])
    assert tabular.split_columns(frame, None, ["SEX"]) == (["age"], ["SEX", "job"], ["note"])
    assert tabular.split_columns(frame, []) == (["age", "SEX"], ["note", "job"], [])
    assert tabular.split_columns(frame, ["job"]) == (["age", "SEX"], ["note"], ["job"])


def test_category_codes_mark_missing_and_unseen():
    frame = pd.DataFrame({"job": ["b", "a", None, "b"]})
    categories = tabular.fit_categories(frame, ["job"])
    assert categories == {"job": ["a", "b"]}
    codes, unseen = tabular.category_codes(pd.Series(["a", "z", None, "b", 1]), ["a", "b"])
    np.testing.assert_array_equal(codes, [0.0, np.nan, np.nan, 1.0, np.nan])
    assert unseen.tolist() == [False, True, False, False, True]
    codes, _ = tabular.category_codes(pd.Series([1.0, 2, "2"]), ["1", "2"])
    np.testing.assert_array_equal(codes, [0.0, 1.0, 1.0])


def test_present_texts():
    series = pd.Series(["  good   job ", None, "", "?", np.nan, "N/A", "ok"])
    assert tabular.present_texts(series) == ["good job", None, None, None, None, None, "ok"]


def test_text_reducer_finds_the_direction_that_varies():
    rng = np.random.default_rng(0)
    direction = np.zeros(8)
    direction[2] = 1.0
    scores = rng.normal(size=100)
    vectors = 0.5 + scores[:, None] * direction + 0.01 * rng.normal(size=(100, 8))
    reducer = tabular.TextReducer(3).fit(vectors)
    assert reducer.k == 3
    assert abs(reducer.components_[0, 2]) == pytest.approx(1.0, abs=1e-3)
    assert reducer.components_[0, 2] > 0  # sign fixed: the largest entry is positive
    present = np.arange(100) % 10 != 0
    out = reducer.transform(vectors[present], present)
    assert out.shape == (100, 3) and np.isnan(out[~present]).all()
    np.testing.assert_allclose(np.abs(np.corrcoef(out[present, 0], scores[present])[0, 1]), 1, 1e-3)
    # Refits give the same features, and the arrays round-trip exactly.
    np.testing.assert_array_equal(
        tabular.TextReducer(3).fit(vectors).components_, reducer.components_
    )
    back = tabular.TextReducer.from_arrays(reducer.to_arrays("text.0"), "text.0")
    np.testing.assert_array_equal(
        back.transform(vectors, np.ones(100, bool)), reducer.transform(vectors, np.ones(100, bool))
    )


def test_text_reducer_keeps_no_more_components_than_the_texts_span():
    vectors = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])
    assert tabular.TextReducer(16).fit(vectors).k == 1
    assert tabular.TextReducer(4).fit(vectors[:1]).k == 0
    empty = tabular.TextReducer(4).fit(np.zeros((0, 3)))
    assert empty.k == 0 and empty.transform(None, np.zeros(5, bool)).shape == (5, 0)


def test_datetime_columns_are_numeric_days():
    frame = pd.DataFrame(
        {
            "applied": pd.to_datetime(["1970-01-02", None, "2000-01-01 12:00"], format="ISO8601"),
            "job": list("abc"),
        }
    )
    assert tabular.split_columns(frame, None) == (["applied"], ["job"], [])
    days, wrong = tabular.datetime_days(frame["applied"])
    np.testing.assert_array_equal(days, [1.0, np.nan, 10957.5])
    days, wrong = tabular.datetime_days(
        pd.Series(["1970-01-03", "", "later", "1970-01-01 06:00"], dtype=object)
    )
    np.testing.assert_array_equal(days, [2.0, np.nan, np.nan, 0.25])
    assert wrong.tolist() == [False, False, True, False]
