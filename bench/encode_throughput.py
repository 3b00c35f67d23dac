"""Encode throughput of ``TextEncoder`` vs raw ``SentenceTransformer.encode`` on movie plots.

    DAYZERO_DATA=../shared/data python bench/encode_throughput.py [--n 1000] [--batch-size 32]

Both encode the same distinct plots from ml-1m-melu's ``movies_extrainfos.dat`` (field 10)
with all-MiniLM-L6-v2 at the same batch size and 128-token limit, interleaved chunk by chunk in
one process after a one-batch warm-up. Also timed: the fingerprint, and a second ``encode``
answered from the disk cache; where onnxruntime is installed, the int8 ONNX export too.
Writes ``bench/results/encode_throughput.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, run_isolated, save

MAX_LENGTH = 128


def load_plots(data_root: Path, n: int) -> list[str]:
    """The first ``n`` distinct non-empty plots of ml-1m-melu's movie file."""
    path = data_root / "ml-1m-melu" / "original" / "movies_extrainfos.dat"
    plots: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.rstrip("\r").split("::")
        plot = fields[9].strip() if len(fields) > 9 else ""
        if plot and plot != "N/A":
            plots[plot] = None
        if len(plots) == n:
            break
    if len(plots) < n:
        raise ValueError(f"{path} has only {len(plots)} distinct plots, asked for {n}")
    return list(plots)


def measure(texts: list[str], batch_size: int, chunk_batches: int = 4) -> dict:
    """Time both encoders on the same chunks, alternating which goes first.

    The machine is shared, so the two are interleaved chunk by chunk (``chunk_batches``
    batches at a time) rather than run one after the other: a change in background load then
    hits both sides alike and the ratio stays meaningful.
    """
    from sentence_transformers import SentenceTransformer

    from dayzero.text import TextEncoder
    from dayzero.text.encoder import DEFAULT_MODEL, resolve_model_path

    encoder = TextEncoder(max_length=MAX_LENGTH, cache_dir=tempfile.mkdtemp(prefix="dz-bench-"))
    reference = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")
    reference.max_seq_length = MAX_LENGTH
    warm, timed = texts[:batch_size], texts[batch_size:]
    encoder.encode(warm, batch_size=batch_size)
    reference.encode(warm, batch_size=batch_size)
    tokens = encoder.tokenizer(timed, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    lengths = [len(ids) for ids in tokens]

    int8 = _int8_or_none(encoder)
    ours_seconds = reference_seconds = int8_seconds = 0.0
    int8_vectors = []
    chunk = batch_size * chunk_batches
    ours = []
    for i, start in enumerate(range(0, len(timed), chunk)):
        part = timed[start : start + chunk]
        for side in ("ours", "reference") if i % 2 == 0 else ("reference", "ours"):
            begin = time.perf_counter()
            if side == "ours":
                ours.append(encoder.encode(part, batch_size=batch_size))
                ours_seconds += time.perf_counter() - begin
            else:
                reference.encode(part, batch_size=batch_size)
                reference_seconds += time.perf_counter() - begin
        if int8 is not None:
            begin = time.perf_counter()
            int8_vectors.append(int8.encode(part, batch_size=batch_size))
            int8_seconds += time.perf_counter() - begin

    begin = time.perf_counter()
    cached = encoder.encode(timed, batch_size=batch_size)
    cached_seconds = time.perf_counter() - begin
    assert (cached == np.concatenate(ours)).all()
    encoder.invalidate_fingerprint()  # time a full hash, as after a training step
    begin = time.perf_counter()
    fingerprint = encoder.fingerprint()
    fingerprint_seconds = time.perf_counter() - begin
    n = len(timed)
    extra = {}
    if int8 is not None:
        unit = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in (cached, *int8_vectors)]
        cosine = (unit[0] * np.concatenate(unit[1:])).sum(axis=1)
        extra = {
            "onnx_int8_sentences_per_second": n / int8_seconds,
            "onnx_int8_speedup_over_dayzero": ours_seconds / int8_seconds,
            "onnx_int8_cosine_to_torch": {"min": float(cosine.min()), "mean": float(cosine.mean())},
        }
    return {
        "texts": n,
        "mean_tokens": sum(lengths) / n,
        "truncated_share": sum(t == MAX_LENGTH for t in lengths) / n,
        "dayzero_sentences_per_second": n / ours_seconds,
        "sentence_transformers_sentences_per_second": n / reference_seconds,
        "speed_ratio": reference_seconds / ours_seconds,
        "dayzero_cached_sentences_per_second": n / cached_seconds,
        "fingerprint_seconds": fingerprint_seconds,
        "fingerprint": fingerprint,
        **extra,
    }


def _int8_or_none(encoder):
    """The int8 ONNX export of ``encoder`` where onnxruntime is installed, else ``None``."""
    try:
        from dayzero.text.onnx_int8 import OnnxInt8Encoder

        return OnnxInt8Encoder.export(encoder, tempfile.mkdtemp(prefix="dz-onnx-"), min_cosine=0)
    except ImportError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="texts timed, after a warm-up batch")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data_root = Path(
        os.environ.get("DAYZERO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    texts = load_plots(data_root, args.n + args.batch_size)
    result = run_isolated(measure, texts=texts, batch_size=args.batch_size)
    payload = {
        "model": "all-MiniLM-L6-v2",
        "batch_size": args.batch_size,
        "max_length": MAX_LENGTH,
        **result,
        "machine": machine(),
    }
    path = save("encode_throughput", payload)
    print(f"TextEncoder.encode       {result['dayzero_sentences_per_second']:8.1f} sentences/s")
    print(f"  from the disk cache    {result['dayzero_cached_sentences_per_second']:8.1f}")
    print(f"SentenceTransformer      {result['sentence_transformers_sentences_per_second']:8.1f}")
    print(f"ratio {result['speed_ratio']:.3f}, fingerprint {result['fingerprint_seconds']:.3f} s")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
