"""``dayzero risk``: fit a RiskScorer, score applicants, write risk reports.

    dayzero risk fit --data applicants.csv --target default --out model/
    dayzero risk score --model model/ --data new.csv --out scores.csv
    dayzero risk report --model model/ --data labelled.csv --out report.html

One default everywhere: ``fit`` builds ``RiskScorer()`` with the library's defaults and changes
only the parameters a flag names (``--head``, ``--fusion``, ``--text-column``, ``--labels``,
``--param NAME=VALUE`` for any other). Files are CSV, TSV, semicolon-separated, Parquet or JSON
Lines (:mod:`dayzero.cli.tabular`: by extension, the separator sniffed or ``--sep``); a file that
cannot be used is an error naming the file, the line, the column and the fix, never a traceback.

``fit`` saves the model (safetensors + JSON), ``training.json`` (the target column and the
columns left out with ``--exclude``: :class:`dayzero.risk.target.TrainingInfo`) and the training
applicants as ``reference.csv`` (the population PSI is measured against). ``score`` and
``report`` take the target from there: a scored file that still holds the label has it dropped
from the features (and the scores measured against it); ``--exclude`` columns such as an id are
carried to the output. Any other column the model was not fitted on is an error naming it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import pandas as pd
import typer

from dayzero.cli.tabular import Table, TableError, output_format, read_table, write_table
from dayzero.risk.target import (
    ColumnError,
    TargetError,
    TrainingInfo,
    binary_columns,
    check_target,
    default_flags,
    scoring_columns,
)

risk_app = typer.Typer(help="Applicant risk scoring: fit, score, report.", no_args_is_help=True)
REFERENCE_FILE = "reference.csv"

SepOption = Annotated[
    str | None,
    typer.Option(
        help="Separator of a delimited file: ',', ';', '|' or 'tab'. Default: sniffed from "
        "the first lines."
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", help="csv, tsv, jsonl or parquet; default: from the file's extension."
    ),
]
EncodingOption = Annotated[str, typer.Option(help="Text encoding of the file.")]


def _fail(message: str, option: str | None = None) -> NoReturn:
    """Print one error line (no traceback, no usage block) and exit with status 2."""
    where = f"{option}: " if option else ""
    typer.echo(f"Error: {where}{message}", err=True)
    raise typer.Exit(2)


def _read(path: Path, sep: str | None, fmt: str | None, encoding: str) -> Table:
    try:
        return read_table(path, sep=sep, format=fmt, encoding=encoding)
    except TableError as exc:
        _fail(str(exc), "--data")


def _check_output(path: Path, option: str = "--out") -> None:
    try:
        output_format(path)
    except TableError as exc:
        _fail(str(exc), option)


@contextmanager
def _shown_warnings(*quiet: type[Warning]) -> Iterator[None]:
    """Print each distinct warning once (never hidden, never repeated), except ``quiet`` ones
    (reported another way) and deprecations (not the user's to act on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for record in caught:
        text = f"{record.category.__name__}: {record.message}"
        if issubclass(record.category, (DeprecationWarning, *quiet)):
            continue
        if text not in seen:
            seen.add(text)
            typer.echo(f"warning: {text}", err=True)


def _target_problem(exc: TargetError, table: Table, option: str) -> NoReturn:
    message = str(exc)
    if exc.row is not None:
        message = f"{table.path} {table.where(exc.row)}, column {exc.column!r}: {message}"
    else:
        message = f"{table.path}: {message}"
    _fail(message, option)


def _binary_hint(frame: pd.DataFrame) -> str:
    candidates = binary_columns(frame)
    if candidates:
        return f"binary columns of this file (the candidates): {candidates}"
    return "this file has no binary column (two values): map the outcome to two values first"


def _load(model: Path):
    from dayzero.core.artifact import ArtifactError
    from dayzero.risk.scorer import RiskScorer

    try:
        scorer = RiskScorer.load(model)
    except (ArtifactError, OSError) as exc:
        _fail(str(exc), "--model")
    try:
        info = TrainingInfo.load(model, features=list(scorer.columns_))
    except ValueError as exc:
        _fail(str(exc), "--model")
    return scorer, info


def _parse_labels(path: Path, columns: list[str]) -> dict[str, Any]:
    """``--labels FILE``: ``{"SEX": {"1": "male", "2": "female"}, "AMT": "amount of credit"}``
    (value labels or a field label per column), checked against the table."""
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"{path} cannot be read ({exc.strerror})", "--labels")
    except ValueError as exc:
        _fail(f"{path} is not valid JSON ({exc})", "--labels")
    example = '{"SEX": {"1": "male", "2": "female"}}'
    if not isinstance(labels, dict):
        _fail(f"{path} must hold one object, column -> {{code: label}}, e.g. {example}", "--labels")
    for column, mapping in labels.items():
        if column not in columns:
            _fail(
                f"{path}: {column!r} is not a column of the training data (columns: {columns})",
                "--labels",
            )
        if isinstance(mapping, str):
            continue  # a field label: {"credit_amount": "amount of credit"}
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            _fail(
                f"{path}, column {column!r}: give a field label (a text) or value labels "
                f"mapping each code to a text, e.g. {example}",
                "--labels",
            )
    return labels


def _parse_param(text: str, known: dict[str, Any]) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        _fail(f"{text!r} is not NAME=VALUE (e.g. --param max_iter=300)", "--param")
    if name not in known:
        _fail(f"RiskScorer has no parameter {name!r}; its parameters: {sorted(known)}", "--param")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # a bare word is a string: --param strategy=full
    return name, value


def _as_label(text: str, y: pd.Series) -> Any:
    """``--positive-label`` as a value of ``y``'s type (the reader typed the column)."""
    for value in pd.unique(y):
        if str(value) == text:
            return value.item() if hasattr(value, "item") else value
    _fail(
        f"{text!r} is not a value of the target column (values: {sorted(map(str, pd.unique(y)))})",
        "--positive-label",
    )


@risk_app.command()
def fit(
    data: Annotated[Path, typer.Option(help="Applicants with the target column (any format).")],
    out: Annotated[Path, typer.Option(help="Folder to save the model in.")],
    target: Annotated[
        str | None,
        typer.Option(help="Target column, two values (e.g. 1 = default, 0 = good). Required."),
    ] = None,
    positive_label: Annotated[
        str | None,
        typer.Option(
            help="The target value that means default (e.g. 'bad' for good/bad labels); "
            "default: the larger of the two values (1 for 0/1)."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            help="Column left out of the features, e.g. an id (repeatable); `score` carries "
            "it to its output."
        ),
    ] = None,
    head: Annotated[str | None, typer.Option(help="RiskScorer head (default: the library's).")] = (
        None
    ),
    fusion: Annotated[
        bool | None,
        typer.Option("--fusion/--no-fusion", help="RiskScorer fusion (default: the library's)."),
    ] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder name or folder.")] = None,
    text_column: Annotated[
        list[str] | None, typer.Option(help="Free-text column (repeatable).")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of labels: value labels of coded columns and field names, e.g. "
            '{"SEX": {"1": "male", "2": "female"}, "LIMIT_BAL": "credit limit"}.'
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Folder of the scorer's disk cache of text vectors.")
    ] = None,
    c: Annotated[float | None, typer.Option("--C", help="Inverse L2 strength of the head.")] = (
        None
    ),
    random_state: Annotated[int | None, typer.Option(help="Seed of the scorer.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="Any other RiskScorer parameter, NAME=VALUE (JSON value; repeatable)."),
    ] = None,
    sep: SepOption = None,
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
) -> None:
    """Fit a RiskScorer (the library defaults, changed only by the flags given) and save it."""
    from dayzero.risk.scorer import RiskScorer

    if out.exists() and not out.is_dir():
        _fail(f"{out} is a file; name a folder to save the model in", "--out")
    table = _read(data, sep, fmt, encoding)
    frame = table.frame
    columns = list(frame.columns)
    if target is None:
        _fail(f"name the target column of {data}; {_binary_hint(frame)}", "--target")
    if target not in columns:
        _fail(f"{data} has no column {target!r}; its columns: {columns}; {_binary_hint(frame)}")
    left_out = list(dict.fromkeys(exclude or []))
    absent = [c for c in left_out if c not in columns]
    if absent:
        _fail(
            f"{data} has no column {', '.join(map(repr, absent))}; its columns: {columns}",
            "--exclude",
        )
    if target in left_out:
        _fail(f"{target!r} is the target; it is never a feature, do not exclude it", "--exclude")
    y = frame[target]
    try:
        check_target(y, target, binary_columns(frame))
    except TargetError as exc:
        _target_problem(exc, table, "--target")
    X = frame.drop(columns=[target, *left_out])
    if X.shape[1] == 0:
        _fail(f"{data} has no feature column left besides the target and --exclude")

    known = RiskScorer().get_params()
    given = dict(_parse_param(p, known) for p in param or [])
    flags = {
        "head": head,
        "fusion": fusion,
        "encoder": encoder,
        "text_columns": list(text_column) if text_column else None,
        "labels": None if labels is None else _parse_labels(labels, list(X.columns)),
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "positive_label": None if positive_label is None else _as_label(positive_label, y),
        "C": c,
        "random_state": random_state,
    }
    for name, value in flags.items():
        if value is None:
            continue
        if name not in known:
            option = "--" + name.replace("_", "-")
            _fail(f"this dayzero's RiskScorer has no parameter {name!r}; leave {option} out")
        given[name] = value
    try:
        model = RiskScorer(**given)
        with _shown_warnings():
            model.fit(X, y)
    except (TypeError, ValueError) as exc:
        _fail(f"{data}: {exc}")
    try:
        model.save(out)
        TrainingInfo(target, model.positive_label_, list(model.columns_), left_out).save(out)
        X.to_csv(out / REFERENCE_FILE, index=False)
    except OSError as exc:
        _fail(f"cannot save the model in {out} ({exc.strerror or exc})", "--out")
    positive = model.positive_label_
    positive = positive.item() if isinstance(positive, np.generic) else positive
    defaults = int((y == positive).sum())
    changed = ", ".join(f"{k}={v!r}" for k, v in given.items())
    typer.echo(f"read {data}: {table.describe()}")
    typer.echo(
        f"RiskScorer({changed}): library defaults otherwise"
        if given
        else "RiskScorer(): the library defaults"
    )
    typer.echo(
        f"fitted on {len(X)} applicants ({defaults} with {target} = {positive!r}, "
        f"the default label); saved to {out}"
    )


def _check_numbers(scorer: Any, table: Table, frame: pd.DataFrame) -> None:
    """A text in a column the model read as numbers: an error naming the line and the value."""
    from dayzero.core.templates import is_missing

    for column in getattr(scorer, "numeric_columns_", []):
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series):
            continue
        converted = pd.to_numeric(series, errors="coerce")
        for row, (value, number) in enumerate(zip(series, converted, strict=True)):
            if pd.isna(number) and not is_missing(value):
                _fail(
                    f"{table.path} {table.where(row)}, column {column!r}: {value!r} is not a "
                    "number (the model read this column as numbers); fix the value or leave it "
                    "empty (missing)",
                    "--data",
                )


def _columns(scorer: Any, info: TrainingInfo | None, table: Table, target: str | None):
    """The model's features, the label column present (or None) and the pass-through columns."""
    stored = info.target if info is not None else None
    if target is not None and target in scorer.columns_:
        _fail(
            f"{target!r} is a column the model scores, not a label; name the label column of "
            f"{table.path}, or leave --target out",
            "--target",
        )
    target = target or stored
    if target is not None and stored is None and target not in table.frame.columns:
        _fail(f"{table.path} has no column {target!r}", "--target")
    try:
        plan = scoring_columns(
            table.frame.columns,
            list(scorer.columns_),
            target=target,
            passthrough=info.passthrough if info is not None else (),
        )
    except ColumnError as exc:
        fix = "remove those columns"
        if exc.unexpected and target is None:
            fix += " (if one is the label, pass --target NAME: it is dropped and measured)"
        if exc.missing:
            fix += "; add the missing ones (empty values are allowed)"
        _fail(f"{table.path}: {exc}; {fix}", "--data")
    return target, plan


def _measure(scorer: Any, table: Table, column: str, pd_: np.ndarray) -> str | None:
    """``AUC ... KS ...`` of the scores against the file's labels, or why not (one line)."""
    from dayzero.risk.metrics import ks_statistic, roc_auc

    try:
        flags = default_flags(table.frame[column], scorer.classes_, scorer.positive_label_)
    except TargetError as exc:
        where = f" ({table.where(exc.row)})" if exc.row is not None else ""
        return f"not measured{where}: {exc}"
    if flags.all() or not flags.any():
        return f"not measured: every label in {column!r} is the same (AUC needs both outcomes)"
    return (
        f"against {column!r} ({int(flags.sum())} defaults of {len(flags)}): "
        f"AUC {roc_auc(flags, pd_):.3f}  KS {ks_statistic(flags, pd_).statistic:.3f}"
    )


@risk_app.command()
def score(
    model: Annotated[Path, typer.Option(help="Folder written by `dayzero risk fit`.")],
    data: Annotated[Path, typer.Option(help="Applicants: the training columns (any format).")],
    out: Annotated[Path, typer.Option(help="Table to write (.csv, .tsv, .parquet, .jsonl).")],
    reasons: Annotated[int, typer.Option(help="Reason codes per applicant (0 = none).")] = 3,
    target: Annotated[
        str | None,
        typer.Option(
            help="Label column of the file, dropped and measured (default: the model's target)."
        ),
    ] = None,
    sep: SepOption = None,
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
) -> None:
    """Score applicants: probability of default, points, unknown values and top reasons.

    A label column (the model's target) is dropped from the features and, when it holds both
    outcomes, AUC and KS of the scores against it are printed.
    """
    from dayzero.risk.scorer import UnknownCategoryWarning

    if reasons < 0:
        _fail(f"{reasons} reasons: pass 0 (none) or more", "--reasons")
    _check_output(out)
    scorer, info = _load(model)
    table = _read(data, sep, fmt, encoding)
    label, plan = _columns(scorer, info, table, target)
    frame = table.frame[list(scorer.columns_)]
    _check_numbers(scorer, table, frame)
    try:
        # Unknown categories are the `unknown` column of the output, summed up below.
        with _shown_warnings(UnknownCategoryWarning):
            pd_ = scorer.predict_pd(frame)
            unknown = scorer.unknown_values(frame)
            table_of_reasons = scorer.explain(frame, top=reasons) if reasons > 0 else None
    except (TypeError, ValueError) as exc:
        _fail(f"{data}: {exc}", "--data")
    kept = [*plan.passthrough, *([label] if plan.target else [])]
    result = table.frame[kept].reset_index(drop=True).copy()
    result["pd"] = pd_
    result["points"] = scorer.scale.points(pd_)
    flagged = unknown.groupby("row")["column"].agg(";".join) if len(unknown) else {}
    result["unknown"] = [flagged.get(i, "") for i in range(len(frame))]
    if table_of_reasons is not None:
        for rank in range(1, reasons + 1):
            picked = table_of_reasons[table_of_reasons["rank"] == rank].set_index("row")["field"]
            result[f"reason_{rank}"] = [picked.get(i, "") for i in range(len(frame))]
    write_table(result, out)
    typer.echo(f"read {data}: {table.describe()}")
    if plan.target:
        typer.echo(f"notice: {plan.target!r} is the model's target: not scored, kept in the output")
        typer.echo(_measure(scorer, table, plan.target, pd_))
    if plan.passthrough:
        typer.echo(f"notice: {plan.passthrough} left out in fit: not scored, kept in the output")
    if len(unknown):
        typer.echo(
            f"notice: {len(unknown)} category value(s) not seen in fit, scored as unknown "
            "(the unknown column names them)"
        )
    typer.echo(f"scored {len(result)} applicants -> {out}")


@risk_app.command()
def report(
    model: Annotated[Path, typer.Option(help="Folder written by `dayzero risk fit`.")],
    data: Annotated[Path, typer.Option(help="Labelled applicants (any format).")],
    out: Annotated[Path, typer.Option(help="HTML report to write (JSON next to it).")],
    target: Annotated[
        str | None,
        typer.Option(help="Label column (default: the target the model was fitted on)."),
    ] = None,
    sep: SepOption = None,
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
) -> None:
    """Write the risk report (AUC, Gini, KS deciles, calibration, PSI) as HTML and JSON."""
    from dayzero.risk.scorer import UnknownCategoryWarning

    if out.suffix.lower() not in (".html", ".htm"):
        _fail(f"{out}: the report is HTML; name it report.html (the JSON goes beside it)", "--out")
    if not out.parent.is_dir():
        _fail(f"{out}: the folder {out.parent} does not exist; create it first", "--out")
    scorer, info = _load(model)
    table = _read(data, sep, fmt, encoding)
    label = target or (info.target if info is not None else None)
    if label is None:
        _fail(
            f"{model} has no stored target (it was not fitted by `dayzero risk fit`): name the "
            f"label column of {data}; {_binary_hint(table.frame)}",
            "--target",
        )
    if label not in table.frame.columns:
        _fail(
            f"{data} has no column {label!r} (the label the report measures); its columns: "
            f"{list(table.frame.columns)}",
            "--target" if target else "--data",
        )
    _columns(scorer, info, table, label)
    frame = table.frame[list(scorer.columns_)]
    _check_numbers(scorer, table, frame)
    try:
        flags = default_flags(table.frame[label], scorer.classes_, scorer.positive_label_)
    except TargetError as exc:
        _target_problem(exc, table, "--data")
    other = next(c for c in scorer.classes_.tolist() if c != scorer.positive_label_)
    y = np.where(flags, scorer.positive_label_, other)
    reference_file = model / REFERENCE_FILE
    reference = None
    if reference_file.is_file():
        reference = read_table(reference_file).frame
    try:
        with _shown_warnings(UnknownCategoryWarning):
            result = scorer.report(frame, y, reference=reference)
    except (TypeError, ValueError) as exc:
        _fail(f"{data}: {exc}", "--data")
    result.to_html(out)
    result.to_json(out.with_suffix(".json"))
    typer.echo(f"read {data}: {table.describe()}; label {label!r}")
    typer.echo(
        f"AUC {result.auc:.3f}  Gini {result.gini:.3f}  KS {result.ks:.3f}  "
        f"Brier {result.brier:.4f} -> {out}"
    )
