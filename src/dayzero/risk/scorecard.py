"""Scorecard points: probabilities of default on the points-to-double-odds (PDO) scale.

``points = offset + factor * ln(odds)`` with ``odds = (1 - pd) / pd`` (good:bad),
``factor = pdo / ln 2`` and ``offset = base_score - factor * ln(base_odds)``: an applicant with
good:bad odds ``base_odds`` gets ``base_score`` points, and every ``pdo`` extra points double the
odds. Higher points mean lower risk.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-12


@dataclass(frozen=True)
class PointsScale:
    """The PDO scaling of a scorecard.

    Parameters
    ----------
    base_score
        Points at ``base_odds``.
    base_odds
        Good:bad odds that score ``base_score`` (50 means 50 goods per bad, PD = 1/51).
    pdo
        Points that double the odds.

    Examples
    --------
    >>> scale = PointsScale(600, 50, 20)
    >>> round(float(scale.points([1 / 51])[0]), 6)
    600.0
    >>> round(float(scale.points([1 / 101])[0]), 6)
    620.0
    """

    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        for name in ("base_score", "base_odds", "pdo"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.base_odds <= 0:
            raise ValueError(f"base_odds must be > 0 (good:bad odds), got {self.base_odds!r}")
        if self.pdo <= 0:
            raise ValueError(f"pdo must be > 0, got {self.pdo!r}")

    @property
    def factor(self) -> float:
        """Points per unit of log-odds."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """Points at even odds (1:1)."""
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, pd_: object) -> np.ndarray:
        """Points for probabilities of default (clipped to ``[1e-12, 1 - 1e-12]``)."""
        p = np.clip(np.asarray(pd_, dtype=float), _EPS, 1.0 - _EPS)
        return self.offset + self.factor * np.log((1.0 - p) / p)

    def points_from_logit(self, logit_default: object) -> np.ndarray:
        """Points for log-odds of default ``ln(pd / (1 - pd))``."""
        return self.offset - self.factor * np.asarray(logit_default, dtype=float)

    def probability(self, points: object) -> np.ndarray:
        """Probability of default for a number of points (inverse of :meth:`points`)."""
        log_odds = (np.asarray(points, dtype=float) - self.offset) / self.factor
        return 1.0 / (1.0 + np.exp(log_odds))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
