"""Commands on your own files: ``fit``, ``evaluate --interactions``, ``recommend``, ``import``.

    dayzero fit --interactions ratings.csv --items movies.csv --users users.csv \\
        --model two-tower --out model/
    dayzero evaluate --interactions ratings.csv --items movies.csv --protocol holdout \\
        --model popularity --model two-tower --output results.json
    dayzero recommend --model-dir model/ --profile "loves animated comedies" -k 10
    dayzero import --store events.db --interactions ratings.csv --items movies.csv
    dayzero serve --store events.db --registry models/ --model-dir model/

Files are CSV / TSV / semicolon or pipe separated (sniffed, or ``--sep``), Parquet or JSON
Lines (:meth:`dayzero.core.schema.Dataset.from_files`). Columns named ``user`` / ``user_id``,
``item`` / ``item_id``, ``rating`` / ``value`` / ``score``, ``timestamp`` / ``ts`` are recognised
(ignoring case and ``_``); ``--user-col`` ... ``--time-col`` name others. Field kinds are
inferred and printed as a table; ``--field year=categorical`` overrides one. A bad file exits
with status 2 and one line naming the file, the line, the column and the fix.

A folder written by ``fit`` is the model (``Recommender.load`` reads it) plus ``catalogue/``:
each item's id, title and short text, so that ``recommend`` can show what it recommends.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from dayzero.cli.progress import QuietOption, progress_scope, with_progress

if TYPE_CHECKING:
    from dayzero.core.schema import Dataset
    from dayzero.recommend.contract import Recommender

console = Console(soft_wrap=True)

CATALOGUE = "catalogue"
PROTOCOLS = ("holdout", "temporal", "kshot")
TEXT_CHARS = 160

InteractionsOption = Annotated[
    Path, typer.Option(help="Interactions: one row per user-item event (CSV, Parquet, JSONL).")
]
ItemsOption = Annotated[
    Path | None, typer.Option(help="Items: an id column and their fields (title, genres ...).")
]
UsersOption = Annotated[
    Path | None, typer.Option(help="Users: an id column and their fields (age, bio ...).")
]
UserColOption = Annotated[
    str | None, typer.Option(help="User id column (default: user / user_id).")
]
ItemColOption = Annotated[
    str | None, typer.Option(help="Item id column (default: item / item_id).")
]
ValueColOption = Annotated[
    str | None,
    typer.Option(help="Rating column (default: rating / value / score; none: implicit 1.0)."),
]
TimeColOption = Annotated[str | None, typer.Option(help="Time column (default: timestamp / ts).")]
FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        help="Override an inferred kind: COLUMN=KIND (text, categorical, numeric, multi, "
        "boolean, date, ignore); repeatable.",
    ),
]
SepOption = Annotated[
    str | None, typer.Option(help="Separator of delimited files (default: sniffed).")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        help="TOML file of model settings: keys as set_params takes them ([training] epochs = 5 "
        "is training__epochs=5); a table named after a model applies to that model only."
    ),
]


def _fail(message: str, option: str | None = None) -> NoReturn:
    """One error line (no traceback) and exit status 2."""
    where = f"{option}: " if option else ""
    typer.echo(f"Error: {where}{message}", err=True)
    raise typer.Exit(2)


def parse_fields(specs: Sequence[str] | None) -> dict[str, str | None] | str:
    """``["year=categorical", "imdb=ignore"]`` -> ``{"year": "categorical", "imdb": None}``;
    no specs -> ``"infer"``."""
    if not specs:
        return "infer"
    out: dict[str, str | None] = {}
    for spec in specs:
        column, sep, kind = spec.partition("=")
        if not sep or not column.strip() or not kind.strip():
            _fail(f"{spec!r} is not COLUMN=KIND, e.g. --field year=categorical", "--field")
        kind = kind.strip()
        out[column.strip()] = None if kind == "ignore" else kind
    return out


def field_table(rows: Sequence[Mapping[str, Any]], title: str = "columns") -> Table:
    """:meth:`Dataset.field_report` as a rich table."""
    table = Table(title=title)
    for column in ("table", "column", "kind", "how", "reason"):
        table.add_column(column)
    colours = {"given": "cyan", "inferred": "green", "recognised": "green", "absent": "yellow"}
    for row in rows:
        colour = "yellow" if row["kind"] == "not used" else colours.get(row["how"], "white")
        table.add_row(
            row["table"],
            str(row["column"]),
            f"[{colour}]{row['kind']}[/{colour}]",
            row["how"],
            row["reason"],
        )
    return table


def load_files(
    interactions: Path,
    items: Path | None = None,
    users: Path | None = None,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    value_col: str | None = None,
    time_col: str | None = None,
    fields: Sequence[str] | None = None,
    sep: str | None = None,
    quiet: bool = False,
) -> Dataset:
    """The dataset of the files (:meth:`Dataset.from_files`), its columns printed unless
    ``quiet``; a bad file exits with status 2 and the error's message."""
    from dayzero.core.schema import Dataset, SchemaError
    from dayzero.core.tables import TableError

    try:
        dataset = Dataset.from_files(
            interactions,
            items,
            users,
            fields=parse_fields(fields),
            user_col=user_col,
            item_col=item_col,
            value_col=value_col,
            time_col=time_col,
            sep=sep,
        )
    except (SchemaError, TableError) as exc:
        _fail(str(exc))
    from dayzero.core.progress import progress_enabled

    # `dayzero --quiet fit ...` (the global flag) quiets this table as `fit --quiet` does.
    if not quiet and progress_enabled():
        console.print(field_table(dataset.field_report(), f"columns of {dataset.name}"))
        summary = dataset.summary()
        console.print(
            f"{summary['interactions']:,} interactions, {summary['users']:,} users "
            f"({summary['users_with_fields']:,} with fields), {summary['items']:,} items "
            f"({summary['items_with_fields']:,} with fields)"
        )
    return dataset


def read_config(path: Path | None, model: str) -> dict[str, Any]:
    """Settings of ``model`` from a TOML file, flattened to ``set_params`` keys."""
    if path is None:
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        _fail(f"{path} does not exist", "--config")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _fail(f"{path} is not valid TOML ({exc})", "--config")
    from dayzero.recommend.contract import REGISTRY

    shared = {k: v for k, v in document.items() if k not in REGISTRY}
    own = document.get(model, {})
    if not isinstance(own, dict):
        _fail(f"{path}: [{model}] must be a table of settings", "--config")
    return {**_flatten(shared), **_flatten(own)}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}__{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def build_model(name: str, config: Path | None, quiet: bool) -> Recommender:
    """A registered recommender with the settings of ``config``; errors exit with status 2."""
    from dayzero.recommend.contract import REGISTRY, make_recommender

    if name not in REGISTRY:
        _fail(f"unknown model {name!r}; available: {', '.join(sorted(REGISTRY))}", "--model")
    params = read_config(config, name)
    try:
        return make_recommender(name, **with_progress(name, params, quiet))
    except (ValueError, TypeError, KeyError) as exc:
        _fail(f"settings of {name} are not valid ({exc})", "--config")


# ------------------------------------------------------------------ catalogue


def write_catalogue(folder: Path, dataset: Dataset) -> Path:
    """``folder/catalogue/``: every item's id, title and short text, and how the files were
    read (an artifact of kind ``"catalogue"``: JSON only)."""
    from dayzero.core.artifact import Artifact, save_artifact
    from dayzero.core.fields import title_of
    from dayzero.core.templates import entity_template

    ids = list(dataset.item_map.ids)
    titles: list[str | None] = [None] * len(ids)
    texts: list[str | None] = [None] * len(ids)
    if dataset.items is not None:
        template = entity_template(None, dataset.items)
        position = {i: n for n, i in enumerate(ids)}
        for item in dataset.items.ids:
            record = dataset.items.record(item)
            text = template.render(record) or None
            titles[position[item]] = title_of(record, text)
            texts[position[item]] = title_of({}, text, TEXT_CHARS)
    values = dataset.interactions.values
    state = {
        "ids": [_plain(i) for i in ids],
        "titles": titles,
        "texts": texts,
        "top_value": float(values.max()) if len(values) else 1.0,
        "columns": dataset.columns,
        "fields": {
            side: dict(table.fields)
            for side, table in (("items", dataset.items), ("users", dataset.users))
            if table is not None
        },
    }
    return save_artifact(folder / CATALOGUE, Artifact("catalogue", "items", {}, state))


def read_catalogue(folder: Path) -> dict[str, Any] | None:
    """What :func:`write_catalogue` wrote, or None for a model folder without one."""
    from dayzero.core.artifact import load_artifact

    if not (folder / CATALOGUE).is_dir():
        return None
    return load_artifact(folder / CATALOGUE, "catalogue").state


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ------------------------------------------------------------------ fit


def fit(
    interactions: InteractionsOption,
    out: Annotated[Path, typer.Option(help="Folder to save the fitted model in.")],
    items: ItemsOption = None,
    users: UsersOption = None,
    model: Annotated[str, typer.Option(help="Registered model (see `dayzero models`).")] = (
        "two-tower"
    ),
    config: ConfigOption = None,
    user_col: UserColOption = None,
    item_col: ItemColOption = None,
    value_col: ValueColOption = None,
    time_col: TimeColOption = None,
    field: FieldOption = None,
    sep: SepOption = None,
    quiet: QuietOption = False,
) -> None:
    """Fit a model on your files and save it (with its card and item catalogue) in --out."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with progress_scope(quiet):
        dataset = load_files(
            interactions, items, users, user_col=user_col, item_col=item_col,
            value_col=value_col, time_col=time_col, fields=field, sep=sep, quiet=quiet,
        )  # fmt: skip
        recommender = build_model(model, config, quiet)
        if out.exists() and not out.is_dir():
            _fail(f"{out} is a file; name a folder", "--out")
        try:
            recommender.fit(dataset)
        except (ValueError, KeyError) as exc:
            _fail(f"{model} cannot be fitted on these files: {exc}")
        folder = recommender.save(out)
        write_catalogue(folder, dataset)
    console.print(f"[green]saved[/green] {model} to {folder}")


# ------------------------------------------------------------------ evaluate


def _task(dataset: Dataset, task: str) -> str:
    if task != "auto":
        return task
    values = dataset.interactions.values
    return "rating" if len(values) and values.min() != values.max() else "ranking"


def make_split(dataset: Dataset, protocol: str, seed: int, shots: int, quantile: float):
    """The cold-start split of ``protocol`` on ``dataset`` (errors exit with status 2)."""
    from dayzero.evaluate.protocols.splits import holdout_split, kshot_users_split, temporal_split

    if protocol not in PROTOCOLS:
        _fail(f"{protocol!r} is not one of {', '.join(PROTOCOLS)}", "--protocol")
    try:
        if protocol == "holdout":
            return holdout_split(dataset, seed=seed)
        if protocol == "kshot":
            # Files without a time column reveal k random interactions per new user.
            order = "time" if dataset.interactions.has_timestamp else "random"
            return kshot_users_split(dataset, k=shots, seed=seed, order=order)
        if not dataset.interactions.has_timestamp:
            _fail(
                "the temporal protocol needs a time column: name it timestamp / ts or pass "
                "--time-col (or use --protocol holdout)",
                "--protocol",
            )
        cutoff = dataset.interactions.frame["timestamp"].quantile(quantile)
        return temporal_split(dataset, cutoff)
    except ValueError as exc:
        _fail(f"cannot build the {protocol} split of these files: {exc}", "--protocol")


def evaluate_files(
    interactions: Path,
    items: Path | None,
    users: Path | None,
    models: Sequence[str],
    *,
    protocol: str = "holdout",
    config: Path | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    value_col: str | None = None,
    time_col: str | None = None,
    fields: Sequence[str] | None = None,
    sep: str | None = None,
    seed: int = 0,
    k: int = 10,
    task: str = "auto",
    shots: int = 3,
    quantile: float = 0.8,
    ci: bool = False,
    output: Path | None = None,
    report: Path | None = None,
    fine_tune: bool = False,
    quiet: bool = False,
) -> list:
    """``dayzero evaluate --interactions F``: every model on every segment of the split of the
    files, a table in the terminal, JSON with ``output``, the HTML report with ``report``;
    ``fine_tune``: each model that has ``fine_tune`` also after fine-tuning on what the new
    users revealed (:func:`dayzero.evaluate.html_report.fine_tune_on_support`)."""
    from dayzero.evaluate.report import results_table, write_json
    from dayzero.evaluate.runner import evaluate_split

    if not models:
        _fail("give at least one --model (see `dayzero models`)", "--model")
    if task not in ("auto", "rating", "ranking"):
        _fail(f"{task!r} is not auto, rating or ranking", "--task")
    dataset = load_files(
        interactions, items, users, user_col=user_col, item_col=item_col, value_col=value_col,
        time_col=time_col, fields=fields, sep=sep, quiet=quiet,
    )  # fmt: skip
    recommenders = [build_model(name, config, quiet) for name in models]
    split = make_split(dataset, protocol, seed, shots, quantile)
    if fine_tune and not any(len(s.support) for s in split.segments.values()):
        _fail(
            f"the {protocol} split reveals no interaction of new users to fine-tune on; use "
            "--protocol kshot",
            "--fine-tune",
        )
    chosen = _task(dataset, task)
    results = []
    for recommender in recommenders:
        try:
            results.append(evaluate_split(recommender, split, task=chosen, k=k, progress=not quiet))
        except (ValueError, KeyError) as exc:
            _fail(f"{recommender.name} failed on the {protocol} split: {exc}")
    title = f"{dataset.name} / {protocol} ({chosen})"
    console.print(results_table(results, title=title, show_ci=ci))
    tuned = fine_tune_all(recommenders, split, chosen, k, seed, ci, title) if fine_tune else []
    if output is not None:
        write_json(
            {
                "dataset": dataset.name,
                "files": {"interactions": str(interactions), "items": _str(items),
                          "users": _str(users)},
                "split": split.summary(),
                "results": results,
                **({"fine_tuned": tuned} if tuned else {}),
            },
            output,
        )  # fmt: skip
        console.print(f"wrote {output}")
    if report is not None:
        write_report(
            results, report, title=title, split=split, dataset=dataset, models=recommenders,
            fine_tuned=tuned,
        )  # fmt: skip
    return results


def fine_tune_all(
    recommenders: Sequence[Recommender],
    split: Any,
    task: str,
    k: int,
    seed: int,
    ci: bool,
    title: str,
    relevance_threshold: float | None = None,
) -> list:
    """``--fine-tune``: each model that has ``fine_tune`` scored again after fine-tuning on what
    the new users revealed; a table of those results; models without it are named."""
    from dayzero.evaluate.html_report import fine_tune_on_support
    from dayzero.evaluate.report import results_table

    tuned = []
    for recommender in recommenders:
        try:
            after = fine_tune_on_support(
                recommender, split, task, k, relevance_threshold=relevance_threshold,
                random_state=seed,
            )  # fmt: skip
        except (ValueError, KeyError) as exc:
            _fail(f"{recommender.name} could not be fine-tuned: {exc}", "--fine-tune")
        if after is None:
            console.print(f"{recommender.name} has no fine_tune: shown before fine-tuning only")
        else:
            tuned.append(after)
    if tuned:
        heading = f"{title}, after fine-tuning on what new users revealed"
        console.print(results_table(tuned, title=heading, show_ci=ci))
    return tuned


def write_report(results: Sequence[Any], path: Path, **extras: Any) -> None:
    """The HTML evaluation report (:func:`dayzero.evaluate.html_report.write_evaluation_report`)
    at ``path``."""
    from dayzero.evaluate.html_report import write_evaluation_report

    if path.exists() and path.is_dir():
        _fail(f"{path} is a folder; name a file such as report.html", "--report")
    from contextlib import nullcontext

    from dayzero.core.progress import progress_enabled

    title = extras.pop("title", None)
    # References, warm-up curve and exposure take a while on real data: say what is going on.
    waiting = console.status(f"writing the report {path}") if progress_enabled() else nullcontext()
    with waiting:
        write_evaluation_report(results, path, title=title, **extras)
    console.print(f"wrote {path}")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


# ------------------------------------------------------------------ recommend


def _resolve_id(id_map: Any, text: str) -> Any:
    """``text`` as the model's id map knows it (``"42"`` -> 42 for a model fitted on integer
    ids); unchanged when the map knows neither."""
    if text in id_map:
        return text
    try:
        number = int(text)
    except ValueError:
        return text
    return number if number in id_map else text


def _history(model: Recommender, items: Sequence[str], top: float, user: Any):
    """``--history a --history b=3`` as Interactions of ``user`` (value: the highest training
    rating unless given)."""
    from dayzero.core.schema import Interactions

    rows = []
    for spec in items:
        for part in spec.split(","):
            item, sep, value = part.strip().partition("=")
            if not item:
                continue
            known = _resolve_id(model.item_map_, item)
            if known not in model.item_map_:
                _fail(f"item {item!r} is not in the model's catalogue", "--history")
            try:
                number = float(value) if sep else top
            except ValueError:
                _fail(f"{part!r}: the value after = must be a number", "--history")
            if not math.isfinite(number):
                _fail(f"{part!r}: the value must be finite", "--history")
            rows.append((user, known, number))
    return Interactions.from_records(rows) if rows else None


def recommend(
    model_dir: Annotated[Path, typer.Option(help="Folder written by `dayzero fit`.")],
    user: Annotated[str | None, typer.Option(help="A user id of the training files.")] = None,
    profile: Annotated[
        str | None, typer.Option(help='A new user described in words: "loves quiet cafes".')
    ] = None,
    history: Annotated[
        list[str] | None,
        typer.Option(
            help="Items the user just liked: ITEM or ITEM=RATING, repeatable or comma-separated "
            "(default rating: the highest of the training data)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many items.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Say why: the history items (and, with --items, the item fields) that raised "
            "each item's score most.",
        ),
    ] = False,
    items: Annotated[
        Path | None,
        typer.Option(help="With --explain: the items file given to `dayzero fit` (its fields)."),
    ] = None,
) -> None:
    """Recommend items for a known user, or a new one described by a profile and/or history."""
    from dayzero.core.artifact import ArtifactError
    from dayzero.recommend.contract import Recommender

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if (user is None) == (profile is None):
        _fail('give --user ID or --profile "sentence" (one of them)')
    if not model_dir.is_dir():
        _fail(f"{model_dir} is not a folder written by `dayzero fit`", "--model-dir")
    try:
        model = Recommender.load(model_dir)
        catalogue = read_catalogue(model_dir) or {}
    except (ArtifactError, OSError, ValueError) as exc:
        _fail(str(exc), "--model-dir")
    top = float(catalogue.get("top_value", 1.0))
    new_user = True  # a profile describes a new user; a --user id may be one too
    if user is not None:
        who = _resolve_id(model.user_map_, user)
        new_user = who not in model.user_map_
        if new_user:  # on stderr: the --json document on stdout stays one JSON value
            typer.echo(
                f"user {user} is not in the training data; showing the list for a new user",
                err=True,
            )
    else:
        who = "__profile__"
        adder = getattr(model, "add_user_text", None)
        if adder is None:
            _fail(
                f"{model.name} does not read profile text (two-tower does); use --user, or "
                "--user with --history for a new user",
                "--profile",
            )
        if not profile.strip():
            _fail("the profile is empty: describe the user in a sentence", "--profile")
        adder(who, profile)
    if items is not None and not explain:
        _fail("--items is read with --explain only", "--items")
    table_of_items = _item_table(items, catalogue) if items is not None else None
    if explain and not _can_explain(model):
        _fail(
            f"{model.name} cannot explain its recommendations: it has no serving vectors "
            "(two-tower and mf have them); run without --explain",
            "--explain",
        )
    revealed = _history(model, history or [], top, who)
    ids, scores = model.recommend(who, k=k, history=revealed)
    rows = _rows(ids, scores, catalogue)
    if explain:
        _add_explanations(model, rows, ids, who, revealed, table_of_items)
    if as_json:
        document = {"user": user, "profile": profile, "new_user": new_user, "items": rows}
        typer.echo(json.dumps(document, default=str))
        return
    table = Table(title=f"top {k} for " + (f"user {user}" if user is not None else "the profile"))
    for column in ("#", "item", "title", "text", "score"):
        table.add_column(column, justify="right" if column in ("#", "score") else "left")
    for n, row in enumerate(rows, start=1):
        table.add_row(
            str(n), str(row["item"]), row["title"] or "", row["text"] or "", f"{row['score']:.4f}"
        )
    console.print(table)
    if explain:
        titles = dict(zip(catalogue.get("ids", []), catalogue.get("titles", []), strict=False))
        for n, row in enumerate(rows, start=1):
            console.print(f"{n}. {row['title'] or row['item']}: " + explanation_line(row, titles))


def _can_explain(model: Any) -> bool:
    from dayzero.recommend.servable import VectorServable

    return isinstance(model, VectorServable)


def _item_table(path: Path, catalogue: Mapping[str, Any]):
    """The items file of ``dayzero fit`` as Entities, read with the field kinds the fit used."""
    from dayzero.core.fields import infer_fields, prepare_columns
    from dayzero.core.schema import Entities
    from dayzero.core.tables import TableError, read_table

    try:
        frame = read_table(path, lists=True).frame
    except (TableError, OSError) as exc:
        _fail(str(exc), "--items")
    column = (catalogue.get("columns") or {}).get("item") or "item"
    if column not in frame.columns:
        _fail(
            f"{path} has no column {column!r} (the item id column `dayzero fit` read); give "
            "the items file of the fit",
            "--items",
        )
    if frame[column].duplicated().any():
        _fail(f"{path}: item ids repeat in column {column!r}; one row per item", "--items")
    import pandas as pd

    kinds = (catalogue.get("fields") or {}).get("items") or {}
    body = frame.drop(columns=[column])
    # ids as the fit read them: text (Dataset.from_files reads every id as a string)
    body.index = pd.Index([str(i) for i in frame[column]], dtype=object)
    guesses = infer_fields(body, {c: kinds.get(str(c)) for c in body.columns})
    fields = {g.column: g.kind for g in guesses if g.kind is not None}
    return Entities(prepare_columns(body, guesses), fields)


def _add_explanations(model, rows, ids, who, revealed, table) -> None:
    """``row["explanation"]`` for every row: the history items and item fields behind it."""
    from dayzero.recommend.explain import explain_recommendations

    items, values = [], None
    if revealed is not None:
        items, values = revealed.frame["item"].tolist(), revealed.values
    found = explain_recommendations(
        model, list(ids), user=who, history=items, values=values, entities=table
    )
    for row, why in zip(rows, found, strict=True):
        notes = [
            "no field side: give --items (the items file of `dayzero fit`)"
            if "entities=" in note
            else note
            for note in why["notes"]
        ]
        row["explanation"] = {
            "history": [
                {"item": _plain(h["item"]), "contribution": h["contribution"]}
                for h in why["history"]
            ],
            "fields": why["fields"],
            "notes": notes,
        }


def explanation_line(row: Mapping[str, Any], titles: Mapping[Any, Any] | None = None) -> str:
    """One line: ``because of A (+0.21), B (+0.13); fields: title (+3.6)``, then the notes
    (what could not be explained); ``titles`` names the history items."""
    why = row.get("explanation") or {}
    titles = titles or {}
    parts = []
    history = [
        f"{titles.get(h['item']) or h['item']} ({h['contribution']:+.2f})"
        for h in why.get("history", [])
    ]
    if history:
        parts.append("because of " + ", ".join(history))
    fields = why.get("fields")
    if fields:
        parts.append(
            "fields: " + ", ".join(f"{f['field']} ({f['contribution']:+.2f})" for f in fields)
        )
    parts += why.get("notes", [])
    return "; ".join(parts) or "nothing to explain"


def _rows(ids: Sequence[Any], scores: Any, catalogue: Mapping[str, Any]) -> list[dict[str, Any]]:
    where = {i: n for n, i in enumerate(catalogue.get("ids", []))}
    titles, texts = catalogue.get("titles", []), catalogue.get("texts", [])
    out = []
    for item, score in zip(ids, scores, strict=True):
        n = where.get(_plain(item))
        out.append(
            {
                "item": _plain(item),
                "title": titles[n] if n is not None else None,
                "text": texts[n] if n is not None else None,
                "score": float(score),
            }
        )
    return out


# ------------------------------------------------------------------ import


def _json_value(value: Any) -> Any:
    """A file's cell as JSON: numpy scalars as numbers, NaN as null, dates as ISO text."""
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
        if isinstance(value, list):
            return [_json_value(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def entity_records(entities) -> list:
    """Store records of ``entities``: every column as a JSON field, no free text (the fields
    render into the text view of the model they are folded into)."""
    from dayzero.online.store import EntityRecord

    records = []
    for entity in entities.ids:
        row = entities.record(entity)
        fields = {str(k): _json_value(v) for k, v in row.items()}
        records.append(EntityRecord(id=str(entity), fields=fields))
    return records


def import_files(
    store: Annotated[
        str, typer.Option(help="Event store: a SQLite file path, sqlite:///path or postgresql://")
    ],
    interactions: InteractionsOption,
    items: ItemsOption = None,
    users: UsersOption = None,
    user_col: UserColOption = None,
    item_col: ItemColOption = None,
    value_col: ValueColOption = None,
    time_col: TimeColOption = None,
    field: FieldOption = None,
    sep: SepOption = None,
    kind: Annotated[
        str, typer.Option(help="Event kind of the interactions (rating, click, purchase ...).")
    ] = "rating",
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Rows per transaction.")] = 1000,
    quiet: QuietOption = False,
) -> None:
    """Load your files into the event store: items, users, then the interactions as events.

    Each event gets an idempotency key from its file and line, so running the same import again
    stores nothing twice."""
    from datetime import UTC

    import pandas as pd

    from dayzero.core.schema import SchemaError
    from dayzero.online.store import Event, open_store

    dataset = load_files(
        interactions, items, users, user_col=user_col, item_col=item_col, value_col=value_col,
        time_col=time_col, fields=field, sep=sep, quiet=quiet,
    )  # fmt: skip
    try:
        events_store = open_store(store)
    except Exception as exc:
        _fail(f"cannot open the store {store!r}: {exc}", "--store")
    counts = {"items": 0, "users": 0, "events": 0, "duplicates": 0}
    try:
        for side, upsert in (
            ("items", events_store.upsert_items),
            ("users", events_store.upsert_users),
        ):
            table = getattr(dataset, side)
            if table is None:
                continue
            records = entity_records(table)
            for start in range(0, len(records), batch):
                counts[side] += len(upsert(records[start : start + batch]))
        frame = dataset.interactions.frame
        times = None
        if dataset.interactions.has_timestamp:
            raw = frame["timestamp"]
            if pd.api.types.is_numeric_dtype(raw):
                times = pd.to_datetime(raw, unit="s", utc=True)
            else:
                times = pd.to_datetime(raw, utc=True)
        stem = Path(interactions).name
        events = []
        for n, (u, i, v) in enumerate(
            zip(frame["user"], frame["item"], frame["value"], strict=True)
        ):
            ts = times.iloc[n].to_pydatetime() if times is not None else None
            if ts is not None and ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            events.append(
                Event(
                    user=str(u), item=str(i), kind=kind, value=float(v), ts=ts,
                    idempotency_key=f"import:{stem}:{n}",
                )
            )  # fmt: skip
        for start in range(0, len(events), batch):
            ids = events_store.append_events(events[start : start + batch])
            counts["events"] += ids.new
            counts["duplicates"] += len(ids) - ids.new
    except (SchemaError, ValueError) as exc:
        _fail(f"the store refused the data: {exc}")
    finally:
        events_store.close()
    console.print(
        f"[green]imported[/green] {counts['items']:,} items, {counts['users']:,} users, "
        f"{counts['events']:,} events into {store}"
        + (f" ({counts['duplicates']:,} already there)" if counts["duplicates"] else "")
    )


# ------------------------------------------------------------------ serve a fit folder


def publish_fit_folder(model_dir: Path, registry: Path, watermark: int = 0) -> str:
    """Publish the model of a ``dayzero fit`` folder as a served version and promote it.

    Parameters
    ----------
    model_dir : Path
        Folder written by ``dayzero fit`` (or any ``Recommender.save`` folder of a model that
        implements :class:`~dayzero.recommend.servable.VectorServable`, with string ids).
    registry : Path
        Model registry folder.
    watermark : int
        The last store event the model has seen (``dayzero update`` fine-tunes on the later
        ones): the store's last event when its contents were imported from the same files.

    Returns
    -------
    str
        The new version. Its ``catalogue/`` is the fit folder's (the service shows its titles);
        its config records the folder and :func:`fit_fingerprint` of its files.
    """
    import shutil

    from dayzero.online.registry import ModelRegistry
    from dayzero.online.serving import ServingModel
    from dayzero.recommend.contract import Recommender

    model_dir = Path(model_dir)
    model = Recommender.load(model_dir)
    serving = ServingModel(model)
    models = ModelRegistry(registry)

    def write(folder: Path) -> None:
        serving.save(folder)
        if (model_dir / CATALOGUE).is_dir():
            shutil.copytree(model_dir / CATALOGUE, folder / CATALOGUE)

    version = models.publish(
        write,
        metrics={"status": "fit", "source": str(model_dir)},
        watermark=watermark,
        config={
            "kind": "fit-folder",
            "source": str(model_dir),
            "model": model.name,
            "fingerprint": fit_fingerprint(model_dir),
        },
    )
    models.promote(version)
    return version


def fit_fingerprint(model_dir: Path) -> str:
    """SHA-256 over the model files of a fit folder (names and contents; the card and what is
    attached to it left out): the same fit gives the same fingerprint wherever it is copied."""
    import hashlib

    from dayzero.core.card import CARD_HTML, CARD_JSON, EVALUATION_FILE, FAIRNESS_FILE

    skip = {CARD_JSON, CARD_HTML, EVALUATION_FILE, FAIRNESS_FILE}
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*")):
        if not path.is_file() or path.name in skip:
            continue
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


__all__ = [
    "evaluate_files",
    "fit",
    "fit_fingerprint",
    "import_files",
    "load_files",
    "publish_fit_folder",
    "read_catalogue",
    "recommend",
    "write_catalogue",
]
