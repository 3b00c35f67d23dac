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


# ------------------------------------------------------------------ scoring="similarity"
def _profiles(texts: dict[str, str]) -> Entities:
    frame = pd.DataFrame({"id": list(texts), "about": list(texts.values())})
    return Entities.from_frame(frame, "id", {"about": "text"}, kind="user")


def test_similarity_scoring_sums_cosines_to_the_liked_history(catalogue):
    model = ContentKNN(scoring="similarity", threshold=4.0).fit(catalogue.dataset)
    user = catalogue.users_a[0]
    frame = catalogue.dataset.interactions.frame
    liked = frame.loc[(frame["user"] == user) & (frame["value"] >= 4), "item"].tolist()
    assert liked and set(liked) <= set(catalogue.action)

    def row(item):
        return model.item_vectors_[model.item_map_.to_internal([item])[0]]

    items = [*catalogue.action, *catalogue.romance, "a_cold", "unknown-item"]
    expected = [
        0.0 if i == "unknown-item" else sum((row(i) @ row(j).T)[0, 0] for j in liked) for i in items
    ]
    assert model.rank_scores([user] * len(items), items) == pytest.approx(expected)
    top, _ = model.recommend(user, k=1, items=["a_cold", "r_cold"])
    assert top == ["a_cold"]
    # with nothing liked every history item counts
    history = Interactions.from_records([("new", "r1", 1.0)])
    scores = model.rank_scores(["new"] * 2, ["r_cold", "a_cold"], history)
    assert scores[0] > scores[1] >= 0.0


def test_similarity_scoring_reads_the_profile_text(catalogue):
    users = _profiles({catalogue.users_a[0]: "a fan of explosions and car chase"})
    data = Dataset(catalogue.dataset.interactions, users=users, items=catalogue.dataset.items)
    model = ContentKNN(scoring="similarity").fit(data)
    assert model.rank_scores(["stranger"], ["a_cold"])[0] == 0.0  # no profile, no history
    model.partial_fit_users(Interactions.empty(), users=_profiles({"stranger": "love and a kiss"}))
    top, _ = model.recommend("stranger", k=1, items=["a_cold", "r_cold"])
    assert top == ["r_cold"]
    # a new profile replaces the old one
    model.partial_fit_users(Interactions.empty(), users=_profiles({"stranger": "gun fight hero"}))
    top, _ = model.recommend("stranger", k=1, items=["a_cold", "r_cold"])
    assert top == ["a_cold"]


def test_similarity_scoring_saves_its_profiles(catalogue, tmp_path):
    model = ContentKNN(scoring="similarity").fit(catalogue.dataset)
    model.partial_fit_users(Interactions.empty(), users=_profiles({"talker": "wedding heart"}))
    loaded = ContentKNN.load(model.save(tmp_path / "m"))
    items = ["a_cold", "r_cold", "a1"]
    assert (
        loaded.rank_scores(["talker"] * 3, items).tolist()
        == model.rank_scores(["talker"] * 3, items).tolist()
    )
    with pytest.raises(ValueError, match="scoring"):
        ContentKNN(scoring="cosine").fit(catalogue.dataset)
