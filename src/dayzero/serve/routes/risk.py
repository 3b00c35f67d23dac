"""``POST /v1/risk/score``: default probability, points and reason codes per applicant.

The rules of ``dayzero risk score``: the model's label column (``training.json``, or the
request's ``target``) and its pass-through ids may be in the applicants and are not scored; any
other unknown key, a nested value or a text in a numeric column is a 422 naming the applicant
and the field, never a 5xx.
"""

from __future__ import annotations

import warnings

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from dayzero.serve import schemas as s
from dayzero.serve.routes._shared import (
    AUTH_ERRORS,
    ERRORS,
    NOT_FOUND,
    READS,
    CardFormat,
    Service,
    card_response,
)
from dayzero.serve.state import ServiceState

router = APIRouter(tags=["risk"], dependencies=READS)


@router.post(
    "/v1/risk/score", response_model=s.RiskOut, responses={**ERRORS, **AUTH_ERRORS, **NOT_FOUND}
)
def risk_score(body: s.RiskIn, svc: Service) -> s.RiskOut:
    """Probability of default, scorecard points and the top reason codes per applicant."""
    return _risk(svc, body)


@router.get(
    "/v1/risk/card",
    response_model=None,
    responses={**AUTH_ERRORS, **NOT_FOUND, 409: {"model": s.ErrorOut}},
)
def risk_card(svc: Service, format: CardFormat = "json") -> Response:
    """The model card of the served risk model: the applicants it was fitted on, the settings
    chosen by cross-validation, the fairness audit attached by ``dayzero risk audit
    --write-to-model``, intended use and limits."""
    if svc.risk is None or svc.risk_dir is None:
        raise HTTPException(
            404, "no risk model is loaded: start the server with --risk-model FOLDER"
        )
    return card_response(svc.risk_dir, None, format)


def _risk(svc: ServiceState, body: s.RiskIn) -> s.RiskOut:
    import numpy as np

    from dayzero.risk.scorer import UnknownCategoryWarning

    scorer = svc.risk
    if scorer is None:
        raise HTTPException(
            404,
            "no risk model is loaded: start the server with --risk-model FOLDER "
            "(a folder written by RiskScorer.save / `dayzero risk fit`)",
        )
    frame = _applicants(scorer, svc.risk_training, body)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownCategoryWarning)
            # predict_pd: the probability of positive_label_, whatever the label coding.
            proba = scorer.predict_pd(frame)
            points = scorer.scale.points(proba)
            reasons = scorer.explain(frame, top=body.top)
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, f"applicants: {exc}") from exc
    passthrough = svc.risk_training.passthrough if svc.risk_training is not None else ()
    scores = []
    for row in range(len(frame)):
        mine = reasons[reasons["row"] == row]
        sent = body.applicants[row]
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
                ids={c: sent[c] for c in passthrough if c in sent},
            )
        )
    return s.RiskOut(scores=scores)


def _first_with(rows: list[dict], column: str) -> int:
    return next(i for i, row in enumerate(rows) if column in row)


def _applicants(scorer, training, body: s.RiskIn):
    """The applicants as a frame of the model's columns, or a 422 naming the applicant and the
    field: the same rules as ``dayzero risk score`` (:mod:`dayzero.risk.target`)."""
    import pandas as pd

    from dayzero.core.templates import is_missing
    from dayzero.risk.target import ColumnError, scoring_columns

    rows = body.applicants
    features = list(scorer.columns_)
    target = body.target or (training.target if training is not None else None)
    if body.target is not None and body.target in features:
        raise HTTPException(
            422,
            f"target: {body.target!r} is a column the model scores, not a label; name the label "
            "column, or leave target out",
        )
    for i, row in enumerate(rows):
        for column, value in row.items():
            if isinstance(value, dict | list):
                raise HTTPException(
                    422,
                    f"applicants[{i}].{column}: nested JSON ({type(value).__name__}); send a "
                    "plain value (text, number, true/false or null)",
                )
    columns = list(dict.fromkeys(column for row in rows for column in row))
    try:
        scoring_columns(
            columns,
            features,
            target=target,
            passthrough=training.passthrough if training is not None else (),
        )
    except ColumnError as exc:
        parts = []
        if exc.unexpected:
            where = ", ".join(f"{c!r} (applicants[{_first_with(rows, c)}])" for c in exc.unexpected)
            fix = "remove them"
            if target is None:
                fix += ' (a label column: name it in "target" and it is dropped)'
            parts.append(f"columns the model was not fitted on: {where}; {fix}")
        if exc.missing:
            parts.append(
                f"no applicant has {exc.missing}: send every column the model reads (null for a "
                "missing value)"
            )
        detail = f"applicants: {'; '.join(parts)} (the model reads {features})"
        raise HTTPException(422, detail) from None
    for column in getattr(scorer, "numeric_columns_", []):
        for i, row in enumerate(rows):
            value = row.get(column)
            if isinstance(value, str) and not _number(value) and not is_missing(value):
                raise HTTPException(
                    422,
                    f"applicants[{i}].{column}: {value!r} is not a number (the model reads "
                    f"{column!r} as numbers); send a number, or null for a missing value",
                )
    return pd.DataFrame.from_records(
        [{c: row.get(c) for c in features} for row in rows], columns=features
    )


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    return value
