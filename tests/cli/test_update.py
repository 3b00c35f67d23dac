from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from dayzero.cli.update import bootstrap, update
from dayzero.online.registry import ModelRegistry
from dayzero.online.store import open_store
from dayzero.online.updater import OnlineUpdater, UpdaterConfig
from tests.online.test_updater import FAST, _fill, _new_fans
from tests.recommend.conftest import make_catalogue

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("update")(update)
    app.command("bootstrap")(bootstrap)
    return app


@pytest.fixture
def paths(tmp_path, tiny_bert_dir):
    """A store with the catalogue plus new fans, and a registry serving a first version."""
    db, models = tmp_path / "events.db", tmp_path / "models"
    with open_store(db) as store:
        _fill(store, make_catalogue())
        config = UpdaterConfig(model_params={**FAST, "encoder": str(tiny_bert_dir)})
        parent = OnlineUpdater(store, ModelRegistry(models), config).bootstrap()
        _new_fans(store)
    return str(db), str(models), parent


def test_update_prints_the_gate_and_promotes(app, paths):
    db, models, parent = paths
    args = ["update", "--store", db, "--registry", models, "--epochs", "5", "--holdout", "0.25"]
    result = runner.invoke(app, [*args, "--tolerance", "0.05"])
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output and "nDCG@5" in result.output
    assert "promoted" in result.output and "rejected" not in result.output
    assert ModelRegistry(models).current() != parent


def test_a_rejection_by_the_gate_exits_zero_and_says_so(app, paths):
    db, models, parent = paths
    result = runner.invoke(
        app, ["update", "--store", db, "--registry", models, "--tolerance", "-10"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "rejected by the gate" in text and "is published, not promoted" in text
    assert ModelRegistry(models).current() == parent


def test_errors_exit_non_zero(app, tmp_path):
    db = str(tmp_path / "events.db")
    result = runner.invoke(app, ["update", "--store", db, "--registry", str(tmp_path / "m")])
    assert result.exit_code == 1 and "bootstrap" in result.output
    # an empty store: nothing to fit a first model on
    result = runner.invoke(app, ["bootstrap", "--store", db, "--registry", str(tmp_path / "m")])
    assert result.exit_code == 1 and "no events" in result.output
    bad = ["update", "--store", db, "--registry", str(tmp_path / "m"), "--holdout", "2"]
    result = runner.invoke(app, bad)
    assert result.exit_code == 1 and "holdout" in result.output


def test_bootstrap_leaves_a_served_registry_alone(app, paths):
    db, models, parent = paths
    result = runner.invoke(app, ["bootstrap", "--store", db, "--registry", models])
    assert result.exit_code == 0 and "already serves" in result.output
    assert ModelRegistry(models).current() == parent
