"""Results as terminal tables (rich) and JSON files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from dayzero.core.split import SEGMENTS
from dayzero.evaluate.runner import EvaluationResult


def _segment_order(results: Sequence[EvaluationResult]) -> list[str]:
    names: list[str] = []
    for result in results:
        for name in result.segments:
            if name not in names:
                names.append(name)
    known = [s for s in SEGMENTS if s in names]
    return known + [n for n in names if n not in known]


def results_table(
    results: Sequence[EvaluationResult],
    metric_names: Sequence[str] | None = None,
    title: str | None = None,
    show_ci: bool = False,
) -> Table:
    """One row per (segment, model), one column per metric; segments in canonical order."""
    if not results:
        raise ValueError("no results to show")
    if metric_names is None:
        metric_names = []
        for result in results:
            for seg in result.segments.values():
                metric_names.extend(m for m in seg.metrics if m not in metric_names)
    table = Table(title=title or f"{results[0].protocol} — {results[0].task}")
    table.add_column("segment")
    table.add_column("model")
    table.add_column("users", justify="right")
    for name in metric_names:
        table.add_column(name, justify="right")
    table.add_column("fit s", justify="right")
    for segment in _segment_order(results):
        for result in results:
            seg = result.segments.get(segment)
            if seg is None:
                continue
            cells = []
            for name in metric_names:
                value = seg.metrics.get(name)
                if value is None:
                    cells.append("-")
                elif show_ci and name in seg.ci:
                    low, high = seg.ci[name]
                    cells.append(f"{value:.4f} [{low:.4f}, {high:.4f}]")
                else:
                    cells.append(f"{value:.4f}")
            table.add_row(
                segment, result.model, str(seg.users), *cells, f"{result.fit_seconds:.1f}"
            )
        table.add_section()
    return table


def write_json(payload: Any, path: str | Path) -> Path:
    """Write results (EvaluationResult, a list of them, or plain data) as indented JSON."""

    def convert(obj: Any) -> Any:
        if isinstance(obj, EvaluationResult):
            return obj.to_dict()
        if isinstance(obj, (list, tuple)):
            return [convert(o) for o in obj]
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(convert(payload), indent=2, default=str) + "\n")
    return out
