"""HybridRecommender: blend weights chosen on a carve of the training data, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.recommend.contract import Recommender, make_recommender, seen_by_user
from dayzero.recommend.hybrid import (
    WARM,
    HybridRecommender,
    _Carve,
    _choose,
    _fit_parts,
    _fold_in,
    _Scores,
    _Task,
    _validation_scores,
    carve_validation,
    part_catalogue_scores,
    simplex_grid,
    standardiser,
)

ACTION = ["explosion", "chase", "gun", "hero", "fight", "car"]
ROMANCE = ["love", "kiss", "wedding", "heart", "couple", "rose"]
NOISE = [f"word{n}" for n in range(40)]
FAST = {
    "popularity": {"model": "popularity"},
    "item-knn": {
        "model": "item-knn",
        "params": {"scoring": "similarity", "centered": False, "k_neighbors": 20},
    },
    "content": {"model": "content-knn", "params": {"scoring": "similarity"}},
}


def two_groups(text_signal: bool, seed: int = 0, n_users: int = 60, n_items: int = 60) -> Dataset:
    """Two user groups, each interacting (implicit, timestamped) with ~half of its own group's
    items and a few of the other's. Items are released over time, so the newest ones (the
    carve's new items) have few interactions. With ``text_signal`` an item's text names its
    group; without, it is random words (only the interactions carry the group)."""
    rng = np.random.default_rng(seed)
    items = [f"i{n}" for n in range(n_items)]
    group = {item: n % 2 for n, item in enumerate(items)}  # releases alternate groups
    release = {item: n for n, item in enumerate(items)}
    rows = []
    for u in range(n_users):
        user, g = f"u{u}", u % 2
        for item in items:
            p = 0.5 if group[item] == g else 0.04
            if rng.random() < p:
                stamp = release[item] + int(rng.integers(0, 40))
                rows.append((user, item, 1.0, stamp))
    words = []
    for item in items:
        if text_signal:
            pool = ACTION if group[item] == 0 else ROMANCE
            words.append(" ".join(rng.choice(pool, size=3, replace=False)))
        else:
            words.append(" ".join(rng.choice(NOISE, size=3, replace=False)))
    frame = pd.DataFrame({"title": words}, index=pd.Index(items, name="item"))
    return Dataset(
        Interactions.from_records(rows), items=Entities(frame, {"title": "text"}, kind="item")
    )


def hybrid(**params) -> HybridRecommender:
    return HybridRecommender(parts=FAST, **params)


@pytest.fixture(scope="module")
def text_data() -> Dataset:
    return two_groups(text_signal=True)


@pytest.fixture(scope="module")
def text_model(text_data) -> HybridRecommender:
    return hybrid().fit(text_data)


def _bucket(model: HybridRecommender, segment: str) -> dict:
    """The bucket with the most validation tasks of ``segment``."""
    return max(model.blend_["buckets"], key=lambda b: b["tasks"].get(segment, 0))


def test_text_that_predicts_new_items_gets_weight_for_them(text_model, text_data):
    bucket = _bucket(text_model, WARM)
    assert bucket["new_item_share"] > 0
    # content-only items score at the floor of every collaborative part: the text must carry them
    assert bucket["weights"]["content"] > 0
    pooled = bucket["pooled_recall"]
    assert pooled["blend"]["new_items"] > pooled["popularity"]["new_items"]
    assert pooled["blend"]["new_items"] > pooled["item-knn"]["new_items"]
    # and the blend finds them: a new action item (fields only) reaches a warm action fan's top
    # 20 (the cut-off the blend is chosen for), the new romance item does not
    fresh = Entities(
        pd.DataFrame(
            {"title": ["explosion chase hero", "love wedding rose"]},
            index=pd.Index(["new-action", "new-romance"], name="item"),
        ),
        {"title": "text"},
    )
    model = clone(text_model).fit(text_data).partial_fit_items(fresh)
    assert set(model.content_only_items()) == {"new-action", "new-romance"}
    fan, other = "u0", "u1"  # group 0 (action) and group 1 (romance)
    ids, _ = model.recommend(fan, k=20)
    assert "new-action" in ids and "new-romance" not in ids
    ids, _ = model.recommend(other, k=20)
    assert "new-romance" in ids and "new-action" not in ids


def test_collaborative_signal_gets_collaborative_weight():
    model = hybrid().fit(two_groups(text_signal=False, seed=1))
    bucket = _bucket(model, WARM)
    assert bucket["tasks"][WARM] > 0
    weights = bucket["weights"]
    assert weights["item-knn"] + weights["popularity"] >= 0.75, weights
    assert weights["item-knn"] > weights["content"], weights
    # the random-word text cannot find the new items; the offset is not raised for them
    assert bucket["part_recall"]["item-knn"] > bucket["part_recall"]["content"]


def test_on_the_carve_the_blend_is_never_below_its_best_part(text_model):
    chosen = [b for b in text_model.blend_["buckets"] if b["source"] == "validation"]
    assert chosen
    for bucket in chosen:
        assert set(bucket["part_recall"]) == set(FAST)
        assert bucket["validation_recall"] >= max(bucket["part_recall"].values())
    # and strictly better somewhere: text and interactions carry different signal
    assert any(b["validation_recall"] > max(b["part_recall"].values()) for b in chosen)
    text = text_model.summary()
    assert "content" in text and "10+" in text and "validation" in text


def test_small_buckets_take_the_choice_over_every_bucket(text_data, text_model):
    model = hybrid(min_bucket_tasks=10_000).fit(text_data)
    assert all(
        b["source"].endswith("the choice over every bucket") for b in model.blend_["buckets"]
    )
    assert (model.weights_ == model.weights_[0]).all() and len(set(model.offsets_)) == 1
    # the buckets with enough tasks choose for themselves
    counts = [sum(b["tasks"].values()) for b in text_model.blend_["buckets"]]
    sources = [b["source"] for b in text_model.blend_["buckets"]]
    assert all((s == "validation") == (n >= 30) for s, n in zip(sources, counts, strict=True))


def test_a_one_part_hybrid_ranks_as_the_part(text_data):
    part = make_recommender("item-knn", scoring="similarity", centered=False, k_neighbors=20)
    part.fit(text_data)
    model = HybridRecommender(parts={"knn": FAST["item-knn"]}).fit(text_data)
    np.testing.assert_array_equal(model.weights_, np.ones((4, 1)))
    for user in ("u0", "u1", "u7"):
        scores = part.rank_scores([user] * 60, [f"i{n}" for n in range(60)])
        blended = model.rank_scores([user] * 60, [f"i{n}" for n in range(60)])
        # a z-score is increasing: the same order, ties included
        np.testing.assert_array_equal(
            np.argsort(-scores, kind="stable"), np.argsort(-blended, kind="stable")
        )


def test_the_carve_is_time_aware(text_data):
    carve = carve_validation(text_data, threshold=None, reveal=[0, 1, 3, 10], seed=0)
    frame = text_data.interactions.frame.sort_values("timestamp", kind="stable")
    first_item = frame.drop_duplicates("item")["item"].tolist()
    first_user = frame.drop_duplicates("user")["user"].tolist()
    assert set(carve.new_item_ids) == set(first_item[-len(carve.new_item_ids) :])
    assert len(carve.new_item_ids) == 6  # 10 % of 60
    train = carve.train.interactions.frame
    assert not set(train["item"]) & set(carve.new_item_ids)
    new_users = set(first_user[-6:])  # 10 % of 60, the latest arrivals
    assert not set(train["user"]) & new_users
    assert carve.new_users is None  # no user table to fold in
    assert new_users <= {t.user for t in carve.tasks if t.segment == "new users"}
    # a warm user's targets are their latest interactions, new items among them; new items
    # before that tail are no targets (they would inflate the new items' share)
    warm = [t for t in carve.tasks if t.segment == WARM]
    assert any(t.targets & set(carve.new_item_ids) for t in warm)
    for task in warm:
        theirs = frame[frame["user"] == task.user]
        tail = theirs.iloc[len(theirs) - max(1, round(0.2 * len(theirs))) :]
        assert task.targets == set(tail["item"]) - set(
            train.loc[train["user"] == task.user, "item"]
        )
    # new users reveal their first k: the history of k=3 is their three earliest known items
    task = next(t for t in carve.tasks if t.segment == "new users" and t.length == 3)
    theirs = frame[(frame["user"] == task.user) & ~frame["item"].isin(carve.new_item_ids)]
    assert task.history.frame["item"].tolist() == theirs["item"].tolist()[:3]
    assert carve.new_items is not None and set(carve.new_items.ids) == set(carve.new_item_ids)


WITH_ALS = {**FAST, "als": {"model": "implicit-als", "params": {"factors": 8, "iterations": 5}}}


@pytest.mark.parametrize("parts", [FAST, WITH_ALS], ids=["fast", "with-als"])
def test_save_load_gives_identical_scores(parts, tmp_path):
    model = HybridRecommender(parts=parts).fit(two_groups(text_signal=True))
    fresh = Entities(
        pd.DataFrame({"title": ["kiss heart"]}, index=pd.Index(["late"], name="item")),
        {"title": "text"},
    )
    model.partial_fit_items(fresh)
    model.partial_fit_users(
        Interactions.from_records([("newbie", "i2", 1.0), ("newbie", "i4", 1.0)])
    )
    folder = model.save(tmp_path / "hybrid")
    assert sorted(p.name for p in (folder / "parts").iterdir()) == sorted(parts)
    assert not [p for p in folder.rglob("*") if p.suffix in {".pkl", ".pickle", ".pt", ".bin"}]
    loaded = Recommender.load(folder)
    assert isinstance(loaded, HybridRecommender) and loaded.blend_ == model.blend_
    users = ["u0", "u1", "newbie", "stranger"]
    items = ["i0", "i1", "late", "i59", "nowhere"]
    pairs_u = [u for u in users for _ in items]
    pairs_i = [i for _ in users for i in items]
    history = Interactions.from_records([("stranger", "i3", 1.0)])
    np.testing.assert_array_equal(
        loaded.rank_scores(pairs_u, pairs_i, history), model.rank_scores(pairs_u, pairs_i, history)
    )
    for user in users:
        a, sa = model.recommend(user, k=10, history=history)
        b, sb = loaded.recommend(user, k=10, history=history)
        assert a == b
        np.testing.assert_array_equal(sa, sb)
    assert loaded.content_only_items() == ["late"]
    assert loaded.summary() == model.summary()


def test_content_only_until_interactions_arrive(text_model):
    model = clone(text_model).fit(two_groups(text_signal=True))
    fresh = Entities(
        pd.DataFrame({"title": ["gun car"]}, index=pd.Index(["brand-new"], name="item")),
        {"title": "text"},
    )
    model.partial_fit_items(fresh)
    assert model.content_only_items() == ["brand-new"]
    model.partial_fit_users(Interactions.from_records([("u0", "brand-new", 1.0)]))
    assert model.content_only_items() == []
    assert "brand-new" in model.seen_items("u0")


def test_simplex_grid_has_every_vertex_first():
    grid = simplex_grid(3, 4)
    assert len(grid) == 15 and np.allclose(grid.sum(axis=1), 1.0)
    np.testing.assert_array_equal(grid[:3], np.eye(3))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"parts": {"x": {"model": "no-such-model"}}}, r"parts\['x'\]\['model'\]"),
        ({"parts": {"x": {"model": "hybrid"}}}, r"parts\['x'\]\['model'\]"),
        ({"parts": {"x": {"model": "popularity", "weights": 1}}}, r"parts\['x'\] has unknown"),
        ({"parts": {"a/b": {"model": "popularity"}}}, "part name"),
        ({"parts": {}}, "parts must be"),
        ({"buckets": [1, 3]}, "buckets"),
        ({"buckets": [0, 3, 3]}, "buckets"),
        ({"offsets": [1.0, 2.0]}, "offsets"),
        ({"grid_points": 0}, "grid_points"),
        ({"new_item_share": 1.5}, "new_item_share"),
        ({"validation_users": 0}, "validation_users"),
        ({"min_bucket_tasks": 0}, "min_bucket_tasks"),
        ({"threshold": float("nan")}, "threshold"),
    ],
)
def test_bad_params_name_the_field(params, field, text_data):
    model = HybridRecommender(**{"parts": FAST, **params})
    with pytest.raises(ValueError, match=field):
        model.fit(text_data)


def _carve_scores(data: Dataset, seed: int = 0):
    """The validation lists of the FAST parts on a carve of ``data``, with what they came from."""
    carve = carve_validation(data, threshold=None, reveal=[0, 1, 3, 10], seed=seed)
    parts = _fit_parts(HybridRecommender(parts=FAST)._build_parts(), carve.train)
    _fold_in(parts, carve.new_items, carve.new_users)
    grid = simplex_grid(len(FAST), 4)
    offsets = [0.0, -0.5, 1.0]
    return carve, parts, grid, offsets, _validation_scores(parts, carve, grid, offsets, seed)


def test_merged_lists_equal_a_ranking_of_the_whole_catalogue(text_data):
    carve, parts, grid, offsets, scores = _carve_scores(text_data)
    catalogue = IdMap()
    for part in parts.values():
        catalogue.add(part.item_map_.ids)
    ids = catalogue.ids
    interacted = set(carve.train.interactions.items)
    content_only = np.array([i not in interacted for i in ids])
    seen = seen_by_user(carve.train.interactions)
    rng = np.random.default_rng(0)  # the jitter of _validation_scores, task by task
    checked = 0
    for row, task in enumerate(carve.tasks):
        jitter = 1e-9 * rng.random(len(ids))
        if row % 7:
            continue
        every = np.stack(
            [
                part_catalogue_scores(
                    p, p.item_map_.to_internal(ids, missing=-1), ids, task.user, task.history
                )
                for p in parts.values()
            ]
        )
        mean, scale = standardiser(every)
        z = (every - mean) / scale
        history = set(seen.get(task.user, ())) if task.history is None else set(task.history.items)
        for own in (None, 2, 5):
            recall, fresh = scores.merged([row], own)
            for n, offset in enumerate(offsets):
                for g in range(len(grid)):
                    new_weights = grid[g] if own is None else grid[own]
                    blended = np.where(content_only, new_weights @ z + offset, grid[g] @ z)
                    blended = blended + jitter
                    blended[[catalogue.to_internal([i])[0] for i in history]] = -np.inf
                    top = set(np.array(ids, dtype=object)[np.argsort(-blended)[:20]])
                    found = top & task.targets
                    column = n * len(grid) + g
                    assert recall[0, column] == pytest.approx(len(found) / len(task.targets))
                    assert fresh[0, column] == sum(i not in interacted for i in found)
                    checked += 1
    assert checked > 100


def test_content_only_items_get_weights_of_their_own_where_they_order_them_better():
    # known answer on hand-made validation lists: two tasks, two parts (grid: the vertices and
    # the midpoint); part "a" finds the known targets, part "b" orders the content-only ones
    n, k = 2, 20
    grid = simplex_grid(2, 2)  # a, b, (0.5, 0.5)
    known_top = np.tile(np.linspace(3.0, 1.0, k), (n, 3, 1))
    known_hit = np.zeros((n, 3, k), dtype=bool)
    known_hit[:, 0, :5] = True  # a's known list: 5 targets on top
    known_hit[:, 2, :3] = True
    new_top = np.tile(np.linspace(0.5, -1.0, k), (n, 3, 1))
    new_hit = np.zeros((n, 3, k), dtype=bool)
    new_hit[:, 1, :2] = True  # only b's ordering puts the 2 new targets in the top 20
    scores = _Scores(
        known_top, known_hit, new_top, new_hit, np.full(n, 2.0), np.full(n, 7.0), np.array([0.0])
    )
    tasks = [_Task(WARM, f"u{i}", None, set(), 30) for i in range(n)]
    carve = _Carve(Dataset(Interactions.empty()), None, [], None, tasks, {})
    args = (scores, carve, [0], grid, [0.0], ["a", "b"], 1)
    weights, own, offsets, blend = _choose(*args, own=True)
    np.testing.assert_array_equal(weights, [[1.0, 0.0]])  # a still ranks the known items
    np.testing.assert_array_equal(own, [[0.0, 1.0]])  # b orders the content-only ones
    entry = blend["buckets"][0]["content_only"]
    assert entry["recall"] == 1.0 and entry["shared_recall"] == 0.0
    shared_weights, shared_own, _, _ = _choose(*args, own=False)
    np.testing.assert_array_equal(shared_own, shared_weights)
    np.testing.assert_array_equal(shared_weights, [[1.0, 0.0]])
    # the merged list: 20 slots, the new items (scores <= 0.5) below every known one (>= 1)
    assert blend["buckets"][0]["validation_recall"] == pytest.approx(5 / 7)
    # with an offset that lifts the new items above the known ones, b's ordering finds all 7
    scores.offsets = np.array([0.0, 3.0])
    weights, own, offsets, blend = _choose(
        scores, carve, [0], grid, [0.0, 3.0], ["a", "b"], 1, own=True
    )
    assert offsets[0] == 3.0 and blend["buckets"][0]["validation_recall"] == pytest.approx(1.0)


def test_new_item_weights_shared_orders_new_items_by_the_blend(text_data):
    model = hybrid(new_item_weights="shared").fit(text_data)
    np.testing.assert_array_equal(model.content_only_weights_, model.weights_)
    with pytest.raises(ValueError, match="new_item_weights"):
        hybrid(new_item_weights="mine").fit(text_data)


def test_small_data_holds_out_enough_new_users(text_data):
    # 60 users: a tenth is 6 new users, too few to choose a bucket's blend by; at least
    # min_new_users are held out, a quarter of the users at most
    plain = carve_validation(text_data, threshold=None, reveal=[0, 1], seed=0)
    small = carve_validation(text_data, threshold=None, reveal=[0, 1], seed=0, min_new_users=10)
    capped = carve_validation(text_data, threshold=None, reveal=[0, 1], seed=0, min_new_users=30)
    assert (plain.counts["new_users"], small.counts["new_users"]) == (6, 10)
    assert capped.counts["new_users"] == 15
    model = hybrid().fit(text_data)  # min_bucket_tasks 30: a quarter of 60 users
    assert model.blend_["carve"]["new_users"] == 15


def test_own_weights_are_refused_where_they_cost_the_whole_list():
    # part a puts one new target first among the content-only items, part b finds both new
    # targets but at places 10 and 11: b is better among the content-only items (2 of 2 vs 1
    # of 2 in the top 20); with the offset that lifts the top 3 new items into the list, a
    # finds 6 of 7 targets over the whole catalogue and b 5 of 7: b is refused
    n, k = 2, 20
    grid = simplex_grid(2, 2)
    known_top = np.tile(np.linspace(3.0, 1.0, k), (n, 3, 1))
    known_hit = np.zeros((n, 3, k), dtype=bool)
    known_hit[:, :, :5] = True
    new_top = np.tile(np.linspace(0.5, -1.0, k), (n, 3, 1))
    new_hit = np.zeros((n, 3, k), dtype=bool)
    new_hit[:, 0, 0] = True
    new_hit[:, 1, [9, 10]] = True
    new_hit[:, 2, 0] = True
    offsets = [0.0, 0.8]
    scores = _Scores(
        known_top, known_hit, new_top, new_hit, np.full(n, 2.0), np.full(n, 7.0), np.array(offsets)
    )
    carve = _Carve(Dataset(Interactions.empty()), None, [], None, [], {})
    carve.tasks = [_Task(WARM, f"u{i}", None, set(), 30) for i in range(n)]
    weights, own, chosen, blend = _choose(scores, carve, [0], grid, offsets, ["a", "b"], 1)
    np.testing.assert_array_equal(weights, [[1.0, 0.0]])
    np.testing.assert_array_equal(own, weights)
    assert chosen[0] == 0.8 and blend["buckets"][0]["validation_recall"] == pytest.approx(6 / 7)
    entry = blend["buckets"][0]["content_only"]
    assert entry["source"].startswith("every point that orders them better loses")
    assert entry["shared_recall"] == 0.5 and entry["part_recall"]["b"] == 1.0


def test_release_dates_decide_the_carves_new_items():
    data = two_groups(text_signal=True)
    items = list(data.items.ids)
    # released in reverse of the order the interactions met them; two undated items
    released = pd.Series(
        pd.date_range("2001-01-01", periods=len(items), freq="D")[::-1], index=items
    ).astype(object)
    released[["i0", "i1"]] = None
    frame = data.items.frame.assign(released=released)
    dated = Dataset(data.interactions, items=Entities(frame, {"title": "text"}, kind="item"))
    carve = carve_validation(dated, None, [0, 1], seed=0, release_field="released")
    # the latest released: i2, i3, ... (i0, i1 are undated, never new)
    assert carve.new_item_ids == ["i7", "i6", "i5", "i4", "i3", "i2"]
    plain = carve_validation(dated, None, [0, 1], seed=0)
    assert set(plain.new_item_ids) != set(carve.new_item_ids)
    model = hybrid(release_field="released").fit(dated)
    assert model.blend_["carve"]["new_items"] == 6
    with pytest.raises(ValueError, match="release_field='launch'"):
        hybrid(release_field="launch").fit(dated)


def test_content_only_items_are_scored_by_their_own_weights(text_model, text_data):
    model = clone(text_model).fit(text_data)
    fresh = Entities(
        pd.DataFrame({"title": ["explosion chase hero"]}, index=pd.Index(["new"], name="item")),
        {"title": "text"},
    )
    model.partial_fit_items(fresh)
    # distinct weights for known and content-only items, by hand
    model.weights_[:] = [0.5, 0.25, 0.25]
    model.content_only_weights_[:] = [0.0, 0.0, 1.0]
    model.offsets_[:] = 0.7
    ids = model.item_map_.ids
    for user in ("u0", "u1"):
        every = np.stack(
            [
                part_catalogue_scores(p, p.item_map_.to_internal(ids, missing=-1), ids, user, None)
                for p in model.parts_.values()
            ]
        )
        mean, scale = standardiser(every)
        z = (every - mean) / scale
        expected = np.array([0.5, 0.25, 0.25]) @ z
        new = ids.index("new")
        expected[new] = z[2, new] + 0.7
        np.testing.assert_allclose(model.rank_scores([user] * len(ids), ids), expected)
        # an id the hybrid does not know: the parts' fallbacks by the known items' weights,
        # never lifted by the new-item offset
        outside = np.array([p.rank_scores([user], ["nowhere"]) for p in model.parts_.values()])
        unknown = np.array([0.5, 0.25, 0.25]) @ ((outside - mean) / scale)
        np.testing.assert_allclose(model.rank_scores([user], ["nowhere"]), unknown.ravel())


def test_artifacts_saved_before_content_only_weights_load_as_shared(text_model, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = text_model.save(tmp_path / "hybrid")
    arrays = load_file(folder / "weights.safetensors")
    del arrays["content_only_weights"]
    save_file(arrays, folder / "weights.safetensors")
    loaded = Recommender.load(folder)
    assert loaded.new_item_weights == "shared"
    np.testing.assert_array_equal(loaded.content_only_weights_, loaded.weights_)
