"""On-disk cache of text vectors keyed by (model fingerprint, sha256 of the text).

Layout under the cache folder::

    <fingerprint>/index.sqlite        text hash -> (shard, row); the vector width
    <fingerprint>/shards/<uuid>.npy    float32 matrices, never modified once written

A shard is written to a temporary file and renamed into place before the index rows that point
at it are committed, so a crash leaves at worst an unreferenced shard, never an index row
pointing at a half-written file. Shards are read memory-mapped, so a lookup touches only the
rows it returns.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

_FINGERPRINT = re.compile(r"^[0-9A-Za-z_-][0-9A-Za-z_.-]{0,127}$")
# SQLite's bound-variable limit is 32766 in modern builds; stay far below it.
_QUERY_CHUNK = 500


def text_hash(text: str) -> bytes:
    """The sha256 digest of the UTF-8 text (the cache key within one fingerprint)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Disk cache of float32 text vectors, one sub-folder per model fingerprint.

    Parameters
    ----------
    folder : str or Path
        Where the cache lives; created when missing. Several processes may share it.
    shard_rows : int, default 4096
        Most vectors per shard file; one ``put_many`` writes one or more new shards.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> cache.put_many("model-a", ["hi", "yo"], np.eye(2, dtype=np.float32))
    2
    >>> found, vectors = cache.get_many("model-a", ["yo", "new"])
    >>> found.tolist(), vectors[0].tolist()
    ([True, False], [0.0, 1.0])
    """

    def __init__(self, folder: str | Path, shard_rows: int = 4096) -> None:
        if not isinstance(shard_rows, int) or shard_rows < 1:
            raise ValueError(f"shard_rows must be a positive int, got {shard_rows!r}")
        self.folder = Path(folder)
        self.shard_rows = shard_rows
        self.folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.folder)!r})"

    def get_many(self, fingerprint: str, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Look up the vectors of ``texts`` stored under ``fingerprint``.

        Returns
        -------
        found : np.ndarray of bool, shape (len(texts),)
            Whether each text was in the cache.
        vectors : np.ndarray of float32, shape (len(texts), dim)
            The cached vectors; rows of texts not found are NaN. ``dim`` is 0 when nothing
            was ever stored under this fingerprint.
        """
        texts = list(texts)
        found = np.zeros(len(texts), dtype=bool)
        if not texts or not self._index_path(fingerprint).exists():
            return found, np.full((len(texts), self.dim(fingerprint) or 0), np.nan, np.float32)
        hashes = [text_hash(t) for t in texts]
        rows_of: dict[bytes, list[int]] = {}
        for i, h in enumerate(hashes):
            rows_of.setdefault(h, []).append(i)
        locations: dict[str, tuple[list[int], list[int]]] = {}  # shard -> (shard rows, out rows)
        with self._connect(fingerprint) as db:
            dim = self._stored_dim(db)
            unique = list(rows_of)
            for start in range(0, len(unique), _QUERY_CHUNK):
                chunk = unique[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT hash, shard, row FROM vectors WHERE hash IN ({marks})"
                for h, shard, row in db.execute(query, chunk):
                    shard_rows, out_rows = locations.setdefault(shard, ([], []))
                    for i in rows_of[h]:
                        shard_rows.append(row)
                        out_rows.append(i)
        vectors = np.full((len(texts), dim or 0), np.nan, dtype=np.float32)
        for shard, (shard_rows, out_rows) in locations.items():
            path = self._shard_dir(fingerprint) / shard
            if not path.exists():
                raise FileNotFoundError(
                    f"cache shard {path} is listed in the index but missing; the cache is "
                    f"damaged: delete {self._dir(fingerprint)} and it will be rebuilt"
                )
            matrix = np.load(path, mmap_mode="r", allow_pickle=False)
            vectors[out_rows] = matrix[shard_rows]
            found[out_rows] = True
            del matrix
        return found, vectors

    def put_many(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> int:
        """Store ``vectors[i]`` as the vector of ``texts[i]`` under ``fingerprint``.

        Texts already stored (or repeated in ``texts``) are skipped: a fingerprint pins the
        model, so the vector of a text can never legitimately change.

        Returns
        -------
        int
            How many new vectors were written.
        """
        texts = list(texts)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(
                f"vectors must have shape (len(texts), dim) = ({len(texts)}, dim), "
                f"got {vectors.shape}"
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        if not texts:
            return 0
        vectors = vectors.astype(np.float32, copy=False)
        shard_dir = self._shard_dir(fingerprint)
        shard_dir.mkdir(parents=True, exist_ok=True)
        with self._connect(fingerprint) as db:
            dim = self._stored_dim(db)
            if dim is None:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('dim', ?)", (str(vectors.shape[1]),))
                db.commit()
                dim = self._stored_dim(db)
            if dim != vectors.shape[1]:
                raise ValueError(
                    f"vectors have width {vectors.shape[1]} but fingerprint {fingerprint!r} "
                    f"stores width {dim}"
                )
            first_row: dict[bytes, int] = {}
            for i, text in enumerate(texts):
                first_row.setdefault(text_hash(text), i)
            unique = list(first_row)
            present: set[bytes] = set()
            for start in range(0, len(unique), _QUERY_CHUNK):
                chunk = unique[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT hash FROM vectors WHERE hash IN ({marks})"
                present.update(h for (h,) in db.execute(query, chunk))
            new = [h for h in unique if h not in present]
            for start in range(0, len(new), self.shard_rows):
                chunk = new[start : start + self.shard_rows]
                shard = f"{uuid.uuid4().hex}.npy"
                _atomic_save(shard_dir / shard, vectors[[first_row[h] for h in chunk]])
                db.executemany(
                    "INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)",
                    [(h, shard, row) for row, h in enumerate(chunk)],
                )
                db.commit()
        return len(new)

    def count(self, fingerprint: str) -> int:
        """How many texts have a vector stored under ``fingerprint``."""
        if not self._index_path(fingerprint).exists():
            return 0
        with self._connect(fingerprint) as db:
            return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def dim(self, fingerprint: str) -> int | None:
        """The vector width stored under ``fingerprint``; ``None`` when nothing is stored."""
        if not self._index_path(fingerprint).exists():
            return None
        with self._connect(fingerprint) as db:
            return self._stored_dim(db)

    def fingerprints(self) -> list[str]:
        """The fingerprints that have a cache folder, sorted."""
        return sorted(p.parent.name for p in self.folder.glob("*/index.sqlite"))

    def _dir(self, fingerprint: str) -> Path:
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            raise ValueError(
                f"fingerprint must be 1-128 characters of [0-9A-Za-z_.-] not starting with "
                f"'.', got {fingerprint!r}"
            )
        return self.folder / fingerprint

    def _index_path(self, fingerprint: str) -> Path:
        return self._dir(fingerprint) / "index.sqlite"

    def _shard_dir(self, fingerprint: str) -> Path:
        return self._dir(fingerprint) / "shards"

    @contextmanager
    def _connect(self, fingerprint: str) -> Iterator[sqlite3.Connection]:
        path = self._index_path(fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=60)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors "
                "(hash BLOB PRIMARY KEY, shard TEXT NOT NULL, row INTEGER NOT NULL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.commit()
            yield db

    @staticmethod
    def _stored_dim(db: sqlite3.Connection) -> int | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
        return None if row is None else int(row[0])


def _atomic_save(path: Path, matrix: np.ndarray) -> None:
    """Write ``matrix`` as .npy to a temporary name, flush it to disk, then rename into place."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}.npy")
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(matrix), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def distinct_vectors(
    texts: list[str],
    dim: int,
    run: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache | None = None,
    fingerprint: Callable[[], str] | None = None,
) -> np.ndarray:
    """float32 vectors of ``texts``, shape ``(len(texts), dim)``: each distinct text read from
    ``cache`` (under ``fingerprint()``) or, if not there, computed once by ``run`` (on the
    distinct texts not found) and written back; the input order and repeats restored."""
    unique = list(dict.fromkeys(texts))
    vectors = np.full((len(unique), dim), np.nan, dtype=np.float32)
    todo = list(range(len(unique)))
    key = None
    if cache is not None and unique:
        key = fingerprint()
        found, cached = cache.get_many(key, unique)
        if found.any():
            vectors[found] = cached[found]
        todo = np.flatnonzero(~found).tolist()
    if todo:
        vectors[todo] = run([unique[i] for i in todo])
        if key is not None:
            cache.put_many(key, [unique[i] for i in todo], vectors[todo])
    position = {text: i for i, text in enumerate(unique)}
    return vectors[[position[t] for t in texts]] if texts else vectors[:0]
