from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.schema import Interactions, SchemaError
from dayzero.online.serving import ServingModel, records_to_entities
from dayzero.online.store import EntityRecord, Event
from dayzero.recommend.two_tower import TwoTowerRecommender
from tests.recommend.conftest import make_catalogue

FAST = {
    "towers__dim": 8,
    "towers__hidden": 32,
    "training__epochs": 40,
    "training__batch_users": 8,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


@pytest.fixture(scope="module")
def catalogue():
    return make_catalogue()


@pytest.fixture(scope="module")
def fitted(catalogue, tiny_bert_dir):
    # the rating head's serving vectors (the retrieval head's have their own fixture below)
    return (
        TwoTowerRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            support_shrinkage=2.0,
            training__retrieval_weight=0.0,
            **FAST,
        )
        .fit(catalogue.dataset)
    )


@pytest.fixture
def serving(fitted, tmp_path):
    # a private copy per test: fold-in mutates the model
    fitted.save(tmp_path / "copy")
    return ServingModel.from_recommender(TwoTowerRecommender.load(tmp_path / "copy"))


def _scores(serving: ServingModel, vector: np.ndarray, items: list[str]) -> np.ndarray:
    return serving.mu + serving.model.item_serving_vectors(items) @ vector


def test_inner_product_equals_predict_for_known_users(serving, catalogue):
    items = ["a1", "r1", "a_cold", "r_cold", "a5"]
    for user in catalogue.users_a[:2] + catalogue.users_b[:2]:
        vector = serving.user_vector(user, None, [])
        expected = serving.model.predict([user] * len(items), items)
        np.testing.assert_allclose(_scores(serving, vector, items), expected, atol=1e-5)
    assert vector.shape == (serving.dim,) and vector.dtype == np.float32


def test_inner_product_equals_predict_for_a_new_user_with_history(serving):
    # a_cold / r_cold are content-only: the support shift is part of the score
    events = [
        Event("newbie", "a0", "rating", 5.0, id=1),
        Event("newbie", "r_cold", "rating", 1.0, id=2),
        Event("newbie", "a_cold", "rating", 4.0, id=3),
    ]
    history = Interactions.from_records([("newbie", e.item, e.value) for e in events])
    items = ["a1", "r1", "a_cold", "r_cold", "r2"]
    expected = serving.model.predict(["newbie"] * len(items), items, history=history)
    vector = serving.user_vector("newbie", None, events)
    assert vector[-1] != 0.0  # a support shift was learned from the content-only ratings
    np.testing.assert_allclose(_scores(serving, vector, items), expected, atol=1e-5)


def test_index_scores_of_new_items_equal_predict(serving, catalogue):
    ids, vectors = serving.add_items(
        [
            EntityRecord("a_text", text="explosions car chase fight gun hero"),
            EntityRecord("r_fields", fields={"title": "love kiss", "genre": ["Romance"]}),
        ]
    )
    assert ids == ["a_text", "r_fields"] and vectors.shape == (2, serving.dim)
    assert vectors[:, -1].tolist() == [1.0, 1.0]  # content-only
    user = catalogue.users_a[0]
    history = Interactions.from_records([(user, "r_cold", 2.0)])
    expected = serving.model.predict([user, user], ids, history=history)
    vector = serving.user_vector(user, None, [Event(user, "r_cold", "rating", 2.0)])
    np.testing.assert_allclose(serving.mu + vectors @ vector, expected, atol=1e-5)
    full_ids, full = serving.item_vectors()
    np.testing.assert_allclose(full[full_ids.index("a_text")], vectors[0], atol=1e-6)


def test_a_text_only_item_is_encoded_from_its_text(serving):
    template = serving.model.item_template_
    assert template.render({"text": "a heist in Rome"}) == "Text: a heist in Rome"
    (_, empty), (_, described) = (
        serving.add_items([EntityRecord("blank")]),
        serving.add_items([EntityRecord("heist", text="a heist in Rome")]),
    )
    assert not np.allclose(empty, described)


def test_a_profile_sentence_serves_an_anonymous_user_without_storing_it(serving):
    model = serving.model
    vector = serving.user_vector(None, "explosions car chase fight gun hero", [])
    model.add_user_text("talker", "explosions car chase fight gun hero")
    items = ["a1", "r1", "a_cold"]
    expected = model.predict(["talker"] * 3, items)
    np.testing.assert_allclose(_scores(serving, vector, items), expected, atol=1e-5)
    assert "anonymous" not in getattr(model, "user_texts_", {})
    assert None not in getattr(model, "user_texts_", {})


def test_events_map_kinds_and_are_not_double_counted(serving, catalogue):
    user = catalogue.users_a[0]
    trained = next(iter(serving.model.seen_[user]))
    events = [
        Event(user, trained, "rating", 1.0),  # already in training history: skipped
        Event(user, "a_cold", "click", 1.0),  # implicit: the highest training value
        Event(user, "r_cold", "rating", 2.0),
        Event(user, "r_cold", "click", 1.0),  # an explicit rating wins over a later click
        Event(user, "a_cold", "rating", 3.0),  # and over an earlier click
    ]
    items, values = serving.history(user, events)
    assert items == ["a_cold", "r_cold"]
    assert values.tolist() == [3.0, 2.0]
    assert serving.history(user, [Event(user, "a_cold", "click")])[1].tolist() == [5.0]
    custom = ServingModel(serving.model, kind_values={"rating": None, "click": 4.0})
    assert custom.history(user, [Event(user, "a_cold", "click")])[1].tolist() == [4.0]


def test_history_changes_the_recommendations(serving):
    ids, vectors = serving.item_vectors()
    likes_action = serving.user_vector(
        None, None, [Event("x", "a0", "rating", 5.0), Event("x", "r0", "rating", 1.0)]
    )
    likes_romance = serving.user_vector(
        None, None, [Event("x", "a0", "rating", 1.0), Event("x", "r0", "rating", 5.0)]
    )
    top = [ids[i] for i in np.argsort(-(vectors @ likes_action))[:4]]
    assert all(i.startswith("a") for i in top)
    top = [ids[i] for i in np.argsort(-(vectors @ likes_romance))[:4]]
    assert all(i.startswith("r") for i in top)


def test_save_load_round_trip(serving, catalogue, tmp_path):
    serving.add_items([EntityRecord("a_text", text="explosions car chase")])
    serving.save(tmp_path / "v")
    again = ServingModel.load(tmp_path / "v")
    assert again.dim == serving.dim and again.known_items() == serving.known_items()
    ids, vectors = serving.item_vectors()
    ids2, vectors2 = again.item_vectors()
    assert ids == ids2
    np.testing.assert_allclose(vectors2, vectors, atol=1e-6)
    events = [Event("n", "a_text", "rating", 5.0)]
    np.testing.assert_allclose(
        again.user_vector("n", "likes action", events),
        serving.user_vector("n", "likes action", events),
        atol=1e-6,
    )
    assert (tmp_path / "v" / "index").is_dir()


def test_string_ids_are_required(catalogue, tiny_bert_dir):
    from dayzero.core.schema import Dataset

    rows = [(1, 10, 5.0), (1, 11, 1.0), (2, 10, 1.0), (2, 11, 5.0)]
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), **{**FAST, "training__epochs": 1}
    )
    model.fit(Dataset(Interactions.from_records(rows)))
    with pytest.raises(SchemaError, match="string user ids"):
        ServingModel.from_recommender(model)


def test_bad_records_name_the_field():
    with pytest.raises(SchemaError, match="`id`"):
        records_to_entities([EntityRecord("")])
    with pytest.raises(SchemaError, match="twice"):
        records_to_entities([EntityRecord("a"), EntityRecord("a")])


def test_any_vector_servable_recommender_is_served_mf_too(catalogue):
    """Matrix factorisation implements the serving interface: its inner products are its
    predictions (before clipping), new users are folded in from their events, and an item
    without interactions (no content model) gets no vector."""
    from dayzero.recommend.baselines.matrix_factorization import MatrixFactorization

    model = MatrixFactorization(factors=4, iterations=8, reg=1.0).fit(catalogue.dataset)
    serving = ServingModel.from_recommender(model)
    assert serving.dim == model.serving_dim == 6
    ids, vectors = serving.item_vectors()
    assert ids == list(model.item_map_.ids) and vectors.shape == (len(ids), 6)
    items = ["a1", "r1", "a2"]
    for user in ("ua0", "ub1"):
        expected = model.predict([user] * 3, items)
        raw = serving.mu + model.item_serving_vectors(items) @ serving.user_vector(user, None, [])
        np.testing.assert_allclose(np.clip(raw, 1, 5), expected, atol=1e-5)
    events = [Event("fresh", i, value=5.0) for i in ("a0", "a1", "a2")]
    vector = serving.user_vector("fresh", None, events)
    history = Interactions.from_records([("fresh", e.item, 5.0) for e in events])
    expected = model.predict(["fresh"] * 2, ["a3", "r3"], history=history)
    raw = serving.mu + model.item_serving_vectors(["a3", "r3"]) @ vector
    np.testing.assert_allclose(np.clip(raw, 1, 5), expected, atol=1e-5)
    ids, vectors = serving.add_items([EntityRecord("brand-new", "no content model")])
    assert ids == [] and vectors.shape == (0, 6)


def test_a_model_without_the_serving_interface_is_refused_by_name(catalogue):
    from dayzero.recommend.baselines.popularity import Popularity

    with pytest.raises(TypeError, match=r"Popularity cannot be served.*VectorServable"):
        ServingModel(Popularity().fit(catalogue.dataset))


# ------------------------------------------------------------------ a retrieval-head two-tower
@pytest.fixture(scope="module")
def retrieval_fitted(catalogue, tiny_bert_dir):
    return (
        TwoTowerRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            training__retrieval_weight=1.0,
            training__positive_threshold=4.0,
            training__negatives=8,
            **FAST,
        )
        .fit(catalogue.dataset)
    )


@pytest.fixture
def retrieval_serving(retrieval_fitted, tmp_path):
    retrieval_fitted.save(tmp_path / "copy")
    return ServingModel.from_recommender(TwoTowerRecommender.load(tmp_path / "copy"))


CASES = {
    "known": ("ua0", []),
    "known-with-events": ("ub1", [Event("ub1", "a_cold", "rating", 5.0, id=1)]),
    "new-with-history": (
        "newbie",
        [Event("newbie", "r0", "rating", 5.0, id=1), Event("newbie", "r_cold", "click", id=2)],
    ),
    "anonymous": (None, [Event("x", "a0", "rating", 5.0, id=1)]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_index_ranks_exactly_as_recommend_does_with_the_retrieval_head(retrieval_serving, case):
    serving = retrieval_serving
    serving.add_items([EntityRecord("a_text", text="explosions car chase fight gun hero")])
    model = serving.model
    user, events = CASES[case]
    index = serving.build_index(kind="exact")
    vector = serving.user_vector(user, None, events)
    items, values = serving.history(user, events)
    who = "__anonymous__" if user is None else user
    history = Interactions.from_records(
        [(who, i, float(v)) for i, v in zip(items, values, strict=True)]
    )
    n = len(model.item_map_)
    expected, expected_scores = model.recommend(who, k=n, history=history)
    seen = model.seen_items(who, history)
    ids, scores = index.search(vector, n, exclude=seen)
    assert ids == expected
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert serving.mu == 0.0


def test_predict_gives_the_rating_head_when_the_index_ranks_by_retrieval(retrieval_serving):
    serving = retrieval_serving
    events = [Event("newbie", "a0", "rating", 5.0, id=1), Event("newbie", "r_cold", "rating", 1.0)]
    items = ["a1", "r1", "a_cold"]
    history = Interactions.from_records([("newbie", e.item, e.value) for e in events])
    expected = serving.model.predict(["newbie"] * 3, items, history=history)
    np.testing.assert_allclose(serving.predict("newbie", None, events, items), expected, atol=1e-5)
    vector = serving.user_vector("newbie", None, events)
    ranking = serving.model.item_serving_vectors(items) @ vector
    assert not np.allclose(ranking, expected)  # the index's scores are not ratings


def test_an_exposure_floor_on_an_index_result(retrieval_serving):
    serving = retrieval_serving
    vector = serving.user_vector("ub0", None, [])
    index = serving.build_index(kind="exact")
    seen = serving.model.seen_items("ub0")
    ids, scores = index.search(vector, 3, exclude=seen)
    assert serving.fresh_items() == ["a_cold", "r_cold"]
    floored, floored_scores = serving.exposure_floor(vector, ids, scores, 3, 2, exclude=seen)
    assert set(floored) >= {"a_cold", "r_cold"} and len(floored) == 3
    assert np.all(np.diff(floored_scores) <= 0)
    # the same list as the model's own floor
    expected, _ = serving.model.recommend("ub0", k=3, exposure=2)
    assert floored == expected
    assert serving.exposure_floor(vector, ids, scores, 3, 0)[0] == ids
