"""Model registry: immutable, checksummed version folders and an atomic "current" pointer.

Layout under ``root``::

    v000001/            one folder per published version, never modified after publishing
        ...             whatever the publisher's ``write(folder)`` put there (weights, index, ...)
        metrics.json    evaluation numbers given to publish()
        config.json     configuration given to publish()
        watermark.json  {"watermark": <last event id the version was trained on>}
        MANIFEST.json   {"created", "files": {relative path: {"sha256", "size"}}}; written last
    CURRENT             {"version": "v000002", "stack": ["v000001"]}: the promoted version and the
                        versions promoted before it (what rollback() returns to)
    HISTORY.json        append-only log of promotions and rollbacks
    .lock               flock'ed while a version name is allocated or CURRENT changes
    .staging-<uuid>/    a publish in progress (or a crashed one: ignored, cleaned later)

Atomicity: a version is filled in a staging folder and renamed to its final name only when complete
(MANIFEST.json last, everything fsync'ed), so a version folder is whole or absent. ``CURRENT`` is
replaced by ``os.replace`` of a fsync'ed temporary file, so readers see the old or the new pointer,
never a torn one. ``verify()`` rechecks each file's size and SHA-256 and refuses missing, changed or
extra files; :meth:`ModelRegistry.path` verifies before handing a folder to a loader.

Concurrency: publishers may run in parallel (threads or processes on one host): names are
allocated under an exclusive ``flock`` on ``.lock`` and a rename never overwrites a finished
version. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import operator
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "CorruptVersionError",
    "ModelRegistry",
    "RegistryError",
    "StalePromotionError",
    "UnknownVersionError",
]

MANIFEST = "MANIFEST.json"
METRICS = "metrics.json"
CONFIG = "config.json"
WATERMARK = "watermark.json"
RESERVED = (MANIFEST, METRICS, CONFIG, WATERMARK)
_CURRENT = "CURRENT"
_HISTORY = "HISTORY.json"
_LOCK = ".lock"
_STAGING_PREFIX = ".staging-"
_PUBLISH_LOCK = ".publishing"  # flock'ed inside a staging folder while its publisher lives
_VERSION_RE = re.compile(r"^v(\d{6,})$")
# A staging folder whose publisher holds no lock is a crash leftover once it is this old; the
# age test covers the instants right after mkdir and right before the final rename.
_STAGING_GRACE_S = 60.0
_CHUNK = 1 << 20


class RegistryError(RuntimeError):
    """The registry is inconsistent, or an operation is impossible (e.g. nothing to roll back)."""


class CorruptVersionError(RegistryError):
    """A version folder does not match its manifest (missing, changed or extra file)."""


class UnknownVersionError(RegistryError, LookupError):
    """No version of that name exists in the registry."""


class StalePromotionError(RegistryError):
    """A compare-and-swap promotion found another current version than the one expected (an
    operator or another updater changed it meanwhile); nothing was changed."""


class ModelRegistry:
    """Versioned model folders with atomic promotion and one-step rollback.

    Parameters
    ----------
    root : str or Path
        The registry folder; created if absent.

    Examples
    --------
    >>> import tempfile
    >>> reg = ModelRegistry(tempfile.mkdtemp())
    >>> v1 = reg.publish(lambda d: (d / "w.bin").write_bytes(b"1"), {"mae": 0.8}, 10, {})
    >>> v2 = reg.publish(lambda d: (d / "w.bin").write_bytes(b"2"), {"mae": 0.7}, 20, {})
    >>> reg.promote(v1); reg.promote(v2); reg.current()
    'v000002'
    >>> reg.rollback()
    'v000001'
    >>> (reg.path(reg.current()) / "w.bin").read_bytes()
    b'1'
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.RLock()
        self.clean_staging()

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        write: Callable[[Path], None],
        metrics: dict[str, Any],
        watermark: int,
        config: dict[str, Any],
    ) -> str:
        """Create a new, complete version (not promoted) and return its name.

        Parameters
        ----------
        write : callable
            ``write(folder)`` fills an empty folder with the model's files; it must not create
            ``metrics.json``, ``config.json``, ``watermark.json`` or ``MANIFEST.json``.
        metrics : dict
            JSON-serialisable evaluation numbers (stored as ``metrics.json``).
        watermark : int
            The last event id the model has seen, >= 0.
        config : dict
            JSON-serialisable configuration (stored as ``config.json``).

        Returns
        -------
        str
            The version name, e.g. ``"v000003"``.
        """
        metrics_json = _to_json(metrics, "metrics")
        config_json = _to_json(config, "config")
        try:
            mark = operator.index(watermark)  # accepts numpy integers too
        except TypeError:
            mark = -1
        if isinstance(watermark, bool) or mark < 0:
            raise ValueError(f"watermark must be an int >= 0 (a last event id), got {watermark!r}")
        self.clean_staging()
        staging = self.root / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        lock_fd = os.open(staging / _PUBLISH_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            write(staging)
            clash = [name for name in RESERVED if (staging / name).exists()]
            if clash:
                raise ValueError(
                    f"write() created {clash}, which the registry writes itself; "
                    "pass metrics/config/watermark to publish() instead"
                )
            _write_file(staging / METRICS, metrics_json)
            _write_file(staging / CONFIG, config_json)
            _write_file(staging / WATERMARK, json.dumps({"watermark": mark}))
            files = _hash_tree(staging, skip={_PUBLISH_LOCK})
            manifest = {"format": 1, "created": _now(), "files": files}
            _write_file(staging / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
            (staging / _PUBLISH_LOCK).unlink()
            _fsync(staging)
            with self._locked():
                name = self._next_name()
                os.rename(staging, self.root / name)
                _fsync(self.root)
            return name
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            os.close(lock_fd)

    def clean_staging(self) -> list[str]:
        """Delete staging folders left by crashed publishers; returns their names.

        A staging folder whose publisher is alive holds an ``flock`` and is left alone.
        """
        removed = []
        for entry in self.root.glob(f"{_STAGING_PREFIX}*"):
            if entry.is_dir() and self._stale(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed

    # ------------------------------------------------------------------ promote / rollback
    def promote(self, version: str, expected: str | None = None) -> None:
        """Make ``version`` current (verified first); a no-op if it already is.

        Parameters
        ----------
        version : str
            The version to promote.
        expected : str, optional
            Compare-and-swap: promote only if the current version is still ``expected`` (the
            one a background update started from), else raise :class:`StalePromotionError` and
            change nothing. An operator's promote or rollback in the meantime therefore wins
            over a scheduled update. ``None`` promotes unconditionally (an operator's intent).
        """
        with self._locked():
            self.verify(version)
            pointer = self._read_pointer()
            if expected is not None:
                current = None if pointer is None else pointer["version"]
                if current != expected:
                    raise StalePromotionError(
                        f"not promoting {version}: the current version is {current}, not "
                        f"{expected} (it changed while {version} was prepared); promote it "
                        "explicitly if it should still be served"
                    )
            if pointer is not None and pointer["version"] == version:
                return
            stack = [] if pointer is None else [*pointer["stack"], pointer["version"]]
            self._write_pointer(version, stack)
            self._log("promote", version, None if pointer is None else pointer["version"])

    def rollback(self, expected: str | None = None) -> str:
        """Return to the version promoted before the current one and return its name.

        Repeated rollbacks walk further back. Raises :class:`RegistryError` when there is
        nothing to roll back to and :class:`CorruptVersionError` if that version is damaged.
        ``expected``: roll back only if the current version is still this one (else
        :class:`StalePromotionError`).
        """
        with self._locked():
            pointer = self._read_pointer()
            if expected is not None and (pointer is None or pointer["version"] != expected):
                current = None if pointer is None else pointer["version"]
                raise StalePromotionError(
                    f"not rolling back: the current version is {current}, not {expected}"
                )
            if pointer is None or not pointer["stack"]:
                raise RegistryError(
                    f"nothing to roll back to in {self.root}: "
                    + ("no version was ever promoted" if pointer is None else "only one promotion")
                )
            *stack, target = pointer["stack"]
            self.verify(target)
            self._write_pointer(target, stack)
            self._log("rollback", target, pointer["version"])
            return target

    def current(self) -> str | None:
        """The promoted version's name, or None before the first promotion.

        Raises :class:`RegistryError` if ``CURRENT`` names a version folder that does not exist.
        """
        pointer = self._read_pointer()
        if pointer is None:
            return None
        version = pointer["version"]
        if not (self.root / version).is_dir():
            raise RegistryError(
                f"{self.root / _CURRENT} points to {version}, which does not exist; "
                "promote an existing version (see versions()) to repair it"
            )
        return version

    def previous_versions(self) -> list[str]:
        """The versions promoted before the current one, newest first: where :meth:`rollback`
        goes, one step at a time (empty before a second promotion)."""
        pointer = self._read_pointer()
        return [] if pointer is None else list(reversed(pointer["stack"]))

    # ------------------------------------------------------------------ reading versions
    def path(self, version: str, verify: bool = True) -> Path:
        """The folder of ``version``, verified against its manifest unless ``verify=False``."""
        if verify:
            self.verify(version)
        return self._folder(version)

    def verify(self, version: str) -> None:
        """Check every file of ``version`` against MANIFEST.json (sizes and SHA-256).

        Raises
        ------
        UnknownVersionError
            No such version.
        CorruptVersionError
            MANIFEST.json missing or unreadable, or a file missing, changed or not in the manifest;
            the message names the file.
        """
        folder = self._folder(version)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            expected: dict[str, dict[str, Any]] = manifest["files"]
        except FileNotFoundError:
            raise CorruptVersionError(
                f"{version}: {MANIFEST} is missing (a partial or damaged version); publish it again"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptVersionError(f"{version}: {MANIFEST} is unreadable ({exc})") from None
        _check_manifest(version, expected)
        for rel, entry in sorted(expected.items()):
            target = _inside(folder, rel, version)
            if not target.is_file():
                raise CorruptVersionError(f"{version}: file {rel} is missing")
            size = target.stat().st_size
            if size != entry["size"]:
                raise CorruptVersionError(
                    f"{version}: file {rel} changed (size {size}, manifest says {entry['size']})"
                )
            if _sha256(target) != entry["sha256"]:
                raise CorruptVersionError(f"{version}: file {rel} changed (SHA-256 mismatch)")
        extra = sorted(set(_tree(folder)) - set(expected) - {MANIFEST})
        if extra:
            raise CorruptVersionError(f"{version}: file {extra[0]} is not in the manifest")

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first: name, created, promoted (ever), current, metrics, watermark.

        Does not verify checksums (see :meth:`verify`); an unreadable version shows ``None``s.
        """
        pointer = self._read_pointer()
        current = None if pointer is None else pointer["version"]
        promoted = {e["version"] for e in self._history() if e.get("action") == "promote"}
        out = []
        for name in self._names():
            info = self._read_info(name)
            out.append(
                {
                    "name": name,
                    "created": info["created"],
                    "promoted": name in promoted,
                    "current": name == current,
                    "metrics": info["metrics"],
                    "watermark": info["watermark"],
                }
            )
        return out

    def info(self, version: str) -> dict[str, Any]:
        """``{"name", "created", "metrics", "watermark", "config"}`` of one version."""
        self._folder(version)
        return self._read_info(version)

    def history(self) -> list[dict[str, Any]]:
        """Promotions and rollbacks, oldest first: ``action``, ``version``, ``previous``, ``at``."""
        return self._history()

    # ------------------------------------------------------------------ internals
    def _folder(self, version: str) -> Path:
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise UnknownVersionError(
                f"{version!r} is not a version name (expected like 'v000001'); see versions()"
            )
        folder = self.root / version
        if not folder.is_dir():
            raise UnknownVersionError(f"no version {version} in {self.root}; see versions()")
        return folder

    def _names(self) -> list[str]:
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def _next_name(self) -> str:
        names = self._names()
        number = int(names[-1][1:]) + 1 if names else 1
        while (self.root / f"v{number:06d}").exists():
            number += 1
        return f"v{number:06d}"

    def _read_info(self, version: str) -> dict[str, Any]:
        folder = self.root / version

        def load(name: str) -> Any:
            try:
                return json.loads((folder / name).read_text())
            except (OSError, ValueError):
                return None

        manifest = load(MANIFEST) or {}
        watermark = load(WATERMARK) or {}
        return {
            "name": version,
            "created": manifest.get("created"),
            "metrics": load(METRICS),
            "watermark": watermark.get("watermark"),
            "config": load(CONFIG),
        }

    def _read_pointer(self) -> dict[str, Any] | None:
        try:
            pointer = json.loads((self.root / _CURRENT).read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise RegistryError(f"{self.root / _CURRENT} is unreadable ({exc})") from None
        if not isinstance(pointer, dict) or not isinstance(pointer.get("version"), str):
            raise RegistryError(f"{self.root / _CURRENT} does not name a version: {pointer!r}")
        pointer.setdefault("stack", [])
        return pointer

    def _write_pointer(self, version: str, stack: list[str]) -> None:
        _replace_atomically(self.root / _CURRENT, json.dumps({"version": version, "stack": stack}))

    def _history(self) -> list[dict[str, Any]]:
        try:
            return json.loads((self.root / _HISTORY).read_text())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise RegistryError(f"{self.root / _HISTORY} is unreadable ({exc})") from None

    def _log(self, action: str, version: str, previous: str | None) -> None:
        entries = self._history()
        entries.append({"action": action, "version": version, "previous": previous, "at": _now()})
        _replace_atomically(self.root / _HISTORY, json.dumps(entries, indent=1))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # flock excludes other processes; the thread lock covers threads sharing this object.
        with self._thread_lock:
            fd = os.open(self.root / _LOCK, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _stale(self, staging: Path) -> bool:
        try:
            fd = os.open(staging / _PUBLISH_LOCK, os.O_RDWR)
        except FileNotFoundError:
            try:
                return time.time() - staging.stat().st_mtime > _STAGING_GRACE_S
            except FileNotFoundError:
                return False  # renamed away by its publisher just now
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live publisher holds it
        finally:
            os.close(fd)
        # Unlocked: a crashed publisher, or one between creating its lock file and locking it
        # (an instant, so the folder is brand new).
        try:
            return time.time() - staging.stat().st_mtime > _STAGING_GRACE_S
        except FileNotFoundError:
            return False


def _check_manifest(version: str, files: Any) -> None:
    """``files`` is ``{relative path: {"sha256": str, "size": int}}``, else CorruptVersionError."""
    if not isinstance(files, dict):
        raise CorruptVersionError(
            f"{version}: {MANIFEST} 'files' is a {type(files).__name__}, not an object of "
            "path -> {sha256, size}; publish the version again"
        )
    for rel, entry in files.items():
        good = (
            isinstance(rel, str)
            and rel
            and isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("size"), int)
            and not isinstance(entry.get("size"), bool)
        )
        if not good:
            raise CorruptVersionError(
                f"{version}: {MANIFEST} entry {rel!r}: {entry!r} is not {{sha256, size}}; "
                "publish the version again"
            )


def _inside(folder: Path, rel: str, version: str) -> Path:
    """``folder / rel``, refusing any path that leaves the folder or passes through a link."""
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts:
        raise CorruptVersionError(
            f"{version}: {MANIFEST} names {rel!r}, a path outside the version folder"
        )
    target = folder
    for part in parts:
        target = target / part
        if target.is_symlink():
            raise CorruptVersionError(f"{version}: {target.relative_to(folder)} is a link")
    resolved_root = folder.resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise CorruptVersionError(
            f"{version}: {MANIFEST} names {rel!r}, a path outside the version folder"
        )
    return target


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _to_json(value: Any, name: str) -> str:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be JSON-serialisable with finite numbers ({exc}); "
            "convert numpy values with float()/int()"
        ) from None


def _tree(folder: Path) -> list[str]:
    """Relative POSIX paths of every file under folder (refusing links)."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise CorruptVersionError(f"{folder.name}: {path.relative_to(folder)} is a link")
        if path.is_file():
            out.append(path.relative_to(folder).as_posix())
    return out


def _hash_tree(folder: Path, skip: set[str]) -> dict[str, dict[str, Any]]:
    files = {}
    for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _fsync(sub)
    for rel in _tree(folder):
        if rel in skip:
            continue
        path = folder / rel
        _fsync(path)
        files[rel] = {"sha256": _sha256(path), "size": path.stat().st_size}
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_file(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _replace_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    _write_file(tmp, text)
    os.replace(tmp, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries (a rename or a new file in it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
