"""Shared fixtures: the real-data root (skips when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``$DAYZERO_DATA`` as a Path; skips the test when it is unset or missing."""
    root = os.environ.get("DAYZERO_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data not available: set DAYZERO_DATA=../shared/data (make test-slow)")
    return Path(root)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer random BERT (model + tokenizer) built once per session; copy it before mutating."""
    from tests.tiny_bert import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def one_thread():
    """One torch and one BLAS/OpenMP thread for a module: tiny models gain nothing from threads,
    and on a busy shared machine they lose up to 10x. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
