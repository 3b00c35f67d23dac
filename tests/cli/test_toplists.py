"""``dayzero toplists`` on a local Ray cluster: lists stored, then served by the service."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dayzero.cli.main import app
from dayzero.online.registry import ModelRegistry
from dayzero.online.store import open_store
from tests.serve.conftest import env, served_env  # noqa: F401

runner = CliRunner()


def test_toplists_stores_a_list_per_user_and_the_service_reads_it(env):  # noqa: F811
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'dayzero[ray]'")
    from dayzero.serve.state import ServiceState

    result = runner.invoke(
        app,
        ["toplists", "--store", str(env.store), "--registry", str(env.registry), "--k", "5",
         "--cpus-per-actor", "0.5", "--prune"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    version = ModelRegistry(env.registry).current()
    assert f"20 lists of 5 items by {version}" in result.output
    assert "0 lists of other versions deleted" in result.output
    state = ServiceState(open_store(env.store), ModelRegistry(env.registry))
    state.start()
    try:
        stored = state.store.get_toplist(version, "ua4").toplist
        assert state.recommend_user("ua4", 5, exclude_seen=True).ids == stored.items
    finally:
        state.close()


def test_toplists_errors_name_the_fix(env, tmp_path):  # noqa: F811
    empty = tmp_path / "no-models"
    result = runner.invoke(app, ["toplists", "--store", str(env.store), "--registry", str(empty)])
    assert result.exit_code == 2
    assert "has no promoted version: give --version or promote one" in result.output
    result = runner.invoke(
        app,
        ["toplists", "--store", str(env.store), "--registry", str(env.registry), "--version",
         "v000009"],
    )  # fmt: skip
    assert result.exit_code == 2 and "v000009" in result.output
