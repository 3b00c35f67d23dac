"""Credit risk report: AUC, Gini, KS with the decile table, calibration, Brier score and PSI.

:func:`build_risk_report` takes labels (1 = default) and probabilities of default, optionally
scorecard points and a reference (development) population for the population stability index.
:class:`RiskReport` writes JSON (:meth:`RiskReport.to_json`) and a self-contained HTML page with
embedded PNG plots (:meth:`RiskReport.to_html`: ROC, KS curve, calibration, score
distribution), drawn with matplotlib's ``Agg`` backend (no display needed). A fairness audit
(:func:`dayzero.risk.fairness.fairness_audit`) set as :attr:`RiskReport.fairness` is a section
of both (``dayzero risk report --sensitive COL``).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dayzero.risk.metrics import brier_score, gini, ks_statistic, psi, roc_auc
from dayzero.risk.scorecard import PointsScale


def _pair(y: Any, pd_: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(pd_, dtype=float).ravel()
    if len(y) != len(p):
        raise ValueError(f"y and pd have different lengths: {len(y)} vs {len(p)}")
    if not np.isfinite(p).all():
        raise ValueError("pd contains NaN or inf: every applicant needs a finite probability")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(f"y must be 0/1 (1 = default), got values {np.unique(y)[:5].tolist()}")
    return y, p


def decile_table(y: Any, pd_: Any, n_bins: int = 10) -> pd.DataFrame:
    """KS / gains table: applicants sorted riskiest first and cut into ``n_bins`` equal groups.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``decile`` (1 = riskiest), ``count``, ``bads``, ``goods``,
        ``bad_rate``, ``min_pd``, ``max_pd``, ``cum_bad_share``, ``cum_good_share`` and ``ks``
        (``|cum_bad_share - cum_good_share|`` after the group, in [0, 1]).

    Examples
    --------
    >>> t = decile_table([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], n_bins=2)
    >>> t["ks"].tolist()
    [1.0, 0.0]
    """
    y, p = _pair(y, pd_)
    order = np.argsort(-p, kind="stable")
    groups = np.array_split(order, min(n_bins, len(p)))
    n_bad, n_good = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    rows, cum_bad, cum_good = [], 0, 0
    for i, idx in enumerate(groups, start=1):
        bads = int(y[idx].sum())
        cum_bad += bads
        cum_good += len(idx) - bads
        rows.append(
            {
                "decile": i,
                "count": len(idx),
                "bads": bads,
                "goods": len(idx) - bads,
                "bad_rate": bads / len(idx),
                "min_pd": float(p[idx].min()),
                "max_pd": float(p[idx].max()),
                "cum_bad_share": cum_bad / n_bad,
                "cum_good_share": cum_good / n_good,
                "ks": abs(cum_bad / n_bad - cum_good / n_good),
            }
        )
    return pd.DataFrame(rows)


def calibration_table(y: Any, pd_: Any, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed default rate in ``n_bins`` equal-count bins of the PD."""
    y, p = _pair(y, pd_)
    order = np.argsort(p, kind="stable")
    rows = [
        {"count": len(idx), "mean_pd": float(p[idx].mean()), "bad_rate": float(y[idx].mean())}
        for idx in np.array_split(order, min(n_bins, len(p)))
    ]
    return pd.DataFrame(rows)


def feature_psi(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> dict:
    """PSI per column: quantile bins for numeric columns, one bin per value otherwise."""
    out = {}
    for column in columns:
        ref, cur = reference[column], current[column]
        if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
            ref_values = ref.to_numpy(float)
            cur_values = cur.to_numpy(float)
            fill = float(np.nanmedian(ref_values)) if np.isfinite(ref_values).any() else 0.0
            out[column] = psi(
                np.nan_to_num(ref_values, nan=fill), np.nan_to_num(cur_values, nan=fill)
            )
        else:
            as_text = lambda s: s.astype(object).where(s.notna(), "missing").astype(str)  # noqa: E731
            out[column] = psi(as_text(ref), as_text(cur), method="categorical")
    return out


@dataclass
class RiskReport:
    """The numbers of a risk report and the arrays its plots are drawn from."""

    n: int
    bad_rate: float
    auc: float
    gini: float
    ks: float
    ks_threshold_pd: float
    brier: float
    deciles: pd.DataFrame
    calibration: pd.DataFrame
    score_psi: float | None = None
    feature_psi: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] | None = None
    y: np.ndarray = field(default=None, repr=False)
    pd_: np.ndarray = field(default=None, repr=False)
    points: np.ndarray | None = field(default=None, repr=False)
    reference_scores: np.ndarray | None = field(default=None, repr=False)
    fairness: Any = None  # a dayzero.risk.fairness.FairnessAudit: its own section when set

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (no per-applicant arrays); ``fairness`` is the audit's
        :meth:`~dayzero.risk.fairness.FairnessAudit.to_dict` or None."""
        return {
            "n": self.n,
            "bad_rate": self.bad_rate,
            "auc": self.auc,
            "gini": self.gini,
            "ks": self.ks,
            "ks_threshold_pd": self.ks_threshold_pd,
            "brier": self.brier,
            "deciles": self.deciles.to_dict(orient="records"),
            "calibration": self.calibration.to_dict(orient="records"),
            "score_psi": self.score_psi,
            "feature_psi": self.feature_psi,
            "scale": self.scale,
            "fairness": None if self.fairness is None else self.fairness.to_dict(),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as a JSON string; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def plots(self) -> dict[str, str]:
        """Title -> base64 PNG of the ROC curve, KS curve, calibration and score distribution."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.metrics import roc_curve

        figures = {}

        def png(fig) -> str:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
            plt.close(fig)
            return base64.b64encode(buffer.getvalue()).decode("ascii")

        fig, ax = plt.subplots(figsize=(4, 4))
        fpr, tpr, _ = roc_curve(self.y, self.pd_)
        ax.plot(fpr, tpr, label=f"AUC {self.auc:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        ax.legend(loc="lower right")
        figures["ROC curve"] = png(fig)

        fig, ax = plt.subplots(figsize=(4, 4))
        share = np.arange(len(self.deciles) + 1) / len(self.deciles)
        for column, label in (("cum_bad_share", "bads"), ("cum_good_share", "goods")):
            ax.plot(share, np.r_[0, self.deciles[column]], marker="o", label=label)
        ax.set(xlabel="share of applicants (riskiest first)", ylabel="cumulative share")
        ax.set_title(f"KS {self.ks:.3f}")
        ax.legend(loc="lower right")
        figures["KS curve"] = png(fig)

        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(self.calibration["mean_pd"], self.calibration["bad_rate"], marker="o")
        top = float(max(self.calibration["mean_pd"].max(), self.calibration["bad_rate"].max()))
        ax.plot([0, top], [0, top], "--", color="grey")
        ax.set(xlabel="mean predicted PD", ylabel="observed bad rate")
        ax.set_title(f"Calibration (Brier {self.brier:.3f})")
        figures["Calibration"] = png(fig)

        fig, ax = plt.subplots(figsize=(4, 4))
        scores = self.points if self.points is not None else self.pd_
        ax.hist(scores[self.y == 0], bins=20, alpha=0.6, density=True, label="goods")
        ax.hist(scores[self.y == 1], bins=20, alpha=0.6, density=True, label="bads")
        if self.reference_scores is not None:
            ax.hist(
                self.reference_scores, bins=20, density=True, histtype="step", label="reference"
            )
        ax.set(xlabel="points" if self.points is not None else "PD", ylabel="density")
        ax.set_title("Score distribution")
        ax.legend()
        figures["Score distribution"] = png(fig)
        return figures

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML page (tables + embedded PNG plots) to ``path``."""
        summary = {
            "applicants": self.n,
            "bad rate": f"{self.bad_rate:.3f}",
            "AUC": f"{self.auc:.3f}",
            "Gini": f"{self.gini:.3f}",
            "KS": f"{self.ks:.3f}",
            "Brier score": f"{self.brier:.4f}",
        }
        if self.score_psi is not None:
            summary["PSI of the score"] = f"{self.score_psi:.4f}"
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in summary.items()
        )
        images = "".join(
            f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}">'
            f"<figcaption>{html.escape(t)}</figcaption></figure>"
            for t, b in self.plots().items()
        )
        psi_table = ""
        if self.feature_psi:
            psi_frame = pd.DataFrame(
                sorted(self.feature_psi.items(), key=lambda kv: -kv[1]), columns=["feature", "PSI"]
            )
            psi_table = "<h2>PSI per feature</h2>" + psi_frame.to_html(index=False)
        page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Risk report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}figure{{display:inline-block}}
</style></head><body>
<h1>Risk report</h1><table>{rows}</table>
<h2>Plots</h2>{images}
<h2>Decile table (riskiest first)</h2>{self.deciles.to_html(index=False, float_format="%.4f")}
<h2>Calibration</h2>{self.calibration.to_html(index=False, float_format="%.4f")}
{psi_table}
{"" if self.fairness is None else self.fairness.to_html()}
</body></html>
"""
        out = Path(path)
        out.write_text(page)
        return out


def build_risk_report(
    y: Any,
    pd_: Any,
    scale: PointsScale | None = None,
    frame: pd.DataFrame | None = None,
    reference: tuple[pd.DataFrame, Any] | None = None,
    columns: list[str] | None = None,
    n_bins: int = 10,
) -> RiskReport:
    """Compute a :class:`RiskReport`.

    Parameters
    ----------
    y
        1 = default, 0 = good.
    pd_
        Probabilities of default.
    scale
        Points scaling; when given, PSI of the score and the score plot use points.
    frame
        The scored applicants (for PSI per feature).
    reference
        ``(reference_frame, reference_pd)``: the development population. Without it, PSI is
        not computed.
    columns
        Columns of ``frame`` to compute PSI on (default: all shared columns).
    n_bins
        Groups of the decile and calibration tables.

    Returns
    -------
    RiskReport
    """
    y, p = _pair(y, pd_)
    ks = ks_statistic(y, p)
    points = None if scale is None else scale.points(p)
    score_psi, features, ref_scores = None, {}, None
    if reference is not None:
        ref_frame, ref_pd = reference
        ref_pd = np.asarray(ref_pd, dtype=float)
        ref_scores = ref_pd if scale is None else scale.points(ref_pd)
        score_psi = psi(ref_scores, p if points is None else points)
        if frame is not None:
            shared = [c for c in (columns or list(frame.columns)) if c in ref_frame.columns]
            features = feature_psi(ref_frame, frame, shared)
    return RiskReport(
        n=len(y),
        bad_rate=float(y.mean()),
        auc=roc_auc(y, p),
        gini=gini(y, p),
        ks=ks.statistic,
        ks_threshold_pd=ks.threshold,
        brier=brier_score(y, p),
        deciles=decile_table(y, p, n_bins),
        calibration=calibration_table(y, p, n_bins),
        score_psi=score_psi,
        feature_psi=features,
        scale=None if scale is None else scale.to_dict(),
        y=y,
        pd_=p,
        points=points,
        reference_scores=ref_scores,
    )
