"""Evaluate a recommender on a :class:`ColdStartSplit`, segment by segment, user by user.

For each segment and each of its users the model is given that user's support interactions as
``history`` (and nothing else from the test data), then:

* ``task="rating"`` predicts the user's query values: MAE, RMSE, nDCG@k of the query items ranked
  by prediction (standard) and MetaHIN's nDCG@k variant (for comparison with their paper only);
* ``task="ranking"`` recommends ``k`` items from the whole catalogue (items seen in training or in
  the support are filtered): Recall@k, nDCG@k, HitRate@k, MRR, MAP@k, with the query items (those
  with value >= ``relevance_threshold``) as the relevant set, plus catalogue coverage.

Metrics are computed per user and averaged over users; each comes with a bootstrap confidence
interval over users. Every segment is reported, cold ones included.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from dayzero.core.progress import progress_bar
from dayzero.core.split import ColdStartSplit, Segment
from dayzero.evaluate import metrics
from dayzero.recommend.contract import Recommender

Task = Literal["rating", "ranking"]


@dataclass
class SegmentResult:
    """Metrics of one segment: per-user means with bootstrap confidence intervals."""

    segment: str
    users: int
    query: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out


@dataclass
class EvaluationResult:
    """All segments of one model on one split."""

    model: str
    protocol: str
    task: str
    segments: dict[str, SegmentResult]
    fit_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "protocol": self.protocol,
            "task": self.task,
            "fit_seconds": self.fit_seconds,
            "params": self.params,
            "segments": {k: v.to_dict() for k, v in self.segments.items()},
        }


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> dict[str, float]:
    """Per-user rating metrics over one user's query items."""
    return {
        "mae": metrics.mae(y_true, y_pred),
        "rmse": metrics.rmse(y_true, y_pred),
        f"ndcg@{k}": metrics.ndcg_at_k(y_true, y_pred, k),
        # MetaHIN's own tie selection: the only one that reproduces the published anchor table.
        f"metahin_ndcg@{k}": metrics.metahin_ndcg_at_k(y_true, y_pred, k, ties="numpy"),
    }


def ranking_metrics(recommended: list, relevant: set, k: int) -> dict[str, float]:
    """Per-user top-k metrics of a recommended list against the relevant items."""
    return {
        f"recall@{k}": metrics.recall_at_k(recommended, relevant, k),
        f"ndcg@{k}": metrics.ndcg_at_k_list(recommended, relevant, k),
        f"hit_rate@{k}": metrics.hit_rate_at_k(recommended, relevant, k),
        "mrr": metrics.mrr(recommended, relevant, k),
        f"map@{k}": metrics.average_precision_at_k(recommended, relevant, k),
    }


def evaluate_segment(
    model: Recommender,
    segment: Segment,
    task: Task = "rating",
    k: int = 5,
    relevance_threshold: float | None = None,
    n_resamples: int = 1000,
    random_state: int = 0,
    progress: bool = True,
) -> SegmentResult:
    """Evaluate ``model`` on one segment (see the module docstring for what is measured)."""
    if task not in ("rating", "ranking"):
        raise ValueError(f"task must be 'rating' or 'ranking', not {task!r}")
    start = time.perf_counter()
    per_user: dict[str, list[float]] = {}
    recommended_lists: list[list] = []
    tasks = list(segment.tasks())
    bar = progress_bar(tasks, desc=f"evaluate {model.name} / {segment.name}", enabled=progress)
    for user, support, query in bar:
        history = support if len(support) else None
        frame = query.frame
        if task == "rating":
            y_pred = model.predict([user] * len(frame), frame["item"].tolist(), history=history)
            values = rating_metrics(frame["value"].to_numpy(), y_pred, k)
        else:
            relevant_rows = (
                frame
                if relevance_threshold is None
                else frame[frame["value"] >= relevance_threshold]
            )
            relevant = set(relevant_rows["item"].tolist())
            if not relevant:
                continue
            ids, _ = model.recommend(user, k=k, history=history, filter_seen=True)
            recommended_lists.append(ids)
            values = ranking_metrics(ids, relevant, k)
        for name, value in values.items():
            per_user.setdefault(name, []).append(value)

    means = {name: float(np.mean(v)) for name, v in per_user.items()}
    ci = {}
    for name, v in per_user.items():
        _, low, high = metrics.mean_ci(
            np.asarray(v), n_resamples=n_resamples, random_state=random_state
        )
        ci[name] = (float(low), float(high))
    if task == "ranking" and recommended_lists:
        means["coverage"] = metrics.coverage(recommended_lists, len(model.item_map_))
    return SegmentResult(
        segment=segment.name,
        users=len(next(iter(per_user.values()), [])),
        query=len(segment.query),
        metrics=means,
        ci=ci,
        seconds=time.perf_counter() - start,
    )


def evaluate_split(
    model: Recommender,
    split: ColdStartSplit,
    task: Task = "rating",
    k: int = 5,
    segments: Iterable[str] | None = None,
    fit: bool = True,
    relevance_threshold: float | None = None,
    n_resamples: int = 1000,
    progress: bool = True,
) -> EvaluationResult:
    """Fit ``model`` on ``split.train`` (unless ``fit=False``) and evaluate every segment."""
    fit_seconds = 0.0
    if fit:
        start = time.perf_counter()
        model.fit(split.train)
        fit_seconds = time.perf_counter() - start
    names = list(segments) if segments is not None else list(split.segments)
    unknown = [n for n in names if n not in split.segments]
    if unknown:
        raise KeyError(f"unknown segments {unknown}; the split has {list(split.segments)}")
    results = {
        name: evaluate_segment(
            model,
            split.segments[name],
            task=task,
            k=k,
            relevance_threshold=relevance_threshold,
            n_resamples=n_resamples,
            progress=progress,
        )
        for name in names
    }
    return EvaluationResult(
        model=model.name,
        protocol=split.protocol,
        task=task,
        segments=results,
        fit_seconds=fit_seconds,
        params={"model_params": model.get_params(), "k": k, **split.params},
    )
