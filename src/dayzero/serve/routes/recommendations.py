"""Recommendations for a user or an anonymous visitor, and similar items (reads, CPU-bound).

Plain ``def`` endpoints run in the thread pool, except a known user's list over a SQLite store:
it runs on the event loop when it can answer without waiting
(:meth:`~dayzero.serve.state.ServiceState.recommend_user_nowait`). The thread-pool hop and its
wake-ups took about a quarter of a worker's GIL time under ``bench/ray_scale.py``'s known-user
load, more than the answer; anything that could hold up the loop (the model or an item fold-in
busy in another thread, items other workers wrote, a new user's profile through the encoder,
an explanation) still runs in a thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from dayzero.serve import schemas as s
from dayzero.serve.auth import history_auth
from dayzero.serve.routes._explain import explain_items
from dayzero.serve.routes._shared import (
    AUTH_ERRORS,
    ERRORS,
    NOT_FOUND,
    READS,
    Service,
    ranked,
)
from dayzero.serve.state import ServiceState

router = APIRouter(tags=["recommendations"], dependencies=READS)

NO_MODEL = {503: {"model": s.ErrorOut}}
Explain = Annotated[
    bool,
    Query(
        description="Add an `explanation` to the first 10 items: the history items and item "
        "fields that raised each score most (leave-one-out through the served model)."
    ),
]


@router.get(
    "/v1/users/{user_id}/recommendations",
    response_model=s.RecommendOut,
    dependencies=[Depends(history_auth)],
    responses={**ERRORS, **AUTH_ERRORS, **NO_MODEL},
)
async def user_recommendations(
    svc: Service,
    user_id: Annotated[str, PathParam(min_length=1, max_length=s.MAX_ID)],
    k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10,
    exclude_seen: bool = True,
    explain: Explain = False,
) -> s.RecommendOut:
    """Top ``k`` items for a user from their profile and every event so far. A user never
    seen before is served as a brand-new user."""
    if not explain and svc.answers_on_loop:
        answered = svc.recommend_user_nowait(user_id, k, exclude_seen)
        if answered is not None:
            return _recommend_out(svc, user_id, *answered)
    return await run_in_threadpool(_user_recommendations, svc, user_id, k, exclude_seen, explain)


def _user_recommendations(
    svc: ServiceState, user_id: str, k: int, exclude_seen: bool, explain: bool
) -> s.RecommendOut:
    served = svc.require()
    out = svc.recommend_user(user_id, k, exclude_seen)
    response = _recommend_out(svc, user_id, served, out)
    if explain:
        profile = None
        if out.new_user:
            record = svc.store.get_user(user_id)
            profile = record.text if record is not None and record.text.strip() else None
        events = svc.store.events(user=user_id)
        _attach(response, explain_items(svc, served, out.ids, user_id, profile, events))
    return response


@router.post(
    "/v1/recommendations",
    response_model=s.RecommendOut,
    responses={**ERRORS, **AUTH_ERRORS, **NO_MODEL},
)
def anonymous_recommendations(
    body: s.RecommendIn, svc: Service, explain: Explain = False
) -> s.RecommendOut:
    """Top ``k`` for an anonymous or brand-new user described by profile text and/or the
    items they just interacted with (nothing is stored)."""
    from dayzero.online.store import Event

    served = svc.require()
    recent = [Event(user="", item=r.item, kind=r.kind, value=r.value) for r in body.recent]
    out = svc.recommend_anonymous(body.profile, recent, body.k, body.exclude_seen)
    response = _recommend_out(svc, None, served, out)
    if explain:
        profile = body.profile if body.profile is not None and body.profile.strip() else None
        _attach(response, explain_items(svc, served, out.ids, None, profile, recent))
    return response


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=s.SimilarOut,
    responses={**ERRORS, **AUTH_ERRORS, **NOT_FOUND},
)
def similar_items(
    svc: Service,
    item_id: Annotated[str, PathParam(min_length=1, max_length=s.MAX_ID)],
    k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10,
) -> s.SimilarOut:
    """Items closest to ``item_id`` in the served model's taste space."""
    version, ids, scores = svc.similar(item_id, k)
    return s.SimilarOut(item=item_id, version=version, items=ranked(ids, scores, svc.titles(ids)))


def _attach(response: s.RecommendOut, explanations: list) -> None:
    for item, explanation in zip(response.items, explanations, strict=True):
        item.explanation = explanation


def _recommend_out(svc, user: str | None, served, out) -> s.RecommendOut:
    return s.RecommendOut(
        user=user,
        version=served.version,
        new_user=out.new_user,
        items=ranked(out.ids, out.scores, svc.titles(out.ids, served)),
    )
