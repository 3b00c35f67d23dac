"""The few-shot preference classifier on a synthetic task whose answer is known.

Titles are "Good n (year)" or "Bad n (year)"; a user likes a movie with probability
``sigmoid(logit(propensity) + 1.5 * (+1 good / -1 bad))``. The like rate in the history reveals the
propensity and the title's group reveals the item effect, which a text encoder that separates
the two groups (here a fixed fake encoder; the tiny random BERT for the real code path) exposes.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest

from dayzero.recommend.preference import PreferenceClassifier, PreferenceConfig, title_year
from dayzero.risk.metrics import roc_auc

TITLES = [f"{kind} {n} ({1950 + 3 * n})" for kind in ("Good", "Bad") for n in range(15)]


class GroupEncoder:
    """Unit vectors: one axis for good titles, one for bad, plus a little per-title noise."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, normalize=True):
        self.calls += 1
        rows = []
        for text in texts:
            noise = np.random.default_rng(zlib.crc32(text.encode())).normal(0, 0.2, 8)
            noise[0 if text.startswith("Good") else 1] += 1.0
            rows.append(noise / np.linalg.norm(noise))
        return np.asarray(rows, dtype=np.float32)


class NoEncoder:
    def encode(self, texts, normalize=True):
        raise AssertionError("use_text=False must not encode")


def _likes(title: str, propensity: float, rng: np.random.Generator) -> bool:
    effect = 1.5 if title.startswith("Good") else -1.5
    z = np.log(propensity / (1 - propensity)) + effect
    return bool(rng.random() < 1 / (1 + np.exp(-z)))


def make_task(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        propensity = rng.uniform(0.05, 0.95)

        history = rng.choice(TITLES, size=10, replace=False).tolist()
        marks = [_likes(t, propensity, rng) for t in history]
        target = str(rng.choice([t for t in TITLES if t not in history]))
        rows.append(
            {
                "liked": [t for t, m in zip(history, marks, strict=True) if m],
                "disliked": [t for t, m in zip(history, marks, strict=True) if not m],
                "target_title": target,
            }
        )
        labels.append(int(_likes(target, propensity, rng)))
    return pd.DataFrame(rows), np.asarray(labels)


@pytest.fixture(scope="module")
def task():
    return make_task(128, seed=0), make_task(600, seed=1)


def test_shapes_probabilities_and_predictions(task):
    (x, y), (x_test, _) = task
    model = PreferenceClassifier(encoder=GroupEncoder()).fit(x, y)
    proba = model.predict_proba(x_test)
    assert proba.shape == (600, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert set(model.predict(x_test).tolist()) <= {0, 1}
    assert model.weights_.shape == (5,)


def test_text_beats_like_rate_alone_which_beats_chance(task):
    (x, y), (x_test, y_test) = task
    with_text = PreferenceClassifier(encoder=GroupEncoder()).fit(x, y)
    without = PreferenceClassifier(PreferenceConfig(use_text=False), encoder=NoEncoder()).fit(x, y)
    auc_text = roc_auc(y_test, with_text.predict_proba(x_test)[:, 1])
    auc_rate = roc_auc(y_test, without.predict_proba(x_test)[:, 1])
    assert auc_rate > 0.6
    assert auc_text > auc_rate + 0.05
    assert auc_text > 0.8


def test_deterministic_and_encodes_each_title_once(task):
    (x, y), (x_test, _) = task
    encoder = GroupEncoder()
    first = PreferenceClassifier(encoder=encoder).fit(x, y)
    again = PreferenceClassifier(encoder=GroupEncoder()).fit(x, y)
    np.testing.assert_array_equal(first.predict_proba(x_test), again.predict_proba(x_test))
    calls = encoder.calls
    first.predict_proba(x_test)
    assert encoder.calls == calls  # every title is already known


def test_strong_penalty_keeps_the_like_rate_ranking(task):
    (x, y), (x_test, _) = task
    model = PreferenceClassifier(PreferenceConfig(l2=1e9), encoder=GroupEncoder()).fit(x, y)
    rate = x_test["liked"].map(len) / (x_test["liked"].map(len) + x_test["disliked"].map(len))
    assert roc_auc((rate > 0.5).astype(int), model.decision_function(x_test)) > 0.99


def test_runs_on_a_real_text_encoder(task, tiny_bert_dir):
    from dayzero.text.encoder import TextEncoder

    (x, y), (x_test, _) = task
    model = PreferenceClassifier(encoder=TextEncoder(tiny_bert_dir)).fit(x[:32], y[:32])
    assert model.predict_proba(x_test[:10]).shape == (10, 2)


def test_title_year():
    assert title_year("Heat (1995)") == 1995.0
    assert np.isnan(title_year("unknown"))


def test_bad_input_is_named(task):
    (x, y), _ = task
    model = PreferenceClassifier(encoder=GroupEncoder())
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict_proba(x)
    with pytest.raises(ValueError, match="target_title"):
        model.fit(x.drop(columns="target_title"), y)
    with pytest.raises(TypeError, match="DataFrame"):
        model.fit(x.to_dict("records"), y)
    with pytest.raises(ValueError, match="labels in"):
        model.fit(x, y[:-1])
    with pytest.raises(ValueError, match="empty history"):
        model.fit(
            pd.DataFrame({"liked": [[]], "disliked": [[]], "target_title": ["A (1990)"]}), [1]
        )
    with pytest.raises(ValueError, match="l2"):
        PreferenceConfig(l2=0)
