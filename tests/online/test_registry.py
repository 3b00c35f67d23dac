"""ModelRegistry: publish / promote / rollback, corruption and partial versions refused."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dayzero.online.registry import (
    CorruptVersionError,
    ModelRegistry,
    RegistryError,
    UnknownVersionError,
)


def _writer(payload: bytes):
    def write(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(payload)
        (folder / "index").mkdir()
        (folder / "index" / "vectors.bin").write_bytes(payload * 3)

    return write


def _publish(reg: ModelRegistry, tag: int) -> str:
    return reg.publish(_writer(bytes([tag]) * 100), {"mae": 1.0 / tag}, 10 * tag, {"tag": tag})


def test_publish_writes_a_complete_verified_version_that_is_not_promoted(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = _publish(reg, 1)
    assert v == "v000001"
    assert reg.current() is None
    folder = reg.path(v)
    files = json.loads((folder / "MANIFEST.json").read_text())["files"]
    assert set(files) == {
        "weights.bin",
        "index/vectors.bin",
        "metrics.json",
        "config.json",
        "watermark.json",
    }
    assert files["weights.bin"]["size"] == 100
    assert reg.info(v)["metrics"] == {"mae": 1.0}
    assert reg.info(v)["watermark"] == 10
    assert reg.info(v)["config"] == {"tag": 1}
    assert not list(tmp_path.glob(".staging-*"))


def test_promote_rollback_walks_back_through_promotions(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1, v2, v3 = (_publish(reg, t) for t in (1, 2, 3))
    assert [v1, v2, v3] == ["v000001", "v000002", "v000003"]
    reg.promote(v1)
    reg.promote(v2)
    reg.promote(v3)
    reg.promote(v3)  # already current: no new history entry
    assert reg.current() == v3
    assert reg.rollback() == v2
    assert reg.current() == v2
    assert reg.rollback() == v1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback()
    assert reg.current() == v1
    reg.promote(v3)
    assert reg.rollback() == v1
    actions = [(h["action"], h["version"]) for h in reg.history()]
    assert actions == [
        ("promote", v1),
        ("promote", v2),
        ("promote", v3),
        ("rollback", v2),
        ("rollback", v1),
        ("promote", v3),
        ("rollback", v1),
    ]
    listing = {v["name"]: v for v in reg.versions()}
    assert listing[v1]["current"] and not listing[v2]["current"]
    assert all(listing[v]["promoted"] for v in (v1, v2, v3))
    assert listing[v2]["watermark"] == 20 and listing[v2]["metrics"] == {"mae": 0.5}


def test_state_survives_a_new_registry_object(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1, v2 = _publish(reg, 1), _publish(reg, 2)
    reg.promote(v1)
    reg.promote(v2)
    again = ModelRegistry(tmp_path)
    assert again.current() == v2
    assert again.rollback() == v1


def test_rollback_with_nothing_promoted_is_an_error(tmp_path):
    reg = ModelRegistry(tmp_path)
    _publish(reg, 1)
    with pytest.raises(RegistryError, match="no version was ever promoted"):
        reg.rollback()


def test_flipped_byte_is_detected_and_refused(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = _publish(reg, 1)
    target = tmp_path / v / "index" / "vectors.bin"
    data = bytearray(target.read_bytes())
    data[17] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(CorruptVersionError, match=r"index/vectors\.bin changed \(SHA-256"):
        reg.verify(v)
    with pytest.raises(CorruptVersionError, match=r"vectors\.bin"):
        reg.path(v)
    with pytest.raises(CorruptVersionError):
        reg.promote(v)
    assert reg.current() is None
    assert reg.path(v, verify=False) == tmp_path / v


def test_truncated_missing_and_extra_files_are_named(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1, v2, v3 = (_publish(reg, t) for t in (1, 2, 3))
    (tmp_path / v1 / "weights.bin").write_bytes(b"short")
    with pytest.raises(CorruptVersionError, match=r"weights\.bin changed \(size 5"):
        reg.verify(v1)
    (tmp_path / v2 / "weights.bin").unlink()
    with pytest.raises(CorruptVersionError, match=r"v000002: file weights\.bin is missing"):
        reg.verify(v2)
    (tmp_path / v3 / "stray.txt").write_text("x")
    with pytest.raises(CorruptVersionError, match=r"stray\.txt is not in the manifest"):
        reg.verify(v3)


def test_rollback_to_a_corrupted_version_is_refused(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1, v2 = _publish(reg, 1), _publish(reg, 2)
    reg.promote(v1)
    reg.promote(v2)
    (tmp_path / v1 / "config.json").write_text("{}")
    with pytest.raises(CorruptVersionError, match=r"config\.json"):
        reg.rollback()
    assert reg.current() == v2


def test_version_without_manifest_is_partial(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = _publish(reg, 1)
    (tmp_path / v / "MANIFEST.json").unlink()
    with pytest.raises(CorruptVersionError, match=r"MANIFEST\.json is missing"):
        reg.path(v)
    assert reg.versions()[0]["created"] is None


def test_crashed_staging_folder_is_ignored_and_cleaned(tmp_path):
    reg = ModelRegistry(tmp_path)
    stale = tmp_path / ".staging-deadbeef"
    stale.mkdir()
    (stale / "weights.bin").write_bytes(b"half")
    (stale / ".publishing").write_text("")  # its publisher died: nobody holds the flock
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".staging-justnow"  # age unknown publisher: too young to judge
    fresh.mkdir()
    assert reg.versions() == []
    v = _publish(reg, 1)
    assert v == "v000001"
    assert [x["name"] for x in reg.versions()] == [v]
    assert not stale.exists()
    assert fresh.exists()


def test_failing_writer_leaves_nothing_behind(tmp_path):
    reg = ModelRegistry(tmp_path)

    def broken(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        reg.publish(broken, {}, 0, {})
    assert reg.versions() == []
    assert not list(tmp_path.glob(".staging-*"))


def test_current_pointing_to_a_missing_version_is_a_clear_error(tmp_path):
    reg = ModelRegistry(tmp_path)
    (tmp_path / "CURRENT").write_text(json.dumps({"version": "v000007", "stack": []}))
    with pytest.raises(RegistryError, match="points to v000007, which does not exist"):
        reg.current()
    v = _publish(reg, 1)
    reg.promote(v)  # promoting an existing version repairs the pointer
    assert reg.current() == v


def test_unknown_version_errors(tmp_path):
    reg = ModelRegistry(tmp_path)
    with pytest.raises(UnknownVersionError, match="no version v000042"):
        reg.promote("v000042")
    with pytest.raises(UnknownVersionError, match="not a version name"):
        reg.path("../etc")
    with pytest.raises(UnknownVersionError):
        reg.info("v000001")
    assert issubclass(CorruptVersionError, RuntimeError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"watermark": -1}, "watermark must be an int >= 0"),
        ({"watermark": 1.5}, "watermark must be an int >= 0"),
        ({"watermark": True}, "watermark must be an int >= 0"),
        ({"metrics": {"mae": float("nan")}}, "metrics must be JSON-serialisable"),
        ({"config": {"f": object()}}, "config must be JSON-serialisable"),
        ({"metrics": [1]}, "metrics must be a dict"),
    ],
)
def test_bad_publish_arguments(tmp_path, kwargs, match):
    reg = ModelRegistry(tmp_path)
    args = {"write": _writer(b"x"), "metrics": {}, "watermark": 0, "config": {}} | kwargs
    with pytest.raises(ValueError, match=match):
        reg.publish(**args)
    assert reg.versions() == []


def test_writer_may_not_create_reserved_files(tmp_path):
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ValueError, match=r"write\(\) created \['metrics.json'\]"):
        reg.publish(lambda d: (d / "metrics.json").write_text("{}"), {}, 0, {})
    assert not list(tmp_path.glob(".staging-*"))


def test_concurrent_publishers_get_distinct_versions(tmp_path):
    names: list[str] = []
    barrier = threading.Barrier(6)

    def publish(tag: int) -> None:
        reg = ModelRegistry(tmp_path)  # one object per thread, like separate processes

        def write(folder: Path) -> None:
            barrier.wait()
            (folder / "w.bin").write_bytes(bytes([tag]))

        names.append(reg.publish(write, {"tag": tag}, tag, {}))

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(names) == [f"v{n:06d}" for n in range(1, 7)]
    reg = ModelRegistry(tmp_path)
    tags = set()
    for name in names:
        reg.verify(name)
        tags.add(reg.info(name)["metrics"]["tag"])
    assert tags == set(range(6))


def test_numpy_integer_watermark_is_accepted(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = reg.publish(_writer(b"x"), {}, np.int64(42), {})
    assert reg.info(v)["watermark"] == 42


# --- manifest paths and shape ----------------------------------------------------------------


def _rewrite_manifest(reg: ModelRegistry, version: str, edit) -> None:
    path = reg.root / version / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "name",
    ["../v000001/weights.bin", "/etc/hostname", "index/../../v000001/weights.bin", "a/./../b"],
)
def test_a_manifest_may_not_name_files_outside_its_version(tmp_path, name):
    reg = ModelRegistry(tmp_path)
    v1, v2 = _publish(reg, 1), _publish(reg, 2)
    outside = (tmp_path / v2 / name) if not name.startswith("/") else Path(name)
    entry = {"size": 0, "sha256": ""}
    if outside.is_file():
        data = outside.read_bytes()
        import hashlib

        entry = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _rewrite_manifest(reg, v2, lambda m: m["files"].update({name: entry}))
    with pytest.raises(CorruptVersionError, match="outside"):
        reg.verify(v2)
    with pytest.raises(CorruptVersionError):
        reg.promote(v2)
    assert reg.current() is None
    reg.verify(v1)


def test_a_link_inside_a_version_is_refused_even_if_hashed(tmp_path):
    import hashlib

    reg = ModelRegistry(tmp_path)
    v1, v2 = _publish(reg, 1), _publish(reg, 2)
    (tmp_path / v2 / "index" / "vectors.bin").unlink()
    (tmp_path / v2 / "index" / "vectors.bin").symlink_to(tmp_path / v1 / "index" / "vectors.bin")
    data = (tmp_path / v1 / "index" / "vectors.bin").read_bytes()
    entry = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _rewrite_manifest(reg, v2, lambda m: m["files"].update({"index/vectors.bin": entry}))
    with pytest.raises(CorruptVersionError, match="link"):
        reg.verify(v2)
    linked_dir = tmp_path / _publish(reg, 3)
    shutil_target = linked_dir / "index"
    for path in shutil_target.iterdir():
        path.unlink()
    shutil_target.rmdir()
    shutil_target.symlink_to(tmp_path / v1 / "index")
    with pytest.raises(CorruptVersionError, match="link"):
        reg.verify(linked_dir.name)


@pytest.mark.parametrize(
    "files",
    [[], {"weights.bin": "x"}, {"weights.bin": {"size": "100"}}, None, {"": {"size": 1}}],
)
def test_a_malformed_manifest_is_a_corrupt_version(tmp_path, files):
    reg = ModelRegistry(tmp_path)
    v = _publish(reg, 1)
    _rewrite_manifest(reg, v, lambda m: m.update({"files": files}))
    with pytest.raises(CorruptVersionError, match=r"MANIFEST\.json"):
        reg.verify(v)


# --- compare-and-swap promotion ----------------------------------------------------------------


def test_promote_with_an_expected_current_version_is_a_compare_and_swap(tmp_path):
    from dayzero.online.registry import StalePromotionError

    reg = ModelRegistry(tmp_path)
    v1, v2, v3 = (_publish(reg, t) for t in (1, 2, 3))
    reg.promote(v1)
    reg.promote(v2, expected=v1)
    assert reg.current() == v2
    with pytest.raises(StalePromotionError, match=f"current version is {v2}, not {v1}"):
        reg.promote(v3, expected=v1)
    assert reg.current() == v2
    assert [e["version"] for e in reg.history()] == [v1, v2]


def test_a_scheduled_promote_cannot_undo_an_operators_rollback(tmp_path):
    """The race of the issue: an update starts from v2, the operator rolls back to v1 while it
    trains, and the update's promote of its child must then be refused, from any thread."""
    from dayzero.online.registry import StalePromotionError

    reg = ModelRegistry(tmp_path)
    v1, v2, child = (_publish(reg, t) for t in (1, 2, 3))
    reg.promote(v1)
    reg.promote(v2)
    parent = reg.current()  # the updater reads its parent ...
    started, rolled = threading.Event(), threading.Event()
    outcome: list[object] = []

    def updater() -> None:
        started.set()
        rolled.wait(10)  # ... trains meanwhile ...
        try:
            ModelRegistry(tmp_path).promote(child, expected=parent)  # ... then promotes
            outcome.append("promoted")
        except StalePromotionError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=updater)
    thread.start()
    started.wait(10)
    assert ModelRegistry(tmp_path).rollback() == v1  # the operator, another registry object
    rolled.set()
    thread.join(10)
    assert isinstance(outcome[0], StalePromotionError)
    assert reg.current() == v1


def test_previous_versions_are_the_rollback_history_newest_first(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1, v2, v3 = (_publish(reg, t) for t in (1, 2, 3))
    assert reg.previous_versions() == []
    for v in (v1, v2, v3):
        reg.promote(v)
    assert reg.previous_versions() == [v2, v1]
