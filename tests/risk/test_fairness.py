"""Fairness audit: known answers on a hand-made model, a planted group effect flagged by a
fitted RiskScorer and a table without one not flagged, the counterfactual flip test (tabular
and row-text), JSON round trip and the model card, and bad input named by column."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fl
from sklearn.metrics import roc_auc_score

from dayzero.core.card import read_card
from dayzero.risk.fairness import (
    AUDIT_FILE,
    FairnessAudit,
    FairnessError,
    Sensitive,
    _auc,
    fairness_audit,
)
from dayzero.risk.scorer import RiskScorer

pytestmark = pytest.mark.usefixtures("one_thread")


class LookupModel:
    """PD read from one column (or a constant): the known answer of every rate."""

    def __init__(self, columns: list[str], pd_of):
        self.columns_ = columns
        self.pd_of = pd_of

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        assert list(frame.columns) == self.columns_  # the audit passes the model's columns only
        return np.asarray([self.pd_of(row) for row in frame.itertuples(index=False)], float)


def _applicants(n: int, seed: int, effect: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``x`` drives default for everyone; ``effect`` adds log-odds of default for group b."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], size=n)
    x = rng.normal(size=n)
    logit = -1.0 + 1.5 * x + effect * (group == "b")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    age = rng.integers(19, 70, size=n)
    return pd.DataFrame({"x": x, "group": group, "age": age}), y


@pytest.fixture(scope="module")
def planted():
    X, y = _applicants(700, 0, effect=2.0)
    model = RiskScorer(cv=3, random_state=0).fit(X.iloc[:400], y[:400])
    return model, X.iloc[400:].reset_index(drop=True), y[400:]


@pytest.fixture(scope="module")
def blind():
    """Fitted on ``x`` only: the model never reads ``group``."""
    X, y = _applicants(700, 0, effect=2.0)
    model = RiskScorer(cv=3, random_state=0).fit(X.iloc[:400][["x"]], y[:400])
    return model, X.iloc[400:].reset_index(drop=True), y[400:]


def test_known_answer_on_a_lookup_model():
    # a: 10 rows, PD 0.1, all approved; b: 10 rows, half PD 0.1, half 0.9 -> half approved.
    X = pd.DataFrame({"group": ["a"] * 10 + ["b"] * 10, "risk": [0] * 15 + [1] * 5})
    y = np.array([0] * 9 + [1] + [0] * 4 + [1] + [1] * 4 + [0])
    model = LookupModel(["risk"], lambda row: 0.9 if row.risk else 0.1)
    audit = fairness_audit(model, X, y, "group", cutoff=0.5, n_resamples=200)
    g = audit["group"]
    assert g.group_names == ["a", "b"] and not g.in_model
    assert g.group("a")["approval_rate"].value == 1.0
    assert g.group("b")["approval_rate"].value == 0.5
    assert g.group("b")["default_rate"].value == 0.5
    assert g.group("b")["mean_pd"].value == pytest.approx(0.5)
    assert g.group("b")["auc"].value == pytest.approx(roc_auc_score(y[10:], [0.1] * 5 + [0.9] * 5))
    assert g.group("b")["approval_rate_goods"].value == pytest.approx(4 / 5)
    assert g.group("b")["approval_rate_bads"].value == pytest.approx(1 / 5)
    assert g.gaps["demographic_parity_ratio"].value == pytest.approx(0.5)
    assert g.gaps["demographic_parity_difference"].value == pytest.approx(0.5)
    # fairlearn, approval the favourable prediction and "good" the favourable truth
    truth, approved = 1 - y, (X["risk"] == 0).astype(int)
    kw = {"sensitive_features": X["group"]}
    assert g.gaps["equal_opportunity_difference"].value == pytest.approx(
        fl.equal_opportunity_difference(truth, approved, **kw)
    )
    assert g.gaps["equalized_odds_difference"].value == pytest.approx(
        fl.equalized_odds_difference(truth, approved, **kw)
    )
    assert g.four_fifths_flag
    ratio = g.gaps["demographic_parity_ratio"]
    assert ratio.low <= ratio.value <= ratio.high < 1.0
    assert audit.cutoff["approval_rate"] == 0.75 and audit.n == 20
    assert g.notes == [
        "group 'a' has only 9 goods and 1 bads: its rates among them (equal opportunity, "
        "equalised odds, AUC) and their intervals are unreliable",
        "group 'b' has only 5 goods and 5 bads: its rates among them (equal opportunity, "
        "equalised odds, AUC) and their intervals are unreliable",
    ]
    # the column is not read: changing it moves nothing
    assert g.counterfactual["flip_rate"].value == 0.0
    assert g.counterfactual["max_abs_pd_shift"] == 0.0


def test_planted_group_effect_is_flagged(planted):
    model, X, y = planted
    audit = fairness_audit(model, X, y, ["group"], n_resamples=300, random_state=1)
    g = audit["group"]
    assert g.in_model and g.notes == []  # groups of ~150 rows: nothing to warn about
    rate = g.gaps["demographic_parity_ratio"]
    assert rate.value < 0.8 and g.four_fifths_flag and g.parity_outside_ci
    diff = g.gaps["demographic_parity_difference"]
    assert 0 < diff.low < diff.value < diff.high  # the interval excludes parity (0)
    assert g.compared["demographic_parity_ratio"] == {
        "metric": "approval_rate",
        "low": "b",
        "high": "a",
    }
    assert g.group("b")["approval_rate"].value < g.group("a")["approval_rate"].value
    approved = model.predict_pd(X) < audit.cutoff["pd"]
    assert diff.value == pytest.approx(
        fl.demographic_parity_difference(1 - y, approved, sensitive_features=X["group"])
    )
    # the model reads the column: setting b's applicants to "a" lowers their PD and flips some
    cf = g.counterfactual
    assert cf["flip_rate"].value > 0.05 and cf["flip_rate"].low > 0
    b_to_a = next(p for p in cf["pairs"] if p["from"] == "b")
    assert b_to_a["mean_pd_shift"] < 0 and b_to_a["declined_to_approved"] > 0
    assert any("fails the four-fifths rule" in line for line in audit.summary())


def test_a_table_without_an_effect_is_not_flagged():
    X, y = _applicants(700, 3, effect=0.0)
    model = RiskScorer(cv=3, random_state=0).fit(X.iloc[:400], y[:400])
    audit = fairness_audit(model, X.iloc[400:], y[400:], "group", n_resamples=300)
    g = audit["group"]
    assert not g.four_fifths_flag and not g.parity_outside_ci
    diff = g.gaps["demographic_parity_difference"]
    assert diff.low < 0 < diff.high  # parity lies inside the interval
    for gap in ("equal_opportunity_difference", "equalized_odds_difference"):
        assert g.gaps[gap].low < 0 < g.gaps[gap].high


def test_a_model_that_never_reads_the_column_flips_nothing(blind):
    model, X, y = blind
    audit = fairness_audit(model, X, y, ["group"], n_resamples=100)
    g = audit["group"]
    assert not g.in_model
    cf = g.counterfactual
    assert cf["flip_rate"].value == 0.0 and cf["mean_abs_pd_shift"].value == 0.0
    assert cf["rows_with_a_flip"] == 0.0
    # ...which says nothing about outcomes: x differs by group only by chance here
    assert "does not read the column" in audit.summary()[1]


def test_row_text_counterfactual_moves_the_pd(tiny_bert_dir):
    X, y = _applicants(160, 5, effect=3.0)
    model = RiskScorer(representation="row-text", encoder=str(tiny_bert_dir), max_length=32)
    model.fit(X.iloc[:100], y[:100])
    audit = fairness_audit(model, X.iloc[100:], y[100:], "group", n_resamples=50)
    cf = audit["group"].counterfactual
    assert audit.model["representation"] == "row-text"
    # the rendered sentence changes ("group is a" -> "group is b"): so does the vector
    assert cf["mean_abs_pd_shift"].value > 0 and cf["max_abs_pd_shift"] > 0
    assert {p["from"] for p in cf["pairs"]} == {"a", "b"}


def test_numeric_bands_and_approval_rate_cutoff(blind):
    model, X, y = blind
    audit = fairness_audit(
        model, X, y, Sensitive("age", bins=[25]), approval_rate=0.6, n_resamples=50
    )
    age = audit["age"]
    assert age.group_names == ["< 25", ">= 25"] and age.grouping["edges"] == [25.0]
    assert age.group("< 25")["n"] == int((X["age"] < 25).sum())
    young = X.loc[X["age"] < 25, "age"]
    assert age.group("< 25")["counterfactual_value"] == pytest.approx(young.median())
    assert audit.cutoff["chosen_by"] == "approval_rate"
    assert audit.cutoff["approval_rate"] == pytest.approx(0.6, abs=0.01)
    quartiles = fairness_audit(
        model, X, y, Sensitive("age", bins=4), counterfactual=False, n_resamples=50
    )
    assert len(quartiles["age"].groups) == 4 and quartiles["age"].counterfactual is None


def test_groups_mapping_names_the_attribute():
    X = pd.DataFrame({"status": ["male : single", "female : married", "male : married"] * 10})
    y = np.tile([0, 1, 0], 10)
    model = LookupModel(["status"], lambda row: 0.6 if row.status.startswith("female") else 0.2)
    sex = Sensitive("status", name="sex", groups=lambda v: v.split(":")[0].strip())
    audit = fairness_audit(model, X, y, sex, cutoff=0.5, n_resamples=50)
    assert audit.names == ["sex"] and audit["sex"].group_names == ["female", "male"]
    assert audit["sex"].group("female")["approval_rate"].value == 0.0
    # female -> the most frequent male value: every female applicant is approved then
    flips = {(p["from"], p["to"]): p["flip_rate"] for p in audit["sex"].counterfactual["pairs"]}
    assert flips == {("female", "male"): 1.0, ("male", "female"): 1.0}


def test_json_round_trip_and_the_model_card(planted, tmp_path):
    model, X, y = planted
    audit = fairness_audit(
        model, X, y, ["group", Sensitive("age", bins=[25])], n_resamples=50, data={"file": "t"}
    )
    folder = model.save(tmp_path / "model")
    path = audit.save(folder)
    assert path == folder / AUDIT_FILE
    loaded = FairnessAudit.load(folder)
    assert loaded.to_dict() == json.loads(audit.to_json())
    assert loaded["group"].four_fifths_flag == audit["group"].four_fifths_flag
    card = read_card(folder)
    assert card.fairness["format"] == "dayzero-fairness-audit"
    assert [a["name"] for a in card.fairness["attributes"]] == ["group", "age"]
    assert card.fairness["attributes"][0]["four_fifths_flag"] is True
    assert "Fairness audit" in audit.to_html() and "four-fifths" in audit.to_html()
    frame = audit.to_frame()
    assert set(frame["attribute"]) == {"group", "age"} and "auc_low" in frame


def test_load_refuses_what_is_not_an_audit(tmp_path):
    (tmp_path / AUDIT_FILE).write_text('{"format": "other"}')
    with pytest.raises(FairnessError, match="not a fairness audit"):
        FairnessAudit.load(tmp_path)
    (tmp_path / AUDIT_FILE).write_text("{")
    with pytest.raises(FairnessError, match="not valid JSON"):
        FairnessAudit.load(tmp_path)


def test_bad_input_names_the_column(blind):
    model, X, y = blind
    with pytest.raises(FairnessError, match=r"'sex' is not in X.*'group'"):
        fairness_audit(model, X, y, ["sex"])
    one = X.assign(group="a")
    with pytest.raises(FairnessError, match="'group' has 1 group"):
        fairness_audit(model, one, y, "group")
    with pytest.raises(FairnessError, match="not both"):
        fairness_audit(model, X, y, "group", cutoff=0.3, approval_rate=0.5)
    with pytest.raises(FairnessError, match="labels for"):
        fairness_audit(model, X, y[:-1], "group")
    with pytest.raises(FairnessError, match="'group' is not numeric"):
        fairness_audit(model, X, y, Sensitive("group", bins=[1]))
    with pytest.raises(FairnessError, match=r"lacks columns the model reads: \['x'\]"):
        fairness_audit(model, X.drop(columns=["x"]), y, "group")


def test_auc_is_sklearns_with_ties():
    rng = np.random.default_rng(0)
    d = rng.random(200) < 0.3
    p = np.round(rng.random(200), 1)  # many ties
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _auc(d, p) == pytest.approx(roc_auc_score(d, p))


def test_missing_values_are_their_own_group(blind):
    model, X, y = blind
    X = X.assign(group=X["group"].where(np.arange(len(X)) % 10 != 0))  # 30 rows empty
    audit = fairness_audit(model, X, y, "group", n_resamples=50)
    assert audit["group"].group_names == ["a", "b", "missing"]
    assert audit["group"].group("missing")["counterfactual_value"] is None
    assert FairnessAudit.from_dict(json.loads(audit.to_json()))["group"].group_names == [
        "a",
        "b",
        "missing",
    ]
