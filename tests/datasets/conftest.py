from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def real_dataset():
    """``real_dataset(folder)`` -> the real data root holding ``folder``, or skip the test."""

    def locate(folder: str) -> Path:
        root = os.environ.get("DAYZERO_DATA")
        if not root:
            pytest.skip("DAYZERO_DATA is not set; real-data test skipped")
        if not (Path(root) / folder).is_dir():
            pytest.skip(f"{folder}/ not found under DAYZERO_DATA={root}")
        return Path(root)

    return locate


@pytest.fixture
def no_data_env(monkeypatch):
    """Unset DAYZERO_DATA so loaders with a shipped copy fall back to it."""
    monkeypatch.delenv("DAYZERO_DATA", raising=False)
