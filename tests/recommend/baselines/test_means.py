"""Known answers for the global mean, item mean and item mean + shrunk user bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.recommend.baselines.means import GlobalMean, ItemMean, ItemMeanUserBias

# item means: a = (5 + 3) / 2 = 4, b = (2 + 4 + 3) / 3 = 3; global mean = 17 / 5 = 3.4
RECORDS = [("u", "a", 5.0), ("u", "b", 2.0), ("v", "a", 3.0), ("v", "b", 4.0), ("w", "b", 3.0)]


@pytest.fixture
def data() -> Dataset:
    return Dataset(Interactions.from_records(RECORDS))


def test_global_mean_is_the_mean_of_all_values(data):
    model = GlobalMean().fit(data)
    np.testing.assert_allclose(model.predict(["u", "x"], ["a", "zz"]), [3.4, 3.4])
    model.partial_fit_users(Interactions.from_records([("x", "a", 1.0)]))
    np.testing.assert_allclose(model.predict(["u"], ["a"]), [18 / 6])


def test_item_mean_and_global_fallback(data):
    model = ItemMean().fit(data)
    pred = model.predict(["u", "u", "stranger", "stranger"], ["a", "b", "a", "new-item"])
    np.testing.assert_allclose(pred, [4.0, 3.0, 4.0, 3.4])
    history = Interactions.from_records([("u", "a", 1.0)])
    np.testing.assert_allclose(model.predict(["u"], ["a"], history=history), [4.0])


def test_user_bias_is_shrunk_mean_residual(data):
    model = ItemMeanUserBias(reg=2.0).fit(data)
    # u: residuals 5-4=1, 2-3=-1 -> 0 / (2+2); v: -1, +1 -> 0; w: 3-3 = 0
    np.testing.assert_allclose(model.predict(["u", "v"], ["a", "b"]), [4.0, 3.0])
    history = Interactions.from_records([("u", "a", 5.0), ("u", "new-item", 4.4)])
    # u + history: residuals 1, -1, 1, 4.4-3.4=1 -> 2 / (4 + 2) = 1/3
    np.testing.assert_allclose(
        model.predict(["u", "u"], ["b", "new-item"], history=history), [3 + 1 / 3, 3.4 + 1 / 3]
    )
    # unknown user: history alone; without history bias 0
    history = Interactions.from_records([("s", "a", 5.0), ("s", "b", 4.0)])
    np.testing.assert_allclose(model.predict(["s"], ["b"], history=history), [3 + 2 / 4])
    np.testing.assert_allclose(model.predict(["s"], ["b"]), [3.0])


def test_user_bias_prediction_is_clipped_to_training_range():
    data = Dataset(Interactions.from_records([("u", "a", 5.0), ("u", "b", 5.0), ("v", "a", 1.0)]))
    model = ItemMeanUserBias(reg=0.0).fit(data)
    history = Interactions.from_records([("u", "c", 5.0)] * 3)
    assert model.predict(["u"], ["b"], history=history)[0] == 5.0


def test_subclass_is_item_mean_with_user_bias(data):
    model = ItemMeanUserBias(reg=3.0)
    assert model.user_bias and model.get_params() == {"reg": 3.0}
    same = ItemMean(user_bias=True, reg=3.0).fit(data)
    np.testing.assert_array_equal(
        model.fit(data).predict(["u", "w"], ["b", "a"]), same.predict(["u", "w"], ["b", "a"])
    )


def test_partial_fit_items_updates_means(data):
    model = ItemMean().fit(data)
    new = Interactions.from_records([("u", "c", 2.0), ("v", "c", 4.0)])
    model.partial_fit_items(Entities.from_frame(_ids(["c"]), "id", {}), new)
    np.testing.assert_allclose(model.predict(["w"], ["c"]), [3.0])
    assert model.seen_["u"] == {"a", "b", "c"}


def test_negative_reg_is_rejected(data):
    with pytest.raises(ValueError, match="reg"):
        ItemMean(reg=-1.0).fit(data)


def _ids(ids):
    return pd.DataFrame({"id": ids})


@pytest.mark.slow
def test_item_mean_reproduces_the_melu_anchor(real_data):
    from dayzero.datasets.melu import load_ml1m_melu

    data = load_ml1m_melu(real_data)
    model = ItemMean().fit(data.dataset())
    assert len(data.dataset().interactions) == 585_366
    assert model.global_mean_ == pytest.approx(3.6148, abs=5e-5)
    expected = {
        "warm_up": 0.7687,
        "user_cold_testing": 0.7865,
        "item_cold_testing": 0.9580,
        "user_and_item_cold_testing": 0.9414,
    }
    for state, mae in expected.items():
        _, query = data.task_files(state)
        frame = query.frame
        error = np.abs(model.predict(frame["user"], frame["item"]) - frame["value"].to_numpy())
        per_user = frame.assign(error=error).groupby("user")["error"].mean()
        assert per_user.mean() == pytest.approx(mae, abs=5e-5), state
