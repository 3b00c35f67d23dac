"""Contrastive adaptation from co-engagement: pair building (known answers), the in-batch loss,
training that pulls co-engaged texts together, budgets, determinism and input rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dayzero.core.schema import Interactions
from dayzero.text.adapters import strategy_config
from dayzero.text.encoder import TextEncoder
from dayzero.train.contrastive import (
    ITEM_ITEM,
    USER_ITEM,
    CoEngagementPairs,
    ContrastiveConfig,
    build_pairs,
    in_batch_loss,
    train_contrastive,
)

pytestmark = pytest.mark.usefixtures("one_thread")

GROUPS = [
    ["food city", "game player", "loan bank"],
    ["movie love", "stock market", "space alien"],
    ["robot kids", "credit risk", "music sad"],
    ["war drama", "toy funny", "police crime"],
]
ITEMS = {f"i{g}{k}": text for g, group in enumerate(GROUPS) for k, text in enumerate(group)}


def _named(pairs: CoEngagementPairs) -> list[tuple[str, str, object, str]]:
    return [
        (pairs.texts[a], pairs.texts[p], u, k)
        for a, p, u, k in zip(pairs.anchor, pairs.positive, pairs.user, pairs.kind, strict=True)
    ]


def _group_interactions(users: int = 24) -> Interactions:
    """Each user engages the three items of one group, in a user-specific time order."""
    rows = []
    for u in range(users):
        group = u % len(GROUPS)
        for t, k in enumerate(np.random.default_rng(u).permutation(3)):
            rows.append((f"u{u}", f"i{group}{k}", 1.0, t))
    return Interactions.from_records(rows)


def _gap(encoder: TextEncoder) -> float:
    """Mean cosine of co-engaged (same-group) items minus that of the other pairs."""
    ids = list(ITEMS)
    vectors = encoder.encode([ITEMS[i] for i in ids], normalize=True)
    similarity = vectors @ vectors.T
    group = np.array([int(i[1]) for i in ids])
    off = ~np.eye(len(ids), dtype=bool)
    same = (group[:, None] == group[None, :]) & off
    return float(similarity[same].mean() - similarity[~same & off].mean())


# ------------------------------------------------------------------ pairs


def test_item_pairs_follow_each_users_time_order_within_the_window():
    texts = {"a": "alpha", "b": "beta", "c": "gamma", "d": "delta", "e": "eps"}
    inter = Interactions.from_records(
        [
            ("u1", "c", 1.0, 1),
            ("u1", "a", 1.0, 2),
            ("u1", "b", 1.0, 5),
            ("u1", "d", 1.0, 7),
            ("u1", "a", 1.0, 9),  # a second engagement with a: its first one counts
            ("u2", "b", 1.0, 3),
            ("u2", "a", 1.0, 4),  # (a, b) again, from u2: kept once, u1's
            ("u2", "e", 1.0, 8),
        ]
    )
    pairs = build_pairs(inter, texts, config=ContrastiveConfig(window=1))
    assert _named(pairs) == [
        ("gamma", "alpha", "u1", ITEM_ITEM),
        ("alpha", "beta", "u1", ITEM_ITEM),
        ("beta", "delta", "u1", ITEM_ITEM),
        ("alpha", "eps", "u2", ITEM_ITEM),
    ]
    wider = build_pairs(inter, texts, config=ContrastiveConfig(window=2))
    assert ("gamma", "beta", "u1", ITEM_ITEM) in _named(wider)
    assert ("gamma", "delta", "u1", ITEM_ITEM) not in _named(wider)  # 3 places apart


def test_no_pair_crosses_users_and_caps_hold_per_user():
    rng = np.random.default_rng(1)
    texts = {f"i{k}": f"text {k}" for k in range(60)}
    rows = [("heavy", f"i{k}", 1.0, k) for k in range(40)]
    rows += [(f"light{u}", f"i{k}", 1.0, k) for u in range(5) for k in rng.choice(60, 4, False)]
    inter = Interactions.from_records(rows)
    config = ContrastiveConfig(window=2, max_pairs_per_user=6)
    pairs = build_pairs(inter, texts, config=config)
    engaged = inter.frame.groupby("user")["item"].agg(lambda s: {texts[i] for i in s})
    for anchor, positive, user, _ in _named(pairs):
        assert {anchor, positive} <= engaged[user]
    counts = pd.Series(pairs.user).value_counts()
    assert counts.max() <= 6 and counts["heavy"] == 6
    keys = {(min(a, p), max(a, p)) for a, p in zip(pairs.anchor, pairs.positive, strict=True)}
    assert len(keys) == len(pairs)  # deduplicated
    assert (pairs.anchor != pairs.positive).all()


def test_without_timestamps_pairs_are_seeded_samples_of_each_users_items():
    texts = {f"i{k}": f"text {k}" for k in range(30)}
    inter = Interactions.from_records(
        [(f"u{u}", f"i{k}", 1.0) for u in range(4) for k in range(u * 5, u * 5 + 10)]
    )
    config = ContrastiveConfig(window=1, max_pairs_per_user=5)
    first, again = (
        build_pairs(inter, texts, config=config),
        build_pairs(inter, texts, config=config),
    )
    assert _named(first) == _named(again)
    other = build_pairs(inter, texts, config=config, seed=1)
    assert _named(first) != _named(other)
    engaged = inter.frame.groupby("user")["item"].agg(lambda s: {texts[i] for i in s})
    assert all({a, p} <= engaged[u] for a, p, u, _ in _named(first))


def test_user_item_pairs_for_users_with_a_profile_text_only():
    texts = {"a": "alpha", "b": "beta", "c": "gamma"}
    inter = Interactions.from_records(
        [("u1", "a", 5.0, 1), ("u1", "b", 2.0, 2), ("u1", "c", 4.0, 3), ("u2", "a", 5.0, 1)]
    )
    profiles = {"u1": "likes greek letters", "u2": "   "}
    config = ContrastiveConfig(window=1, positive_threshold=4.0)
    got = _named(build_pairs(inter, texts, profiles, config))
    assert got == [
        ("alpha", "gamma", "u1", ITEM_ITEM),  # b is below the threshold
        ("likes greek letters", "alpha", "u1", USER_ITEM),
        ("likes greek letters", "gamma", "u1", USER_ITEM),
    ]
    no_users = build_pairs(inter, texts, profiles, ContrastiveConfig(user_item=False))
    assert set(no_users.kind) == {ITEM_ITEM}


def test_items_without_text_are_in_no_pair():
    inter = Interactions.from_records(
        [("u1", "a", 1.0, 1), ("u1", "b", 1.0, 2), ("u1", "c", 1.0, 3)]
    )
    pairs = build_pairs(inter, {"a": "alpha", "b": "", "c": "gamma"})
    assert _named(pairs) == [("alpha", "gamma", "u1", ITEM_ITEM)]


def test_bad_input_errors_name_the_field(tiny_bert_dir):
    inter = Interactions.from_records([("u1", "a", 1.0), ("u1", "b", 1.0)])
    with pytest.raises(TypeError, match="`interactions`"):
        build_pairs(inter.frame, {"a": "x"})
    with pytest.raises(TypeError, match="`item_texts`"):
        build_pairs(inter, ["x", "y"])
    with pytest.raises(ValueError, match=r"`user_texts`\['u1'\]"):
        build_pairs(inter, {"a": "x"}, {"u1": 3})
    for field, value in [("batch_pairs", 1), ("temperature", 0.0), ("steps", 0), ("window", 1.5)]:
        with pytest.raises(ValueError, match=f"`{field}`"):
            ContrastiveConfig(**{field: value})
    with pytest.raises(ValueError, match="`max_seconds`"):
        ContrastiveConfig(max_seconds=-1)
    encoder = TextEncoder(str(tiny_bert_dir), max_length=16)
    one = build_pairs(inter, {"a": "alpha", "b": "beta"})
    with pytest.raises(ValueError, match="`pairs` holds 1 pair"):
        train_contrastive(encoder, one, strategy=strategy_config("full"))
    pairs = build_pairs(_group_interactions(), ITEMS)
    with pytest.raises(ValueError, match="no trainable parameter"):
        train_contrastive(encoder, pairs, strategy=strategy_config("frozen"))
    with pytest.raises(TypeError, match="`pairs`"):
        train_contrastive(encoder, [(0, 1)], strategy=strategy_config("full"))


# ------------------------------------------------------------------ loss


def test_in_batch_loss_masks_columns_that_hold_the_target_text():
    anchors = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=1
    )
    positives = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.2], [0.3, 1.0], [1.0, 0.2]]), dim=1
    )
    a_rows, p_rows = np.array([0, 1, 2]), np.array([3, 4, 3])  # pairs 0 and 2 share a positive
    got = in_batch_loss(anchors, positives, a_rows, p_rows, temperature=0.5, symmetric=False)
    logits = (anchors @ positives.T / 0.5).numpy()
    expected = np.mean(
        [
            -logits[0, 0] + math.log(math.exp(logits[0, 0]) + math.exp(logits[0, 1])),
            -logits[1, 1] + math.log(np.exp(logits[1]).sum()),
            -logits[2, 2] + math.log(math.exp(logits[2, 1]) + math.exp(logits[2, 2])),
        ]
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)
    both = in_batch_loss(anchors, positives, a_rows, p_rows, temperature=0.5, symmetric=True)
    assert float(both) != pytest.approx(float(got))


# ------------------------------------------------------------------ training


def _train(tiny_bert_dir, **options):
    encoder = TextEncoder(str(tiny_bert_dir), max_length=16)
    config = ContrastiveConfig(**{"steps": 40, "batch_pairs": 8, "lr": 1e-3, **options})
    pairs = build_pairs(_group_interactions(), ITEMS, config=config)
    before = _gap(encoder)
    result = train_contrastive(encoder, pairs, config, strategy_config("full"), seed=0)
    return encoder, result, before


def test_training_pulls_co_engaged_texts_together_deterministically(tiny_bert_dir):
    encoder, result, before = _train(tiny_bert_dir)
    after = _gap(encoder)
    assert abs(before) < 0.1 and after > before + 0.3
    assert result.steps == 40 and not result.stopped_by_time
    assert np.mean(result.losses[-5:]) < 0.5 * np.mean(result.losses[:5])
    assert not encoder.training
    again, repeat, _ = _train(tiny_bert_dir)
    assert repeat.losses == result.losses
    texts = list(ITEMS.values())
    np.testing.assert_array_equal(again.encode(texts), encoder.encode(texts))


def test_each_step_encodes_every_distinct_text_once(tiny_bert_dir, monkeypatch):
    encoder = TextEncoder(str(tiny_bert_dir), max_length=32)
    seen: list[list[str]] = []
    tokenize = encoder.tokenize

    def spy(texts):
        seen.append(list(texts))
        return tokenize(texts)

    monkeypatch.setattr(encoder, "tokenize", spy)
    pairs = build_pairs(_group_interactions(), ITEMS)
    config = ContrastiveConfig(steps=3, batch_pairs=12, max_length=8)
    train_contrastive(encoder, pairs, config, strategy_config("full"))
    assert len(seen) == 3 and all(len(batch) == len(set(batch)) for batch in seen)
    assert max(len(batch) for batch in seen) <= 12  # 12 pairs over 12 items: texts shared
    assert encoder.max_length == 32  # the training length is restored


def test_the_wall_time_budget_stops_training(tiny_bert_dir):
    _, result, _ = _train(tiny_bert_dir, max_seconds=1e-6)
    assert result.steps == 1 and result.stopped_by_time


def test_a_strategy_adapts_only_its_parameters(tiny_bert_dir):
    encoder = TextEncoder(str(tiny_bert_dir), max_length=16)
    embeddings = encoder.model.embeddings.word_embeddings.weight.detach().clone()
    pairs = build_pairs(_group_interactions(), ITEMS)
    config = ContrastiveConfig(steps=3, batch_pairs=8, lr=1e-3)
    train_contrastive(encoder, pairs, config, strategy_config("top_k", k=1))
    assert torch.equal(encoder.model.embeddings.word_embeddings.weight, embeddings)
    assert encoder.weights_changed()
