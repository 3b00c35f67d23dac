from __future__ import annotations

import time

import httpx
import pytest

from dayzero.distributed.serve import serve_on_ray
from dayzero.serve.app import ServeConfig
from tests.serve.conftest import ACTION, API_KEY, free_port, republish

KEY = {"X-API-Key": API_KEY}


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
