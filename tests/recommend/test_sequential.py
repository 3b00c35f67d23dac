"""SequentialRecommender: causal masking, themed known-answer catalogue, cold items, contract.

The catalogue has three themes whose item texts share theme words; every player's sequence stays
within one theme, so after training a theme history must lead to that theme's items, and a new
item of the theme (text only, added after fit) must rank with them. The ID-only model gives every
new item the same score whatever the history: it cannot rank them.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.core.templates import Template
from dayzero.recommend import make_recommender
from dayzero.recommend.contract import NotFittedError, Recommender
from dayzero.recommend.sequential import SequenceNet, SequentialRecommender

THEMES = {
    "s": "space alien robot",
    "l": "love romance music",
    "h": "horror scary thriller",
}
FIELDS = {"title": "text", "genres": "multi"}
FAST = {
    "network__hidden": 32,
    "network__heads": 2,
    "network__max_len": 10,
    "network__dropout": 0.1,
    "training__epochs": 60,
    "training__batch_size": 16,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


def _items(ids: list[str]) -> Entities:
    frame = pd.DataFrame(
        {
            "title": [f"{THEMES[i[0]]} game {i}" for i in ids],
            "genres": [[THEMES[i[0]].split()[0]] for i in ids],
        },
        index=ids,
    )
    return Entities(frame, dict(FIELDS))


def make_dataset(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    items = [f"{t}{k}" for t in THEMES for k in range(8)]
    rows = []
    for theme in THEMES:
        for u in range(16):
            picks = rng.choice(8, size=6, replace=False)
            for step, k in enumerate(picks):
                rows.append((f"{theme}-user{u}", f"{theme}{k}", 1.0, 1000 * u + step))
    # Shuffle the rows: the model must order each sequence by timestamp.
    order = rng.permutation(len(rows))
    inter = Interactions.from_records([rows[k] for k in order])
    return Dataset(inter, items=_items(items))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run much faster on one thread than on a contended pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="module")
def model(dataset, tiny_bert_dir) -> SequentialRecommender:
    return SequentialRecommender().set_params(encoder=str(tiny_bert_dir), **FAST).fit(dataset)


@pytest.fixture(scope="module")
def id_only(dataset) -> SequentialRecommender:
    return SequentialRecommender().set_params(text=False, **FAST).fit(dataset)


NEW = ["s_new", "l_new", "h_new"]


# ---------------------------------------------------------------------- masking
def _net() -> SequenceNet:
    torch.manual_seed(0)
    return SequenceNet(8, 0, 16, 2, 2, 12, 0.1).eval()


def test_changing_a_future_item_leaves_earlier_outputs_exactly_unchanged():
    net = _net()
    torch.manual_seed(1)
    vectors = torch.randn(2, 7, 16)
    lengths = torch.tensor([7, 7])
    before = net(vectors, lengths)
    changed = vectors.clone()
    changed[:, 4] = torch.randn(2, 16) * 10
    after = net(changed, lengths)
    assert torch.equal(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])  # the change is visible from t = 4


def test_padding_does_not_change_outputs():
    net = _net()
    torch.manual_seed(2)
    short = torch.randn(1, 3, 16)
    batch = torch.randn(2, 6, 16)  # row 0: the short sequence + 3 positions of padding garbage
    batch[0, :3] = short[0]
    lengths = torch.tensor([3, 6])
    out = net(batch, lengths)
    garbage = batch.clone()
    garbage[0, 3:] = torch.randn(3, 16) * 100
    assert torch.equal(net(garbage, lengths)[0, :3], out[0, :3])
    torch.testing.assert_close(out[0, :3], net(short, torch.tensor([3]))[0], atol=1e-6, rtol=0)


def test_model_state_for_a_prefix_equals_the_state_inside_the_longer_sequence(model):
    vectors = model.item_vectors_[torch.tensor([0, 5, 9, 2])]
    full = model.network_(vectors.unsqueeze(0), torch.tensor([4]))[0]
    prefix = model._states([vectors[:2]])[0]
    torch.testing.assert_close(prefix, full[1], atol=1e-6, rtol=0)


# ---------------------------------------------------------------------- known answer
@pytest.mark.parametrize("theme", list(THEMES))
def test_theme_history_ranks_the_theme_first(model, theme):
    history = [f"{theme}0", f"{theme}1"]
    ids, scores = model.recommend_sequence(history, k=6)
    assert [i[0] for i in ids] == [theme] * 6
    assert not set(history) & set(ids)
    assert np.all(np.diff(scores) <= 0)


def test_new_item_is_ranked_from_its_text_after_fit(model):
    fresh = copy.deepcopy(model)  # keep the shared fixture unchanged
    fresh.partial_fit_items(_items(NEW))
    for theme, new in zip(THEMES, NEW, strict=True):
        ids, scores = fresh.recommend_sequence([f"{theme}2", f"{theme}3"], k=len(fresh.item_map_))
        rank = ids.index(new)
        others = [s for i, s in zip(ids, scores, strict=True) if i[0] != theme]
        assert rank < 7, f"{new} ranked {rank}: {ids[:8]}"  # among the 7 theme candidates
        assert scores[rank] > max(others)


def test_id_only_model_cannot_rank_new_items(id_only):
    fresh = copy.deepcopy(id_only)
    fresh.partial_fit_items(_items(NEW))
    ids, _ = fresh.recommend_sequence(["s0", "s1"], k=6)
    assert [i[0] for i in ids] == ["s"] * 6  # warm items are fine
    for theme in THEMES:
        scores = fresh.predict(["u"] * 3, NEW, history=_history("u", [f"{theme}0", f"{theme}4"]))
        np.testing.assert_array_equal(scores, np.zeros(3))  # same score for every new item
    s_scores = dict(zip(*fresh.recommend_sequence(["s0", "s1"], k=30), strict=True))
    assert s_scores["s_new"] <= s_scores["l_new"]


def _history(user: str, items: list[str]) -> Interactions:
    return Interactions.from_records([(user, i, 1.0, t) for t, i in enumerate(items)])


# ---------------------------------------------------------------------- contract
def test_registered_and_params_round_trip():
    model = make_recommender("sequential", network__hidden=16)
    assert isinstance(model, SequentialRecommender)
    assert type(model)(**model.get_params(deep=False)).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.recommend_sequence(["s0"])


def test_sequences_follow_timestamps_not_row_order(model, dataset):
    frame = dataset.interactions.frame
    for user in ["s-user0", "h-user5"]:
        rows = frame[frame["user"] == user].sort_values("timestamp")
        assert model._user_sequence(user, None) == rows["item"].tolist()


def test_predict_recommend_similar_items_shapes(model, dataset):
    users = ["s-user0", "l-user1", "stranger"]
    scores = model.predict(users, ["s5", "l7", "s1"])
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    ids, scores = model.recommend("s-user0", k=4)
    assert len(ids) == 4 and scores.shape == (4,)
    assert not set(ids) & model.seen_items("s-user0")
    assert [i[0] for i in ids[:2]] == ["s"] * 2  # the two space games s-user0 has not played
    ids, _ = model.recommend("s-user0", k=4, items=["l1", "s7", "h2", "s6"], filter_seen=False)
    assert sorted(ids[:2]) == ["s6", "s7"]
    similar, sims = model.similar_items("h3", k=5)
    assert "h3" not in similar and len(similar) == 5 and sims.shape == (5,)
    assert sum(i[0] == "h" for i in similar) >= 4


def test_new_player_history_and_popularity_fallback(model, dataset):
    ids, _ = model.recommend("nobody", k=5, history=_history("nobody", ["l0", "l3"]))
    assert [i[0] for i in ids] == ["l"] * 5 and not {"l0", "l3"} & set(ids)
    ids, scores = model.recommend("nobody", k=5)
    counts = dataset.interactions.frame["item"].value_counts()
    np.testing.assert_allclose(scores, np.log1p(counts.iloc[:5].to_numpy()))
    assert ids == model.recommend_sequence([], k=5)[0]


def test_unknown_history_items_fold_from_fields_or_warn(model):
    with pytest.warns(UserWarning, match="unknown and have no fields"):
        with_ghost, scores = model.recommend_sequence(["ghost", "h1", "h2"], k=5)
    plain, plain_scores = model.recommend_sequence(["h1", "h2"], k=5)
    assert with_ghost == plain
    np.testing.assert_allclose(scores, plain_scores, atol=1e-6)
    folded, _ = model.recommend_sequence(["h_new"], k=5, entities=_items(["h_new"]))
    assert [i[0] for i in folded] == ["h"] * 5
    assert "h_new" not in model.item_map_  # the call did not change the model


def test_bad_input_errors(model, dataset, tiny_bert_dir):
    with pytest.raises(ValueError, match="k must be"):
        model.recommend_sequence(["s0"], k=0)
    with pytest.raises(TypeError, match="sequence of item ids"):
        model.recommend_sequence("s0")
    with pytest.raises(TypeError, match="Entities"):
        model.partial_fit_items(["x"])
    with pytest.raises(ValueError, match="no item vector"):
        SequentialRecommender().set_params(text=False, use_ids=False).fit(dataset)
    with pytest.raises(ValueError, match="needs item fields"):
        SequentialRecommender().set_params(encoder=str(tiny_bert_dir)).fit(
            Dataset(dataset.interactions)
        )
    singles = Interactions.from_records([("a", "s0", 1.0), ("b", "s1", 1.0)])
    with pytest.raises(ValueError, match="two or more actions"):
        SequentialRecommender().set_params(text=False).fit(Dataset(singles))


def test_partial_fit_users_extends_the_sequence(id_only):
    fresh = copy.deepcopy(id_only)
    before = fresh.recommend("s-user0", k=3)[1]
    fresh.partial_fit_users(_history("s-user0", ["h0", "h1", "h2", "h3"]))
    ids, after = fresh.recommend("s-user0", k=3)
    assert not np.allclose(before, after)
    assert not {"h0", "h1", "h2", "h3"} & set(ids)


# ---------------------------------------------------------------------- persistence
def test_save_load_identical_outputs(model, tmp_path):
    model.save(tmp_path / "seq")
    loaded = Recommender.load(tmp_path / "seq")
    assert isinstance(loaded, SequentialRecommender)
    for history in (["s0", "s4"], ["l1"], []):
        a, sa = model.recommend_sequence(history, k=8)
        b, sb = loaded.recommend_sequence(history, k=8)
        assert a == b
        np.testing.assert_array_equal(sa, sb)
    users, items = ["s-user2", "stranger"], ["s1", "h1"]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    loaded.partial_fit_items(_items(["s_new"]))  # the encoder is rebuilt for new items' text
    assert "s_new" in loaded.recommend_sequence(["s0", "s1"], k=7)[0]


def test_id_only_save_load_keeps_folded_in_history(id_only, tmp_path):
    model = copy.deepcopy(id_only)
    # Rows out of time order, one undated (it goes last): the saved history keeps both.
    frame = pd.DataFrame({"user": "p", "item": ["h2", "h1"], "value": 1.0})
    frame["timestamp"] = pd.to_datetime([None, "2020-01-02"])
    model.partial_fit_users(Interactions(frame))
    model.save(tmp_path / "id")
    loaded = Recommender.load(tmp_path / "id")
    assert loaded._user_sequence("p", None) == ["h1", "h2"]
    for user in ("p", "s-user1"):
        a, sa = model.recommend(user, k=5)
        b, sb = loaded.recommend(user, k=5)
        assert a == b
        np.testing.assert_array_equal(sa, sb)


def test_lora_adapts_and_round_trips(dataset, tiny_bert_dir, tmp_path):
    model = (
        SequentialRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            strategy="lora",
            adaptation__steps=3,
            adaptation__users=4,
            adaptation__items=8,
            adaptation__refit_epochs=1,
            **{**FAST, "training__epochs": 3},
        )
        .fit(dataset)
    )
    trainable, total = model.encoder_parameters_
    assert 0 < trainable < total and len(model.adapt_losses_) == 3
    model.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "encoder" / "adapter_model.safetensors").is_file()
    loaded = Recommender.load(tmp_path / "lora")
    loaded.save(tmp_path / "again")  # a loaded adapted model saves again
    again = Recommender.load(tmp_path / "again")
    for m in (model, loaded, again):
        m.partial_fit_items(_items(["s_new"]))
    a, sa = model.recommend_sequence(["s0"], k=10)
    for other in (loaded, again):
        b, sb = other.recommend_sequence(["s0"], k=10)
        assert a == b
        np.testing.assert_allclose(sa, sb, atol=1e-5)
    model.fit(dataset)  # a refit adapts a fresh encoder (no peft-on-peft)
    assert len(model.adapt_losses_) == 3 and "s_new" not in model.item_map_


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_model_other_seed_other_model(dataset):
    params = {**FAST, "training__epochs": 2, "text": False}
    a = SequentialRecommender().set_params(**params).fit(dataset)
    b = SequentialRecommender().set_params(**params).fit(dataset)
    c = SequentialRecommender().set_params(**params, random_state=1).fit(dataset)
    _, sa = a.recommend_sequence(["s0", "l1"], k=10)
    _, sb = b.recommend_sequence(["s0", "l1"], k=10)
    _, sc = c.recommend_sequence(["s0", "l1"], k=10)
    np.testing.assert_array_equal(sa, sb)
    assert not np.allclose(sa, sc)


# ---------------------------------------------------------------------- field tokens, content
TITLE_ONLY = Template(["title"]).to_dict()


def _blind_items(ids: list[str]) -> Entities:
    """New items whose titles say nothing of their theme: only the genre token tells it."""
    items = _items(ids)
    items.frame["title"] = "untitled product"
    return items


def _theme_scores(model: SequentialRecommender) -> dict[str, list[float]]:
    """For each theme history: the scores of the blind new items in ``NEW`` order."""
    fresh = copy.deepcopy(model)
    fresh.partial_fit_items(_blind_items(NEW))
    out = {}
    for theme in THEMES:
        ids, scores = fresh.recommend_sequence([f"{theme}2", f"{theme}3"], k=len(fresh.item_map_))
        out[theme] = [float(scores[ids.index(n)]) for n in NEW]
    return out


@pytest.fixture(scope="module")
def tokens_model(dataset, tiny_bert_dir) -> SequentialRecommender:
    return (
        SequentialRecommender()
        .set_params(
            encoder=str(tiny_bert_dir), item_template=TITLE_ONLY, content__field_tokens=True, **FAST
        )
        .fit(dataset)
    )


def test_field_tokens_rank_a_new_item_with_uninformative_text_in_its_theme(
    tokens_model, dataset, tiny_bert_dir
):
    # Without tokens the three blind items have the same text, hence exactly equal scores.
    plain = (
        SequentialRecommender()
        .set_params(
            encoder=str(tiny_bert_dir), item_template=TITLE_ONLY, **{**FAST, "training__epochs": 2}
        )
        .fit(dataset)
    )
    for scores in _theme_scores(plain).values():
        assert scores[0] == scores[1] == scores[2]
    # With them, the item whose genre token is the theme's scores highest for that theme.
    assert sorted(tokens_model.tokens_.vocab_) == ["genres=horror", "genres=love", "genres=space"]
    for theme, scores in _theme_scores(tokens_model).items():
        assert int(np.argmax(scores)) == list(THEMES).index(theme), (theme, scores)


def test_content_term_ranks_new_items_by_shared_tokens_even_for_an_id_only_model(dataset):
    model = (
        SequentialRecommender()
        .set_params(text=False, content__content_weight=5.0, **FAST)
        .fit(dataset)
    )
    for theme, scores in _theme_scores(model).items():
        assert int(np.argmax(scores)) == list(THEMES).index(theme), (theme, scores)
        # ID-only: a new item's sequence logit is 0, so its score is the content term alone.
        others = [s for k, s in enumerate(scores) if k != list(THEMES).index(theme)]
        assert max(others) == pytest.approx(0.0, abs=1e-6)


def test_content_score_is_logit_plus_weighted_cosine(dataset, tiny_bert_dir):
    model = (
        SequentialRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            content__field_tokens=True,
            content__content_weight=2.0,
            **{**FAST, "training__epochs": 2},
        )
        .fit(dataset)
    )
    history = ["s0", "l4"]
    ids, scores = model.recommend_sequence(history, k=5, exclude=())
    rows = model.item_map_.to_internal(history)
    state = model._states([model.item_vectors_[torch.from_numpy(rows)]])[0]
    content = model.content_vectors_
    np.testing.assert_allclose(np.linalg.norm(content, axis=1), 1.0, atol=1e-5)
    cosine = content[model.item_map_.to_internal(ids)] @ content[rows].mean(axis=0)
    logit = (
        model.item_vectors_[torch.from_numpy(model.item_map_.to_internal(ids))] @ state
    ).numpy()
    np.testing.assert_allclose(scores, logit + 2.0 * cosine, atol=1e-5)


def test_learned_content_gate_trains_and_round_trips(dataset, tiny_bert_dir, tmp_path):
    model = (
        SequentialRecommender()
        .set_params(
            encoder=str(tiny_bert_dir),
            content__field_tokens=True,
            content__content_weight=1.0,
            content__learn_content_weight=True,
            **{**FAST, "training__epochs": 5},
        )
        .fit(dataset)
    )
    weight = float(model.network_.content_weight.detach())
    assert weight != 1.0  # a parameter of the network, moved by training
    model.save(tmp_path / "gate")
    loaded = Recommender.load(tmp_path / "gate")
    assert float(loaded.network_.content_weight.detach()) == weight
    for m in (model, loaded):
        m.partial_fit_items(_blind_items(["s_new"]))
    a, sa = model.recommend_sequence(["s0", "s1"], k=10)
    b, sb = loaded.recommend_sequence(["s0", "s1"], k=10)
    assert a == b
    np.testing.assert_allclose(sa, sb, atol=1e-5)


def _with_a_hit(seed: int = 0) -> Dataset:
    """The themed data plus one item that every player acts on at a random step."""
    rng = np.random.default_rng(seed)
    base = make_dataset(seed).interactions.frame
    users = base["user"].unique()
    hits = pd.DataFrame(
        {
            "user": users,
            "item": "hit",
            "value": 1.0,
            "timestamp": [1000 * int(u.split("user")[1]) + rng.integers(0, 6) for u in users],
        }
    )
    frame = pd.concat([base, hits], ignore_index=True)
    items = _items([f"{t}{k}" for t in THEMES for k in range(8)])
    hit = pd.DataFrame({"title": ["hit game"], "genres": [["hit"]]}, index=["hit"])
    return Dataset(Interactions(frame), items=Entities(pd.concat([items.frame, hit]), FIELDS))


def test_popularity_debias_lowers_the_most_popular_item(tiny_bert_dir):
    data = _with_a_hit()
    ranks = []
    for debias in (0.0, 3.0):
        model = (
            SequentialRecommender()
            .set_params(encoder=str(tiny_bert_dir), content__popularity_debias=debias, **FAST)
            .fit(data)
        )
        ranked = [model.recommend_sequence([f"{t}0", f"{t}1"], k=26)[0] for t in THEMES]
        ranks.append(np.mean([r.index("hit") for r in ranked]))
    assert ranks[0] < 3  # learned as the likely next item of everybody
    assert ranks[1] > ranks[0] + 3


def test_bad_new_params():
    for params in (
        {"content__content_weight": -1.0},
        {"content__popularity_debias": "high"},
        {"content__token_min_count": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(params)).split("__")[1]):
            SequentialRecommender().set_params(text=False, **params).fit(make_dataset())


def test_content_at_scoring_only_is_a_late_fusion_of_the_same_network(dataset, tiny_bert_dir):
    params = {
        **FAST,
        "training__epochs": 3,
        "encoder": str(tiny_bert_dir),
        "content__field_tokens": True,
    }
    plain = SequentialRecommender().set_params(**params).fit(dataset)
    fused = (
        SequentialRecommender()
        .set_params(**params, content__content_weight=4.0, content__content_training=False)
        .fit(dataset)
    )
    torch.testing.assert_close(fused.item_vectors_, plain.item_vectors_, atol=0, rtol=0)
    history = ["h1", "s2"]
    ids, scores = fused.recommend_sequence(history, k=len(fused.item_map_), exclude=())
    base = dict(zip(*plain.recommend_sequence(history, k=len(ids), exclude=()), strict=True))
    content = fused.content_vectors_
    cosine = content[fused.item_map_.to_internal(ids)] @ content[
        fused.item_map_.to_internal(history)
    ].mean(axis=0)
    np.testing.assert_allclose(scores, [base[i] for i in ids] + 4.0 * cosine, atol=1e-5)
    with pytest.raises(ValueError, match="content_training"):
        SequentialRecommender().set_params(
            content__learn_content_weight=True, content__content_training=False
        ).fit(dataset)


def test_token_statistics_of_the_new_games_protocol_are_fit_on_games_known_at_the_cut_off():
    from dayzero.evaluate.protocols.steam import new_games_split

    base = make_dataset().interactions.frame
    old = base.assign(
        timestamp=pd.Timestamp("2014-01-01") + pd.to_timedelta(base["timestamp"], "s")
    )
    new = pd.DataFrame(
        {"user": ["s-user0", "l-user0"], "item": ["s_new", "l_new"], "value": 1.0}
    ).assign(timestamp=pd.Timestamp("2016-06-01"))
    items = _items([f"{t}{k}" for t in THEMES for k in range(8)] + ["s_new", "l_new"])
    # "rare" is on one old game and one new one: twice in the catalogue, once at the cut-off.
    items.frame.loc["s0", "genres"] = ["space", "rare"]
    items.frame.loc["s_new", "genres"] = ["space", "rare"]
    items.frame["release_date"] = pd.Timestamp("2010-01-01")
    items.frame.loc[["s_new", "l_new"], "release_date"] = pd.Timestamp("2016-01-01")
    data = Dataset(Interactions(pd.concat([old, new], ignore_index=True)), items=items)
    split = new_games_split(data, fraction=0.05)
    assert split.new_games == ["s_new", "l_new"]
    model = (
        SequentialRecommender()
        .set_params(
            text=False,
            content__field_tokens=True,
            content__content_weight=1.0,
            content__token_min_count=2,
            **FAST,
        )
        .fit(split.train)
    )
    assert sorted(model.tokens_.vocab_) == ["genres=horror", "genres=love", "genres=space"]
    # IDF over the 24 games known at the cut-off (8 per theme).
    np.testing.assert_allclose(model.idf_, np.log(25 / 9) + 1, rtol=1e-6)
    vocab, idf = dict(model.tokens_.vocab_), model.idf_.copy()
    split.fold_in(model)  # the new games through the fitted vocabulary and IDF
    assert model.tokens_.vocab_ == vocab
    np.testing.assert_array_equal(model.idf_, idf)
    rows = model.token_rows_[model.item_map_.to_internal(["s_new"])]
    assert sorted(rows[rows < model.tokens_.size].tolist()) == [vocab["genres=space"]]
    ids, _ = model.recommend_sequence(["s1", "s2"], k=2, items=["s_new", "l_new"])
    assert ids[0] == "s_new"
