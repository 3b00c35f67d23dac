"""What every group of routes uses: the service-state dependency and the documented refusals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from dayzero.serve import schemas as s
from dayzero.serve.auth import read_auth, write_auth
from dayzero.serve.state import ServiceState


# A plain attribute read: ``async def`` so it runs on the event loop, not a thread-pool hop.
async def get_service(request: Request) -> ServiceState:
    return request.app.state.service


Service = Annotated[ServiceState, Depends(get_service)]

WRITES = [Depends(write_auth)]
READS = [Depends(read_auth)]

ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": s.ErrorOut}, 413: {"model": s.ErrorOut}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": s.ErrorOut}}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": s.ErrorOut},
    403: {"model": s.ErrorOut},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": s.ErrorOut}}


def ranked(ids, scores) -> list[s.Recommendation]:
    """``ids`` with their ``scores``, best first as given."""
    return [s.Recommendation(item=i, score=float(v)) for i, v in zip(ids, scores, strict=True)]
