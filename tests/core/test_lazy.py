"""Lazy package exports: imported on first access, unknown names refused, dir lists them."""

from __future__ import annotations

import sys
import types

import pytest

from dayzero.core.lazy import lazy_exports


def test_lazy_exports_import_on_access_and_refuse_unknown_names(monkeypatch):
    package = types.ModuleType("fake_package")
    monkeypatch.setitem(sys.modules, "fake_package", package)
    package.__getattr__, package.__dir__ = lazy_exports(
        "fake_package", {"dumps": "json"}, ["dumps"]
    )
    import json

    assert package.dumps is json.dumps
    assert "dumps" in dir(package) and "__getattr__" in dir(package)
    with pytest.raises(AttributeError, match="module 'fake_package' has no attribute 'loads'"):
        package.loads  # noqa: B018
