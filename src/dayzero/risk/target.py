"""The label column of a risk model: named, checked, stored with the model, dropped when scoring.

A table a risk team scores often still holds the label (a back-test, last quarter's book). The
rules below are the same for ``dayzero risk`` and ``POST /v1/risk/score``:

* fitting needs the target named; :func:`binary_columns` lists the candidates when it is not;
* :func:`check_target` refuses a target with missing values or other than two values, naming
  the first bad row and what to do;
* :class:`TrainingInfo` (``training.json`` beside the model's ``dayzero.json``) remembers the
  target and the columns kept out of the features (ids), so scoring and reports need no
  ``--target``; the model folder stays a plain artifact (``RiskScorer.load`` ignores the file);
* :func:`scoring_columns` sorts a frame's columns into the model's features, the target (dropped;
  its labels can measure the scores, see :func:`default_flags`) and pass-through columns
  (carried to the output); any other column is an error naming it, as is a missing feature.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRAINING_FILE = "training.json"
_FORMAT = "dayzero-risk-training"
_FORMAT_VERSION = 1


class TargetError(ValueError):
    """The target column cannot be used; the message says why and what to do.

    Parameters
    ----------
    message : str
        The whole message.
    column : str
        The target column.
    row : int, optional
        0-based position of the first bad row, where one row is to blame (callers turn it into
        a file line or a request index).
    """

    def __init__(self, message: str, column: str, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


class ColumnError(ValueError):
    """A frame to score has columns the model does not read, or lacks ones it does.

    Parameters
    ----------
    message : str
        What differs (callers add the fix that suits them).
    unexpected, missing : list of str
        Columns the model was not fitted on / features the frame lacks.
    """

    def __init__(self, message: str, unexpected: list[str], missing: list[str]) -> None:
        super().__init__(message)
        self.unexpected = unexpected
        self.missing = missing


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def binary_columns(frame: pd.DataFrame) -> list[str]:
    """Columns with exactly two distinct values (missing values aside): the target candidates.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    list of str
        In the frame's column order.
    """
    return [str(c) for c in frame.columns if frame[c].nunique(dropna=True) == 2]


def _value_counts(values: pd.Series, limit: int = 6) -> str:
    counts = values.value_counts(dropna=True)
    shown = ", ".join(f"{_scalar(v)!r}: {n}" for v, n in counts.head(limit).items())
    more = f", ... ({len(counts)} values in all)" if len(counts) > limit else ""
    return "{" + shown + more + "}"


def check_target(values: pd.Series, column: str, candidates: Sequence[str] = ()) -> None:
    """Refuse a target that is not two labels on every row.

    Parameters
    ----------
    values : pandas.Series
        The target column.
    column : str
        Its name (for the message).
    candidates : sequence of str, optional
        Binary columns of the table, suggested when ``column`` is not binary.

    Raises
    ------
    TargetError
        With ``row`` set to the first empty row when labels are missing.
    """
    empty = values.isna().to_numpy()
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise TargetError(
            f"target column {column!r} is empty in {int(empty.sum())} of {len(values)} rows "
            f"(the first is row {first}); every applicant needs a label: fill the label in or "
            "drop those rows",
            column,
            first,
        )
    distinct = values.nunique()
    if distinct == 2:
        return
    others = [c for c in candidates if c != column]
    hint = f"; binary columns of this table: {others}" if others else ""
    if distinct < 2:
        raise TargetError(
            f"target column {column!r} has one value only {_value_counts(values)}: there are no "
            "defaults (or no good loans) to learn from; use a table with both outcomes" + hint,
            column,
        )
    raise TargetError(
        f"target column {column!r} has {distinct} values {_value_counts(values)}, but a risk "
        "target has two (default / no default): map it to two values first, e.g. "
        f"defaulted = ({column} == 'charged off'), or choose another column" + hint,
        column,
    )


@dataclass(frozen=True)
class TrainingInfo:
    """What ``dayzero risk fit`` remembers about the table a model was fitted on.

    Parameters
    ----------
    target : str
        The label column.
    positive_label : JSON scalar
        The label that means default.
    features : list of str
        The model's input columns (a check that the file belongs to the model beside it).
    passthrough : list of str
        Columns of the training table kept out of the features (``--exclude``, e.g. an id):
        carried to the scores when present, never scored.
    """

    target: str
    positive_label: Any
    features: list[str]
    passthrough: list[str] = field(default_factory=list)

    def save(self, folder: str | Path) -> Path:
        """Write ``training.json`` into ``folder``; returns its path."""
        path = Path(folder) / TRAINING_FILE
        document = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "target": self.target,
            "positive_label": _scalar(self.positive_label),
            "features": list(self.features),
            "passthrough": list(self.passthrough),
        }
        path.write_text(json.dumps(document, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path, features: Iterable[str] | None = None) -> TrainingInfo | None:
        """Read ``training.json`` from ``folder``; None when the folder has none.

        Parameters
        ----------
        folder : str or Path
            A model folder.
        features : iterable of str, optional
            The loaded model's columns; a file that names other columns is refused (it was
            left there by another model).

        Raises
        ------
        ValueError
            The file is not one this function wrote, or describes another model.
        """
        path = Path(folder) / TRAINING_FILE
        if not path.is_file():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("format") != _FORMAT:
                raise KeyError("format")
            info = cls(
                target=str(document["target"]),
                positive_label=document["positive_label"],
                features=[str(c) for c in document["features"]],
                passthrough=[str(c) for c in document.get("passthrough", [])],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{path} is not a training description written by `dayzero risk fit` ({exc}); "
                "delete it, or refit the model with `dayzero risk fit`"
            ) from None
        if features is not None and list(features) != info.features:
            raise ValueError(
                f"{path} describes a model fitted on columns {info.features}, but the model in "
                f"{Path(folder)} reads {list(features)}: the file was left by another model; "
                "delete it, or refit with `dayzero risk fit`"
            )
        return info


@dataclass(frozen=True)
class ScoringColumns:
    """How :func:`scoring_columns` sorted a frame's columns."""

    target: str | None
    """The target column, when the frame has it (drop it before scoring)."""
    passthrough: list[str]
    """Pass-through columns the frame has (carry them to the output)."""


def scoring_columns(
    columns: Iterable[Any],
    features: Sequence[str],
    *,
    target: str | None = None,
    passthrough: Sequence[str] = (),
) -> ScoringColumns:
    """Sort the columns of a frame to score; refuse unknown ones and missing features.

    Parameters
    ----------
    columns : iterable
        The frame's columns.
    features : sequence of str
        The model's input columns.
    target : str, optional
        The model's label column (allowed, to be dropped).
    passthrough : sequence of str, optional
        Columns allowed and carried to the output, not scored.

    Returns
    -------
    ScoringColumns

    Raises
    ------
    ColumnError
        Naming every unexpected column and every missing feature.
    """
    names = [str(c) for c in columns]
    known = set(features)
    extra = {c for c in passthrough if c not in known}
    unexpected = [c for c in names if c not in known and c != target and c not in extra]
    missing = [c for c in features if c not in set(names)]
    if unexpected or missing:
        parts = []
        if unexpected:
            parts.append(f"columns the model was not fitted on: {unexpected}")
        if missing:
            parts.append(f"columns the model needs are missing: {missing}")
        message = "; ".join(parts) + f" (the model reads {list(features)})"
        raise ColumnError(message, unexpected, missing)
    return ScoringColumns(
        target=target if target is not None and target in names else None,
        passthrough=[c for c in names if c in extra],
    )


def default_flags(values: pd.Series, classes: Sequence[Any], positive_label: Any) -> np.ndarray:
    """``values == positive_label`` as booleans, after checking they are the model's labels.

    A label read back from a file may have another type than the one the model was fitted on
    (``"1"`` for 1, ``1.0`` for 1): values are matched by their text when they do not match
    as they are.

    Parameters
    ----------
    values : pandas.Series
        The labels of a scored table.
    classes : sequence
        The model's two labels.
    positive_label
        The label that means default.

    Returns
    -------
    numpy.ndarray of bool

    Raises
    ------
    TargetError
        A missing label or a value that is not one of ``classes``.
    """
    column = str(values.name)
    empty = values.isna().to_numpy()
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise TargetError(
            f"label column {column!r} is empty in {int(empty.sum())} rows (the first is row "
            f"{first}); fill it in or drop the column to score without measuring",
            column,
            first,
        )

    def text(value: Any) -> str:
        value = _scalar(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    known = {text(c) for c in classes}
    texts = values.map(text)
    bad = ~texts.isin(known).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise TargetError(
            f"label column {column!r} has {_scalar(values.iloc[first])!r} (row {first}), which "
            f"is not one of the model's labels {[_scalar(c) for c in classes]}; fix the labels "
            "or drop the column to score without measuring",
            column,
            first,
        )
    return (texts == text(positive_label)).to_numpy()
