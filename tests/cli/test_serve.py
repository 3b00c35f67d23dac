"""`dayzero serve --risk-model`: a folder that cannot be served is refused before the server
starts, naming the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from dayzero.cli.main import app
from dayzero.risk.scorer import RiskScorer
from dayzero.risk.target import TrainingInfo

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
