"""kill -9 the real server while a client streams events; every acknowledged event survives, and
the restarted server serves the last promoted version with its index (and replays fold-in). The
client retries what was in flight (and an acknowledged batch, as if its answer had been lost)
with the same Idempotency-Key: nothing is stored twice."""

from __future__ import annotations

import threading

import httpx

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import open_store
from tests.serve.conftest import API_KEY, ROMANCE, ServerProcess, republish

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
