"""`dayzero risk fit / score / report` end to end on synthetic applicants with a tiny encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dayzero.cli.risk import risk_app

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    checking = rng.choice(["< 0 DM", "none", ">= 200 DM"], size=80)
    frame = pd.DataFrame(
        {"checking": checking, "age": rng.integers(20, 70, 80), "default": checking == "< 0 DM"}
    )
    frame["default"] = frame["default"].astype(int)
    frame.to_csv(tmp_path / "train.csv", index=False)
    new = frame.drop(columns=["default"]).head(5).copy()
    new.loc[0, "checking"] = "offshore"
    new.to_csv(tmp_path / "new.csv", index=False)
    return tmp_path


def test_fit_score_report(files, tiny_bert_dir):
    model = files / "model"
    fit = ["fit", "--data", str(files / "train.csv"), "--target", "default", "--out", str(model)]
    result = runner.invoke(risk_app, [*fit, "--encoder", str(tiny_bert_dir), "--C", "10"])
    assert result.exit_code == 0, result.output
    assert (model / "weights.safetensors").is_file()

    scores = files / "scores.csv"
    args = ["score", "--model", str(model), "--data", str(files / "new.csv"), "--out", str(scores)]
    result = runner.invoke(risk_app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(scores, keep_default_na=False)
    assert list(table.columns) == ["pd", "points", "unknown", "reason_1", "reason_2", "reason_3"]
    assert table.loc[0, "unknown"] == "checking" and np.isfinite(table["points"]).all()

    html = files / "report.html"
    args = ["report", "--model", str(model), "--data", str(files / "train.csv"), "--out", str(html)]
    result = runner.invoke(risk_app, args)
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output and html.is_file()
    assert json.loads(html.with_suffix(".json").read_text())["score_psi"] == pytest.approx(0.0)


def test_bad_target_and_columns(files, tiny_bert_dir):
    fit = ["fit", "--data", str(files / "train.csv"), "--target", "nope", "--out", str(files)]
    result = runner.invoke(risk_app, [*fit, "--encoder", str(tiny_bert_dir)])
    assert result.exit_code != 0 and "nope" in result.output
    result = runner.invoke(
        risk_app,
        [
            "score",
            "--model",
            str(files / "missing"),
            "--data",
            str(files / "new.csv"),
            "--out",
            str(files / "s.csv"),
        ],
    )
    assert result.exit_code != 0 and "missing" in result.output and "--model" in result.output


def test_good_bad_labels_with_positive_label(files, tiny_bert_dir):
    """A good/bad target: --positive-label bad makes pd the probability of "bad"."""
    frame = pd.read_csv(files / "train.csv")
    frame["default"] = np.where(frame["default"] == 1, "bad", "good")
    frame.to_csv(files / "goodbad.csv", index=False)
    model = files / "gb-model"
    fit = ["fit", "--data", str(files / "goodbad.csv"), "--target", "default", "--out", str(model)]
    args = [*fit, "--encoder", str(tiny_bert_dir), "--C", "10", "--positive-label", "bad"]
    result = runner.invoke(risk_app, args)
    assert result.exit_code == 0, result.output
    assert f"{int((frame['default'] == 'bad').sum())} with default = 'bad'" in result.output
    new = pd.DataFrame({"checking": ["< 0 DM", "none"], "age": [30, 30]})
    new.to_csv(files / "two.csv", index=False)
    scores = files / "gb.csv"
    args = ["score", "--model", str(model), "--data", str(files / "two.csv"), "--out", str(scores)]
    assert runner.invoke(risk_app, args).exit_code == 0
    table = pd.read_csv(scores)
    assert table.loc[0, "pd"] > 0.5 > table.loc[1, "pd"]
    assert table.loc[0, "points"] < table.loc[1, "points"]
    wrong = runner.invoke(
        risk_app, [*fit, "--encoder", str(tiny_bert_dir), "--positive-label", "x"]
    )
    assert wrong.exit_code != 0 and "--positive-label" in wrong.output
