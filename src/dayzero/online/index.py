"""Vector index over item vectors: exact inner-product search, or faiss HNSW for large catalogues.

:class:`VectorIndex` maps string ids to float32 vectors and answers maximum-inner-product queries,
best first. ``kind="exact"`` uses faiss ``IndexFlatIP`` (a brute-force scan: exact, cheap to
build); ``kind="hnsw"`` uses faiss ``IndexHNSWFlat`` (approximate, sub-linear queries, slow to
build); ``kind="auto"`` (the default) is exact up to ``hnsw_threshold`` live items and switches to
HNSW, by a rebuild, when the catalogue grows past it.

Design
------
* A float32 numpy matrix of every row is the source of truth; the faiss index is derived from it.
  Row ``r`` of the matrix is faiss label ``r``, so no id map is needed inside faiss.
* faiss HNSW cannot delete, so :meth:`VectorIndex.remove` and re-adding an id leave *tombstones*
  (dead rows) that searches filter out. When dead rows exceed ``rebuild_fraction`` of all rows the
  index is compacted and rebuilt.
* Searches over-fetch ``k + excluded + tombstones`` candidates and filter; when an approximate
  search still comes back short, an exact scan over the live vectors fills the result, so a search
  always returns ``min(k, live - excluded)`` items.
* Saved state is never pickled: a ``"vector-index"`` artifact (:mod:`dayzero.core.artifact`:
  the matrix in ``weights.safetensors``, ids, config and tombstones in ``dayzero.json``) and, for
  a built HNSW graph, ``hnsw.faiss`` (faiss's own binary format).

Thread safety
-------------
Any number of threads may search while another thread mutates. Mutations (``add``, ``remove``,
``rebuild``) are serialised by a writer lock; the moments where they change shared structures take
an exclusive lock, during which searches wait: short for exact adds and removals, but inserting
into an HNSW graph happens under it, so add to a large HNSW index in modest batches. A rebuild
(compaction, or the switch to HNSW) builds the new faiss index *outside* the exclusive lock, so
searches keep running on the old one, and swaps it in at the end; other mutations wait for it.
A single-query search runs faiss on one OpenMP thread in the calling thread (a per-thread setting),
so concurrent requests parallelise across threads instead of fighting inside one query.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dayzero.core.artifact import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Artifact,
    ArtifactError,
    load_artifact,
    save_artifact,
)
from dayzero.core.checks import positive_int

__all__ = ["VectorIndex"]

Kind = Literal["auto", "exact", "hnsw"]
_KINDS = ("auto", "exact", "hnsw")
_KIND = "vector-index"
_HNSW_FILE = "hnsw.faiss"
# An HNSW search asked for more than this share of all rows visits most of the graph anyway;
# an exact scan is then both faster and exact.
_HNSW_FETCH_SHARE = 0.125


class _ReadWriteLock:
    """Shared (read) / exclusive (write) lock; waiting writers block new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class VectorIndex:
    """Maximum-inner-product search over string-keyed vectors, exact or HNSW.

    Parameters
    ----------
    dim : int
        Width of every vector.
    kind : {"auto", "exact", "hnsw"}, default "auto"
        ``"exact"``: faiss ``IndexFlatIP``. ``"hnsw"``: faiss ``IndexHNSWFlat`` with inner product.
        ``"auto"``: exact while the index holds at most ``hnsw_threshold`` live items, HNSW beyond
        (checked after each add and at each rebuild).
    hnsw_threshold : int, default 1_000_000
        Live-item count above which ``kind="auto"`` uses HNSW.
    hnsw_m : int, default 32
        HNSW graph degree ``M`` (memory and build time grow with it; so does recall).
    ef_search : int, default 128
        HNSW search beam width (raised to the number of candidates fetched when larger). Recall
        falls for queries far from the item clusters (user vectors can be); on 1M synthetic items
        ef_search 128 gave recall@10 0.99 for on-cluster queries but 0.92 for shifted ones
        (``bench/results/index.md``): raise it, or stay exact, where recall matters.
    ef_construction : int, default 80
        HNSW build beam width.
    rebuild_fraction : float, default 0.2
        Compact and rebuild when tombstones exceed this share of all rows; in (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> index = VectorIndex(dim=2, kind="exact")
    >>> index.add(["a", "b", "c"], np.array([[1, 0], [0, 1], [0.7, 0.7]], dtype=np.float32))
    >>> index.search(np.array([1.0, 0.1], dtype=np.float32), k=2)[0]
    ['a', 'c']
    >>> index.search(np.array([1.0, 0.1], dtype=np.float32), k=2, exclude={"a"})[0]
    ['c', 'b']
    """

    def __init__(
        self,
        dim: int,
        kind: Kind = "auto",
        hnsw_threshold: int = 1_000_000,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 80,
        rebuild_fraction: float = 0.2,
    ) -> None:
        _check_positive_int(dim, "dim")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        _check_positive_int(hnsw_threshold, "hnsw_threshold")
        _check_positive_int(hnsw_m, "hnsw_m")
        _check_positive_int(ef_search, "ef_search")
        _check_positive_int(ef_construction, "ef_construction")
        if not (isinstance(rebuild_fraction, int | float) and 0 < rebuild_fraction <= 1):
            raise ValueError(f"rebuild_fraction must be in (0, 1], got {rebuild_fraction!r}")
        self.dim = int(dim)
        self.requested_kind: Kind = kind
        self.hnsw_threshold = int(hnsw_threshold)
        self.hnsw_m = int(hnsw_m)
        self._ef_search = int(ef_search)
        self.ef_construction = int(ef_construction)
        self.rebuild_fraction = float(rebuild_fraction)

        self._vectors = np.zeros((0, self.dim), dtype=np.float32)  # capacity >= _n_rows
        self._n_rows = 0
        self._row_ids: list[str] = []  # row -> id, dead rows included
        self._rows: dict[str, int] = {}  # live id -> row
        self._dead: set[int] = set()
        self._kind: Literal["exact", "hnsw"] = "hnsw" if kind == "hnsw" else "exact"
        self._faiss = self._new_faiss(self._kind)
        self._rw = _ReadWriteLock()
        self._write_lock = threading.RLock()

    # ------------------------------------------------------------------ read-only views
    @property
    def kind(self) -> Literal["exact", "hnsw"]:
        """The structure in use now: ``"exact"`` or ``"hnsw"``."""
        return self._kind

    @property
    def ef_search(self) -> int:
        """HNSW search beam width; settable at any time (trades latency for recall)."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        _check_positive_int(value, "ef_search")
        with self._write_lock, self._rw.exclusive():
            self._ef_search = int(value)
            if self._kind == "hnsw":
                self._faiss.hnsw.efSearch = self._ef_search

    @property
    def n_tombstones(self) -> int:
        """Dead rows (removed or replaced vectors) not yet compacted away."""
        return len(self._dead)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, id: object) -> bool:
        return id in self._rows

    def ids(self) -> list[str]:
        """Live ids, oldest row first."""
        with self._rw.shared():
            return [self._row_ids[r] for r in sorted(self._rows.values())]

    def get(self, id: str) -> np.ndarray:
        """A copy of the vector stored for ``id``; ``KeyError`` if absent."""
        with self._rw.shared():
            if id not in self._rows:
                raise KeyError(f"id {id!r} is not in the index")
            return self._vectors[self._rows[id]].copy()

    # ------------------------------------------------------------------ mutations
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors; an id already present has its old vector replaced (tombstoned).

        Parameters
        ----------
        ids : sequence of str
            Non-empty, distinct strings, one per row of ``vectors``.
        vectors : ndarray of shape (len(ids), dim)
            Finite values; stored as float32.
        """
        ids = _check_ids(ids, "ids")
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))
            raise ValueError(f"ids contains {dup!r} more than once; pass each id once per add")
        matrix = _check_matrix(vectors, self.dim, "vectors")
        if matrix.shape[0] != len(ids):
            raise ValueError(
                f"vectors has {matrix.shape[0]} rows but ids has {len(ids)} entries; "
                "pass one vector per id"
            )
        if not ids:
            return
        with self._write_lock:
            with self._rw.exclusive():
                start = self._n_rows
                self._ensure_capacity(start + len(ids))
                self._vectors[start : start + len(ids)] = matrix
                self._n_rows += len(ids)
                for offset, id_ in enumerate(ids):
                    old = self._rows.get(id_)
                    if old is not None:
                        self._dead.add(old)
                    self._rows[id_] = start + offset
                self._row_ids.extend(ids)
                self._faiss.add(matrix)
            self._maybe_rebuild()

    def remove(self, ids: Sequence[str], missing_ok: bool = False) -> None:
        """Remove ids (tombstones; a rebuild follows once tombstones pass ``rebuild_fraction``).

        Parameters
        ----------
        ids : sequence of str
        missing_ok : bool, default False
            If False, an id not in the index raises ``KeyError`` and nothing is removed.
        """
        ids = _check_ids(ids, "ids")
        with self._write_lock:
            missing = [i for i in ids if i not in self._rows]
            if missing and not missing_ok:
                raise KeyError(
                    f"ids not in the index: {missing[:5]!r}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                    + "; pass missing_ok=True to ignore them"
                )
            with self._rw.exclusive():
                for id_ in ids:
                    row = self._rows.pop(id_, None)
                    if row is not None:
                        self._dead.add(row)
            self._maybe_rebuild()

    def rebuild(self) -> None:
        """Compact away tombstones and rebuild the faiss index (choosing its kind again)."""
        with self._write_lock:
            live = np.fromiter(sorted(self._rows.values()), dtype=np.int64, count=len(self._rows))
            vectors = np.ascontiguousarray(self._vectors[live])
            row_ids = [self._row_ids[r] for r in live]
            kind = self._target_kind(len(row_ids))
            # Built outside the exclusive lock: searches continue on the old index meanwhile.
            new_index = self._new_faiss(kind)
            if len(row_ids):
                new_index.add(vectors)
            with self._rw.exclusive():
                self._vectors = vectors
                self._n_rows = len(row_ids)
                self._row_ids = row_ids
                self._rows = {id_: r for r, id_ in enumerate(row_ids)}
                self._dead = set()
                self._kind = kind
                self._faiss = new_index

    # ------------------------------------------------------------------ search
    def search(
        self, query: np.ndarray, k: int, exclude: Collection[str] = ()
    ) -> tuple[list[str], np.ndarray]:
        """The ``k`` ids with the largest inner product with ``query``, best first.

        Parameters
        ----------
        query : ndarray of shape (dim,) or (1, dim)
        k : int
            Positive; the result has ``min(k, live items not excluded)`` entries.
        exclude : collection of str
            Ids never returned (e.g. items the user has seen); ids not in the index are ignored.

        Returns
        -------
        ids : list of str
        scores : ndarray of float32, shape (len(ids),)
        """
        _check_positive_int(k, "k")
        if isinstance(exclude, str):
            raise ValueError("exclude must be a collection of ids, not one string; wrap it: [id]")
        q = _check_matrix(np.asarray(query).reshape(1, -1), self.dim, "query")
        with self._rw.shared(), _one_omp_thread():
            excluded = {self._rows[e] for e in exclude if e in self._rows}
            want = min(k, len(self._rows) - len(excluded))
            if want <= 0:
                return [], np.zeros(0, dtype=np.float32)
            skip = self._dead | excluded if excluded else self._dead
            rows, scores = self._search_one(q, want, skip, self._fetch_size(k + len(excluded)))
            return [self._row_ids[r] for r in rows], scores

    def search_batch(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], np.ndarray]:
        """:meth:`search` for many queries at once (no exclusions).

        Returns
        -------
        ids : list of list of str
            ``min(k, live)`` ids per query, best first.
        scores : ndarray of float32, shape (n_queries, min(k, live))
        """
        _check_positive_int(k, "k")
        q = _check_matrix(queries, self.dim, "queries")
        with self._rw.shared():
            want = min(k, len(self._rows))
            if want <= 0 or not len(q):
                return [[] for _ in range(len(q))], np.zeros((len(q), 0), dtype=np.float32)
            fetch = self._fetch_size(k)
            scores_all, labels = self._faiss_search(q, fetch)
            out_ids: list[list[str]] = []
            out_scores = np.empty((len(q), want), dtype=np.float32)
            for i in range(len(q)):
                rows, scores = _filter(labels[i], scores_all[i], self._dead, want)
                if len(rows) < want:  # only HNSW comes back short
                    with _one_omp_thread():
                        rows, scores = self._search_one(q[i : i + 1], want, self._dead, 2 * fetch)
                out_ids.append([self._row_ids[r] for r in rows])
                out_scores[i] = scores
            return out_ids, out_scores

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        """Write the index as a ``"vector-index"`` artifact (:mod:`dayzero.core.artifact`: ids
        and settings in ``dayzero.json``, the vectors in ``weights.safetensors``) plus, for
        HNSW, faiss's own ``hnsw.faiss``."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with self._rw.shared():
            state = {"kind": self._kind, "ids": self._row_ids, "tombstones": sorted(self._dead)}
            vectors = np.ascontiguousarray(self._vectors[: self._n_rows])
            if self._kind == "hnsw":
                _atomic(folder / _HNSW_FILE, lambda p: faiss.write_index(self._faiss, str(p)))
            elif (folder / _HNSW_FILE).exists():
                (folder / _HNSW_FILE).unlink()
            artifact = Artifact(_KIND, "faiss", self._config(), state, {"vectors": vectors})
            save_artifact(folder, artifact)

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save` (rebuilds the HNSW graph if its file is gone)."""
        import faiss

        folder = Path(folder)
        artifact = load_artifact(folder, _KIND)
        meta = {**artifact.state, "config": artifact.params}
        if "vectors" not in artifact.arrays:
            raise ArtifactError(f"{folder / WEIGHTS_FILE} is missing: the index has no vectors")
        index = cls(**meta["config"])
        vectors = artifact.arrays["vectors"].astype(np.float32, copy=False)
        row_ids: list[str] = meta["ids"]
        dead = set(meta["tombstones"])
        if vectors.ndim != 2 or vectors.shape != (len(row_ids), index.dim):
            raise ValueError(
                f"{folder / WEIGHTS_FILE} has shape {vectors.shape}, expected "
                f"({len(row_ids)}, {index.dim}) from {CONFIG_FILE}"
            )
        if any(not 0 <= r < len(row_ids) for r in dead):
            raise ValueError(f"{folder / CONFIG_FILE}: tombstone row out of range")
        rows = {row_ids[r]: r for r in range(len(row_ids)) if r not in dead}
        if len(rows) != len(row_ids) - len(dead):
            raise ValueError(f"{folder / CONFIG_FILE}: a live id appears on two rows")
        index._vectors = np.ascontiguousarray(vectors)
        index._n_rows = len(row_ids)
        index._row_ids = list(row_ids)
        index._rows = rows
        index._dead = dead
        kind = meta["kind"]
        if kind == "hnsw" and (folder / _HNSW_FILE).is_file():
            graph = faiss.read_index(str(folder / _HNSW_FILE))
            if graph.ntotal != len(row_ids) or graph.d != index.dim:
                raise ValueError(
                    f"{folder / _HNSW_FILE} holds {graph.ntotal} x {graph.d} vectors, expected "
                    f"{len(row_ids)} x {index.dim}; delete it to rebuild from the vectors"
                )
            graph.hnsw.efSearch = index.ef_search
            index._kind, index._faiss = "hnsw", graph
        else:
            index._kind = kind
            index._faiss = index._new_faiss(kind)
            if len(row_ids):
                index._faiss.add(index._vectors)
        return index

    # ------------------------------------------------------------------ internals
    def _config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "kind": self.requested_kind,
            "hnsw_threshold": self.hnsw_threshold,
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
            "rebuild_fraction": self.rebuild_fraction,
        }

    def _target_kind(self, n_live: int) -> Literal["exact", "hnsw"]:
        if self.requested_kind == "auto":
            return "hnsw" if n_live > self.hnsw_threshold else "exact"
        return self.requested_kind

    def _new_faiss(self, kind: Literal["exact", "hnsw"]) -> Any:
        import faiss

        if kind == "exact":
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self._ef_search
        return index

    def _maybe_rebuild(self) -> None:
        # Growing past the threshold switches to HNSW at once; shrinking below it switches back
        # only at the next compaction, so a catalogue hovering at the threshold does not rebuild
        # an HNSW graph on every other mutation.
        if len(self._dead) > self.rebuild_fraction * self._n_rows or (
            self._kind == "exact" and self._target_kind(len(self._rows)) == "hnsw"
        ):
            self.rebuild()

    def _fetch_size(self, base: int) -> int:
        """Candidates to ask faiss for so that ``base`` survive the tombstone filter."""
        if self._kind == "exact" or not self._dead:  # then this many always suffice
            return min(self._n_rows, base + len(self._dead))
        # HNSW cost grows with the fetch, so scale by the dead share instead (plus a margin);
        # _search_one widens the fetch if that comes back short.
        scale = self._n_rows / max(len(self._rows), 1)
        return min(self._n_rows, int(base * scale * 1.25) + 8)

    def _search_one(
        self, q: np.ndarray, want: int, skip: set[int], fetch: int
    ) -> tuple[list[int], np.ndarray]:
        """Top ``want`` rows not in ``skip`` for one query of shape (1, dim)."""
        while True:
            if self._kind == "hnsw" and fetch > _HNSW_FETCH_SHARE * self._n_rows:
                return self._exact_scan(q[0], want, skip)
            scores, labels = self._faiss_search(q, fetch)
            rows, kept = _filter(labels[0], scores[0], skip, want)
            if len(rows) == want or fetch >= self._n_rows:
                break
            fetch = min(self._n_rows, 2 * fetch)  # HNSW came back short: widen, then exact
        if len(rows) < want:
            return self._exact_scan(q[0], want, skip)
        return rows, kept

    def _ensure_capacity(self, n: int) -> None:
        if n <= len(self._vectors):
            return
        grown = np.zeros((max(n, 2 * len(self._vectors), 64), self.dim), dtype=np.float32)
        grown[: self._n_rows] = self._vectors[: self._n_rows]
        self._vectors = grown

    def _faiss_search(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._kind == "hnsw" and fetch > self._ef_search:
            import faiss

            params = faiss.SearchParametersHNSW()
            params.efSearch = fetch
            return self._faiss.search(q, fetch, params=params)
        return self._faiss.search(q, fetch)

    def _exact_scan(self, q: np.ndarray, want: int, skip: set[int]) -> tuple[list[int], np.ndarray]:
        import faiss

        # faiss's scan is several times faster than a numpy matvec here; fetching
        # want + len(skip) guarantees `want` survivors.
        fetch = min(self._n_rows, want + len(skip))
        scores, labels = faiss.knn(
            q.reshape(1, -1),
            self._vectors[: self._n_rows],
            fetch,
            metric=faiss.METRIC_INNER_PRODUCT,
        )
        return _filter(labels[0], scores[0], skip, want)


@contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run faiss on one OpenMP thread in the calling thread for the duration (a per-thread
    setting). One query is too little work to split: on a busy machine OpenMP barrier waits
    made a single 100k exact query ~30x slower with 2 threads than with 1."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _filter(
    labels: np.ndarray, scores: np.ndarray, skip: set[int], want: int
) -> tuple[list[int], np.ndarray]:
    keep = [i for i, r in enumerate(labels.tolist()) if r >= 0 and r not in skip][:want]
    return labels[keep].tolist(), scores[keep].astype(np.float32)


def _check_positive_int(value: object, name: str) -> None:
    positive_int(value, name, numpy_ints=True)


def _check_ids(ids: Sequence[str], name: str) -> list[str]:
    if isinstance(ids, str):
        raise ValueError(f"{name} must be a sequence of ids, not one string; wrap it: [id]")
    ids = list(ids)
    for i, id_ in enumerate(ids):
        if not isinstance(id_, str) or not id_:
            raise ValueError(f"{name}[{i}] must be a non-empty str, got {id_!r}; use str(id)")
    return ids


def _check_matrix(values: np.ndarray, dim: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(matrix).all():
        bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise ValueError(f"{name} row {bad} has NaN or infinite values (after float32 cast)")
    return matrix


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
