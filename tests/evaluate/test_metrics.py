"""Known-answer tests for the rating, per-user ranking and top-K list metrics.

Every expected value is worked out by hand in the comment next to it; log2(3) = 1.5849625,
log2(5) = 2.3219281, log2(6) = 2.5849625, log2(7) = 2.8073549.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dayzero.evaluate import metrics as m

L3, L5, L6, L7 = 1.5849625007, 2.3219280949, 2.5849625007, 2.8073549221


# --- rating -------------------------------------------------------------------------------------


def test_mae_and_rmse_known_values():
    # errors 1, 0, 2: MAE 3/3; RMSE sqrt((1 + 0 + 4) / 3)
    assert m.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert m.rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))


def test_rating_metrics_reject_bad_input_naming_the_argument():
    with pytest.raises(ValueError, match=r"same length.*y_true has 2.*y_pred has 3"):
        m.mae([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        m.rmse([1, 2], [1, np.nan])
    with pytest.raises(ValueError, match="y_true is empty"):
        m.mae([], [])
    with pytest.raises(ValueError, match="y_true must be a 1-D array"):
        m.mae([[1, 2]], [[1, 2]])


# --- ranking one user's scored items -------------------------------------------------------------


def test_ndcg_at_k_wikipedia_example():
    # Relevances in ranked order 3, 2, 3, 0, 1, 2:
    # DCG = 3 + 2/L3 + 3/2 + 0 + 1/L6 + 2/L7 = 6.86113
    # IDCG (3, 3, 2, 2, 1, 0) = 3 + 3/L3 + 2/2 + 2/L5 + 1/L6 = 7.14100
    rel = [3, 2, 3, 0, 1, 2]
    score = [6, 5, 4, 3, 2, 1]
    dcg = 3 + 2 / L3 + 3 / 2 + 1 / L6 + 2 / L7
    idcg = 3 + 3 / L3 + 1 + 2 / L5 + 1 / L6
    assert m.ndcg_at_k(rel, score, k=6) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k(rel, score, k=6) == pytest.approx(0.96081, abs=1e-5)
    # k = 2: DCG = 3 + 2/L3, IDCG = 3 + 3/L3
    assert m.ndcg_at_k(rel, score, k=2) == pytest.approx((3 + 2 / L3) / (3 + 3 / L3))


def test_ndcg_at_k_ties_keep_input_order():
    # Equal scores: item 0 (relevance 1) stays first, so nDCG@1 = 1/3, not the flattering 1.
    assert m.ndcg_at_k([1, 3], [0.5, 0.5], k=1) == pytest.approx(1 / 3)
    assert m.ndcg_at_k([3, 1], [0.5, 0.5], k=1) == pytest.approx(1.0)


def test_ndcg_at_k_exponential_gain_and_edge_cases():
    # exp gain: ranked relevances 1, 3 -> (2^1-1) + (2^3-1)/L3; ideal 7 + 1/L3
    assert m.ndcg_at_k([1, 3], [1.0, 0.0], k=2, gain="exp") == pytest.approx(
        (1 + 7 / L3) / (7 + 1 / L3)
    )
    # linear gain on the same list: (1 + 3/L3) / (3 + 1/L3)
    assert m.ndcg_at_k([1, 3], [1.0, 0.0], k=2) == pytest.approx((1 + 3 / L3) / (3 + 1 / L3))
    assert m.ndcg_at_k([0, 0], [1, 2], k=2) == 0.0
    assert m.ndcg_at_k([2, 1], [2, 1], k=10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        m.ndcg_at_k([1, 2], [1, 2], k=0)
    with pytest.raises(ValueError, match="gain must be"):
        m.ndcg_at_k([1, 2], [1, 2], k=1, gain="square")
    with pytest.raises(ValueError, match="y_true_relevance must be >= 0"):
        m.ndcg_at_k([-1, 2], [1, 2], k=1)


def test_metahin_ndcg_constant_prediction_is_about_point_eight():
    # Top 5 by true rating (stable): indices 0, 5, 1, 6, 2 -> kept in query order 0, 1, 2, 5, 6.
    # DCG of a constant 3.6 = 3.6 * (1 + 1/L3 + 1/2 + 1/L5 + 1/L6) = 10.61446
    # IDCG of the true ratings sorted (5, 5, 4, 4, 3) = 5 + 5/L3 + 4/2 + 4/L5 + 3/L6 = 13.03791
    y_true = [5, 4, 3, 2, 1, 5, 4, 3, 2, 1]
    expected = 3.6 * (1 + 1 / L3 + 0.5 + 1 / L5 + 1 / L6) / (5 + 5 / L3 + 2 + 4 / L5 + 3 / L6)
    value = m.metahin_ndcg_at_k(y_true, [3.6] * 10, k=5)
    assert value == pytest.approx(expected)
    assert value == pytest.approx(0.8141, abs=1e-4)


def test_metahin_ndcg_never_ranks_by_prediction_and_can_exceed_one():
    # Only the truly best item counts (5 -> predicted 2 or 4.9); the ranking metric sees item 1
    # (relevance 1) on top in both cases.
    assert m.metahin_ndcg_at_k([5, 1], [2.0, 3.0], k=1) == pytest.approx(2 / 5)
    assert m.metahin_ndcg_at_k([5, 1], [4.9, 5.0], k=1) == pytest.approx(4.9 / 5)
    assert m.ndcg_at_k([5, 1], [2.0, 3.0], k=1) == pytest.approx(1 / 5)
    assert m.metahin_ndcg_at_k([5, 1, 4], [10, 0, 8], k=2) == pytest.approx(2.0)


def test_metahin_ndcg_ties_in_truth_take_the_earlier_item():
    # True [5, 4, 4], k=2: items 0 and 1 (not 2). DCG of predictions (1, 2) = 1 + 2/L3;
    # IDCG (5, 4) = 5 + 4/L3.
    value = m.metahin_ndcg_at_k([5, 4, 4], [1, 2, 100], k=2)
    assert value == pytest.approx((1 + 2 / L3) / (5 + 4 / L3))
    # ties="numpy" keeps whatever MetaHIN's np.argsort(real)[::-1][:k] keeps on this machine
    kept = sorted(np.argsort(np.array([5.0, 4.0, 4.0]))[::-1][:2].tolist())
    value = m.metahin_ndcg_at_k([5, 4, 4], [1, 2, 100], k=2, ties="numpy")
    dcg_kept = 1 + [2, 100][kept[1] - 1] / L3
    assert value == pytest.approx(dcg_kept / (5 + 4 / L3))
    with pytest.raises(ValueError, match="ties must be"):
        m.metahin_ndcg_at_k([5, 4], [1, 2], k=1, ties="middle")


# --- top-K lists ----------------------------------------------------------------------------------

RECOMMENDED = ["a", "b", "c", "d", "e"]
RELEVANT = {"b", "e", "z"}


def test_top_k_metrics_at_three():
    # top 3 = a, b, c; one hit (b) at rank 2, three relevant items.
    assert m.recall_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(1 / 3)
    assert m.precision_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(1 / 3)
    assert m.hit_rate_at_k(RECOMMENDED, RELEVANT, 3) == 1.0
    assert m.mrr(RECOMMENDED, RELEVANT, 3) == pytest.approx(1 / 2)
    # AP@3 = (1/2) / min(3, 3)
    assert m.average_precision_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(1 / 6)
    # DCG = 1/L3; IDCG = 1 + 1/L3 + 1/2
    assert m.ndcg_at_k_list(RECOMMENDED, RELEVANT, 3) == pytest.approx(
        (1 / L3) / (1 + 1 / L3 + 0.5)
    )


def test_top_k_metrics_at_five():
    # hits b (rank 2) and e (rank 5)
    assert m.recall_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert m.precision_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx(2 / 5)
    # AP@5 = (1/2 + 2/5) / 3
    assert m.average_precision_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx(0.3)
    # DCG = 1/L3 + 1/L6
    expected = (1 / L3 + 1 / L6) / (1 + 1 / L3 + 0.5)
    assert m.ndcg_at_k_list(RECOMMENDED, RELEVANT, 5) == pytest.approx(expected)


def test_top_k_misses_short_lists_and_mrr_without_cutoff():
    assert m.hit_rate_at_k(RECOMMENDED, RELEVANT, 1) == 0.0
    assert m.mrr(RECOMMENDED, {"e"}) == pytest.approx(1 / 5)
    assert m.mrr(RECOMMENDED, {"e"}, k=4) == 0.0
    # one recommendation, k=5: precision counts the four empty slots as misses
    assert m.precision_at_k(["b"], RELEVANT, 5) == pytest.approx(1 / 5)
    assert m.recall_at_k([], RELEVANT, 5) == 0.0
    # numpy arrays of ids work like lists
    assert m.recall_at_k(np.array([3, 1, 2]), {1}, 2) == 1.0


def test_ndcg_list_graded_gains():
    # gains b=3, e=1; top 2 = a, b -> DCG = 3/L3; IDCG = 3 + 1/L3
    assert m.ndcg_at_k_list(RECOMMENDED, {"b": 3.0, "e": 1.0}, 2) == pytest.approx(
        (3 / L3) / (3 + 1 / L3)
    )
    assert m.ndcg_at_k_list(RECOMMENDED, {"b": 0.0}, 2) == 0.0
    with pytest.raises(ValueError, match="gains must be"):
        m.ndcg_at_k_list(RECOMMENDED, {"b": -1.0}, 2)


def test_map_and_coverage():
    # AP: user 1 = 1/1; user 2 = (1/2) / 1
    assert m.mean_average_precision([["a"], ["x", "b"]], [{"a"}, {"b"}], k=2) == pytest.approx(0.75)
    assert m.coverage([["a", "b"], ["b", "c"]], n_items=6) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n_items is 2"):
        m.coverage([["a", "b"], ["c"]], n_items=2)
    with pytest.raises(ValueError, match="2 users but relevant_lists has 1"):
        m.mean_average_precision([["a"], ["b"]], [{"a"}], k=1)


def test_top_k_bad_input():
    with pytest.raises(ValueError, match="lists 'a' twice"):
        m.recall_at_k(["a", "b", "a"], {"a"}, 3)
    with pytest.raises(ValueError, match="relevant_ids is empty"):
        m.precision_at_k(["a"], set(), 1)
    with pytest.raises(ValueError, match="missing id"):
        m.hit_rate_at_k(["a", None], {"a"}, 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        m.recall_at_k(["a"], {"a"}, 0)


def test_reexports_cover_the_classification_and_interval_metrics():
    for name in m.__all__:
        assert callable(getattr(m, name)), name


# --- the ANCHORS table (measured with the anchors' code), reproduced on the real files --------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # ANCHORS.md section 1, "item mean" rows: MAE, RMSE, nDCG@5 standard, nDCG@5 MetaHIN
        ("warm_up", (0.7687, 0.9243, 0.9016, 0.8580)),
        ("user_cold_testing", (0.7865, 0.9422, 0.9001, 0.8435)),
        ("item_cold_testing", (0.9580, 1.1149, 0.7960, 0.8250)),
        ("user_and_item_cold_testing", (0.9414, 1.0942, 0.8075, 0.8235)),
    ],
)
def test_item_mean_baseline_reproduces_anchor_table(state, expected):
    import json
    import os
    from pathlib import Path

    root = Path(os.environ.get("DAYZERO_DATA", "/nonexistent")) / "ml-1m-melu"
    if not (root / "tasks" / state).is_dir():
        pytest.skip("set DAYZERO_DATA to the folder holding ml-1m-melu/ to run this test")
    train = json.loads((root / "meta_training.json").read_text())
    train_y = json.loads((root / "meta_training_y.json").read_text())
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for user, movies in train.items():
        for movie, rating in zip(movies, train_y[user], strict=True):
            sums[movie] = sums.get(movie, 0.0) + rating
            counts[movie] = counts.get(movie, 0) + 1
    global_mean = sum(sums.values()) / sum(counts.values())
    query = json.loads((root / "tasks" / state / "query_u_movies.json").read_text())
    query_y = json.loads((root / "tasks" / state / "query_u_movies_y.json").read_text())
    per_task = []
    for user, movies in query.items():
        y = np.asarray(query_y[user], dtype=float)
        pred = np.array([sums[i] / counts[i] if i in counts else global_mean for i in movies])
        per_task.append(
            (
                m.mae(y, pred),
                m.rmse(y, pred),
                m.ndcg_at_k(y, pred, 5),
                m.metahin_ndcg_at_k(y, pred, 5, ties="numpy"),
            )
        )
    assert np.mean(per_task, axis=0) == pytest.approx(expected, abs=6e-5)
