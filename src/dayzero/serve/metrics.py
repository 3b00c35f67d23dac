"""Prometheus metrics of the service: one registry per app (tests build many apps per process)."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Recommendation latency lives in single-digit milliseconds; the tail matters up to seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.08, 0.12, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """Counters, histograms and gauges exported at ``GET /metrics``.

    Attributes
    ----------
    requests : Counter
        ``dayzero_requests_total{route, method, status}``.
    latency : Histogram
        ``dayzero_request_seconds{route, method}``.
    events : Counter
        ``dayzero_events_ingested_total``: events committed to the store.
    entities : Counter
        ``dayzero_entities_upserted_total{kind}`` (kind = item | user).
    user_cache : Counter
        ``dayzero_user_cache_total{result}`` (hit | miss) of user-vector lookups.
    toplists : Counter
        ``dayzero_toplists_total{result}`` (hit | merged | absent | stale | short) of lookups of
        precomputed top-K lists.
    index_size : Gauge
        ``dayzero_index_items``: live items in the served vector index.
    model : Gauge
        ``dayzero_model_info{version}``: 1 for the served version.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dayzero_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dayzero_request_seconds",
            "Request latency by route template and method.",
            ["route", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "dayzero_events_ingested", "Events committed to the store.", registry=self.registry
        )
        self.entities = Counter(
            "dayzero_entities_upserted",
            "Items and users upserted.",
            ["kind"],
            registry=self.registry,
        )
        self.user_cache = Counter(
            "dayzero_user_cache",
            "Known-user recommendation requests served from the user-vector cache or not.",
            ["result"],
            registry=self.registry,
        )
        self.toplists = Counter(
            "dayzero_toplists",
            "Known-user requests answered from a precomputed top-K list (hit, merged) or not, "
            "and why (absent, stale, short).",
            ["result"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            "dayzero_index_items", "Live items in the served vector index.", registry=self.registry
        )
        self.model = Gauge(
            "dayzero_model_info",
            "1 for the served model version.",
            ["version"],
            registry=self.registry,
        )
        self._version: str | None = None

    def set_model(self, version: str | None, index_size: int) -> None:
        """Record the served version and its index size."""
        if self._version is not None:
            self.model.remove(self._version)
        if version is not None:
            self.model.labels(version=version).set(1)
        self._version = version
        self.index_size.set(index_size)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: count and time every HTTP request by its route template.

    The template (``/v1/users/{user_id}/recommendations``), not the raw path, is the label:
    raw paths would create one time series per user.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status["code"])).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - start)
