"""The two-tower's retrieval-head rows of the full-catalogue benchmark (``bench/retrieval.py``).

    DAYZERO_DATA=../shared/data nice -n 5 python bench/retrieval_two_tower.py --dataset ml-1m \
        --models two-tower-retrieval --append

Runs ``bench/retrieval.py`` (same protocols, scorer, selection and report) with the rows below
added to its ``MODELS`` table; every argument is the harness's. This module is what the spawned
measurement processes import, so they see the rows too. ``BENCH_RESULTS=folder`` writes the
results there instead of ``bench/results`` (trial runs that must not touch the committed files).

Rows:

* ``two-tower-retrieval``: the frozen-MiniLM two-tower with its retrieval head (softmax over
  items, logQ-corrected, every interaction a positive) beside the rating head, the lexical
  (TF-IDF) part of the item tower and the calibrated content-only scores; ranked by the
  retrieval head. The strength of the logQ correction is chosen on the validation split.
* ``two-tower-retrieval+floor``: the same model behind an exposure floor (a product knob, not
  the model): 2 of the top 20 slots go to the protocol's new items (its fold-in items),
  reported apart from the unboosted row. Recall@10 is unchanged by it (the promoted items take
  the last slots of the 20).
* ``two-tower-retrieval+contrastive``: ``two-tower-retrieval`` with logQ 1 (what validation
  chose for it), its MiniLM first adapted on co-engagement pairs of the training interactions
  (``dayzero.train.contrastive``: the top 2 layers, in-batch softmax, at most
  ``CONTRASTIVE_STEPS`` steps of 32 pairs and ``CONTRASTIVE_SECONDS`` of wall time); item and
  user vectors (and the fold-in items') then come from the adapted encoder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import retrieval
from retrieval import ModelSpec

if os.environ.get("BENCH_RESULTS"):
    _common.RESULTS = retrieval.RESULTS = Path(os.environ["BENCH_RESULTS"])

FLOOR = 2
FLOOR_K = 20
RETRIEVAL = {
    "training__epochs": 20,
    "training__retrieval_weight": 1.0,
}


class FloorScorer:
    """A scorer with an exposure floor: the best ``floor`` fresh candidates (not in the history)
    are lifted just below the ``k - floor`` best others, so a top-``k`` holds at least ``floor``
    of them; every other score is unchanged."""

    def __init__(self, inner: Any, fresh: set, floor: int = FLOOR, k: int = FLOOR_K) -> None:
        self.inner, self.fresh, self.floor, self.k = inner, fresh, floor, k

    def __call__(self, history, candidates):
        return self._lift(self.inner(history, candidates), history, candidates)

    def score_task(self, task, candidates):
        return self._lift(self.inner.score_task(task, candidates), task.history, candidates)

    def _lift(self, scores, history, candidates):
        import numpy as np

        scores = np.array(scores, dtype=np.float64)
        seen = set(history)
        usable = np.array([c not in seen for c in candidates], dtype=bool)
        fresh = np.array([c in self.fresh for c in candidates], dtype=bool) & usable
        others = np.sort(scores[usable & ~fresh])[::-1]
        slots = self.k - self.floor
        if not fresh.any() or len(others) <= slots:
            return scores
        bar = others[slots - 1] if slots > 0 else others[0] + 1.0
        chosen = np.flatnonzero(fresh)[np.argsort(-scores[fresh], kind="stable")[: self.floor]]
        below = scores[chosen] < bar
        # just under the bar, in their own order: above every other item outside the top
        step = 1e-6 * max(1.0, abs(bar))
        scores[chosen[below]] = bar - step * (1 + np.arange(below.sum()))
        return scores


def _fresh_items(split: Any, model: Any) -> set:
    new = getattr(split, "new_items", None)
    if new is None:
        return set(model.content_only_items())
    return set(new.ids) if hasattr(new, "ids") else set(new)


def _floor_scorer(model: Any, split: Any, threshold: float | None) -> Any:
    from dayzero.evaluate.ranking import recommender_scorer

    return FloorScorer(recommender_scorer(model), _fresh_items(split, model))


NOTE = (
    "frozen MiniLM two-tower, retrieval head (in-batch + 256 uniform negatives, logQ-corrected, "
    "every interaction a positive) beside the rating head; item tower: text vector, "
    "attributes, field tokens, TF-IDF word bag, ID (dropped at random); content-only scores "
    "calibrated on held-out items; ranked by the retrieval head"
)
ROWS = {
    "two-tower-retrieval": ModelSpec(
        retrieval._two_tower,
        params=RETRIEVAL,
        grid={
            "logQ 1": {"training__logq_correction": 1.0},
            "logQ 0.5": {"training__logq_correction": 0.5},
        },
        template_param="item_template",
        cache_param="encoder__cache_dir",
        note=NOTE,
    ),
    "two-tower-retrieval+floor": ModelSpec(
        retrieval._two_tower,
        params={**RETRIEVAL, "training__logq_correction": 1.0},
        scorer=_floor_scorer,
        template_param="item_template",
        cache_param="encoder__cache_dir",
        note=f"two-tower-retrieval (logQ 1) with an exposure floor: {FLOOR} of the top "
        f"{FLOOR_K} slots for the protocol's new items (a product knob; Recall@10 unchanged)",
    ),
}
CONTRASTIVE_STEPS = 200
CONTRASTIVE_SECONDS = 360
CONTRASTIVE = {
    "strategy": "top_k",
    "strategy_params": {"k": 2},
    "adaptation__steps": 0,  # no end-to-end (rating) stage: the contrastive one only
    "adaptation__contrastive_steps": CONTRASTIVE_STEPS,
    "adaptation__contrastive_pairs": 32,
    "adaptation__contrastive_lr": 1e-4,
    "adaptation__contrastive_seconds": CONTRASTIVE_SECONDS,
}
_ADAPTED: dict[str, Any] = {}


def _contrastive_scorer(model: Any, split: Any, threshold: float | None) -> Any:
    """The plain scorer; notes what the contrastive stage did (steps, seconds, pairs) for the
    results file (the last call is the measured fit's)."""
    _ADAPTED["contrastive"] = getattr(model, "contrastive_", None)
    return retrieval._recommender_scorer(model, split, threshold)


ROWS["two-tower-retrieval+contrastive"] = ModelSpec(
    retrieval._two_tower,
    scorer=_contrastive_scorer,
    params={**RETRIEVAL, "training__logq_correction": 1.0, **CONTRASTIVE},
    template_param="item_template",
    cache_param="encoder__cache_dir",
    note=f"two-tower-retrieval (logQ 1), MiniLM's top 2 layers first adapted on co-engagement "
    f"pairs of the training interactions (in-batch softmax, <= {CONTRASTIVE_STEPS} steps of 32 "
    f"pairs, <= {CONTRASTIVE_SECONDS} s)",
)
retrieval.MODELS.update(ROWS)


_MEASURE = retrieval.measure


def measure(**kwargs: Any) -> dict:
    """retrieval.measure, from this module (so a spawned process has the rows), plus the
    contrastive stage's summary for the row that has one."""
    _ADAPTED.clear()
    result = _MEASURE(**kwargs)
    if _ADAPTED.get("contrastive") is not None:
        result["contrastive"] = _ADAPTED["contrastive"]
    return result


retrieval.measure = measure

COLD_SETTINGS = ("new items among new items", "new items among all items")
COLD_SETTINGS += tuple(s.replace("items", "games") for s in COLD_SETTINGS)  # Steam's names


def contrastive_tables(folder: Path) -> str:
    """BENCHMARKS tables of the frozen vs adapted rows in ``folder``: per dataset and protocol,
    cold-item Recall@20 with CIs, the relative change, fit seconds and the contrastive steps."""
    import json

    out = []
    for path in sorted(folder.glob("retrieval_*.json")):
        payload = json.loads(path.read_text())
        results = {(r["protocol"], r["model"]): r for r in payload["results"]}
        protocols = list(dict.fromkeys(p for p, _ in results))
        out += [
            f"**{path.stem.removeprefix('retrieval_')}** (commit `{payload.get('commit')}`)",
            "",
            "| protocol | setting | users | frozen R@20 | adapted R@20 | change | fit s "
            "(frozen / adapted) | contrastive steps (s) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for protocol in protocols:
            frozen = results.get((protocol, "two-tower-retrieval"))
            adapted = results.get((protocol, "two-tower-retrieval+contrastive"))
            if frozen is None or adapted is None:
                continue
            stage = adapted.get("contrastive") or {}
            for setting in COLD_SETTINGS:
                cells = []
                for row in (frozen, adapted):
                    by = {x["setting"]: x for x in row["rows"]}
                    cells.append(by.get(setting))
                if None in cells:
                    continue
                values = [c["metrics"]["recall@20"] for c in cells]
                change = f"{values[1] / values[0] - 1:+.0%}" if values[0] > 0 else "n/a"
                shown = [
                    f"{v:.3f} [{c['ci']['recall@20'][0]:.3f}, {c['ci']['recall@20'][1]:.3f}]"
                    for v, c in zip(values, cells, strict=True)
                ]
                out.append(
                    f"| {protocol} | {setting} | {cells[0]['users']} | {shown[0]} | {shown[1]} | "
                    f"{change} | {frozen['fit_seconds']:.0f} / {adapted['fit_seconds']:.0f} | "
                    f"{stage.get('steps')} ({stage.get('seconds', 0):.0f}) |"
                )
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if "--contrastive-tables" in sys.argv:
        print(contrastive_tables(retrieval.RESULTS))
    else:
        retrieval.main()
