"""Issue 12's targets read off the full-catalogue results: dayzero's default against the best
peer or baseline in every segment of every dataset.

    python bench/retrieval_verdict.py [--default hybrid] [--metric recall@20]

Reads ``bench/results/retrieval_<dataset>.json`` (the harness's and the peers' rows) and the same
files under the folders of ``--include`` (default: ``bench/results/hybrid`` and
``bench/results/contrastive``, where the hybrid's and the adapted encoder's rows were measured;
a row found in several files is taken from the first). Writes
``bench/results/retrieval_verdict.json`` and prints one markdown table per dataset.

The verdict of a cold segment (new users with k <= 5 revealed, new items, new users + new items)
compares the default with the best *other* model there (every peer and baseline, and dayzero's
other rows are listed but not counted as "others"): **wins** when the default's 95 % CI lies
above the best other's CI (the issue's "by more than the 95 % CI"), **ahead** when its point is
higher but the intervals overlap, **behind** when lower with overlapping intervals, **loses**
when its CI lies below. Warm segments: **within 2 %** when the default is >= 98 % of the best
other or better. Rows with an exposure floor are a product knob and are left out.
``--against-parts`` counts dayzero's other rows (the two-tower retrieval head, a part of the
hybrid) among the others: the rule "never worse than its parts" (written to
``bench/results/retrieval_verdict_parts.json``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import DATASETS, RESULTS

#: dayzero's own rows: listed for reference, never "the best other".
DAYZERO = (
    "hybrid",
    "hybrid-shared",
    "hybrid-release",
    "two-tower",
    "two-tower-retrieval",
    "two-tower-retrieval+contrastive",
)
#: Ablations of the default: listed beside it, never "the best other", not even against parts.
ABLATIONS = ("hybrid-shared", "hybrid-release")
_FLOOR = "+floor"
#: Judged by its own table (popularity and dayzero's rows only, no peers there).
NOT_JUDGED = ("ml-1m-warmup",)
_K = re.compile(r"(?:^| )k=(\d+)$")


def segment_kind(setting: str) -> str | None:
    """``"cold"``, ``"warm"`` or ``None`` (a new-user setting past k = 5: not a target)."""
    if setting == "warm":
        return "warm"
    match = _K.search(setting)
    if match:
        return "cold" if int(match.group(1)) <= 5 else None
    if setting.startswith("new"):
        return "cold"
    return None


def load_rows(dataset: str, folders: list[Path]) -> list[dict]:
    """Every model's result on ``dataset``, the first file holding a (protocol, model) wins."""
    seen, rows = set(), []
    for folder in folders:
        path = folder / f"retrieval_{dataset}.json"
        if not path.is_file():
            continue
        payload = json.loads(path.read_text())
        for result in payload["results"]:
            key = (result["protocol"], result["model"])
            if key in seen or result["model"].endswith(_FLOOR):
                continue
            seen.add(key)
            rows.append({**result, "source": str(path), "commit": payload.get("commit")})
    return rows


def _cell(result: dict, setting: str, metric: str) -> dict | None:
    for row in result["rows"]:
        if row["setting"] == setting:
            low, high = row["ci"][metric]
            return {"value": row["metrics"][metric], "ci": [low, high], "users": row["users"]}
    return None


def verdict(default: dict, best: dict, kind: str) -> str:
    """The default's standing against the best other (see the module docstring)."""
    if kind == "warm":
        return "within 2 %" if default["value"] >= 0.98 * best["value"] else "more than 2 % below"
    if default["ci"][0] > best["ci"][1]:
        return "wins"
    if default["ci"][1] < best["ci"][0]:
        return "loses"
    return "ahead" if default["value"] > best["value"] else "behind"


def judge(rows: list[dict], default: str, metric: str, against_parts: bool = False) -> list[dict]:
    """One entry per (protocol, target setting) where the default has a row; with
    ``against_parts`` dayzero's other rows (the hybrid's two-tower part) count as others too."""
    ours = {default, *ABLATIONS} if against_parts else set(DAYZERO)
    out = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        subset = [r for r in rows if r["protocol"] == protocol]
        mine = next((r for r in subset if r["model"] == default), None)
        if mine is None:
            continue
        for setting in [row["setting"] for row in mine["rows"]]:
            kind = segment_kind(setting)
            if kind is None:
                continue
            own = _cell(mine, setting, metric)
            others = {
                r["model"]: c
                for r in subset
                if r["model"] not in ours and (c := _cell(r, setting, metric))
            }
            dayzero = {
                r["model"]: c
                for r in subset
                if r["model"] in DAYZERO
                and (r["model"] not in ours or r["model"] in ABLATIONS)
                and r["model"] != default
                and (c := _cell(r, setting, metric))
            }
            if not others:
                continue
            name = max(others, key=lambda m: others[m]["value"])
            out.append(
                {
                    "protocol": protocol,
                    "setting": setting,
                    "kind": kind,
                    "default": own,
                    "best_other": {"model": name, **others[name]},
                    "dayzero_rows": dayzero,
                    "verdict": verdict(own, others[name], kind),
                }
            )
    return out


def _fmt(cell: dict) -> str:
    return f"{cell['value']:.3f} [{cell['ci'][0]:.3f}, {cell['ci'][1]:.3f}]"


def markdown(dataset: str, entries: list[dict], default: str, metric: str) -> str:
    """A table per dataset: segment, default, best other, verdict, dayzero's other rows."""
    extra = list(dict.fromkeys(m for e in entries for m in e["dayzero_rows"]))
    lines = [
        f"**{dataset}** ({metric} [95 % CI])",
        "",
        f"| protocol | setting | {default} | best peer or baseline | verdict | "
        + " | ".join(extra)
        + (" |" if extra else "|"),
        "|---" * (5 + len(extra)) + "|",
    ]
    for e in entries:
        best = e["best_other"]
        cells = [_fmt(e["dayzero_rows"][m]) if m in e["dayzero_rows"] else "" for m in extra]
        lines.append(
            f"| {e['protocol']} | {e['setting']} | {_fmt(e['default'])} | {best['model']} "
            f"{_fmt(best)} | {e['verdict']} | " + " | ".join(cells) + (" |" if cells else "|")
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default", default="hybrid", help="dayzero's default top-K model")
    parser.add_argument("--metric", default="recall@20")
    parser.add_argument(
        "--against-parts",
        action="store_true",
        help="count dayzero's other rows (the two-tower) as others: 'never worse than its parts'",
    )
    parser.add_argument(
        "--include",
        nargs="*",
        default=[str(RESULTS / "hybrid"), str(RESULTS / "contrastive")],
        help="more result folders (after bench/results)",
    )
    args = parser.parse_args()
    folders = [RESULTS, *map(Path, args.include)]
    report, tables = {}, []
    for dataset in (d for d in DATASETS if d not in NOT_JUDGED):
        entries = judge(load_rows(dataset, folders), args.default, args.metric, args.against_parts)
        if entries:
            report[dataset] = entries
            tables.append(markdown(dataset, entries, args.default, args.metric))
    counts: dict[str, int] = {}
    for entries in report.values():
        for e in entries:
            counts[e["verdict"]] = counts.get(e["verdict"], 0) + 1
    payload = {"default": args.default, "metric": args.metric, "counts": counts, "datasets": report}
    name = "retrieval_verdict_parts" if args.against_parts else "retrieval_verdict"
    payload["against_parts"] = args.against_parts
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    print("\n\n".join(tables))
    print("\nverdicts:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
