"""`dayzero risk fit / score / report` end to end on synthetic applicants: the library's
defaults, every file format, the label column when scoring, and errors that name the file,
the line and the column (exit status 2, never a traceback)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dayzero.cli.risk import risk_app
from dayzero.risk.scorer import RiskScorer
from dayzero.risk.target import TRAINING_FILE

runner = CliRunner()


def _applicants(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    checking = rng.choice(["< 0 DM", "none", ">= 200 DM"], size=n)
    frame = pd.DataFrame(
        {
            "id": [f"a{seed}-{i}" for i in range(n)],
            "checking": checking,
            "age": rng.integers(20, 70, n),
        }
    )
    frame["default"] = ((checking == "< 0 DM") | (rng.random(n) < 0.1)).astype(int)
    return frame


@pytest.fixture
def files(tmp_path):
    frame = _applicants(120, 0)
    frame.drop(columns=["id"]).to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    new = frame.drop(columns=["id", "default"]).head(5).copy()
    new.loc[0, "checking"] = "offshore"
    new.to_csv(tmp_path / "new.csv", index=False)
    _applicants(60, 1).to_csv(tmp_path / "labelled.tsv", sep="\t", index=False)
    return tmp_path


def _invoke(*args: str):
    result = runner.invoke(risk_app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _fit(files, data: str = "train.csv", *extra: str, out: str = "model"):
    result = _invoke("fit", "--data", files / data, "--out", files / out, *extra)
    assert result.exit_code == 0, result.output
    return files / out, result


def _failure(*args: str) -> str:
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    return result.output


def test_fit_uses_the_library_defaults_and_scores_as_the_python_api(files):
    model, result = _fit(files, "train.csv", "--target", "default")
    assert "RiskScorer(): the library defaults" in result.output
    assert "read " in result.output and "120 rows, 3 columns (comma-separated)" in result.output
    loaded = RiskScorer.load(model)
    assert loaded.get_params() == RiskScorer().get_params()

    scores = files / "scores.csv"
    result = _invoke("score", "--model", model, "--data", files / "new.csv", "--out", scores)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(scores, keep_default_na=False)
    assert list(table.columns) == ["pd", "points", "unknown", "reason_1", "reason_2", "reason_3"]
    assert table.loc[0, "unknown"] == "checking" and np.isfinite(table["points"]).all()

    frame = pd.read_csv(files / "train.csv")
    python = RiskScorer().fit(frame.drop(columns=["default"]), frame["default"])
    new = pd.read_csv(files / "new.csv")
    np.testing.assert_allclose(table["pd"], python.predict_pd(new), rtol=1e-9)
    np.testing.assert_allclose(table["points"], python.points(new), rtol=1e-9)

    html = files / "report.html"
    result = _invoke("report", "--model", model, "--data", files / "train.csv", "--out", html)
    assert result.exit_code == 0, result.output
    assert "label 'default'" in result.output and "AUC" in result.output and html.is_file()
    assert json.loads(html.with_suffix(".json").read_text())["score_psi"] == pytest.approx(0.0)


def test_flags_change_only_the_parameters_they_name(files, tiny_bert_dir):
    model, result = _fit(
        files,
        "train.csv",
        "--target",
        "default",
        "--fusion",
        "--encoder",
        tiny_bert_dir,
        "--C",
        "10",
        "--param",
        "max_length=64",
    )
    expected = RiskScorer(fusion=True, encoder=str(tiny_bert_dir), C=10.0, max_length=64)
    assert RiskScorer.load(model).get_params() == expected.get_params()
    assert "library defaults otherwise" in result.output and "fusion=True" in result.output
    out = _failure(
        "fit", "--data", files / "train.csv", "--target", "default", "--out", files / "m2",
        "--param", "colour=red",
    )  # fmt: skip
    assert "--param: RiskScorer has no parameter 'colour'" in out and "max_iter" in out


def test_tab_separated_files_with_sep_or_sniffed(files):
    frame = pd.read_csv(files / "train.tsv", sep="\t")
    frame.drop(columns=["id"]).to_csv(files / "train.txt", sep="\t", index=False)
    _, sniffed = _fit(files, "train.txt", "--target", "default", out="m-sniffed")
    assert "(tab-separated)" in sniffed.output
    frame.drop(columns=["id"]).to_csv(files / "tabs.csv", sep="\t", index=False)
    model, given = _fit(files, "tabs.csv", "--target", "default", "--sep", "tab", out="m-sep")
    assert "(tab-separated)" in given.output
    assert json.loads((model / TRAINING_FILE).read_text())["features"] == ["checking", "age"]
    # A wrong --sep is named with the separator that splits the file, before any fitting.
    out = _failure(
        "fit", "--data", files / "tabs.csv", "--target", "default", "--out", files / "x",
        "--sep", ";",
    )  # fmt: skip
    assert "tabs.csv line 1" in out and "tab-separated (3 columns)" in out


def test_score_a_file_that_still_holds_the_label_and_an_id(files):
    model, _ = _fit(files, "train.tsv", "--target", "default", "--exclude", "id")
    info = json.loads((model / TRAINING_FILE).read_text())
    assert info["target"] == "default" and info["passthrough"] == ["id"]
    scores = files / "scores.parquet"
    result = _invoke("score", "--model", model, "--data", files / "labelled.tsv", "--out", scores)
    assert result.exit_code == 0, result.output
    assert "'default' is the model's target: not scored, kept in the output" in result.output
    table = pd.read_parquet(scores)
    assert list(table.columns[:4]) == ["id", "default", "pd", "points"]
    labelled = pd.read_csv(files / "labelled.tsv", sep="\t")
    assert table["id"].tolist() == labelled["id"].tolist()
    features = labelled[["checking", "age"]]
    np.testing.assert_allclose(table["pd"], RiskScorer.load(model).predict_pd(features))

    from dayzero.risk.metrics import ks_statistic, roc_auc

    flags = labelled["default"].to_numpy() == 1
    auc, ks = roc_auc(flags, table["pd"]), ks_statistic(flags, table["pd"]).statistic
    assert f"AUC {auc:.3f}  KS {ks:.3f}" in result.output
    assert f"({int(flags.sum())} defaults of 60)" in result.output

    out = _failure(
        "score", "--model", model, "--data", files / "labelled.tsv", "--out", scores,
        "--target", "age",
    )  # fmt: skip
    assert "--target: 'age' is a column the model scores, not a label" in out

    # Without the label (and without the id) the same rows get the same scores.
    features.to_csv(files / "plain.csv", index=False)
    plain = files / "plain-scores.csv"
    result = _invoke("score", "--model", model, "--data", files / "plain.csv", "--out", plain)
    assert result.exit_code == 0 and "AUC" not in result.output
    np.testing.assert_allclose(pd.read_csv(plain)["pd"], table["pd"])


def test_report_takes_the_target_from_the_model_folder(files):
    frame = pd.read_csv(files / "train.csv").rename(columns={"default": "bad"})
    frame.to_csv(files / "bad.csv", index=False)
    model, _ = _fit(files, "bad.csv", "--target", "bad")
    html = files / "r.html"
    result = _invoke("report", "--model", model, "--data", files / "bad.csv", "--out", html)
    assert result.exit_code == 0, result.output
    assert "label 'bad'" in result.output
    report = json.loads(html.with_suffix(".json").read_text())
    assert report["n"] == 120 and report["bad_rate"] == pytest.approx(frame["bad"].mean())
    # A model saved from Python has no training.json: the report asks for --target, listing
    # the binary columns of the file.
    python = files / "python-model"
    RiskScorer(cv=2).fit(frame[["checking", "age"]], frame["bad"]).save(python)
    out = _failure("report", "--model", python, "--data", files / "bad.csv", "--out", html)
    assert "--target" in out and "binary columns of this file (the candidates): ['bad']" in out
    result = _invoke(
        "report", "--model", python, "--data", files / "bad.csv", "--out", html, "--target", "bad"
    )
    assert result.exit_code == 0, result.output


def test_fit_without_target_lists_the_binary_candidates(files):
    out = _failure("fit", "--data", files / "train.tsv", "--out", files / "m")
    assert "--target: name the target column" in out
    assert "(the candidates): ['default']" in out
    out = _failure("fit", "--data", files / "train.tsv", "--out", files / "m", "--target", "nope")
    assert "no column 'nope'" in out and "['default']" in out
    out = _failure("fit", "--data", files / "train.tsv", "--out", files / "m", "--target", "age")
    assert "target column 'age' has" in out and "map it to two values" in out


def test_bad_files_name_file_line_and_column(files):
    model, _ = _fit(files, "train.csv", "--target", "default")
    lines = (files / "new.csv").read_text().splitlines()
    lines[3] = "none,forty"  # data row 3 is file line 4
    (files / "typo.csv").write_text("\n".join(lines) + "\n")
    out = _failure(
        "score", "--model", model, "--data", files / "typo.csv", "--out", files / "s.csv"
    )
    assert "typo.csv line 4, column 'age': 'forty' is not a number" in out

    lines[3] = "none,40,extra"
    (files / "ragged.csv").write_text("\n".join(lines) + "\n")
    out = _failure(
        "score", "--model", model, "--data", files / "ragged.csv", "--out", files / "s.csv"
    )
    assert "--data" in out and "ragged.csv line 4: 3 fields, but the header has 2" in out

    frame = pd.read_csv(files / "train.csv")
    frame.loc[7, "default"] = np.nan
    frame.to_csv(files / "holes.csv", index=False)
    out = _failure(
        "fit", "--data", files / "holes.csv", "--target", "default", "--out", files / "h"
    )
    assert "holes.csv line 9, column 'default'" in out and "empty in 1 of 120 rows" in out

    frame = pd.read_csv(files / "new.csv").assign(salary=1)
    frame.to_csv(files / "extra.csv", index=False)
    out = _failure(
        "score", "--model", model, "--data", files / "extra.csv", "--out", files / "s.csv"
    )
    assert "not fitted on: ['salary']" in out and "remove those columns" in out

    out = _failure(
        "score", "--model", files / "missing", "--data", files / "new.csv", "--out", files / "s.csv"
    )
    assert "--model" in out and "missing" in out
    out = _failure(
        "score", "--model", model, "--data", files / "new.csv", "--out", files / "s.xlsx"
    )
    assert "--out" in out and "'.xlsx'" in out
    (files / "empty.csv").write_text("")
    out = _failure(
        "fit", "--data", files / "empty.csv", "--target", "default", "--out", files / "e"
    )
    assert "empty.csv is empty" in out


def test_wrong_labels_when_scoring_are_reported_not_fatal(files):
    model, _ = _fit(files, "train.tsv", "--target", "default", "--exclude", "id")
    frame = pd.read_csv(files / "labelled.tsv", sep="\t")
    frame["default"] = frame["default"].astype(str)
    frame.loc[4, "default"] = "maybe"
    frame.to_csv(files / "odd.csv", index=False)
    result = _invoke(
        "score", "--model", model, "--data", files / "odd.csv", "--out", files / "o.csv"
    )
    assert result.exit_code == 0, result.output
    assert "not measured (line 6)" in result.output and "'maybe'" in result.output
    out = _failure(
        "report", "--model", model, "--data", files / "odd.csv", "--out", files / "r.html"
    )
    assert "odd.csv line 6, column 'default'" in out


def test_good_bad_labels_with_positive_label(files):
    """A good/bad target: --positive-label bad makes pd the probability of "bad"."""
    frame = pd.read_csv(files / "train.csv")
    frame["default"] = np.where(frame["default"] == 1, "bad", "good")
    frame.to_csv(files / "goodbad.csv", index=False)
    model, result = _fit(files, "goodbad.csv", "--target", "default", "--positive-label", "bad")
    assert f"{int((frame['default'] == 'bad').sum())} with default = 'bad'" in result.output
    new = pd.DataFrame({"checking": ["< 0 DM", "none"], "age": [30, 30]})
    new.to_csv(files / "two.csv", index=False)
    scores = files / "gb.csv"
    result = _invoke("score", "--model", model, "--data", files / "two.csv", "--out", scores)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(scores)
    assert table.loc[0, "pd"] > table.loc[1, "pd"]
    assert table.loc[0, "points"] < table.loc[1, "points"]
    python = RiskScorer(positive_label="bad").fit(frame[["checking", "age"]], frame["default"])
    np.testing.assert_allclose(table["pd"], python.predict_pd(new), rtol=1e-9)
    out = _failure(
        "fit", "--data", files / "goodbad.csv", "--target", "default", "--out", files / "x",
        "--positive-label", "x",
    )  # fmt: skip
    assert "--positive-label" in out


def test_audit_flags_a_planted_effect_and_writes_to_the_model(files):
    from dayzero.core.card import read_card
    from dayzero.risk.fairness import AUDIT_FILE, FairnessAudit

    model, _ = _fit(files, "train.csv", "--target", "default")
    out = files / "audit.json"
    result = _invoke(
        "audit", model, "--data", files / "labelled.tsv", "--sensitive", "checking",
        "--sensitive", "age", "--bins", "age=40", "--approval-rate", "0.6",
        "--n-resamples", "100", "--json", out, "--write-to-model",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "demographic parity ratio" in result.output and "FLAGGED" in result.output
    audit = FairnessAudit.load(out)
    assert audit.names == ["checking", "age"] and audit.n == 60
    assert audit["age"].group_names == ["< 40", ">= 40"]
    # default = checking "< 0 DM" (plus noise): that group is approved far less often
    checking = audit["checking"]
    assert checking.four_fifths_flag and checking.compared["demographic_parity_ratio"]["low"] == (
        "< 0 DM"
    )
    assert audit.cutoff["approval_rate"] == pytest.approx(0.6, abs=0.02)
    assert audit.data == {"file": str(files / "labelled.tsv"), "target": "default"}
    assert (model / AUDIT_FILE).is_file()
    assert read_card(model).fairness["attributes"][0]["four_fifths_flag"] is True
    assert FairnessAudit.load(model).to_dict() == audit.to_dict()


def test_audit_errors_name_the_column(files):
    model, _ = _fit(files, "train.csv", "--target", "default")
    labelled = files / "labelled.tsv"
    out = _failure("audit", model, "--data", labelled, "--sensitive", "sex")
    assert "--sensitive:" in out and "no column 'sex'" in out
    frame = pd.read_csv(labelled, sep="\t").assign(branch="north")
    frame.to_csv(files / "one.csv", index=False)
    out = _failure("audit", model, "--data", files / "one.csv", "--sensitive", "branch")
    assert "'branch' has 1 group(s)" in out
    out = _failure(
        "audit", model, "--data", labelled, "--sensitive", "age", "--cutoff", "0.3",
        "--approval-rate", "0.5",
    )  # fmt: skip
    assert "not both" in out
    out = _failure("audit", model, "--data", labelled, "--sensitive", "age", "--bins", "age=x")
    assert "--bins:" in out and "age=q4" in out
    out = _failure("audit", model, "--data", labelled, "--sensitive", "id", "--bins", "id=q3")
    assert "'id' is not numeric" in out
    assert not (model / "fairness_audit.json").exists()


def test_report_with_sensitive_columns_has_an_audit_section(files):
    model, _ = _fit(files, "train.tsv", "--target", "default", "--exclude", "id")
    labelled = pd.read_csv(files / "labelled.tsv", sep="\t")
    labelled["region"] = np.where(np.arange(len(labelled)) % 2 == 0, "north", "south")
    labelled.to_csv(files / "regions.csv", index=False)
    html = files / "report.html"
    result = _invoke(
        "report", "--model", model, "--data", files / "regions.csv", "--out", html,
        "--sensitive", "checking", "--sensitive", "region",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "checking: approval" in result.output and "region: approval" in result.output
    page = html.read_text()
    assert "Fairness audit" in page and "region (column region, not read by the model)" in page
    numbers = json.loads(html.with_suffix(".json").read_text())
    assert [a["name"] for a in numbers["fairness"]["attributes"]] == ["checking", "region"]
    assert numbers["fairness"]["attributes"][0]["four_fifths_flag"] is True
    # without --sensitive: no section; a column the model does not read is still refused
    result = _invoke("report", "--model", model, "--data", files / "labelled.tsv", "--out", html)
    assert result.exit_code == 0 and "Fairness audit" not in html.read_text()
    assert json.loads(html.with_suffix(".json").read_text())["fairness"] is None
    out = _failure("report", "--model", model, "--data", files / "regions.csv", "--out", html)
    assert "region" in out
    out = _failure(
        "report", "--model", model, "--data", files / "regions.csv", "--out", html,
        "--sensitive", "colour",
    )  # fmt: skip
    assert "--sensitive:" in out and "'colour'" in out


def test_fit_with_a_transfer_prior_and_a_folder_that_is_not_one(files, tiny_bert_dir):
    from dayzero.risk.prior import TransferPrior

    tables = {}
    for seed in (5, 6):
        frame = _applicants(150, seed)
        tables[f"portfolio{seed}"] = (frame[["checking", "age"]], frame["default"])
    TransferPrior(encoder=str(tiny_bert_dir), alphas=(0.1,)).fit(tables).save(files / "prior")
    few = _applicants(120, 0).drop(columns=["id"])
    few = pd.concat([few[few["default"] == c].head(3) for c in (0, 1)])
    few.to_csv(files / "few.csv", index=False)
    model, result = _fit(files, "few.csv", "--target", "default", "--prior", files / "prior")
    assert f"prior={str(files / 'prior')!r}" in result.output
    loaded = RiskScorer.load(model)
    assert loaded.tabular_model_ == "prior"
    assert "taken outright" in loaded.depth_selection_["reason"]
    assert (model / "prior_model" / "prior" / "dayzero.json").is_file()
    scores = files / "few-scores.csv"
    result = _invoke("score", "--model", model, "--data", files / "new.csv", "--out", scores)
    assert result.exit_code == 0, result.output
    assert np.isfinite(pd.read_csv(scores)["pd"]).all()
    out = _failure(
        "fit", "--data", files / "few.csv", "--target", "default", "--out", files / "m3",
        "--prior", files,
    )  # fmt: skip
    assert out.startswith("Error: --prior: ") and "is not a saved transfer prior" in out
