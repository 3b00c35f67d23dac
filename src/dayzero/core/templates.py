"""Text views: render an entity's fields (a movie, a diner, an applicant) as text for an encoder.

Two styles share one :class:`Template`:

* ``"list"``: ``"Title: Toy Story | Genres: Animation, Comedy | Plot: ..."`` for items and profiles;
* ``"sentences"``: TabLLM's text serialisation, ``"The checking account is < 0 DM. The credit amount
  is 1,169 DM."``, for tabular rows such as applicants.

Missing values (``None``, NaN, ``""``, ``"?"`` and an empty list) are skipped, never rendered as
``nan``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dayzero.core.schema import Entities, SchemaError

MISSING_MARKERS = frozenset({"", "?", "nan", "NaN", "None", "null", "NULL", "N/A", "n/a"})


def is_missing(value: Any) -> bool:
    """True for values a template skips: None, NaN, empty strings, ``?`` markers, empty lists."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, np.floating) and np.isnan(value):
        return True
    if isinstance(value, str):
        return value.strip() in MISSING_MARKERS
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return len(value) == 0
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value: Any, decimals: int = 2, thousands: bool = True) -> str:
    """Human-readable text for one value: ``1169 -> "1,169"``, ``2.5 -> "2.5"``, lists joined."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if thousands else str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value.is_integer():
            return f"{int(value):,}" if thousands else str(int(value))
        text = f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"
        return text.rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return ", ".join(format_value(v, decimals, thousands) for v in value if not is_missing(v))
    return " ".join(str(value).split())


def humanize(name: str) -> str:
    """``"credit_amount" -> "credit amount"``; the default label of a field."""
    return " ".join(name.replace("_", " ").replace("-", " ").split())


@dataclass
class FieldSpec:
    """How one field is rendered.

    Parameters
    ----------
    name
        Column / key in the record.
    label
        Text shown for the field; defaults to the humanised name.
    unit
        Appended after the value (``"DM"``, ``"months"``).
    prefix
        Put before the value (``"$"``).
    max_chars
        Truncate long text values (plots, descriptions) to this many characters.
    thousands
        Group digits (``1,169``); turn off for years and codes.
    """

    name: str
    label: str | None = None
    unit: str = ""
    prefix: str = ""
    max_chars: int | None = None
    thousands: bool = True

    def render_value(self, value: Any, decimals: int) -> str:
        text = format_value(value, decimals, self.thousands)
        if self.max_chars is not None and len(text) > self.max_chars:
            text = text[: self.max_chars].rsplit(" ", 1)[0] + " ..."
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.prefix}{text}{unit}"

    @property
    def display(self) -> str:
        return self.label if self.label is not None else humanize(self.name)


@dataclass
class Template:
    """Renders records to text with a fixed field order, labels and units.

    Parameters
    ----------
    fields
        Field names or :class:`FieldSpec` objects, in the order they are rendered.
    style
        ``"list"`` (``"Label: value | ..."``) or ``"sentences"`` (``"The label is value."``).
    prefix
        Text put before the rendered fields (``"A movie."``).
    separator
        Between fields in ``"list"`` style.
    decimals
        Decimal places for floats.

    Examples
    --------
    >>> t = Template(["title", FieldSpec("amount", unit="DM")], style="sentences")
    >>> t.render({"title": "Loan", "amount": 1169, "other": 1})
    'The title is Loan. The amount is 1,169 DM.'
    >>> Template(["title", "genres"]).render({"title": "Heat", "genres": ["Crime", "Drama"]})
    'Title: Heat | Genres: Crime, Drama'
    """

    fields: Sequence[str | FieldSpec]
    style: Literal["list", "sentences"] = "list"
    prefix: str = ""
    separator: str = " | "
    decimals: int = 2
    specs: list[FieldSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.style not in ("list", "sentences"):
            raise SchemaError(f"Template style must be 'list' or 'sentences', not {self.style!r}")
        self.specs = [f if isinstance(f, FieldSpec) else FieldSpec(str(f)) for f in self.fields]
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise SchemaError(f"Template fields must be unique; got {names}")

    def with_field(self, spec: str | FieldSpec) -> Template:
        """This template plus ``spec`` at the end (``self`` if it has a field of that name).

        Records without the field render exactly as before, so vectors of them stay valid.

        >>> Template(["title"]).with_field("text").render({"title": "Heat"})
        'Title: Heat'
        """
        spec = spec if isinstance(spec, FieldSpec) else FieldSpec(str(spec))
        if any(existing.name == spec.name for existing in self.specs):
            return self
        return replace(self, fields=[*self.specs, spec])

    def render(self, record: Mapping[str, Any]) -> str:
        """Text for one record; fields that are absent or missing are skipped."""
        parts = []
        for spec in self.specs:
            value = record.get(spec.name)
            if is_missing(value):
                continue
            text = spec.render_value(value, self.decimals)
            if self.style == "list":
                parts.append(f"{spec.display[:1].upper()}{spec.display[1:]}: {text}")
            else:
                parts.append(f"The {spec.display} is {text}.")
        body = self.separator.join(parts) if self.style == "list" else " ".join(parts)
        return f"{self.prefix} {body}".strip() if self.prefix else body

    def render_many(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        return [self.render(r) for r in records]

    def render_frame(self, frame: pd.DataFrame) -> list[str]:
        """Text for every row of a frame (the index is not rendered)."""
        return self.render_many(frame.to_dict(orient="records"))

    def render_entities(self, entities: Entities) -> dict[Hashable, str]:
        """Entity id -> text for every entity."""
        return dict(zip(entities.ids, self.render_frame(entities.frame), strict=True))

    # Serialised next to model weights so the same text view is used at serving time.
    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [asdict(s) for s in self.specs],
            "style": self.style,
            "prefix": self.prefix,
            "separator": self.separator,
            "decimals": self.decimals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Template:
        specs = [FieldSpec(**f) for f in data["fields"]]
        return cls(
            specs,
            style=data.get("style", "list"),
            prefix=data.get("prefix", ""),
            separator=data.get("separator", " | "),
            decimals=data.get("decimals", 2),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Template:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def for_entities(
        cls, entities: Entities, style: Literal["list", "sentences"] = "list", **kwargs: Any
    ) -> Template:
        """A template over every typed field of ``entities``, in declaration order."""
        fields = list(entities.fields) or list(entities.frame.columns)
        return cls(fields, style=style, **kwargs)


def entity_template(spec: Mapping[str, Any] | None, entities: Entities | None) -> Template:
    """``Template.from_dict(spec)`` when a spec is given, else every typed field of
    ``entities`` in declaration order (long text cut to 600 characters, numbers ungrouped);
    an empty template when there are no entities."""
    if spec:
        return Template.from_dict(spec)
    if entities is None:
        return Template([])
    return Template(
        [
            FieldSpec(name, max_chars=600 if kind == "text" else None, thousands=kind != "numeric")
            for name, kind in entities.fields.items()
        ]
    )


def serialize_row(
    record: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> str:
    """TabLLM-style sentence serialisation of one tabular row, every field in record order.

    >>> serialize_row({"credit_amount": 1169, "duration": 6}, units={"credit_amount": "DM"})
    'The credit amount is 1,169 DM. The duration is 6.'
    """
    labels, units, skip = labels or {}, units or {}, set(exclude)
    specs = [
        FieldSpec(k, label=labels.get(k), unit=units.get(k, "")) for k in record if k not in skip
    ]
    return Template(specs, style="sentences").render(record)
