"""The background update schedule: a run fine-tunes, gates, promotes and the service follows;
a failed run leaves the served version alone; the thread starts and stops with the app."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import Event, open_store
from dayzero.online.updater import OnlineUpdater, UpdaterConfig
from dayzero.serve.app import ServeConfig, create_app
from dayzero.serve.schedule import UpdateSchedule
from dayzero.serve.state import ServiceState

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def state(env):
    service = ServiceState(open_store(env.store), ModelRegistry(env.registry))
    service.start()
    yield service
    service.close()


def _new_fans(store, n_users: int = 4) -> None:
    """Romance fans arriving after the served version's watermark."""
    events = [
        Event(f"fan{k}", item, "rating", 5.0 if item.startswith("r") else 1.0)
        for k in range(n_users)
        for item in ("r0", "a0", "r1", "a1", "r2", "a2", "r3", "a3")
    ]
    store.append_events(events)


def test_a_run_that_promotes_is_served_at_once(state):
    before = state.served.version
    _new_fans(state.store)
    schedule = UpdateSchedule(state, every=3600, config=UpdaterConfig(epochs=2, tolerance=10.0))
    result = schedule.run_once()
    assert result is not None and result.promoted, schedule.last_error
    assert state.served.version == result.version == state.registry.current() != before
    assert schedule.last_result is result and schedule.last_error is None
    again = schedule.run_once()
    assert again.status == "no-new-events" and state.served.version == result.version


def test_a_rejected_candidate_is_not_served(state):
    before = state.served.version
    _new_fans(state.store)
    schedule = UpdateSchedule(state, every=3600, config=UpdaterConfig(epochs=1, tolerance=-10.0))
    result = schedule.run_once()
    assert result.status == "rejected" and not result.promoted
    assert state.served.version == before == state.registry.current()


def test_a_failed_run_is_kept_and_the_service_goes_on(state, monkeypatch):
    before = state.served.version

    def boom(self):
        raise RuntimeError("the store went away")

    monkeypatch.setattr(OnlineUpdater, "update", boom)
    schedule = UpdateSchedule(state, every=3600)
    assert schedule.run_once() is None
    assert "the store went away" in schedule.last_error
    assert state.served.version == before
    assert len(state.recommend_user("ua0", k=3, exclude_seen=True).ids) == 3


def test_the_thread_runs_until_stopped(state, monkeypatch):
    calls = []

    def count(self):
        calls.append(time.monotonic())
        raise RuntimeError("counted")

    monkeypatch.setattr(OnlineUpdater, "update", count)
    schedule = UpdateSchedule(state, every=0.01)
    schedule.start()
    with pytest.raises(RuntimeError, match="already running"):
        schedule.start()
    deadline = time.monotonic() + 10
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    schedule.stop(timeout=10)
    assert len(calls) >= 2
    settled = len(calls)
    time.sleep(0.05)
    assert len(calls) == settled  # nothing runs after stop


def test_the_app_starts_and_stops_its_schedule(env):
    app = create_app(ServeConfig(store=env.store, registry=env.registry, update_every=3600))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        schedule = app.state.schedule
        assert schedule is not None and schedule._thread.is_alive()
    assert schedule._thread is None
    off = create_app(ServeConfig(store=env.store, registry=env.registry))
    with TestClient(off):
        assert off.state.schedule is None


@pytest.mark.parametrize("every", [0, -1.0, float("nan")])
def test_every_must_be_positive(state, every):
    with pytest.raises(ValueError, match="every"):
        UpdateSchedule(state, every=every)
