"""Is the default ``RiskScorer()`` ever worse than gradient boosting? AUC on public credit tables.

Issue 14 measured, on the Taiwan credit-default table (30,000 card holders, tabular only) and the
same 4,000-row training subset: the old text default 0.684, ``fusion=True`` 0.731, plain
LogisticRegression 0.717, scikit-learn's HistGradientBoosting 0.758 (0.792 on all 24,000 rows).
This script reruns that comparison with the new default.

Protocol, per dataset: one stratified 80/20 split (seed 0); the test part is never seen by any
model or choice. Training sets: the whole training part (``full``) and, where it is larger than
``--subset`` rows, ``--subset-seeds`` stratified draws of ``--subset`` rows from it
(``subset-<seed>``). Models, each with its defaults (nothing tuned on the test part):

* ``riskscorer``: ``RiskScorer(random_state=0)``; its rounds (and any text decision) are chosen
  on 5 stratified folds of the training rows;
* ``hist-gbm``: ``HistGradientBoostingClassifier(random_state=0)``, string columns as pandas
  categoricals (``categorical_features="from_dtype"``; one with over 255 values, its limit, as
  integer codes);
* ``logistic``: median imputation + standardisation of numerics, one-hot categoricals (missing
  as its own value), ``LogisticRegression(max_iter=5000)``.

AUC on the test part with a 95 % percentile bootstrap interval (1,000 resamples of the test
rows); ``diff_vs_hist_gbm``: RiskScorer's AUC minus HistGradientBoosting's on the same resamples
(paired), with its interval. The tables come from ``bench/_credit_data.py`` (kept outside the
repo; see its docstring). Run::

    HF_HUB_OFFLINE=1 python bench/risk_tabular.py                 # taiwan-default (the issue's)
    HF_HUB_OFFLINE=1 python bench/risk_tabular.py --datasets taiwan-default,hmeq,credit-data

Writes ``bench/results/risk_tabular.json`` (rows merged by dataset, training set and model).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, save
from _credit_data import TEXT_COLUMNS, load
from dayzero.evaluate.intervals import bootstrap_ci
from dayzero.risk.scorer import RiskScorer

NAME = "risk_tabular"
MODELS = ("riskscorer", "hist-gbm", "logistic")


def _numeric(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _for_sklearn(frame: pd.DataFrame) -> pd.DataFrame:
    """String / bool columns as pandas categoricals."""
    out = frame.copy()
    for column in out.columns:
        if column not in _numeric(out):
            values = out[column].astype(object).to_numpy()
            # object categories with NaN for missing: HistGradientBoosting cannot sort pd.NA
            categories = sorted({str(v) for v in values if not pd.isna(v)})
            out[column] = pd.Categorical(
                [np.nan if pd.isna(v) else str(v) for v in values],
                categories=pd.Index(categories, dtype=object),
            )
    return out


def fit_predict(model: str, X: pd.DataFrame, y: np.ndarray, X_test: pd.DataFrame) -> np.ndarray:
    if model == "riskscorer":
        scorer = RiskScorer(random_state=0).fit(X, y)
        return scorer.predict_pd(X_test)
    X, X_test = _for_sklearn(X), _for_sklearn(X_test)
    if model == "hist-gbm":
        for column in X.columns:
            if not isinstance(X[column].dtype, pd.CategoricalDtype):
                continue
            categories = X[column].cat.categories
            X_test[column] = pd.Categorical(X_test[column], categories=categories)
            if len(categories) > 255:  # HistGradientBoosting's limit: codes as a numeric
                X[column] = X[column].cat.codes.replace(-1, np.nan).astype(float)
                X_test[column] = X_test[column].cat.codes.replace(-1, np.nan).astype(float)
        gbm = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
        return gbm.fit(X, y).predict_proba(X_test)[:, 1]
    numeric = _numeric(X)
    categorical = [c for c in X.columns if c not in numeric]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore"),
                categorical,
            ),
        ]
    )
    X, X_test = X.copy(), X_test.copy()
    for column in categorical:
        for frame in (X, X_test):  # missing as its own value
            values = frame[column].astype(object).to_numpy()
            frame[column] = [("(missing)" if pd.isna(v) else str(v)) for v in values]
    pipe = make_pipeline(prep, LogisticRegression(max_iter=5000))
    return pipe.fit(X, y).predict_proba(X_test)[:, 1]


def run_dataset(name: str, subset: int, seeds: int, models: list[str]) -> list[dict]:
    X, y = load(name)
    text = [c for c in TEXT_COLUMNS.get(name, []) if c in X.columns]
    X = X.drop(columns=text)  # this benchmark is about tables; text gains are item 3's
    y = np.asarray(y)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    X_train, X_test = X_train.reset_index(drop=True), X_test.reset_index(drop=True)
    sets = {"full": np.arange(len(X_train))}
    if len(X_train) > subset:
        for seed in range(seeds):
            rows, _ = train_test_split(
                np.arange(len(X_train)), train_size=subset, stratify=y_train, random_state=seed
            )
            sets[f"subset-{seed}"] = np.sort(rows)
    out = []
    for set_name, rows in sets.items():
        predictions = {}
        for model in models:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = fit_predict(model, X_train.iloc[rows], y_train[rows], X_test)
            seconds = time.perf_counter() - start
            predictions[model] = p
            auc, low, high = bootstrap_ci(roc_auc_score, y_test, p, random_state=0)
            row = {
                "dataset": name,
                "train_set": set_name,
                "train_rows": len(rows),
                "test_rows": len(y_test),
                "bad_rate_test": float(np.mean(y_test)),
                "model": model,
                "auc": auc,
                "auc_ci": [low, high],
                "fit_predict_seconds": seconds,
                "text_columns_dropped": text,
            }
            if model != "hist-gbm" and "hist-gbm" in predictions:
                diff = bootstrap_ci(
                    lambda t, a, b: roc_auc_score(t, a) - roc_auc_score(t, b),
                    y_test,
                    p,
                    predictions["hist-gbm"],
                    random_state=0,
                )
                row["diff_vs_hist_gbm"] = diff[0]
                row["diff_vs_hist_gbm_ci"] = [diff[1], diff[2]]
            out.append(row)
            print(
                f"{name:16s} {set_name:9s} {model:11s} AUC {auc:.3f} [{low:.3f}, {high:.3f}]"
                + (
                    f"  vs hist-gbm {row['diff_vs_hist_gbm']:+.3f} "
                    f"[{row['diff_vs_hist_gbm_ci'][0]:+.3f}, {row['diff_vs_hist_gbm_ci'][1]:+.3f}]"
                    if "diff_vs_hist_gbm" in row
                    else ""
                )
                + f"  {seconds:.1f} s",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="taiwan-default")
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--subset-seeds", type=int, default=3)
    parser.add_argument("--models", default=",".join(("hist-gbm", "riskscorer", "logistic")))
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {MODELS}")
    path = RESULTS / f"{NAME}.json"
    for name in args.datasets.split(","):
        rows = run_dataset(name, args.subset, args.subset_seeds, models)
        previous = json.loads(path.read_text())["rows"] if path.is_file() else []
        key = lambda r: (r["dataset"], r["train_set"], r["model"])  # noqa: E731
        fresh = {key(r) for r in rows}
        merged = [r for r in previous if key(r) not in fresh] + rows
        save(  # after every dataset: a later failure keeps what was measured
            NAME,
            {
                "protocol": (
                    "stratified 80/20 split (seed 0) per dataset; training on the whole "
                    "training part and on stratified subsets of it; every model with its "
                    "defaults, RiskScorer's depth and rounds chosen on 5 folds of the training "
                    "rows; AUC on the test part with 95 % percentile bootstrap CIs (1,000 "
                    "resamples); diff_vs_hist_gbm paired on the same resamples"
                ),
                "machine": {**machine(), "note": "2 shared CPU cores: timings indicative only"},
                "rows": sorted(merged, key=key),
            },
        )


if __name__ == "__main__":
    main()
