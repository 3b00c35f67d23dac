"""Fairness audit of a risk model: outcomes per group of a sensitive attribute, with bootstrap
intervals, and a counterfactual flip test.

:func:`fairness_audit` scores labelled applicants once, turns the probabilities of default (PD)
into decisions at a cut-off (``approved = PD < cutoff``; the cut-off is a PD or is set by an
approval rate) and, for every sensitive attribute the caller names, measures per group:

* approval rate and observed default rate;
* calibration: mean PD, the gap ``mean PD - default rate`` and the expected calibration error
  (:func:`dayzero.risk.metrics.expected_calibration_error`);
* AUC of the PD within the group;
* approval rate among the goods (fairlearn's true-positive rate, approval being the favourable
  prediction and "good" the favourable truth) and among the bads (its false-positive rate);

and between groups: demographic-parity difference and ratio (flagged when the ratio is under
0.8, the four-fifths rule of the US EEOC's Uniform Guidelines), equal-opportunity difference
(approval among goods) and equalised-odds difference (the larger of the gaps among goods and
among bads), as fairlearn defines them (``fairlearn.metrics``; fairlearn computes every point
estimate). Each number carries a percentile bootstrap interval (``scipy.stats.bootstrap``,
rows resampled within each group, so every resample keeps every group; seeded). The cut-off
is a policy: it is held fixed across resamples. A gap's interval is that of the gap between
the two groups it compares on the audited rows (``compared``: the lowest and the highest),
kept fixed across resamples, so that parity can lie inside it (a max - min recomputed on every
resample is never below 0). fairlearn's own ``MetricFrame(n_boot=...)``
resamples the pooled rows (a small group can vanish from a resample) and gives no interval
for a gap that is a maximum over two metrics (equalised odds), hence the stratified bootstrap
here.

The counterfactual flip test changes only the sensitive value of otherwise identical
applicants, to the representative value of each other group (the most frequent value of a
categorical group among the audited rows, the median of a numeric band; ``Sensitive.values``
sets them), scores again with the same model and reports the mean absolute PD shift and the
share of decisions that flip at the cut-off. On the row-text path (``RiskScorer(
representation="row-text")``) the changed value is what the encoder reads in the rendered
sentence ("The age in years is 23." becomes "... is 36."); on the tabular path it is the
column the trees split on. A model that never reads the column flips nothing; that says
nothing about proxies of it (other columns that carry the same information), which the
group metrics measure.

The JSON of an audit (:meth:`FairnessAudit.to_dict`, written as ``fairness_audit.json`` by
:meth:`FairnessAudit.save` next to a saved model, read back by :meth:`FairnessAudit.load`;
model cards include it) is stable, ``format_version`` 1::

    {
      "summary": [str],                  # one line per attribute and test
      "format": "dayzero-fairness-audit", "format_version": 1,
      "dayzero_version": str, "created": ISO-8601 UTC time,
      "model": {"class": str, "representation": str | null, "head": str | null},
      "data": {...} | null,              # what the caller says was audited (file, target)
      "n": int, "default_rate": float,
      "cutoff": {"pd": float, "approval_rate": float,   # approval rate achieved
                 "rule": "approved when PD < pd", "chosen_by": "pd" | "approval_rate"
                 | "default_rate"},
      "bootstrap": {"method": str, "n_resamples": int, "confidence": float,
                    "random_state": int},
      "four_fifths": 0.8,
      "attributes": [{
        "name": str, "column": str, "in_model": bool,
        "grouping": {"kind": "values" | "bands" | "mapping", "edges": [float] (bands)},
        "groups": [{"group": str, "n": int, "share": float, "counterfactual_value": scalar,
                    "approval_rate": E, "default_rate": E, "mean_pd": E,
                    "calibration_gap": E, "ece": E, "auc": E,
                    "approval_rate_goods": E, "approval_rate_bads": E}],
        "left_out": [{"group": str, "n": int, "why": str}],
        "demographic_parity_difference": E, "demographic_parity_ratio": E,
        "equal_opportunity_difference": E, "equalized_odds_difference": E,
        "compared": {gap: {"metric": str, "low": group, "high": group}},
        "four_fifths_flag": bool,        # demographic-parity ratio < 0.8
        "parity_outside_ci": bool,       # the ratio's interval lies below 1
        "counterfactual": {
          "pairs": [{"from": str, "to": str, "to_value": scalar, "n": int,
                     "mean_pd_shift": float, "mean_abs_pd_shift": float,
                     "flip_rate": float, "approved_to_declined": float,
                     "declined_to_approved": float}],
          "mean_abs_pd_shift": E, "flip_rate": E, "max_abs_pd_shift": float,
          "rows_with_a_flip": float} | null,
        "notes": [str]                   # e.g. a group with one outcome (no AUC)
      }]
    }

where ``E`` is ``{"value": float | null, "low": float | null, "high": float | null}``
(null where the number is undefined, e.g. the AUC of a group with one class).
"""

from __future__ import annotations

import contextlib
import html
import inspect
import itertools
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from fairlearn import metrics as fl
from scipy import stats

from dayzero.risk.metrics import expected_calibration_error

AUDIT_FILE = "fairness_audit.json"
FORMAT = "dayzero-fairness-audit"
FORMAT_VERSION = 1
FOUR_FIFTHS = 0.8
MISSING = "missing"
DEFAULT_BANDS = 4  # quantile bands of a numeric column with many values and no edges given
MAX_VALUES = 10  # a numeric column with at most this many values is grouped by value
FEW_OUTCOMES = 10  # fewer goods (or bads) in a group: its rates among them get a note
GROUP_METRICS = (
    "approval_rate",
    "default_rate",
    "mean_pd",
    "calibration_gap",
    "ece",
    "auc",
    "approval_rate_goods",
    "approval_rate_bads",
)
GAPS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)
# scipy >= 1.15 names the seed ``rng``; older versions allowed by the pin call it ``random_state``.
_SEED = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


class FairnessError(ValueError):
    """An audit cannot be run as asked; the message names the column or argument and the fix."""


class Estimate(NamedTuple):
    """A number with its bootstrap interval; NaN where undefined (null in JSON)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        """``{"value", "low", "high"}`` with NaN as None."""
        return {k: _num(v) for k, v in self._asdict().items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """Inverse of :meth:`to_dict`."""
        return cls(*(math.nan if data.get(k) is None else float(data[k]) for k in cls._fields))


@dataclass(frozen=True)
class Sensitive:
    """How to group applicants by one sensitive column.

    Parameters
    ----------
    column : str
        The column of ``X`` (it need not be a feature of the model).
    name : str, optional
        The attribute's name in the audit (default: ``column``), e.g. ``"sex"`` for groups
        derived from German credit's ``personal_status_and_sex``.
    bins : int or sequence of float, optional
        A numeric column: band edges (``[25]`` gives ``"< 25"`` and ``">= 25"``) or a number of
        quantile bands. Default: one group per value when the column has at most 10 values,
        else 4 quantile bands.
    groups : mapping or callable, optional
        A categorical column: value -> group (``{"male : single": "male", ...}`` or
        ``lambda v: v.split(":")[0].strip()``). Default: one group per value.
    values : mapping, optional
        Group -> the value the counterfactual test sets for it. Default: the group's most
        frequent value (categorical) or median (numeric band) among the audited rows.
    """

    column: str
    name: str | None = None
    bins: int | Sequence[float] | None = None
    groups: Mapping[Any, Any] | Callable[[Any], Any] | None = None
    values: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        """The attribute's name in the audit."""
        return self.name or self.column


@dataclass
class AttributeAudit:
    """The audit of one sensitive attribute (see the module notes for every key)."""

    name: str
    column: str
    in_model: bool
    grouping: dict[str, Any]
    groups: list[dict[str, Any]]
    gaps: dict[str, Estimate]
    left_out: list[dict[str, Any]] = field(default_factory=list)
    counterfactual: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    compared: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def four_fifths_flag(self) -> bool:
        """The demographic-parity ratio is under 0.8 (the four-fifths rule)."""
        ratio = self.gaps["demographic_parity_ratio"].value
        return bool(np.isfinite(ratio) and ratio < FOUR_FIFTHS)

    @property
    def parity_outside_ci(self) -> bool:
        """The demographic-parity ratio's interval lies wholly below 1 (parity excluded)."""
        high = self.gaps["demographic_parity_ratio"].high
        return bool(np.isfinite(high) and high < 1.0)

    def group(self, name: str) -> dict[str, Any]:
        """The row of ``groups`` for the group ``name``."""
        for row in self.groups:
            if row["group"] == name:
                return row
        raise KeyError(f"{self.name} has no group {name!r}; groups: {self.group_names}")

    @property
    def group_names(self) -> list[str]:
        """The compared groups, in order."""
        return [row["group"] for row in self.groups]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys as documented in the module notes."""
        groups = [
            {k: (v.to_dict() if isinstance(v, Estimate) else v) for k, v in row.items()}
            for row in self.groups
        ]
        out: dict[str, Any] = {
            "name": self.name,
            "column": self.column,
            "in_model": self.in_model,
            "grouping": self.grouping,
            "groups": groups,
            "left_out": self.left_out,
        }
        out.update({k: v.to_dict() for k, v in self.gaps.items()})
        out["compared"] = self.compared
        out["four_fifths_flag"] = self.four_fifths_flag
        out["parity_outside_ci"] = self.parity_outside_ci
        counterfactual = None
        if self.counterfactual is not None:
            counterfactual = {
                k: (v.to_dict() if isinstance(v, Estimate) else v)
                for k, v in self.counterfactual.items()
            }
        out["counterfactual"] = counterfactual
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributeAudit:
        """Inverse of :meth:`to_dict`."""
        groups = [
            {k: (Estimate.from_dict(v) if k in GROUP_METRICS else v) for k, v in row.items()}
            for row in data["groups"]
        ]
        counterfactual = data.get("counterfactual")
        if counterfactual is not None:
            counterfactual = dict(counterfactual)
            for key in ("mean_abs_pd_shift", "flip_rate"):
                counterfactual[key] = Estimate.from_dict(counterfactual[key])
        return cls(
            name=data["name"],
            column=data["column"],
            in_model=bool(data["in_model"]),
            grouping=dict(data["grouping"]),
            groups=groups,
            gaps={k: Estimate.from_dict(data[k]) for k in GAPS},
            left_out=list(data.get("left_out") or []),
            counterfactual=counterfactual,
            notes=list(data.get("notes") or []),
            compared=dict(data.get("compared") or {}),
        )


@dataclass
class FairnessAudit:
    """A fairness audit of a risk model: what :func:`fairness_audit` returns.

    Attributes
    ----------
    n, default_rate : int, float
        Audited applicants and their observed default rate.
    cutoff : dict
        ``pd`` (approved when PD < pd), ``approval_rate`` (achieved), ``rule``, ``chosen_by``.
    bootstrap : dict
        ``method``, ``n_resamples``, ``confidence``, ``random_state``.
    attributes : list of AttributeAudit
        One per sensitive attribute, in the order given.
    model, data : dict
        What was audited (``data`` as the caller describes it, e.g. the file and target).
    created, dayzero_version : str
    """

    n: int
    default_rate: float
    cutoff: dict[str, Any]
    bootstrap: dict[str, Any]
    attributes: list[AttributeAudit]
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    created: str = ""
    dayzero_version: str = "unknown"

    def __getitem__(self, name: str) -> AttributeAudit:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(f"no attribute {name!r} in this audit; attributes: {self.names}")

    @property
    def names(self) -> list[str]:
        """The audited attributes."""
        return [a.name for a in self.attributes]

    def summary(self) -> list[str]:
        """One sentence per attribute for parity and one for the counterfactual test."""
        lines = []
        for a in self.attributes:
            rates = sorted(a.groups, key=lambda g: g["approval_rate"].value)
            low, high = rates[0], rates[-1]
            ratio = a.gaps["demographic_parity_ratio"]
            verdict = (
                "under 0.8: fails the four-fifths rule"
                if a.four_fifths_flag
                else "passes the four-fifths rule"
            )
            if a.parity_outside_ci:
                verdict += "; parity lies outside the interval"
            elif a.four_fifths_flag:
                verdict += ", but parity (1) lies inside the interval: too few rows to tell"
            lines.append(
                f"{a.name}: approval {_pct(low['approval_rate'])} for {low['group']!r} vs "
                f"{_pct(high['approval_rate'])} for {high['group']!r}; parity ratio "
                f"{_fmt(ratio)} ({verdict})"
            )
            cf = a.counterfactual
            if cf is not None:
                lines.append(
                    f"{a.name}: changing only {a.column!r} moves the PD by "
                    f"{_fmt(cf['mean_abs_pd_shift'], 4)} on average and flips "
                    f"{_pct(cf['flip_rate'])} of the decisions at PD < {self.cutoff['pd']:.4g}"
                    + ("" if a.in_model else " (the model does not read the column)")
                )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the keys are documented in the module notes (``format_version`` 1)."""
        return {
            # first: a card that shows the start of the JSON (`dayzero card`) shows the verdict
            "summary": self.summary(),
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dayzero_version": self.dayzero_version,
            "created": self.created,
            "model": self.model,
            "data": self.data,
            "n": self.n,
            "default_rate": self.default_rate,
            "cutoff": self.cutoff,
            "bootstrap": self.bootstrap,
            "four_fifths": FOUR_FIFTHS,
            "attributes": [a.to_dict() for a in self.attributes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FairnessAudit:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        FairnessError
            ``data`` is not an audit of this format.
        """
        if data.get("format") != FORMAT:
            raise FairnessError(
                f"not a fairness audit (format {data.get('format')!r}, expected {FORMAT!r}); "
                "write one with `dayzero risk audit` or FairnessAudit.save"
            )
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise FairnessError(
                f"this audit has format_version {data['format_version']}, newer than this "
                f"dayzero reads ({FORMAT_VERSION}); upgrade dayzero"
            )
        return cls(
            n=int(data["n"]),
            default_rate=float(data["default_rate"]),
            cutoff=dict(data["cutoff"]),
            bootstrap=dict(data["bootstrap"]),
            attributes=[AttributeAudit.from_dict(a) for a in data["attributes"]],
            model=dict(data.get("model") or {}),
            data=data.get("data"),
            created=str(data.get("created", "")),
            dayzero_version=str(data.get("dayzero_version", "unknown")),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        """The audit as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1, default=_json_default, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def save(self, folder: str | Path) -> Path:
        """Write ``fairness_audit.json`` into ``folder`` (a saved model's folder); returns it."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FairnessError(f"{folder} is not a folder; save the audit next to a saved model")
        path = folder / AUDIT_FILE
        self.to_json(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FairnessAudit:
        """Read an audit from a JSON file or from a folder holding ``fairness_audit.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / AUDIT_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FairnessError(f"{path} cannot be read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise FairnessError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(document, dict):
            raise FairnessError(f"{path} does not hold a fairness audit (an object)")
        try:
            return cls.from_dict(document)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, FairnessError):
                raise FairnessError(f"{path}: {exc}") from None
            raise FairnessError(f"{path} is not a complete fairness audit ({exc!r})") from None

    def to_frame(self, kind: str = "groups") -> pd.DataFrame:
        """The audit as a table.

        Parameters
        ----------
        kind : {"groups", "gaps", "counterfactual"}
            ``"groups"``: one row per attribute and group, each metric with ``_low`` and
            ``_high`` columns; ``"gaps"``: one row per attribute and between-group measure
            (``value``, ``low``, ``high``, ``flag``); ``"counterfactual"``: one row per
            attribute and pair of groups (from -> to).
        """
        rows: list[dict[str, Any]] = []
        for a in self.attributes:
            if kind == "groups":
                for g in a.groups:
                    row = {"attribute": a.name, "group": g["group"], "n": g["n"]}
                    row["share"] = g["share"]
                    for metric in GROUP_METRICS:
                        e = g[metric]
                        row.update({metric: e.value, f"{metric}_low": e.low})
                        row[f"{metric}_high"] = e.high
                    rows.append(row)
            elif kind == "gaps":
                for metric, e in a.gaps.items():
                    flag = a.four_fifths_flag if metric == "demographic_parity_ratio" else None
                    rows.append(
                        {"attribute": a.name, "metric": metric, **e._asdict(), "flag": flag}
                    )
            elif kind == "counterfactual":
                for pair in (a.counterfactual or {}).get("pairs", []):
                    rows.append({"attribute": a.name, **pair})
            else:
                raise ValueError(f"kind must be 'groups', 'gaps' or 'counterfactual', got {kind!r}")
        return pd.DataFrame(rows)

    def to_html(self) -> str:
        """An HTML fragment (``<section>``) for a report: summary, per-group and gap tables,
        and the counterfactual test (the risk report includes it)."""
        e = html.escape
        parts = [
            '<section class="fairness"><h2>Fairness audit</h2>',
            f"<p>{self.n} applicants, default rate {self.default_rate:.3f}; approved when PD &lt; "
            f"{self.cutoff['pd']:.4g} (approval rate {self.cutoff['approval_rate']:.3f}, "
            f"cut-off from {e(str(self.cutoff['chosen_by']))}). Intervals: "
            f"{self.bootstrap['confidence']:.0%} percentile bootstrap, "
            f"{self.bootstrap['n_resamples']} resamples within groups, seed "
            f"{self.bootstrap['random_state']}.</p>",
            "<ul>" + "".join(f"<li>{e(line)}</li>" for line in self.summary()) + "</ul>",
        ]
        for a in self.attributes:
            parts.append(
                f"<h3>{e(a.name)} (column {e(a.column)}"
                + ("" if a.in_model else ", not read by the model")
                + ")</h3>"
            )
            header = ["group", "n", *GROUP_METRICS]
            body = []
            for g in a.groups:
                cells = [e(str(g["group"])), str(g["n"])]
                cells += [_fmt(g[m]) for m in GROUP_METRICS]
                body.append(cells)
            parts.append(_table(header, body))
            gap_rows = [[e(m), _fmt(v)] for m, v in a.gaps.items()]
            gap_rows.append(["four-fifths flag", "yes" if a.four_fifths_flag else "no"])
            parts.append(_table(["between groups", "value [interval]"], gap_rows))
            if a.left_out:
                left = ", ".join(f"{e(str(x['group']))} ({x['n']} rows)" for x in a.left_out)
                parts.append(f"<p>Left out (too few rows): {left}</p>")
            cf = a.counterfactual
            if cf is not None:
                pair_rows = [
                    [
                        e(str(p["from"])),
                        e(str(p["to"])),
                        e(str(p["to_value"])),
                        str(p["n"]),
                        f"{p['mean_pd_shift']:+.4f}",
                        f"{p['mean_abs_pd_shift']:.4f}",
                        f"{p['flip_rate']:.3f}",
                    ]
                    for p in cf["pairs"]
                ]
                parts.append(
                    "<p>Counterfactual: only the sensitive value changed.</p>"
                    + _table(
                        ["from", "to", "value set", "n", "PD shift", "|PD shift|", "flips"],
                        pair_rows,
                    )
                )
        parts.append("</section>")
        return "\n".join(parts)


# ----------------------------------------------------------------------------- the audit


def fairness_audit(
    scorer: Any,
    X: pd.DataFrame,
    y: Any,
    sensitive: Sequence[str | Sensitive] | str | Sensitive,
    cutoff: float | None = None,
    *,
    approval_rate: float | None = None,
    counterfactual: bool = True,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    calibration_bins: int = 10,
    min_group_size: int = 5,
    random_state: int = 0,
    data: Mapping[str, Any] | None = None,
) -> FairnessAudit:
    """Audit a fitted risk model's decisions per group of one or more sensitive attributes.

    Parameters
    ----------
    scorer
        A fitted model with ``predict_pd`` (:class:`~dayzero.risk.scorer.RiskScorer`) or
        ``predict_proba`` (column 1 = default). A model with ``columns_`` is given only those
        columns of ``X``, so ``X`` may hold sensitive columns the model does not read.
    X : pandas.DataFrame
        Labelled applicants (the test part, never the training rows, for an honest audit).
    y : array-like
        Their outcomes: the model's labels (``positive_label_`` = default) or 0/1, 1 = default.
    sensitive : str, Sensitive or a sequence of them
        The sensitive attributes; a plain column name is ``Sensitive(column)``.
    cutoff : float, optional
        Approve when PD < ``cutoff``.
    approval_rate : float, optional
        Instead of ``cutoff``: approve this share of the audited applicants, lowest PD first
        (the cut-off half-way between the last PD approved and the next). With neither, the
        approval rate is the share of goods in ``y``.
    counterfactual : bool, default True
        Run the counterfactual flip test (one more scoring of the rows per other group).
    n_resamples, confidence, random_state
        Percentile bootstrap: resamples, two-sided level, seed.
    calibration_bins : int, default 10
        Equal-width PD bins of the expected calibration error.
    min_group_size : int, default 5
        Groups with fewer audited rows are left out of the comparison (listed in
        ``left_out``): their rates would be noise.
    data : mapping, optional
        What was audited, kept in the audit as it is (e.g. ``{"file": ..., "target": ...}``).

    Returns
    -------
    FairnessAudit

    Raises
    ------
    FairnessError
        A sensitive column that ``X`` lacks, one with fewer than two groups (of at least
        ``min_group_size`` rows), ``bins`` on a non-numeric column, a ``groups`` mapping that
        misses a value, both ``cutoff`` and ``approval_rate``, labels that are not binary.

    Examples
    --------
    >>> audit = fairness_audit(model, X_test, y_test, ["age"], cutoff=0.3)  # doctest: +SKIP
    >>> audit["sex"].four_fifths_flag, audit.to_frame()  # doctest: +SKIP
    >>> audit.save(model_dir)  # fairness_audit.json beside the model  # doctest: +SKIP
    """
    from dayzero.core.artifact import dayzero_version

    if not isinstance(X, pd.DataFrame):
        raise FairnessError("X must be a pandas DataFrame holding the sensitive columns")
    frame = X.reset_index(drop=True)
    if len(frame) < 2:
        raise FairnessError(f"X has {len(frame)} rows; an audit needs labelled applicants")
    specs = _specs(sensitive)
    for spec in specs:
        if spec.column not in frame.columns:
            raise FairnessError(
                f"sensitive column {spec.column!r} is not in X; its columns: "
                f"{list(map(str, frame.columns))}; name one of them (the column may be left out "
                "of the model, but X must hold it)"
            )
    if len({s.label for s in specs}) < len(specs):
        raise FairnessError("two sensitive attributes have the same name; give each a name=")
    if not 0.0 < confidence < 1.0:
        raise FairnessError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise FairnessError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    size_ok = isinstance(min_group_size, int) and not isinstance(min_group_size, bool)
    if not size_ok or min_group_size < 2:
        raise FairnessError(f"min_group_size must be an integer >= 2, got {min_group_size!r}")
    default = _default_flags(scorer, y, len(frame))
    p = _predict(scorer, frame)
    cut = _cutoff(p, default, cutoff, approval_rate)
    approved = p < cut["pd"]
    cut["approval_rate"] = float(approved.mean())
    rng = np.random.default_rng(random_state)
    features = _model_columns(scorer)
    attributes = []
    for spec in specs:
        labels, grouping, representative = _group_labels(spec, frame[spec.column])
        counts = pd.Series(labels).value_counts()
        kept = [g for g in _ordered(labels, grouping) if counts[g] >= min_group_size]
        left_out = [
            {"group": g, "n": int(counts[g]), "why": f"fewer than {min_group_size} rows"}
            for g in _ordered(labels, grouping)
            if g not in kept
        ]
        if len(kept) < 2:
            shown = {str(g): int(c) for g, c in counts.items()}
            raise FairnessError(
                f"sensitive column {spec.column!r} has {len(kept)} group(s) of at least "
                f"{min_group_size} rows among these {len(frame)} applicants ({shown}): nothing "
                "to compare; audit more rows, merge groups (groups=... / --groups FILE), band "
                "a numeric column (bins=... / --bins COL=EDGES) or name another column"
            )
        member = np.isin(labels, kept)
        fl_truth, fl_pred = (~default[member]).astype(int), approved[member].astype(int)
        by_group = labels[member]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a group without goods or bads: NaN, said below
            points = {
                "demographic_parity_difference": fl.demographic_parity_difference(
                    fl_truth, fl_pred, sensitive_features=by_group
                ),
                "demographic_parity_ratio": fl.demographic_parity_ratio(
                    fl_truth, fl_pred, sensitive_features=by_group
                ),
                "equal_opportunity_difference": fl.equal_opportunity_difference(
                    fl_truth, fl_pred, sensitive_features=by_group
                ),
                "equalized_odds_difference": fl.equalized_odds_difference(
                    fl_truth, fl_pred, sensitive_features=by_group
                ),
            }
        index = [np.flatnonzero(labels == g) for g in kept]
        table = _group_table(index, default, approved, p, calibration_bins)
        pairs = _compared_pairs(table)
        point_stats = _with_gaps(table, pairs)
        low, high = _bootstrap(
            lambda *idx, pairs=pairs: _with_gaps(
                _group_table(idx, default, approved, p, calibration_bins), pairs
            ),
            index,
            n_resamples,
            confidence,
            rng,
        )
        n_metrics = len(GROUP_METRICS)
        groups = []
        for i, g in enumerate(kept):
            row: dict[str, Any] = {
                "group": g,
                "n": int(counts[g]),
                "share": float(counts[g] / len(frame)),
                "counterfactual_value": _scalar(representative.get(g)),
            }
            for j, metric in enumerate(GROUP_METRICS):
                k = i * n_metrics + j
                row[metric] = Estimate(float(point_stats[k]), float(low[k]), float(high[k]))
            groups.append(row)
        offset = len(kept) * n_metrics
        gaps, notes = {}, []
        for j, metric in enumerate(GAPS):
            value = float(points[metric])
            ours = float(point_stats[offset + j])
            if not np.isclose(value, ours, equal_nan=True):
                # fairlearn counts the rate of a group without goods (or bads) as 0; the
                # intervals leave such a group out, so the point does too.
                notes.append(
                    f"{metric}: {ours:.4g} leaving out groups without goods or bads "
                    f"(fairlearn, counting their rate as 0: {value:.4g})"
                )
                value = ours
            gaps[metric] = Estimate(value, float(low[offset + j]), float(high[offset + j]))
        for g, idx in zip(groups, index, strict=True):
            if not np.isfinite(g["auc"].value):
                notes.append(f"group {g['group']!r} has one outcome only: no AUC")
            n_bads = int(default[idx].sum())
            counts_of = {"goods": len(idx) - n_bads, "bads": n_bads}
            few = [f"{k} {name}" for name, k in counts_of.items() if k < FEW_OUTCOMES]
            if few:
                # A rate of 0/4 or 4/4 resamples to itself: the percentile interval collapses.
                notes.append(
                    f"group {g['group']!r} has only {' and '.join(few)}: its rates among them "
                    "(equal opportunity, equalised odds, AUC) and their intervals are unreliable"
                )
        in_model = features is None or spec.column in features
        attribute = AttributeAudit(
            name=spec.label,
            column=spec.column,
            in_model=in_model,
            grouping=grouping,
            groups=groups,
            gaps=gaps,
            left_out=left_out,
            notes=notes,
            compared={
                metric: {"metric": GROUP_METRICS[c], "low": kept[lo], "high": kept[hi]}
                for metric, (c, lo, hi) in pairs.items()
            },
        )
        if counterfactual:
            attribute.counterfactual = _counterfactual(
                scorer, frame, spec.column, labels, kept, representative, p, cut["pd"],
                n_resamples, confidence, rng,
            )  # fmt: skip
        attributes.append(attribute)
    return FairnessAudit(
        n=len(frame),
        default_rate=float(default.mean()),
        cutoff=cut,
        bootstrap={
            "method": "percentile (scipy.stats.bootstrap), rows resampled within each group; "
            "the cut-off held fixed",
            "n_resamples": n_resamples,
            "confidence": confidence,
            "random_state": random_state,
        },
        attributes=attributes,
        model=_describe(scorer),
        data=None if data is None else json.loads(json.dumps(dict(data), default=str)),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        dayzero_version=dayzero_version(),
    )


# ----------------------------------------------------------------------------- helpers


def _specs(sensitive: Any) -> list[Sensitive]:
    if isinstance(sensitive, str | Sensitive):
        sensitive = [sensitive]
    specs = []
    for item in sensitive:
        if isinstance(item, Sensitive):
            specs.append(item)
        elif isinstance(item, str):
            specs.append(Sensitive(item))
        else:
            raise FairnessError(
                f"sensitive entries are column names or Sensitive(...), got {item!r}"
            )
    if not specs:
        raise FairnessError("name at least one sensitive column")
    return specs


def _model_columns(scorer: Any) -> list[str] | None:
    columns = getattr(scorer, "columns_", None)
    return None if columns is None else [str(c) for c in columns]


def _predict(scorer: Any, frame: pd.DataFrame) -> np.ndarray:
    columns = _model_columns(scorer)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise FairnessError(
                f"X lacks columns the model reads: {missing}; pass the applicants with every "
                "column the model was fitted on"
            )
        frame = frame[columns]
    if hasattr(scorer, "predict_pd"):
        p = np.asarray(scorer.predict_pd(frame), dtype=np.float64)
    else:
        p = np.asarray(scorer.predict_proba(frame), dtype=np.float64)[:, 1]
    if not np.isfinite(p).all():
        raise FairnessError("the model returned a non-finite probability of default")
    return p


def _default_flags(scorer: Any, y: Any, n: int) -> np.ndarray:
    values = pd.Series(np.asarray(y).ravel())
    if len(values) != n:
        raise FairnessError(f"y has {len(values)} labels for {n} rows of X")
    classes = getattr(scorer, "classes_", None)
    positive = getattr(scorer, "positive_label_", None)
    if classes is not None and positive is not None:
        from dayzero.risk.target import TargetError, default_flags

        try:
            return default_flags(values.rename("y"), list(classes), positive)
        except TargetError as exc:
            raise FairnessError(str(exc)) from None
    try:
        numbers = values.astype(float).to_numpy()
    except (TypeError, ValueError):
        numbers = np.array([np.nan])
    if not np.isin(numbers, (0.0, 1.0)).all():
        raise FairnessError("y must be 0/1 (1 = default) for a model without positive_label_")
    return numbers == 1.0


def _cutoff(
    p: np.ndarray, default: np.ndarray, cutoff: float | None, approval_rate: float | None
) -> dict[str, Any]:
    rule = "approved when PD < pd"
    if cutoff is not None and approval_rate is not None:
        raise FairnessError("give cutoff (a PD) or approval_rate, not both")
    if cutoff is not None:
        if not 0.0 < float(cutoff) <= 1.0:
            raise FairnessError(f"cutoff is a probability of default in (0, 1], got {cutoff!r}")
        return {"pd": float(cutoff), "rule": rule, "chosen_by": "pd"}
    chosen_by = "approval_rate"
    if approval_rate is None:
        approval_rate, chosen_by = float(1.0 - default.mean()), "default_rate"
    if not 0.0 < float(approval_rate) < 1.0:
        raise FairnessError(f"approval_rate must be in (0, 1), got {approval_rate!r}")
    ordered = np.sort(p)
    k = min(max(round(float(approval_rate) * len(p)), 1), len(p) - 1)
    return {
        "pd": float((ordered[k - 1] + ordered[k]) / 2),
        "rule": rule,
        "chosen_by": chosen_by,
        "target_approval_rate": float(approval_rate),
    }


def _group_labels(spec: Sensitive, series: pd.Series) -> tuple[np.ndarray, dict, dict]:
    """Group label per row, the grouping description and each group's counterfactual value."""
    missing = series.isna().to_numpy() | series.astype(str).str.strip().isin(["", "?"]).to_numpy()
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    labels = np.empty(len(series), dtype=object)
    representative: dict[str, Any] = {}
    if spec.bins is not None and not numeric:
        raise FairnessError(
            f"sensitive column {spec.column!r} is not numeric: bins= bands numbers only; "
            "group its values with groups= (--groups FILE) instead"
        )
    if numeric and spec.groups is None:
        values = series.to_numpy(dtype=np.float64)
        present = values[~missing]
        bins = spec.bins
        if bins is None and len(np.unique(present)) <= MAX_VALUES:
            grouping: dict[str, Any] = {"kind": "values"}
            for v in np.unique(present):
                labels[(values == v) & ~missing] = _number(v)
                representative[_number(v)] = _native(series, v)
        else:
            edges = _edges(spec, present, DEFAULT_BANDS if bins is None else bins)
            grouping = {"kind": "bands", "edges": [float(e) for e in edges]}
            names = _band_names(edges)
            band = np.searchsorted(edges, values, side="right")
            for i, name in enumerate(names):
                rows = (band == i) & ~missing
                labels[rows] = name
                if rows.any():
                    median = float(np.median(values[rows]))
                    representative[name] = _native(series, median)
            grouping["order"] = names
    else:
        grouping = {"kind": "values" if spec.groups is None else "mapping"}
        raw = series.to_numpy(dtype=object)
        for i, value in enumerate(raw):
            if missing[i]:
                continue
            labels[i] = str(value) if spec.groups is None else _mapped(spec, value)
        for group in pd.unique(labels[~missing]):
            counts = pd.Series(raw[(labels == group) & ~missing]).value_counts()
            top = counts[counts == counts.max()].index
            representative[group] = sorted(top, key=str)[0]
    labels[missing] = MISSING
    if missing.any():
        representative[MISSING] = np.nan  # the counterfactual empties the value
    for group, value in (spec.values or {}).items():
        if group not in representative:
            raise FairnessError(
                f"values= names group {group!r} of {spec.column!r}, which is not among its "
                f"groups {sorted(representative)}"
            )
        representative[group] = value
    return labels.astype(str), grouping, representative


def _mapped(spec: Sensitive, value: Any) -> str:
    groups = spec.groups
    if callable(groups):
        return str(groups(value))
    if value in groups:
        return str(groups[value])
    if str(value) in groups:
        return str(groups[str(value)])
    raise FairnessError(
        f"groups= for {spec.column!r} has no group for the value {value!r}; map every value "
        "of the column to a group"
    )


def _edges(spec: Sensitive, present: np.ndarray, bins: Any) -> np.ndarray:
    if isinstance(bins, bool):
        raise FairnessError(f"bins for {spec.column!r} must be an int or edges, got {bins!r}")
    if isinstance(bins, int):
        if bins < 2:
            raise FairnessError(f"bins for {spec.column!r} must be at least 2 bands, got {bins}")
        edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
        if np.allclose(edges, np.round(edges)):
            edges = np.unique(np.round(edges))
        return edges
    try:
        edges = np.asarray(list(bins), dtype=np.float64)
    except (TypeError, ValueError):
        raise FairnessError(
            f"bins for {spec.column!r} must be an int or a list of numbers, got {bins!r}"
        ) from None
    if len(edges) == 0 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
        raise FairnessError(
            f"bins for {spec.column!r} must be increasing finite edges, e.g. [25, 35], "
            f"got {list(bins)!r}"
        )
    return edges


def _band_names(edges: np.ndarray) -> list[str]:
    e = [_number(x) for x in edges]
    names = [f"< {e[0]}"]
    names += [f"[{a}, {b})" for a, b in itertools.pairwise(e)]
    names.append(f">= {e[-1]}")
    return names


def _ordered(labels: np.ndarray, grouping: Mapping[str, Any]) -> list[str]:
    present = set(labels.tolist())
    if "order" in grouping:
        order = [g for g in grouping["order"] if g in present]
    else:
        order = sorted(present - {MISSING}, key=_sort_key)
    return order + ([MISSING] if MISSING in present else [])


def _sort_key(text: str) -> tuple[int, float | str]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def _group_table(
    index: Sequence[np.ndarray],
    default: np.ndarray,
    approved: np.ndarray,
    p: np.ndarray,
    bins: int,
) -> np.ndarray:
    """One row per group (the rows ``index`` names), one column per ``GROUP_METRICS``."""
    rows = []
    for idx in index:
        d, a, q = default[idx], approved[idx], p[idx]
        goods, bads = ~d, d
        both = goods.any() and bads.any()
        rows.append(
            [
                a.mean(),
                d.mean(),
                q.mean(),
                q.mean() - d.mean(),
                expected_calibration_error(d.astype(float), q, n_bins=bins),
                _auc(d, q) if both else np.nan,
                a[goods].mean() if goods.any() else np.nan,
                a[bads].mean() if bads.any() else np.nan,
            ]
        )
    return np.asarray(rows, dtype=np.float64)


_RATE, _GOODS, _BADS = (GROUP_METRICS.index(m) for m in ("approval_rate", "approval_rate_goods",
                                                          "approval_rate_bads"))  # fmt: skip


def _auc(default: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U with mid-ranks (what ``sklearn.metrics.roc_auc_score``
    returns); sklearn's input checks cost ~6 ms a call, run for every group of every resample."""
    ranks = stats.rankdata(p)
    n_bad = int(default.sum())
    n_good = len(default) - n_bad
    return float((ranks[default].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))


def _extremes(values: np.ndarray) -> tuple[int, int]:
    """Positions of the lowest and the highest defined value."""
    defined = np.where(np.isfinite(values), values, np.nan)
    if not np.isfinite(defined).any():
        return 0, 0
    return int(np.nanargmin(defined)), int(np.nanargmax(defined))


def _compared_pairs(table: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """The (metric column, lowest group, highest group) each gap compares on the audited rows.

    The bootstrap keeps these pairs fixed: recomputing max - min on every resample would bias
    the interval away from parity (a max - min of noisy rates is never below 0, a min / max
    never above 1), so parity could never lie inside it.
    """
    rate = _extremes(table[:, _RATE])
    goods = _extremes(table[:, _GOODS])
    bads = _extremes(table[:, _BADS])
    gap_goods = table[goods[1], _GOODS] - table[goods[0], _GOODS]
    gap_bads = table[bads[1], _BADS] - table[bads[0], _BADS]
    odds = (_BADS, *bads) if np.nan_to_num(gap_bads) > np.nan_to_num(gap_goods) else (
        _GOODS, *goods)  # fmt: skip
    return {
        "demographic_parity_difference": (_RATE, *rate),
        "demographic_parity_ratio": (_RATE, *rate),
        "equal_opportunity_difference": (_GOODS, *goods),
        "equalized_odds_difference": odds,
    }


def _with_gaps(table: np.ndarray, pairs: Mapping[str, tuple[int, int, int]]) -> np.ndarray:
    """The table flattened, then the gaps (``GAPS`` order) between the fixed pairs."""
    gaps = []
    for metric in GAPS:
        column, low, high = pairs[metric]
        a, b = table[low, column], table[high, column]
        if metric == "demographic_parity_ratio":
            gaps.append(a / b if b > 0 else np.nan)
        else:
            gaps.append(b - a)
    return np.concatenate([table.ravel(), gaps])


def _bootstrap(
    statistic: Callable[..., np.ndarray],
    samples: Sequence[np.ndarray],
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of every entry of ``statistic(*samples)``, each sample (a group's
    row indices, at least two) resampled on its own; NaN resamples (one class in a resampled
    group) are skipped per entry."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN entries are handled below
        result = stats.bootstrap(
            tuple(samples),
            statistic,
            paired=False,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            **{_SEED: rng},
        )
        distribution = np.atleast_2d(np.asarray(result.bootstrap_distribution, np.float64))
        tail = (1.0 - confidence) / 2.0
        low = np.nanquantile(distribution, tail, axis=1)
        high = np.nanquantile(distribution, 1.0 - tail, axis=1)
    return low, high


def _counterfactual(
    scorer: Any,
    frame: pd.DataFrame,
    column: str,
    labels: np.ndarray,
    kept: list[str],
    representative: Mapping[str, Any],
    p: np.ndarray,
    cut: float,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Set only ``column`` to each other group's value, score again, compare."""
    rows = np.flatnonzero(np.isin(labels, kept))
    shift_sum = np.zeros(len(frame))
    flip_sum = np.zeros(len(frame))
    any_flip = np.zeros(len(frame), dtype=bool)
    max_shift = 0.0
    pairs = []
    for target in kept:
        value = representative[target]
        moved = rows[labels[rows] != target]
        changed = frame.iloc[moved].copy()
        if pd.api.types.is_integer_dtype(changed[column]) and not float(value).is_integer():
            changed[column] = changed[column].astype(np.float64)
        changed[column] = value
        new = _predict(scorer, changed)
        shift = new - p[moved]
        flip = (new < cut) != (p[moved] < cut)
        shift_sum[moved] += np.abs(shift)
        flip_sum[moved] += flip
        any_flip[moved] |= flip
        max_shift = max(max_shift, float(np.abs(shift).max()))
        for source in kept:
            if source == target:
                continue
            part = labels[moved] == source
            was = p[moved][part] < cut
            pairs.append(
                {
                    "from": source,
                    "to": target,
                    "to_value": _scalar(value),
                    "n": int(part.sum()),
                    "mean_pd_shift": float(shift[part].mean()),
                    "mean_abs_pd_shift": float(np.abs(shift[part]).mean()),
                    "flip_rate": float(flip[part].mean()),
                    "approved_to_declined": float((flip[part] & was).mean()),
                    "declined_to_approved": float((flip[part] & ~was).mean()),
                }
            )
    per_row_shift = shift_sum[rows] / (len(kept) - 1)
    per_row_flip = flip_sum[rows] / (len(kept) - 1)
    point = np.array([per_row_shift.mean(), per_row_flip.mean()])
    if len(rows) >= 2:
        low, high = _bootstrap(
            lambda i: np.array([per_row_shift[i].mean(), per_row_flip[i].mean()]),
            [np.arange(len(rows))],
            n_resamples,
            confidence,
            rng,
        )
    else:
        low, high = point, point
    return {
        "pairs": pairs,
        "mean_abs_pd_shift": Estimate(float(point[0]), float(low[0]), float(high[0])),
        "flip_rate": Estimate(float(point[1]), float(low[1]), float(high[1])),
        "max_abs_pd_shift": max_shift,
        "rows_with_a_flip": float(any_flip[rows].mean()),
    }


def _describe(scorer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "class": type(scorer).__name__,
        "representation": getattr(scorer, "representation_", None),
        "head": None,
    }
    if hasattr(scorer, "describe"):
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            out["head"] = scorer.describe().get("head")
    return out


def _native(series: pd.Series, value: float) -> Any:
    """A number in the column's own kind: an int for an integer column when it is whole."""
    if pd.api.types.is_integer_dtype(series) and float(value).is_integer():
        return int(value)
    return float(value)


def _number(value: float) -> str:
    return f"{float(value):g}"


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN: an emptied value
    return value


def _num(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _fmt(e: Estimate, digits: int = 3) -> str:
    if not np.isfinite(e.value):
        return "n/a"
    if not (np.isfinite(e.low) and np.isfinite(e.high)):
        return f"{e.value:.{digits}f}"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _pct(e: Estimate) -> str:
    if not np.isfinite(e.value):
        return "n/a"
    return f"{e.value:.1%} [{e.low:.1%}, {e.high:.1%}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return str(value)


__all__ = [
    "AUDIT_FILE",
    "FOUR_FIFTHS",
    "AttributeAudit",
    "Estimate",
    "FairnessAudit",
    "FairnessError",
    "Sensitive",
    "fairness_audit",
]
