"""The HTML evaluation report: self-contained page, every segment and model, references and the
not-informative mark, warm-up curve, fine-tuning, exposure; `dayzero evaluate --report`."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dayzero.cli.main import app
from dayzero.core.schema import Dataset, Entities, Interactions
from dayzero.core.split import SEGMENTS
from dayzero.evaluate.html_report import (
    CONSTANT,
    POPULARITY,
    beats,
    build_evaluation_report,
    fine_tune_on_support,
    warmup_curve,
    write_evaluation_report,
)
from dayzero.evaluate.protocols.splits import holdout_split, kshot_users_split
from dayzero.evaluate.runner import EvaluationResult, SegmentResult, evaluate_split
from dayzero.recommend.contract import make_recommender

runner = CliRunner(env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*(?!["']?data:)""", re.IGNORECASE)


def _ratings(n_users: int = 40, n_items: int = 30, per_user: int = 10, seed: int = 0):
    """Ratings driven by an item effect plus a user bias (the mean models have a signal)."""
    rng = np.random.default_rng(seed)
    item_effect = rng.normal(0, 1, n_items)
    user_bias = rng.normal(0, 0.7, n_users)
    rows = []
    for u in range(n_users):
        for n, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            value = np.clip(np.round(3 + item_effect[i] + user_bias[u]), 1, 5)
            rows.append((f"u{u}", f"i{i}", float(value), u * 100 + n))
    return pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])


def _run(split, names=("item-mean", "item-mean-user-bias")):
    models = [make_recommender(n) for n in names]
    results = [evaluate_split(m, split, task="rating", k=5, progress=False) for m in models]
    return results, models


def _segment(metrics, ci, users=10):
    return SegmentResult(segment="warm", users=users, query=users * 3, metrics=metrics, ci=ci)


def test_beats_is_direction_aware_and_needs_the_reference_outside_the_interval():
    assert beats(0.5, (0.4, 0.6), 0.8, lower_better=True)
    assert not beats(0.5, (0.4, 0.9), 0.8, lower_better=True)  # the constant is inside
    assert not beats(0.9, (0.85, 0.95), 0.8, lower_better=True)  # worse
    assert beats(0.95, (0.93, 0.97), 0.9, lower_better=False)
    assert not beats(0.95, (0.93, 0.97), 0.94, lower_better=False)
    assert beats(0.95, None, 0.94, lower_better=False) and not beats(0.94, None, 0.94, False)


def test_a_rating_metric_the_constant_matches_is_marked_not_informative(tmp_path):
    # Known answer: the model beats the constant on MAE (0.9 is outside [0.4, 0.6]) but not on
    # nDCG@5 (the constant's 0.95 is inside the model's [0.93, 0.97]).
    model_ci = {"mae": (0.4, 0.6), "ndcg@5": (0.93, 0.97)}
    constant_ci = {"mae": (0.8, 1.0), "ndcg@5": (0.94, 0.96)}
    warm = {"warm": _segment({"mae": 0.5, "ndcg@5": 0.95}, model_ci)}
    model = EvaluationResult("m", "holdout", "rating", warm)
    warm = {"warm": _segment({"mae": 0.9, "ndcg@5": 0.95}, constant_ci)}
    constant = EvaluationResult(CONSTANT, "holdout", "rating", warm)
    report = build_evaluation_report([model, constant])
    assert report.reference_source == {CONSTANT: "run"}
    assert report.informative["warm"]["mae"][0] is True
    ok, why = report.informative["warm"]["ndcg@5"]
    assert ok is False and "0.9500" in why
    document = json.loads(report.to_json(tmp_path / "r.json"))
    assert document["informative"]["warm"]["ndcg@5"]["informative"] is False
    assert json.loads((tmp_path / "r.json").read_text()) == document
    page = report.to_html(tmp_path / "r.html").read_text()
    headers = re.findall(r"<th[^>]*>(.*?)</th>", page)
    assert any(h.startswith("ndcg@5") and "not informative" in h for h in headers)
    assert not any(h.startswith("mae") and "not informative" in h for h in headers)
    ndcg_cell = re.search(r"<td class='flat'[^>]*>0\.9500", page)
    assert ndcg_cell is not None  # the model's nDCG cell carries the does-not-beat mark
    # Without a split nothing can be fitted: popularity is missing, and the page says why.
    assert POPULARITY not in report.references
    assert "popularity" in page and "no split was given" in page
    assert "needs the split and the fitted models" in page


def test_report_is_self_contained_and_has_every_segment_model_and_reference(tmp_path):
    split = holdout_split(Dataset(Interactions(_ratings())), seed=0)
    assert set(split.segments) == set(SEGMENTS)
    results, models = _run(split)
    path = write_evaluation_report(
        results, tmp_path / "sub" / "report.html", split, models, n_resamples=200
    )
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 2  # metrics by segment, exposure
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    for segment in SEGMENTS:
        assert f"<h3>{segment} " in page
    tables = page.split("<h3>")
    for segment in SEGMENTS:
        block = next(t for t in tables if t.startswith(f"{segment} "))
        for name in ("item-mean", "item-mean-user-bias", "constant (global mean)", "popularity"):
            assert f">{name}" in block, (segment, name)
    report = build_evaluation_report(results, split, models, n_resamples=200)
    # References are fitted on the same split: the constant's MAE is the training mean's.
    mean = split.train.interactions.values.mean()
    warm = split.segments["warm"].query.frame
    per_user = warm.assign(err=(warm["value"] - mean).abs()).groupby("user")["err"].mean()
    assert report.references[CONSTANT].segments["warm"].metrics["mae"] == pytest.approx(
        per_user.mean()
    )
    assert report.reference_source == {CONSTANT: "fitted", POPULARITY: "fitted"}
    # Holdout without support_k reveals nothing: no warm-up curve, and the page says so.
    assert report.warmup == {} and "reveals no interaction" in page
    # Exposure of every model and reference over the test users.
    users = len({u for s in split.segments.values() for u in s.query.users})
    for name in ("item-mean", "item-mean-user-bias", CONSTANT, POPULARITY):
        audit = report.exposure[name]
        assert audit["n_users"] == users and 0 < audit["coverage"] <= 1
    popular = report.exposure[POPULARITY]
    assert popular["mean_popularity_recommended"][0] > popular["mean_popularity_catalogue"]
    assert "new_item_share" in popular  # the held-out items are new


def test_warmup_curve_reveals_0_to_k_on_the_same_users_and_ends_at_the_run():
    split = kshot_users_split(Dataset(Interactions(_ratings())), k=3, seed=1)
    results, models = _run(split, ("item-mean-user-bias",))
    curve = warmup_curve(models[0], split, "rating", 5)
    assert set(curve) == set(split.segments)
    points = curve["new_users"]
    assert [p["revealed"] for p in points] == [0, 1, 2, 3]
    assert len({p["users"] for p in points}) == 1
    full = results[0].segments["new_users"].metrics
    assert points[-1]["metrics"] == pytest.approx(full)
    # The user bias learns from what is revealed: the curve moves; at n = 0 it is the item mean.
    assert points[0]["metrics"]["mae"] != pytest.approx(points[-1]["metrics"]["mae"])
    item_mean = make_recommender("item-mean").fit(split.train)
    baseline = evaluate_split(item_mean, split, task="rating", k=5, fit=False, progress=False)
    assert points[0]["metrics"]["mae"] == pytest.approx(
        baseline.segments["new_users"].metrics["mae"]
    )


def test_kshot_report_has_the_curve_and_fine_tuning_before_vs_after(tmp_path):
    split = kshot_users_split(Dataset(Interactions(_ratings())), k=2, seed=0)
    results, models = _run(split)
    # "After" of item-mean: the model refitted with the new users' support (a known change).
    support = pd.concat([s.support.frame for s in split.segments.values()]).drop_duplicates()
    tuned = make_recommender("item-mean").fit(
        split.train.with_interactions(split.train.interactions.concat(Interactions(support)))
    )
    after = evaluate_split(tuned, split, task="rating", k=5, fit=False, progress=False)
    report = build_evaluation_report(results, split, models, fine_tuned=[after], n_resamples=200)
    assert set(report.warmup) == {"item-mean", "item-mean-user-bias", CONSTANT, POPULARITY}
    assert list(report.fine_tuning) == ["item-mean"]
    page = report.to_html(tmp_path / "k.html").read_text()
    assert "Warm-up curve" in page and "n=0" in page and "n=2" in page
    assert "Before vs after fine-tuning" in page
    before_mae = results[0].segments["new_users"].metrics["mae"]
    after_mae = after.segments["new_users"].metrics["mae"]
    assert f"{after_mae - before_mae:+.4f}" in page
    assert len(re.findall(r"data:image/png;base64,", page)) == 4
    with pytest.raises(ValueError, match="not models of the run"):
        build_evaluation_report(results, split, models, fine_tuned={"mf": after})


TINY_TWO_TOWER = {
    "towers__dim": 8,
    "towers__hidden": 32,
    "training__epochs": 5,
    "training__batch_users": 8,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


def _catalogue(n_items: int = 12) -> pd.DataFrame:
    genres = ["action|comedy", "drama", "comedy", "action|drama"]
    return pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"Film number {i}" for i in range(n_items)],
            "genres": [genres[i % 4] for i in range(n_items)],
        }
    )


def test_fine_tune_on_support_tunes_a_copy_and_scores_the_same_segments(tiny_bert_dir):
    items = Entities.from_frame(_catalogue(), "item_id")
    dataset = Dataset(Interactions(_ratings(n_users=24, n_items=12, per_user=6)), items=items)
    split = kshot_users_split(dataset, k=2, seed=0)
    model = make_recommender("two-tower", encoder=str(tiny_bert_dir), **TINY_TWO_TOWER)
    before = evaluate_split(model, split, task="rating", k=5, progress=False)
    known = len(model.user_map_)
    after = fine_tune_on_support(model, split, "rating", 5, n_resamples=200)
    assert len(model.user_map_) == known  # the model itself is not fine-tuned
    assert set(after.segments) == set(before.segments)
    revealed = pd.concat([s.support.frame for s in split.segments.values()]).drop_duplicates()
    assert after.params["fine_tune"]["revealed"] == len(revealed)
    assert after.params["fine_tune"]["replayed"] == 4 * len(revealed)
    assert after.segments["new_users"].users == before.segments["new_users"].users
    assert after.segments["new_users"].metrics != before.segments["new_users"].metrics
    # A model without fine_tune, or a split that reveals nothing: nothing to compare.
    item_mean = make_recommender("item-mean").fit(split.train)
    assert fine_tune_on_support(item_mean, split, "rating", 5) is None
    holdout = holdout_split(dataset, seed=0)
    assert fine_tune_on_support(model, holdout, "rating", 5) is None


def test_ranking_report_marks_a_model_that_ranks_like_the_constant(tmp_path):
    # Implicit data (every value 1.0): item-knn's rating scores all tie, so its lists are the
    # constant's (catalogue order) and every one of its cells carries the constant mark.
    frame = _ratings().assign(value=1.0)
    split = kshot_users_split(Dataset(Interactions(frame)), k=3, seed=0)
    models = [make_recommender("item-knn"), make_recommender("popularity")]
    results = [
        evaluate_split(m, split, task="ranking", k=5, n_resamples=200, progress=False)
        for m in models
    ]
    report = build_evaluation_report(
        results, split, models, warmup=False, exposure=False, n_resamples=200
    )
    assert report.reference_source == {CONSTANT: "fitted", POPULARITY: "run"}
    assert report.informative == {}  # "not informative" is about rating metrics only
    knn, constant = results[0].segments["new_users"], report.references[CONSTANT]
    assert knn.metrics == pytest.approx(constant.segments["new_users"].metrics)
    page = report.to_html(tmp_path / "rank.html").read_text()
    row = next(r for r in page.split("<tr") if r.startswith("><td class='l'>item-knn"))
    assert row.count("&asymp;c") == len(knn.metrics)
    assert "catalogue in id order" in page and "not asked for" in page


def test_results_of_two_protocols_are_refused():
    one = EvaluationResult("a", "holdout", "rating", {})
    other = EvaluationResult("b", "kshot_users", "rating", {})
    with pytest.raises(ValueError, match="one split at a time"):
        build_evaluation_report([one, other])
    with pytest.raises(ValueError, match="no results"):
        build_evaluation_report([])


def test_cli_evaluate_report_end_to_end_on_files(tmp_path):
    frame = _ratings(n_users=24, n_items=12, per_user=6)
    frame.rename(columns={"user": "user_id", "item": "item_id", "value": "rating"}).to_csv(
        tmp_path / "ratings.csv", index=False
    )
    _catalogue().to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            "evaluate", "--interactions", str(tmp_path / "ratings.csv"),
            "--items", str(tmp_path / "items.csv"), "--protocol", "kshot",
            "--model", "item-mean", "--model", "content-knn", "--report", str(out), "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output.replace("\n", "")
    page = out.read_text(encoding="utf-8")
    assert not EXTERNAL.search(page)
    for name in ("item-mean", "content-knn", "constant (global mean)", "popularity"):
        assert f">{name}" in page
    assert "<h3>new_users " in page and "Warm-up curve" in page and "n=3" in page
    assert "genre miscalibration" in page  # the genres column is a multi field


def test_cli_evaluate_fine_tune_puts_before_vs_after_in_the_report(tmp_path, tiny_bert_dir):
    frame = _ratings(n_users=24, n_items=12, per_user=6)
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    _catalogue().to_csv(tmp_path / "items.csv", index=False)
    settings = "\n".join(f"{k} = {v!r}" for k, v in TINY_TWO_TOWER.items())
    (tmp_path / "model.toml").write_text(
        f"[two-tower]\nencoder = {str(tiny_bert_dir)!r}\n{settings}\n"
    )
    args = [
        "evaluate", "--interactions", str(tmp_path / "ratings.csv"),
        "--items", str(tmp_path / "items.csv"), "--model", "two-tower", "--model", "item-mean",
        "--config", str(tmp_path / "model.toml"), "--fine-tune", "--quiet",
    ]  # fmt: skip
    out, data = tmp_path / "ft.html", tmp_path / "ft.json"
    result = runner.invoke(
        app, [*args, "--protocol", "kshot", "--report", str(out), "--output", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "after fine-tuning" in result.output
    assert "item-mean has no fine_tune" in result.output
    assert [r["model"] for r in json.loads(data.read_text())["fine_tuned"]] == ["two-tower"]
    page = out.read_text(encoding="utf-8")
    assert "Before vs after fine-tuning" in page and "&rarr;" in page
    refused = runner.invoke(app, [*args, "--protocol", "holdout"])
    assert refused.exit_code == 2 and "--fine-tune" in refused.output
    assert "kshot" in refused.output


def test_cli_evaluate_report_on_a_registered_dataset(tmp_path):
    out = tmp_path / "restaurant.html"
    result = runner.invoke(
        app,
        ["evaluate", "--dataset", "restaurant-uci", "--model", "item-mean", "--report", str(out),
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "restaurant-uci / holdout" in page
    assert "<h3>warm " in page and "<h3>new_users " in page
    # support_k = 2 on this experiment: new users reveal two ratings, so there is a curve.
    assert "n=2" in page
