"""The risk demo runs the default RiskScorer() on the shipped German credit data: no free text,
so no encoder is ever built."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from dayzero.cli.demo_risk import run_risk_demo


def test_risk_demo_prints_probability_points_and_reasons(monkeypatch):
    import dayzero.text.encoder as encoder_module

    def refuse(*args, **kwargs):
        raise AssertionError("the risk demo built a TextEncoder")

    monkeypatch.setattr(encoder_module.TextEncoder, "__init__", refuse)
    monkeypatch.delenv("DAYZERO_DATA", raising=False)
    console = Console(record=True, width=160)
    out = run_risk_demo(console)
    text = console.export_text()
    assert 0 < out["pd"] < 1 and np.isfinite(out["points"])
    assert len(out["reasons"]) == 3
    # The applicant's checking account is overdrawn (< 0 DM) and asks for 9,000 DM over 36
    # months: the checking account raises the risk most.
    first = out["reasons"][0]
    assert first["field"] == "status_of_existing_checking_account" and first["contribution"] > 0
    assert "(raises risk)" in first["reason"] and first["reason"] in text
    assert "probability of default" in text and "CC BY 4.0" in text
    # The folds choose between LightGBM and the linear candidate: either is named with its columns.
    assert "on 7 numeric and 13 categorical columns" in text
    assert ("rounds of depth" in text) or ("logistic regression" in text)
    # The audit line: applicants under 25 vs the rest, on the training rows.
    age = out["audit"]
    assert age["name"] == "age" and [g["group"] for g in age["groups"]] == ["< 25", ">= 25"]
    ratio = age["demographic_parity_ratio"]["value"]
    assert 0 < ratio <= 1 and f"demographic-parity ratio {ratio:.2f}" in text
    assert age["four_fifths_flag"] == (ratio < 0.8)
    assert ("fails the four-fifths rule" in text) == age["four_fifths_flag"]
