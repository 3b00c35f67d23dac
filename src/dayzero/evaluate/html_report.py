"""Evaluation report: one self-contained HTML page per evaluation run (issue 13 item 3).

:func:`build_evaluation_report` takes the :class:`~dayzero.evaluate.runner.EvaluationResult` of
every model of a run and, when given, the split they were measured on and the fitted models;
:meth:`EvaluationReport.to_html` writes the page (tables + PNG plots embedded as base64, drawn
with matplotlib's ``Agg`` backend; no external file, script or style sheet).

What the page holds:

* **every segment, every model**: per-user means with their 95% bootstrap intervals over users;
* **references next to every metric**: a constant predictor (``global-mean``) and
  ``popularity``, taken from the run when it had them, else fitted on the same ``split.train``
  and scored on the same segments. A rating metric on which no model of the run beats the
  constant (its interval holds the constant's mean, or it is worse) is marked *not
  informative*: on rating data a constant prediction ranks each user's query items in input
  order and already scores a high nDCG, and MAE / RMSE that a constant matches say nothing about
  the model;
* **warm-up curve** when new users reveal interactions (``kshot`` protocol, or ``support_k``):
  the new-user segments scored again with only each user's first ``n`` revealed interactions
  (``n = 0 ... k``), on the same users and the same query for every ``n``;
* **before vs after fine-tuning** when ``fine_tuned`` results are given (the same models after
  e.g. :meth:`~dayzero.recommend.two_tower.TwoTowerRecommender.fine_tune`);
* **coverage and popularity of what is recommended**: each model's top-``k`` lists for the test
  users through :func:`dayzero.evaluate.exposure.exposure_audit` (popularity of the recommended
  items against the users' own history and the catalogue, share of new items, Gini of exposure,
  coverage, genre miscalibration when the items have a multi-valued field).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.split import NEW_BOTH, NEW_ITEMS, NEW_USERS, SEGMENTS, WARM, ColdStartSplit
from dayzero.core.split import Segment as SplitSegment
from dayzero.evaluate.exposure import exposure_audit, exposure_counts
from dayzero.evaluate.runner import EvaluationResult, evaluate_segment, evaluate_split

#: Registered names of the two references.
CONSTANT, POPULARITY = "global-mean", "popularity"
REFERENCE_LABELS = {CONSTANT: "constant (global mean)", POPULARITY: "popularity"}
LOWER_IS_BETTER = ("mae", "rmse")
#: Revealed-interaction counts of the warm-up curve (those up to the split's ``k``, and ``k``).
WARMUP_POINTS = (0, 1, 2, 3, 5, 10, 20, 50)
SEGMENT_NOTES = {
    WARM: "users and items seen in training",
    NEW_USERS: "users with no training interaction, items seen in training",
    NEW_ITEMS: "users seen in training, items with no training interaction",
    NEW_BOTH: "neither the user nor the item seen in training",
}


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (MAE, RMSE)."""
    return metric.split("@")[0] in LOWER_IS_BETTER


def is_rating_metric(metric: str) -> bool:
    """MAE, RMSE and the nDCG of each user's query items ranked by predicted value."""
    return metric.split("@")[0] in ("mae", "rmse", "ndcg", "metahin_ndcg")


def beats(value: float, ci: Sequence[float] | None, reference: float, lower_better: bool) -> bool:
    """Whether a model's mean is better than ``reference`` with ``reference`` outside its
    interval (no interval: strictly better)."""
    if not np.isfinite(value) or not np.isfinite(reference):
        return False
    if ci is None:
        return value < reference if lower_better else value > reference
    low, high = ci
    return high < reference if lower_better else low > reference


@dataclass
class EvaluationReport:
    """The numbers of an evaluation report; :meth:`to_html` draws and writes the page.

    Attributes
    ----------
    title, protocol, task, k
        What was measured.
    results
        The run's results, one per model.
    references
        ``{"global-mean": result, "popularity": result}`` (those that could be had).
    reference_source
        Per reference: ``"run"`` (a model of the run) or ``"fitted"`` (fitted here on
        ``split.train``).
    informative
        ``{segment: {metric: (informative, reason)}}`` for the rating metrics.
    warmup
        ``{model: {segment: [{"revealed", "users", "metrics", "ci"}, ...]}}``.
    fine_tuning
        ``{model: (before, after)}`` results.
    exposure
        ``{model: audit}`` (:func:`~dayzero.evaluate.exposure.exposure_audit`), or
        ``{"error": message}`` for a model whose lists could not be had.
    split_summary
        :meth:`ColdStartSplit.summary` of the split, when given.
    notes
        Lines shown at the end of the page (what was not computed, and why).
    """

    title: str
    protocol: str
    task: str
    k: int
    results: list[EvaluationResult]
    references: dict[str, EvaluationResult] = field(default_factory=dict)
    reference_source: dict[str, str] = field(default_factory=dict)
    informative: dict[str, dict[str, tuple[bool, str]]] = field(default_factory=dict)
    warmup: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    fine_tuning: dict[str, tuple[EvaluationResult, EvaluationResult]] = field(default_factory=dict)
    exposure: dict[str, dict[str, Any]] = field(default_factory=dict)
    split_summary: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    exposure_curves: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ shape

    @property
    def segments(self) -> list[str]:
        """Segment names in canonical order (warm, new users, new items, both, then others)."""
        names: list[str] = []
        for result in [*self.results, *self.references.values()]:
            names.extend(n for n in result.segments if n not in names)
        known = [s for s in SEGMENTS if s in names]
        return known + [n for n in names if n not in known]

    @property
    def metrics(self) -> list[str]:
        """Metric names in the order the runner reports them."""
        names: list[str] = []
        for result in [*self.results, *self.references.values()]:
            for seg in result.segments.values():
                names.extend(m for m in seg.metrics if m not in names)
        return names

    @property
    def models(self) -> list[str]:
        """Names of the run's models, in the run's order."""
        return [r.model for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (no plots)."""

        def audit(values: Mapping[str, Any]) -> dict[str, Any]:
            return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

        return {
            "title": self.title,
            "protocol": self.protocol,
            "task": self.task,
            "k": self.k,
            "results": [r.to_dict() for r in self.results],
            "references": {k: v.to_dict() for k, v in self.references.items()},
            "reference_source": self.reference_source,
            "informative": {
                seg: {m: {"informative": ok, "reason": why} for m, (ok, why) in flags.items()}
                for seg, flags in self.informative.items()
            },
            "warmup": self.warmup,
            "fine_tuning": {
                name: {"before": b.to_dict(), "after": a.to_dict()}
                for name, (b, a) in self.fine_tuning.items()
            },
            "exposure": {name: audit(v) for name, v in self.exposure.items()},
            "split": self.split_summary,
            "notes": self.notes,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The report's numbers as JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    # ------------------------------------------------------------------ plots

    def plots(self) -> dict[str, str]:
        """Title -> base64 PNG: metrics by segment, warm-up curve, fine-tuning, exposure."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figures: dict[str, str] = {}

        def png(fig) -> str:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
            plt.close(fig)
            return base64.b64encode(buffer.getvalue()).decode("ascii")

        segments, metrics = self.segments, self.metrics
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        if metrics and segments:
            cols = min(3, len(metrics))
            rows = -(-len(metrics) // cols)
            fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
            x = np.arange(len(segments))
            width = 0.7 / max(len(self.results), 1)
            for ax, metric in zip(axes.ravel(), metrics, strict=False):
                for n, result in enumerate(self.results):
                    xs, ys, err = [], [], [[], []]
                    for s, name in enumerate(segments):
                        seg = result.segments.get(name)
                        if seg is None or metric not in seg.metrics:
                            continue
                        value = seg.metrics[metric]
                        low, high = seg.ci.get(metric, (value, value))
                        xs.append(s - 0.35 + width * (n + 0.5))
                        ys.append(value)
                        err[0].append(value - low)
                        err[1].append(high - value)
                    ax.errorbar(
                        xs, ys, yerr=err, fmt="o", color=colours[n % len(colours)],
                        label=result.model, capsize=3,
                    )  # fmt: skip
                for name, style in ((CONSTANT, "--"), (POPULARITY, ":")):
                    ref = self.references.get(name)
                    if ref is None or _reference_skipped(name, metric, self.task):
                        continue
                    for s, seg_name in enumerate(segments):
                        seg = ref.segments.get(seg_name)
                        if seg is not None and metric in seg.metrics:
                            ax.hlines(
                                seg.metrics[metric], s - 0.4, s + 0.4, colors="grey",
                                linestyles=style,
                                label=REFERENCE_LABELS[name] if s == 0 else None,
                            )  # fmt: skip
                ax.set_xticks(x, [s.replace("_", " ") for s in segments], fontsize=8)
                arrow = "lower is better" if lower_is_better(metric) else "higher is better"
                ax.set_title(f"{metric} ({arrow})", fontsize=10)
            for ax in axes.ravel()[len(metrics) :]:
                ax.axis("off")
            handles, labels = _legend(axes.ravel())
            fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
                       bbox_to_anchor=(0.5, -0.02 - 0.02 * rows))  # fmt: skip
            fig.tight_layout()
            figures["Metrics by segment (95% intervals; grey lines: references)"] = png(fig)

        if self.warmup:
            curve_segments = sorted(
                {s for per in self.warmup.values() for s in per},
                key=lambda s: SEGMENTS.index(s) if s in SEGMENTS else len(SEGMENTS),
            )
            shown = _warmup_metrics(self.task, self.k, metrics)
            fig, axes = plt.subplots(
                len(curve_segments), len(shown),
                figsize=(4.2 * len(shown), 3.3 * len(curve_segments)), squeeze=False,
            )  # fmt: skip
            for r, seg_name in enumerate(curve_segments):
                for c, metric in enumerate(shown):
                    ax = axes[r, c]
                    for n, (model, per) in enumerate(self.warmup.items()):
                        points = per.get(seg_name, [])
                        points = [p for p in points if metric in p["metrics"]]
                        if not points or _reference_skipped(model, metric, self.task):
                            continue
                        xs = [p["revealed"] for p in points]
                        ys = [p["metrics"][metric] for p in points]
                        lows = [
                            p["ci"].get(metric, (y, y))[0] for p, y in zip(points, ys, strict=True)
                        ]
                        highs = [
                            p["ci"].get(metric, (y, y))[1] for p, y in zip(points, ys, strict=True)
                        ]
                        ref = model in REFERENCE_LABELS and model not in self.models
                        style = ("--" if model == CONSTANT else ":") if ref else "-"
                        colour = "grey" if ref else colours[n % len(colours)]
                        label = REFERENCE_LABELS[model] if ref else model
                        ax.plot(xs, ys, style, marker="o", color=colour, label=label)
                        if not ref:
                            ax.fill_between(xs, lows, highs, color=colour, alpha=0.15)
                    ax.set(xlabel="interactions revealed per new user", ylabel=metric)
                    ax.set_title(seg_name.replace("_", " "), fontsize=10)
            handles, labels = _legend(axes.ravel())
            fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
                       bbox_to_anchor=(0.5, -0.04 - 0.02 * len(curve_segments)))  # fmt: skip
            fig.tight_layout()
            figures["Warm-up curve (metric vs revealed interactions)"] = png(fig)

        if self.fine_tuning:
            shown = _warmup_metrics(self.task, self.k, metrics)
            names = list(self.fine_tuning)
            fig, axes = plt.subplots(
                len(names), len(shown), figsize=(4.2 * len(shown), 3.3 * len(names)),
                squeeze=False,
            )  # fmt: skip
            for r, name in enumerate(names):
                before, after = self.fine_tuning[name]
                segs = [s for s in segments if s in before.segments and s in after.segments]
                x = np.arange(len(segs))
                for c, metric in enumerate(shown):
                    ax = axes[r, c]
                    for offset, label, res in ((-0.12, "before", before), (0.12, "after", after)):
                        ys = [res.segments[s].metrics.get(metric, np.nan) for s in segs]
                        cis = [
                            res.segments[s].ci.get(metric, (y, y))
                            for s, y in zip(segs, ys, strict=True)
                        ]
                        err = [
                            [y - ci[0] for y, ci in zip(ys, cis, strict=True)],
                            [ci[1] - y for y, ci in zip(ys, cis, strict=True)],
                        ]
                        ax.errorbar(x + offset, ys, yerr=err, fmt="o", capsize=3, label=label)
                    ax.set_xticks(x, [s.replace("_", " ") for s in segs], fontsize=8)
                    ax.set_xlim(-0.5, len(segs) - 0.5)
                    arrow = "lower is better" if lower_is_better(metric) else "higher is better"
                    ax.set_title(f"{name}: {metric} ({arrow})", fontsize=10)
                    ax.legend(fontsize=8)
            fig.tight_layout()
            figures["Before vs after fine-tuning"] = png(fig)

        audits = {n: a for n, a in self.exposure.items() if "coverage" in a}
        if audits:
            fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
            for n, (name, audit) in enumerate(audits.items()):
                counts = self.exposure_curves.get(name)
                if counts is not None and counts.sum() > 0:
                    lorenz = np.r_[0, np.cumsum(np.sort(counts))] / counts.sum()
                    share = np.linspace(0, 1, len(lorenz))
                    label = name if name in self.models else REFERENCE_LABELS.get(name, name)
                    left.plot(share, lorenz, label=f"{label} (Gini {audit['gini_exposure']:.2f})",
                              color=colours[n % len(colours)])  # fmt: skip
                mean, low, high = audit["mean_popularity_recommended"]
                right.bar(n, mean, yerr=[[mean - low], [high - mean]], capsize=3,
                          color=colours[n % len(colours)])  # fmt: skip
            left.plot([0, 1], [0, 1], "--", color="grey", label="equal exposure")
            left.set(xlabel="share of catalogue (least exposed first)",
                     ylabel="share of top-k slots", title="Exposure (Lorenz curve)")  # fmt: skip
            left.legend(fontsize=7)
            first = next(iter(audits.values()))
            hist = first["mean_popularity_history"][0]
            right.axhline(hist, linestyle="--", color="grey", label="users' history")
            right.axhline(first["mean_popularity_catalogue"], linestyle=":", color="grey",
                          label="catalogue")  # fmt: skip
            names = [n if n in self.models else REFERENCE_LABELS.get(n, n) for n in audits]
            right.set_xticks(range(len(audits)), names, rotation=30, ha="right", fontsize=8)
            right.set(ylabel="training interactions per item",
                      title="Popularity of recommended items")  # fmt: skip
            right.legend(fontsize=7)
            fig.tight_layout()
            figures["Coverage and popularity of what is recommended"] = png(fig)
        return figures

    # ------------------------------------------------------------------ page

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML page to ``path`` (folders created); returns the path."""
        esc = html.escape
        parts = [f"<h1>{esc(self.title)}</h1>", self._summary_html()]
        parts.append(_LEGEND)
        if self.task == "ranking":
            parts.append(
                "<p>On top-k lists every item ties under a constant score, so the constant's list "
                "is the catalogue in id order: a floor that a model which ranks at all beats.</p>"
            )
        plots = self.plots()
        parts.append("<h2>Metrics by segment</h2>")
        for segment in self.segments:
            parts.append(self._segment_html(segment))
        parts.extend(_figure(t, b) for t, b in plots.items() if t.startswith("Metrics"))
        parts.append("<h2>Warm-up curve</h2>")
        if self.warmup:
            parts.append(self._warmup_html())
            parts.extend(_figure(t, b) for t, b in plots.items() if t.startswith("Warm-up"))
        else:
            parts.append(f"<p class='note'>{esc(self._why('warmup'))}</p>")
        if self.fine_tuning:
            parts.append("<h2>Before vs after fine-tuning</h2>")
            parts.append(self._fine_tuning_html())
            parts.extend(_figure(t, b) for t, b in plots.items() if t.startswith("Before"))
        parts.append("<h2>Coverage and popularity of what is recommended</h2>")
        if self.exposure:
            parts.append(self._exposure_html())
            parts.extend(_figure(t, b) for t, b in plots.items() if t.startswith("Coverage"))
        else:
            parts.append(f"<p class='note'>{esc(self._why('exposure'))}</p>")
        if self.notes:
            parts.append("<h2>Notes</h2><ul>")
            parts.extend(f"<li>{esc(n)}</li>" for n in self.notes)
            parts.append("</ul>")
        page = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{esc(self.title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(parts)
            + "\n</body></html>\n"
        )
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
        return out

    def _why(self, what: str) -> str:
        for note in self.notes:
            if note.startswith(f"{what}:"):
                return note.split(":", 1)[1].strip()
        return "not computed"

    def _summary_html(self) -> str:
        rows = {
            "protocol": self.protocol,
            "task": self.task,
            "cutoff k": self.k,
            "models": ", ".join(self.models),
            "references": ", ".join(
                f"{REFERENCE_LABELS[n]} ({self.reference_source.get(n, '?')})"
                for n in self.references
            )
            or "none",
        }
        if self.split_summary:
            rows["training interactions"] = f"{self.split_summary['train_interactions']:,}"
            params = self.split_summary.get("params") or {}
            if params:
                rows["split parameters"] = ", ".join(f"{k}={v}" for k, v in params.items())
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td class='l'>{html.escape(str(v))}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table>{body}</table>"

    def _segment_html(self, segment: str) -> str:
        esc = html.escape
        metrics = self.metrics
        flags = self.informative.get(segment, {})
        head = ["<th>model</th>", "<th>users</th>"]
        for metric in metrics:
            arrow = "&darr;" if lower_is_better(metric) else "&uarr;"
            ok, why = flags.get(metric, (True, ""))
            mark = "" if ok else "<br><span class='warn'>not informative</span>"
            title = f" title='{esc(why)}'" if why else ""
            head.append(f"<th{title}>{esc(metric)} {arrow}{mark}</th>")
        rows = []
        constant = _segment_of(self.references.get(CONSTANT), segment)
        popular = _segment_of(self.references.get(POPULARITY), segment)
        for result in self.results:
            seg = result.segments.get(segment)
            if seg is None:
                continue
            cells = [f"<td class='l'>{esc(result.model)}</td>", f"<td>{seg.users:,}</td>"]
            for metric in metrics:
                cells.append(self._cell(result.model, seg, metric, constant, popular))
            css = " class='ref'" if self.reference_source.get(result.model) == "run" else ""
            rows.append(f"<tr{css}>" + "".join(cells) + "</tr>")
        for name, ref in ((CONSTANT, constant), (POPULARITY, popular)):
            if ref is None or self.reference_source.get(name) == "run":
                continue  # a reference of the run is one of its rows already
            source = self.reference_source.get(name, "")
            cells = [
                f"<td class='l'>{esc(REFERENCE_LABELS[name])} <small>({esc(source)})</small></td>",
                f"<td>{ref.users:,}</td>",
            ]
            for metric in metrics:
                if _reference_skipped(name, metric, self.task) or metric not in ref.metrics:
                    cells.append("<td title='popularity scores are counts, not ratings'>n/a</td>")
                else:
                    cells.append(f"<td>{_value(ref.metrics[metric], ref.ci.get(metric))}</td>")
            rows.append("<tr class='ref'>" + "".join(cells) + "</tr>")
        reasons = [
            f"<li><b>{esc(m)}</b>: {esc(why)}</li>" for m, (ok, why) in flags.items() if not ok
        ]
        warn = f"<ul class='warn'>{''.join(reasons)}</ul>" if reasons else ""
        note = SEGMENT_NOTES.get(segment, "")
        return (
            f"<h3>{esc(segment)} <small>{esc(note)}</small></h3>"
            f"<table><tr>{''.join(head)}</tr>{''.join(rows)}</table>{warn}"
        )

    def _cell(self, model, seg, metric, constant, popular) -> str:
        if metric not in seg.metrics:
            return "<td>-</td>"
        value, ci = seg.metrics[metric], seg.ci.get(metric)
        lower = lower_is_better(metric)
        marks, classes, titles = [], [], []
        if (
            model != CONSTANT
            and constant is not None
            and metric in constant.metrics
            and not beats(value, ci, constant.metrics[metric], lower)
        ):
            marks.append("&asymp;c")
            classes.append("flat")
            titles.append(f"does not beat the constant predictor ({constant.metrics[metric]:.4f})")
        if (
            model != POPULARITY
            and popular is not None
            and metric in popular.metrics
            and not _reference_skipped(POPULARITY, metric, self.task)
            and not beats(value, ci, popular.metrics[metric], lower)
        ):
            marks.append("&le;p")
            classes.append("below")
            titles.append(f"does not beat popularity ({popular.metrics[metric]:.4f})")
        mark = f" <span class='mark'>{' '.join(marks)}</span>" if marks else ""
        attrs = f" class='{' '.join(classes)}'" if classes else ""
        if titles:
            attrs += f" title='{html.escape('; '.join(titles))}'"
        return f"<td{attrs}>{_value(value, ci)}{mark}</td>"

    def _warmup_html(self) -> str:
        esc = html.escape
        shown = _warmup_metrics(self.task, self.k, self.metrics)
        segments = [s for s in self.segments if any(s in per for per in self.warmup.values())]
        out = []
        for segment in segments:
            curves = {m: per[segment] for m, per in self.warmup.items() if segment in per}
            points = next(iter(curves.values()))
            head = "".join(f"<th>n={p['revealed']}</th>" for p in points)
            users = "".join(f"<td>{p['users']:,}</td>" for p in points)
            rows = [f"<tr><td class='l' colspan='2'>users</td>{users}</tr>"]
            for metric in shown:
                for model, curve in curves.items():
                    if _reference_skipped(model, metric, self.task):
                        continue
                    ref = model not in self.models
                    label = REFERENCE_LABELS.get(model, model) if ref else model
                    cells = "".join(
                        f"<td>{_value(p['metrics'][metric], p['ci'].get(metric))}</td>"
                        if metric in p["metrics"]
                        else "<td>-</td>"
                        for p in curve
                    )
                    css = " class='ref'" if ref else ""
                    rows.append(
                        f"<tr{css}><td class='l'>{esc(metric)}</td>"
                        f"<td class='l'>{esc(label)}</td>{cells}</tr>"
                    )
            out.append(
                f"<h3>{esc(segment)} <small>{esc(SEGMENT_NOTES.get(segment, ''))}</small></h3>"
                f"<table><tr><th>metric</th><th>model</th>{head}</tr>{''.join(rows)}</table>"
            )
        return (
            "<p>The new-user segments scored again with only each user's first <i>n</i> revealed "
            "interactions as history; the same users and the same query for every <i>n</i> (the "
            "model is not refitted: the training set does not depend on <i>n</i>).</p>"
            + "".join(out)
        )

    def _fine_tuning_html(self) -> str:
        esc = html.escape
        metrics = self.metrics
        rows = []
        for name, (before, after) in self.fine_tuning.items():
            for segment in self.segments:
                b, a = before.segments.get(segment), after.segments.get(segment)
                if b is None or a is None:
                    continue
                cells = []
                for metric in metrics:
                    if metric not in b.metrics or metric not in a.metrics:
                        cells.append("<td>-</td>")
                        continue
                    delta = a.metrics[metric] - b.metrics[metric]
                    better = (delta < 0) if lower_is_better(metric) else (delta > 0)
                    cls = "up" if better and delta else ("down" if delta else "")
                    cells.append(
                        f"<td>{_value(b.metrics[metric], b.ci.get(metric))} &rarr; "
                        f"{_value(a.metrics[metric], a.ci.get(metric))}<br>"
                        f"<span class='{cls}'>{delta:+.4f}</span></td>"
                    )
                rows.append(
                    f"<tr><td class='l'>{esc(name)}</td><td class='l'>{esc(segment)}</td>"
                    + "".join(cells)
                    + "</tr>"
                )
        head = "".join(f"<th>{esc(m)}</th>" for m in metrics)
        return (
            "<p>Each cell: before &rarr; after, and the change (green: better).</p>"
            f"<table><tr><th>model</th><th>segment</th>{head}</tr>{''.join(rows)}</table>"
        )

    def _exposure_html(self) -> str:
        esc = html.escape
        columns = [
            ("coverage", "coverage", "share of the catalogue in any top-k list"),
            ("gini_exposure", "Gini of exposure", "0: every item equally often; 1: one item"),
            ("mean_popularity_recommended", "popularity of recommended",
             "mean training interactions of the recommended items, per user"),
            ("mean_popularity_history", "popularity of history",
             "mean training interactions of the items in the users' own history"),
            ("mean_popularity_catalogue", "popularity of catalogue", "mean over all items"),
            ("new_item_share", "new-item share", "share of slots given to items never trained on"),
            ("new_item_catalogue_share", "new items in catalogue", "share of the catalogue"),
            ("miscalibration", "genre miscalibration", "Steck KL(history || recommended)"),
        ]  # fmt: skip
        present = [c for c in columns if any(c[0] in a for a in self.exposure.values())]
        head = "".join(f"<th title='{esc(tip)}'>{esc(label)}</th>" for _, label, tip in present)
        rows = []
        for name, audit in self.exposure.items():
            label = name if name in self.models else REFERENCE_LABELS.get(name, name)
            css = "" if name in self.models else " class='ref'"
            if "error" in audit:
                rows.append(
                    f"<tr{css}><td class='l'>{esc(label)}</td>"
                    f"<td class='l' colspan='{len(present) + 1}'>{esc(audit['error'])}</td></tr>"
                )
                continue
            cells = []
            for key, _, _ in present:
                value = audit.get(key)
                if value is None:
                    cells.append("<td>-</td>")
                elif isinstance(value, tuple):
                    cells.append(f"<td>{_value(value[0], value[1:])}</td>")
                else:
                    cells.append(f"<td>{value:.4f}</td>")
            rows.append(
                f"<tr{css}><td class='l'>{esc(label)}</td><td>{audit['n_users']:,}</td>"
                + "".join(cells)
                + "</tr>"
            )
        return (
            f"<p>Top-{self.k} lists of each model for the test users (new users with what they "
            "revealed as history; seen items filtered).</p>"
            f"<table><tr><th>model</th><th>users</th>{head}</tr>{''.join(rows)}</table>"
        )


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;"
    "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;"
    "vertical-align:top}td.l,th.l{text-align:left}tr.ref td{color:#555;font-style:italic;"
    "background:#f6f6f6}td.flat{background:#fde2e2}td.below{background:#fff4d6}"
    "td.flat.below{background:#fde2e2}.mark{font-size:80%;color:#a33}.warn{color:#b00;"
    "font-weight:bold}ul.warn{font-weight:normal}small{color:#666}figure{display:inline-block;"
    "margin:.5em}.up{color:#080}.down{color:#b00}.note{color:#666}"
)
_LEGEND = (
    "<p>Every cell: the mean over users, and its 95% bootstrap interval over users. "
    "&darr; lower is better, &uarr; higher is better. The grey rows are the references on the same "
    "split: a constant prediction (the training mean for every pair) and popularity. "
    "<span class='mark'>&asymp;c</span> (red): the model does not beat the constant predictor "
    "on this metric (the constant's mean is inside the model's interval, or the model is "
    "worse); <span class='mark'>&le;p</span> (yellow): it does not beat popularity. A rating "
    "metric that no model beats the constant on is marked "
    "<span class='warn'>not informative</span>.</p>"
)


def _figure(title: str, b64: str) -> str:
    return (
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _value(value: float, ci: Sequence[float] | None) -> str:
    if ci is None or len(ci) < 2:
        return f"{value:.4f}"
    return f"{value:.4f}<br><small>[{ci[0]:.4f}, {ci[1]:.4f}]</small>"


def _segment_of(result: EvaluationResult | None, segment: str):
    return None if result is None else result.segments.get(segment)


def _reference_skipped(name: str, metric: str, task: str) -> bool:
    """Popularity's predictions are counts: its MAE / RMSE on ratings mean nothing, and
    MetaHIN's nDCG variant uses the predicted values as gains."""
    return (
        name == POPULARITY
        and task == "rating"
        and (lower_is_better(metric) or metric.startswith("metahin_"))
    )


def _legend(axes) -> tuple[list, list[str]]:
    """Handles and labels of every subplot, each label once."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def _warmup_metrics(task: str, k: int, metrics: Sequence[str]) -> list[str]:
    wanted = ["mae", f"ndcg@{k}"] if task == "rating" else [f"recall@{k}", f"ndcg@{k}"]
    return [m for m in wanted if m in metrics] or list(metrics[:2])


# ---------------------------------------------------------------------- building


def _truncate_support(segment: SplitSegment, n: int, by_time: bool) -> SplitSegment:
    """``segment`` with only each user's first ``n`` revealed interactions as support."""
    from dayzero.core.schema import Interactions

    frame = segment.support.frame
    if by_time and "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", kind="stable")
    keep = frame.groupby("user", sort=False).cumcount() < n
    support = Interactions(frame.loc[keep.to_numpy()]) if keep.any() else Interactions.empty()
    return SplitSegment(segment.name, support=support, query=segment.query)


def warmup_curve(
    model: Any,
    split: ColdStartSplit,
    task: str,
    k: int,
    relevance_threshold: float | None = None,
    points: Sequence[int] | None = None,
    n_resamples: int = 500,
    random_state: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """A fitted model on the segments with revealed interactions, for ``n = 0 ... k`` revealed.

    Parameters
    ----------
    model
        A recommender fitted on ``split.train`` (not refitted).
    split
        The split it was evaluated on; segments without support are skipped.
    task, k, relevance_threshold
        As in :func:`~dayzero.evaluate.runner.evaluate_segment`.
    points
        Revealed counts to score (default: those of :data:`WARMUP_POINTS` below the largest
        support of a user, and that largest support).
    n_resamples, random_state
        Bootstrap of the intervals.

    Returns
    -------
    dict
        ``{segment: [{"revealed": n, "users": ..., "metrics": {...}, "ci": {...}}, ...]}``;
        at ``n = k`` the numbers are those of the full support.
    """
    by_time = split.params.get("order", split.params.get("support_order")) == "time"
    out: dict[str, list[dict[str, Any]]] = {}
    for name, segment in split.segments.items():
        if not len(segment.support):
            continue
        largest = int(segment.support.frame.groupby("user").size().max())
        counts = points or sorted({p for p in WARMUP_POINTS if p < largest} | {largest})
        curve = []
        for n in counts:
            result = evaluate_segment(
                model, _truncate_support(segment, n, by_time), task=task, k=k,
                relevance_threshold=relevance_threshold, n_resamples=n_resamples,
                random_state=random_state, progress=False,
            )  # fmt: skip
            curve.append(
                {
                    "revealed": int(n),
                    "users": result.users,
                    "metrics": result.metrics,
                    "ci": {m: list(v) for m, v in result.ci.items()},
                }
            )
        out[name] = curve
    return out


def _test_users(split: ColdStartSplit) -> dict[Hashable, Any]:
    """Each test user -> their revealed support as Interactions (None for warm users)."""
    from dayzero.core.schema import Interactions

    users: dict[Hashable, Any] = {}
    for segment in split.segments.values():
        frame = segment.support.frame
        groups = dict(list(frame.groupby("user", sort=False))) if len(frame) else {}
        for user in pd.unique(segment.query.frame["user"]):
            if users.get(user) is None:
                revealed = groups.get(user)
                users[user] = None if revealed is None else Interactions(revealed)
    return users


def _genres(split: ColdStartSplit) -> dict[Hashable, list[str]] | None:
    """Item -> its values of the first multi-valued item field (genres, tags), if any."""
    items = split.train.items
    if items is None:
        return None
    multi = [c for c, kind in items.fields.items() if kind == "multi"]
    if not multi:
        return None
    column = "genres" if "genres" in multi else multi[0]
    out = {}
    for item, value in items.frame[column].items():
        if isinstance(value, str):
            value = [v for v in value.split("|") if v]
        out[item] = [str(v) for v in value] if isinstance(value, list | tuple | np.ndarray) else []
    return out


def exposure_of(
    model: Any,
    split: ColdStartSplit,
    k: int,
    max_users: int | None = 1000,
    random_state: int = 0,
    users: Mapping[Hashable, Any] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`~dayzero.evaluate.exposure.exposure_audit` of a fitted model's top-``k`` lists.

    The users are those of the split's segments (at most ``max_users``, a seeded sample), new
    users with their revealed support as history. The catalogue is every item of the dataset
    (``split.train.item_map``), popularity its training interaction count, new items those
    without one.

    users
        The test users with their support (computed from ``split`` when not given).

    Returns
    -------
    (audit, counts)
        The audit and the exposure count of each catalogue item (for a Lorenz curve).
    """
    users = _test_users(split) if users is None else users
    ids = list(users)
    if max_users is not None and len(ids) > max_users:
        rng = np.random.default_rng(random_state)
        ids = [ids[i] for i in np.sort(rng.choice(len(ids), size=max_users, replace=False))]
    train = split.train.interactions.frame
    popularity = train["item"].value_counts().to_dict()
    trained = train.groupby("user", sort=False)["item"].apply(list).to_dict()
    catalogue = list(split.train.item_map.ids)
    known = set(catalogue)
    top_k, histories = [], []
    for user in ids:
        support = users[user]
        recommended, _ = model.recommend(user, k=k, history=support, filter_seen=True)
        extra = [i for i in recommended if i not in known]
        if extra:  # a model may know items the dataset's map does not (never in practice)
            catalogue.extend(extra)
            known.update(extra)
        top_k.append(list(recommended))
        history = list(trained.get(user, []))
        if support is not None:
            history += support.frame["item"].tolist()
        histories.append(history)
    new_items = [i for i in catalogue if i not in popularity]
    audit = exposure_audit(
        top_k, histories, catalogue, popularity, new_items=new_items,
        genres=_genres(split), random_state=random_state,
    )  # fmt: skip
    return audit, exposure_counts(top_k, catalogue)


def fine_tune_on_support(
    model: Any,
    split: ColdStartSplit,
    task: str,
    k: int,
    relevance_threshold: float | None = None,
    epochs: int = 2,
    replay_ratio: float = 4.0,
    n_resamples: int = 1000,
    random_state: int = 0,
) -> EvaluationResult | None:
    """What ``dayzero update`` does, on the split: fine-tune a copy of a fitted model on what the
    new users revealed, and score it on the same segments.

    A copy of ``model`` (the model itself is left as it is) is fine-tuned
    (``model.fine_tune``, e.g. :meth:`~dayzero.recommend.two_tower.TwoTowerRecommender.fine_tune`)
    on every segment's support plus ``replay_ratio`` training interactions per revealed one
    (a seeded sample, so the model does not forget). The revealed interactions are then part of
    its training history, so the segments are scored with no request-time history (passing them
    again would count them twice).

    Parameters
    ----------
    model
        A model fitted on ``split.train``.
    split, task, k, relevance_threshold
        As in :func:`~dayzero.evaluate.runner.evaluate_split`.
    epochs, replay_ratio
        Fine-tuning passes, replayed training interactions per revealed one.
    n_resamples, random_state
        Bootstrap of the intervals; seed of the replay sample and of the fine-tuning.

    Returns
    -------
    EvaluationResult or None
        None when the model has no ``fine_tune`` or the split reveals nothing. Its
        ``fit_seconds`` is the fine-tuning time, ``params["fine_tune"]`` the settings.
    """
    import copy
    import time

    from dayzero.core.schema import Interactions

    if not callable(getattr(model, "fine_tune", None)):
        return None
    frames = [s.support.frame for s in split.segments.values() if len(s.support)]
    if not frames:
        return None
    # A new user's support sits in every new-user segment where they have a row: once each.
    support = pd.concat(frames).drop_duplicates()
    train = split.train.interactions.frame
    n_replay = min(len(train), round(replay_ratio * len(support)))
    replay = Interactions(train.sample(n=n_replay, random_state=random_state)) if n_replay else None
    tuned = copy.deepcopy(model)
    start = time.perf_counter()
    tuned.fine_tune(Interactions(support), epochs=epochs, replay=replay, random_state=random_state)
    seconds = time.perf_counter() - start
    without_support = ColdStartSplit(
        train=split.train,
        segments={
            name: SplitSegment(name, support=Interactions.empty(), query=segment.query)
            for name, segment in split.segments.items()
        },
        protocol=split.protocol,
        params=split.params,
    )
    result = evaluate_split(
        tuned, without_support, task=task, k=k, fit=False,
        relevance_threshold=relevance_threshold, n_resamples=n_resamples, progress=False,
    )  # fmt: skip
    result.fit_seconds = seconds
    result.params["fine_tune"] = {
        "epochs": epochs,
        "replay_ratio": replay_ratio,
        "revealed": len(support),
        "replayed": n_replay,
    }
    return result


def build_evaluation_report(
    results: Sequence[EvaluationResult],
    split: ColdStartSplit | None = None,
    models: Sequence[Any] | None = None,
    *,
    fine_tuned: Mapping[str, EvaluationResult] | Sequence[EvaluationResult] | None = None,
    relevance_threshold: float | None = None,
    title: str | None = None,
    warmup: bool = True,
    exposure: bool = True,
    max_exposure_users: int | None = 1000,
    n_resamples: int = 1000,
    random_state: int = 0,
) -> EvaluationReport:
    """Everything the evaluation report shows (see the module docstring).

    Parameters
    ----------
    results
        One result per model of the run, all on the same split (same protocol and task).
    split
        The split they were measured on. Without it, references come only from the run and
        there is no warm-up curve or exposure audit.
    models
        The fitted models of ``results`` (same order, or matched by name): needed for the
        warm-up curve and the exposure audit.
    fine_tuned
        Results of the same models after fine-tuning (by model name, or a list matched by
        name): shown before vs after.
    relevance_threshold
        Relevant query items of the ranking task (as the run used).
    title
        Page title (default: protocol and task).
    warmup, exposure
        Compute the warm-up curve / the exposure audit (when the split and models allow).
    max_exposure_users
        Cap of the seeded sample of test users whose top-k lists are audited.
    n_resamples, random_state
        Bootstrap of the intervals of what is computed here.

    Returns
    -------
    EvaluationReport
    """
    results = list(results)
    if not results:
        raise ValueError("no results to report: evaluate at least one model")
    first = results[0]
    mixed = [r.model for r in results if (r.protocol, r.task) != (first.protocol, first.task)]
    if mixed:
        raise ValueError(
            f"results {mixed} are not on {first.protocol} / {first.task} as {first.model} is: "
            "report one split at a time"
        )
    task, k = first.task, _cutoff(first)
    report = EvaluationReport(
        title=title or f"Evaluation: {first.protocol} ({task})",
        protocol=first.protocol,
        task=task,
        k=k,
        results=results,
        split_summary=split.summary() if split is not None else None,
    )
    fitted = _match_models(results, models)

    reference_models: dict[str, Any] = {}
    for name in (CONSTANT, POPULARITY):
        in_run = next((r for r in results if r.model == name), None)
        if in_run is not None:
            report.references[name] = in_run
            report.reference_source[name] = "run"
            if name in fitted:
                reference_models[name] = fitted[name]
        elif split is not None:
            from dayzero.recommend.contract import make_recommender

            model = make_recommender(name)
            report.references[name] = evaluate_split(
                model, split, task=task, k=k, relevance_threshold=relevance_threshold,
                n_resamples=n_resamples, progress=False,
            )  # fmt: skip
            report.reference_source[name] = "fitted"
            reference_models[name] = model
        else:
            report.notes.append(
                f"references: {REFERENCE_LABELS[name]} not shown: it was not in the run and no "
                "split was given to fit it on"
            )
    report.informative = _informative(report)

    curve_models = {**fitted, **{n: m for n, m in reference_models.items() if n not in fitted}}
    has_support = split is not None and any(len(s.support) for s in split.segments.values())
    if not warmup:
        report.notes.append("warmup: not asked for")
    elif split is None or not fitted:
        report.notes.append("warmup: needs the split and the fitted models")
    elif not has_support:
        report.notes.append(
            "warmup: this protocol reveals no interaction of new users (use --protocol kshot)"
        )
    else:
        for name, model in curve_models.items():
            report.warmup[name] = warmup_curve(
                model, split, task, k, relevance_threshold=relevance_threshold,
                n_resamples=n_resamples, random_state=random_state,
            )  # fmt: skip

    if not exposure:
        report.notes.append("exposure: not asked for")
    elif split is None or not fitted:
        report.notes.append("exposure: needs the split and the fitted models")
    else:
        test_users = _test_users(split)
        for name, model in curve_models.items():
            try:
                audit, counts = exposure_of(
                    model, split, k, max_users=max_exposure_users,
                    random_state=random_state, users=test_users,
                )  # fmt: skip
            except (ValueError, KeyError, TypeError) as exc:
                report.exposure[name] = {"error": f"top-{k} lists not available: {exc}"}
                continue
            report.exposure[name] = audit
            report.exposure_curves[name] = counts
        users = len(test_users)
        if max_exposure_users is not None and users > max_exposure_users:
            report.notes.append(
                f"Exposure is audited on a seeded sample of {max_exposure_users:,} of the "
                f"{users:,} test users."
            )

    if fine_tuned:
        after = (
            dict(fine_tuned)
            if isinstance(fine_tuned, Mapping)
            else {r.model: r for r in fine_tuned}
        )
        for result in results:
            if result.model in after:
                report.fine_tuning[result.model] = (result, after[result.model])
        unknown = sorted(set(after) - {r.model for r in results})
        if unknown:
            raise ValueError(
                f"fine_tuned has results of {unknown}, which are not models of the run "
                f"({[r.model for r in results]})"
            )
    report.notes.append(
        "Intervals: 95% percentile bootstrap over users. 'Does not beat' compares a model's "
        "interval with the reference's mean (no paired test: per-user values are not kept)."
    )
    return report


def _cutoff(result: EvaluationResult) -> int:
    """The top-k cutoff of a result, read from its metric names (``ndcg@5``): its
    ``params["k"]`` is the split's own ``k`` on k-shot splits (the shots)."""
    for seg in result.segments.values():
        for name in seg.metrics:
            _, sep, tail = name.partition("@")
            if sep and tail.isdigit():
                return int(tail)
    return int(result.params.get("k", 10))


def _match_models(results: Sequence[EvaluationResult], models: Sequence[Any] | None) -> dict:
    if not models:
        return {}
    models = list(models)
    if len(models) == len(results):
        return {r.model: m for r, m in zip(results, models, strict=True)}
    by_name = {getattr(m, "name", None): m for m in models}
    return {r.model: by_name[r.model] for r in results if r.model in by_name}


def _informative(report: EvaluationReport) -> dict[str, dict[str, tuple[bool, str]]]:
    """Rating metrics on which no model of the run beats the constant predictor."""
    constant = report.references.get(CONSTANT)
    candidates = [r for r in report.results if r.model != CONSTANT]
    out: dict[str, dict[str, tuple[bool, str]]] = {}
    if report.task != "rating" or constant is None or not candidates:
        return out
    for segment in report.segments:
        ref = constant.segments.get(segment)
        if ref is None:
            continue
        flags = {}
        for metric, value in ref.metrics.items():
            if not is_rating_metric(metric):
                continue
            scored = [
                r.segments[segment]
                for r in candidates
                if segment in r.segments and metric in r.segments[segment].metrics
            ]
            if not scored:
                continue
            lower = lower_is_better(metric)
            if any(beats(s.metrics[metric], s.ci.get(metric), value, lower) for s in scored):
                flags[metric] = (True, "")
            else:
                best = min if lower else max
                top = best(s.metrics[metric] for s in scored)
                flags[metric] = (
                    False,
                    f"a constant prediction already scores {value:.4f} (best model {top:.4f}, "
                    "its interval holds the constant or it is worse): this metric does not "
                    "tell the models from a constant here",
                )
        out[segment] = flags
    return out


def write_evaluation_report(
    results: Sequence[EvaluationResult],
    path: str | Path,
    split: ColdStartSplit | None = None,
    models: Sequence[Any] | None = None,
    *,
    dataset: Any = None,
    title: str | None = None,
    **options: Any,
) -> Path:
    """Build the report (:func:`build_evaluation_report`) and write its HTML page to ``path``.

    Parameters
    ----------
    results, split, models
        As in :func:`build_evaluation_report`.
    dataset
        The evaluated dataset (its name goes into the default title).
    title
        Page title.
    **options
        Further keywords of :func:`build_evaluation_report`.

    Returns
    -------
    Path
        The written page.
    """
    if title is None and dataset is not None and results:
        title = f"{getattr(dataset, 'name', 'dataset')} / {results[0].protocol} ({results[0].task})"
    report = build_evaluation_report(results, split, models, title=title, **options)
    return report.to_html(path)


__all__ = [
    "EvaluationReport",
    "build_evaluation_report",
    "exposure_of",
    "fine_tune_on_support",
    "warmup_curve",
    "write_evaluation_report",
]
