"""The ``dayzero`` command line: ``datasets``, ``models``, ``evaluate``, ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dayzero.cli.card import card
from dayzero.cli.encode import encode
from dayzero.cli.files import (
    ConfigOption,
    FieldOption,
    ItemColOption,
    ItemsOption,
    TimeColOption,
    UserColOption,
    UsersOption,
    ValueColOption,
    evaluate_files,
    fit,
    import_files,
    recommend,
)
from dayzero.cli.progress import QuietOption, progress_scope, with_progress
from dayzero.cli.risk import risk_app
from dayzero.cli.serve import serve
from dayzero.cli.toplists import toplists
from dayzero.cli.update import bootstrap, update

app = typer.Typer(help="dayzero: cold-start recommendation and risk scoring.", no_args_is_help=True)
console = Console()
app.add_typer(risk_app, name="risk")


@app.callback()
def _main(ctx: typer.Context, quiet: QuietOption = False) -> None:
    """dayzero: cold-start recommendation and risk scoring."""
    # `dayzero --quiet COMMAND`: no progress bar in any command, until the command returns.
    ctx.with_resource(progress_scope(quiet))


@app.command()
def datasets(
    data: Annotated[Path | None, typer.Option(help="Data root (default: $DAYZERO_DATA).")] = None,
) -> None:
    """Show which dataset loaders find their files."""
    from dayzero.datasets import DATASETS, available

    status = available(data)
    table = Table(title="datasets")
    for column in ("name", "status", "licence"):
        table.add_column(column)
    for name, info in DATASETS.items():
        state = status.get(name, "missing")
        colour = "green" if state.startswith("found") else "yellow"
        table.add_row(name, f"[{colour}]{state}[/{colour}]", info.licence)
    console.print(table)


@app.command()
def models() -> None:
    """List the registered recommenders."""
    from dayzero.recommend.contract import REGISTRY

    for name, cls in sorted(REGISTRY.items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        console.print(f"[bold]{name}[/bold]  {doc[0] if doc else ''}")


@app.command()
def evaluate(
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset name, e.g. ml-1m-melu (or --interactions for your files)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="Model name (repeatable), see `dayzero models`; steam: popularity."),
    ] = None,
    protocol: Annotated[
        str | None, typer.Option(help="Protocol (default: the dataset's first).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Data root (default: $DAYZERO_DATA).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    output: Annotated[Path | None, typer.Option(help="Write results as JSON here.")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the HTML evaluation report here (out.html).")
    ] = None,
    fine_tune: Annotated[
        bool,
        typer.Option(
            help="Also score each model that can be fine-tuned (two-tower) after fine-tuning on "
            "what the new users revealed (kshot), as `dayzero update` does."
        ),
    ] = False,
    ci: Annotated[bool, typer.Option(help="Show 95% bootstrap confidence intervals.")] = False,
    quiet: QuietOption = False,
    *,
    ctx: typer.Context,
    interactions: Annotated[
        Path | None, typer.Option(help="Your interactions file (instead of --dataset).")
    ] = None,
    items: ItemsOption = None,
    users: UsersOption = None,
    user_col: UserColOption = None,
    item_col: ItemColOption = None,
    value_col: ValueColOption = None,
    time_col: TimeColOption = None,
    field: FieldOption = None,
    config: ConfigOption = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Cutoff (files).")] = 10,
    task: Annotated[str, typer.Option(help="Files: auto, rating or ranking.")] = "auto",
) -> None:
    """Fit models on a cold-start split and report every segment (warm / new users / new items /
    both) on its own: a registered --dataset, or your files (--interactions, --items, --users
    with --protocol holdout, temporal or kshot)."""
    if interactions is not None:
        ctx.with_resource(progress_scope(quiet))
        evaluate_files(
            interactions, items, users, model or [], protocol=protocol or "holdout",
            config=config, user_col=user_col, item_col=item_col, value_col=value_col,
            time_col=time_col, fields=field, seed=seed, k=k, task=task, ci=ci, output=output,
            report=report, fine_tune=fine_tune, quiet=quiet,
        )  # fmt: skip
        return
    if dataset is None:
        raise typer.BadParameter(
            "give --dataset NAME or --interactions FILE", param_hint="--dataset"
        )
    from dayzero.evaluate.experiments import get_experiment
    from dayzero.evaluate.report import results_table, write_json
    from dayzero.evaluate.runner import evaluate_split
    from dayzero.recommend.contract import make_recommender

    ctx.with_resource(progress_scope(quiet))
    try:
        experiment = get_experiment(dataset, protocol)
        if not model:
            if experiment.task != "history-ranking":
                raise typer.BadParameter("give at least one --model (see `dayzero models`)")
            model = ["popularity"]
        recommenders = [
            make_recommender(
                name, **with_progress(name, experiment.model_params.get(name, {}), quiet)
            )
            for name in model
        ]
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    if experiment.task == "history-ranking":
        if report is not None:
            raise typer.BadParameter(
                f"the HTML report covers segment protocols; {experiment.protocol} is not one",
                param_hint="--report",
            )
        _evaluate_history(experiment, recommenders, data, seed, output, ci)
        return
    with console.status(f"building the {experiment.protocol} split of {dataset}"):
        split = experiment.split(data, seed=seed)
    if fine_tune and not any(len(s.support) for s in split.segments.values()):
        raise typer.BadParameter(
            f"on {dataset} / {experiment.protocol} new users reveal nothing to fine-tune on",
            param_hint="--fine-tune",
        )
    results = []
    for recommender in recommenders:
        results.append(
            evaluate_split(
                recommender,
                split,
                task=experiment.task,
                k=experiment.k,
                relevance_threshold=experiment.relevance_threshold,
                progress=not quiet,
            )
        )
    title = f"{dataset} / {experiment.protocol}"
    console.print(results_table(results, title=title, show_ci=ci))
    tuned = []
    if fine_tune:
        from dayzero.cli.files import fine_tune_all

        tuned = fine_tune_all(
            recommenders, split, experiment.task, experiment.k, seed, ci, title,
            experiment.relevance_threshold,
        )  # fmt: skip
    if output is not None:
        document = {"dataset": dataset, "split": split.summary(), "results": results}
        write_json({**document, **({"fine_tuned": tuned} if tuned else {})}, output)
        console.print(f"wrote {output}")
    if report is not None:
        from dayzero.cli.files import write_report

        write_report(
            results, report, title=title, split=split, models=recommenders,
            relevance_threshold=experiment.relevance_threshold, fine_tuned=tuned,
        )  # fmt: skip


def _evaluate_history(experiment, recommenders, data, seed, output, ci) -> None:
    """Steam-style protocols: players known only by their history (ranking_eval)."""
    from dayzero.evaluate.ranking import catalogue, evaluate_protocol, recommender_scorer
    from dayzero.evaluate.report import write_json

    with console.status(f"building the {experiment.protocol} split of {experiment.dataset}"):
        split = experiment.split(data, seed=seed)
    games = catalogue(split.train)
    recall, ndcg = f"recall@{experiment.k}", f"ndcg@{experiment.k}"
    table = Table(title=f"{experiment.dataset} / {experiment.protocol}")
    for column in ("model", "setting", "users", recall, ndcg, f"chance {recall}"):
        table.add_column(column)
    results = []
    for recommender in recommenders:
        # New games are known by their metadata only after the fit (fitted text statistics).
        split.fold_in(recommender.fit(split.train))
        rows = evaluate_protocol(recommender_scorer(recommender), split, games, k=experiment.k)
        results.append({"model": recommender.name, "rows": rows})
        for row in rows:
            cells = []
            for metric in (recall, ndcg):
                text = f"{row['metrics'][metric]:.4f}"
                if ci:
                    low, high = row["ci"][metric]
                    text += f" [{low:.4f}, {high:.4f}]"
                cells.append(text)
            chance = f"{row['chance'][recall]:.4f}"
            table.add_row(recommender.name, row["setting"], str(row["users"]), *cells, chance)
    console.print(table)
    if output is not None:
        write_json(
            {"dataset": experiment.dataset, "split": split.summary(), "results": results}, output
        )
        console.print(f"wrote {output}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the demo split.")] = 0,
    report: Annotated[
        Path,
        typer.Option(help="Where the HTML evaluation report of the demo's baselines goes."),
    ] = Path("dayzero-demo-report.html"),
    quiet: QuietOption = False,
    *,
    ctx: typer.Context,
) -> None:
    """End-to-end demo on the shipped restaurant data (offline)."""
    from dayzero.cli.demo import run_demo

    ctx.with_resource(progress_scope(quiet))

    run_demo(console, seed=seed, report=report)


app.command("card")(card)

# Your own files (cli/files.py).
app.command("fit")(fit)
app.command("recommend")(recommend)
app.command("import")(import_files)
app.command("encode")(encode)  # on Ray (cli/encode.py)
app.command("toplists")(toplists)  # on Ray (cli/toplists.py)

# Online commands, listed after the offline ones in `dayzero --help`.
app.command("bootstrap")(bootstrap)
app.command("update")(update)
app.command("serve")(serve)

if __name__ == "__main__":
    app()
