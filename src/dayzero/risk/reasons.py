"""Field names, value labels and the wording of reason codes.

``labels`` of :class:`~dayzero.risk.scorer.RiskScorer` takes two kinds of entry:

* ``{"credit_amount": "amount of credit"}``: a string names the field in the rendered text and
  in the reasons;
* ``{"SEX": {1: "male", 2: "female"}}``: a mapping gives the coded values their meaning. The
  codes are matched whatever their type (``2``, ``2.0`` and ``"2"`` are the same code), so the
  labels survive CSV files and JSON saves. A column with value labels is a categorical.

A reason reads ``"SEX is female (raises risk)"`` instead of ``"The SEX is 2"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dayzero.core.templates import format_value, humanize, is_missing
from dayzero.risk.tabular import canonical

NOT_GIVEN = "not given"
TEXT_PREVIEW = 60


def split_labels(
    labels: Mapping[str, Any] | None,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``labels`` as ``(field labels, value labels)``; value-label keys made canonical.

    Raises
    ------
    TypeError
        An entry is neither a string nor a mapping (names the column and what to pass).
    """
    fields: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    for column, entry in (labels or {}).items():
        if isinstance(entry, str):
            fields[str(column)] = entry
        elif isinstance(entry, Mapping):
            coded = {}
            for code, name in entry.items():
                key = canonical(code)
                if key is None:
                    raise TypeError(
                        f"labels[{column!r}] has a missing code {code!r}; value labels map "
                        "present codes to names, e.g. {1: 'male', 2: 'female'}"
                    )
                coded[key] = str(name)
            values[str(column)] = coded
        else:
            raise TypeError(
                f"labels[{column!r}] must be a field name (str) or value labels (a dict such "
                f"as {{1: 'male', 2: 'female'}}), got {type(entry).__name__}"
            )
    return fields, values


def labelled(value: Any, value_labels: Mapping[str, str] | None) -> Any:
    """The value's label when ``value_labels`` names its code, else the value itself."""
    if value_labels is None or is_missing(value):
        return value
    return value_labels.get(canonical(value), value)


def field_name(column: str, field_labels: Mapping[str, str]) -> str:
    """How the reasons name a field: its label, else the humanised column name."""
    return field_labels.get(column, humanize(column))


def value_text(
    value: Any,
    value_labels: Mapping[str, str] | None = None,
    unit: str = "",
    is_text: bool = False,
) -> str:
    """A value as a reason shows it: labelled, formatted, quoted when free text."""
    if is_missing(value):
        return NOT_GIVEN
    shown = labelled(value, value_labels)
    if is_text:
        text = " ".join(str(shown).split())
        if len(text) > TEXT_PREVIEW:
            text = text[:TEXT_PREVIEW].rsplit(" ", 1)[0] + " ..."
        return f'"{text}"'
    text = format_value(shown) if not isinstance(shown, str) else " ".join(shown.split())
    return f"{text} {unit}" if unit else text


def reason_text(
    column: str,
    value: Any,
    contribution: float,
    field_labels: Mapping[str, str],
    value_labels: Mapping[str, Mapping[str, str]],
    units: Mapping[str, str],
    unknown: bool = False,
    is_text: bool = False,
) -> str:
    """``"<field> is <value> (raises risk)"``; ``"... (unseen category, ...)"`` when unknown."""
    shown = value_text(value, value_labels.get(column), units.get(column, ""), is_text)
    direction = "raises risk" if contribution > 0 else "lowers risk"
    note = "unseen category, " if unknown else ""
    return f"{field_name(column, field_labels)} is {shown} ({note}{direction})"
