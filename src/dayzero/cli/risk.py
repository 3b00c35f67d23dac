"""``dayzero risk``: fit a RiskScorer, score applicants, write risk reports.

    dayzero risk fit --data applicants.csv --target default --out model/
    dayzero risk score --model model/ --data new.csv --out scores.csv
    dayzero risk report --model model/ --data labelled.csv --out report.html

``fit`` saves the model (safetensors + JSON) and the training applicants as
``reference.csv`` (the population PSI is measured against).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

risk_app = typer.Typer(help="Applicant risk scoring: fit, score, report.", no_args_is_help=True)
REFERENCE_FILE = "reference.csv"


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise typer.BadParameter(f"{path} is not a file", param_hint="--data")
    frame = pd.read_csv(path)
    if frame.empty:
        raise typer.BadParameter(f"{path} has no rows", param_hint="--data")
    return frame


def _split_target(frame: pd.DataFrame, target: str, path: Path) -> tuple[pd.DataFrame, pd.Series]:
    if target not in frame.columns:
        raise typer.BadParameter(
            f"{path} has no column {target!r}; columns: {list(frame.columns)}",
            param_hint="--target",
        )
    return frame.drop(columns=[target]), frame[target]


def _load(model: Path):
    from dayzero.core.artifact import ArtifactError
    from dayzero.risk.scorer import RiskScorer

    try:
        return RiskScorer.load(model)
    except ArtifactError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc


@risk_app.command()
def fit(
    data: Annotated[Path, typer.Option(help="CSV of applicants with the target column.")],
    target: Annotated[str, typer.Option(help="Target column: 1 = default, 0 = good.")],
    out: Annotated[Path, typer.Option(help="Folder to save the model in.")],
    positive_label: Annotated[
        str | None,
        typer.Option(
            help="The target value that means default (e.g. 'bad' for good/bad labels); "
            "default: the larger of the two values (1 for 0/1)."
        ),
    ] = None,
    encoder: Annotated[str, typer.Option(help="Encoder name or folder.")] = "all-MiniLM-L6-v2",
    text_column: Annotated[
        list[str] | None, typer.Option(help="Free-text column (repeatable).")
    ] = None,
    fusion: Annotated[bool, typer.Option(help="Also use the raw tabular features.")] = True,
    c: Annotated[float, typer.Option("--C", help="Inverse L2 strength of the head.")] = 1.0,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Column to leave out, e.g. an id (repeatable).")
    ] = None,
) -> None:
    """Fit a RiskScorer (logistic head) and save it with its reference population."""
    from dayzero.risk.scorer import RiskScorer

    frame = _read(data)
    X, y = _split_target(frame, target, data)
    X = X.drop(columns=[c for c in (exclude or []) if c in X.columns])
    label = None if positive_label is None else _as_label(positive_label, y)
    try:
        model = RiskScorer(
            encoder=encoder,
            text_columns=text_column or None,
            fusion=fusion,
            C=c,
            positive_label=label,
            random_state=0,
        ).fit(X, y)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    model.save(out)
    X.to_csv(out / REFERENCE_FILE, index=False)
    defaults = int((y == model.positive_label_).sum())
    typer.echo(
        f"fitted on {len(X)} applicants ({defaults} with {target} = {model.positive_label_!r}, "
        f"the default label); saved to {out}"
    )


def _as_label(text: str, y: pd.Series):
    """``--positive-label`` as a value of ``y``'s type (the CSV reader typed the column)."""
    for value in pd.unique(y):
        if str(value) == text:
            return value.item() if hasattr(value, "item") else value
    raise typer.BadParameter(
        f"{text!r} is not a value of the target column (values: {sorted(map(str, pd.unique(y)))})",
        param_hint="--positive-label",
    )


@risk_app.command()
def score(
    model: Annotated[Path, typer.Option(help="Folder written by `dayzero risk fit`.")],
    data: Annotated[Path, typer.Option(help="CSV of applicants (the training columns).")],
    out: Annotated[Path, typer.Option(help="CSV to write: pd, points, reasons.")],
    reasons: Annotated[int, typer.Option(help="Reason codes per applicant (0 = none).")] = 3,
) -> None:
    """Score applicants: probability of default, points, unknown values and top reasons."""
    scorer = _load(model)
    frame = _read(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd_ = scorer.predict_pd(frame)
            result = pd.DataFrame({"pd": pd_, "points": scorer.scale.points(pd_)})
        unknown = scorer.unknown_values(frame)
        flagged = unknown.groupby("row")["column"].agg(";".join) if len(unknown) else {}
        result["unknown"] = [flagged.get(i, "") for i in range(len(frame))]
        if reasons > 0:
            table = scorer.explain(frame, top=reasons)
            for rank in range(1, reasons + 1):
                picked = table[table["rank"] == rank].set_index("row")["field"]
                result[f"reason_{rank}"] = [picked.get(i, "") for i in range(len(frame))]
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    result.to_csv(out, index=False)
    typer.echo(f"scored {len(result)} applicants -> {out}")


@risk_app.command()
def report(
    model: Annotated[Path, typer.Option(help="Folder written by `dayzero risk fit`.")],
    data: Annotated[Path, typer.Option(help="CSV of labelled applicants.")],
    out: Annotated[Path, typer.Option(help="HTML report to write (JSON next to it).")],
    target: Annotated[str, typer.Option(help="Target column: 1 = default.")] = "default",
) -> None:
    """Write the risk report (AUC, Gini, KS deciles, calibration, PSI) as HTML and JSON."""
    scorer = _load(model)
    X, y = _split_target(_read(data), target, data)
    reference_file = model / REFERENCE_FILE
    reference = pd.read_csv(reference_file) if reference_file.is_file() else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = scorer.report(X, y.to_numpy(), reference=reference)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    result.to_html(out)
    result.to_json(out.with_suffix(".json"))
    typer.echo(
        f"AUC {result.auc:.3f}  Gini {result.gini:.3f}  KS {result.ks:.3f}  "
        f"Brier {result.brier:.4f} -> {out}"
    )
