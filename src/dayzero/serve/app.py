"""The HTTP service: FastAPI over the event store, the model registry and the served version.

    app = create_app(ServeConfig(store="events.db", registry="models/", api_key="secret"))

Every write is committed to the store before its 2xx answer, then folded in (a new item is
searchable as soon as its POST returns). Recommendations, similar items and risk scores are
CPU-bound and run in plain ``def`` endpoints, i.e. in the threadpool, never on the event loop.
OpenAPI at ``/openapi.json``, interactive docs at ``/docs``.

This module holds the settings and the factory (middleware, lifespan, error handlers); the
routes live in :mod:`dayzero.serve.routes`, one module per group, the API key rules in
:mod:`dayzero.serve.auth` and the error answers in :mod:`dayzero.serve.errors`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from dayzero.serve.body_limit import BodyLimitMiddleware
from dayzero.serve.errors import install_errors
from dayzero.serve.metrics import MetricsMiddleware, ServiceMetrics
from dayzero.serve.routes import ROUTERS
from dayzero.serve.state import ServiceState, UserVectorCache

log = logging.getLogger("dayzero.serve")

DEFAULT_MAX_BODY = 8 * 1024 * 1024


@dataclass
class ServeConfig:
    """Settings of one service instance.

    Parameters
    ----------
    store : str or Path
        Event store URL or SQLite file (see :func:`dayzero.online.store.open_store`).
    registry : str or Path
        Model registry folder.
    api_key : str, optional
        Required in the ``X-API-Key`` header of every call but ``/healthz``, ``/metrics`` and
        the docs. ``None`` leaves everything open (a warning is logged): for local experiments
        only.
    public_reads : bool, default False
        Serve reads (recommendations, similar items, model info, risk scores) without the key.
        Even then a user's recommendations with ``exclude_seen=false`` need the key: compared
        with the default list they reveal which items that user interacted with.
    risk_model : str or Path, optional
        A ``RiskScorer.save`` folder served at ``POST /v1/risk/score`` (with its
        ``training.json`` when ``dayzero risk fit`` wrote it: the label column to drop).
    max_body_bytes : int
        Larger request bodies are refused with 413.
    user_cache_size, user_cache_ttl : int, float
        Known-user vectors kept between that user's writes (0 disables; see
        :class:`~dayzero.serve.state.UserVectorCache`) and the most seconds one is served.
    follow_every : float, optional
        Seconds between two reads of the registry's current pointer: a version promoted or
        rolled back by another process (``dayzero update``, another replica) is served within
        that time (:class:`~dayzero.serve.schedule.RegistryWatch`). None turns it off.
    update_every : float, optional
        Run an incremental update (fine-tune since the watermark, gate, promote) in the
        background every this many seconds (:class:`~dayzero.serve.schedule.UpdateSchedule`);
        None (default) leaves updates to ``dayzero update`` and the admin endpoints.
    watch_store : bool, default False
        Before every read, take in what other processes wrote to the store (their items are
        folded in, their users' cached vectors dropped): for several workers over one store
        (``dayzero serve --workers N``), so that a write through any of them counts in every
        worker's next answer (:meth:`~dayzero.serve.state.ServiceState.sync_with_store`).
    """

    store: str | Path
    registry: str | Path
    api_key: str | None = None
    public_reads: bool = False
    risk_model: str | Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    user_cache_size: int = 100_000
    user_cache_ttl: float = 30.0
    follow_every: float | None = 2.0
    update_every: float | None = None
    watch_store: bool = False

    def to_json(self) -> str:
        """The settings as JSON (paths as strings), read back by :meth:`from_json`."""
        return json.dumps(
            {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        )

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


#: The environment variable :func:`app_from_environment` reads its ServeConfig from.
CONFIG_ENV = "DAYZERO_SERVE_CONFIG"


def app_from_environment() -> FastAPI:
    """The app of ``$DAYZERO_SERVE_CONFIG`` (:meth:`ServeConfig.to_json`): the factory every
    worker process of ``dayzero serve --workers N`` calls (``uvicorn --factory``)."""
    import os

    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start the workers with `dayzero serve`")
    return create_app(ServeConfig.from_json(text))


def create_app(config: ServeConfig, state: ServiceState | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    config : ServeConfig
    state : ServiceState, optional
        An already opened state (tests); by default the store and registry of ``config`` are
        opened, and the current version loaded, when the app starts (lifespan), and the store
        is closed when it stops.

    Returns
    -------
    fastapi.FastAPI
    """
    metrics = ServiceMetrics()
    if config.api_key is None:
        log.warning("no API key configured: reads, writes and admin calls are open to anyone")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from dayzero.serve.schedule import RegistryWatch, UpdateSchedule

        service = state or _open_state(config, metrics)
        app.state.service = service
        threads = []
        if config.follow_every is not None:
            threads.append(RegistryWatch(service, config.follow_every))
        schedule = None
        if config.update_every is not None:
            schedule = UpdateSchedule(service, config.update_every)
            threads.append(schedule)
        app.state.schedule = schedule
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            for thread in threads:
                thread.stop()
            if state is None:
                service.close()

    app = FastAPI(
        title="dayzero",
        summary="Cold-start recommendations and risk scores that learn while they run.",
        version="1",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.config = config
    if state is not None:  # usable without the lifespan (test clients that do not run it)
        app.state.service = state
        state.metrics = metrics
        if state.served is not None:
            metrics.set_model(state.served.version, len(state.served.index))
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _open_state(config: ServeConfig, metrics: ServiceMetrics) -> ServiceState:
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store

    risk = training = None
    if config.risk_model is not None:
        from dayzero.risk.scorer import RiskScorer
        from dayzero.risk.target import TrainingInfo

        risk = RiskScorer.load(config.risk_model)
        # The label column and the ids of `dayzero risk fit` (absent for a Python-saved model).
        training = TrainingInfo.load(config.risk_model, features=list(risk.columns_))
    store = open_store(config.store)
    try:
        cache = UserVectorCache(config.user_cache_size, config.user_cache_ttl)
        state = ServiceState(
            store,
            ModelRegistry(config.registry),
            risk=risk,
            metrics=metrics,
            user_cache=cache,
            risk_training=training,
            risk_dir=config.risk_model,
            watch_store=config.watch_store,
        )
        state.start()
    except BaseException:
        store.close()
        raise
    return state


__all__ = ["CONFIG_ENV", "ServeConfig", "app_from_environment", "create_app"]
