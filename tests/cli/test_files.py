"""`dayzero fit / recommend / import / evaluate --interactions` on three small CSV files, end to
end through the command line (a themed catalogue: the right answers are known from the text)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dayzero.cli.main import app
from dayzero.core.card import read_card
from dayzero.online.store import open_store

runner = CliRunner(env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})

RATINGS = """user_id,item_id,rating,timestamp
u1,a1,5,2020-01-01
u1,a2,4,2020-01-02
u1,r1,1,2020-01-03
u2,r1,5,2020-01-01
u2,r2,4,2020-01-02
u2,a1,1,2020-01-03
u3,a2,5,2020-01-04
u3,a3,4,2020-01-05
u4,r2,5,2020-01-04
u4,r3,4,2020-01-05
u5,a1,4,2020-01-06
u5,a3,5,2020-01-07
u6,r1,4,2020-01-06
u6,r3,5,2020-01-07
"""
ITEMS = """item_id,title,genres
a1,Explosive car chase,action|thriller
a2,Space battle heroes,action|scifi
a3,Martial arts revenge,action
r1,Paris love letters,romance|drama
r2,A summer wedding,romance|comedy
r3,Heartbreak in Rome,romance
"""
USERS = """user_id,bio
u1,likes fast action films
u2,enjoys romantic dramas
u3,action and science fiction fan
u4,loves weddings and romance
u5,watches martial arts
u6,romantic comedies every weekend
"""


@pytest.fixture
def files(tmp_path):
    for name, text in (("ratings", RATINGS), ("items", ITEMS), ("users", USERS)):
        (tmp_path / f"{name}.csv").write_text(text)
    return tmp_path


def _args(files, users: bool = True) -> list[str]:
    out = ["--interactions", str(files / "ratings.csv"), "--items", str(files / "items.csv")]
    return out + (["--users", str(files / "users.csv")] if users else [])


def test_fit_then_recommend_with_titles_and_a_card(files):
    fitted = runner.invoke(
        app, ["fit", *_args(files), "--model", "content-knn", "--out", str(files / "m")]
    )
    assert fitted.exit_code == 0, fitted.output
    assert "14 interactions, 6 users" in fitted.output and "genres" in fitted.output
    card = read_card(files / "m")
    assert card.name == "content-knn" and card.training_data["interactions"] == 14
    assert card.training_data["item_fields"]["genres"] == "multi"
    shown = runner.invoke(app, ["recommend", "--model-dir", str(files / "m"), "--user", "u1"])
    assert shown.exit_code == 0, shown.output
    listed = runner.invoke(
        app, ["recommend", "--model-dir", str(files / "m"), "--user", "u1", "-k", "2", "--json"]
    )
    body = json.loads(listed.output)
    assert len(body["items"]) == 2
    titles = dict(line.split(",")[:2] for line in ITEMS.splitlines()[1:])
    for row in body["items"]:
        assert row["title"] == titles[row["item"]] and row["item"] not in {"a1", "a2", "r1"}
    assert body["new_user"] is False
    # A user the files never named is a new user: the model's cold-start list, not an error,
    # and the command says so on stderr (the --json document on stdout stays valid JSON).
    new = runner.invoke(app, ["recommend", "--model-dir", str(files / "m"), "--user", "zz"])
    assert new.exit_code == 0 and "Explosive car chase" in new.stdout
    said = "user zz is not in the training data; showing the list for a new user"
    assert new.stderr.strip() == said and said not in new.stdout
    cold = runner.invoke(
        app, ["recommend", "--model-dir", str(files / "m"), "--user", "zz", "--json"]
    )
    assert cold.exit_code == 0 and cold.stderr.strip() == said
    assert json.loads(cold.stdout)["new_user"] is True


def test_evaluate_on_files_and_attach_to_the_card(files):
    out = files / "r.json"
    evaluated = runner.invoke(
        app,
        [
            "evaluate",
            *_args(files, users=False),
            "--protocol",
            "holdout",
            "--model",
            "popularity",
            "--model",
            "content-knn",
            "--output",
            str(out),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads(out.read_text())["results"]
    assert {r["model"] for r in results} == {"popularity", "content-knn"}
    runner.invoke(app, ["fit", *_args(files), "--model", "content-knn", "--out", str(files / "m")])
    attached = runner.invoke(app, ["card", str(files / "m"), "--evaluation", str(out)])
    assert attached.exit_code == 0, attached.output
    assert [r["model"] for r in read_card(files / "m").evaluation] == ["content-knn"]


def test_import_loads_the_store_once(files):
    store_path = files / "events.db"
    args = ["import", "--store", str(store_path), *_args(files)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, args)  # idempotency keys: nothing is stored twice
    assert again.exit_code == 0, again.output
    store = open_store(str(store_path))
    try:
        assert store.count_events() == 14
        assert len(store.items()) == 6
    finally:
        store.close()


def test_a_missing_column_names_the_file_and_the_fix(files):
    (files / "bad.csv").write_text("who,what\nu1,a1\n")
    bad = runner.invoke(
        app, ["fit", "--interactions", str(files / "bad.csv"), "--out", str(files / "m")]
    )
    assert bad.exit_code == 2 and "bad.csv" in bad.output and "Traceback" not in bad.output
    assert "--user-col" in bad.output or "user" in bad.output


def test_the_global_quiet_flag_quiets_the_columns_table(files):
    args = ["fit", *_args(files), "--model", "popularity", "--out", str(files / "q")]
    loud, quiet = runner.invoke(app, args), runner.invoke(app, ["--quiet", *args])
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert "columns of" in loud.output and "columns of" not in quiet.output


def test_recommend_explain_names_history_items_and_fields(files, tiny_bert_dir):
    (files / "model.toml").write_text(
        f'encoder = "{tiny_bert_dir}"\n[training]\nepochs = 60\nvalidation = 0.0\nlr = 0.01\n'
        "batch_users = 2\n[towers]\ndim = 8\nhidden = 32\n"
    )
    args = ["fit", *_args(files), "--model", "two-tower", "--config", str(files / "model.toml")]
    fitted = runner.invoke(app, [*args, "--out", str(files / "tt"), "--quiet"])
    assert fitted.exit_code == 0, fitted.output
    ask = ["recommend", "--model-dir", str(files / "tt"), "--user", "zz", "-k", "4"]
    ask += ["--history", "a3=5,r2=5", "--explain"]
    shown = runner.invoke(app, [*ask, "--json", "--items", str(files / "items.csv")])
    assert shown.exit_code == 0, shown.output
    for row in json.loads(shown.stdout)["items"]:
        why = row["explanation"]
        # a new user who liked one action and one romance film: each item is explained by
        # the liked film of its own theme, and by the item's own fields
        assert {h["item"] for h in why["history"]} == {"a3", "r2"}
        assert why["history"][0]["item"][0] == row["item"][0]
        assert {f["field"] for f in why["fields"]} <= {"title", "genres"} and why["fields"]
    table = runner.invoke(app, ask)
    assert table.exit_code == 0, table.output
    assert "because of" in table.stdout and "--items" in table.stdout  # no field side asked
    bare = runner.invoke(app, ["recommend", "--model-dir", str(files / "tt"), "--user", "u1"])
    assert "because of" not in bare.stdout
    refused = runner.invoke(app, [*ask[:7], "--items", str(files / "items.csv")])
    assert refused.exit_code == 2 and "--explain" in refused.output
    knn = ["fit", *_args(files), "--model", "content-knn", "--out", str(files / "knn")]
    assert runner.invoke(app, knn).exit_code == 0
    cannot = runner.invoke(
        app, ["recommend", "--model-dir", str(files / "knn"), "--user", "u1", "--explain"]
    )
    assert cannot.exit_code == 2 and "cannot explain" in cannot.output
