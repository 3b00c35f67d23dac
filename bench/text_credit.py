"""Does free text add signal to a credit score? Tabular-only vs tabular + text (issue 14, item 3).

Every dataset here is a public credit table with free-text fields written at application time
(``bench/_credit_data.py``, kept outside the repo; ``TEXT_COLUMNS`` names the fields):

* ``lending-club``: Lending Club 2007-2011, finished loans, ``desc`` / ``emp_title`` / ``title``
  (the issue's suggestion; run only where its file is present, see ``SOURCES``);
* ``openintro-loans``: 10,000 Lending Club loans of 2018 Q1 with ``emp_title`` (weak label:
  late, in grace or charged off a few months after issue, 1.8 %);
* ``lending-club-sample``: 1,000 Lending Club loans 2009-2018, ``emp_title`` / ``title`` /
  ``desc`` (73 filled);
* ``sba-loans``: U.S. SBA 7(a) loans, the borrower business's ``Name``, its ``City`` and its
  ``Bank``; a seeded stratified draw of ``--sba-rows`` rows.

Protocol, per dataset: stratified 5-fold cross-fitting (seed 0). Each model is fitted on four
folds and scores the fifth, so every row gets one out-of-fold score from a model that never saw
it; AUC and KS are computed on the pooled out-of-fold scores, with 95 % percentile bootstrap
intervals over rows (1,000 resamples), and each text model's AUC and KS minus the tabular
model's on the same resamples (paired). Every choice a model makes (depth, rounds, linear or
trees, text columns kept) is made on folds of its own training rows; nothing looks at the held-out
fold. Models:

* ``tabular``: ``RiskScorer(random_state=0)`` on the table without its text columns;
* ``text-category``: the text fields lower-cased and stripped, given to ``RiskScorer`` as
  categorical columns (what a gradient-boosting user would do with a job title);
* ``text-frozen``: ``RiskScorer(text_columns=TEXT)``, the default: frozen all-MiniLM-L6-v2
  vectors of each text column, 16 principal components each, kept only when the training rows'
  folds say they help (``text_selection="cv"``);
* ``text-frozen-always``: the same features always kept (``text_selection="always"``);
* ``text-finetuned``: MiniLM fully fine-tuned on the training rows' texts (every text column's
  values, each labelled with its row's outcome, at most 8,000 of them, a seeded draw; one epoch,
  lr 2e-5, batch 32, 32 tokens), saved as
  an encoder folder; ``RiskScorer(encoder=folder, text_selection="always")``. The encoder saw the
  training rows' labels, so the scorer's own folds would overrate it; the held-out fold does not;
* ``text-sentiment``: ``text-frozen-always`` plus a sentiment score of the borrower-written
  column (``desc`` where present, else ``title``): a frozen MiniLM + logistic
  ``TextClassifier`` fitted on Financial PhraseBank (>= 50 % agreement, all 4,846 sentences),
  positive-class probability. Only datasets with a borrower-written column.

Run::

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 python bench/text_credit.py
    ... --datasets openintro-loans --models tabular,text-frozen

Writes ``bench/results/text_credit.json`` (rows merged by dataset and model).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, save
from _credit_data import TEXT_COLUMNS, CreditDataMissing, load
from dayzero.evaluate.intervals import bootstrap_ci
from dayzero.risk.metrics import ks_statistic, roc_auc
from dayzero.risk.scorer import RiskScorer

NAME = "text_credit"
MODELS = (
    "tabular",
    "text-category",
    "text-frozen",
    "text-frozen-always",
    "text-finetuned",
    "text-sentiment",
)
DATASETS = ("lending-club", "openintro-loans", "lending-club-sample", "sba-loans")
# Columns the borrower wrote (a loan description, a loan title): what a sentiment score reads.
BORROWER_TEXT = ("desc", "title")
FOLDS = 5
FINE_TUNE = {"strategy": "full", "epochs": 1, "lr": 2e-5, "batch_size": 32, "max_length": 32}
# Fine-tuning texts per fold, a seeded draw when there are more (CPU time: 250 steps of 32).
FINE_TUNE_TEXTS = 8_000


def load_dataset(name: str, sba_rows: int) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """``(X, y, text_columns)``; SBA as a seeded stratified draw of ``sba_rows`` rows."""
    X, y = load(name)
    y = np.asarray(y)
    if name == "sba-loans" and len(X) > sba_rows:
        rows, _ = train_test_split(
            np.arange(len(X)), train_size=sba_rows, stratify=y, random_state=0
        )
        rows = np.sort(rows)
        X, y = X.iloc[rows].reset_index(drop=True), y[rows]
    text = [c for c in TEXT_COLUMNS.get(name, []) if c in X.columns]
    return X, y, text


def _as_categories(X: pd.DataFrame, text: list[str]) -> pd.DataFrame:
    out = X.copy()
    for column in text:
        values = out[column].astype("string").str.strip().str.lower()
        out[column] = values.where(values.str.len() > 0).astype(object)
    return out


def _sentiment_model():
    from dayzero.datasets.sentiment import load_financial_phrasebank
    from dayzero.risk.text_classifier import TextClassifier

    frame = load_financial_phrasebank(agreement="50agree")
    # classes_ sorted: negative, neutral, positive; RiskScorer reads the last column's probability
    table = frame.frame
    return TextClassifier(random_state=0).fit(list(table["text"]), list(table["label"]))


def _fine_tuned_encoder(X: pd.DataFrame, y: np.ndarray, text: list[str], folder: Path) -> str:
    from dayzero.risk.text_classifier import TextClassifier

    texts, labels = [], []
    for column in text:
        present = X[column].notna() & (X[column].astype("string").str.strip().str.len() > 0)
        texts += [str(v) for v in X.loc[present, column]]
        labels += list(y[present.to_numpy()])
    if len(texts) > FINE_TUNE_TEXTS:
        keep = np.random.default_rng(0).choice(len(texts), FINE_TUNE_TEXTS, replace=False)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    classifier = TextClassifier(random_state=0, **FINE_TUNE).fit(texts, np.asarray(labels))
    classifier.encoder_.save(folder)
    return str(folder)


def fit_score(
    model: str,
    X: pd.DataFrame,
    y: np.ndarray,
    X_test: pd.DataFrame,
    text: list[str],
    work: Path,
    sentiment,
) -> tuple[np.ndarray, dict]:
    """Out-of-fold probabilities of default for ``X_test`` and what the model chose."""
    if model == "tabular":
        scorer = RiskScorer(random_state=0).fit(X.drop(columns=text), y)
        return scorer.predict_pd(X_test.drop(columns=text)), _choices(scorer)
    if model == "text-category":
        scorer = RiskScorer(random_state=0, text_columns=[])
        scorer.fit(_as_categories(X, text), y)
        return scorer.predict_pd(_as_categories(X_test, text)), _choices(scorer)
    options: dict = {"random_state": 0, "text_columns": text}
    if model != "text-frozen":
        options["text_selection"] = "always"
    if model == "text-finetuned":
        options["encoder"] = _fine_tuned_encoder(X, y, text, work / "encoder")
    if model == "text-sentiment":
        options["sentiment"] = sentiment
        options["sentiment_column"] = next(c for c in BORROWER_TEXT if c in text)
    scorer = RiskScorer(**options).fit(X, y)
    return scorer.predict_pd(X_test), _choices(scorer)


def _choices(scorer: RiskScorer) -> dict:
    selection = scorer.text_selection_
    return {
        "tabular_model": scorer.tabular_model_,
        "depth": scorer.depth_,
        "text_selected": list(selection["selected"]),
        "text_gain": {c: v["gain"] for c, v in selection["candidates"].items()},
    }


def _ks(y: np.ndarray, p: np.ndarray) -> float:
    return ks_statistic(y, p).statistic


def run_dataset(name: str, models: list[str], sba_rows: int) -> list[dict]:
    X, y, text = load_dataset(name, sba_rows)
    borrower = [c for c in BORROWER_TEXT if c in text]
    models = [m for m in models if m != "text-sentiment" or borrower]
    sentiment = _sentiment_model() if "text-sentiment" in models else None
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(X, y))
    filled = {c: float(X[c].notna().mean()) for c in text}
    print(f"{name}: {len(X)} rows, {y.mean():.3f} bad, text {filled}", flush=True)
    out, scores = [], {}
    for model in models:
        oof, choices, start = np.zeros(len(y)), [], time.perf_counter()
        for i, (train, test) in enumerate(folds):
            with tempfile.TemporaryDirectory() as work, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, chosen = fit_score(
                    model,
                    X.iloc[train].reset_index(drop=True),
                    y[train],
                    X.iloc[test].reset_index(drop=True),
                    text,
                    Path(work),
                    sentiment,
                )
            oof[test] = p
            choices.append({"fold": i, **chosen})
        seconds = time.perf_counter() - start
        scores[model] = oof
        auc = bootstrap_ci(roc_auc, y, oof, random_state=0)
        ks = bootstrap_ci(_ks, y, oof, random_state=0)
        row = {
            "dataset": name,
            "model": model,
            "rows": len(y),
            "bad_rate": float(y.mean()),
            "text_columns": text,
            "text_filled": filled,
            "auc": auc[0],
            "auc_ci": [auc[1], auc[2]],
            "ks": ks[0],
            "ks_ci": [ks[1], ks[2]],
            "seconds": seconds,
            "folds": choices,
        }
        line = f"{name:20s} {model:19s} AUC {auc[0]:.3f} [{auc[1]:.3f}, {auc[2]:.3f}]"
        line += f" KS {ks[0]:.3f}"
        if model != "tabular" and "tabular" in scores:
            for metric, fn in (("auc", roc_auc), ("ks", _ks)):
                diff = bootstrap_ci(
                    lambda t, a, b, fn=fn: fn(t, a) - fn(t, b),
                    y,
                    oof,
                    scores["tabular"],
                    random_state=0,
                )
                row[f"{metric}_gain"] = diff[0]
                row[f"{metric}_gain_ci"] = [diff[1], diff[2]]
            line += (
                f"  gain AUC {row['auc_gain']:+.4f} "
                f"[{row['auc_gain_ci'][0]:+.4f}, {row['auc_gain_ci'][1]:+.4f}]"
            )
        kept = sorted({c for f in choices for c in f["text_selected"]})
        print(line + f"  kept {kept}  {seconds:.0f} s", flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sba-rows", type=int, default=20_000)
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {MODELS}")
    models = ["tabular", *[m for m in models if m != "tabular"]]  # every gain is against it
    path = RESULTS / f"{NAME}.json"
    for name in args.datasets.split(","):
        try:
            rows = run_dataset(name, models, args.sba_rows)
        except CreditDataMissing as missing:
            print(f"{name}: skipped ({missing})", flush=True)
            continue
        previous = json.loads(path.read_text())["rows"] if path.is_file() else []
        key = lambda r: (r["dataset"], r["model"])  # noqa: E731
        fresh = {key(r) for r in rows}
        merged = [r for r in previous if key(r) not in fresh] + rows
        save(  # after every dataset: a later failure keeps what was measured
            NAME,
            {
                "protocol": (
                    f"stratified {FOLDS}-fold cross-fitting (seed 0): every row scored once by "
                    "a model fitted on the other folds; AUC and KS of the pooled out-of-fold "
                    "scores with 95 % percentile bootstrap CIs over rows (1,000 resamples); "
                    "gains against the tabular model paired on the same resamples; every "
                    "model choice made on folds of its own training rows"
                ),
                "fine_tune": {**FINE_TUNE, "max_texts": FINE_TUNE_TEXTS},
                "sba_rows": args.sba_rows,
                "machine": {**machine(), "note": "2 shared CPU cores: timings indicative only"},
                "rows": sorted(merged, key=key),
            },
        )


if __name__ == "__main__":
    main()
