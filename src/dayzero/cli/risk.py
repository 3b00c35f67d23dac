"""``dayzero risk``: fit a RiskScorer, score applicants, write risk reports.

    dayzero risk fit --data applicants.csv --target default --out model/
    dayzero risk score --model model/ --data new.csv --out scores.csv
    dayzero risk report --model model/ --data labelled.csv --out report.html
    dayzero risk audit model/ --data labelled.csv --sensitive age --bins age=25 --write-to-model

One default everywhere: ``fit`` builds ``RiskScorer()`` with the library's defaults and changes
only the parameters a flag names (``--head``, ``--fusion``, ``--text-column``, ``--labels``,
``--prior DIR`` for a saved transfer prior, ``--param NAME=VALUE`` for any other). Files are
CSV, TSV, semicolon-separated, Parquet or JSON Lines (:mod:`dayzero.cli.tabular`: by extension,
the separator sniffed or ``--sep``); a file that cannot be used is an error naming the file, the
line, the column and the fix, never a traceback.

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
from dataclasses import replace
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

risk_app = typer.Typer(
    help="Applicant risk scoring: fit, score, report, audit.", no_args_is_help=True
)
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
    prior: Annotated[
        Path | None,
        typer.Option(
            help="Folder of a saved transfer prior (TransferPrior.save): what other credit "
            "tables taught, for a handful of labelled applicants (RiskScorer prior)."
        ),
    ] = None,
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
    if prior is not None:
        from dayzero.core.artifact import ArtifactError
        from dayzero.risk.prior import TransferPrior

        try:
            TransferPrior.load(prior)
        except ArtifactError as exc:
            _fail(
                f"{prior} is not a saved transfer prior ({exc}); pass the folder that "
                "TransferPrior.save wrote",
                "--prior",
            )

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
        "prior": None if prior is None else str(prior),
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
    sensitive: Annotated[
        list[str] | None,
        typer.Option(
            help="Sensitive column (repeatable): adds a fairness audit section (as `dayzero "
            "risk audit`); it need not be a feature of the model."
        ),
    ] = None,
    approval_rate: Annotated[
        float | None,
        typer.Option(help="Audit: approve this share, lowest PD first (default: share of goods)."),
    ] = None,
    cutoff: Annotated[float | None, typer.Option(help="Audit: approve when PD < this.")] = None,
    bins: Annotated[
        list[str] | None,
        typer.Option(help="Audit: bands of a numeric sensitive column, COLUMN=EDGES or COLUMN=qN."),
    ] = None,
    sep: SepOption = None,
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
) -> None:
    """Write the risk report (AUC, Gini, KS deciles, calibration, PSI; with --sensitive, a
    fairness audit) as HTML and JSON."""
    from dayzero.risk.scorer import UnknownCategoryWarning

    if out.suffix.lower() not in (".html", ".htm"):
        _fail(f"{out}: the report is HTML; name it report.html (the JSON goes beside it)", "--out")
    if not out.parent.is_dir():
        _fail(f"{out}: the folder {out.parent} does not exist; create it first", "--out")
    scorer, info = _load(model)
    table = _read(data, sep, fmt, encoding)
    label = _label_column(model, info, table, data, target, "report")
    if cutoff is not None and approval_rate is not None:
        _fail("give --cutoff (a PD) or --approval-rate, not both", "--cutoff")
    audited = [c for c in dict.fromkeys(sensitive or []) if c not in scorer.columns_]
    absent = [c for c in audited if c not in table.frame.columns]
    if absent:
        columns = list(table.frame.columns)
        _fail(f"{data} has no column {absent[0]!r}; its columns: {columns}", "--sensitive")
    # a sensitive column the model does not read may be in the file: audited, not scored
    _columns(scorer, info, replace(table, frame=table.frame.drop(columns=audited)), label)
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
    if sensitive:
        result.fairness = _fairness(
            scorer,
            table,
            label,
            list(sensitive),
            bins=bins,
            groups=None,
            cutoff=cutoff,
            approval_rate=approval_rate,
            n_resamples=1000,
            seed=0,
        )
    result.to_html(out)
    result.to_json(out.with_suffix(".json"))
    typer.echo(f"read {data}: {table.describe()}; label {label!r}")
    typer.echo(
        f"AUC {result.auc:.3f}  Gini {result.gini:.3f}  KS {result.ks:.3f}  "
        f"Brier {result.brier:.4f} -> {out}"
    )
    for line in result.fairness.summary() if result.fairness is not None else []:
        typer.echo(line)


def _parse_bins(texts: list[str], sensitive: list[str]) -> dict[str, list[float] | int]:
    """``--bins age=25,35`` (band edges) or ``--bins age=q4`` (quantile bands), per column."""
    out: dict[str, list[float] | int] = {}
    for text in texts:
        column, sep, raw = text.partition("=")
        column = column.strip()
        if not sep or not column or not raw.strip():
            _fail(f"{text!r} is not COLUMN=EDGES (e.g. --bins age=25,35 or age=q4)", "--bins")
        if column not in sensitive:
            _fail(f"{column!r} is not a --sensitive column ({sensitive})", "--bins")
        raw = raw.strip()
        try:
            if raw[:1] in ("q", "Q"):
                out[column] = int(raw[1:])
            else:
                out[column] = [float(p) for p in raw.split(",")]
        except ValueError:
            _fail(
                f"{text!r}: give numbers as edges (--bins {column}=25,35) or qN for N quantile "
                f"bands (--bins {column}=q4)",
                "--bins",
            )
    return out


def _parse_groups(path: Path, sensitive: list[str]) -> dict[str, dict[str, str]]:
    """``--groups FILE``: ``{"status": {"male : single": "male", ...}}``, checked."""
    example = '{"personal_status_and_sex": {"male : single": "male", "female : ...": "female"}}'
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"{path} cannot be read ({exc.strerror})", "--groups")
    except ValueError as exc:
        _fail(f"{path} is not valid JSON ({exc})", "--groups")
    if not isinstance(groups, dict):
        _fail(
            f"{path} must hold one object, column -> {{value: group}}, e.g. {example}", "--groups"
        )
    for column, mapping in groups.items():
        if column not in sensitive:
            _fail(f"{path}: {column!r} is not a --sensitive column ({sensitive})", "--groups")
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            _fail(f"{path}, column {column!r}: map each value to a group name, e.g. {example}")
    return groups


def _fairness(
    scorer: Any,
    table: Table,
    label: str,
    sensitive: list[str],
    *,
    bins: list[str] | None,
    groups: Path | None,
    cutoff: float | None,
    approval_rate: float | None,
    n_resamples: int,
    seed: int,
) -> Any:
    """The fairness audit of ``scorer`` on the labelled ``table`` (errors name the option)."""
    from dayzero.risk.fairness import FairnessError, Sensitive, fairness_audit
    from dayzero.risk.scorer import UnknownCategoryWarning

    columns = list(table.frame.columns)
    sensitive = list(dict.fromkeys(sensitive))
    for column in sensitive:
        if column not in columns:
            _fail(f"{table.path} has no column {column!r}; its columns: {columns}", "--sensitive")
        if column == label:
            _fail(f"{column!r} is the label column, not a sensitive attribute", "--sensitive")
    missing = [c for c in scorer.columns_ if c not in columns]
    if missing:
        _fail(f"{table.path} lacks columns the model reads: {missing}", "--data")
    _check_numbers(scorer, table, table.frame[list(scorer.columns_)])
    try:
        flags = default_flags(table.frame[label], scorer.classes_, scorer.positive_label_)
    except TargetError as exc:
        _target_problem(exc, table, "--data")
    edges = _parse_bins(list(bins or []), sensitive)
    mapping = {} if groups is None else _parse_groups(groups, sensitive)
    specs = [Sensitive(c, bins=edges.get(c), groups=mapping.get(c)) for c in sensitive]
    frame = table.frame.drop(columns=[label])
    try:
        with _shown_warnings(UnknownCategoryWarning):
            return fairness_audit(
                scorer,
                frame,
                flags.astype(int),
                specs,
                cutoff,
                approval_rate=approval_rate,
                n_resamples=n_resamples,
                random_state=seed,
                data={"file": str(table.path), "target": label},
            )
    except FairnessError as exc:
        _fail(f"{table.path}: {exc}")
    except (TypeError, ValueError) as exc:
        _fail(f"{table.path}: {exc}", "--data")


def _print_audit(audit: Any) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()

    def cell(e: Any, pct: bool = True) -> str:
        if not np.isfinite(e.value):
            return "n/a"
        if pct:
            return f"{e.value:.1%} [{e.low:.1%}, {e.high:.1%}]"
        return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"

    cut = audit.cutoff
    console.print(
        f"{audit.n} applicants, default rate {audit.default_rate:.1%}; approved when PD < "
        f"{cut['pd']:.4g} (approval rate {cut['approval_rate']:.1%}); "
        f"{audit.bootstrap['confidence']:.0%} bootstrap intervals"
    )
    for a in audit.attributes:
        title = f"{a.name} (column {a.column}" + ("" if a.in_model else ", not read by the model")
        table = RichTable(title=title + ")")
        for column in ("group", "n", "approval", "default rate", "mean PD", "AUC"):
            table.add_column(column)
        for g in a.groups:
            table.add_row(
                str(g["group"]),
                str(g["n"]),
                cell(g["approval_rate"]),
                cell(g["default_rate"]),
                cell(g["mean_pd"], False),
                cell(g["auc"], False),
            )
        console.print(table)
        flag = "FLAGGED: under 0.8" if a.four_fifths_flag else "passes"
        console.print(
            f"  demographic parity ratio {cell(a.gaps['demographic_parity_ratio'], False)} "
            f"(four-fifths rule: {flag}); difference "
            f"{cell(a.gaps['demographic_parity_difference'], False)}"
        )
        console.print(
            f"  equal opportunity difference {cell(a.gaps['equal_opportunity_difference'], False)}"
            f"; equalised odds difference {cell(a.gaps['equalized_odds_difference'], False)}"
        )
        if a.counterfactual is not None:
            cf = a.counterfactual
            console.print(
                f"  counterfactual (only {a.column!r} changed): flip rate {cell(cf['flip_rate'])}"
                f", mean |PD shift| {cell(cf['mean_abs_pd_shift'], False)}"
            )
        for x in a.left_out:
            console.print(f"  left out: {x['group']!r} ({x['n']} rows, {x['why']})")
        for note in a.notes:
            console.print(f"  note: {note}")


@risk_app.command()
def audit(
    model_dir: Annotated[Path, typer.Argument(help="Folder written by `dayzero risk fit`.")],
    data: Annotated[
        Path, typer.Option(help="Labelled applicants (any format), e.g. the test part.")
    ],
    sensitive: Annotated[
        list[str],
        typer.Option(
            help="Sensitive column to audit (repeatable); it need not be a feature of the model."
        ),
    ],
    target: Annotated[
        str | None,
        typer.Option(help="Label column (default: the target the model was fitted on)."),
    ] = None,
    cutoff: Annotated[
        float | None, typer.Option(help="Approve when PD < this probability of default.")
    ] = None,
    approval_rate: Annotated[
        float | None,
        typer.Option(
            help="Instead of --cutoff: approve this share, lowest PD first (default: the share "
            "of goods in the file)."
        ),
    ] = None,
    bins: Annotated[
        list[str] | None,
        typer.Option(
            help="Bands of a numeric sensitive column: COLUMN=EDGES (age=25 gives < 25 and "
            ">= 25; age=25,35 three bands) or COLUMN=qN (N quantile bands); repeatable."
        ),
    ] = None,
    groups: Annotated[
        Path | None,
        typer.Option(
            help='JSON file mapping values to groups: {"personal_status_and_sex": '
            '{"male : single": "male", ...}}.'
        ),
    ] = None,
    write_to_model: Annotated[
        bool,
        typer.Option(
            help="Write fairness_audit.json into MODEL_DIR (`dayzero card` then shows it)."
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the audit as JSON here.")
    ] = None,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    sep: SepOption = None,
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
) -> None:
    """Fairness audit: approval and default rates, calibration and AUC per group of each
    sensitive column, demographic parity (four-fifths rule), equal opportunity, equalised odds,
    bootstrap intervals and a counterfactual flip test."""
    if cutoff is not None and approval_rate is not None:
        _fail("give --cutoff (a PD) or --approval-rate, not both", "--cutoff")
    if json_out is not None and not json_out.parent.is_dir():
        _fail(f"{json_out}: the folder {json_out.parent} does not exist; create it", "--json")
    if n_resamples < 1:
        _fail(f"{n_resamples} resamples: pass 1 or more (1000 is the default)", "--n-resamples")
    if not model_dir.is_dir():
        _fail(f"{model_dir} is not a folder; name a folder written by `dayzero risk fit`")
    scorer, info = _load(model_dir)
    table = _read(data, sep, fmt, encoding)
    label = _label_column(model_dir, info, table, data, target, "audit")
    if label in scorer.columns_:
        _fail(f"{label!r} is a column the model scores, not a label", "--target")
    result = _fairness(
        scorer,
        table,
        label,
        sensitive,
        bins=bins,
        groups=groups,
        cutoff=cutoff,
        approval_rate=approval_rate,
        n_resamples=n_resamples,
        seed=seed,
    )
    typer.echo(f"read {data}: {table.describe()}; label {label!r}")
    _print_audit(result)
    for line in result.summary():
        typer.echo(line)
    if json_out is not None:
        result.to_json(json_out)
        typer.echo(f"audit -> {json_out}")
    if write_to_model:
        path = result.save(model_dir)
        typer.echo(f"audit -> {path} (the model card shows it: dayzero card {model_dir})")


def _label_column(
    model: Path, info: Any, table: Any, data: Path, target: str | None, what: str
) -> str:
    """The label column a report or audit measures: ``--target``, else the model's stored
    target; exits naming the fix when there is none or the data lacks it."""
    label = target or (info.target if info is not None else None)
    if label is None:
        _fail(
            f"{model} has no stored target (it was not fitted by `dayzero risk fit`): name the "
            f"label column of {data}; {_binary_hint(table.frame)}",
            "--target",
        )
    if label not in table.frame.columns:
        _fail(
            f"{data} has no column {label!r} (the label the {what} measures); its columns: "
            f"{list(table.frame.columns)}",
            "--target" if target else "--data",
        )
    return label
