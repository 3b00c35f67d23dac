"""``GET /v1/items/{item_id}``: one item as people see it (title, text, fields), and whether the
served version can recommend it (a read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from dayzero.serve import schemas as s
from dayzero.serve.routes._shared import AUTH_ERRORS, ERRORS, NOT_FOUND, READS, Service

router = APIRouter(tags=["items"], dependencies=READS)


@router.get(
    "/v1/items/{item_id}",
    response_model=s.ItemOut,
    responses={**ERRORS, **AUTH_ERRORS, **NOT_FOUND},
)
def get_item(
    svc: Service,
    item_id: Annotated[str, PathParam(min_length=1, max_length=s.MAX_ID)],
) -> s.ItemOut:
    """The item's title, text and fields from the event store (the served model's catalogue
    for an item only `dayzero fit` saw), and whether it has a vector in the served version.
    An id neither knows is a 404 naming it."""
    view = svc.item(item_id)
    return s.ItemOut(
        item=view.id,
        title=view.title,
        text=view.text,
        fields=view.fields,
        stored=view.stored,
        served=view.served,
    )
