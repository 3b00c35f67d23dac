"""The served version: ``GET /v1/model`` (a read), promote and rollback (admin, need the key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from dayzero.serve import schemas as s
from dayzero.serve.routes._shared import (
    AUTH_ERRORS,
    CONFLICT,
    ERRORS,
    NOT_FOUND,
    READS,
    WRITES,
    CardFormat,
    Service,
    card_response,
)

router = APIRouter()


@router.get("/v1/model", response_model=s.ModelOut, dependencies=READS, tags=["model"])
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


@router.get(
    "/v1/model/card",
    dependencies=READS,
    tags=["model"],
    response_model=None,
    responses={**AUTH_ERRORS, 409: {"model": s.ErrorOut}, 503: {"model": s.ErrorOut}},
)
def model_card(svc: Service, format: CardFormat = "json") -> Response:
    """The model card of the served version (:mod:`dayzero.core.card`): training data, how
    settings were chosen, encoder, evaluation and audits attached to it, intended use and
    limits, and what the registry recorded for the version (metrics, watermark)."""
    from dayzero.online.serving import MODEL_FOLDER

    served = svc.require()
    folder = svc.registry.path(served.version, verify=False) / MODEL_FOLDER
    serving = {
        "version": served.version,
        "metrics": served.info.get("metrics") or {},
        "watermark": served.info.get("watermark"),
        "folded_items": served.folded,
    }
    return card_response(folder, serving, format)


@router.post(
    "/v1/admin/promote",
    response_model=s.AdminOut,
    dependencies=WRITES,
    tags=["admin"],
    responses={**ERRORS, **AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
def promote(body: s.PromoteIn, svc: Service) -> s.AdminOut:
    """Load a registry version (verified), swap it in atomically, fold in what the store
    holds beyond it, and make it the registry's current version."""
    version, previous = svc.promote(body.version)
    return s.AdminOut(version=version, previous=previous, index_size=len(svc.require().index))


@router.post(
    "/v1/admin/rollback",
    response_model=s.AdminOut,
    dependencies=WRITES,
    tags=["admin"],
    responses={**AUTH_ERRORS, **CONFLICT},
)
def rollback(svc: Service) -> s.AdminOut:
    """Serve the previously promoted version again."""
    version, previous = svc.rollback()
    return s.AdminOut(version=version, previous=previous, index_size=len(svc.require().index))
