"""Domain-adaptive pre-training of MiniLM for ``bench/sentiment.py``'s ``full-ft-dapt`` rows.

For each seed: the unlabelled corpus is the training part of that seed's PhraseBank >= 50 %
split (``sentiment.setting_splits``, 3,876 sentences; its labels are not read) plus Twitter
financial news' train split (9,543 tweets), with any text identical to one of that seed's
PhraseBank test sentences removed, so no test text is ever seen. ``dayzero.train.domain_adapt``
then runs masked-LM on it and writes ``OUT/seed<N>`` (what ``--dapt-dir OUT`` reads)::

    DAYZERO_DATA=/work/shared/data python bench/dapt_encoder.py --out DIR --steps 900 --seeds 1

900 steps of 32 texts took 47 minutes on 2 shared CPU cores (seed 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from dayzero.train.domain_adapt import domain_adapt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentiment import setting_data, setting_splits


def corpus(seed: int) -> tuple[list[str], dict]:
    """Seed ``seed``'s unlabelled texts and their counts."""
    setting = "phrasebank-50agree"
    split = next(s for s in setting_splits(setting, setting_data(setting)) if s[0] == seed)
    _, train, _, test, _, _ = split
    tweets = setting_splits("twitter", setting_data("twitter"))[0][1]
    test_texts = {str(t).strip() for t in test}
    texts = [str(t) for t in [*train, *tweets]]
    kept = [t for t in texts if t.strip() not in test_texts]
    counts = {"phrasebank_train": len(train), "twitter_train": len(tweets), "kept": len(kept)}
    return kept, counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for seed<N> encoders")
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for seed in range(args.seeds):
        texts, counts = corpus(seed)
        print(f"seed {seed}: {counts}", flush=True)
        folder = domain_adapt(texts, Path(args.out) / f"seed{seed}", steps=args.steps, seed=seed)
        config = json.loads((folder / "domain_adapt.json").read_text())
        summary = {k: v for k, v in config.items() if k != "loss_history"}
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
