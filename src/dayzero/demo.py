"""``make demo``: an offline end-to-end run on the restaurant data shipped inside the package.

It fits every baseline on a split where a quarter of the diners are brand new (each reveals two
ratings), shows how each model does for new diners versus known ones, and recommends restaurants
to one new diner.
"""

from __future__ import annotations

from rich.console import Console

from dayzero.settings import DEMO_DATA

DEMO_MODELS = (
    "global-mean",
    "item-mean",
    "item-mean-user-bias",
    "item-knn",
    "mf",
    "content-knn",
    "feature-hybrid",
)


def run_demo(console: Console | None = None, seed: int = 0) -> dict:
    """Run the demo and return its results (also printed)."""
    import dayzero.models  # noqa: F401  (registers the models)
    from dayzero.data.datasets.restaurant import load_restaurant
    from dayzero.evaluate.experiments import get_experiment
    from dayzero.evaluate.report import results_table
    from dayzero.evaluate.runner import evaluate_split
    from dayzero.models.base import make_recommender

    console = console or Console()
    dataset = load_restaurant(DEMO_DATA / "restaurant-uci")
    console.rule("dayzero demo: restaurant recommendations for new diners")
    console.print(
        f"UCI Restaurant & consumer data (CC BY 4.0): {len(dataset.interactions):,} ratings (0-2) "
        f"by {dataset.n_users} diners on {dataset.n_items} restaurants."
    )
    experiment = get_experiment("restaurant-uci", "holdout")
    split = experiment.build(path=DEMO_DATA / "restaurant-uci", seed=seed, **experiment.params)
    summary = split.summary()["segments"]
    console.print(
        "Split: "
        + ", ".join(
            f"{name} {s['users']} diners / {s['query']} ratings" for name, s in summary.items()
        )
        + " (each new diner reveals 2 ratings; the rest are predicted)."
    )
    results = [
        evaluate_split(make_recommender(name), split, task="rating", k=experiment.k, progress=False)
        for name in DEMO_MODELS
    ]
    console.print(
        results_table(results, ["mae", "rmse", f"ndcg@{experiment.k}"], title="known vs new diners")
    )

    new_users = split.segments["new_users"]
    user, support, _ = next(iter(new_users.tasks()))
    model = make_recommender("content-knn").fit(split.train)
    ids, scores = model.recommend(user, k=5, history=support)
    profile = split.train.users.record(user) if split.train.users is not None else {}
    console.print(
        f"\nNew diner [bold]{user}[/bold] ({profile.get('drink_level', '?')}, budget "
        f"{profile.get('budget', '?')}) rated: "
        + ", ".join(
            f"{_name(split, i)} = {v:g}"
            for i, v in zip(support.frame["item"], support.values, strict=True)
        )
    )
    console.print("content-knn recommends:")
    for rank, (item, score) in enumerate(zip(ids, scores, strict=True), start=1):
        console.print(f"  {rank}. {_name(split, item)}  (predicted {score:.2f})")
    return {"results": [r.to_dict() for r in results], "recommended": ids}


def _name(split, item) -> str:
    items = split.train.items
    if items is not None and item in items:
        name = items.record(item).get("name")
        if isinstance(name, str) and name:
            return name
    return str(item)
