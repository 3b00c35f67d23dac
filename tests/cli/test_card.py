"""`dayzero card`: show a saved model's card, attach evaluation results and notes, export HTML."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from dayzero.cli.main import app
from dayzero.core.card import read_card
from dayzero.core.schema import Dataset, Interactions
from dayzero.recommend.contract import make_recommender

runner = CliRunner(env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})


def _saved(tmp_path):
    frame = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"], "value": 1.0})
    return make_recommender("popularity").fit(Dataset(Interactions(frame))).save(tmp_path / "m")


def test_card_shows_attaches_and_exports(tmp_path):
    folder = _saved(tmp_path)
    shown = runner.invoke(app, ["card", str(folder)])
    assert shown.exit_code == 0, shown.output
    assert "recommender / popularity" in shown.output and "interactions" in shown.output
    results = {
        "dataset": "toy",
        "results": [
            {
                "model": "popularity",
                "protocol": "holdout",
                "task": "ranking",
                "segments": {
                    "warm": {"users": 2, "metrics": {"ndcg@10": 0.5}, "ci": {"ndcg@10": [0.4, 0.6]}}
                },
            }
        ],
    }
    (tmp_path / "r.json").write_text(json.dumps(results))
    out = tmp_path / "card.html"
    args = ["card", str(folder), "--evaluation", str(tmp_path / "r.json"), "--note", "reviewed"]
    attached = runner.invoke(app, [*args, "--limitation", "demo data only", "--html", str(out)])
    assert attached.exit_code == 0, attached.output
    assert "attached 1 evaluation result" in attached.output and "0.5000 [0.400, 0.600]" in (
        attached.output
    )
    assert "0.5000 [0.4000, 0.6000]" in out.read_text()
    card = read_card(folder)
    assert card.notes == ["reviewed"] and card.limitations[-1] == "demo data only"
    as_json = runner.invoke(app, ["card", str(folder), "--json"])
    assert json.loads(as_json.output)["evaluation"][0]["model"] == "popularity"


def test_card_errors_name_the_fix(tmp_path):
    missing = runner.invoke(app, ["card", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "holds no saved dayzero model" in missing.output
    folder = _saved(tmp_path)
    (tmp_path / "empty.json").write_text("{}")
    empty = runner.invoke(app, ["card", str(folder), "--evaluation", str(tmp_path / "empty.json")])
    assert empty.exit_code == 2 and "dayzero evaluate --output" in empty.output
