import numpy as np
import pytest

from dayzero.evaluate.exposure import exposure_audit, gini, miscalibration


def test_gini_known_answers():
    assert gini([3, 3, 3, 3]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 12]) == pytest.approx(3 / 4)
    assert gini([0, 0, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="negative"):
        gini([-1, 2])


def test_miscalibration_zero_when_matched_and_positive_otherwise():
    hist = [["a"], ["b"]]
    assert miscalibration(hist, [["a"], ["b"]]) == pytest.approx(0.0)
    # all recommended items in genre a: q~ = (0.99 + 0.005, 0.005)
    expect = 0.5 * np.log(0.5 / (0.99 * 1.0 + 0.005)) + 0.5 * np.log(0.5 / 0.005)
    assert miscalibration(hist, [["a"], ["a"]]) == pytest.approx(expect)


def test_exposure_audit_hand_built_lists():
    catalogue = ["p", "q", "r", "n"]
    pop = {"p": 10, "q": 5, "r": 1}
    out = exposure_audit(
        top_k=[["p", "n"], ["p", "q"]],
        histories=[["p"], ["q", "r"]],
        catalogue=catalogue,
        popularity=pop,
        new_items=["n"],
        genres={"p": ["x"], "q": ["y"], "r": ["x"], "n": ["x", "y"]},
    )
    assert out["coverage"] == pytest.approx(3 / 4)
    assert out["new_item_share"][0] == pytest.approx(0.25)
    assert out["mean_popularity_recommended"][0] == pytest.approx((5 + 7.5) / 2)
    assert out["mean_popularity_catalogue"] == pytest.approx(4.0)
    assert out["gini_exposure"] == pytest.approx(gini([2, 1, 0, 1]))
    with pytest.raises(ValueError, match="not in the catalogue"):
        exposure_audit([["z"]], [["p"]], catalogue, pop)


def test_metric_by_group_separates_groups():
    from dayzero.evaluate.exposure import metric_by_group

    out = metric_by_group([1.0, 1.0, 0.0, 0.0, 0.0], ["F", "F", "M", "M", "M"])
    assert out["F"]["n"] == 2 and out["F"]["mean_ci"][0] == pytest.approx(1.0)
    assert out["M"]["n"] == 3 and out["M"]["mean_ci"][0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="groups"):
        metric_by_group([1.0], ["F", "M"])
