from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.core.split import Segment
from dayzero.recommend.contract import Recommender
from dayzero.recommend.two_tower import (
    TwoTowerRecommender,
    _time_ranks,
    pairwise_ranking_loss,
)

FAST = {
    "towers__dim": 8,
    "towers__hidden": 32,
    "training__epochs": 60,
    "training__batch_users": 8,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


@pytest.fixture(scope="module")
def model(catalogue, tiny_bert_dir):
    return (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **FAST).fit(catalogue.dataset)
    )


def test_cold_items_go_to_the_right_group(model, catalogue):
    for user in catalogue.users_a[:3]:
        action, romance = model.predict([user, user], ["a_cold", "r_cold"])
        assert action > romance + 0.5
    for user in catalogue.users_b[:3]:
        action, romance = model.predict([user, user], ["a_cold", "r_cold"])
        assert romance > action + 0.5


def test_new_user_is_personalised_by_history_alone(model, catalogue):
    history = Interactions.from_records([("newbie", "a0", 5.0), ("newbie", "r0", 1.0)])
    ids, _ = model.recommend("newbie", k=4, history=history)
    assert all(i.startswith("a") for i in ids)
    flipped = Interactions.from_records([("newbie", "a0", 1.0), ("newbie", "r0", 5.0)])
    ids, _ = model.recommend("newbie", k=4, history=flipped)
    assert all(i.startswith("r") for i in ids)
    # without history the new user is not personalised, and history was not stored
    plain = model.predict(["newbie"] * 2, ["a1", "r1"])
    again = model.predict(["newbie"] * 2, ["a1", "r1"])
    np.testing.assert_array_equal(plain, again)


def test_query_ratings_cannot_change_predictions(model, catalogue):
    """The model sees the support set only: altering query ratings changes no prediction."""
    support = Interactions.from_records([("n1", "a0", 5.0), ("n1", "r1", 2.0)])
    query = Interactions.from_records([("n1", "a2", 4.0), ("n1", "r3", 1.0), ("n1", "a_cold", 5.0)])
    altered = Interactions(query.frame.assign(value=[1.0, 5.0, 2.0]))

    def predictions(q: Interactions) -> np.ndarray:
        ((_, sup, qry),) = Segment("new_users", support, q).tasks()
        return model.predict(qry.frame["user"].tolist(), qry.frame["item"].tolist(), history=sup)

    np.testing.assert_array_equal(predictions(query), predictions(altered))


def test_save_load_round_trip(model, catalogue, tmp_path):
    model.save(tmp_path / "tt")
    again = Recommender.load(tmp_path / "tt")
    users = catalogue.users_a[:2] + catalogue.users_b[:2] + ["stranger"]
    items = ["a1", "r1", "a_cold", "r_cold", "a2"]
    history = Interactions.from_records([("stranger", "a0", 5.0)])
    np.testing.assert_allclose(
        again.predict(users, items, history), model.predict(users, items, history), atol=1e-6
    )


def test_partial_fit_items_scores_a_new_item_from_its_fields(catalogue, tiny_bert_dir):
    fresh = (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **FAST).fit(catalogue.dataset)
    )
    frame = pd.DataFrame(
        {
            "title": ["explosions car chase fight gun hero new"],
            "genre": [["Action", "Thriller"]],
            "year": ["1999"],
        },
        index=["a_new"],
    )
    fields = {"title": "text", "genre": "multi", "year": "categorical"}
    fresh.partial_fit_items(Entities(frame, fields))
    user_a, user_b = catalogue.users_a[0], catalogue.users_b[0]
    assert fresh.predict([user_a], ["a_new"])[0] > fresh.predict([user_b], ["a_new"])[0]
    assert "a_new" in fresh.recommend(user_a, k=20, filter_seen=False)[0]


def test_pairwise_ranking_loss_prefers_correct_order():
    target = torch_tensor([5.0, 1.0, 3.0, 3.0])
    groups = torch_tensor([0, 0, 1, 1], dtype="int64")
    good = pairwise_ranking_loss(torch_tensor([2.0, 0.0, 1.0, 1.0]), target, groups)
    bad = pairwise_ranking_loss(torch_tensor([0.0, 2.0, 1.0, 1.0]), target, groups)
    assert float(good) < float(bad)
    # only the one pair within user 0 counts: softplus(-2)
    assert float(good) == pytest.approx(np.log1p(np.exp(-2.0)), rel=1e-5)


def torch_tensor(values, dtype="float32"):
    import torch

    return torch.tensor(values, dtype=getattr(torch, dtype))


@pytest.mark.parametrize("strategy", ["lora", "full"])
def test_adapted_encoder_trains_and_round_trips(catalogue, tiny_bert_dir, tmp_path, strategy):
    model = (
        TwoTowerRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            strategy=strategy,
            adaptation__steps=4,
            adaptation__items=4,
            adaptation__refit_epochs=2,
            **{**FAST, "training__epochs": 20},
        )
        .fit(catalogue.dataset)
    )
    trainable, total = model.encoder_parameters_
    assert 0 < trainable <= total and (strategy == "full") == (trainable == total)
    assert len(model.adapt_losses_) == 4
    user_a = catalogue.users_a[0]
    assert model.predict([user_a], ["a_cold"])[0] > model.predict([user_a], ["r_cold"])[0]
    model.save(tmp_path / strategy)
    again = Recommender.load(tmp_path / strategy)
    items = ["a1", "r1", "a_cold"]
    np.testing.assert_allclose(
        again.predict([user_a] * 3, items), model.predict([user_a] * 3, items), atol=1e-6
    )
    # a new item encoded by the reloaded (adapted) encoder gets the same vector as before
    frame = pd.DataFrame(
        {"title": ["love kiss new"], "genre": [["Romance"]], "year": ["1999"]}, index=["r_new"]
    )
    fields = {"title": "text", "genre": "multi", "year": "categorical"}
    model.partial_fit_items(Entities(frame, fields))
    again.partial_fit_items(Entities(frame, fields))
    np.testing.assert_allclose(
        again.predict([user_a], ["r_new"]), model.predict([user_a], ["r_new"]), atol=1e-5
    )


def test_a_user_described_in_one_sentence_is_served(model):
    model.add_user_text("talker", "explosions car chase fight gun hero")
    ids, scores = model.recommend("talker", k=3)
    assert len(ids) == 3 and np.all(np.diff(scores) <= 0)
    with pytest.raises(ValueError, match="non-empty"):
        model.add_user_text("talker", "  ")


def test_partial_fit_users_folds_in_interactions(catalogue, tiny_bert_dir):
    fresh = (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **FAST).fit(catalogue.dataset)
    )
    fresh.partial_fit_users(Interactions.from_records([("later", "r0", 5.0), ("later", "a0", 1.0)]))
    ids, _ = fresh.recommend("later", k=4)
    assert all(i.startswith("r") for i in ids) and "r0" not in ids


def test_fine_tune_gives_new_users_and_items_id_embeddings(catalogue, tiny_bert_dir, tmp_path):
    fresh = (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **FAST).fit(catalogue.dataset)
    )
    n_users, n_items = fresh.n_known_users_, fresh.n_known_items_
    old = catalogue.dataset.interactions.frame
    before = np.abs(fresh.predict(old["user"], old["item"]) - old["value"]).mean()
    # a new user who loves romance, and a cold item (fields, no ratings) now rated
    rows = [("fan", item, 5.0 if item.startswith("r") else 1.0) for item in ("r0", "r1", "a0")]
    rows += [(u, "r_cold", 5.0) for u in catalogue.users_b[:5]]
    rows += [(u, "r_cold", 1.0) for u in catalogue.users_a[:5]]
    replay = catalogue.dataset.interactions
    fresh.fine_tune(Interactions.from_records(rows), epochs=10, replay=replay)
    assert fresh.n_known_users_ == n_users + 1 and fresh.n_known_items_ == n_items + 1
    assert fresh.item_map_.ids.index("r_cold") < fresh.n_known_items_  # moved among the known
    assert fresh.network_.user_id.num_embeddings == n_users + 1
    assert "r1" in fresh.seen_["fan"]
    fan = fresh.predict(["fan", "fan"], ["r2", "a2"])
    assert fan[0] > fan[1] + 0.5
    # replay keeps the old ratings about as well fitted as before
    after = np.abs(fresh.predict(old["user"], old["item"]) - old["value"]).mean()
    assert after < before + 0.3
    fresh.save(tmp_path / "ft")
    again = Recommender.load(tmp_path / "ft")
    np.testing.assert_allclose(
        again.predict(["fan", "ua0"], ["r2", "r_cold"]),
        fresh.predict(["fan", "ua0"], ["r2", "r_cold"]),
        atol=1e-6,
    )


def test_fine_tune_rejects_bad_input(model):
    with pytest.raises(ValueError, match="empty"):
        model.fine_tune(Interactions.empty())
    with pytest.raises(ValueError, match="epochs"):
        model.fine_tune(Interactions.from_records([("ua0", "a1", 5.0)]), epochs=0)


def test_without_the_retrieval_head_serving_vectors_reproduce_predict(catalogue, tiny_bert_dir):
    model = (
        TwoTowerRecommender()
        .set_params(encoder=str(tiny_bert_dir), **FAST, training__retrieval_weight=0.0)
        .fit(catalogue.dataset)
    )
    history = Interactions.from_records([("n9", "a0", 5.0), ("n9", "r_cold", 2.0)])
    items = ["a1", "r_cold", "a_cold"]
    expected = model.predict(["n9"] * 3, items, history=history)
    user = model.user_serving_vector("n9", ["a0", "r_cold"], [5.0, 2.0])
    rows = model.item_serving_vectors(items)
    np.testing.assert_allclose(float(model.network_.mu) + rows @ user, expected, atol=1e-5)


def test_partial_fit_items_after_load_keeps_existing_token_bags(catalogue, tiny_bert_dir, tmp_path):
    items = catalogue.dataset.items
    # overlapping casts: too many names for one-hot attributes, so they become tokens
    cast = [[f"p{j}" for j in range(4 * k, 4 * k + 8)] for k in range(len(items))]
    frame = items.frame.assign(cast=cast)
    dataset = catalogue.dataset.with_interactions(catalogue.dataset.interactions)
    dataset.items = Entities(frame, {**items.fields, "cast": "multi"})
    fitted = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), **{**FAST, "training__epochs": 2}
    )
    fitted.fit(dataset)
    assert fitted.item_tokens_.size > 0
    fitted.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m")
    new = Entities(frame.iloc[:1].rename(index=lambda _: "copy"), dict(dataset.items.fields))
    again.partial_fit_items(new)
    np.testing.assert_allclose(
        again.predict(["ua0"] * 2, ["a1", "r1"]),
        fitted.predict(["ua0"] * 2, ["a1", "r1"]),
        atol=1e-6,
    )


def test_a_loaded_lora_model_can_be_fine_tuned_and_saved_again(catalogue, tiny_bert_dir, tmp_path):
    model = (
        TwoTowerRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            strategy="lora",
            adaptation__steps=2,
            adaptation__items=4,
            adaptation__refit_epochs=1,
            **{**FAST, "training__epochs": 2},
        )
        .fit(catalogue.dataset)
    )
    model.save(tmp_path / "first")
    again = Recommender.load(tmp_path / "first")
    again.fine_tune(Interactions.from_records([("late", "r0", 5.0), ("late", "a0", 1.0)]))
    again.save(tmp_path / "second")
    third = Recommender.load(tmp_path / "second")
    np.testing.assert_allclose(
        third.predict(["late", "ua0"], ["r1", "a_cold"]),
        again.predict(["late", "ua0"], ["r1", "a_cold"]),
        atol=1e-5,
    )


FIELDS = {"title": "text", "genre": "multi", "year": "categorical"}


def _new_action_item(item: str = "a_new") -> Entities:
    frame = pd.DataFrame(
        {"title": ["explosions car chase new"], "genre": [["Action"]], "year": ["1999"]},
        index=[item],
    )
    return Entities(frame, dict(FIELDS))


def test_partial_fit_items_remembers_the_interactions_for_their_raters(catalogue, tiny_bert_dir):
    quick = {**FAST, "training__epochs": 5}
    with_rows = (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **quick).fit(catalogue.dataset)
    )
    without = (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **quick).fit(catalogue.dataset)
    )
    raters = catalogue.users_b[:2]
    rows = Interactions.from_records([(u, "a_new", 5.0) for u in raters])
    with_rows.partial_fit_items(_new_action_item(), rows)
    without.partial_fit_items(_new_action_item())
    # the rows count for the raters as if given by partial_fit_users: pooled and seen
    assert all("a_new" in with_rows.seen_items(u) for u in raters)
    assert "a_new" not in with_rows.recommend(raters[0], k=100)[0]
    users, items = [*raters, *raters], ["a1", "a1", "r1", "r1"]
    assert not np.allclose(with_rows.predict(users, items), without.predict(users, items))
    # exactly what partial_fit_users does with the same rows
    folded = (
        TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **quick).fit(catalogue.dataset)
    )
    folded.partial_fit_items(_new_action_item()).partial_fit_users(rows)
    np.testing.assert_array_equal(with_rows.predict(users, items), folded.predict(users, items))


def test_user_texts_survive_save_and_load(catalogue, tiny_bert_dir, tmp_path):
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), **{**FAST, "training__epochs": 5}
    )
    model.fit(catalogue.dataset).add_user_text("talker", "love kiss wedding romance heart")
    model.add_user_text("ua0", "explosions car chase fight gun hero")
    again = Recommender.load(model.save(tmp_path / "m"))
    assert again.user_texts_ == model.user_texts_
    users, items = ["talker", "talker", "ua0", "ua0"], ["a1", "r_cold", "a1", "r_cold"]
    np.testing.assert_array_equal(again.predict(users, items), model.predict(users, items))


STAMPS = {
    "naive-datetime": (dt.datetime(2024, 3, 1, 12), dt.datetime(2024, 3, 2, 8, 30)),
    "aware-two-zones": (
        pd.Timestamp("2024-03-01 12:00", tz="Europe/Berlin"),
        dt.datetime(2024, 3, 2, 8, 30, tzinfo=dt.UTC),
    ),
}


@pytest.mark.parametrize("stamps", STAMPS)
def test_folded_in_history_with_datetime_timestamps_saves_and_loads(
    catalogue, tiny_bert_dir, tmp_path, stamps
):
    first, second = STAMPS[stamps]
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), **{**FAST, "training__epochs": 5}
    )
    model.fit(catalogue.dataset)
    model.partial_fit_users(
        Interactions.from_records([("later", "r0", 5.0, first), ("later", "a0", 1.0, first)])
    )
    model.partial_fit_items(
        _new_action_item(), Interactions.from_records([("ua0", "a_new", 5.0, second)])
    )
    again = Recommender.load(model.save(tmp_path / "m"))
    users, items = ["later", "later", "ua0", "ua0"], ["r1", "a_new", "a1", "a_new"]
    np.testing.assert_array_equal(again.predict(users, items), model.predict(users, items))
    assert again.seen_items("later") == {"r0", "a0"}


@pytest.mark.parametrize("strategy", ["frozen", "lora"])
def test_a_second_fit_equals_a_fresh_fit(catalogue, tiny_bert_dir, strategy):
    from sklearn.base import clone

    params = {
        **FAST,
        "training__epochs": 5,
        "strategy": strategy,
        "adaptation__steps": 3,
        "adaptation__items": 4,
    }
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), adaptation__refit_epochs=1, **params
    )
    model.fit(catalogue.dataset)
    model.partial_fit_users(Interactions.from_records([("later", "r0", 5.0), ("ua0", "r1", 5.0)]))
    model.add_user_text("talker", "love kiss wedding romance heart")
    model.fit(catalogue.dataset)
    fresh = clone(model).fit(catalogue.dataset)
    users = ["later", "later", "ua0", "ua0", "talker", "ub1"]
    items = ["r2", "a1", "r1", "a_cold", "r1", "r_cold"]
    np.testing.assert_array_equal(model.predict(users, items), fresh.predict(users, items))
    assert model.seen_items("later") == set() and model.seen_items("ua0") == fresh.seen_items("ua0")
    assert getattr(model, "user_texts_", {}) == {}
    assert model.history_ == fresh.history_


# ------------------------------------------------------------------ retrieval head
RETRIEVAL = {**FAST, "training__negatives": 8}  # the head and its positive rule as defaulted


@pytest.fixture(scope="module")
def retrieval_model(catalogue, tiny_bert_dir):
    return (
        TwoTowerRecommender()
        .set_params(encoder=str(tiny_bert_dir), **RETRIEVAL)
        .fit(catalogue.dataset)
    )


def _rank(ids: list, item: str) -> int:
    return ids.index(item)


def test_by_default_the_head_ranks_and_its_positives_are_the_top_of_the_rating_scale(
    retrieval_model, catalogue, tmp_path
):
    values = catalogue.dataset.interactions.values
    assert retrieval_model._retrieval
    assert (values.min(), values.max()) == (1.0, 5.0)
    assert retrieval_model.positive_threshold_ == 4.0  # "auto": the top quarter of 1-5 stars
    retrieval_model.save(tmp_path / "m")
    assert Recommender.load(tmp_path / "m").positive_threshold_ == 4.0


def test_retrieval_head_ranks_a_new_action_item_for_action_users(catalogue, tiny_bert_dir):
    """A new item described as action is retrieved for action users over the whole catalogue,
    and below the romance cold item for romance users."""
    fresh = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **RETRIEVAL)
    fresh.fit(catalogue.dataset).partial_fit_items(catalogue.new_items(["a_new"]))
    n = len(fresh.item_map_)
    for user in catalogue.users_a[:5]:
        ids, _ = fresh.recommend(user, k=n)
        assert _rank(ids, "a_new") < 3, ids[:5]
        assert _rank(ids, "a_new") < _rank(ids, "r_cold")
    for user in catalogue.users_b[:5]:
        ids, _ = fresh.recommend(user, k=n)
        assert _rank(ids, "r_cold") < _rank(ids, "a_new"), ids


@pytest.mark.parametrize("revealed", [1, 2, 3])
def test_retrieval_head_serves_a_new_user_from_a_few_revealed_items(retrieval_model, revealed):
    for group in ("a", "r"):
        history = Interactions.from_records(
            [("newbie", f"{group}{i}", 5.0) for i in range(revealed)]
        )
        ids, _ = retrieval_model.recommend("newbie", k=4, history=history)
        assert all(i.startswith(group) for i in ids), (group, ids)


def test_predict_stays_the_rating_while_recommend_ranks_by_retrieval(retrieval_model, catalogue):
    user = catalogue.users_a[0]
    ids, scores = retrieval_model.recommend(user, k=6)
    np.testing.assert_allclose(
        scores, retrieval_model.rank_scores([user] * 6, ids), rtol=1e-5, atol=1e-6
    )
    ratings = retrieval_model.predict([user] * 6, ids)
    assert not np.allclose(ratings, scores)
    # the rating head still learned the ratings: action above romance for an action fan
    action, romance = retrieval_model.predict([user, user], ["a1", "r1"])
    assert action > 3.0 and romance < 3.0 and action > romance + 1.0
    assert retrieval_model.history_ and "val_recall" not in retrieval_model.history_[-1]


def test_validation_recall_is_monitored_with_the_retrieval_head(catalogue, tiny_bert_dir):
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir),
        **{**RETRIEVAL, "training__epochs": 4, "training__validation": 0.25},
        training__query_size=3,
    )
    model.fit(catalogue.dataset)
    recalls = [e["val_recall"] for e in model.history_]
    assert len(recalls) == 4 and all(0.0 <= r <= 1.0 for r in recalls)


def test_the_log_q_correction_is_the_chance_of_being_a_candidate():
    """Known answer: simulate a step's candidate set (positives drawn by popularity, plus
    uniform negatives, each item once) and compare how often each item is in it with Q."""
    from dayzero.recommend.two_tower import candidate_log_q

    rng = np.random.default_rng(0)
    frequency = np.array([0.5, 0.25, 0.15, 0.07, 0.02, 0.01, 0.0, 0.0])
    n_pos, n_uniform, trials = 6, 3, 20_000
    counts = np.zeros(len(frequency))
    for _ in range(trials):
        drawn = np.concatenate(
            [
                rng.choice(len(frequency), size=n_pos, p=frequency),
                rng.integers(0, len(frequency), n_uniform),
            ]
        )
        counts[np.unique(drawn)] += 1
    expected = np.exp(candidate_log_q(frequency, n_pos, n_uniform, len(frequency)))
    np.testing.assert_allclose(counts / trials, expected, atol=0.015)


def _skewed_catalogue():
    """Implicit data where popularity is everything: item ``i<n>`` is taken by ``POP[n]`` of
    the users, and every item reads the same."""
    from dayzero.core.schema import Dataset

    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{n}", 1.0) for u in range(80) for n, p in enumerate(POP) if rng.random() < p
    ]
    items = Entities(
        pd.DataFrame({"title": {f"i{n}": "film" for n in range(len(POP))}}), {"title": "text"}
    )
    return Dataset(Interactions.from_records(rows), items=items)


POP = (0.9, 0.6, 0.4, 0.25, 0.15, 0.1, 0.06, 0.04)


def test_the_log_q_correction_undoes_the_in_batch_penalty_on_popular_items(tiny_bert_dir):
    """In-batch negatives draw popular items often, so the plain sampled softmax pushes them
    down; with the correction a new user's scores spread by popularity as the full softmax's
    would (the popular item further ahead of the rare one)."""
    data = _skewed_catalogue()
    items = [f"i{n}" for n in range(len(POP))]
    spread = {}
    for correction in (1.0, 0.0):
        model = TwoTowerRecommender().set_params(
            encoder=str(tiny_bert_dir),
            **{**FAST, "training__epochs": 20, "training__batch_users": 4},
            training__retrieval_weight=1.0,
            training__rating_weight=0.0,
            training__negatives=2,
            training__cold_holdout=0.0,
            training__logq_correction=correction,
        )
        scores = model.fit(data).rank_scores(["new"] * len(items), items)
        assert np.all(np.diff(scores[:4]) < 0)  # the popular items in popularity order
        spread[correction] = scores[0] - scores[-1]
    assert spread[1.0] > spread[0.0] + 0.5, spread


def _rare_word_catalogue():
    """Two groups of users; item titles are neutral words, except that two action items say
    ``ζεππελιν`` and two romance items ``υποβρυχιο`` (words the tiny encoder reads as [UNK]):
    cold items that differ only by those words can be told apart by the lexical part alone."""
    from dayzero.core.schema import Dataset

    rng = np.random.default_rng(0)
    users_a, users_b = [f"ua{i}" for i in range(10)], [f"ub{i}" for i in range(10)]
    action, romance = [f"a{i}" for i in range(6)], [f"r{i}" for i in range(6)]
    rows = []
    for user in users_a + users_b:
        for item in action + romance:
            if rng.random() < 0.8:
                liked = (item in action) == (user in users_a)
                rows.append(
                    (user, item, float(rng.integers(4, 6) if liked else rng.integers(1, 3)))
                )
    neutral = "movie film good great old new city".split()
    titles = {i: " ".join(rng.choice(neutral, size=3, replace=False)) for i in action + romance}
    for item, word in (
        ("a0", "ζεππελιν"),
        ("a1", "ζεππελιν"),
        ("r0", "υποβρυχιο"),
        ("r1", "υποβρυχιο"),
    ):
        titles[item] = f"{word} {titles[item]}"
    titles["z_cold"], titles["s_cold"] = "ζεππελιν movie good", "υποβρυχιο movie good"
    items = Entities(pd.DataFrame({"title": titles}), {"title": "text"})
    return Dataset(Interactions.from_records(rows), items=items), users_a, users_b


@pytest.mark.parametrize("lexical", [True, False])
def test_the_lexical_part_ranks_a_cold_item_whose_only_signal_is_a_rare_word(
    tiny_bert_dir, lexical
):
    data, users_a, users_b = _rare_word_catalogue()
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), towers__lexical=lexical, **RETRIEVAL
    )
    model.fit(data)
    users = users_a[:4] + users_b[:4]
    gap = model.rank_scores(users, ["z_cold"] * 8) - model.rank_scores(users, ["s_cold"] * 8)
    if lexical:
        assert model.item_lexical_.size > 0 and "ζεππελιν" in model.item_lexical_.vocab_
        assert np.all(gap[:4] > 0) and np.all(gap[4:] < 0), gap
    else:  # the dense part cannot tell the two apart: the same scores for everybody
        np.testing.assert_allclose(gap, 0.0, atol=1e-6)


def test_lexical_vocabulary_comes_from_training_items_only(catalogue, tiny_bert_dir):
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), **{**FAST, "training__epochs": 1}
    )
    model.fit(catalogue.dataset)
    # the cold items (fields, no interactions) add no word and weigh by the training IDF
    vocab = set(model.item_lexical_.vocab_)
    assert "a_cold" not in vocab and "a0" in vocab
    frame = pd.DataFrame(
        {"title": ["explosions newword"], "genre": [["Action"]], "year": ["1999"]}, index=["x"]
    )
    model.partial_fit_items(
        Entities(frame, {"title": "text", "genre": "multi", "year": "categorical"})
    )
    indices, offsets, weights = model.item_word_bags_
    words = {model.item_lexical_.vocab_[i] for i in indices[offsets[-1] :]}
    assert "explosions" in words and "action" in words and "newword" not in words
    np.testing.assert_allclose(np.linalg.norm(weights[offsets[-1] :]), 1.0, rtol=1e-5)


def test_content_only_scores_are_calibrated_on_held_out_items(retrieval_model, catalogue):
    calibration = retrieval_model.calibration_
    assert calibration["held_out_items"] == round(0.1 * retrieval_model.n_known_items_)
    assert calibration["scale"] > 0 and np.isfinite(calibration["offset"])
    net = retrieval_model.network_
    assert float(net.cold_offset) == calibration["offset"]
    # the calibration applies to content-only items only: undo it and compare
    user = catalogue.users_a[0]
    calibrated = retrieval_model.rank_scores([user] * 2, ["a_cold", "a1"])
    offset, scale = float(net.cold_offset), float(net.cold_scale)
    net.cold_offset.fill_(0.0)
    net.cold_scale.fill_(1.0)
    try:
        raw = retrieval_model.rank_scores([user] * 2, ["a_cold", "a1"])
    finally:
        net.cold_offset.fill_(offset)
        net.cold_scale.fill_(scale)
    assert calibrated[0] == pytest.approx(offset + scale * raw[0], rel=1e-5)
    assert calibrated[1] == pytest.approx(raw[1], rel=1e-6)


def test_an_exposure_floor_reserves_slots_for_content_only_items(retrieval_model, catalogue):
    user = catalogue.users_b[0]
    plain, _ = retrieval_model.recommend(user, k=4)
    boosted, boosted_scores = retrieval_model.recommend(user, k=4, exposure=2)
    cold = set(retrieval_model.content_only_items())
    assert cold == {"a_cold", "r_cold"}
    assert len(cold & set(boosted)) == 2 and len(boosted) == 4
    kept = [i for i in plain if i in boosted]
    assert kept == [i for i in boosted if i in plain]  # the order of the kept ones is unchanged
    assert np.all(np.diff(boosted_scores) <= 0)
    # off by default, and a floor already met changes nothing
    assert retrieval_model.recommend(user, k=4, exposure=0)[0] == plain
    whole = len(retrieval_model.item_map_)
    assert (
        retrieval_model.recommend(user, k=whole, exposure=2)[0]
        == retrieval_model.recommend(user, k=whole)[0]
    )
    fresh, _ = retrieval_model.recommend(user, k=3, exposure=1, fresh={"a2"}, filter_seen=False)
    assert "a2" in fresh


def test_a_retrieval_model_round_trips(retrieval_model, catalogue, tmp_path):
    again = Recommender.load(retrieval_model.save(tmp_path / "r"))
    users = catalogue.users_a[:2] + catalogue.users_b[:2] + ["stranger"]
    items = ["a1", "r1", "a_cold", "r_cold", "a2"]
    history = Interactions.from_records([("stranger", "a0", 5.0)])
    for method in ("predict", "rank_scores"):
        np.testing.assert_array_equal(
            getattr(again, method)(users, items, history),
            getattr(retrieval_model, method)(users, items, history),
        )
    assert (
        again.recommend("stranger", k=5, history=history)[0]
        == retrieval_model.recommend("stranger", k=5, history=history)[0]
    )
    np.testing.assert_array_equal(
        again.item_serving_vectors(), retrieval_model.item_serving_vectors()
    )
    assert again.calibration_ == retrieval_model.calibration_
    assert again.item_lexical_.vocab_ == retrieval_model.item_lexical_.vocab_


def test_retrieval_serving_vectors_reproduce_rank_scores_and_ratings(retrieval_model):
    history = Interactions.from_records([("n9", "a0", 5.0), ("n9", "r_cold", 2.0)])
    items = ["a1", "r_cold", "a_cold", "r3"]
    user = retrieval_model.user_serving_vector("n9", ["a0", "r_cold"], [5.0, 2.0])
    rows = retrieval_model.item_serving_vectors(items)
    assert retrieval_model.serving_offset == 0.0
    np.testing.assert_allclose(
        rows @ user, retrieval_model.rank_scores(["n9"] * 4, items, history), atol=1e-5
    )
    np.testing.assert_allclose(
        retrieval_model.serving_ratings("n9", items, ["a0", "r_cold"], [5.0, 2.0]),
        retrieval_model.predict(["n9"] * 4, items, history),
        atol=1e-5,
    )


def test_a_retrieval_two_tower_keeps_the_recommender_contract(tiny_bert_dir):
    from dayzero.testing import check_recommender

    model = TwoTowerRecommender().set_params(
        encoder={"model": str(tiny_bert_dir), "max_length": 32},
        towers={"dim": 8, "hidden": 16},
        training={
            "epochs": 3,
            "batch_users": 8,
            "query_size": 3,
            "validation": 0.25,
            "retrieval_weight": 1.0,
            "negatives": 4,
        },
    )
    results = check_recommender(model)
    assert all(v == "passed" for v in results.values()), results


def test_with_timestamps_the_calibration_holds_out_the_newest_items(catalogue, tiny_bert_dir):
    """With timestamps the content-only calibration holds out the items that appeared last (as
    new items do); without, a random sample."""
    frame = catalogue.dataset.interactions.frame.copy()
    order = {item: n for n, item in enumerate(sorted(frame["item"].unique()))}
    # items appear one after another in name order: the last names are the newest
    frame["timestamp"] = frame["item"].map(order) * 1000 + frame.groupby("item").cumcount()
    timed = Dataset(Interactions(frame), items=catalogue.dataset.items)
    model = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **RETRIEVAL)
    model.fit(timed)
    assert model.calibration_["held_out_by"] == "time"
    model._times = _time_ranks(timed.interactions)
    i_idx = model.item_map_.to_internal(frame["item"])
    held = np.flatnonzero(model._choose_holdout(np.random.default_rng(0), i_idx))
    known = model.item_map_.ids[: model.n_known_items_]
    newest = sorted(range(len(known)), key=lambda n: -order[known[n]])[: len(held)]
    assert set(held) == set(newest)
    assert model.calibration_["held_out_items"] == len(held)
    random = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **RETRIEVAL)
    assert random.fit(catalogue.dataset).calibration_["held_out_by"] == "random"


# ------------------------------------------------------------------ contrastive adaptation
def test_contrastive_adaptation_encodes_items_with_the_adapted_encoder_and_round_trips(
    catalogue, tiny_bert_dir, tmp_path
):
    """adaptation.contrastive_steps adapts the encoder on co-engagement pairs before the towers
    train; the item vectors come from the adapted encoder, which saves as the encoder/ part and
    encodes a new item after load as before."""
    params = {
        **RETRIEVAL,
        "training__epochs": 5,
        "strategy": "top_k",
        "strategy_params": {"k": 1},
        "adaptation__steps": 0,
        "adaptation__contrastive_steps": 6,
        "adaptation__contrastive_pairs": 8,
        "adaptation__contrastive_lr": 1e-3,
    }
    model = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **params)
    model.fit(catalogue.dataset)
    assert model.contrastive_["steps"] == 6 and model.contrastive_["pairs"]["user-item"] > 0
    assert not hasattr(model, "adapt_losses_")  # steps=0: no end-to-end stage
    frozen = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir),
        **{**params, "strategy": "frozen", "adaptation__contrastive_steps": 0},
    )
    frozen.fit(catalogue.dataset)
    dim = model._text_encoder().dim
    assert not np.allclose(model.item_content_[:, :dim], frozen.item_content_[:, :dim])
    texts = model._item_texts(catalogue.dataset.items, ["a1"])
    np.testing.assert_allclose(
        model.item_content_[model.item_map_.to_internal(["a1"])[0], :dim],
        model._text_encoder().encode(texts, normalize=True)[0],
        atol=1e-6,
    )
    model.save(tmp_path / "contrastive")
    assert (tmp_path / "contrastive" / "encoder" / "weights.safetensors").is_file()
    again = Recommender.load(tmp_path / "contrastive")
    frame = pd.DataFrame(
        {"title": ["love kiss new"], "genre": [["Romance"]], "year": ["1999"]}, index=["r_new"]
    )
    fields = {"title": "text", "genre": "multi", "year": "categorical"}
    model.partial_fit_items(Entities(frame, fields))
    again.partial_fit_items(Entities(frame, fields))
    user = catalogue.users_a[0]
    np.testing.assert_allclose(
        again.rank_scores([user] * 2, ["r_new", "a1"]),
        model.rank_scores([user] * 2, ["r_new", "a1"]),
        atol=1e-5,
    )


def test_contrastive_adaptation_needs_a_strategy_that_trains(catalogue, tiny_bert_dir):
    model = TwoTowerRecommender().set_params(
        encoder=str(tiny_bert_dir), adaptation__contrastive_steps=3, **FAST
    )
    with pytest.raises(ValueError, match=r"contrastive_steps=3 .*strategy='frozen'"):
        model.fit(catalogue.dataset)


def test_retrieval_head_serves_a_new_user_from_profile_text_alone(catalogue, tiny_bert_dir):
    """Issue 12 item 6: with no interaction at all, a new user's profile text (a text field:
    no attribute column carries it) picks their group's items over the known catalogue; the
    same users without a profile get one list."""
    bio = {"A": "loves action films with explosions", "B": "loves romance films about love"}
    ids = [*catalogue.users_a, *catalogue.users_b]
    groups = ["A"] * len(catalogue.users_a) + ["B"] * len(catalogue.users_b)

    def profiles(users: list[str], of: list[str]) -> Entities:
        frame = pd.DataFrame({"bio": [bio[g] for g in of]}, index=pd.Index(users, name="id"))
        return Entities(frame, {"bio": "text"}, kind="user")

    data = catalogue.dataset
    dataset = Dataset(data.interactions, users=profiles(ids, groups), items=data.items)
    model = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **RETRIEVAL).fit(dataset)
    known = [*catalogue.action, *catalogue.romance]
    blank = [model.recommend(u, k=len(known), items=known)[0] for u in ("new_a", "new_b")]
    assert blank[0] == blank[1]
    model.partial_fit_users(Interactions.empty(), users=profiles(["new_a", "new_b"], ["A", "B"]))
    for user, group in (("new_a", "a"), ("new_b", "r")):
        top, _ = model.recommend(user, k=4, items=known)
        assert all(i.startswith(group) for i in top), (user, top)


@pytest.mark.parametrize("retrieval", [True, False])
def test_a_new_users_sentence_about_their_taste_picks_those_items(
    catalogue, tiny_bert_dir, retrieval
):
    """Issue 12 item 6: training users have no profile at all, so the user tower never saw a
    text; a new user's sentence still picks the items it describes, through the item tower
    (the sentence is read as a liked content-only item: its words and text vector)."""
    settings = RETRIEVAL if retrieval else {**FAST, "training__retrieval_weight": 0.0}
    data = catalogue.dataset
    dataset = Dataset(data.interactions, items=data.items)
    model = TwoTowerRecommender().set_params(encoder=str(tiny_bert_dir), **settings).fit(dataset)
    known = [*catalogue.action, *catalogue.romance]
    model.add_user_text("fan_a", "explosions car chase fight gun hero")
    model.add_user_text("fan_r", "love kiss wedding heart romance")
    for user, group in (("fan_a", "a"), ("fan_r", "r")):
        top, _ = model.recommend(user, k=4, items=known)
        assert all(i.startswith(group) for i in top), (user, top)
