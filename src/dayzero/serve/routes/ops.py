"""``/healthz`` and ``/metrics``: open to anyone (probes and scrapers carry no key)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dayzero.serve import schemas as s
from dayzero.serve.routes._shared import Service

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=s.Health)
def healthz(svc: Service) -> s.Health:
    """Liveness: 200 while the process serves; ``no-model`` until a version is promoted."""
    served = svc.served
    return s.Health(
        status="ok" if served is not None else "no-model",
        version=served.version if served is not None else None,
        process=os.getpid(),
    )


@router.get("/metrics", response_class=Response)
def prometheus(request: Request) -> Response:
    """Prometheus exposition: request counts and latency per route, events ingested,
    index size, served version."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
