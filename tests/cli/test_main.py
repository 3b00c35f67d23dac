from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dayzero.cli.main import app

runner = CliRunner()


@pytest.fixture
def no_data_env(monkeypatch):
    monkeypatch.delenv("DAYZERO_DATA", raising=False)


def test_datasets_reports_missing_and_shipped(no_data_env, tmp_path):
    result = runner.invoke(app, ["datasets", "--data", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "ml-1m-melu" in result.output and "missing" in result.output
    assert "restaurant-uci" in result.output


def test_models_lists_the_baselines():
    result = runner.invoke(app, ["models"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("item-mean", "item-knn", "mf", "content-knn", "feature-hybrid"):
        assert name in result.output


def test_evaluate_on_shipped_data_writes_json(no_data_env, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(
        app,
        ["evaluate", "--dataset", "restaurant-uci", "--model", "item-mean", "--output", str(out)],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    segments = data["results"][0]["segments"]
    assert set(segments) == {"warm", "new_users"}
    assert segments["new_users"]["users"] > 0
    assert 0 <= segments["new_users"]["metrics"]["mae"] <= 2


def test_evaluate_unknown_model_names_the_choices(no_data_env):
    result = runner.invoke(
        app, ["evaluate", "--dataset", "restaurant-uci", "--model", "nope"], terminal_width=200
    )
    assert result.exit_code != 0
    assert "unknown model 'nope'" in result.output


def test_evaluate_unknown_dataset(no_data_env):
    result = runner.invoke(
        app, ["evaluate", "--dataset", "imdb", "--model", "item-mean"], terminal_width=200
    )
    assert result.exit_code != 0
    assert "imdb" in result.output
