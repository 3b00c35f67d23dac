"""Benchmark plumbing: run one measurement in a fresh process, record time and peak memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _measured(fn: Callable[..., dict], kwargs: dict[str, Any]) -> dict:
    start = time.perf_counter()
    out = fn(**kwargs)
    out["wall_seconds"] = time.perf_counter() - start
    # ru_maxrss is in KiB on Linux: the whole process's peak, which is why each run gets its own.
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_isolated(fn: Callable[..., dict], **kwargs: Any) -> dict:
    """Run ``fn(**kwargs)`` in a fresh spawned process; add wall time and peak RSS to its dict."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_measured, fn, kwargs).result()


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
