"""``make demo``: an offline end-to-end run on the restaurant data shipped inside the package.

It fits every baseline on a split where a quarter of the diners are brand new (each reveals two
ratings), shows how each model does for new diners versus known ones, and recommends restaurants
to one new diner.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dayzero.core.settings import DEMO_DATA

DEMO_MODELS = (
    "global-mean",
    "item-mean",
    "item-mean-user-bias",
    "item-knn",
    "mf",
    "content-knn",
    "feature-hybrid",
)


def run_demo(
    console: Console | None = None, seed: int = 0, report: str | Path | None = None
) -> dict:
    """Run the demo and return its results (also printed); with ``report``, write the HTML
    evaluation report of the baselines there."""
    from dayzero.datasets.restaurant import load_restaurant
    from dayzero.evaluate.experiments import get_experiment
    from dayzero.evaluate.report import results_table
    from dayzero.evaluate.runner import evaluate_split
    from dayzero.recommend.contract import make_recommender

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
    models = [make_recommender(name) for name in DEMO_MODELS]
    results = [
        evaluate_split(model, split, task="rating", k=experiment.k, progress=False)
        for model in models
    ]
    console.print(
        results_table(results, ["mae", "rmse", f"ndcg@{experiment.k}"], title="known vs new diners")
    )
    if report is not None:
        from dayzero.evaluate.html_report import write_evaluation_report

        with console.status("writing the evaluation report"):
            path = write_evaluation_report(results, report, split, models, dataset=dataset)
        console.print(
            f"Evaluation report (CIs, constant and popularity references, warm-up curve, "
            f"exposure): [bold]{path}[/bold]"
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
    transfer = run_transfer_demo(console, split, experiment.k)
    from dayzero.cli.demo_risk import run_risk_demo

    risk = run_risk_demo(console)
    return {
        "risk": risk,
        "results": [r.to_dict() for r in results],
        "recommended": ids,
        "transfer": transfer,
    }


NEW_DINER = "A student on a low budget who loves Mexican food, comes on foot and does not drink."


def run_transfer_demo(console: Console, split, k: int) -> dict:
    """Two-tower on the pretrained MiniLM: frozen (zero-shot transfer) vs LoRA-adapted, then a
    brand-new diner described in one sentence."""
    from dayzero.evaluate.report import results_table
    from dayzero.evaluate.runner import evaluate_split
    from dayzero.recommend.two_tower import TwoTowerRecommender

    console.rule("pretrained transfer: all-MiniLM-L6-v2 two-tower, before vs after fine-tuning")
    towers = {"dim": 16, "hidden": 64}
    training = {"epochs": 25, "batch_users": 16, "validation": 0.0}
    frozen = TwoTowerRecommender(towers=towers, training=training)
    adapted = TwoTowerRecommender(
        towers=towers,
        training=training,
        strategy="lora",
        adaptation={"steps": 20, "items": 16, "refit_epochs": 8},
    )
    results = []
    for label, model in (("two-tower frozen", frozen), ("two-tower LoRA", adapted)):
        with console.status(f"fitting {label} (encoding restaurant and diner texts)"):
            result = evaluate_split(model, split, task="rating", k=k, progress=False)
        result.model = label
        results.append(result)
    console.print(
        results_table(results, ["mae", "rmse", f"ndcg@{k}"], title="new diners: frozen vs LoRA")
    )
    trainable, total = adapted.encoder_parameters_
    console.print(f"LoRA trained {trainable:,} of {total:,} encoder parameters.")

    adapted.add_user_text("new-diner", NEW_DINER)
    ids, scores = adapted.recommend("new-diner", k=5)
    console.print(f'\nA brand-new diner, known only as: [italic]"{NEW_DINER}"[/italic]')
    for rank, (item, score) in enumerate(zip(ids, scores, strict=True), start=1):
        cuisine = _field(split, item, "cuisines")
        console.print(f"  {rank}. {_name(split, item)} ({cuisine})  (predicted {score:.2f})")
    explained = explain_demo(console, split, frozen)
    return {"results": [r.to_dict() for r in results], "new_diner": ids, "explained": explained}


def explain_demo(console: Console, split, model) -> dict:
    """The frozen two-tower's first pick for the first new diner, and why: the rated
    restaurants and the restaurant's fields behind its score (leave-one-out)."""
    from dayzero.recommend.explain import explain_recommendations

    user, support, _ = next(iter(split.segments["new_users"].tasks()))
    ids, _ = model.recommend(user, k=1, history=support)
    items, values = support.frame["item"].tolist(), support.values
    why = explain_recommendations(model, ids, user=user, history=items, values=values)[0]
    history = ", ".join(
        f"{_name(split, h['item'])} ({h['contribution']:+.2f})" for h in why["history"][:2]
    )
    fields = ", ".join(f"{f['field']} ({f['contribution']:+.2f})" for f in why["fields"] or [])
    console.print(
        f"\nWhy two-tower recommends {_name(split, ids[0])} to diner {user}: because of "
        f"{history or 'nothing rated'}; its fields {fields or '(none)'}"
    )
    return why


def _field(split, item, name: str) -> str:
    items = split.train.items
    if items is None or item not in items:
        return "?"
    value = items.record(item).get(name)
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "?"
    return "?" if value is None else str(value)


def _name(split, item) -> str:
    items = split.train.items
    if items is not None and item in items:
        name = items.record(item).get("name")
        if isinstance(name, str) and name:
            return name
    return str(item)
