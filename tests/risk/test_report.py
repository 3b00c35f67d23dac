"""Risk report: known-answer decile / KS table, PSI, JSON and HTML output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dayzero.risk.report import (
    build_risk_report,
    calibration_table,
    decile_table,
    feature_psi,
)
from dayzero.risk.scorecard import PointsScale


def test_decile_table_known_answer():
    y = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    table = decile_table(y, p, n_bins=5)
    assert table["bads"].tolist() == [2, 1, 0, 0, 0]
    assert table["count"].tolist() == [2] * 5
    np.testing.assert_allclose(table["cum_bad_share"], [2 / 3, 1, 1, 1, 1])
    np.testing.assert_allclose(table["cum_good_share"], [0, 1 / 7, 3 / 7, 5 / 7, 1])
    assert table["ks"].max() == pytest.approx(6 / 7)


def test_calibration_of_perfect_model():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    table = calibration_table(y, p)
    np.testing.assert_allclose(table["bad_rate"], table["mean_pd"], atol=0.03)


def test_feature_psi_zero_for_same_population_and_positive_on_shift():
    ref = pd.DataFrame({"age": np.arange(100), "job": ["a", "b"] * 50})
    same = feature_psi(ref, ref, ["age", "job"])
    assert same == {"age": pytest.approx(0.0), "job": pytest.approx(0.0)}
    shifted = pd.DataFrame({"age": np.arange(100) + 50, "job": ["a"] * 90 + [None] * 10})
    moved = feature_psi(ref, shifted, ["age", "job"])
    assert moved["age"] > 0.25 and moved["job"] > 0.25


@pytest.fixture
def report():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.9, size=300)
    y = (rng.uniform(size=300) < p).astype(int)
    frame = pd.DataFrame({"age": rng.integers(20, 70, 300), "job": rng.choice(["a", "b"], 300)})
    return build_risk_report(y, p, scale=PointsScale(), frame=frame, reference=(frame, p))


def test_report_numbers_and_json(report, tmp_path):
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert data["gini"] == pytest.approx(2 * data["auc"] - 1)
    assert data["ks"] == pytest.approx(max(d["ks"] for d in data["deciles"]), abs=0.05)
    assert data["score_psi"] == pytest.approx(0.0)
    assert set(data["feature_psi"]) == {"age", "job"}
    assert json.loads((tmp_path / "r.json").read_text()) == data


def test_report_html_has_embedded_plots(report, tmp_path):
    page = report.to_html(tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    for title in ("ROC curve", "KS curve", "Calibration", "Score distribution", "Decile table"):
        assert title in page


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        build_risk_report([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="0/1"):
        build_risk_report([0, 2], [0.1, 0.2])
