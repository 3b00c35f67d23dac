"""kill -9 the real server while a client streams events; every acknowledged event survives, and
the restarted server serves the last promoted version with its index (and replays fold-in). The
client retries what was in flight (and an acknowledged batch, as if its answer had been lost)
with the same Idempotency-Key: nothing is stored twice. The same with ``--workers 2``: kill -9
of one worker, the other answers the retry, and the supervisor replaces the dead one."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import signal
import threading
import time

import httpx
import psutil
import pytest

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import open_store
from tests.online.conftest import postgres_url  # noqa: F401  (the PostgreSQL variant's schema)
from tests.serve.conftest import API_KEY, ROMANCE, Env, ServerProcess, republish, wait_until

KEY = {"X-API-Key": API_KEY}
BATCH = 20


def test_acknowledged_events_survive_kill_9(env, tmp_path):
    registry = ModelRegistry(env.registry)
    watermark = registry.info("v000001")["watermark"]
    v2 = republish(registry, "v000001", {"mae": 0.42}, extra_index_item="only-in-v2-index")

    server = ServerProcess(env, tmp_path / "server.log").start()
    acknowledged: list[int] = []
    in_flight: list[tuple[str, list[dict]]] = []  # batches sent, answer not read (yet)
    last_acknowledged: list[tuple[str, list[dict]]] = []
    sent = threading.Event()
    stop = threading.Event()
    errors: list[str] = []

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=5.0) as http:
            n = 0
            while not stop.is_set():
                batch = [
                    {
                        "user": f"crash-{n}",
                        "item": env.romance[k % 3],
                        "value": 4.0,
                        "context": {"n": n + k},
                    }
                    for k in range(BATCH)
                ]
                key = f"batch-{n}"
                n += BATCH
                in_flight.append((key, batch))
                headers = {**KEY, "Idempotency-Key": key}
                try:
                    response = http.post("/v1/events", json={"events": batch}, headers=headers)
                except httpx.TransportError:
                    return  # the server died mid-request: that batch was not acknowledged
                if response.status_code != 200:
                    errors.append(response.text)
                    return
                acknowledged.extend(response.json()["ids"])
                in_flight.remove((key, batch))
                last_acknowledged[:] = [(key, batch)]
                if len(acknowledged) >= 10 * BATCH:
                    sent.set()

    try:
        with httpx.Client(base_url=server.url, timeout=30.0, headers=KEY) as http:
            item = {"items": [{"id": "r_crash", "text": f"{ROMANCE} crash"}]}
            assert http.post("/v1/items", json=item, headers=KEY).status_code == 200
            promoted = http.post("/v1/admin/promote", json={"version": v2}, headers=KEY)
            assert promoted.status_code == 200, promoted.text
        client = threading.Thread(target=stream)
        client.start()
        assert sent.wait(30), f"client stalled: {errors} {server.log_text()}"
        server.kill()  # mid-stream: the client is still posting
        stop.set()
        client.join(10)
    finally:
        stop.set()
        server.stop()
    assert not errors
    assert len(acknowledged) >= 10 * BATCH

    store = open_store(env.store)
    try:
        stored = {e.id for e in store.events(after=watermark)}
    finally:
        store.close()
    missing = sorted(set(acknowledged) - stored)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"

    with (
        ServerProcess(env, tmp_path / "restart.log") as again,
        httpx.Client(base_url=again.url, timeout=30.0, headers=KEY) as http,
    ):
        info = http.get("/v1/model").json()
        assert info["version"] == v2 == registry.current()
        assert info["metrics"] == {"mae": 0.42}
        # v2's saved index (20 items + one only it holds) plus the item folded in from the store
        assert info["index_size"] == 2 * len(env.action) + 2
        assert http.get("/v1/items/only-in-v2-index/similar").status_code == 200
        assert http.get("/v1/items/r_crash/similar").status_code == 200
        ack = http.post(
            "/v1/events", json={"events": [{"user": "after", "item": "a0"}]}, headers=KEY
        ).json()
        assert ack["ids"][0] > max(acknowledged)
        # The client retries the batch the kill cut off, and the last acknowledged one.
        for key, batch in [*in_flight, *last_acknowledged]:
            retry = http.post(
                "/v1/events",
                json={"events": batch},
                headers={**KEY, "Idempotency-Key": key},
            )
            assert retry.status_code == 200, retry.text
    store = open_store(env.store)
    try:
        numbers = [e.context["n"] for e in store.events(after=watermark) if "n" in e.context]
    finally:
        store.close()
    assert len(numbers) == len(set(numbers)), "a retried event was stored twice"
    assert set(numbers) == set(range(max(numbers) + 1)), "a retried event is missing"


# --- the multi-worker deployment: kill -9 of one worker of `dayzero serve --workers 2` -------

STARTED = "Application startup complete."  # uvicorn's line, once per worker that serves


# ~30-60 s each on 2 busy cores (three worker start-ups): the PostgreSQL run is a slow test
# (`make test-slow` with DAYZERO_TEST_POSTGRES_URL set).
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store_env(request, env) -> Env:
    """The served environment on either store: PostgreSQL gets a copy of the SQLite store
    (same event ids, so the registry's watermark means the same)."""
    if request.param == "sqlite":
        return env
    url = request.getfixturevalue("postgres_url")
    with open_store(env.store) as source, open_store(url) as target:
        target.upsert_items(source.items())
        target.upsert_users(source.users())
        events = source.events()
        for start in range(0, len(events), 1000):
            target.append_events(events[start : start + 1000])
        assert target.last_event_id() == source.last_event_id()
    return dataclasses.replace(env, store=url)


def workers(server: ServerProcess) -> dict[int, psutil.Process]:
    """The supervisor's worker processes (multiprocessing spawn children)."""
    children = psutil.Process(server.proc.pid).children()
    return {p.pid: p for p in children if "spawn_main" in " ".join(_cmdline(p))}


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


def holder(procs: dict[int, psutil.Process], port: int, client: int | None = None) -> set[int]:
    """The workers holding an established connection on ``port`` (from local port ``client``)."""
    found = set()
    for pid, process in procs.items():
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        for c in connections:
            if c.status != psutil.CONN_ESTABLISHED or c.laddr.port != port:
                continue
            if client is None or (c.raddr and c.raddr.port == client):
                found.add(pid)
    return found


def full_log(server: ServerProcess) -> str:
    """The whole server log (``log_text`` keeps only its tail, and access lines push the
    start-up lines out of it)."""
    return server.log.read_text(errors="replace") if server.log.exists() else ""


def wait_for(condition, timeout: float, what: str, server: ServerProcess):
    """``condition()``'s first truthy value, polled until ``timeout`` (the log if not)."""
    return wait_until(condition, timeout, what, server.log_text)


def send_then_kill(server: ServerProcess, key: str, batch: list[dict]) -> int:
    """POST a batch on a new connection, kill -9 the worker that accepted it before its answer
    is read (it may have stored the batch, or not), and return that worker's pid."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, **KEY}
    connection.request("POST", "/v1/events", body=json.dumps({"events": batch}), headers=headers)
    client = connection.sock.getsockname()[1]
    procs = workers(server)
    (victim,) = wait_for(lambda: holder(procs, server.port, client), 10, "accepted", server)
    os.kill(victim, signal.SIGKILL)
    # Whatever the worker wrote before it died is not taken as an acknowledgement.
    with contextlib.suppress(OSError, http.client.HTTPException):
        connection.getresponse().read()
    connection.close()
    return victim


def test_acknowledged_events_survive_kill_9_of_one_worker(store_env, tmp_path):
    """``--workers 2``: a client streams batches; one is sent and the worker that took it is
    killed with SIGKILL before its answer is read. The client retries it with the same key
    (the other worker sees the key in the shared store) and streams on. The supervisor
    (dayzero.serve.workers) starts a new worker in the dead one's place, and the new worker
    answers too (fresh connections until /healthz names it)."""
    env = store_env
    watermark = ModelRegistry(env.registry).info("v000001")["watermark"]
    # info: uvicorn logs each worker's startup, the supervisor "worker process [pid] died"
    server = ServerProcess(env, tmp_path / "server.log", "--workers", "2", "--log-level", "info")
    acknowledged: list[int] = []
    retried: list[tuple[int, int]] = []  # (stored, duplicates) of each batch sent again
    kill = threading.Event()
    sent, done, stop = threading.Event(), threading.Event(), threading.Event()
    errors: list[str] = []
    state: dict = {}

    def post(session: httpx.Client, key: str, batch: list[dict], retry: bool = False) -> dict:
        """POST until answered, always with the same key (a new connection after a cut)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = session.post(
                    "/v1/events", json={"events": batch}, headers={**KEY, "Idempotency-Key": key}
                )
            except httpx.TransportError:
                retry = True  # the worker died under this request, or the connection with it
                time.sleep(0.05)
                continue
            assert response.status_code == 200, response.text
            ack = response.json()
            if retry:
                retried.append((ack["stored"], ack["duplicates"]))
            return ack
        raise AssertionError(f"batch {key} not answered within 60 s")

    def stream() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=10.0) as session:
                n, since_kill = 0, None
                while not stop.is_set():
                    batch = [
                        {"user": f"w-{n}", "item": env.action[k % 3], "context": {"n": n + k}}
                        for k in range(BATCH)
                    ]
                    key = f"worker-batch-{n}"
                    n += BATCH
                    if kill.is_set() and since_kill is None:
                        state["victim"] = send_then_kill(server, key, batch)
                        ack = post(session, key, batch, retry=True)
                        state["cut"] = (ack["stored"], ack["duplicates"])
                        since_kill = 0
                    else:
                        ack = post(session, key, batch)
                    acknowledged.extend(ack["ids"])
                    state["last"] = (key, batch, ack["ids"])
                    if len(acknowledged) >= 10 * BATCH:
                        sent.set()
                    if since_kill is not None:
                        since_kill += 1
                        if since_kill > 10:  # the service kept answering after the kill
                            break
        except BaseException as exc:
            errors.append(repr(exc))
        finally:
            done.set()

    try:
        server.start(timeout=120)
        wait_for(lambda: full_log(server).count(STARTED) >= 2, 120, "both workers up", server)
        first = wait_for(lambda: len(workers(server)) == 2 and workers(server), 30, "2", server)
        client = threading.Thread(target=stream)
        client.start()
        assert sent.wait(60), f"client stalled: {errors} {server.log_text()}"
        kill.set()  # mid-stream: the client's next batch goes to a worker that dies under it
        assert done.wait(90), f"the service stopped answering: {errors} {server.log_text()}"
        client.join(10)
        assert not errors, errors
        victim = state["victim"]
        (survivor,) = set(first) - {victim}
        # The supervisor replaces a worker that died.
        died = f"worker process [{victim}] died"
        wait_for(lambda: died in full_log(server), 30, died, server)
        now = wait_for(lambda: len(workers(server)) == 2 and workers(server), 60, "new", server)
        (restarted,) = set(now) - {survivor}
        assert restarted != victim
        wait_for(lambda: full_log(server).count(STARTED) >= 3, 120, "restarted up", server)

        def on_restarted() -> httpx.Client | None:
            """A fresh connection the restarted worker accepted (the kernel spreads them)."""
            fresh = httpx.Client(base_url=server.url, timeout=30.0, headers=KEY)
            if fresh.get("/healthz").json()["process"] == restarted:
                return fresh
            fresh.close()
            return None

        fresh = wait_for(on_restarted, 60, "a connection to the new worker", server)
        try:
            key, batch, ids = state["last"]  # as if its answer had been lost
            again = fresh.post(
                "/v1/events", json={"events": batch}, headers={"Idempotency-Key": key}
            ).json()
            assert again["ids"] == ids and again["duplicates"] == BATCH
            assert restarted in holder({restarted: now[restarted]}, server.port)
        finally:
            fresh.close()
        assert server.proc.poll() is None  # the supervisor itself never went down
    finally:
        stop.set()
        server.stop()

    # The batch cut off by the kill (and any other cut) was stored whole or not at all.
    assert state["cut"] in ((BATCH, 0), (0, BATCH)), state["cut"]
    assert all(r in ((BATCH, 0), (0, BATCH)) for r in retried), retried
    with open_store(env.store) as store:
        stored = store.events(after=watermark)
    assert {e.id for e in stored} == set(acknowledged), "stored and acknowledged ids differ"
    numbers = [e.context["n"] for e in stored]
    assert len(numbers) == len(set(numbers)), "a retried event was stored twice"
    assert set(numbers) == set(range(len(numbers))), "an acknowledged event is missing"
