from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Entities
from dayzero.recommend.features import AttributeEncoder, TokenEncoder


@pytest.fixture
def movies() -> Entities:
    frame = pd.DataFrame(
        {
            "rated": ["PG", "R", "PG", None],
            "genres": [["Drama"], ["Drama", "War"], ["Comedy"], ["Comedy"]],
            "year": [1990, 2000, None, 2010],
            "director": ["Ann", "Ann", "Bob", "Cid"],
            "title": ["a", "b", "c", "d"],
        },
        index=[1, 2, 3, 4],
    )
    fields = {
        "rated": "categorical",
        "genres": "multi",
        "year": "numeric",
        "director": "categorical",
        "title": "text",
    }
    return Entities(frame, fields)


def test_attribute_encoder_one_hot_multi_hot_and_standardised(movies):
    enc = AttributeEncoder(max_values=2, min_count=2).fit(movies)
    # rated: PG (2x) kept, R once dropped; genres: Drama, Comedy; director: only Ann repeats
    names = [(c[0], c[2]) for c in enc.columns_ if c[1] != "numeric"]
    assert names == [
        ("rated", "PG"),
        ("genres", "Comedy"),
        ("genres", "Drama"),
        ("director", "Ann"),
    ]
    x = enc.transform(movies, [1, 3, 99])
    assert x.shape == (3, enc.width)
    year = [c[0] for c in enc.columns_].index("year")
    mean, std = np.mean([1990, 2000, 2010]), np.std([1990, 2000, 2010])
    assert x[0, year] == pytest.approx((1990 - mean) / std)
    assert x[1, year] == 0.0 and not x[2].any()  # missing year, unknown id
    assert x[0, 0] == 1.0 and x[1, 0] == 1.0
    again = AttributeEncoder.from_json(enc.to_json())
    np.testing.assert_array_equal(again.transform(movies, [1, 2]), enc.transform(movies, [1, 2]))


def test_high_cardinality_fields_go_to_tokens(movies):
    enc = AttributeEncoder(max_values=1, min_count=1).fit(movies)
    assert "director" not in enc.fields  # three directors > max_values
    tokens = TokenEncoder(exclude=enc.fields, min_count=1).fit(movies)
    assert "director=Ann" in tokens.vocab_
    indices, offsets = tokens.transform(movies, [1, 4, 99])
    assert offsets.tolist()[0] == 0 and len(offsets) == 3
    first = indices[offsets[0] : offsets[1]]
    assert tokens.vocab_["director=Ann"] in first.tolist()
    assert offsets[2] == len(indices)  # unknown id: empty bag
    again = TokenEncoder.from_json(tokens.to_json())
    assert again.vocab_ == tokens.vocab_


def test_lexical_encoder_weighs_words_by_training_idf_and_drops_unseen_ones():
    from dayzero.recommend.features import LexicalEncoder

    training = ["space alien robot", "space war film", "love story film"]
    encoder = LexicalEncoder().fit(training)
    assert encoder.vocab_ == ["alien", "film", "love", "robot", "space", "story", "war"]
    indices, offsets, weights = encoder.transform(["alien film", "unseen words", "alien alien"])
    assert offsets.tolist() == [0, 2, 2]
    words = [encoder.vocab_[i] for i in indices]
    assert words == ["alien", "film", "alien"]  # "unseen words" gives an empty bag
    # unit length rows; the rarer word weighs more
    first = weights[:2]
    np.testing.assert_allclose(np.linalg.norm(first), 1.0, rtol=1e-6)
    assert first[0] > first[1]
    np.testing.assert_allclose(weights[2], 1.0, rtol=1e-6)
    again = LexicalEncoder.from_json(encoder.to_json(), encoder.idf_)
    for a, b in zip(
        again.transform(["alien film"]), encoder.transform(["alien film"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_lexical_encoder_without_words_is_empty():
    from dayzero.recommend.features import LexicalEncoder

    encoder = LexicalEncoder().fit(["", "  ", "the and of"])
    assert encoder.size == 0
    indices, offsets, weights = encoder.transform(["anything", ""])
    assert len(indices) == len(weights) == 0 and offsets.tolist() == [0, 0]


def test_numeric_dates_are_standardised_as_seconds():
    # Steam's release_date is a "numeric" field holding timestamps (datetime64 in the frame)
    frame = pd.DataFrame(
        {"released": pd.to_datetime(["2001-01-01", "2011-01-01", None, "2021-01-01"])},
        index=["a", "b", "c", "d"],
    )
    games = Entities(frame, {"released": "numeric"})
    enc = AttributeEncoder().fit(games)
    assert enc.fields == ["released"]
    rows = enc.transform(games, ["a", "b", "c", "d"])[:, 0]
    assert rows[0] < rows[1] < rows[3] and rows[2] == 0.0
    assert abs(rows[1]) < 0.01  # the middle date is the mean
    again = AttributeEncoder.from_json(enc.to_json())
    records = [{"released": pd.Timestamp("2011-01-01")}, {"released": dt.date(2021, 1, 1)}]
    assert again.transform_records(records)[:, 0].tolist() == pytest.approx(rows[[1, 3]].tolist())
