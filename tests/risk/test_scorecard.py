"""PointsScale: PDO scaling known answers and its inverse."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dayzero.risk.scorecard import PointsScale


def test_base_odds_score_base_points_and_pdo_doubles_odds():
    scale = PointsScale(600, 50, 20)
    # PD 1/51 is good:bad odds 50, PD 1/101 is odds 100 (doubled), PD 1/26 is odds 25 (halved).
    np.testing.assert_allclose(scale.points([1 / 51, 1 / 101, 1 / 26]), [600, 620, 580])
    assert scale.factor == pytest.approx(20 / math.log(2))
    assert scale.offset == pytest.approx(600 - 20 / math.log(2) * math.log(50))


def test_inverse_and_logit_forms_agree():
    scale = PointsScale(500, 20, 40)
    p = np.array([0.01, 0.2, 0.5, 0.9])
    points = scale.points(p)
    np.testing.assert_allclose(scale.probability(points), p)
    np.testing.assert_allclose(scale.points_from_logit(np.log(p / (1 - p))), points)
    assert np.all(np.diff(points) < 0)


def test_extreme_probabilities_stay_finite():
    assert np.isfinite(PointsScale().points([0.0, 1.0])).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"pdo": 0}, "pdo"), ({"base_odds": -1}, "base_odds"), ({"base_score": "x"}, "number")],
)
def test_bad_scale(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        PointsScale(**kwargs)
