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
