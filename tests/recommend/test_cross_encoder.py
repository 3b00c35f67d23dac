from __future__ import annotations

import numpy as np
import pytest
import torch

from dayzero.core.schema import Entities, Interactions
from dayzero.core.templates import Template
from dayzero.recommend.contract import Recommender
from dayzero.recommend.cross_encoder import CrossEncoderRecommender

# The tiny BERT is random, not pretrained: low-rank adapters of random weights barely learn, so
# the learning tests fine-tune it fully; LoRA (the default) is covered by the save/load test.
# Items are named by their genre, whose words are in the tiny vocabulary (short texts).
TINY = {
    "item_template": Template(["genre"]).to_dict(),
    "name_field": "genre",
    "encoder__max_length": 48,
    "user_share": 0.7,
    "training__batch_size": 16,
    "training__lr": 3e-3,
    "training__validation": 0.2,
    "training__patience": 100,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models on a shared 2-core machine run several times faster on one thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(catalogue, tiny_bert_dir):
    # No profile: the users' segment field would give their group away; here the rating
    # summary must carry the taste.
    params = {
        **TINY,
        "strategy": "full",
        "training__epochs": 30,
        "user_template": Template([]).to_dict(),
    }
    return (
        CrossEncoderRecommender()
        .set_params(encoder=str(tiny_bert_dir), **params)
        .fit(catalogue.dataset)
    )


@pytest.fixture(scope="module")
def lora_model(catalogue, tiny_bert_dir):
    params = {**TINY, "strategy_params": {"r": 4}, "training__epochs": 2}
    return (
        CrossEncoderRecommender()
        .set_params(encoder=str(tiny_bert_dir), **params)
        .fit(catalogue.dataset)
    )


def _likes(catalogue, user: str, action: bool) -> Interactions:
    liked, disliked = (catalogue.action, catalogue.romance)
    if not action:
        liked, disliked = disliked, liked
    rows = [(user, i, 5.0) for i in liked[:3]] + [(user, i, 1.0) for i in disliked[:2]]
    return Interactions.from_records(rows)


def test_training_lowers_validation_mse(model):
    untrained = model.history_[0]
    assert untrained["step"] == 0
    best = min(h["val_mse"] for h in model.history_[1:])
    assert best < 0.6 * untrained["val_mse"]


def test_cold_item_scores_follow_the_new_users_support_ratings(model, catalogue):
    action_fan = _likes(catalogue, "newbie", action=True)
    romance_fan = _likes(catalogue, "newbie", action=False)
    items = [catalogue.cold_action, catalogue.cold_romance]
    for_action_fan = model.predict(["newbie"] * 2, items, history=action_fan)
    for_romance_fan = model.predict(["newbie"] * 2, items, history=romance_fan)
    assert for_action_fan[0] > for_romance_fan[0] + 0.5
    assert for_romance_fan[1] > for_action_fan[1] + 0.5


def test_user_text_shows_both_tastes_within_its_token_budget(model, lora_model, catalogue):
    text = model.user_text("newbie", _likes(catalogue, "newbie", action=True))
    assert text.startswith("rated 5: Action, Thriller") and "; rated 1: Romance, Drama" in text
    tokenizer = model.network_.encoder.tokenizer
    long_history = Interactions.from_records(
        [
            ("newbie", i, float(1 + k % 5))
            for k, i in enumerate(catalogue.action + catalogue.romance)
        ]
    )
    long_text = model.user_text("newbie", long_history)
    assert len(tokenizer(long_text, add_special_tokens=False)["input_ids"]) > 0
    assert len(tokenizer(long_text, add_special_tokens=False)["input_ids"]) <= model.user_budget_
    # a known user is described by its profile and its training ratings
    assert model.user_text("ua0").startswith("rated 5: Action, Thriller")
    assert lora_model.user_text("ua0").startswith("Segment: A | rated 5: Action, Thriller")


def test_pair_encoding_truncates_the_item_text_only(model):
    user_text = model.user_text("ua0")
    assert user_text
    batch, segments = model._tokenize([user_text], ["Genre: " + "action " * 200])
    assert batch["input_ids"].shape[1] == model.max_length_
    types = batch["token_type_ids"][0]
    n_user = len(model.network_.encoder.tokenizer(user_text, add_special_tokens=False)["input_ids"])
    assert int((segments[0] == 0).sum()) == n_user
    assert torch.equal(
        types[segments[0] == 1], torch.ones(int((segments[0] == 1).sum()), dtype=types.dtype)
    )
    assert int((types[segments[0] == 0]).sum()) == 0


def test_history_is_not_stored(model, catalogue):
    items = ["a1", "r1", catalogue.cold_action]
    before = model.predict(["newbie"] * 3, items)
    model.predict(["newbie"] * 3, items, history=_likes(catalogue, "newbie", action=True))
    np.testing.assert_array_equal(model.predict(["newbie"] * 3, items), before)
    assert model.user_text("newbie") == ""
    assert "newbie" not in model.seen_


def test_unknown_users_and_items_get_finite_scores(model):
    history = Interactions.from_records([("nobody", "zzz", 5.0), ("nobody", "a0", 1.0)])
    users = ["nobody", "nobody", "ua0", "ub0"]
    items = ["unknown-item", "a1", "unknown-item", "r_cold"]
    for h in (None, history):
        scores = model.predict(users, items, history=h)
        assert scores.shape == (4,) and np.all(np.isfinite(scores))


def test_rerank_sorts_a_permutation_of_the_candidates(model, catalogue):
    candidates = ["r2", "a3", "r_cold", "a_cold", "a1", "r5"]
    history = _likes(catalogue, "newbie", action=True)
    ids, scores = model.rerank("newbie", candidates, history=history, k=10)
    assert sorted(ids) == sorted(candidates)
    assert np.all(np.diff(scores) <= 0)
    expected = model.predict(["newbie"] * len(ids), ids, history=history)
    # float32 sums differ in the last bits when the texts sit in other batch rows / paddings
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    assert ids[:3] == [i for i in ids if i.startswith("a")][:3]
    top2, _ = model.rerank("newbie", candidates, history=history, k=2)
    assert top2 == ids[:2]


@pytest.mark.parametrize("which", ["lora_model", "model"])
def test_save_load_gives_identical_predictions(which, request, catalogue, tmp_path):
    fitted = request.getfixturevalue(which)
    folder = fitted.save(tmp_path / which)
    expected = {"dayzero.json", "weights.safetensors", "encoder", "card.json", "card.html"}
    assert {p.name for p in folder.iterdir()} == expected
    loaded = Recommender.load(folder)
    assert type(loaded) is CrossEncoderRecommender
    assert loaded.get_params() == fitted.get_params()
    users = ["ua0", "ub1", "newbie", "newbie"]
    items = ["a1", "r_cold", "a_cold", "unknown-item"]
    history = _likes(catalogue, "newbie", action=True)
    for h in (None, history):
        np.testing.assert_array_equal(
            loaded.predict(users, items, h), fitted.predict(users, items, h)
        )


def test_lora_trains_only_adapters_and_head(lora_model):
    assert lora_model.strategy_config_.name == "lora" and lora_model.strategy_config_.r == 4
    trainable = [n for n, p in lora_model.network_.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any(n.startswith("head.") for n in trainable)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"user_share": 1.5}, "user_share"),
        ({"training__max_train_pairs": 0}, "max_train_pairs"),
        ({"strategy": "nope"}, "unknown transfer strategy"),
        ({"strategy_params": {"bogus": 1}}, "bogus"),
    ],
)
def test_bad_parameters_are_named(params, match, catalogue, tiny_bert_dir):
    model = CrossEncoderRecommender().set_params(encoder=str(tiny_bert_dir), **{**TINY, **params})
    with pytest.raises(ValueError, match=match):
        model.fit(catalogue.dataset)


def _quick(tiny_bert_dir, **override) -> CrossEncoderRecommender:
    params = {
        **TINY,
        "strategy_params": {"r": 4},
        "training__epochs": 1,
        "training__validation": 0.1,
        **override,
    }
    return CrossEncoderRecommender().set_params(encoder=str(tiny_bert_dir), **params)


def _new_item(catalogue) -> Entities:
    entities = catalogue.dataset.items.subset(["a0"])
    entities.frame.index = ["a_new"]
    return entities


def test_partial_fit_items_remembers_the_interactions_for_their_raters(catalogue, tiny_bert_dir):
    model = _quick(tiny_bert_dir).fit(catalogue.dataset)
    before = model.user_text("ub0")
    rows = Interactions.from_records([("ub0", "a_new", 5.0), ("ub1", "a_new", 5.0)])
    model.partial_fit_items(_new_item(catalogue))
    expected = model.user_text("ub0", history=rows)
    model.partial_fit_items(_new_item(catalogue), rows)
    assert "a_new" in model.seen_items("ub0") and "a_new" in model.seen_items("ub1")
    assert "a_new" not in model.recommend("ub0", k=100)[0]
    # the new rating enters the rater's text, as a partial_fit_users row would
    assert model.user_text("ub0") == expected != before


def test_folded_in_history_with_datetime_timestamps_saves_and_loads(
    catalogue, tiny_bert_dir, tmp_path
):
    import datetime as dt

    import pandas as pd

    model = _quick(tiny_bert_dir).fit(catalogue.dataset)
    berlin = pd.Timestamp("2024-03-01 12:00", tz="Europe/Berlin")
    rows = [("later", "r0", 5.0, berlin), ("later", "a0", 1.0, berlin + pd.Timedelta("1h"))]
    model.partial_fit_users(Interactions.from_records(rows))
    utc = dt.datetime(2024, 3, 2, 8, 30, tzinfo=dt.UTC)
    model.partial_fit_items(
        _new_item(catalogue), Interactions.from_records([("ua0", "a_new", 5.0, utc)])
    )
    again = Recommender.load(model.save(tmp_path / "m"))
    users, items = ["later", "later", "ua0", "ua0"], ["r1", "a_new", "a1", "a_new"]
    np.testing.assert_array_equal(again.predict(users, items), model.predict(users, items))
    assert again.user_text("later") == model.user_text("later")


def test_a_second_fit_equals_a_fresh_fit(catalogue, tiny_bert_dir):
    from sklearn.base import clone

    model = _quick(tiny_bert_dir).fit(catalogue.dataset)
    model.partial_fit_users(Interactions.from_records([("later", "r0", 5.0), ("ua0", "r1", 5.0)]))
    model.fit(catalogue.dataset)
    fresh = clone(model).fit(catalogue.dataset)
    users, items = ["later", "later", "ua0", "ub1"], ["r2", "a1", "r1", "r_cold"]
    np.testing.assert_array_equal(model.predict(users, items), fresh.predict(users, items))
    assert model.seen_items("later") == set() and model.user_text("later") == ""
    assert model.history_ == fresh.history_
