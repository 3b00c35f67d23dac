"""`dayzero serve`: a --risk-model folder that cannot be served is refused before the server
starts, naming the fix; --model-dir serves a `dayzero fit` folder (fit -> import -> serve ->
titled answers over HTTP)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dayzero.cli.main import app
from dayzero.online.registry import RESERVED, ModelRegistry
from dayzero.risk.scorer import RiskScorer
from dayzero.risk.target import TrainingInfo
from tests.cli.test_files import ITEMS, RATINGS, USERS

runner = CliRunner()


def _serve(tmp_path, folder):
    args = ["serve", "--store", str(tmp_path / "e.db"), "--registry", str(tmp_path / "reg")]
    # A wide terminal: the error box would otherwise wrap the message.
    env = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    return runner.invoke(app, [*args, "--risk-model", str(folder)], env=env)


def test_risk_model_with_a_stale_training_file_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(20, 70, 60), "x": rng.random(60)})
    folder = RiskScorer(cv=2).fit(frame, (frame["x"] > 0.5).astype(int)).save(tmp_path / "risk")
    TrainingInfo("default", 1, ["age", "income"]).save(folder)
    result = _serve(tmp_path, folder)
    assert result.exit_code == 2
    assert "--risk-model" in result.output and "left by another model" in result.output


def test_a_folder_without_a_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _serve(tmp_path, tmp_path / "empty")
    assert result.exit_code == 2 and "dayzero.json is missing" in result.output


# ---------------------------------------------------------------------- --model-dir
TITLES = dict(line.split(",")[:2] for line in ITEMS.splitlines()[1:])
SEEN_BY_U1 = {"a1", "a2", "r1"}  # in RATINGS


@pytest.fixture(scope="module")
def fit_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """`dayzero fit --model two-tower` on the three CSV files of tests/cli/test_files.py."""
    root = tmp_path_factory.mktemp("fit")
    for name, text in (("ratings", RATINGS), ("items", ITEMS), ("users", USERS)):
        (root / f"{name}.csv").write_text(text)
    (root / "model.toml").write_text(
        f'encoder = "{tiny_bert_dir}"\n[training]\nepochs = 5\nvalidation = 0.0\n'
        "[towers]\ndim = 8\nhidden = 32\n"
    )
    args = ["fit", *_files(root), "--model", "two-tower", "--config", str(root / "model.toml")]
    fitted = runner.invoke(app, [*args, "--out", str(root / "model"), "--quiet"])
    assert fitted.exit_code == 0, fitted.output
    return root


def _files(root: Path) -> list[str]:
    return ["--interactions", str(root / "ratings.csv"), "--items", str(root / "items.csv"),
            "--users", str(root / "users.csv")]  # fmt: skip


def _serve_in_process(monkeypatch, *args: str):
    """`dayzero serve ARGS` up to uvicorn.run; returns (result, the app it would serve)."""
    import uvicorn

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda served, **kw: apps.append(served))
    result = runner.invoke(app, ["serve", *args], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    return result, (apps[0] if apps else None)


def test_fit_then_import_then_serve_answers_with_titles(fit_dir, tmp_path):
    """Issue 13's chain on three small CSV files: ``Dataset.from_files``, ``dayzero fit``
    (the fixture), ``evaluate --report``, ``recommend --profile``, ``import``, then the real
    server (`python -m dayzero.cli.serve --model-dir`) on the fit folder: known users, new
    profiles and item lookups, titled."""
    import json

    from dayzero.core.schema import Dataset
    from tests.serve.conftest import API_KEY, Env, ServerProcess

    files = [fit_dir / f"{name}.csv" for name in ("ratings", "items", "users")]
    data = Dataset.from_files(*files)
    assert (data.n_users, data.n_items, len(data.interactions)) == (6, 6, 14)
    assert data.items.fields["genres"] == "multi" and data.users.fields["bio"] == "text"
    report = tmp_path / "report.html"
    evaluated = runner.invoke(
        app, ["evaluate", *_files(fit_dir), "--protocol", "holdout", "--model", "popularity",
              "--model", "content-knn", "--report", str(report), "--quiet"],
    )  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    page = report.read_text()
    assert "content-knn" in page and "popularity" in page and f"wrote {report}" in evaluated.output
    profiled = runner.invoke(
        app, ["recommend", "--model-dir", str(fit_dir / "model"), "--profile", "loves romance",
              "-k", "3", "--json"],
    )  # fmt: skip
    assert profiled.exit_code == 0, profiled.output
    answer = json.loads(profiled.stdout)
    assert answer["new_user"] and all(r["title"] == TITLES[r["item"]] for r in answer["items"])

    store = tmp_path / "events.db"
    imported = runner.invoke(app, ["import", "--store", str(store), *_files(fit_dir), "--quiet"])
    assert imported.exit_code == 0, imported.output
    env = Env(store, tmp_path / "models", (), ())
    server = ServerProcess(env, tmp_path / "server.log", "--model-dir", str(fit_dir / "model"))
    headers = {"X-API-Key": API_KEY}
    with server, httpx.Client(base_url=server.url, timeout=30.0, headers=headers) as http:
        known = http.get("/v1/users/u1/recommendations", params={"k": 3})
        assert known.status_code == 200, server.log_text()
        body = known.json()
        assert body["new_user"] is False and body["version"] == "v000001"
        assert len(body["items"]) == 3 and not SEEN_BY_U1 & {r["item"] for r in body["items"]}
        assert all(r["title"] == TITLES[r["item"]] for r in body["items"])
        new = http.post("/v1/recommendations", json={"profile": "loves romance", "k": 6}).json()
        assert sorted(r["title"] for r in new["items"]) == sorted(TITLES.values())
        item = http.get("/v1/items/a3").json()
        assert item["title"] == "Martial arts revenge" and item["stored"] and item["served"]
        assert item["fields"] == {"title": "Martial arts revenge", "genres": ["action"]}
        assert http.get("/v1/items/zz").status_code == 404
    watermark = ModelRegistry(env.registry).info("v000001")["watermark"]
    assert watermark == 14  # the imported events count as seen by the model


def test_serve_model_dir_without_a_store_titles_from_the_catalogue(fit_dir, tmp_path, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(fit_dir / "model", model)
    args = ["--store", str(tmp_path / "e.db"), "--registry", str(tmp_path / "reg")]
    first, served = _serve_in_process(monkeypatch, *args, "--model-dir", str(model))
    assert first.exit_code == 0, first.output
    assert f"serving {model} as version v000001 (published and promoted)" in first.output
    with TestClient(served) as http:
        body = http.get("/v1/users/u1/recommendations", params={"k": 10}).json()
        # the store holds no events: the model's own training history is left out
        assert {r["item"] for r in body["items"]} == set(TITLES) - SEEN_BY_U1
        assert all(r["title"] == TITLES[r["item"]] for r in body["items"])
        item = http.get("/v1/items/a1").json()
        assert item["title"] == "Explosive car chase" and item["served"]
        assert not item["stored"] and "Explosive car chase" in item["text"]
    # Starting again with the same files publishes nothing; a promoted update of it is kept.
    again, _ = _serve_in_process(monkeypatch, *args, "--model-dir", str(model))
    assert "as version v000001 (already served)" in again.output
    registry = ModelRegistry(tmp_path / "reg")
    # an update as `dayzero update` writes it: the serving model without a catalogue/
    keep = shutil.ignore_patterns("catalogue", *RESERVED)
    source = registry.path("v000001")
    update = registry.publish(
        lambda folder: shutil.copytree(source, folder, ignore=keep, dirs_exist_ok=True),
        metrics={}, watermark=0, config={"kind": "fine-tune", "parent": "v000001"},
    )  # fmt: skip
    assert not (registry.path(update) / "catalogue").exists()
    registry.promote(update)
    kept, served = _serve_in_process(monkeypatch, *args, "--model-dir", str(model))
    assert f"as version {update} (already served)" in kept.output
    assert len(registry.versions()) == 2
    with TestClient(served) as http:  # the update has no catalogue/: its parent's titles
        assert http.get("/v1/model").json()["version"] == update
        assert http.get("/v1/items/r2").json()["title"] == "A summer wedding"


def test_a_folder_that_is_not_a_fit_folder_is_refused(tmp_path, monkeypatch, fit_dir):
    args = ["--store", str(tmp_path / "e.db"), "--registry", str(tmp_path / "reg")]
    (tmp_path / "empty").mkdir()
    empty, served = _serve_in_process(monkeypatch, *args, "--model-dir", str(tmp_path / "empty"))
    assert empty.exit_code == 2 and served is None
    assert f"{tmp_path / 'empty' / 'dayzero.json'} is missing" in empty.output
    assert "dayzero fit" in empty.output and "Traceback" not in empty.output
    knn = tmp_path / "knn"
    fitted = runner.invoke(
        app, ["fit", *_files(fit_dir), "--model", "content-knn", "--out", str(knn), "--quiet"]
    )
    assert fitted.exit_code == 0, fitted.output
    refused, served = _serve_in_process(monkeypatch, *args, "--model-dir", str(knn))
    assert refused.exit_code == 2 and served is None
    assert "cannot be served from a vector index" in refused.output
    both, _ = _serve_in_process(monkeypatch, *args, "--model-dir", str(knn), "--bootstrap-demo")
    assert both.exit_code == 2 and "not both" in both.output


def test_background_updates_are_refused_with_several_processes(tmp_path):
    store, registry = str(tmp_path / "events.db"), str(tmp_path / "models")
    for many in (["--workers", "2"], ["--ray-replicas", "2"]):
        result = CliRunner().invoke(
            app, ["serve", "--store", store, "--registry", registry, "--update-every", "5", *many]
        )
        assert result.exit_code == 2 and "dayzero update" in result.output, result.output
