"""The HTTP service: FastAPI over the event store, the model registry and the served version.

    app = create_app(ServeConfig(store="events.db", registry="models/", api_key="secret"))

Every write is committed to the store before its 2xx answer, then folded in (a new item is
searchable as soon as its POST returns). Recommendations, similar items and risk scores are
CPU-bound and run in plain ``def`` endpoints, i.e. in the threadpool, never on the event loop.
OpenAPI at ``/openapi.json``, interactive docs at ``/docs``.
"""

from __future__ import annotations

import logging
import math
import secrets
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dayzero.serve import schemas as s
from dayzero.serve.metrics import MetricsMiddleware, ServiceMetrics
from dayzero.serve.state import (
    BadRequestError,
    NoModelError,
    ServiceState,
    UnknownItemError,
    UserVectorCache,
)

log = logging.getLogger("dayzero.serve")

API_KEY_HEADER = "X-API-Key"
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
        A ``RiskScorer.save`` folder served at ``POST /v1/risk/score``.
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


# ---------------------------------------------------------------------- body limit
class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 (declared or streamed sizes alike)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        # Buffer the (bounded) body so an over-long chunked upload is caught before any work.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body is larger than {self.max_bytes} bytes; send smaller batches"},
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - JSONResponse never reads the body
    return {"type": "http.disconnect"}


# ---------------------------------------------------------------------- dependencies
# Plain attribute reads and a header compare: ``async def`` so FastAPI runs them on the event
# loop instead of a thread-pool hop each (a hop costs more than the work, on every request).
_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")
ApiKey = Annotated[str | None, Depends(_key_header)]


def _check_key(config: ServeConfig, key: str | None) -> None:
    if config.api_key is None:
        return
    if not key:
        raise HTTPException(401, f"missing API key: send it in the {API_KEY_HEADER} header")
    if not secrets.compare_digest(key.encode(), config.api_key.encode()):
        raise HTTPException(403, f"invalid API key in the {API_KEY_HEADER} header")


async def write_auth(request: Request, key: ApiKey) -> None:
    """Writes and admin calls need the key (when one is configured)."""
    _check_key(request.app.state.config, key)


async def read_auth(request: Request, key: ApiKey) -> None:
    """Reads need the key unless the service was started with ``public_reads``."""
    config: ServeConfig = request.app.state.config
    if not config.public_reads:
        _check_key(config, key)


async def history_auth(request: Request, key: ApiKey, exclude_seen: bool = True) -> None:
    """``exclude_seen=false`` reveals a user's history (diffed against the default list): it
    needs the key even with ``public_reads``."""
    config: ServeConfig = request.app.state.config
    if exclude_seen or not config.public_reads or config.api_key is None:
        return  # read_auth has checked the key already where one is needed
    if not key:
        raise HTTPException(
            401,
            f"exclude_seen=false reveals the user's history: send the API key in the "
            f"{API_KEY_HEADER} header, or leave exclude_seen at true",
        )
    _check_key(config, key)


async def get_service(request: Request) -> ServiceState:
    return request.app.state.service


Service = Annotated[ServiceState, Depends(get_service)]


# ---------------------------------------------------------------------- factory
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
    _install_errors(app)

    writes = [Depends(write_auth)]
    reads = [Depends(read_auth)]
    errors = {422: {"model": s.ErrorOut}, 413: {"model": s.ErrorOut}}
    conflict = {409: {"model": s.ErrorOut}}
    auth_errors = {401: {"model": s.ErrorOut}, 403: {"model": s.ErrorOut}}

    # ------------------------------------------------------------------ writes
    @app.post(
        "/v1/items",
        response_model=s.WriteAck,
        dependencies=writes,
        tags=["writes"],
        responses={**errors, **auth_errors},
    )
    def post_items(body: s.ItemsIn, svc: Service) -> s.WriteAck:
        """Add or replace items; each is searchable as soon as this returns."""
        seqs = svc.add_items([_entity(e) for e in body.items])
        return s.WriteAck(stored=len(seqs), ids=seqs)

    @app.post(
        "/v1/users",
        response_model=s.WriteAck,
        dependencies=writes,
        tags=["writes"],
        responses={**errors, **auth_errors},
    )
    def post_users(body: s.UsersIn, svc: Service) -> s.WriteAck:
        """Add or replace user profiles (free text + attributes)."""
        seqs = svc.add_users([_entity(e) for e in body.users])
        return s.WriteAck(stored=len(seqs), ids=seqs)

    @app.post(
        "/v1/events",
        response_model=s.WriteAck,
        dependencies=writes,
        tags=["writes"],
        responses={**errors, **auth_errors, **conflict},
    )
    def post_events(
        body: s.EventsIn,
        svc: Service,
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=s.MAX_BATCH_KEY,
                description="A unique key for this batch: a retry with the same key stores "
                "nothing twice (event n gets the key '<key>#n' unless it carries its own).",
            ),
        ] = None,
    ) -> s.WriteAck:
        """Append a batch of interactions in one transaction (durable before the answer).

        Send an ``idempotency_key`` per event, or an ``Idempotency-Key`` header per batch,
        and retry freely: an event whose key is already stored is answered with its stored
        id and not stored again."""
        events = [_event(e, idempotency_key, n) for n, e in enumerate(body.events)]
        ids = svc.add_events(events)
        return s.WriteAck(stored=ids.new, ids=list(ids), duplicates=len(ids) - ids.new)

    # ------------------------------------------------------------------ reads
    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=s.RecommendOut,
        dependencies=[*reads, Depends(history_auth)],
        tags=["recommendations"],
        responses={**errors, **auth_errors, 503: {"model": s.ErrorOut}},
    )
    def user_recommendations(
        svc: Service,
        user_id: Annotated[str, PathParam(min_length=1, max_length=s.MAX_ID)],
        k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10,
        exclude_seen: bool = True,
    ) -> s.RecommendOut:
        """Top ``k`` items for a user from their profile and every event so far. A user never
        seen before is served as a brand-new user."""
        served = svc.require()
        out = svc.recommend_user(user_id, k, exclude_seen)
        return _recommend_out(user_id, served.version, out)

    @app.post(
        "/v1/recommendations",
        response_model=s.RecommendOut,
        dependencies=reads,
        tags=["recommendations"],
        responses={**errors, **auth_errors, 503: {"model": s.ErrorOut}},
    )
    def anonymous_recommendations(body: s.RecommendIn, svc: Service) -> s.RecommendOut:
        """Top ``k`` for an anonymous or brand-new user described by profile text and/or the
        items they just interacted with (nothing is stored)."""
        from dayzero.online.store import Event

        served = svc.require()
        recent = [Event(user="", item=r.item, kind=r.kind, value=r.value) for r in body.recent]
        out = svc.recommend_anonymous(body.profile, recent, body.k, body.exclude_seen)
        return _recommend_out(None, served.version, out)

    @app.get(
        "/v1/items/{item_id}/similar",
        response_model=s.SimilarOut,
        dependencies=reads,
        tags=["recommendations"],
        responses={**errors, **auth_errors, 404: {"model": s.ErrorOut}},
    )
    def similar_items(
        svc: Service,
        item_id: Annotated[str, PathParam(min_length=1, max_length=s.MAX_ID)],
        k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10,
    ) -> s.SimilarOut:
        """Items closest to ``item_id`` in the served model's taste space."""
        version, ids, scores = svc.similar(item_id, k)
        return s.SimilarOut(
            item=item_id,
            version=version,
            items=_ranked(ids, scores),
        )

    @app.post(
        "/v1/risk/score",
        response_model=s.RiskOut,
        dependencies=reads,
        tags=["risk"],
        responses={**errors, **auth_errors, 404: {"model": s.ErrorOut}},
    )
    def risk_score(body: s.RiskIn, svc: Service) -> s.RiskOut:
        """Probability of default, scorecard points and the top reason codes per applicant."""
        return _risk(svc, body)

    @app.get("/v1/model", response_model=s.ModelOut, dependencies=reads, tags=["model"])
    def model_info(svc: Service) -> s.ModelOut:
        """The served version: metrics, training-data watermark, index size."""
        served = svc.served
        if served is None:
            return s.ModelOut(
                version=None,
                metrics={},
                watermark=None,
                config={},
                index_size=0,
                index_kind=None,
                folded_items=0,
                notice=svc.notice,
            )
        info = served.info
        return s.ModelOut(
            version=served.version,
            metrics=info.get("metrics") or {},
            watermark=info.get("watermark"),
            config=info.get("config") or {},
            index_size=len(served.index),
            index_kind=served.index.kind,
            folded_items=served.folded,
            notice=svc.notice,
        )

    # ------------------------------------------------------------------ admin
    @app.post(
        "/v1/admin/promote",
        response_model=s.AdminOut,
        dependencies=writes,
        tags=["admin"],
        responses={**errors, **auth_errors, 404: {"model": s.ErrorOut}, 409: {"model": s.ErrorOut}},
    )
    def promote(body: s.PromoteIn, svc: Service) -> s.AdminOut:
        """Load a registry version (verified), swap it in atomically, fold in what the store
        holds beyond it, and make it the registry's current version."""
        version, previous = svc.promote(body.version)
        return s.AdminOut(version=version, previous=previous, index_size=len(svc.require().index))

    @app.post(
        "/v1/admin/rollback",
        response_model=s.AdminOut,
        dependencies=writes,
        tags=["admin"],
        responses={**auth_errors, 409: {"model": s.ErrorOut}},
    )
    def rollback(svc: Service) -> s.AdminOut:
        """Serve the previously promoted version again."""
        version, previous = svc.rollback()
        return s.AdminOut(version=version, previous=previous, index_size=len(svc.require().index))

    # ------------------------------------------------------------------ ops
    @app.get("/healthz", response_model=s.Health, tags=["ops"])
    def healthz(svc: Service) -> s.Health:
        """Liveness: 200 while the process serves; ``no-model`` until a version is promoted."""
        served = svc.served
        return s.Health(
            status="ok" if served is not None else "no-model",
            version=served.version if served is not None else None,
        )

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus exposition: request counts and latency per route, events ingested,
        index size, served version."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


# ---------------------------------------------------------------------- helpers
def _open_state(config: ServeConfig, metrics: ServiceMetrics) -> ServiceState:
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store

    risk = None
    if config.risk_model is not None:
        from dayzero.risk.scorer import RiskScorer

        risk = RiskScorer.load(config.risk_model)
    store = open_store(config.store)
    try:
        cache = UserVectorCache(config.user_cache_size, config.user_cache_ttl)
        state = ServiceState(
            store, ModelRegistry(config.registry), risk=risk, metrics=metrics, user_cache=cache
        )
        state.start()
    except BaseException:
        store.close()
        raise
    return state


def _entity(e: s.EntityIn):
    from dayzero.online.store import EntityRecord

    return EntityRecord(id=e.id, text=e.text, fields=dict(e.fields))


def _event(e: s.EventIn, batch_key: str | None = None, position: int = 0):
    from dayzero.online.store import Event

    ts = e.ts
    if ts is not None and ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)  # naive times are read as UTC, the store's clock
    key = e.idempotency_key
    if key is None and batch_key is not None:
        key = f"{batch_key}#{position}"
    return Event(
        user=e.user,
        item=e.item,
        kind=e.kind,
        value=e.value,
        ts=ts,
        context=dict(e.context),
        idempotency_key=key,
    )


def _recommend_out(user: str | None, version: str, out) -> s.RecommendOut:
    return s.RecommendOut(
        user=user,
        version=version,
        new_user=out.new_user,
        items=_ranked(out.ids, out.scores),
    )


def _ranked(ids, scores) -> list[s.Recommendation]:
    return [s.Recommendation(item=i, score=float(v)) for i, v in zip(ids, scores, strict=True)]


def _risk(svc: ServiceState, body: s.RiskIn) -> s.RiskOut:
    import numpy as np
    import pandas as pd

    from dayzero.risk.scorer import UnknownCategoryWarning

    scorer = svc.risk
    if scorer is None:
        raise HTTPException(
            404,
            "no risk model is loaded: start the server with --risk-model FOLDER "
            "(a folder written by RiskScorer.save / `dayzero risk fit`)",
        )
    frame = pd.DataFrame(body.applicants)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownCategoryWarning)
            # predict_pd: the probability of positive_label_, whatever the label coding.
            proba = scorer.predict_pd(frame)
            points = scorer.scale.points(proba)
            reasons = scorer.explain(frame, top=body.top)
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, f"applicants: {exc}") from exc
    scores = []
    for row in range(len(frame)):
        mine = reasons[reasons["row"] == row]
        scores.append(
            s.RiskScore(
                probability=float(proba[row]),
                points=float(np.asarray(points)[row]),
                reasons=[
                    s.Reason(
                        field=str(r.field),
                        value=_jsonable(r.value),
                        contribution=float(r.contribution),
                        points=float(r.points),
                    )
                    for r in mine.itertuples()
                ],
            )
        )
    return s.RiskOut(scores=scores)


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    return value


def _encodable_json(value):
    """``value`` as JSON can carry it: NaN / infinities by their names (JSON has no such
    numbers), text that is not valid Unicode (lone surrogates) with backslash escapes."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _encodable_text(value)
    if isinstance(value, dict):
        return {_encodable_text(str(k)): _encodable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable_json(v) for v in value]
    return value


def _encodable_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _install_errors(app: FastAPI) -> None:
    from dayzero.core.schema import SchemaError
    from dayzero.online.registry import CorruptVersionError, RegistryError, UnknownVersionError
    from dayzero.online.store import IdempotencyConflictError

    def error(status: int):
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return JSONResponse({"detail": _encodable_text(str(message))}, status_code=status)

        return handler

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which fails to encode when it is NaN/inf or
        # holds a lone surrogate (the connection then dropped without an answer).
        detail = _encodable_json(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(SchemaError, error(422))
    app.add_exception_handler(IdempotencyConflictError, error(409))
    app.add_exception_handler(UnknownItemError, error(404))
    app.add_exception_handler(BadRequestError, error(422))
    app.add_exception_handler(NoModelError, error(503))
    # The most specific class wins: an unknown version is a 404, any other registry refusal
    # (a corrupt version, nothing to roll back to) a 409.
    app.add_exception_handler(RegistryError, error(409))
    app.add_exception_handler(CorruptVersionError, error(409))
    app.add_exception_handler(UnknownVersionError, error(404))


__all__ = ["ServeConfig", "create_app"]
