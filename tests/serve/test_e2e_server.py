"""End to end against the real server process (``python -m dayzero.cli.serve`` on loopback).

A brand-new user POSTs a profile, gets recommendations, POSTs three events, and the next
recommendations change accordingly: the user rates three items of the theme that was *not*
leading their first list, and that theme must then fill the whole list.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.serve.conftest import ACTION, API_KEY, ServerProcess

KEY = {"X-API-Key": API_KEY}


def test_new_user_profile_then_three_events_change_the_recommendations(env, tmp_path):
    with (
        ServerProcess(env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=30.0, headers=KEY) as http,
    ):
        user = "brand-new-user"
        profile = {"users": [{"id": user, "text": "I watch a film every weekend"}]}
        assert http.post("/v1/users", json=profile, headers=KEY).status_code == 200

        first = http.get(f"/v1/users/{user}/recommendations", params={"k": 5})
        assert first.status_code == 200, server.log_text()
        assert first.json()["new_user"] is True
        before = [r["item"] for r in first.json()["items"]]
        leading = max(("action", "romance"), key=[env.theme(i) for i in before].count)
        liked = env.romance[:3] if leading == "action" else env.action[:3]
        wanted = "romance" if leading == "action" else "action"

        events = [{"user": user, "item": item, "value": 5.0} for item in liked]
        ack = http.post("/v1/events", json={"events": events}, headers=KEY)
        assert ack.status_code == 200 and ack.json()["stored"] == 3

        second = http.get(f"/v1/users/{user}/recommendations", params={"k": 5})
        after = [r["item"] for r in second.json()["items"]]
        assert [env.theme(i) for i in after] == [wanted] * 5
        assert after != before and not set(liked) & set(after)

        # a new item is searchable as soon as its POST returns
        item = {"items": [{"id": "a_fresh", "text": f"{ACTION} fresh"}]}
        assert http.post("/v1/items", json=item, headers=KEY).status_code == 200
        assert http.get("/v1/items/a_fresh/similar").status_code == 200
        metrics = http.get("/metrics").text
        assert "dayzero_events_ingested_total 3.0" in metrics


def test_a_running_server_follows_a_promote_made_by_another_process(env, tmp_path):
    """Without --update-every: `dayzero update` (here: this test process) promotes, and the
    server serves the new version within --follow-every seconds."""
    from dayzero.online.registry import ModelRegistry
    from tests.serve.conftest import republish

    registry = ModelRegistry(env.registry)
    v2 = republish(registry, "v000001", {"mae": 0.41})
    server = ServerProcess(env, tmp_path / "server.log", "--follow-every", "0.2")
    with server, httpx.Client(base_url=server.url, timeout=30.0, headers=KEY) as http:
        assert http.get("/v1/model").json()["version"] == "v000001"
        registry.promote(v2)
        deadline = time.monotonic() + 20
        while http.get("/v1/model").json()["version"] != v2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert http.get("/v1/model").json()["version"] == v2, server.log_text()


def test_demo_data_loads_into_a_store(tmp_path):
    from dayzero.cli.serve import load_demo_into
    from dayzero.core.settings import DEMO_DATA
    from dayzero.datasets.restaurant import load_restaurant
    from dayzero.online.store import open_store

    dataset = load_restaurant(DEMO_DATA / "restaurant-uci")
    store = open_store(tmp_path / "events.db")
    try:
        assert load_demo_into(store) == len(dataset.interactions) == store.count_events()
        assert len(store.items()) == dataset.n_items
        assert all(record.text for record in store.items())
    finally:
        store.close()


def test_bootstrap_demo_keeps_an_existing_version(env):
    from dayzero.cli.serve import bootstrap_demo_version
    from dayzero.online.registry import ModelRegistry

    before = ModelRegistry(env.registry).versions()
    assert bootstrap_demo_version(env.store, env.registry) is None
    assert ModelRegistry(env.registry).versions() == before


@pytest.mark.slow
def test_serve_bootstraps_the_demo_on_a_fresh_machine(tmp_path):
    """`serve --bootstrap-demo` on empty folders: MiniLM two-tower on the restaurant data."""
    from dayzero.cli.demo import NEW_DINER
    from tests.serve.conftest import Env

    env = Env(tmp_path / "events.db", tmp_path / "models", (), ())
    server = ServerProcess(env, tmp_path / "server.log", "--bootstrap-demo")
    with (
        server.start(timeout=900),
        httpx.Client(base_url=server.url, timeout=60.0, headers=KEY) as http,
    ):
        health = http.get("/healthz").json()
        assert health == {"status": "ok", "version": "v000001", "process": server.proc.pid}
        body = http.post("/v1/recommendations", json={"profile": NEW_DINER, "k": 5}).json()
        assert len(body["items"]) == 5


def test_two_workers_each_answer_with_the_others_writes(env, tmp_path):
    """`--workers 2`: two processes over one store; whichever answers, a write made through
    the other one counts (the kernel spreads the connections, so 20 fresh connections reach
    both with near certainty)."""
    server = ServerProcess(env, tmp_path / "server.log", "--workers", "2")
    with server.start(timeout=150):  # two processes load torch and the model at once

        def ask(path: str, **params) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=30.0, headers=KEY) as fresh:
                return fresh.get(path, params=params)

        item = {"items": [{"id": "a_workers", "text": f"{ACTION} for every worker"}]}
        with httpx.Client(base_url=server.url, timeout=30.0, headers=KEY) as http:
            assert http.post("/v1/items", json=item).status_code == 200
            first = http.get("/v1/users/ub1/recommendations", params={"k": 3}).json()
            seen = [r["item"] for r in first["items"]]
            events = [{"user": "ub1", "item": i, "value": 5.0} for i in seen]
            assert http.post("/v1/events", json={"events": events}).status_code == 200
        for _ in range(20):
            answer = ask("/v1/items/a_workers")
            assert answer.status_code == 200 and answer.json()["served"], server.log_text()
            listed = ask("/v1/users/ub1/recommendations", k=3).json()
            assert not set(seen) & {r["item"] for r in listed["items"]}
        # Each worker listens on its own socket (dayzero.serve.workers): once both are up, fresh
        # connections reach both (all of 40 on one: a chance of 2 in 2**40).
        deadline = time.monotonic() + 120
        while len({ask("/healthz").json()["process"] for _ in range(8)}) < 2:
            assert time.monotonic() < deadline, server.log_text()
        answered = [ask("/healthz").json()["process"] for _ in range(40)]
        assert len(set(answered)) == 2, answered
