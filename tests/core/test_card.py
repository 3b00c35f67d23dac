"""Model cards: what every save writes, what is merged in later, and the protected-column rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dayzero.core.card import (
    CARD_HTML,
    CARD_JSON,
    EVALUATION_FILE,
    FAIRNESS_FILE,
    CardError,
    ModelCard,
    attach_evaluation,
    read_card,
    refresh_card,
    sensitive_columns,
    summarize_dataset,
    summarize_table,
    summarize_texts,
    write_card,
)
from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.recommend.contract import Recommender, make_recommender


def _dataset(user_fields: bool = False) -> Dataset:
    rows = [("u1", "a", 5.0), ("u1", "b", 3.0), ("u2", "a", 4.0), ("u3", "c", 1.0)]
    frame = pd.DataFrame(rows, columns=["user", "item", "value"])
    frame["timestamp"] = pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2021-01-01"])
    items = Entities.from_frame(
        pd.DataFrame({"id": ["a", "b", "c", "d"], "title": ["x y", "y z", "z w", "w x"]}),
        "id",
        {"title": "text"},
    )
    users = None
    if user_fields:
        people = pd.DataFrame({"id": ["u1", "u2", "u3"], "gender": list("FMF"), "job": list("abc")})
        users = Entities.from_frame(
            people, "id", {"gender": "categorical", "job": "categorical"}, "user"
        )
    return Dataset(Interactions(frame), users=users, items=items, name="toy")


def test_sensitive_columns_match_whole_words_only():
    names = ["personal_status_sex", "AGE", "ageInYears", "percentage", "Marriage", "usage", "page"]
    assert sensitive_columns(names) == ["personal_status_sex", "AGE", "ageInYears", "Marriage"]
    assert sensitive_columns(["credit_amount", "duration", "foreign_worker"]) == ["foreign_worker"]


def test_dataset_summary_counts_scale_time_and_fields():
    summary = summarize_dataset(_dataset())
    assert summary["users"] == 3 and summary["items"] == 4 and summary["interactions"] == 4
    assert summary["items_with_interactions"] == 3
    assert summary["density"] == pytest.approx(4 / 12)
    assert summary["values"] == {
        "kind": "explicit",
        "min": 1.0,
        "max": 5.0,
        "mean": 3.25,
        "levels": [1.0, 3.0, 4.0, 5.0],
    }
    assert summary["time_range"][0].startswith("2020-01-01")
    assert summary["time_range"][1].startswith("2021-01-01")
    assert summary["item_fields"] == {"title": "text"} and summary["user_fields"] == {}
    implicit = Dataset(Interactions.from_records([("u", "i", 1.0), ("v", "i", 1.0)]))
    assert summarize_dataset(implicit)["values"] == {"kind": "implicit", "value": 1.0}


def test_table_and_text_summaries():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": list("xyxy")})
    table = summarize_table(frame, np.array([[1], [0], [0], [0]]), {"numeric": ["a"]}, 1)
    assert table["rows"] == 4 and table["missing_share"] == pytest.approx(1 / 8)
    assert table["classes"] == {"0": 3, "1": 1} and table["positive_rate"] == 0.25
    texts = summarize_texts(["one two", "one two three four", "x"], [0.5, 1.5, 2.5], "regression")
    assert texts["texts"] == 3 and texts["words"]["max"] == 4.0 and texts["words"]["median"] == 2
    assert texts["target"]["min"] == 0.5 and texts["target"]["max"] == 2.5
    labels = summarize_texts(["a", "b", "c"], ["pos", "neg", "pos"], "classification")
    assert labels["classes"] == {"pos": 2, "neg": 1}


def test_every_recommender_save_writes_a_card_that_load_keeps(tmp_path):
    data = _dataset(user_fields=True)
    model = make_recommender("popularity").fit(data)
    folder = model.save(tmp_path / "m")
    assert (folder / CARD_JSON).is_file() and (folder / CARD_HTML).is_file()
    card = read_card(folder)
    assert (card.kind, card.name) == ("recommender", "popularity")
    assert card.training_data["users"] == 3 and card.training_data["name"] == "toy"
    assert card.encoder is None and card.created and card.intended_use
    assert any("['gender']" in line and "protected" in line for line in card.limitations)
    assert not any("no item fields" in line for line in card.limitations)
    loaded = Recommender.load(folder)
    assert loaded.training_data_ == model.training_data_
    again = loaded.save(tmp_path / "again")
    assert read_card(again).training_data == card.training_data
    html = (folder / CARD_HTML).read_text()
    assert "popularity" in html and "gender" in html and "<script" not in html


def test_a_second_fit_records_the_new_data():
    model = make_recommender("item-mean")
    model.fit(_dataset())
    assert model.training_data_["interactions"] == 4
    small = Dataset(Interactions.from_records([("u", "i", 2.0), ("v", "j", 4.0)]))
    model.fit(small)
    assert model.training_data_["interactions"] == 2 and model.training_data_["item_fields"] == {}
    assert any("no item fields" in line for line in model.card().limitations)


def test_the_two_tower_card_names_its_encoder(tiny_bert_dir):
    model = make_recommender(
        "two-tower",
        encoder={"model": str(tiny_bert_dir), "max_length": 16},
        training={"epochs": 1},
    )
    model.fit(_dataset())
    encoder = model.card().encoder
    assert encoder["model"] == str(tiny_bert_dir) and encoder["strategy"] == "frozen"


def _result(model: str) -> dict:
    return {
        "model": model,
        "protocol": "holdout",
        "task": "ranking",
        "segments": {
            "new_users": {
                "segment": "new_users",
                "users": 12,
                "query": 3,
                "metrics": {"recall@10": 0.25},
                "ci": {"recall@10": [0.125, 0.375]},
            }
        },
    }


def test_evaluation_and_audit_are_merged_and_a_new_save_drops_them(tmp_path):
    model = make_recommender("popularity").fit(_dataset())
    folder = model.save(tmp_path / "m")
    kept = attach_evaluation(folder, [_result("item-mean"), _result("popularity")], "r.json")
    assert [r["model"] for r in kept] == ["popularity"]  # only the card's own model
    (folder / FAIRNESS_FILE).write_text(json.dumps({"groups": {"F": 0.5}}))
    card = read_card(folder)
    assert card.evaluation[0]["segments"]["new_users"]["metrics"]["recall@10"] == 0.25
    assert card.fairness == {"groups": {"F": 0.5}}
    html = (folder / CARD_HTML).read_text()
    assert "0.2500 [0.1250, 0.3750]" in html
    stored = json.loads((folder / CARD_JSON).read_text())
    assert stored["evaluation"] == [] and stored["fairness"] is None  # kept in their own files
    model.save(folder)  # another fit's weights: the old measurements no longer apply
    assert not (folder / EVALUATION_FILE).exists() and not (folder / FAIRNESS_FILE).exists()
    assert read_card(folder).evaluation == []


def test_results_of_other_models_are_kept_when_none_is_the_cards(tmp_path):
    folder = make_recommender("popularity").fit(_dataset()).save(tmp_path / "m")
    kept = attach_evaluation(folder, [_result("mf")])
    assert [r["model"] for r in kept] == ["mf"]
    with pytest.raises(CardError, match="'model' and 'segments'"):
        attach_evaluation(folder, [{"model": "x"}])


def test_notes_and_hand_edits_persist(tmp_path):
    folder = make_recommender("popularity").fit(_dataset()).save(tmp_path / "m")
    refresh_card(folder, notes=["approved"], intended_use="a shop's front page")
    card = read_card(folder)
    assert card.notes == ["approved"] and card.intended_use == "a shop's front page"
    with pytest.raises(CardError, match="not set by hand"):
        refresh_card(folder, training_data={})


def test_folders_without_a_card_and_bad_files(tmp_path):
    folder = make_recommender("popularity").fit(_dataset()).save(tmp_path / "m")
    (folder / CARD_JSON).unlink()
    old = read_card(folder)  # a folder saved before cards: built from dayzero.json
    assert (old.kind, old.name) == ("recommender", "popularity")
    assert "saved before model cards" in old.limitations[0]
    with pytest.raises(CardError, match="holds no saved dayzero model"):
        read_card(tmp_path / "nothing")
    (folder / FAIRNESS_FILE).write_text("{not json")
    with pytest.raises(CardError, match=r"fairness_audit\.json: not readable JSON"):
        read_card(folder)
    with pytest.raises(CardError, match='needs "kind" and "name"'):
        ModelCard.from_dict({"kind": "x"})


def test_write_card_escapes_html(tmp_path):
    card = ModelCard(kind="recommender", name="<b>x</b>", notes=["<script>alert(1)</script>"])
    (tmp_path / "dayzero.json").write_text("{}")
    write_card(tmp_path, card)
    html = (tmp_path / CARD_HTML).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
