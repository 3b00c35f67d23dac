"""What every group of routes uses: the service-state dependency and the documented refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

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


def ranked(ids, scores, titles=None) -> list[s.Recommendation]:
    """``ids`` with their ``scores`` (and ``titles``, when given), best first as given."""
    titles = [None] * len(ids) if titles is None else titles
    return [
        s.Recommendation(item=i, score=float(v), title=t)
        for i, v, t in zip(ids, scores, titles, strict=True)
    ]


CardFormat = Annotated[
    Literal["json", "html"], Query(description="`json` (the card's data) or `html` (one page).")
]


def card_response(folder: Path, serving: dict[str, Any] | None, format: str) -> Response:
    """The card of the model in ``folder`` as JSON or HTML; a card that cannot be read is a
    409 naming the file."""
    from dayzero.core.card import CardError, read_card

    try:
        card = read_card(folder, serving)
    except CardError as exc:
        raise HTTPException(409, f"the served model's card cannot be read: {exc}") from exc
    if format == "html":
        return HTMLResponse(card.to_html())
    return JSONResponse(card.to_dict())
