from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil
import pytest

from dayzero.distributed.serve import serve_on_ray
from dayzero.serve.app import ServeConfig
from tests.serve.conftest import ACTION, API_KEY, free_port, republish, wait_until

KEY = {"X-API-Key": API_KEY}
APP = "dayzero-crash"  # its own Ray Serve application, apart from the other tests'


def test_replicas_share_writes_and_follow_a_promotion(ray_local, env):
    from ray import serve

    from dayzero.online.registry import ModelRegistry

    port = free_port()
    config = ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY, follow_every=0.2)
    serve_on_ray(config, replicas=2, cpus_per_replica=0.5, port=port)
    try:
        url = f"http://127.0.0.1:{port}"

        def ask(path: str, **params) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=60.0, headers=KEY) as fresh:
                return fresh.get(path, params=params)

        with httpx.Client(base_url=url, timeout=60.0, headers=KEY) as http:
            item = {"items": [{"id": "a_ray", "text": f"{ACTION} on every replica"}]}
            assert http.post("/v1/items", json=item).status_code == 200
            first = http.get("/v1/users/ub2/recommendations", params={"k": 3}).json()
            seen = [r["item"] for r in first["items"]]
            events = [{"user": "ub2", "item": i, "value": 5.0} for i in seen]
            assert http.post("/v1/events", json={"events": events}).status_code == 200
        for _ in range(16):  # Ray's proxy spreads the requests over both replicas
            assert ask("/v1/items/a_ray").json()["served"]
            listed = ask("/v1/users/ub2/recommendations", k=3).json()
            assert not set(seen) & {r["item"] for r in listed["items"]}
        # A promotion made elsewhere reaches every replica; every request meanwhile answers.
        registry = ModelRegistry(env.registry)
        v2 = republish(registry, registry.current(), {"mae": 0.4})
        registry.promote(v2)
        deadline, streak = time.monotonic() + 60, 0
        while streak < 12 and time.monotonic() < deadline:
            answer = ask("/v1/model")
            assert answer.status_code == 200
            streak = streak + 1 if answer.json()["version"] == v2 else 0
        assert streak == 12
    finally:
        serve.shutdown()


def test_background_updates_are_refused_on_replicas(env):
    config = ServeConfig(store=env.store, registry=env.registry, update_every=60.0)
    with pytest.raises(ValueError, match="update_every must be off"):
        serve_on_ray(config)


def _replicas() -> dict[int, psutil.Process]:
    """This session's Ray Serve replica processes of the dayzero deployment (Ray names each
    ``ray::ServeReplica:<app>:<deployment>``; another Ray cluster on the machine is not ours)."""
    mine = os.getpid()
    found = {}
    for process in psutil.process_iter():
        try:
            if not " ".join(process.cmdline()).startswith(f"ray::ServeReplica:{APP}:"):
                continue
            if any(parent.pid == mine for parent in process.parents()):
                found[process.pid] = process
        except psutil.Error:
            continue
    return found


def _running(n: int) -> bool:
    from ray import serve

    application = serve.status().applications.get(APP)
    if application is None:
        return False
    states = application.deployments["dayzero-service"].replica_states
    return states.get("RUNNING", 0) == n and sum(states.values()) == n


def _wait(condition, timeout: float, what: str):
    return wait_until(condition, timeout, what, poll=0.1)


def test_acknowledged_events_survive_kill_9_of_a_replica(ray_local, env):
    """kill -9 one of 2 replicas while 4 clients stream keyed batches: a client sends again with
    the same key whatever failed (Ray's proxy answers a request the dead replica held with a
    500), the other replica answers meanwhile, Ray Serve starts a replacement, and every
    acknowledged id is in the store exactly once."""
    from ray import serve

    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store

    watermark = ModelRegistry(env.registry).info("v000001")["watermark"]
    port = free_port()
    config = ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY)
    serve_on_ray(config, replicas=2, cpus_per_replica=0.5, port=port, name=APP)
    batch_size, acknowledged, failures = 20, [], []

    def post(session: httpx.Client, key: str, batch: list[dict]) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            headers = {**KEY, "Idempotency-Key": key}
            try:
                response = session.post("/v1/events", json={"events": batch}, headers=headers)
            except httpx.TransportError as exc:
                failures.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                return response.json()
            assert response.status_code >= 500, response.text  # the proxy, not a bad request
            failures.append(response.status_code)
            time.sleep(0.05)
        raise AssertionError(f"batch {key} not answered within 60 s: {failures}")

    try:
        first = _wait(lambda: len(_replicas()) == 2 and _replicas(), 60, "2 replica processes")
        url = f"http://127.0.0.1:{port}"
        lock, counter, last = threading.Lock(), [0], {}

        def send(session: httpx.Client) -> None:
            with lock:
                n = counter[0]
                counter[0] += batch_size
            batch = [
                {"user": f"r-{n}", "item": env.action[k % 3], "context": {"n": n + k}}
                for k in range(batch_size)
            ]
            key = f"replica-batch-{n}"
            ack = post(session, key, batch)
            with lock:
                acknowledged.extend(ack["ids"])
                last["batch"] = (key, batch, ack)

        def stream(batches: int) -> None:
            try:
                with httpx.Client(base_url=url, timeout=30.0) as session:
                    for _ in range(batches):
                        send(session)
            except BaseException as exc:
                errors.append(repr(exc))

        errors: list[str] = []
        stream(5)
        # 4 clients at once, so that each replica has requests in flight when one dies.
        senders = [threading.Thread(target=stream, args=(15,)) for _ in range(4)]
        for sender in senders:
            sender.start()
        _wait(lambda: len(acknowledged) >= 10 * batch_size, 60, "the stream under way")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)  # mid-stream
        for sender in senders:
            sender.join(120)
        assert not any(s.is_alive() for s in senders) and not errors, errors
        # Ray Serve replaces the dead replica; the service answers meanwhile and after.
        _wait(lambda: victim not in _replicas() and len(_replicas()) == 2, 90, "new replica")
        _wait(lambda: _running(2), 90, "2 replicas RUNNING")
        stream(5)
        assert not errors, errors
        key, batch, ack = last["batch"]  # sent again, as if its answer had been lost
        with httpx.Client(base_url=url, timeout=30.0) as session:
            again = post(session, key, batch)
        assert again["ids"] == ack["ids"] and again["duplicates"] == batch_size
    finally:
        serve.shutdown()

    with open_store(env.store) as store:
        stored = store.events(after=watermark)
    assert {e.id for e in stored} == set(acknowledged), "stored and acknowledged ids differ"
    numbers = [e.context["n"] for e in stored]
    assert len(numbers) == len(set(numbers)), "a retried event was stored twice"
    assert set(numbers) == set(range(len(numbers))), "an acknowledged event is missing"
