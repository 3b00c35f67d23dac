"""``POST /v1/items``, ``/v1/users``, ``/v1/events``: writes, durable before their answer."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Header

from dayzero.serve import schemas as s
from dayzero.serve.routes._shared import AUTH_ERRORS, CONFLICT, ERRORS, WRITES, Service

router = APIRouter(tags=["writes"], dependencies=WRITES)


@router.post("/v1/items", response_model=s.WriteAck, responses={**ERRORS, **AUTH_ERRORS})
def post_items(body: s.ItemsIn, svc: Service) -> s.WriteAck:
    """Add or replace items; each is searchable as soon as this returns."""
    seqs = svc.add_items([_entity(e) for e in body.items])
    return s.WriteAck(stored=len(seqs), ids=seqs)


@router.post("/v1/users", response_model=s.WriteAck, responses={**ERRORS, **AUTH_ERRORS})
def post_users(body: s.UsersIn, svc: Service) -> s.WriteAck:
    """Add or replace user profiles (free text + attributes)."""
    seqs = svc.add_users([_entity(e) for e in body.users])
    return s.WriteAck(stored=len(seqs), ids=seqs)


@router.post(
    "/v1/events", response_model=s.WriteAck, responses={**ERRORS, **AUTH_ERRORS, **CONFLICT}
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
