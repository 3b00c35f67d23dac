"""A served environment for the service tests: an event store and a registry with one promoted
two-tower version, trained on a synthetic catalogue where the right answer is known.

Two themes: action items ("explosions car chase fight gun hero ...") and romance items
("love kiss wedding romance heart couple ..."). Users ``ua*`` rate action 4-5 and romance 1-2,
users ``ub*`` the reverse. The model uses the tiny random BERT (the text is not what it learns
from here: the trained item vectors and history pooling are).

``served_env`` is built once per session; ``env`` copies it per test, so tests may write.
``ServerProcess`` runs the real service (``python -m dayzero.cli.serve``) on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

API_KEY = "test-key"
ACTION = "explosions car chase fight gun hero action"
ROMANCE = "love kiss wedding romance heart couple"
N_ITEMS = 10  # per theme
N_USERS = 10  # per group
FAST = {
    "towers__dim": 8,
    "towers__hidden": 32,
    "training__epochs": 60,
    "training__batch_users": 8,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


@dataclass(frozen=True)
class Env:
    store: Path
    registry: Path
    action: tuple[str, ...]
    romance: tuple[str, ...]

    def theme(self, item: str) -> str:
        return "action" if item.startswith("a") else "romance"


def catalogue_records(seed: int = 0):
    """Items, users and events of the synthetic catalogue (store records)."""
    from datetime import UTC, datetime, timedelta

    from dayzero.online.store import EntityRecord, Event

    rng = np.random.default_rng(seed)
    action = [f"a{i}" for i in range(N_ITEMS)]
    romance = [f"r{i}" for i in range(N_ITEMS)]
    items = [EntityRecord(i, f"{ACTION} {i}") for i in action] + [
        EntityRecord(i, f"{ROMANCE} {i}") for i in romance
    ]
    users_a = [f"ua{i}" for i in range(N_USERS)]
    users_b = [f"ub{i}" for i in range(N_USERS)]
    users = [EntityRecord(u, "a regular viewer") for u in users_a + users_b]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = []
    for user in users_a + users_b:
        for item in action + romance:
            if rng.random() < 0.7:
                liked = (item in action) == (user in users_a)
                value = float(rng.integers(4, 6) if liked else rng.integers(1, 3))
                ts = start + timedelta(minutes=len(events))
                events.append(Event(user=user, item=item, value=value, ts=ts))
    return items, users, events, tuple(action), tuple(romance)


def train_version(store, registry, encoder: str, metrics: dict | None = None) -> str:
    """Fit a two-tower on everything in ``store``, publish it (model + index) and return it."""
    from dayzero.core.schema import Dataset, Interactions
    from dayzero.online.serving import ServingModel, records_to_entities
    from dayzero.recommend.two_tower import TwoTowerRecommender

    frame = store.events_frame()
    interactions = Interactions(frame[["user", "item", "value"]].reset_index(drop=True))
    dataset = Dataset(
        interactions,
        users=records_to_entities(store.users(), "user"),
        items=records_to_entities(store.items(), "item"),
    )
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny towers: threads only fight the other test processes
    try:
        model = TwoTowerRecommender().set_params(encoder=encoder, **FAST).fit(dataset)
    finally:
        torch.set_num_threads(threads)
    serving = ServingModel.from_recommender(model)
    return registry.publish(
        lambda folder: serving.save(folder),
        metrics=metrics or {"mae": 0.5},
        watermark=store.last_event_id(),
        config={"encoder": encoder, **FAST},
    )


def republish(registry, version: str, metrics: dict, extra_index_item: str | None = None) -> str:
    """Publish a copy of ``version``'s files (model, index) as a new version, without loading
    the model: a cheap second version to promote and roll back to. ``extra_index_item`` adds
    an item to the copy's saved index only (so a test can tell the saved index was loaded)."""
    from dayzero.online.index import VectorIndex
    from dayzero.online.registry import RESERVED

    source = registry.path(version)

    def write(folder: Path) -> None:
        for path in source.iterdir():
            if path.name in RESERVED:
                continue
            if path.is_dir():
                shutil.copytree(path, folder / path.name)
            else:
                shutil.copy2(path, folder / path.name)
        if extra_index_item is not None:
            index = VectorIndex.load(folder / "index")
            index.add([extra_index_item], index.get(index.ids()[0])[None, :])
            index.save(folder / "index")

    watermark = registry.info(version)["watermark"]
    return registry.publish(
        write, metrics=metrics, watermark=watermark, config={"copy_of": version}
    )


@pytest.fixture(scope="session")
def served_env(tmp_path_factory, tiny_bert_dir) -> Env:
    """Store + registry with one promoted version (built once; copy it before writing)."""
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store

    root = tmp_path_factory.mktemp("served")
    items, users, events, action, romance = catalogue_records()
    store = open_store(root / "events.db")
    try:
        store.upsert_items(items)
        store.upsert_users(users)
        store.append_events(events)
        registry = ModelRegistry(root / "models")
        registry.promote(train_version(store, registry, str(tiny_bert_dir)))
    finally:
        store.close()
    return Env(root / "events.db", root / "models", action, romance)


def copy_env(source: Env, target: Path) -> Env:
    """A copy of ``source``'s store and registry in the new folder ``target``."""
    target.mkdir(parents=True)
    for path in source.store.parent.glob("events.db*"):
        shutil.copy2(path, target / path.name)
    shutil.copytree(source.registry, target / "models")
    return Env(target / "events.db", target / "models", source.action, source.romance)


@pytest.fixture
def env(served_env, tmp_path) -> Env:
    """A private copy of ``served_env`` for one test."""
    return copy_env(served_env, tmp_path / "served")


def wait_until(condition, timeout: float, what: str, detail=lambda: "", poll: float = 0.05):
    """``condition()``'s first truthy value, polled until ``timeout`` seconds; else an
    AssertionError naming ``what`` (and ``detail()``, e.g. a server log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not after {timeout} s: {what}\n{detail()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m dayzero.cli.serve`` on 127.0.0.1, ready once ``/healthz`` answers."""

    def __init__(self, env: Env, log: Path, *extra: str) -> None:
        self.env = env
        self.log = log
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 40.0) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "dayzero.cli.serve",
            "--store",
            str(self.env.store),
            "--registry",
            str(self.env.registry),
            "--port",
            str(self.port),
            "--api-key",
            API_KEY,
            "--log-level",
            "warning",
            *self.extra,
        ]
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=environment
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what was committed must survive."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
