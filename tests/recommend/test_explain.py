import numpy as np
import pytest

from dayzero.recommend.explain import explain_history
from dayzero.recommend.servable import VectorServable


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
