"""``POST /v1/risk/score``: default probability, points and reason codes per applicant."""

from __future__ import annotations

import warnings

from fastapi import APIRouter, HTTPException

from dayzero.serve import schemas as s
from dayzero.serve.routes._shared import AUTH_ERRORS, ERRORS, NOT_FOUND, READS, Service
from dayzero.serve.state import ServiceState

router = APIRouter(tags=["risk"], dependencies=READS)


@router.post(
    "/v1/risk/score", response_model=s.RiskOut, responses={**ERRORS, **AUTH_ERRORS, **NOT_FOUND}
)
def risk_score(body: s.RiskIn, svc: Service) -> s.RiskOut:
    """Probability of default, scorecard points and the top reason codes per applicant."""
    return _risk(svc, body)


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
