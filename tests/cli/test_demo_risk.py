"""The risk demo runs on the shipped German credit data (tiny encoder: fast, not meaningful)."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from dayzero.cli.demo_risk import run_risk_demo


def test_risk_demo_prints_probability_points_and_reasons(tiny_bert_dir, monkeypatch):
    monkeypatch.delenv("DAYZERO_DATA", raising=False)
    console = Console(record=True, width=160)
    out = run_risk_demo(console, encoder=str(tiny_bert_dir))
    text = console.export_text()
    assert 0 < out["pd"] < 1 and np.isfinite(out["points"])
    assert len(out["reasons"]) == 3
    assert "probability of default" in text and "CC BY 4.0" in text
