"""Field-kind inference: each kind from its values, the reasons, overrides, preparation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from dayzero.core.fields import (
    FIELD_KINDS,
    describe,
    infer_field,
    infer_fields,
    infer_kind,
    prepare_columns,
)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([True, False, None], "boolean"),
        (["yes", "no", "Yes", ""], "boolean"),
        ([1, 2.5, np.nan], "numeric"),
        (["4.5", "3", "-1e3"], "numeric"),
        ([["a", "b"], [], ["c"]], "multi"),
        (["Animation|Comedy", "Drama", "Comedy|Drama"], "multi"),
        (["a; b", "b", "c; a"], "multi"),
        (["Paris", "Lyon", "Paris", "Paris"], "categorical"),
        (["Toy Story", "Heat", "Grumpier Old Men"], "text"),
        (["A boy and his dog cross the country, looking for home."] * 2, "text"),
        (["2024-01-05", "2023-12-31 10:00", None], "date"),
        (["01-Jan-1995", "12-Mar-1996"], "date"),
        ([pd.Timestamp("2024-01-01"), dt.date(2020, 1, 1)], "date"),
        ([1, "x"], "categorical"),
        ([None, "", np.nan], None),
        ([{"k": 1}, {"k": 2}], None),
    ],
)
def test_each_kind_is_inferred_from_its_values(values, kind):
    assert infer_field(values).kind == kind
    assert infer_kind(values) == kind
    assert kind is None or kind in FIELD_KINDS


def test_commas_make_a_list_only_of_short_repeated_labels():
    labels = ["Action, Crime", "Crime, Drama", "Action, Drama", "Drama"]
    assert infer_field(labels).separator == ","
    prose = [
        "A cop and a thief, both at the top of their game, meet once.",
        "Two old men, neighbours, fight over a widow.",
    ]
    assert infer_field(prose).kind == "text"


def test_a_column_of_unique_single_words_looks_like_an_id_and_is_left_out():
    guess = infer_field([f"tt{n:07d}" for n in range(30)], "imdb")
    assert guess.kind is None and "id" in guess.reason and guess.column == "imdb"


def test_infer_fields_keeps_given_kinds_and_infers_the_rest():
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "year": [1995, 1999, 1995], "tags": ["a|b", "b", "c|a"], "x": [1, 2, 3]}
    )
    guesses = infer_fields(frame, {"year": "categorical", "x": None}, exclude=["id"])
    by_name = {g.column: g for g in guesses}
    assert list(by_name) == ["year", "tags", "x"]
    assert by_name["year"].kind == "categorical" and by_name["year"].given
    assert by_name["x"].kind is None and by_name["x"].given
    assert by_name["tags"].kind == "multi" and not by_name["tags"].given
    assert "year: categorical (given)" in describe(guesses)


def test_a_given_multi_field_finds_its_separator():
    frame = pd.DataFrame({"tags": ["a;b", "c", None]})
    (guess,) = infer_fields(frame, {"tags": "multi"})
    assert guess.separator == ";"
    prepared = prepare_columns(frame, [guess])
    assert prepared["tags"].tolist() == [["a", "b"], ["c"], []]


def test_prepare_columns_converts_values_to_their_kind():
    frame = pd.DataFrame(
        {"family": ["yes", "no", None], "price": ["1.5", "2", None], "title": ["A", "B", "C"]}
    )
    prepared = prepare_columns(frame, infer_fields(frame))
    assert prepared["family"].tolist() == [True, False, pd.NA]
    assert prepared["price"].tolist()[:2] == [1.5, 2.0]
    assert prepared["title"].tolist() == ["A", "B", "C"]
    assert frame["family"].tolist()[0] == "yes"  # the input is not changed
