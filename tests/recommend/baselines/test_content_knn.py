"""Content kNN serves cold items from their text and saves its vectoriser as JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions, SchemaError
from dayzero.core.templates import Template
from dayzero.recommend.baselines.content_knn import ContentKNN


def test_cold_items_go_to_the_right_group(catalogue, fitted):
    model = fitted("content-knn")
    assert catalogue.cold_action in model.item_map_
    for user in catalogue.users_a[:4]:
        pred = model.predict([user] * 2, [catalogue.cold_action, catalogue.cold_romance])
        assert pred[0] > pred[1] + 1.0
    for user in catalogue.users_b[:4]:
        top, _ = model.recommend(user, k=1, items=[catalogue.cold_action, catalogue.cold_romance])
        assert top == [catalogue.cold_romance]


def test_new_user_history_and_similar_items(catalogue, fitted):
    model = fitted("content-knn")
    history = Interactions.from_records([("new", "a0", 5.0), ("new", "r0", 1.0)])
    pred = model.predict(["new", "new"], [catalogue.cold_action, catalogue.cold_romance], history)
    assert pred[0] > pred[1]
    neighbours, _ = model.similar_items("a_cold", k=5)
    assert set(neighbours) <= set(catalogue.action)


def test_partial_fit_items_embeds_new_text(catalogue):
    model = ContentKNN(k_neighbors=10).fit(catalogue.dataset)
    frame = pd.DataFrame(
        {
            "id": ["late"],
            "title": ["a wedding and a kiss"],
            "genre": [["Romance"]],
            "year": ["2001"],
        }
    )
    assert "late" not in model.item_map_
    model.partial_fit_items(Entities.from_frame(frame, "id", catalogue.dataset.items.fields))
    pred = model.predict(["ub0", "ua0"], ["late", "late"])
    assert pred[0] > pred[1]


def test_template_param_and_json_vocabulary(catalogue, tmp_path):
    template = Template(["genre"]).to_dict()
    model = ContentKNN(template=template).fit(catalogue.dataset)
    assert set(model.vocabulary_) == {"genre", "action", "thriller", "romance", "drama"}
    config = json.loads((model.save(tmp_path / "m") / "dayzero.json").read_text())
    assert config["params"]["template"] == template
    assert sorted(config["state"]["extras"]["vocabulary"]) == sorted(model.vocabulary_)


def test_needs_item_fields():
    data = Dataset(Interactions.from_records([("u", "a", 1.0)]))
    with pytest.raises(SchemaError, match="item fields"):
        ContentKNN().fit(data)
