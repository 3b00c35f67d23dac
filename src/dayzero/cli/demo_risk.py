"""Risk part of ``make demo``: score a new applicant with a RiskScorer fitted on German credit.

Data: Statlog German credit (Hofmann, 1994), UCI Machine Learning Repository, CC BY 4.0,
shipped in ``dayzero/demo_data``.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

ATTRIBUTION = (
    "German credit data: Hofmann, H. (1994), Statlog (German Credit Data), UCI Machine Learning "
    "Repository, CC BY 4.0"
)
NEW_APPLICANT: dict[str, Any] = {
    "status_of_existing_checking_account": "... < 0 DM",
    "credit_history": "existing credits paid back duly till now",
    "purpose": "car (new)",
    "savings_account_and_bonds": "... < 100 DM",
    "present_employment_since": "... < 1 year",
    "personal_status_and_sex": "male : single",
    "other_debtors_or_guarantors": "none",
    "property": "unknown / no property",
    "other_installment_plans": "none",
    "housing": "rent",
    "job": "skilled employee / official",
    "telephone": "none",
    "foreign_worker": "yes",
    "duration_in_month": 36,
    "credit_amount": 9000,
    "installment_rate_in_percentage_of_disposable_income": 4,
    "present_residence_since": 1,
    "age_in_years": 24,
    "number_of_existing_credits_at_this_bank": 1,
    "number_of_people_being_liable_to_provide_maintenance_for": 1,
}


def run_risk_demo(console: Console, encoder: str = "all-MiniLM-L6-v2") -> dict[str, Any]:
    """Fit the default ``RiskScorer()`` on the shipped German credit data and explain one new
    applicant's score.

    German credit has no free-text column, so the default is its tabular model (LightGBM or
    the linear candidate, whichever its folds prefer): no encoder is loaded and the reasons are
    exact contributions of the applicant's own values (TreeSHAP for the trees).

    Parameters
    ----------
    console
        Where to print.
    encoder
        Encoder of free-text columns (none here: never loaded; kept for callers that pass one).

    Returns
    -------
    dict
        ``pd``, ``points`` and ``reasons`` (the explain table as records) of the new applicant;
        ``audit``: the fairness audit of age (< 25 vs 25+) as
        :meth:`~dayzero.risk.fairness.AttributeAudit.to_dict`.
    """
    from dayzero.core.settings import DEMO_DATA
    from dayzero.datasets.german_credit import CATEGORICAL, NUMERIC, load_german_credit
    from dayzero.risk.scorer import RiskScorer

    data = load_german_credit(DEMO_DATA / "german-credit")  # the shipped copy, always offline
    X = data.X[[*CATEGORICAL, *NUMERIC]]
    applicant = pd.DataFrame([NEW_APPLICANT])[X.columns]
    with console.status("fitting RiskScorer() on 1,000 German credit applicants"):
        model = RiskScorer(encoder=encoder, units={"credit_amount": "DM"}, random_state=0)
        model.fit(X, data.y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd_ = float(model.predict_pd(applicant)[0])
            points = float(model.scale.points(pd_))
            reasons = model.explain(applicant, top=3)
    console.print(
        f"\n[bold]New applicant[/bold]: probability of default {pd_:.1%}, {points:.0f} points"
    )
    table = Table(title=f"Top reasons ({reasons.attrs['method']})")
    for column in ("rank", "reason", "log-odds", "points"):
        table.add_column(column)
    for row in reasons.itertuples():
        table.add_row(str(row.rank), row.reason, f"{row.contribution:+.3f}", f"{row.points:+.1f}")
    console.print(table)
    line, audit = _audit_line(model, X, data.y)
    console.print(line)
    console.print(f"[dim]{model.describe()['summary']}[/dim]")
    console.print(f"[dim]{ATTRIBUTION}[/dim]")
    return {
        "pd": pd_,
        "points": points,
        "reasons": reasons.to_dict(orient="records"),
        "audit": audit,
    }


def _audit_line(model: Any, X: pd.DataFrame, y: Any) -> tuple[str, dict[str, Any]]:
    """One line of the fairness audit (:mod:`dayzero.risk.fairness`): applicants under 25 vs
    the rest, 70 % approved. Measured on the rows the demo fitted on (it keeps none apart):
    ``bench/fairness_risk.py`` audits a held-out test part."""
    from dayzero.risk.fairness import Sensitive, fairness_audit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = fairness_audit(
            model, X, y, Sensitive("age_in_years", name="age", bins=[25]), approval_rate=0.7,
            n_resamples=200,
        )  # fmt: skip
    age = audit["age"]
    ratio = age.gaps["demographic_parity_ratio"]
    verdict = "[red]fails[/red]" if age.four_fifths_flag else "passes"
    young, old = (age.group(g)["approval_rate"].value for g in ("< 25", ">= 25"))
    flips = age.counterfactual["flip_rate"].value
    line = (
        f"[bold]Audit[/bold] (age < 25 vs 25+, 70% approved, training rows): approval "
        f"{young:.0%} vs {old:.0%}, demographic-parity ratio {ratio.value:.2f} "
        f"[{ratio.low:.2f}, {ratio.high:.2f}] ({verdict} the four-fifths rule); changing only "
        f"the age flips {flips:.1%} of decisions"
    )
    return line, age.to_dict()
