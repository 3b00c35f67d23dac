"""The hybrid against the best other model per segment (BENCHMARKS.md, "Hybrid: never worse
than its parts").

    python bench/hybrid_compare.py [--hybrid bench/results/hybrid] [--datasets ml-100k ...]
        [--also bench/results/contrastive ...] [--extra DATASET/SETTING=NAME:VALUE:LOW:HIGH ...]

Reads the hybrid's rows (``bench/retrieval.py --models hybrid`` with
``BENCH_RESULTS=bench/results/hybrid``) and the committed rows of every other model in
``bench/results/retrieval_<dataset>.json`` and the same files in the ``--also`` folders (default
``bench/results/contrastive``, which holds the two-tower retrieval head's rows; the first file
holding a model's row wins), and prints one table per (dataset, protocol):
Recall@20 [95 % CI] of the hybrid, of the best other model in that setting, and the verdict:
*beats* when the best other model's Recall@20 is below the hybrid's interval, *loses* when the
hybrid's is below the other's interval, *ties* otherwise. ``--extra`` adds rows measured
elsewhere (e.g. the two-tower retrieval head's numbers quoted in a brief), labelled as such.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
METRIC = "recall@20"


def _rows(payload: dict) -> dict[tuple[str, str], dict[str, tuple[float, float, float]]]:
    """(protocol, setting) -> model -> (value, low, high)."""
    out: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {}
    for result in payload["results"]:
        for row in result["rows"]:
            low, high = row["ci"][METRIC]
            key = (result["protocol"], row["setting"])
            out.setdefault(key, {})[result["model"]] = (row["metrics"][METRIC], low, high)
    return out


def _verdict(mine: tuple[float, float, float], best: tuple[float, float, float]) -> str:
    if best[0] < mine[1]:
        return "beats"
    if mine[0] < best[1]:
        return "loses"
    return "ties"


def table(dataset: str, hybrid_dir: Path, extra: dict, also: list[Path]) -> str:
    mine_path = hybrid_dir / f"retrieval_{dataset}.json"
    if not mine_path.is_file():
        return ""
    mine = _rows(json.loads(mine_path.read_text()))
    peers: dict = {}
    for folder in [RESULTS, *also]:
        path = folder / f"retrieval_{dataset}.json"
        if path.is_file():
            for key, models in _rows(json.loads(path.read_text())).items():
                for model, value in models.items():
                    peers.setdefault(key, {}).setdefault(model, value)
    lines = []
    for protocol in dict.fromkeys(p for p, _ in mine):
        lines += [
            f"**{dataset}, {protocol}** (Recall@20 [95 % CI])",
            "",
            "| setting | hybrid | best other model | its Recall@20 | hybrid vs best |",
            "|---|---|---|---|---|",
        ]
        for (p, setting), models in mine.items():
            if p != protocol or "hybrid" not in models:
                continue
            others = {m: v for m, v in peers.get((p, setting), {}).items() if m != "hybrid"}
            for name, value in extra.get((dataset, setting), {}).items():
                others[name] = value
            h = models["hybrid"]
            cell = f"{h[0]:.3f} [{h[1]:.3f}, {h[2]:.3f}]"
            if not others:
                lines.append(f"| {setting} | {cell} | - | - | - |")
                continue
            name, best = max(others.items(), key=lambda kv: kv[1][0])
            lines.append(
                f"| {setting} | {cell} | {name} | {best[0]:.3f} [{best[1]:.3f}, {best[2]:.3f}] "
                f"| {_verdict(h, best)} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hybrid", type=Path, default=RESULTS / "hybrid")
    parser.add_argument(
        "--datasets",
        nargs="*",
        default=["ml-100k", "ml-1m", "restaurant", "steam-200k", "steam-reviews", "citeulike"],
    )
    parser.add_argument("--also", nargs="*", type=Path, default=[RESULTS / "contrastive"])
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        help="DATASET/SETTING=NAME:VALUE:LOW:HIGH rows measured elsewhere",
    )
    args = parser.parse_args()
    extra: dict = {}
    for item in args.extra:
        where, _, numbers = item.partition("=")
        dataset, _, setting = where.partition("/")
        name, *values = numbers.split(":")
        value, low, high = (float(v) for v in values)
        extra.setdefault((dataset, setting), {})[name] = (value, low, high)
    for dataset in args.datasets:
        text = table(dataset, args.hybrid, extra, args.also)
        if text:
            print(text)


if __name__ == "__main__":
    main()
