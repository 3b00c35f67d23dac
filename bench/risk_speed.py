"""Speed of the default ``RiskScorer()`` (issue 14, item 2): scoring and fitting on 2 CPU cores.

Targets: score >= 5,000 rows/s without free text and >= 200 rows/s with one short text column;
fit 30,000 rows without text in <= 60 s.

* ``score_no_text``: Taiwan credit default (30,000 card holders, 23 columns, no text; via
  ``bench/_credit_data.py``), fitted on a stratified 80 % (24,000 rows, seed 0), scoring the
  other 6,000 rows in one ``predict_pd`` call; also ``points`` + ``explain(top=3)`` on the same
  rows, and one row per call (a service scoring applicants one at a time).
* ``fit_no_text``: ``RiskScorer(random_state=0).fit`` on all 30,000 Taiwan rows (5-fold CV that
  chooses the rounds, then the final model).
* ``score_text``: U.S. SBA 7(a) loans (``sba-loans``), a seeded random draw of rows; one real
  short text column, ``Name`` (the borrower business's name, 2-4 words, nearly all distinct);
  ``City`` and ``Bank`` are read as categoricals. Fitted on ``--text-train`` rows, scoring
  ``--text-score`` other rows whose names were never encoded (the in-memory text cache is
  emptied before every repeat; no disk cache), so every row goes through the encoder
  (all-MiniLM-L6-v2, loaded once per process as in a service). The default ``text_selection=
  "cv"`` decides whether ``Name`` is kept (recorded); the speed is measured on a model with
  ``text_selection="always"``, so that the text is encoded whatever that decision. The same
  model with an int8 ONNX export of the encoder (``RiskScorer(encoder=folder)``, the ``onnx``
  extra; exported once unless ``--onnx-dir`` has one) is timed in turn with the torch one on
  the same rows, repeat by repeat, so their ratio is measured side by side.

Each timing is the median of ``--repeats`` runs (fits: ``--fit-repeats``). The machine's 2 cores
are shared with other work: timings are indicative, the JSON says so. Run::

    HF_HUB_OFFLINE=1 python bench/risk_speed.py

Writes ``bench/results/risk_speed.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dayzero.risk.scorer as scorer_module
from _common import machine, save
from _credit_data import load, load_sba_loans
from dayzero.risk.scorer import RiskScorer

NAME = "risk_speed"
TARGETS = {"score_no_text_rows_per_s": 5000, "score_text_rows_per_s": 200, "fit_30k_seconds": 60}


def _median_seconds(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def no_text(repeats: int, fit_repeats: int) -> dict:
    X, y = load("taiwan-default")
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    model = RiskScorer(random_state=0).fit(X_train, y_train)
    assert scorer_module._ENCODERS == {}, "a table without text loaded an encoder"
    batch, batch_times = _median_seconds(lambda: model.predict_pd(X_test), repeats)
    full, full_times = _median_seconds(
        lambda: (model.points(X_test), model.explain(X_test, top=3)), repeats
    )
    single_rows = [X_test.iloc[[i]] for i in range(200)]
    single, _ = _median_seconds(lambda: [model.predict_pd(r) for r in single_rows], repeats)
    fit, fit_times = _median_seconds(lambda: RiskScorer(random_state=0).fit(X, y), fit_repeats)
    return {
        "dataset": "taiwan-default",
        "fit_rows_for_scoring_model": len(X_train),
        "score_rows": len(X_test),
        "rounds": model.n_iter_,
        "score_no_text_rows_per_s": len(X_test) / batch,
        "score_no_text_seconds": batch_times,
        "points_and_explain_rows_per_s": len(X_test) / full,
        "points_and_explain_seconds": full_times,
        "one_row_per_call_rows_per_s": len(single_rows) / single,
        "one_row_per_call_ms": 1000 * single / len(single_rows),
        "fit_rows": len(X),
        "fit_30k_seconds": fit,
        "fit_30k_seconds_all": fit_times,
        "encoder_loaded": bool(scorer_module._ENCODERS),
    }


def _onnx_folder(folder: Path | None) -> Path:
    """An int8 ONNX export of the default encoder (made once; reused when ``folder`` has one)."""
    from dayzero.text.encoder import TextEncoder
    from dayzero.text.onnx_int8 import OnnxInt8Encoder, is_onnx_encoder

    folder = folder or Path(tempfile.mkdtemp(prefix="risk-speed-onnx-"))
    if not is_onnx_encoder(folder):
        OnnxInt8Encoder.export(TextEncoder("all-MiniLM-L6-v2", max_length=128), folder)
    return folder


def text(n_train: int, n_score: int, repeats: int, onnx_dir: Path | None) -> dict:
    X, y = load_sba_loans(n=n_train + n_score * repeats, seed=0)
    X_train, y_train = X.iloc[:n_train], y.iloc[:n_train]
    start = time.perf_counter()
    decided = RiskScorer(text_columns=["Name"], random_state=0).fit(X_train, y_train)
    fit_cv = time.perf_counter() - start  # includes loading the encoder and encoding the names
    encoders = {"torch": "all-MiniLM-L6-v2"}
    if onnx_dir is not False:
        encoders["onnx-int8"] = str(_onnx_folder(onnx_dir))
    models, fit_seconds = {}, {}
    for kind, encoder in encoders.items():
        start = time.perf_counter()
        models[kind] = RiskScorer(
            encoder=encoder, text_columns=["Name"], text_selection="always", random_state=0
        ).fit(X_train, y_train)  # torch: the names are encoded already (memory)
        fit_seconds[kind] = time.perf_counter() - start
    times: dict[str, list[float]] = {kind: [] for kind in models}
    scores = {}
    for r in range(repeats):  # the encoders take turns on the same rows: a side-by-side ratio
        rows = X.iloc[n_train + r * n_score : n_train + (r + 1) * n_score]
        for kind, model in models.items():
            for memo in scorer_module._MEMO.values():
                memo.clear()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unseen cities / banks: scored as unknown
                scores[kind] = model.predict_pd(rows)
            times[kind].append(time.perf_counter() - start)
    rate = {kind: n_score / statistics.median(t) for kind, t in times.items()}
    names = X["Name"].astype(str)
    out = {
        "dataset": "sba-loans",
        "text_column": "Name",
        "text_words_mean": float(names.str.split().str.len().mean()),
        "fit_rows": n_train,
        "score_rows": n_score,
        "distinct_share_scored": float(
            X["Name"].iloc[n_train:].nunique() / max(1, len(X) - n_train)
        ),
        "cv_decision": decided.text_selection_,
        "fit_seconds_cv_with_encoding": fit_cv,
        "fit_seconds_always": fit_seconds,
        "score_text_rows_per_s": rate["torch"],
        "score_text_seconds": times["torch"],
        "encoder": encoders["torch"],
    }
    if "onnx-int8" in models:
        out["onnx_int8"] = {
            "encoder_folder": "an int8 export of all-MiniLM-L6-v2 (OnnxInt8Encoder.export)",
            "score_text_rows_per_s": rate["onnx-int8"],
            "score_text_seconds": times["onnx-int8"],
            "speedup_over_torch": rate["onnx-int8"] / rate["torch"],
            # the last repeat's rows: how far the int8 model's probabilities move
            "pd_correlation_with_torch": float(
                np.corrcoef(scores["torch"], scores["onnx-int8"])[0, 1]
            ),
            "pd_max_abs_difference": float(np.abs(scores["torch"] - scores["onnx-int8"]).max()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fit-repeats", type=int, default=3)
    parser.add_argument("--text-train", type=int, default=5000)
    parser.add_argument("--text-score", type=int, default=1000)
    parser.add_argument(
        "--onnx-dir",
        type=Path,
        help="an int8 ONNX export of all-MiniLM-L6-v2 to reuse (else one is made in a temp folder)",
    )
    parser.add_argument("--no-onnx", action="store_true", help="torch encoder only")
    args = parser.parse_args()
    results = {"no_text": no_text(args.repeats, args.fit_repeats)}
    print(results["no_text"], flush=True)
    onnx_dir = False if args.no_onnx else args.onnx_dir
    results["text"] = text(args.text_train, args.text_score, max(3, args.repeats // 2), onnx_dir)
    print({k: v for k, v in results["text"].items() if k != "cv_decision"}, flush=True)
    measured = {
        "score_no_text_rows_per_s": results["no_text"]["score_no_text_rows_per_s"],
        "score_text_rows_per_s": results["text"]["score_text_rows_per_s"],
        "fit_30k_seconds": results["no_text"]["fit_30k_seconds"],
    }
    if "onnx_int8" in results["text"]:
        measured["score_text_onnx_int8_rows_per_s"] = results["text"]["onnx_int8"][
            "score_text_rows_per_s"
        ]
    verdicts = {
        key: {
            "target": target,
            "measured": measured[key],
            "met": measured[key] <= target if key.endswith("seconds") else measured[key] >= target,
        }
        for key, target in TARGETS.items()
    }
    if "score_text_onnx_int8_rows_per_s" in measured:
        target = TARGETS["score_text_rows_per_s"]
        value = measured["score_text_onnx_int8_rows_per_s"]
        verdicts["score_text_onnx_int8_rows_per_s"] = {
            "target": target,
            "measured": value,
            "met": value >= target,
        }
    save(
        NAME,
        {
            "protocol": __doc__.split("Each timing")[0].strip(),
            "machine": {
                **machine(),
                "note": (
                    "2 CPU cores that other jobs may share: timings are indicative (medians of "
                    "repeats); load_average is the 1/5/15-minute load when the run ended"
                ),
                "load_average": list(os.getloadavg()),
            },
            "repeats": args.repeats,
            "fit_repeats": args.fit_repeats,
            "targets": verdicts,
            **results,
        },
    )
    print(verdicts)


if __name__ == "__main__":
    main()
