"""VectorIndex: HNSW against exact search at 10k, 100k and 1M items: recall, latency, memory.

    nice -n 5 python bench/index.py [--sizes 10000 100000 1000000] [--dims 67 384] [--data ...]

Vectors are synthetic and L2-normalised, dim 67 (the width of dayzero's two-tower serving vectors:
64 factors + bias + 2 extra) and 384 (MiniLM text vectors; 10k and 100k only). Two families:

* ``embedding``: a Gaussian mixture (1,000 centres) whose spread decays over dimensions
  (power law 1/i, then a random rotation), like learned embeddings, whose variance concentrates in
  a few directions;
* ``isotropic``: a Gaussian mixture (256 centres) with isotropic within-cluster noise (high
  intrinsic dimension); with shifted queries it is the hard case for a graph index.

Two query sets of 1,000: ``same`` (fresh draws from the items' mixture) and ``shifted`` (the same
space around fresh centres, like user vectors that do not sit on item clusters). Each (family,
dim, size, kind) runs in its own process so build time and peak memory are its own; ``index_mib``
is the resident-memory growth while the index is built (the float32 matrix the index keeps as
source of truth plus faiss's copy and graph). Single-query latency goes through
``VectorIndex.search`` (Python overhead included, as the server sees it); batch QPS through
``search_batch`` with 1,000 queries. Writes ``bench/results/index.json`` and
``bench/results/index.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, run_isolated, save

K = 10
N_QUERIES = 1000
N_SINGLE = 300
EF_SEARCHES = (32, 64, 128, 256)
QUERY_SETS = ("same", "shifted")
HNSW_M = 32
EF_CONSTRUCTION = 80


def vectors(family: str, n: int, dim: int, seed: int, *, queries: str | None = None):
    """``n`` L2-normalised vectors of one family.

    ``queries=None`` draws catalogue items; ``"same"`` draws queries from the items' own mixture;
    ``"shifted"`` from the same space (spread, rotation) around fresh centres, like user vectors
    that do not sit on item clusters.
    """
    import numpy as np

    structure = np.random.default_rng(seed)
    draws = np.random.default_rng([seed, {None: 0, "same": 1, "shifted": 2}[queries]])
    fresh = np.random.default_rng([seed, 3])
    if family == "embedding":
        spread = np.arange(1, dim + 1, dtype=np.float32) ** -1.0
        rotation = np.linalg.qr(structure.normal(size=(dim, dim)))[0].astype(np.float32)
        source = fresh if queries == "shifted" else structure
        centres = source.normal(size=(1000, dim)).astype(np.float32) * spread * 3
        noise = draws.standard_normal(size=(n, dim), dtype=np.float32) * spread
        x = (centres[draws.integers(0, len(centres), n)] + noise) @ rotation
    elif family == "isotropic":
        source = fresh if queries == "shifted" else structure
        centres = source.normal(size=(256, dim)).astype(np.float32)
        noise = draws.standard_normal(size=(n, dim), dtype=np.float32) * 0.6
        x = centres[draws.integers(0, len(centres), n)] + noise
    else:
        raise ValueError(f"unknown data family {family!r}")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def _rss_mib() -> float:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _latency(index, queries) -> dict:
    import numpy as np

    times = []
    for q in queries[:N_SINGLE]:
        start = time.perf_counter()
        index.search(q, K)
        times.append(time.perf_counter() - start)
    batch = []
    for _ in range(3):
        start = time.perf_counter()
        index.search_batch(queries, K)
        batch.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "batch_qps": len(queries) / float(np.median(batch)),
    }


def measure(family: str, dim: int, n: int, kind: str, seed: int) -> dict:
    import faiss
    import numpy as np

    from dayzero.online.index import VectorIndex

    x = vectors(family, n, dim, seed)
    ids = [str(i) for i in range(n)]
    out: dict = {"family": family, "dim": dim, "n": n, "kind": kind, "k": K}
    if kind == "hnsw":
        out.update(hnsw_m=HNSW_M, ef_construction=EF_CONSTRUCTION)
    rss0 = _rss_mib()
    start = time.perf_counter()
    index = VectorIndex(dim, kind=kind, hnsw_m=HNSW_M, ef_construction=EF_CONSTRUCTION)
    index.add(ids, x)
    out["build_s"] = time.perf_counter() - start
    out["index_mib"] = _rss_mib() - rss0
    if kind == "exact":  # exact cost does not depend on where the queries fall
        out.update(_latency(index, vectors(family, N_QUERIES, dim, seed, queries="same")))
        return out
    out["by_ef_search"] = []
    for query_set in QUERY_SETS:
        queries = vectors(family, N_QUERIES, dim, seed, queries=query_set)
        _, truth = faiss.knn(queries, x, K, metric=faiss.METRIC_INNER_PRODUCT)
        truth_ids = [{str(j) for j in row} for row in truth]
        for ef in EF_SEARCHES:
            index.ef_search = ef
            got, _ = index.search_batch(queries, K)
            recall = np.mean([len(t & set(g)) / K for t, g in zip(truth_ids, got, strict=True)])
            out["by_ef_search"].append(
                {
                    "queries": query_set,
                    "ef_search": ef,
                    "recall@10": float(recall),
                    **_latency(index, queries),
                }
            )
    return out


def markdown(payload: dict, table_efs: tuple[int, ...] = (64, 128, 256), at_ef: int = 128) -> str:
    """One row per index: recall at a few ``ef_search`` values, latency at ``at_ef`` (the
    default); every measured ``ef_search`` is in the JSON."""
    efs = "/".join(str(e) for e in table_efs)
    lines = [
        f"Recall@{K} of HNSW (M={HNSW_M}, efConstruction={EF_CONSTRUCTION}) against exact search "
        f"at ef_search {efs}, over {payload['n_queries']:,} queries drawn from the items' mixture "
        "(*same*) or around fresh centres (*shifted*, like user vectors off the item clusters). "
        f"Latency and QPS of HNSW at ef_search={at_ef} (the default), same queries: single-query "
        f"p50/p99 over {payload['n_single_queries']} calls of `VectorIndex.search`; batch QPS "
        f"from `search_batch` over 1,000 queries (faiss on {payload['faiss_omp_threads']} OpenMP "
        "threads). *index MiB*: resident memory added by building the index (float32 matrix "
        "plus faiss's copy and graph). L2-normalised synthetic vectors (`bench/index.py` "
        f"docstring); faiss {payload['faiss']}, {payload['machine']['cpus']} cores shared with "
        f"other jobs (load average 10-17 during the run), {payload['machine']['date']}"
        + (
            f", total run {payload['total_wall_s'] / 60:.0f} min"
            if "total_wall_s" in payload
            else ""
        )
        + ". Rerun: `nice -n 5 python bench/index.py`.",
        "",
        f"| data | dim | items | index | build s | index MiB | recall@{K} same | "
        f"recall@{K} shifted | p50 ms | p99 ms | batch QPS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["results"]:
        head = (
            f"| {r['family']} | {r['dim']} | {r['n']:,} | {r['kind']} | {r['build_s']:.1f} | "
            f"{r['index_mib']:.0f} |"
        )
        if r["kind"] == "exact":
            timing = r
            recalls = " 1 | 1 |"
        else:
            by = {(e["queries"], e["ef_search"]): e for e in r["by_ef_search"]}
            timing = by[("same", at_ef)]
            recalls = "".join(
                " " + " / ".join(f"{by[(q, ef)]['recall@10']:.3f}" for ef in table_efs) + " |"
                for q in QUERY_SETS
            )
        lines.append(
            f"{head}{recalls} {timing['p50_ms']:.2f} | {timing['p99_ms']:.1f} | "
            f"{timing['batch_qps']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="*", default=[67, 384])
    parser.add_argument("--data", nargs="*", default=["embedding", "isotropic"])
    parser.add_argument("--max-384", type=int, default=100_000, help="largest size at dim 384")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite index.md from index.json and exit"
    )
    args = parser.parse_args()
    if args.markdown_only:
        payload = json.loads((RESULTS / "index.json").read_text())
        (RESULTS / "index.md").write_text(markdown(payload) + "\n")
        print(markdown(payload))
        return
    began = time.perf_counter()
    rows = []
    for dim in args.dims:
        for family in args.data:
            for n in args.sizes:
                if dim > 67 and (n > args.max_384 or family != "embedding"):
                    continue
                for kind in ("exact", "hnsw"):
                    out = run_isolated(
                        measure, family=family, dim=dim, n=n, kind=kind, seed=args.seed
                    )
                    rows.append(out)
                    best = out.get("by_ef_search", [{}])
                    print(
                        f"{family:9s} d={dim:3d} n={n:>9,} {kind:5s} build {out['build_s']:6.1f}s "
                        f"{out['index_mib']:6.0f} MiB  "
                        + (
                            f"p50 {out['p50_ms']:.2f} ms"
                            if kind == "exact"
                            else " ".join(
                                f"{e['queries']}/ef{e['ef_search']}:{e['recall@10']:.3f}"
                                for e in best
                            )
                        )
                        + f"  ({out['wall_seconds']:.0f}s)",
                        flush=True,
                    )
    import faiss

    meta = {
        "machine": machine(),
        "faiss": faiss.__version__,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "seed": args.seed,
        "k": K,
        "n_queries": N_QUERIES,
        "n_single_queries": N_SINGLE,
    }
    payload = {**meta, "total_wall_s": time.perf_counter() - began, "results": rows}
    path = save("index", payload)
    table = markdown(payload)
    (RESULTS / "index.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {path} and {RESULTS / 'index.md'}")


if __name__ == "__main__":
    main()
