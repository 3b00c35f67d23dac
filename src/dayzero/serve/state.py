"""What the service holds: the event store, the model registry, the served version (ServingModel +
vector index) and the locks that keep fold-in and version swaps consistent.

Concurrency
-----------
* The served version is one immutable reference (:class:`Served`); a request reads it once and
  finishes on it even if a promote swaps in another version meanwhile.
* ``VectorIndex`` is thread-safe on its own (concurrent searches, serialised writes).
* ServingModel calls are serialised by ``_model_lock``: the encoder's fast tokenizer is not safe
  to call from several threads at once. Item fold-in runs in chunks so a large batch of new
  items never holds the lock for long.
* ``_fold_lock`` serialises item fold-in with version swaps: a swap first catches the new
  version up on every item the store committed since it was loaded, then switches the
  reference, so no acknowledged item is missing from the served index.
* A known user's vector is recomputed from the store after each of their writes
  (:class:`UserVectorCache`), not on every request.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dayzero.online.index import VectorIndex
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.serving import ServingModel
    from dayzero.online.store import EntityRecord, Event, EventIds, EventStore
    from dayzero.risk.scorer import RiskScorer
    from dayzero.risk.target import TrainingInfo
    from dayzero.serve.metrics import ServiceMetrics

from dayzero.online.registry import RegistryError
from dayzero.serve.toplists import toplist_answer

log = logging.getLogger("dayzero.serve")
_thread = threading.local()

INDEX_FOLDER = "index"
# Titles and short texts of the items, as `dayzero fit` writes them (dayzero.cli.files) and
# publish_fit_folder copies them into a version.
CATALOGUE_FOLDER = "catalogue"
_MAX_LINEAGE = 1000  # parents followed to find a fine-tuned version's catalogue
FOLD_CHUNK = 64
_ITEM_LOG = 1024  # item additions the user cache remembers for in-flight requests
_WRITE_LOG = 10_000  # item writes a version remembers (by seq) to merge into stored lists
_TOPLIST_RECHECK = 30.0  # seconds between looks for lists of a version that had none
# recommend_user_nowait leaves a sync of more new events or profiles than this to a thread,
# and a user with a longer history.
_NOWAIT_CHANGES = 500
_NOWAIT_HISTORY = 1_000
# The augmented item vector is [q_i, b_i, 1, content_only_i]: the last three columns are the
# bias terms, not the item's taste direction (see dayzero.online.serving).
N_BIAS_COLUMNS = 3


class NoModelError(RuntimeError):
    """No version is promoted yet: recommendations cannot be served."""


class BadRequestError(ValueError):
    """The request is well-formed but cannot be served (the message says why)."""


class UnknownItemError(KeyError):
    """The item is neither in the served model nor in the store."""


@dataclass
class Served:
    """One loaded model version: the unit a promote or rollback swaps."""

    version: str
    model: ServingModel
    index: VectorIndex
    info: dict[str, Any]
    item_seq: int = 0  # highest store item seq folded into this version
    folded: int = 0  # items folded in since load
    loaded_ids: set[str] = field(default_factory=set)  # items the version was saved with
    known_users: set[str] = field(default_factory=set)  # users with a trained profile / ID
    catalogue: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # The latest store item writes folded in, by seq (ascending), and the seq below which
    # they are forgotten: which items a stored top-K list (computed at some seq) has not seen.
    write_seqs: list[int] = field(default_factory=list)
    write_ids: list[str] = field(default_factory=list)
    write_floor: int = 0
    has_toplists: bool = False
    toplists_checked: float = float("-inf")

    def log_writes(self, records: Sequence[EntityRecord]) -> None:
        """Remember item writes just folded in (their store ``seq``), the last few thousand."""
        for record in sorted(records, key=lambda r: r.seq):
            if self.write_seqs and record.seq < self.write_seqs[-1]:
                at = bisect.bisect_right(self.write_seqs, record.seq)
                self.write_seqs.insert(at, record.seq)
                self.write_ids.insert(at, record.id)
            else:
                self.write_seqs.append(record.seq)
                self.write_ids.append(record.id)
        if len(self.write_seqs) > 2 * _WRITE_LOG:
            cut = len(self.write_seqs) - _WRITE_LOG
            self.write_floor = self.write_seqs[cut - 1]
            del self.write_seqs[:cut], self.write_ids[:cut]

    def items_written_after(self, seq: int) -> set[str] | None:
        """Ids of the items written after store seq ``seq``; None when that is forgotten."""
        if seq < self.write_floor:
            return None
        return set(self.write_ids[bisect.bisect_right(self.write_seqs, seq) :])


@dataclass
class Recommended:
    ids: list[str]
    scores: np.ndarray
    new_user: bool


@dataclass(frozen=True)
class ItemView:
    """What the service knows of one item (``GET /v1/items/{id}``)."""

    id: str
    title: str | None
    text: str
    fields: dict[str, Any]
    stored: bool  # a record in the event store
    served: bool  # the served version can recommend it (it has a vector in the index)


@dataclass(frozen=True)
class _UserEntry:
    version: str
    epoch: int
    vector: np.ndarray
    seen: frozenset[str]
    new_user: bool
    created: float


class UserVectorCache:
    """Per-user vectors and seen items, recomputed after each event or profile for that user.

    An entry is dropped when an event or profile of its user is written through this service,
    when an item the user has events on is added (that history item may have just gained a
    vector; other users keep their entries), when another version is served, and after ``ttl``
    seconds (a bound on staleness when something other than this process writes events to the
    store). A request that read the store before a write for its user committed does not cache
    its (stale) result: each user has a write counter, and item additions a generation number,
    checked again under the lock when the result is stored.

    Parameters
    ----------
    size : int
        Most users held (least recently used dropped first); 0 disables the cache.
    ttl : float
        Seconds an entry may be served.
    """

    def __init__(self, size: int = 100_000, ttl: float = 30.0) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: OrderedDict[str, _UserEntry] = OrderedDict()
        self._writes: dict[str, int] = {}
        self._epoch = 0
        self._item_generation = 0
        self._added: deque[tuple[int, frozenset[str]]] = deque(maxlen=_ITEM_LOG)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def token(self, user: str) -> tuple[int, int, int]:
        """Write counters to hand back to :meth:`put` (read before reading the store)."""
        with self._lock:
            return self._epoch, self._writes.get(user, 0), self._item_generation

    def get(self, user: str, version: str) -> _UserEntry | None:
        if self.size <= 0:
            return None
        with self._lock:
            entry = self._entries.get(user)
            if (
                entry is None
                or entry.version != version
                or entry.epoch != self._epoch
                or time.monotonic() - entry.created > self.ttl
            ):
                self.misses += 1
                return None
            self._entries.move_to_end(user)
            self.hits += 1
            return entry

    def put(self, user: str, token: tuple[int, int, int], entry: _UserEntry) -> None:
        if self.size <= 0:
            return
        with self._lock:
            if token[:2] != (self._epoch, self._writes.get(user, 0)):
                return  # a write for this user (or a version swap) landed meanwhile
            if token[2] != self._item_generation and self._added_since(token[2], entry.seen):
                return  # one of the user's history items was added meanwhile
            self._entries[user] = entry
            self._entries.move_to_end(user)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def invalidate(self, users: Sequence[str]) -> None:
        with self._lock:
            for user in users:
                self._writes[user] = self._writes.get(user, 0) + 1
                self._entries.pop(user, None)

    def invalidate_items(self, items: Sequence[str]) -> None:
        """Items were added: drop the users with events on any of them."""
        added = frozenset(items)
        with self._lock:
            self._item_generation += 1
            self._added.append((self._item_generation, added))
            stale = [u for u, entry in self._entries.items() if entry.seen & added]
            for user in stale:
                del self._entries[user]

    def _added_since(self, generation: int, seen: frozenset[str]) -> bool:
        """Whether an item in ``seen`` was added after ``generation`` (True when unknown)."""
        if not self._added or self._added[0][0] > generation + 1:
            return True  # the log no longer reaches back that far
        return any(gen > generation and ids & seen for gen, ids in self._added)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.clear()


class TitleCache:
    """Item titles read from the store, kept between requests.

    An entry (a title, or "no record") is dropped when its item is folded in again (an item
    write through this service, or one another worker committed, taken in by
    :meth:`ServiceState.sync_with_store`) and after ``ttl`` seconds, the bound on staleness when
    something else writes items to the store unwatched.

    Parameters
    ----------
    size : int
        Most items held (least recently used dropped first); 0 disables the cache.
    ttl : float
        Seconds an entry may be served.
    """

    def __init__(self, size: int = 200_000, ttl: float = 30.0) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._invalidated: dict[str, float] = {}  # item -> when it was last invalidated
        self._lock = threading.Lock()

    def get_many(self, ids: Sequence[str]) -> tuple[dict[str, str | None], list[str]]:
        """The cached titles among ``ids`` and the ids to read from the store."""
        found: dict[str, str | None] = {}
        missing = []
        now = time.monotonic()
        with self._lock:
            for item in ids:
                entry = self._entries.get(item)
                if entry is None or now - entry[1] > self.ttl:
                    missing.append(item)
                else:
                    found[item] = entry[0]
                    self._entries.move_to_end(item)
        return found, missing

    def put_many(self, titles: dict[str, str | None], since: float) -> None:
        """Store titles read from the store after ``since`` (monotonic): an item invalidated
        meanwhile is not stored, its read may predate the write."""
        if self.size <= 0:
            return
        with self._lock:
            for item, title in titles.items():
                if self._invalidated.get(item, -1.0) >= since:
                    continue
                self._entries[item] = (title, since)
                self._entries.move_to_end(item)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            if len(self._invalidated) > 4 * max(self.size, 1):
                cutoff = time.monotonic() - self.ttl
                self._invalidated = {k: t for k, t in self._invalidated.items() if t >= cutoff}

    def invalidate(self, ids: Sequence[str]) -> None:
        """Items were written: read their titles from the store again."""
        now = time.monotonic()
        with self._lock:
            for item in ids:
                self._entries.pop(item, None)
                self._invalidated[item] = now


class ServiceState:
    """The store, the registry and the served model version of one running service.

    Parameters
    ----------
    store : EventStore
        Where every write is committed before it is acknowledged.
    registry : ModelRegistry
        Versions to serve; the current one is loaded by :meth:`start`.
    risk : RiskScorer, optional
        Served at ``POST /v1/risk/score`` when given.
    risk_training : TrainingInfo, optional
        The risk model's ``training.json`` (written by ``dayzero risk fit``): its label column
        is dropped from scored applicants, its pass-through columns (ids) are allowed.
    metrics : ServiceMetrics, optional
        Updated with the served version and index size.
    user_cache : UserVectorCache, optional
        Known-user vectors between their writes (default: 100,000 users, 30 s).
    risk_dir : path, optional
        The folder ``risk`` was loaded from; ``GET /v1/risk/card`` reads its model card there.
    watch_store : bool, default False
        Call :meth:`sync_with_store` before every read: for several workers (processes, Ray
        Serve replicas) over one store, each seeing the others' writes in its next answer.
    toplists : bool, default True
        Serve a known user whose vector is not cached from their precomputed top-K list in the
        store while it is fresh (:mod:`dayzero.serve.toplists`); versions without lists cost
        one look every 30 s.
    """

    def __init__(
        self,
        store: EventStore,
        registry: ModelRegistry,
        risk: RiskScorer | None = None,
        metrics: ServiceMetrics | None = None,
        user_cache: UserVectorCache | None = None,
        risk_training: TrainingInfo | None = None,
        risk_dir: str | Path | None = None,
        watch_store: bool = False,
        toplists: bool = True,
    ) -> None:
        self.store = store
        self.registry = registry
        self.risk = risk
        self.risk_training = risk_training
        #: The folder the risk model was loaded from (its model card is read from there).
        self.risk_dir = None if risk_dir is None else Path(risk_dir)
        self.metrics = metrics
        self.user_cache = user_cache if user_cache is not None else UserVectorCache()
        #: Titles of store items between their writes (as long as user vectors may be cached).
        self.title_cache = TitleCache(ttl=self.user_cache.ttl)
        self.served: Served | None = None
        #: Why the service serves another version than the registry's current one (or none).
        self.notice: str | None = None
        self._refused: str | None = None  # a current version found unloadable
        self._model_lock = threading.RLock()
        self._fold_lock = threading.Lock()
        self._admin_lock = threading.Lock()
        #: Read before each answer when several processes share the store (watch_store).
        self.watch_store = watch_store
        self.toplists = toplists
        self._sync_lock = threading.Lock()
        self._store_marks: tuple[int, int] | None = None  # (last event id, last user seq) seen

    @contextmanager
    def _model(self) -> Iterator[None]:
        """Hold the model lock, in a thread set up for torch."""
        with self._model_lock:
            _init_torch_thread()
            yield

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load the registry's current version (if any) and fold in what the store added since.

        When the current version cannot be loaded (damaged files), the newest version of the
        rollback history that loads is served instead, and :attr:`notice` says so; the registry
        pointer is left to the operator. With no loadable version the service starts without
        a model (writes only) rather than not at all.
        """
        version = self.registry.current()
        if version is None:
            log.warning("no promoted model version in %s: serving writes only", self.registry)
            return
        failures: list[str] = []
        for candidate in [version, *self.registry.previous_versions()]:
            try:
                with self._fold_lock:
                    served = self._load(candidate)
                    self._catch_up(served)
                    self._set_served(served)
            except RegistryError as exc:
                failures.append(str(exc))
                log.error("cannot serve %s: %s", candidate, exc)
                continue
            if candidate != version:
                self.notice = (
                    f"the registry's current version {version} cannot be loaded ({failures[0]}); "
                    f"serving {candidate}, the newest good version of the rollback history. "
                    f"Promote a good version (or roll back) to clear this."
                )
                self._refused = version
                log.warning(self.notice)
            log.info("serving %s (%d items in the index)", candidate, len(served.index))
            return
        self._refused = version
        self.notice = f"no version of the rollback history can be loaded: {'; '.join(failures)}"
        log.error(self.notice)

    def close(self) -> None:
        self.store.close()

    def require(self) -> Served:
        """The served version, or :class:`NoModelError`."""
        served = self.served
        if served is None:
            raise NoModelError(
                "no model version is promoted yet: run `dayzero update` (or start the server "
                "with --bootstrap-demo) to create one"
            )
        return served

    # ------------------------------------------------------------------ versions
    def _load(self, version: str) -> Served:
        """Verify and load a version, then fold in every store item it does not know.

        Any failure to load it is a :class:`CorruptVersionError` whose message names the
        version and the file; the version being served is not touched.
        """
        from dayzero.online.registry import CorruptVersionError

        self.registry.verify(version)
        folder = Path(self.registry.path(version, verify=False))
        try:
            model, index = self._read_version(folder)
            catalogue = self._read_catalogue(version, folder)
        except Exception as exc:
            message = str(exc).replace(f"{folder}/", "").replace(str(folder), version)
            raise CorruptVersionError(f"{version}: cannot be loaded: {message}") from exc
        info = dict(self.registry.info(version))
        served = Served(version=version, model=model, index=index, info=info, catalogue=catalogue)
        # Fold-in failures below are the store's items, not the version's files: not wrapped.
        served.loaded_ids = set(model.known_items())
        served.known_users = set(model.known_users())
        records = self.store.items()
        fresh = [r for r in records if r.id not in served.loaded_ids or r.id not in index]
        self._fold_items(served, fresh, locked=False)
        served.item_seq = max((r.seq for r in records), default=0)
        served.log_writes(records)
        return served

    @staticmethod
    def _read_version(folder: Path) -> tuple[ServingModel, VectorIndex]:
        from dayzero.online.index import VectorIndex
        from dayzero.online.serving import ServingModel

        model = ServingModel.load(folder)
        if (folder / INDEX_FOLDER).is_dir():
            index = VectorIndex.load(folder / INDEX_FOLDER)
        else:
            ids, vectors = model.item_vectors()
            index = VectorIndex(dim=model.dim)
            index.add(ids, vectors)
        if index.dim != model.dim:
            raise ValueError(f"{INDEX_FOLDER}/: index width {index.dim} != model width {model.dim}")
        return model, index

    def _read_catalogue(
        self, version: str, folder: Path
    ) -> dict[str, tuple[str | None, str | None]]:
        """Item id -> (title, short text) of the version's ``catalogue/`` or, for a version
        fine-tuned from one (``dayzero update``), of the nearest ancestor that has one.

        A damaged catalogue of the version itself fails the load (like any of its files); an
        ancestor's is skipped with a warning (the version being loaded is not damaged).
        """
        name = version
        for _ in range(_MAX_LINEAGE):
            if (folder / CATALOGUE_FOLDER).is_dir():
                try:
                    return _catalogue_titles(folder / CATALOGUE_FOLDER)
                except Exception as exc:
                    if name == version:
                        raise
                    log.warning("%s: the catalogue of %s cannot be read: %s", version, name, exc)
                    return {}
            try:
                parent = (self.registry.info(name).get("config") or {}).get("parent")
                if not isinstance(parent, str):
                    return {}
                folder, name = Path(self.registry.path(parent, verify=False)), parent
            except RegistryError:
                return {}  # the ancestor was removed: no titles beyond the store's
        return {}

    def _catch_up(self, served: Served) -> list[str]:
        """Fold in items the store committed after ``served.item_seq`` (under ``_fold_lock``);
        returns their ids."""
        records = self.store.items(after_seq=served.item_seq)
        self._fold_items(served, records, locked=True)
        if records:
            served.item_seq = max(served.item_seq, *(r.seq for r in records))
            served.log_writes(records)
        return [r.id for r in records]

    def catch_up_items(self) -> int:
        """Fold in every item the store committed since the served version last looked; returns
        the highest item seq now folded in (0 with no model)."""
        with self._fold_lock:
            served = self.served
            if served is None:
                return 0
            added = self._catch_up(served)
            if added:
                self.user_cache.invalidate_items(added)
            return served.item_seq

    def sync_with_store(self, wait: bool = True) -> bool:
        """Take in what other processes committed to the store since the last call: fold in
        their new or changed items, and drop the cached vectors of users with new events or
        profiles, so that a write through any worker counts in this worker's next answer.

        Called before every read when the service runs as several workers over one store
        (``ServeConfig.watch_store``): one query of the three change counters while nobody
        writes, and range reads of what moved.

        Parameters
        ----------
        wait : bool, default True
            False: do nothing and return False when that would mean waiting for another
            thread's sync, folding in items, or reading more than a few hundred changes.

        Returns
        -------
        bool
            Whether the state has taken in everything committed before the call.
        """
        if not self._sync_lock.acquire(blocking=wait):
            return False
        try:
            last_event, last_user, last_item = self.store.marks()  # one query when nothing moved
            if self._store_marks is None:  # first read: nothing cached yet to drop
                self._store_marks = (last_event, last_user)
            events_seen, users_seen = self._store_marks
            served = self.served
            if not wait and (
                (served is not None and last_item > served.item_seq)
                or last_event - events_seen > _NOWAIT_CHANGES
                or last_user - users_seen > _NOWAIT_CHANGES
            ):
                return False
            events = self.store.events(after=events_seen) if last_event > events_seen else []
            users = self.store.users(after_seq=users_seen) if last_user > users_seen else []
            changed = {e.user for e in events} | {u.id for u in users}
            if changed:
                self.user_cache.invalidate(sorted(changed))
            self._store_marks = (
                max([events_seen, *(e.id for e in events if e.id is not None)]),
                max([users_seen, *(u.seq for u in users)]),
            )
            if not wait:
                return True  # no item to fold in (checked above): do not wait for the lock
            with self._fold_lock:
                served = self.served
                if served is not None and last_item > served.item_seq:
                    added = self._catch_up(served)
                    if added:
                        self.user_cache.invalidate_items(added)
                        if self.metrics is not None:
                            self.metrics.index_size.set(len(served.index))
        finally:
            self._sync_lock.release()
        return True

    def _set_served(self, served: Served) -> None:
        self.served = served
        self.user_cache.clear()
        if self.metrics is not None:
            self.metrics.set_model(served.version, len(served.index))

    def serve_version(self, version: str) -> None:
        """Load and serve ``version`` without touching the registry's pointer (a batch job
        ranking by a version that is not, or not yet, the current one)."""
        with self._admin_lock:
            served = self._load(version)
            with self._fold_lock:
                self._catch_up(served)
                self._set_served(served)

    def promote(self, version: str) -> tuple[str, str | None]:
        """Load ``version``, swap it in, then make it the registry's current version.

        Returns
        -------
        (version, previous)
        """
        with self._admin_lock:
            previous = self.served.version if self.served is not None else None
            served = self._load(version)  # slow part, outside the fold lock
            with self._fold_lock:
                self._catch_up(served)
                self._set_served(served)
            self.registry.promote(version)
            self.notice, self._refused = None, None
            return version, previous

    def follow_registry(self) -> str | None:
        """Serve the registry's current version when something else promoted it (``dayzero
        update`` in another process, the update schedule).

        Returns
        -------
        The version now served, or None when the served one is already current.
        """
        with self._admin_lock:
            current = self.registry.current()
            if current is None:
                return None
            if self.served is not None and self.served.version == current:
                self.notice, self._refused = None, None  # serving what the registry says
                return None
            if current == self._refused:
                return None  # already found unloadable; retried when the pointer moves
            try:
                served = self._load(current)  # slow part, outside the fold lock
            except RegistryError as exc:
                self._refused = current
                self.notice = f"the registry's current version {current} cannot be loaded: {exc}"
                log.error("not following the registry: %s", self.notice)
                return None
            with self._fold_lock:
                self._catch_up(served)
                self._set_served(served)
            self.notice, self._refused = None, None
            log.info("now serving %s, promoted outside this process", current)
            return current

    def rollback(self) -> tuple[str, str | None]:
        """Switch back to the previously promoted version (registry first, then the service).

        If the previous version cannot be loaded, the registry pointer is restored.
        """
        with self._admin_lock:
            previous = self.registry.current()
            target = self.registry.rollback(expected=previous)
            try:
                served = self._load(target)
            except Exception:
                if previous is not None:
                    # Compare-and-swap: undo only our own rollback, never a later change.
                    with contextlib.suppress(RegistryError):
                        self.registry.promote(previous, expected=target)
                raise
            with self._fold_lock:
                self._catch_up(served)
                self._set_served(served)
            self.notice, self._refused = None, None
            return target, previous

    # ------------------------------------------------------------------ writes
    def add_items(self, records: Sequence[EntityRecord]) -> list[int]:
        """Check the batch, commit it to the store, then fold it into the served model and
        index. A batch the fold-in would refuse (a repeated id) is refused before anything
        is committed."""
        from dayzero.online.serving import records_to_entities

        records_to_entities(records, "item")  # raises SchemaError naming the field
        seqs = self.store.upsert_items(records)
        if self.metrics is not None:
            self.metrics.entities.labels("item").inc(len(records))
        stored = [_with_seq(r, s) for r, s in zip(records, seqs, strict=True)]
        touched = [r.id for r in records]
        with self._fold_lock:
            served = self.served
            if served is not None and self.watch_store:
                # Other workers may have committed items below these seqs that this one has
                # not folded in yet: raising item_seq past them would skip them for good.
                touched += self._catch_up(served)
            elif served is not None:
                self._fold_items(served, stored, locked=True)
                served.item_seq = max(served.item_seq, *seqs)
                served.log_writes(stored)
            if served is not None and self.metrics is not None:
                self.metrics.index_size.set(len(served.index))
            # A user's history item may have just gained a vector: those users only.
            self.user_cache.invalidate_items(touched)
        return seqs

    def _fold_items(self, served: Served, records: Sequence[EntityRecord], locked: bool) -> None:
        self.title_cache.invalidate([r.id for r in records])
        for start in range(0, len(records), FOLD_CHUNK):
            chunk = list(records[start : start + FOLD_CHUNK])
            if locked:
                with self._model():
                    ids, vectors = served.model.add_items(chunk)
            else:
                _init_torch_thread()
                ids, vectors = served.model.add_items(chunk)
            if len(ids):
                served.index.add(list(ids), np.asarray(vectors, dtype=np.float32))
            served.folded += len(ids)

    def add_users(self, records: Sequence[EntityRecord]) -> list[int]:
        """Commit user profiles; each user's vector is recomputed at their next request."""
        seqs = self.store.upsert_users(records)
        self.user_cache.invalidate([r.id for r in records])
        if self.metrics is not None:
            self.metrics.entities.labels("user").inc(len(records))
        return seqs

    def add_events(self, events: Sequence[Event]) -> EventIds:
        """Commit events in one transaction; each user's vector is recomputed from the store at
        their next request, so the events count from the moment this returns. Events whose
        idempotency key is already stored are not stored again (see ``EventIds.new``)."""
        ids = self.store.append_events(events)
        self.user_cache.invalidate(list({e.user for e in events}))
        if self.metrics is not None:
            self.metrics.events.inc(ids.new)
        return ids

    # ------------------------------------------------------------------ reads
    def recommend_user(self, user: str, k: int, exclude_seen: bool) -> Recommended:
        """Top ``k`` for a stored user: profile text and every event so far. A user the store
        has never seen is served as a brand-new user (the model's prior), never an error."""
        if self.watch_store:
            self.sync_with_store()
        served = self.require()
        return self._recommend(
            served, user, k, exclude_seen, self.user_cache.get(user, served.version)
        )

    @property
    def answers_on_loop(self) -> bool:
        """Whether a known user's answer may run on the event loop (see
        :meth:`recommend_user_nowait`): with a SQLite store, whose reads are local file
        reads. A PostgreSQL round trip there would hold up every other request of the process
        for its length; those answers run in the thread pool."""
        return getattr(self.store, "dialect", None) == "sqlite"

    def recommend_user_nowait(
        self, user: str, k: int, exclude_seen: bool
    ) -> tuple[Served, Recommended] | None:
        """:meth:`recommend_user` if it can answer without waiting for anything, for a caller
        on the event loop (which serves every other request of the process meanwhile).

        Answers a user the served model knows, from the user cache, from a stored top-K list,
        or by reading a history of at most 1,000 events and running the user tower when the
        model is free. Returns None, having changed nothing that matters, when the answer
        would wait: for an item fold-in or the model busy in another thread, for items other
        workers wrote (see :meth:`sync_with_store`), for a new user's profile to go through
        the text encoder, or for a longer history. The caller then runs
        :meth:`recommend_user` in a thread. A fold-in that starts after the check may still
        hold up the index search for one chunk; ``user_cache.hits`` / ``misses`` count
        lookups, so a declined miss counts again in the thread.

        Returns
        -------
        (Served, Recommended) or None
            The version that ranked the answer, and the answer.
        """
        if self._fold_lock.locked():
            return None
        if self.watch_store and not self.sync_with_store(wait=False):
            return None
        served = self.served
        if served is None or user not in served.known_users:
            return None  # NoModelError from recommend_user, or a new user (the text encoder)
        entry = self.user_cache.get(user, served.version)
        if entry is not None:
            return served, self._recommend(served, user, k, exclude_seen, entry)
        if self.store.count_user_events(user, _NOWAIT_HISTORY + 1) > _NOWAIT_HISTORY:
            return None
        if not self._model_lock.acquire(blocking=False):
            return None
        try:  # the model lock held: user_entry's user-tower pass takes it again (an RLock)
            return served, self._recommend(served, user, k, exclude_seen, None)
        finally:
            self._model_lock.release()

    def _recommend(
        self, served: Served, user: str, k: int, exclude_seen: bool, entry: _UserEntry | None
    ) -> Recommended:
        if self.metrics is not None:
            self.metrics.user_cache.labels("miss" if entry is None else "hit").inc()
        if entry is None and exclude_seen and self._lists_exist(served):
            answer, outcome = toplist_answer(self, served, user, k)
            if self.metrics is not None:
                self.metrics.toplists.labels(outcome).inc()
            if answer is not None:
                return Recommended(*answer)
        if entry is None:
            entry = self.user_entry(served, user)
        exclude = entry.seen if exclude_seen else frozenset()
        ids, scores = served.index.search(entry.vector, k, exclude=exclude)
        return Recommended(ids, scores, entry.new_user)

    def _lists_exist(self, served: Served) -> bool:
        """Whether the store holds top-K lists of the served version (looked up at most every
        30 s while it holds none)."""
        if not self.toplists:
            return False
        if not served.has_toplists:
            now = time.monotonic()
            if now - served.toplists_checked >= _TOPLIST_RECHECK:
                served.toplists_checked = now
                served.has_toplists = self.store.has_toplists(served.version)
        return served.has_toplists

    def seen_items(self, served: Served, user: str, new_user: bool) -> set[str]:
        """Items ``user`` has seen: every stored event, and the training history of a user the
        model knows."""
        return _seen(served, user, self.store.events(user=user), new_user)

    def user_entry(self, served: Served, user: str) -> _UserEntry:
        """The user's query vector and seen items under ``served``, from the store (cached)."""
        token = self.user_cache.token(user)  # before reading the store: see UserVectorCache
        new_user = user not in served.known_users
        profile = None
        if new_user:  # the model's own profile wins for users it knows: skip the lookup
            record = self.store.get_user(user)
            profile = record.text if record is not None and record.text.strip() else None
        events = self.store.events(user=user)
        usable = [e for e in events if e.item in served.index]
        with self._model():
            vector = _as_query(served.model.user_vector(user, profile, usable))
        seen = _seen(served, user, events, new_user)
        entry = _UserEntry(
            version=served.version,
            epoch=token[0],
            vector=vector,
            seen=frozenset(seen),
            new_user=new_user,
            created=time.monotonic(),
        )
        self.user_cache.put(user, token, entry)
        return entry

    def recommend_anonymous(
        self, profile: str | None, recent: Sequence[Event], k: int, exclude_seen: bool
    ) -> Recommended:
        """Top ``k`` for a user described only in the request (nothing is stored)."""
        if self.watch_store:
            self.sync_with_store()
        served = self.require()
        usable = [e for e in recent if e.item in served.index]
        text = profile if profile is not None and profile.strip() else None
        with self._model():
            vector = served.model.user_vector(None, text, usable)
        exclude = {e.item for e in recent} if exclude_seen else set()
        ids, scores = served.index.search(_as_query(vector), k, exclude=exclude)
        return Recommended(ids, scores, True)

    def titles(self, ids: Sequence[str], served: Served | None = None) -> list[str | None]:
        """What to show people for each item, one store read for the whole list: the store
        record's title (or name) field, else the start of its text; else the title of the
        served version's catalogue (``dayzero fit``); None when neither knows the item.

        Parameters
        ----------
        ids : sequence of str
        served : Served, optional
            The version the ids were ranked by (default: the one served now).
        """
        from dayzero.core.fields import title_of
        from dayzero.online.store import id_problem

        if not ids:
            return []
        served = served if served is not None else self.served
        catalogue = served.catalogue if served is not None else {}
        # A model fitted on files may hold ids the store would refuse (a "/"): no record.
        known, missing = self.title_cache.get_many(
            [i for i in dict.fromkeys(ids) if id_problem(i) is None]
        )
        if missing:
            since = time.monotonic()
            records = self.store.get_items(missing)
            read = {}
            for item in missing:
                record = records.get(item)
                read[item] = title_of(record.fields, record.text) if record is not None else None
            self.title_cache.put_many(read, since)
            known.update(read)
        out: list[str | None] = []
        for item in ids:
            title = known.get(item)
            if title is None:
                title = catalogue.get(item, (None, None))[0]
            out.append(title)
        return out

    def item(self, item: str) -> ItemView:
        """The store's record of ``item`` and what the served version knows of it.

        Raises
        ------
        UnknownItemError
            When neither the store nor the served version knows the id.
        SchemaError
            When ``item`` is not a valid id (the message says why).
        """
        from dayzero.core.fields import title_of

        if self.watch_store:
            self.sync_with_store()
        record = self.store.get_item(item)
        served = self.served
        in_index = served is not None and item in served.index
        title, short = (
            served.catalogue.get(item, (None, None)) if served is not None else (None, None)
        )
        if record is None and not in_index and title is None and short is None:
            raise UnknownItemError(
                f"item {item!r} is not in the catalogue (neither in the event store nor in the "
                "served model); POST it to /v1/items first"
            )
        if record is not None:
            title = title_of(record.fields, record.text) or title
        return ItemView(
            id=item,
            title=title,
            text=record.text if record is not None and record.text else (short or ""),
            fields=dict(record.fields) if record is not None else {},
            stored=record is not None,
            served=in_index,
        )

    def similar(self, item: str, k: int) -> tuple[str, list[str], np.ndarray]:
        """Items whose taste direction is closest to ``item``'s (bias columns left out)."""
        if self.watch_store:
            self.sync_with_store()
        served = self.require()
        if item not in served.index:
            raise UnknownItemError(
                f"item {item!r} is not in the catalogue; POST it to /v1/items first"
            )
        query = served.index.get(item).copy()
        query[-N_BIAS_COLUMNS:] = 0.0
        ids, scores = served.index.search(query, k, exclude=[item])
        return served.version, ids, scores


def _catalogue_titles(folder: Path) -> dict[str, tuple[str | None, str | None]]:
    """Item id -> (title, short text) of a ``catalogue`` artifact (JSON only)."""
    from dayzero.core.artifact import load_artifact

    state = load_artifact(folder, "catalogue").state
    ids, titles, texts = state["ids"], state["titles"], state["texts"]
    if not len(ids) == len(titles) == len(texts):
        raise ValueError(
            f"{CATALOGUE_FOLDER}/: {len(ids)} ids, {len(titles)} titles and {len(texts)} texts"
        )
    return {
        str(i): (t if isinstance(t, str) else None, x if isinstance(x, str) else None)
        for i, t, x in zip(ids, titles, texts, strict=True)
    }


def _seen(served: Served, user: str, events: Sequence[Event], new_user: bool) -> set[str]:
    """The items of ``events``, and for a user the model knows its training history too: a
    version published from `dayzero fit` files may serve a store that never held those events."""
    seen = {e.item for e in events}
    if not new_user:
        seen.update(str(i) for i in served.model.model.seen_items(user))
    return seen


def _init_torch_thread() -> None:
    """Give this thread the process's torch thread count. OpenMP keeps the count per thread:
    a threadpool worker would otherwise run every op on the default (all cores), which for
    the tiny per-request tensors costs milliseconds of thread wake-ups."""
    if not getattr(_thread, "torch_ready", False):
        import torch

        torch.set_num_threads(torch.get_num_threads())
        _thread.torch_ready = True


def _with_seq(record: EntityRecord, seq: int) -> EntityRecord:
    from dataclasses import replace

    return replace(record, seq=seq)


def _as_query(vector: np.ndarray) -> np.ndarray:
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if not np.isfinite(query).all():
        raise BadRequestError(
            "the user's events give a non-finite user vector: event values must be ratings or "
            "weights of moderate size (at most 1e6 in absolute value)"
        )
    return query
