"""kill -9 the real server while a client streams events; every acknowledged event survives, and
the restarted server serves the last promoted version with its index (and replays fold-in)."""

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
                n += BATCH
                try:
                    response = http.post("/v1/events", json={"events": batch}, headers=KEY)
                except httpx.TransportError:
                    return  # the server died mid-request: that batch was not acknowledged
                if response.status_code != 200:
                    errors.append(response.text)
                    return
                acknowledged.extend(response.json()["ids"])
                if len(acknowledged) >= 10 * BATCH:
                    sent.set()

    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
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
        httpx.Client(base_url=again.url, timeout=30.0) as http,
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
