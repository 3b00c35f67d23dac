"""VectorIndex: known answers against numpy brute force, tombstones, persistence, HNSW recall."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dayzero.online.index import VectorIndex

DIM = 8


def _random(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _ids(n: int, prefix: str = "i") -> list[str]:
    return [f"{prefix}{j}" for j in range(n)]


def _brute(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [ids[j] for j in order]


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    # Embedding-like: cluster centres plus within-cluster spread on a decaying spectrum.
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, dim + 1, dtype=np.float32) ** -1.0
    centres = rng.normal(size=(50, dim)).astype(np.float32) * spectrum * 3
    x = centres[rng.integers(0, 50, n)] + rng.normal(size=(n, dim)).astype(np.float32) * spectrum
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def filled() -> tuple[VectorIndex, np.ndarray, list[str]]:
    vectors, ids = _random(300), _ids(300)
    index = VectorIndex(DIM, kind="exact")
    index.add(ids, vectors)
    return index, vectors, ids


def test_exact_search_equals_numpy_brute_force(filled):
    index, vectors, ids = filled
    for query in _random(20, seed=1):
        got, scores = index.search(query, k=10)
        assert got == _brute(vectors, ids, query, 10)
        np.testing.assert_allclose(scores, np.sort(vectors @ query)[::-1][:10], rtol=1e-5)
        assert scores.dtype == np.float32


def test_search_batch_equals_single_searches(filled):
    index, _, _ = filled
    queries = _random(25, seed=2)
    batch_ids, batch_scores = index.search_batch(queries, k=7)
    assert batch_scores.shape == (25, 7)
    for q, ids_, scores in zip(queries, batch_ids, batch_scores, strict=True):
        single_ids, single_scores = index.search(q, k=7)
        assert ids_ == single_ids
        np.testing.assert_allclose(scores, single_scores, rtol=1e-5)


def test_exclusions_are_honoured_and_result_is_full(filled):
    index, vectors, ids = filled
    query = _random(1, seed=3)[0]
    ranking = _brute(vectors, ids, query, 300)
    exclude = set(ranking[:5]) | {"not-an-id"}
    got, _ = index.search(query, k=10, exclude=exclude)
    assert got == ranking[5:15]
    # Excluding all but three items leaves exactly three.
    got, _ = index.search(query, k=10, exclude=set(ranking[3:]))
    assert got == ranking[:3]
    got, scores = index.search(query, k=10, exclude=set(ids))
    assert got == [] and scores.shape == (0,)


def test_k_larger_than_catalogue_returns_everything(filled):
    index, vectors, ids = filled
    query = _random(1, seed=4)[0]
    got, scores = index.search(query, k=1000)
    assert got == _brute(vectors, ids, query, 300)
    assert len(scores) == 300


def test_remove_tombstones_then_rebuild(filled):
    index, vectors, ids = filled
    query = _random(1, seed=5)[0]
    ranking = _brute(vectors, ids, query, 300)
    index.remove(ranking[:2])
    assert len(index) == 298 and ranking[0] not in index
    assert index.n_tombstones == 2
    assert index.search(query, k=5)[0] == ranking[2:7]
    # Past rebuild_fraction (0.2 of 300 rows) the index compacts itself.
    index.remove(ranking[2:70])
    assert index.n_tombstones == 0
    assert len(index) == 230
    assert index.search(query, k=5)[0] == ranking[70:75]
    assert set(index.ids()) == set(ranking[70:])


def test_remove_unknown_id_raises_unless_missing_ok(filled):
    index, _, _ = filled
    with pytest.raises(KeyError, match="nope"):
        index.remove(["i1", "nope"])
    assert "i1" in index  # nothing removed on error
    index.remove(["i1", "nope"], missing_ok=True)
    assert "i1" not in index


def test_re_adding_an_id_replaces_its_vector(filled):
    index, _, _ = filled
    target = np.zeros(DIM, dtype=np.float32)
    target[0] = 100.0
    index.add(["i7"], target[None, :])
    assert len(index) == 300
    np.testing.assert_array_equal(index.get("i7"), target)
    query = np.eye(DIM, dtype=np.float32)[0]
    got, scores = index.search(query, k=3)
    assert got[0] == "i7" and scores[0] == pytest.approx(100.0)
    assert got.count("i7") == 1
    assert index.ids().count("i7") == 1


def test_save_load_round_trip_gives_identical_results(tmp_path, filled):
    index, _, _ = filled
    index.remove(["i3", "i4"])
    index.add(["i5", "new"], _random(2, seed=6))
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    assert loaded.kind == "exact" and len(loaded) == len(index)
    assert loaded.ids() == index.ids()
    assert loaded.n_tombstones == index.n_tombstones
    queries = _random(10, seed=7)
    assert loaded.search_batch(queries, 10)[0] == index.search_batch(queries, 10)[0]
    np.testing.assert_array_equal(
        loaded.search(queries[0], 5, exclude={"i0"})[1],
        index.search(queries[0], 5, exclude={"i0"})[1],
    )
    assert not list(tmp_path.glob("idx/*.pkl"))


def test_hnsw_recall_against_exact_and_round_trip(tmp_path):
    vectors = _clustered(5000, 32, seed=0)
    ids = _ids(5000)
    queries = _clustered(100, 32, seed=1)
    exact = VectorIndex(32, kind="exact")
    hnsw = VectorIndex(32, kind="hnsw", hnsw_m=16, ef_construction=64, ef_search=64)
    exact.add(ids, vectors)
    hnsw.add(ids, vectors)
    assert hnsw.kind == "hnsw"
    truth, _ = exact.search_batch(queries, 10)
    got, _ = hnsw.search_batch(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    assert recall >= 0.95
    hnsw.save(tmp_path / "h")
    assert (tmp_path / "h" / "hnsw.faiss").is_file()
    loaded = VectorIndex.load(tmp_path / "h")
    assert loaded.kind == "hnsw"
    assert loaded.search_batch(queries, 10)[0] == got


def test_hnsw_with_many_exclusions_and_tombstones_still_returns_k():
    vectors = _clustered(2000, 16, seed=2)
    ids = _ids(2000)
    index = VectorIndex(16, kind="hnsw", hnsw_m=8, ef_search=16, rebuild_fraction=1.0)
    index.add(ids, vectors)
    query = vectors[0]
    ranking = _brute(vectors, ids, query, 2000)
    index.remove(ranking[:150])
    got, _ = index.search(query, k=10, exclude=set(ranking[150:400]))
    assert len(got) == 10
    assert not set(got) & set(ranking[:400])
    # Everything but 4 items excluded: the exact fallback finds exactly those 4.
    got, _ = index.search(query, k=10, exclude=set(ranking[150:1996]))
    assert sorted(got) == sorted(ranking[1996:])


def test_auto_switches_to_hnsw_past_threshold_and_back_after_shrinking():
    index = VectorIndex(DIM, hnsw_threshold=100, hnsw_m=8)
    index.add(_ids(100), _random(100))
    assert index.kind == "exact"
    index.add(["extra"], _random(1, seed=9))
    assert index.kind == "hnsw"
    assert len(index) == 101
    assert index.search(index.get("extra"), k=1)[0] == ["extra"]
    index.remove(_ids(30))  # 30 tombstones > 0.2 * 101 rows: rebuild picks exact again
    assert index.kind == "exact" and len(index) == 71


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ix: ix.add(["a"], np.ones((1, DIM + 1))), "vectors must have shape"),
        (lambda ix: ix.add(["a", "b"], np.ones((1, DIM))), "one vector per id"),
        (lambda ix: ix.add(["a", "a"], np.ones((2, DIM))), "ids contains 'a' more than once"),
        (lambda ix: ix.add([""], np.ones((1, DIM))), r"ids\[0\] must be a non-empty str"),
        (lambda ix: ix.add([1], np.ones((1, DIM))), r"ids\[0\] must be a non-empty str"),
        (lambda ix: ix.add("ab", np.ones((2, DIM))), "not one string"),
        (lambda ix: ix.add(["a"], np.full((1, DIM), np.nan)), "vectors row 0 has NaN"),
        (lambda ix: ix.add(["a"], np.full((1, DIM), 1e300)), "vectors row 0 has NaN or inf"),
        (lambda ix: ix.search(np.ones(DIM), k=0), "k must be a positive int"),
        (lambda ix: ix.search(np.ones(DIM), k=True), "k must be a positive int"),
        (lambda ix: ix.search(np.ones(DIM + 2), k=1), "query must have shape"),
        (lambda ix: ix.search(np.full(DIM, np.inf), k=1), "query row 0 has NaN"),
        (lambda ix: ix.search(np.ones(DIM), k=1, exclude="i1"), "exclude must be a collection"),
        (lambda ix: ix.search_batch(np.ones((2, DIM)), k=-1), "k must be a positive int"),
        (lambda ix: VectorIndex(DIM, kind="ivf"), "kind must be one of"),
        (lambda ix: VectorIndex(0), "dim must be a positive int"),
        (lambda ix: VectorIndex(DIM, rebuild_fraction=0), "rebuild_fraction"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    index = VectorIndex(DIM)
    index.add(["i1"], np.ones((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match=match):
        call(index)
    assert len(index) == 1  # nothing half-applied


def test_empty_index_search_and_load_errors(tmp_path):
    index = VectorIndex(DIM)
    assert index.search(np.ones(DIM), k=3)[0] == []
    ids, scores = index.search_batch(np.ones((2, DIM)), k=3)
    assert ids == [[], []] and scores.shape == (2, 0)
    index.save(tmp_path / "empty")
    assert len(VectorIndex.load(tmp_path / "empty")) == 0
    with pytest.raises(ValueError, match=r"nothing-here does not exist"):
        VectorIndex.load(tmp_path / "nothing-here")


def test_concurrent_searches_during_adds_see_consistent_results():
    base = _random(500, seed=10)
    index = VectorIndex(DIM, kind="exact")
    index.add(_ids(500), base)
    query = _random(1, seed=11)[0]
    expected = index.search(query, k=5)[0]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                got, scores = index.search(query, k=5)
                # Additions below score far below the top-5, so the answer never changes.
                assert got == expected and len(scores) == 5
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    far = -np.abs(_random(2000, seed=12)) * np.sign(query)  # inner product with query < 0
    for start in range(0, 2000, 50):
        index.add(_ids(50, prefix=f"n{start}-"), far[start : start + 50])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == 2500


def test_hnsw_with_tombstones_and_exclusions_matches_exact():
    vectors, ids = _clustered(4000, 16, seed=3), _ids(4000)
    exact = VectorIndex(16, kind="exact", rebuild_fraction=1.0)
    hnsw = VectorIndex(16, kind="hnsw", hnsw_m=16, ef_search=32, rebuild_fraction=1.0)
    for index in (exact, hnsw):
        index.add(ids, vectors)
        index.remove(ids[::10])  # 400 tombstones
    assert hnsw.n_tombstones == 400
    queries = _clustered(50, 16, seed=4)
    hits = 0
    for q in queries:
        truth, _ = exact.search(q, k=10)
        exclude = set(truth[:5])
        want, _ = exact.search(q, k=10, exclude=exclude)
        got, scores = hnsw.search(q, k=10, exclude=exclude)
        assert len(got) == 10 and not set(got) & (exclude | set(ids[::10]))
        assert np.all(np.diff(scores) <= 0)
        hits += len(set(got) & set(want))
    assert hits / 500 >= 0.95
    got, _ = hnsw.search_batch(queries, 10)
    assert all(len(g) == 10 and not set(g) & set(ids[::10]) for g in got)
