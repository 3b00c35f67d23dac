"""Tests of the on-disk embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.text import cache as cache_module
from dayzero.text.cache import EmbeddingCache


def _vectors(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_round_trip_in_request_order_with_duplicates_and_misses(tmp_path):
    cache = EmbeddingCache(tmp_path)
    vectors = _vectors(3)
    assert cache.put_many("fp", ["a", "b", "c"], vectors) == 3
    found, got = cache.get_many("fp", ["c", "zzz", "a", "c"])
    assert found.tolist() == [True, False, True, True]
    assert got.dtype == np.float32 and got.shape == (4, 4)
    np.testing.assert_array_equal(got[[0, 2, 3]], vectors[[2, 0, 2]])
    assert np.isnan(got[1]).all()


def test_unknown_fingerprint_and_empty_requests(tmp_path):
    cache = EmbeddingCache(tmp_path)
    found, got = cache.get_many("never", ["a", "b"])
    assert found.tolist() == [False, False] and got.shape == (2, 0)
    assert cache.count("never") == 0 and cache.dim("never") is None
    cache.put_many("fp", ["a"], _vectors(1))
    found, got = cache.get_many("fp", [])
    assert found.shape == (0,) and got.shape == (0, 4)
    assert cache.put_many("fp", [], np.zeros((0, 4), np.float32)) == 0


def test_fingerprints_are_isolated_and_persist_across_instances(tmp_path):
    EmbeddingCache(tmp_path).put_many("model-1", ["a"], np.ones((1, 4), np.float32))
    EmbeddingCache(tmp_path).put_many("model-2", ["a"], np.zeros((1, 2), np.float32))
    cache = EmbeddingCache(tmp_path)
    assert cache.fingerprints() == ["model-1", "model-2"]
    assert cache.get_many("model-1", ["a"])[1].tolist() == [[1, 1, 1, 1]]
    assert cache.get_many("model-2", ["a"])[1].tolist() == [[0, 0]]


def test_put_skips_stored_and_repeated_texts(tmp_path):
    cache = EmbeddingCache(tmp_path)
    first = _vectors(2, seed=1)
    assert cache.put_many("fp", ["a", "b"], first) == 2
    # A second vector for a stored text is ignored: the fingerprint pins the model.
    assert cache.put_many("fp", ["b", "c", "c"], _vectors(3, seed=2)) == 1
    assert cache.count("fp") == 3
    np.testing.assert_array_equal(cache.get_many("fp", ["b"])[1][0], first[1])


def test_shards_split_at_shard_rows_and_read_back_across_shards(tmp_path):
    cache = EmbeddingCache(tmp_path, shard_rows=3)
    texts = [f"text {i}" for i in range(10)]
    vectors = _vectors(10, dim=5)
    cache.put_many("fp", texts[:7], vectors[:7])
    cache.put_many("fp", texts[5:], vectors[5:])
    shards = sorted((tmp_path / "fp" / "shards").glob("*.npy"))
    assert len(shards) == 3 + 1  # 7 rows in shards of 3, then the 3 new rows in one
    found, got = cache.get_many("fp", texts[::-1])
    assert found.all()
    np.testing.assert_array_equal(got, vectors[::-1])


def test_many_texts_beyond_one_sql_query(tmp_path):
    cache = EmbeddingCache(tmp_path)
    texts = [f"t{i}" for i in range(1234)]
    vectors = _vectors(1234, dim=3)
    assert cache.put_many("fp", texts, vectors) == 1234
    found, got = cache.get_many("fp", texts)
    assert found.all()
    np.testing.assert_array_equal(got, vectors)


def test_failed_shard_write_leaves_no_index_rows_and_no_temp_files(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.put_many("fp", ["a"], _vectors(1))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.put_many("fp", ["b"], _vectors(1))
    monkeypatch.undo()
    assert cache.count("fp") == 1
    assert cache.get_many("fp", ["b"])[0].tolist() == [False]
    assert not list((tmp_path / "fp" / "shards").glob(".tmp-*"))
    assert cache.put_many("fp", ["b"], _vectors(1)) == 1


def test_missing_shard_is_reported_with_the_fix(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many("fp", ["a"], _vectors(1))
    for shard in (tmp_path / "fp" / "shards").glob("*.npy"):
        shard.unlink()
    with pytest.raises(FileNotFoundError, match="delete"):
        cache.get_many("fp", ["a"])


def test_bad_input_is_rejected(tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match="fingerprint"):
        cache.get_many("../escape", ["a"])
    with pytest.raises(ValueError, match="shape"):
        cache.put_many("fp", ["a", "b"], _vectors(1))
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        cache.put_many("fp", ["a", 2], _vectors(2))
    cache.put_many("fp", ["a"], _vectors(1, dim=4))
    with pytest.raises(ValueError, match="width"):
        cache.put_many("fp", ["b"], _vectors(1, dim=3))
    with pytest.raises(ValueError, match="shard_rows"):
        EmbeddingCache(tmp_path, shard_rows=0)
