"""German credit k-shot curves with TabLLM's protocol (ANCHORS.md §3): test ROC-AUC.

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 python bench/german_credit_kshot.py

1. 80/20 stratified train/test split (seed 0) of the 1,000 applicants.
2. For k = 4, 8, ..., 512 and seeds 0-4, draw k rows class-balanced from the train part
   (``kshot_sample``; at k=512 the train part has only 240 bads: all of them plus 272 goods);
   "all" uses every train row (the seed then only moves the models' own
   randomness and the CV folds).
3. Every model picks its hyper-parameters by stratified cross-validation (ROC-AUC) on the k rows
   only; the test part is touched once, for the final score.

Models: logistic regression and gradient boosting (scikit-learn HistGradientBoosting) on one-hot
categoricals + standardised numerics (TabLLM's baselines), frozen MiniLM on the TabLLM sentence
serialisation + logistic regression (what ``RiskScorer(head="logistic")`` fits), and fusion
(text vector + the one-hot features, ``RiskScorer(fusion=True)``).

Writes ``bench/results/german_credit_kshot.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save

KS: tuple[int | str, ...] = (4, 8, 16, 32, 64, 128, 256, 512, "all")
SEEDS = (0, 1, 2, 3, 4)
# Best of LogReg / XGBoost / LightGBM / TabPFN / TabLLM in TabLLM's table (ANCHORS.md §3).
TABLLM_BEST = {4: 0.71, 8: 0.67, 16: 0.69, 32: 0.73, 64: 0.70, 128: 0.72, 256: 0.75, 512: 0.76}
TABLLM_BEST["all"] = 0.79
LR_C = (0.001, 0.01, 0.1, 1.0, 10.0)
# L2-normalised 384-d vectors have entries ~0.05, so the text-only head needs larger C.
TEXT_C = (0.1, 1.0, 10.0, 100.0, 1000.0)
TEXT_WEIGHTS = (1.0, 3.0, 10.0)
GBM_GRID = {"max_depth": (2, 4), "min_samples_leaf": (2, 10)}


def _draw(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Class-balanced k rows; when a class has fewer than k/2 rows (240 bads at k=512), all of it
    and the rest from the other class, as TabLLM's sampler does when a class runs out."""
    from dayzero.data.splits import kshot_sample

    counts = np.bincount(y)
    if counts.min() * 2 >= k:
        return kshot_sample(y, k, seed=seed)
    rng = np.random.default_rng(seed)
    small = int(np.argmin(counts))
    rest = rng.choice(np.flatnonzero(y != small), size=k - counts.min(), replace=False)
    return np.sort(np.concatenate([np.flatnonzero(y == small), rest]))


def _cv(y: np.ndarray, seed: int):
    from sklearn.model_selection import StratifiedKFold

    folds = int(min(3, np.bincount(y).min()))
    return StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed)


def _tabular(frame, columns):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from dayzero.data.datasets.german_credit import CATEGORICAL, NUMERIC

    del columns
    return ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
            ("num", StandardScaler(), NUMERIC),
        ]
    )


def _search(estimator, grid: dict, x, y: np.ndarray, seed: int):
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(estimator, grid, scoring="roc_auc", cv=_cv(y, seed), error_score=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(x, y)
    return search.best_estimator_


def _models(seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    def logreg(kind: str, grid: dict):
        model = Pipeline([("prep", _Prep(kind)), ("clf", LogisticRegression(max_iter=2000))])
        return model, grid

    gbm = Pipeline(
        [
            ("prep", _Prep("tabular")),
            (
                "clf",
                HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, random_state=seed),
            ),
        ]
    )
    gbm_grid = {f"clf__{k}": v for k, v in GBM_GRID.items()}
    return {
        "logreg_onehot": logreg("tabular", {"clf__C": LR_C}),
        "gbm_onehot": (gbm, gbm_grid),
        "minilm_text_logreg": logreg("text", {"clf__C": TEXT_C}),
        "fusion_text_tabular_logreg": logreg(
            "fusion", {"clf__C": LR_C, "prep__text_weight": TEXT_WEIGHTS}
        ),
    }


class _Prep:
    """Row indices -> features as ``RiskScorer`` builds them: one-hot categoricals +
    standardised numerics, the L2-normalised text vectors times ``text_weight``, or both."""

    frame = None
    vectors = None

    def __init__(self, kind: str = "tabular", text_weight: float = 1.0) -> None:
        self.kind = kind
        self.text_weight = text_weight

    def get_params(self, deep: bool = True) -> dict:
        return {"kind": self.kind, "text_weight": self.text_weight}

    def set_params(self, **params) -> _Prep:
        self.kind = params.get("kind", self.kind)
        self.text_weight = params.get("text_weight", self.text_weight)
        return self

    def fit(self, rows, y=None) -> _Prep:
        rows = np.asarray(rows).ravel()
        if self.kind != "text":
            self.tab_ = _tabular(None, None).fit(_Prep.frame.iloc[rows])
        return self

    def transform(self, rows) -> np.ndarray:
        rows = np.asarray(rows).ravel()
        parts = []
        if self.kind != "text":
            parts.append(self.tab_.transform(_Prep.frame.iloc[rows]))
        if self.kind != "tabular":
            parts.append(self.text_weight * _Prep.vectors[rows])
        return np.hstack(parts)

    def fit_transform(self, rows, y=None) -> np.ndarray:
        return self.fit(rows, y).transform(rows)


def run(quick: bool = False) -> dict:
    from dayzero.data.datasets.german_credit import CATEGORICAL, NUMERIC, load_german_credit
    from dayzero.data.splits import train_test_split_stratified
    from dayzero.data.templates import serialize_row
    from dayzero.encoders.encoder import TextEncoder
    from dayzero.evaluate.classification import roc_auc

    data = load_german_credit()
    frame = data.X[[*CATEGORICAL, *NUMERIC]].reset_index(drop=True)
    y = data.y.to_numpy().astype(int)
    start = time.perf_counter()
    texts = [serialize_row(r) for r in frame.to_dict(orient="records")]
    vectors = TextEncoder().encode(texts, batch_size=64, normalize=True)
    encode_seconds = time.perf_counter() - start
    _Prep.frame, _Prep.vectors = frame, vectors
    train, test = train_test_split_stratified(y, test_size=0.2, seed=0)
    ks = KS[:3] if quick else KS
    seeds = SEEDS[:2] if quick else SEEDS
    results: dict[str, dict] = {}
    for k in ks:
        for seed in seeds:
            pick = train if k == "all" else train[_draw(y[train], int(k), seed)]
            for name, (model, grid) in _models(seed).items():
                t0 = time.perf_counter()
                best = _search(model, grid, pick.reshape(-1, 1), y[pick], seed)
                auc = roc_auc(y[test], best.predict_proba(test.reshape(-1, 1))[:, 1])
                row = results.setdefault(name, {}).setdefault(str(k), {"auc": [], "seconds": []})
                row["auc"].append(auc)
                row["seconds"].append(time.perf_counter() - t0)
        print(f"k={k} done", flush=True)
    summary = {
        name: {
            k: {"mean": float(np.mean(v["auc"])), "std": float(np.std(v["auc"], ddof=1))}
            | {"per_seed": v["auc"], "fit_seconds_mean": float(np.mean(v["seconds"]))}
            for k, v in by_k.items()
        }
        for name, by_k in results.items()
    }
    return {
        "protocol": "TabLLM: 80/20 stratified split seed 0, class-balanced k-shot from train, "
        "5 seeds, hyper-parameters by stratified CV (ROC-AUC) on the k rows only",
        "n_train": len(train),
        "n_test": len(test),
        "encoder": "all-MiniLM-L6-v2 (frozen, mean pooling, L2-normalised)",
        "encode_seconds": encode_seconds,
        "tabllm_best": {str(k): v for k, v in TABLLM_BEST.items()},
        "results": summary,
        "machine": machine(),
    }


def table(payload: dict) -> str:
    ks = list(next(iter(payload["results"].values())).keys())
    lines = ["| model | " + " | ".join(ks) + " |", "|---" * (len(ks) + 1) + "|"]
    best = payload["tabllm_best"]
    lines.append("| TabLLM table best | " + " | ".join(f"{best[k]:.2f}" for k in ks) + " |")
    for name, by_k in payload["results"].items():
        cells = [f"{by_k[k]['mean']:.3f} ± {by_k[k]['std']:.3f}" for k in ks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k <= 16, two seeds, not saved")
    args = parser.parse_args()
    start = time.perf_counter()
    payload = run(quick=args.quick)
    payload["wall_seconds"] = time.perf_counter() - start
    if not args.quick:
        save("german_credit_kshot", payload)
    print(table(payload))
    print(f"wall {payload['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
