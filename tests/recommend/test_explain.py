import numpy as np
import pytest

from dayzero.recommend.explain import explain_history
from dayzero.recommend.servable import VectorServable

pytestmark = pytest.mark.usefixtures("one_thread")


class _Themed(VectorServable):
    """Items of theme t have vector e_t; the user vector is the mean of history vectors."""

    def __init__(self):
        self.vec = {
            f"{t}{k}": np.eye(3, dtype=np.float32)[i] for i, t in enumerate("abc") for k in range(3)
        }

    def serving_dim(self):
        return 3

    def serving_offset(self):
        return 0.0

    def served_items(self):
        return list(self.vec)

    def item_serving_vectors(self, items=None):
        return np.stack([self.vec[i] for i in (items or self.vec)])

    def user_serving_vector(self, user, items=(), values=(), text=None):
        if not len(items):
            return np.zeros(3, dtype=np.float32)
        return np.mean([self.vec[i] for i in items], axis=0)

    def serving_value_range(self):
        return (0.0, 1.0)


def test_the_item_of_the_recommended_theme_explains_it():
    model = _Themed()
    out = explain_history(model, ["a2", "b2"], ["b0", "a0", "c0"], top_history=2)
    assert out[0][0][0] == "a0"
    assert out[1][0][0] == "b0"
    # mean of 3 -> mean of 2: the a2 score drops 1/3 without a0 and rises 1/6 without b0
    assert out[0][0][1] == pytest.approx(1 / 3)
    assert out[0][1][1] == pytest.approx(-1 / 6)
    with pytest.raises(ValueError, match="values"):
        explain_history(model, ["a2"], ["a0"], values=[1, 2])


def test_two_tower_explains_an_action_item_by_the_liked_action_item(catalogue, tiny_bert_dir):
    from dayzero.recommend.two_tower import TwoTowerRecommender

    fast = {
        "towers__dim": 8,
        "towers__hidden": 32,
        "training__epochs": 60,
        "training__batch_users": 8,
        "training__lr": 1e-2,
        "training__validation": 0.0,
        "encoder__max_length": 32,
    }
    model = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **fast)
    model.fit(catalogue.dataset)
    out = explain_history(model, ["a_cold"], ["r0", "a0", "r1"], values=[1.0, 5.0, 1.0])
    assert out[0][0][0] == "a0"


NEUTRAL = "city country stock market profit food game player music police".split()


def _field_catalogue():
    """Action / romance items whose ``title`` alone reveals the group; ``blurb`` (neutral
    words) and ``year`` are drawn at random, so the title is the field that explains."""
    import pandas as pd

    from dayzero.core.schema import Dataset, Entities, Interactions
    from dayzero.testing import ACTION_TEXT, ROMANCE_TEXT

    rng = np.random.default_rng(0)
    action, romance = [f"a{i}" for i in range(8)], [f"r{i}" for i in range(8)]
    ids = [*action, "a_cold", *romance, "r_cold"]
    frame = pd.DataFrame(
        {
            "title": [(ACTION_TEXT if i[0] == "a" else ROMANCE_TEXT) + f" {i}" for i in ids],
            "blurb": [" ".join(rng.choice(NEUTRAL, 3)) for _ in ids],
            "year": [str(rng.choice(["1990", "2000", "2010"])) for _ in ids],
        },
        index=pd.Index(ids, dtype=object),
    )
    frame.loc["r_cold", "blurb"] = None  # a record without a field: not listed
    items = Entities(frame, {"title": "text", "blurb": "text", "year": "categorical"})
    rows = []
    for user in [f"ua{i}" for i in range(10)] + [f"ub{i}" for i in range(10)]:
        for item in action + romance:
            if rng.random() < 0.7:
                liked = (item in action) == user.startswith("ua")
                rows.append(
                    (user, item, float(rng.integers(4, 6) if liked else rng.integers(1, 3)))
                )
    return Dataset(Interactions.from_records(rows), items=items)


@pytest.fixture(scope="module")
def field_model(tiny_bert_dir, one_thread):
    from dayzero.recommend.two_tower import TwoTowerRecommender

    fast = {
        "towers__dim": 8,
        "towers__hidden": 32,
        "training__epochs": 40,
        "training__batch_users": 8,
        "training__lr": 1e-2,
        "training__validation": 0.0,
        "encoder__max_length": 32,
    }
    data = _field_catalogue()
    return TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **fast).fit(data), data


def test_the_title_explains_a_cold_item_of_the_liked_group(field_model):
    from dayzero.recommend.explain import explain_fields, item_tower_fields

    model, _ = field_model
    assert item_tower_fields(model) == ["title", "blurb", "year"]
    likes_action = explain_fields(model, ["a_cold", "a1"], ["a0", "r0"], [5.0, 1.0])
    for ranked in likes_action:
        assert ranked[0][0] == "title" and ranked[0][1] > 0
        assert {f for f, _ in ranked} == {"title", "blurb", "year"}
    # for a romance lover the action title is what holds the score down
    likes_romance = explain_fields(model, ["a_cold"], ["r0", "a0"], [5.0, 1.0])[0]
    assert likes_romance[-1][0] == "title" and likes_romance[-1][1] < 0
    # r_cold has no blurb: only the fields it has are left out
    assert {f for f, _ in explain_fields(model, ["r_cold"], ["r0"])[0]} == {"title", "year"}


def test_a_contribution_is_the_served_score_minus_the_score_without_the_field(
    field_model, tmp_path
):
    """Known answer: a_cold without its title, folded in as a new item, is served at exactly
    the full score minus the title's contribution."""
    import pandas as pd

    from dayzero.core.schema import Entities
    from dayzero.recommend.explain import explain_fields

    model, data = field_model
    u = model.user_serving_vector(None, ["a0"], np.full(1, 5.0, dtype=np.float32))
    full = float((model.item_serving_vectors(["a_cold"]) @ u)[0])
    drops = dict(explain_fields(model, ["a_cold"], ["a0"], [5.0], top_fields=5)[0])
    record = data.items.record("a_cold")
    copy = type(model).load(model.save(tmp_path / "copy"))
    untitled = pd.DataFrame(
        {"title": [None], "blurb": [record["blurb"]], "year": [record["year"]]},
        index=pd.Index(["x"], dtype=object),
    )
    copy.partial_fit_items(Entities(untitled, dict(data.items.fields)))
    without = float((copy.item_serving_vectors(["x"]) @ u)[0])
    assert full - without == pytest.approx(drops["title"], abs=1e-4)
    assert drops["title"] > 0


def test_explain_recommendations_both_sides_and_the_refusals(field_model, tmp_path):
    from dayzero.recommend.explain import explain_fields, explain_recommendations, held_history

    model, data = field_model
    items, values = held_history(model, "ua0")
    frame = data.interactions.frame
    expected = frame.loc[frame["user"] == "ua0"]
    assert sorted(items) == sorted(expected["item"]) and len(values) == len(items)
    out = explain_recommendations(model, ["a_cold", "r_cold"], user="ua0", top_history=2)
    assert [o["item"] for o in out] == ["a_cold", "r_cold"]
    contributions = [h["contribution"] for h in out[0]["history"]]
    assert len(contributions) == 2 and contributions == sorted(contributions, reverse=True)
    assert {h["item"] for h in out[0]["history"]} <= set(items)
    assert out[0]["fields"][0]["field"] == "title" and out[0]["notes"] == []
    # a loaded model holds no item records: the field side says so, the history side stays
    loaded = type(model).load(model.save(tmp_path / "m"))
    again = explain_recommendations(loaded, ["a_cold"], history=["a0"])
    assert again[0]["fields"] is None and "entities=" in again[0]["notes"][0]
    assert again[0]["history"][0]["item"] == "a0"
    assert explain_fields(loaded, ["a_cold"], ["a0"], entities=data.items)[0][0][0] == "title"
    with pytest.raises(ValueError, match="not served"):
        explain_fields(model, ["nope"], ["a0"])
    with pytest.raises(TypeError, match="two-tower"):
        explain_fields(_Themed(), ["a2"], ["a0"])
