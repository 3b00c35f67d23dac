"""German credit k-shot curves with TabLLM's protocol (ANCHORS.md §3): test ROC-AUC.

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 python bench/german_credit_kshot.py

1. 80/20 stratified train/test split (seed 0) of the 1,000 applicants.
2. For k = 4, 8, ..., 512 and seeds 0-4, draw k rows class-balanced from the train part
   (``kshot_sample``; at k=512 the train part has only 240 bads: all of them plus 272 goods);
   "all" uses every train row (the seed then only moves the models' own
   randomness and the CV folds).
3. Every model picks its hyper-parameters by stratified cross-validation (ROC-AUC) on the k rows
   only; the test part is touched once, for the final score.

Models: logistic regression and gradient boosting (LightGBM, built by
``dayzero.risk.gbm.gbm_classifier`` as ``RiskScorer(head="gbm")`` builds it) on one-hot
categoricals + standardised numerics (TabLLM's baselines), frozen MiniLM on the TabLLM sentence
serialisation + logistic regression (what ``RiskScorer(head="logistic")`` fits), and fusion
(text vector + the one-hot features, ``RiskScorer(fusion=True)``). The encoder reads 128 tokens,
which cuts the serialised row (about 200 tokens) after the categorical fields.

The library's default scorer on the raw columns (``riskscorer_default``: ``RiskScorer()``,
which compares LightGBM of depth 3 and 6 with an L2 logistic regression on 5 stratified folds
of the k rows, or fewer when a class has fewer rows, and keeps the best mean fold AUC;
``riskscorer_gbm_only``: ``RiskScorer(linear=False)``, LightGBM alone, the default before the
linear candidate).

Fine-tuned text models (same 128 tokens, ``--max-length``): LoRA (``minilm_lora``:
``TextClassifier(strategy="lora")``, what ``RiskScorer(head="encoder")`` fits; LP-FT, a logistic
probe, then LoRA r=8 + the head trained with cross-entropy) and the SetFit-style few-shot mode
(``minilm_setfit``: ``TextClassifier(few_shot=True)``, contrastive full fine-tuning on label
pairs, then a logistic head). Their probe / head ``C`` is chosen by CV on the k rows' frozen
vectors; learning rate, epochs and pair counts are fixed in advance (``TUNED``), never tuned on
the test part.

Writes ``bench/results/german_credit_kshot.json`` (merged by model, k and seed, so models, ks and
seeds can be run separately with ``--models``, ``--ks`` and ``--seeds``; a fine-tuned model's
result is saved after every fit) and prints a Markdown table::

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 python bench/german_credit_kshot.py \\
        --models minilm_lora,minilm_setfit --ks 4,8,16,32,64 --seeds 0 --cache-dir /tmp/gc-cache
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, save

NAME = "german_credit_kshot"
KS: tuple[int | str, ...] = (4, 8, 16, 32, 64, 128, 256, 512, "all")
SEEDS = (0, 1, 2, 3, 4)
# Best of LogReg / XGBoost / LightGBM / TabPFN / TabLLM in TabLLM's table (ANCHORS.md §3).
TABLLM_BEST = {4: 0.71, 8: 0.67, 16: 0.69, 32: 0.73, 64: 0.70, 128: 0.72, 256: 0.75, 512: 0.76}
TABLLM_BEST["all"] = 0.79
LR_C = (0.001, 0.01, 0.1, 1.0, 10.0)
# L2-normalised 384-d vectors have entries ~0.05, so the text-only head needs larger C.
TEXT_C = (0.1, 1.0, 10.0, 100.0, 1000.0)
TEXT_WEIGHTS = (1.0, 3.0, 10.0)
# LightGBM's names: min_child_samples is RiskScorer's min_samples_leaf.
GBM_GRID = {"max_depth": (2, 4), "min_child_samples": (2, 10)}
SKLEARN_MODELS = ("logreg_onehot", "gbm_onehot", "minilm_text_logreg", "fusion_text_tabular_logreg")
TUNED_MODELS = ("minilm_lora", "minilm_setfit")
# The library's default scorer on the raw columns: with its linear candidate (what RiskScorer()
# fits) and without it (LightGBM alone, the default before the linear candidate).
SCORER_MODELS = ("riskscorer_default", "riskscorer_gbm_only")
# Fixed in advance. Few rows give few optimizer steps, so small k gets more epochs (LoRA) or more
# pairs per row (SetFit); both are capped so that one fit stays within minutes on 2 cores.
TUNED = {
    "lora": {"r": 8, "lr": 3e-4, "batch_size": 16},
    "setfit": {"lr": 2e-5, "batch_size": 16, "epochs": 1},
}


def _lora_epochs(k: int) -> int:
    return int(min(10, max(2, 2 * int(np.ceil(64 / k)))))


def _pair_iterations(k: int) -> int:
    return int(min(4, max(1, 64 // k)))


def _draw(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Class-balanced k rows; when a class has fewer than k/2 rows (240 bads at k=512), all of it
    and the rest from the other class, as TabLLM's sampler does when a class runs out."""
    from dayzero.evaluate.protocols.splits import kshot_sample

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

    from dayzero.datasets.german_credit import CATEGORICAL, NUMERIC

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
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from dayzero.risk.gbm import gbm_classifier

    def logreg(kind: str, grid: dict):
        model = Pipeline([("prep", _Prep(kind)), ("clf", LogisticRegression(max_iter=2000))])
        return model, grid

    gbm = Pipeline(
        [
            ("prep", _Prep("tabular")),
            ("clf", gbm_classifier(max_iter=100, learning_rate=0.05, random_state=seed)),
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


def _best_c(vectors: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression

    search = _search(LogisticRegression(max_iter=2000), {"C": TEXT_C}, vectors, y, seed)
    return float(search.C)


def _tuned_fit_predict(
    name: str, texts, y, pick, test, encoder, max_length: int, seed: int
) -> np.ndarray:
    """Fit one fine-tuned text model on the rows ``pick``; probability of default on ``test``."""
    from dayzero.risk.text_classifier import TextClassifier

    k = len(pick)
    vectors = encoder.encode([texts[i] for i in pick], batch_size=32, normalize=True)
    common = {
        "max_length": max_length,
        "head_C": _best_c(vectors, y[pick], seed),
        "random_state": seed,
    }
    if name == "minilm_lora":
        cfg = TUNED["lora"]
        model = TextClassifier(
            strategy="lora",
            strategy_params={"r": cfg["r"]},
            epochs=_lora_epochs(k),
            lr=cfg["lr"],
            batch_size=cfg["batch_size"],
            **common,
        )
    else:
        cfg = TUNED["setfit"]
        model = TextClassifier(
            few_shot=True,
            pair_iterations=_pair_iterations(k),
            epochs=cfg["epochs"],
            lr=cfg["lr"],
            batch_size=cfg["batch_size"],
            **common,
        )
    model.fit([texts[i] for i in pick], y[pick])
    return model.predict_proba([texts[i] for i in test])[:, 1]


def _summary(by_k: dict) -> dict:
    out = {}
    for k, v in by_k.items():
        n = len(v["auc"])
        out[k] = {
            "mean": float(np.mean(v["auc"])),
            "std": float(np.std(v["auc"], ddof=1)) if n > 1 else None,
            "per_seed": v["auc"],
            "seeds": v["seeds"],
            "fit_seconds_mean": float(np.mean(v["seconds"])),
        }
        if "settings" in v:
            out[k]["settings"] = v["settings"]
    return out


def run(
    quick: bool = False,
    models: tuple[str, ...] = SKLEARN_MODELS,
    ks: tuple[int | str, ...] = KS,
    seeds: tuple[int, ...] = SEEDS,
    on_done=None,
    max_length: int = 128,
    cache_dir: str | None = None,
) -> dict:
    """Score ``models`` at every k and seed; ``on_done(partial payload)`` after every k and
    after every fine-tuned fit."""
    from dayzero.core.templates import serialize_row
    from dayzero.datasets.german_credit import CATEGORICAL, NUMERIC, load_german_credit
    from dayzero.evaluate.protocols.splits import train_test_split_stratified
    from dayzero.risk.metrics import roc_auc
    from dayzero.risk.scorer import RiskScorer
    from dayzero.text.encoder import TextEncoder

    data = load_german_credit()
    frame = data.X[[*CATEGORICAL, *NUMERIC]].reset_index(drop=True)
    y = data.y.to_numpy().astype(int)
    texts = [serialize_row(r) for r in frame.to_dict(orient="records")]
    payload: dict = {"results": {}}
    sklearn_models = [m for m in models if m in SKLEARN_MODELS]
    tuned_models = [m for m in models if m in TUNED_MODELS]
    scorer_models = [m for m in models if m in SCORER_MODELS]
    cache = None if cache_dir is None else Path(cache_dir) / f"len{max_length}"
    encoder = TextEncoder(max_length=max_length, cache_dir=cache)
    if sklearn_models:
        start = time.perf_counter()
        vectors = TextEncoder(cache_dir=cache).encode(texts, batch_size=64, normalize=True)
        payload["encode_seconds"] = time.perf_counter() - start
        _Prep.frame, _Prep.vectors = frame, vectors
    train, test = train_test_split_stratified(y, test_size=0.2, seed=0)
    if quick:
        ks, seeds = ks[:3], seeds[:2]
    results: dict[str, dict] = {}

    def record(name: str, k, seed: int, auc: float, seconds: float, settings=None) -> None:
        row = results.setdefault(name, {}).setdefault(
            str(k), {"auc": [], "seconds": [], "seeds": []}
        )
        row["auc"].append(float(auc))
        row["seconds"].append(seconds)
        row["seeds"].append(seed)
        if settings is not None:
            row["settings"] = settings

    for k in ks:
        for seed in seeds:
            pick = train if k == "all" else train[_draw(y[train], int(k), seed)]
            for name, (model, grid) in _models(seed).items():
                if name not in sklearn_models:
                    continue
                t0 = time.perf_counter()
                best = _search(model, grid, pick.reshape(-1, 1), y[pick], seed)
                auc = roc_auc(y[test], best.predict_proba(test.reshape(-1, 1))[:, 1])
                record(name, k, seed, auc, time.perf_counter() - t0)
            for name in scorer_models:
                t0 = time.perf_counter()
                scorer = RiskScorer(random_state=seed, linear=name == "riskscorer_default")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # unseen categories of the test rows
                    scorer.fit(frame.iloc[pick], y[pick])
                    auc = roc_auc(y[test], scorer.predict_pd(frame.iloc[test]))
                row = results.setdefault(name, {}).setdefault(
                    str(k), {"auc": [], "seconds": [], "seeds": []}
                )
                chosen = row.setdefault("settings", {"chosen_per_seed": []})
                chosen["chosen_per_seed"].append(
                    scorer.tabular_model_
                    if scorer.tabular_model_ == "linear"
                    else f"gbm depth {scorer.depth_}"
                )
                record(name, k, seed, auc, time.perf_counter() - t0, chosen)
            for name in tuned_models:
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    score = _tuned_fit_predict(
                        name, texts, y, pick, test, encoder, max_length, seed
                    )
                settings = {"max_length": max_length}
                if name == "minilm_lora":
                    settings |= TUNED["lora"] | {"epochs": _lora_epochs(len(pick))}
                else:
                    settings |= TUNED["setfit"] | {"pair_iterations": _pair_iterations(len(pick))}
                record(name, k, seed, roc_auc(y[test], score), time.perf_counter() - t0, settings)
                if on_done is not None:
                    on_done({"results": {name: _summary(results[name])}})
                print(
                    f"  {name} k={k} seed={seed} auc {results[name][str(k)]['auc'][-1]:.3f} "
                    f"{time.perf_counter() - t0:.0f}s",
                    flush=True,
                )
        payload["results"] = {name: _summary(by_k) for name, by_k in results.items()}
        if on_done is not None:
            on_done(payload)
        print(f"k={k} done", flush=True)
    payload.update(
        {
            "protocol": "TabLLM: 80/20 stratified split seed 0, class-balanced k-shot from train, "
            "5 seeds, hyper-parameters by stratified CV (ROC-AUC) on the k rows only",
            "n_train": len(train),
            "n_test": len(test),
            "encoder": "all-MiniLM-L6-v2 (frozen, mean pooling, L2-normalised)",
            "tabllm_best": {str(k): v for k, v in TABLLM_BEST.items()},
            "machine": machine(),
        }
    )
    return payload


def _merge_cell(old: dict | None, new: dict) -> dict:
    """Seeds run separately add up; a seed run again replaces its old value."""
    if old is None or "seeds" not in old:
        return new
    aucs = dict(zip(old["seeds"], old["per_seed"], strict=True))
    aucs |= dict(zip(new["seeds"], new["per_seed"], strict=True))
    seeds = sorted(aucs)
    values = [aucs[s] for s in seeds]
    n_old = len(set(old["seeds"]) - set(new["seeds"]))
    seconds = (old["fit_seconds_mean"] * n_old + new["fit_seconds_mean"] * len(new["seeds"])) / (
        n_old + len(new["seeds"])
    )
    return new | {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "per_seed": values,
        "seeds": seeds,
        "fit_seconds_mean": float(seconds),
    }


def merge(payload: dict, name: str = NAME) -> dict:
    """``payload`` merged into the saved results ``bench/results/<name>.json``: a new (model, k)
    cell adds its seeds to the saved cell's (a seed run again replaces its old value)."""
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {"results": {}}
    merged = dict(old)
    for key, value in payload.items():
        if key == "results":
            continue
        if key in ("encode_seconds", "machine") and key in old:
            continue  # keep the figures of the run that produced the existing rows
        merged[key] = value
    results = {name: dict(by_k) for name, by_k in old.get("results", {}).items()}
    for name, by_k in payload["results"].items():
        cells = results.setdefault(name, {})
        for k, cell in by_k.items():
            cells[k] = _merge_cell(cells.get(k), cell)
    order = {str(k): i for i, k in enumerate(KS)}
    merged["results"] = {
        name: dict(sorted(by_k.items(), key=lambda kv: order.get(kv[0], 99)))
        for name, by_k in results.items()
    }
    return merged


def _cell(cell: dict | None) -> str:
    if cell is None:
        return "—"
    if cell["std"] is None:
        return f"{cell['mean']:.3f} (1 seed)"
    return f"{cell['mean']:.3f} ± {cell['std']:.3f}"


def table(payload: dict) -> str:
    ks = [str(k) for k in KS]
    lines = ["| model | " + " | ".join(ks) + " |", "|---" * (len(ks) + 1) + "|"]
    best = payload["tabllm_best"]
    lines.append("| TabLLM table best | " + " | ".join(f"{best[k]:.2f}" for k in ks) + " |")
    for name, by_k in payload["results"].items():
        cells = [_cell(by_k.get(k)) for k in ks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parse_ks(text: str) -> tuple[int | str, ...]:
    return tuple(k if k == "all" else int(k) for k in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k <= 16, two seeds, not saved")
    parser.add_argument(
        "--models",
        default=",".join(SKLEARN_MODELS),
        help=f"comma-separated, of {', '.join(SKLEARN_MODELS + TUNED_MODELS + SCORER_MODELS)}",
    )
    parser.add_argument("--ks", default=",".join(str(k) for k in KS), help="e.g. 4,8,16,all")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="e.g. 0,1,2")
    parser.add_argument("--max-length", type=int, default=128, help="fine-tuned models' tokens")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (frozen vectors)")
    parser.add_argument(
        "--out",
        default=NAME,
        help="results name (bench/results/<out>.json); a separate name lets runs go in parallel",
    )
    parser.add_argument(
        "--merge-from", default=None, help="only merge bench/results/<name>.json into --out"
    )
    args = parser.parse_args()
    models = tuple(args.models.split(","))
    unknown = sorted(set(models) - set(SKLEARN_MODELS + TUNED_MODELS + SCORER_MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}")
    if args.merge_from:
        other = json.loads((RESULTS / f"{args.merge_from}.json").read_text())
        save(args.out, merge(other, args.out))
        print(table(merge({"results": {}}, args.out)))
        return
    start = time.perf_counter()

    def checkpoint(partial: dict) -> None:
        if not args.quick:
            save(args.out, merge(partial, args.out))

    payload = run(
        quick=args.quick,
        models=models,
        ks=_parse_ks(args.ks),
        seeds=tuple(int(s) for s in args.seeds.split(",")),
        on_done=checkpoint,
        max_length=args.max_length,
        cache_dir=args.cache_dir,
    )
    seconds = time.perf_counter() - start
    if not args.quick:
        payload = merge(payload, args.out)
        if set(models) == set(SKLEARN_MODELS):
            payload["wall_seconds"] = seconds
        save(args.out, payload)
    print(table(payload))
    print(f"wall {seconds:.0f} s")


if __name__ == "__main__":
    main()
