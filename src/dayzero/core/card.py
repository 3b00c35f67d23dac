"""Model cards: what a saved model was trained on, how it was chosen and measured, and its limits.

Every model's ``save`` writes a card beside its weights (Mitchell et al. 2019, "Model Cards for
Model Reporting"):

``card.json``
    The card as data (:class:`ModelCard`; the keys are documented there).
``card.html``
    The same card as one self-contained page.

A card holds what the model knows at save time (the training data summary, how its settings
were chosen, the encoder and adapter, intended use and limits). What is measured later is kept
in files of its own beside it and merged when the card is read (:func:`read_card`):

``evaluation.json``
    Results of ``dayzero evaluate`` (per segment, with confidence intervals), attached with
    :func:`attach_evaluation` or ``dayzero card DIR --evaluation results.json``.
``fairness_audit.json``
    A fairness audit (:mod:`dayzero.risk.fairness`), written by ``dayzero risk audit
    --write-to-model``.
``training.json``
    The target column and the columns left out (``dayzero risk fit``).

Saving a model again into the same folder removes ``evaluation.json`` and
``fairness_audit.json``: they measured the model that was there before. A served registry
version adds the numbers given to ``publish`` (its ``metrics.json``) and its watermark.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.artifact import CONFIG_FILE, dayzero_version, json_default

CARD_JSON = "card.json"
CARD_HTML = "card.html"
EVALUATION_FILE = "evaluation.json"
FAIRNESS_FILE = "fairness_audit.json"
TRAINING_FILE = "training.json"
#: Files that describe one fitted model: a new save into the folder removes them.
MEASURED_FILES = (EVALUATION_FILE, FAIRNESS_FILE)
CARD_VERSION = 1

#: Words of a column name that mark an attribute protected in many jurisdictions (sex, age,
#: origin, religion, family status, disability): the card says when a model reads one.
SENSITIVE_WORDS = frozenset(
    {
        "sex",
        "gender",
        "age",
        "race",
        "ethnic",
        "ethnicity",
        "religion",
        "marital",
        "marriage",
        "married",
        "nationality",
        "citizenship",
        "foreign",
        "disability",
        "pregnancy",
    }
)


class CardError(ValueError):
    """A card or a file attached to it cannot be read or written; the message names the fix."""


@dataclass
class ModelCard:
    """The card of one saved model.

    Parameters
    ----------
    kind, name : str
        The artifact's family and class (``"recommender"`` / ``"two-tower"``,
        ``"risk-scorer"`` / ``"tabular"``...).
    created : str
        When the card was written (ISO 8601, UTC).
    dayzero_version : str
        The dayzero that wrote it.
    params : dict
        Constructor parameters (JSON).
    training_data : dict
        Summary of the data the model was fitted on: counts, value scale, fields and their
        kinds, time range (recommenders); rows, columns by kind, positive rate (risk); texts
        and classes (text models). Empty when the model did not record it.
    selection : dict
        How fitted settings were chosen, each on validation folds or carves of the training
        data (never the test data), with the scores compared.
    encoder : dict or None
        The language model and its transfer strategy (``model``, ``strategy``, ``used``), or
        None for a model without one.
    intended_use : str
        What the model is for.
    limitations : list of str
        What it is not for, and what the training data implies (e.g. a protected attribute
        among the features, no item text).
    evaluation : list of dict
        Evaluation results (``EvaluationResult.to_dict()``: model, protocol, task, segments
        with metrics and ``ci``), from ``evaluation.json``.
    fairness : dict or None
        The fairness audit, from ``fairness_audit.json``.
    serving : dict or None
        For a served registry version: ``version``, ``metrics`` and ``watermark``.
    notes : list of str
        Free notes added with ``dayzero card --note``.
    """

    kind: str
    name: str
    created: str = ""
    dayzero_version: str = "unknown"
    params: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    encoder: dict[str, Any] | None = None
    intended_use: str = ""
    limitations: list[str] = field(default_factory=list)
    evaluation: list[dict[str, Any]] = field(default_factory=list)
    fairness: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data, with ``card_version``."""
        return {"card_version": CARD_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """The card of :meth:`to_dict` (unknown keys are ignored, missing ones defaulted)."""
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        if "kind" not in values or "name" not in values:
            raise CardError('a card needs "kind" and "name"')
        return cls(**values)

    def to_html(self) -> str:
        """The card as one self-contained HTML page."""
        return _render_html(self)


# ----------------------------------------------------------------------------- summaries


def sensitive_columns(names: Iterable[Any]) -> list[str]:
    """The column names among ``names`` that name a protected attribute (:data:`SENSITIVE_WORDS`),
    matched by whole words: ``personal_status_sex`` and ``AGE`` match, ``percentage`` does not."""
    found = []
    for name in names:
        text = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name)).lower()
        if set(re.split(r"[^a-z]+", text)) & SENSITIVE_WORDS:
            found.append(str(name))
    return found


def summarize_dataset(dataset: Any) -> dict[str, Any]:
    """The training-data section of a recommender's card, from a :class:`~dayzero.core.schema.
    Dataset`: users, items, interactions, density, the value scale, the time range and the
    user and item fields with their kinds."""
    frame = dataset.interactions.frame
    n_users, n_items = int(dataset.n_users), int(dataset.n_items)
    values = pd.to_numeric(frame["value"], errors="coerce").dropna().to_numpy(dtype=float)
    levels = np.unique(values)
    summary: dict[str, Any] = {
        "name": str(getattr(dataset, "name", "dataset")),
        "users": n_users,
        "items": n_items,
        "interactions": len(frame),
        "users_with_interactions": int(frame["user"].nunique()),
        "items_with_interactions": int(frame["item"].nunique()),
        "density": float(len(frame) / (n_users * n_items)) if n_users and n_items else 0.0,
        "values": _value_summary(values, levels),
    }
    if "timestamp" in frame and frame["timestamp"].notna().any():
        times = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True).dropna()
        if len(times):
            summary["time_range"] = [times.min().isoformat(), times.max().isoformat()]
    for side in ("items", "users"):
        entities = getattr(dataset, side, None)
        if entities is None:
            summary[f"{side[:-1]}_fields"] = {}
            continue
        summary[f"{side[:-1]}_fields"] = {str(k): str(v) for k, v in entities.fields.items()}
        summary[f"{side}_with_fields"] = len(entities.frame)
    return summary


def summarize_table(
    frame: pd.DataFrame,
    y: Sequence[Any] | np.ndarray,
    column_kinds: Mapping[str, Sequence[str]],
    positive_label: Any,
) -> dict[str, Any]:
    """The training-data section of a risk model's card: rows, columns by kind, the share of
    missing cells, the classes and the positive (default) rate."""
    labels = pd.Series(np.ravel(np.asarray(y))).astype(str)
    counts = labels.value_counts()
    positive = str(positive_label)
    return {
        "rows": len(frame),
        "columns": {kind: list(map(str, cols)) for kind, cols in column_kinds.items()},
        "missing_share": float(frame.isna().to_numpy().mean()) if frame.size else 0.0,
        "classes": {str(k): int(v) for k, v in counts.items()},
        "positive_label": positive,
        "positive_rate": float(counts.get(positive, 0) / max(len(labels), 1)),
    }


def summarize_texts(texts: Sequence[Any], y: Sequence[Any] | np.ndarray, task: str) -> dict:
    """The training-data section of a text model's card: how many texts, their length in
    words, and the classes (``task="classification"``) or the target's range."""
    lengths = np.asarray([len(str(t).split()) for t in texts], dtype=float)
    summary: dict[str, Any] = {
        "texts": len(lengths),
        "words": _quantiles(lengths) if len(lengths) else {},
    }
    target = np.ravel(np.asarray(y))
    if task == "classification":
        counts = pd.Series(target).astype(str).value_counts()
        summary["classes"] = {str(k): int(v) for k, v in counts.items()}
    else:
        numbers = target.astype(float)
        summary["target"] = _quantiles(numbers) if len(numbers) else {}
    return summary


def encoder_section(params: Mapping[str, Any], used: bool = True) -> dict[str, Any] | None:
    """The encoder section from a model's parameters (``encoder``, ``strategy``,
    ``strategy_params``), or None when it has no ``encoder`` parameter."""
    if "encoder" not in params:
        return None
    encoder = params["encoder"]
    if isinstance(encoder, Mapping):
        encoder = encoder.get("model", encoder)
    elif hasattr(encoder, "model"):
        encoder = encoder.model
    section: dict[str, Any] = {"model": _jsonable(encoder), "used": bool(used)}
    if "strategy" in params:
        section["strategy"] = _jsonable(params["strategy"])
    if params.get("strategy_params"):
        section["strategy_params"] = _jsonable(params["strategy_params"])
    return section


# ----------------------------------------------------------------------------- files


def write_card(folder: str | Path, card: ModelCard, fresh: bool = False) -> Path:
    """Write ``card.json`` and ``card.html`` into ``folder``; returns the JSON's path.

    With ``fresh=True`` (a model was just saved there) the measurement files of the model that
    was there before (:data:`MEASURED_FILES`) are removed first.
    """
    folder = Path(folder)
    if fresh:
        for name in MEASURED_FILES:
            (folder / name).unlink(missing_ok=True)
    if not card.created:
        card.created = datetime.now(UTC).isoformat(timespec="seconds")
    if card.dayzero_version == "unknown":
        card.dayzero_version = dayzero_version()
    stored = ModelCard(**{**asdict(card), "evaluation": [], "fairness": None, "serving": None})
    text = json.dumps(stored.to_dict(), indent=1, default=_json_default, allow_nan=False)
    _write(folder / CARD_JSON, text)
    _write(folder / CARD_HTML, read_card(folder).to_html())
    return folder / CARD_JSON


def read_card(folder: str | Path, serving: Mapping[str, Any] | None = None) -> ModelCard:
    """The card of the model in ``folder`` with what was measured since merged in.

    A folder saved before cards existed gets a card built from its ``dayzero.json`` (kind,
    name, params; no training-data summary).

    Parameters
    ----------
    folder : path
        A saved model's folder.
    serving : dict, optional
        The served version's ``version``, ``metrics`` and ``watermark``.

    Raises
    ------
    CardError
        The folder holds no saved model, or one of its card files is not valid JSON.
    """
    folder = Path(folder)
    path = folder / CARD_JSON
    card = ModelCard.from_dict(_read_json(path)) if path.is_file() else _card_from_artifact(folder)
    evaluation = folder / EVALUATION_FILE
    if evaluation.is_file():
        card.evaluation = list(_read_json(evaluation).get("results") or [])
    fairness = folder / FAIRNESS_FILE
    if fairness.is_file():
        card.fairness = _read_json(fairness)
    training = folder / TRAINING_FILE
    if training.is_file():
        card.training_data = {**card.training_data, "cli": _read_json(training)}
    if serving is not None:
        card.serving = dict(serving)
    return card


def attach_evaluation(
    folder: str | Path, results: Iterable[Any], source: str | None = None
) -> list[dict[str, Any]]:
    """Keep evaluation results with the model in ``folder`` (``evaluation.json``) and rewrite
    its ``card.html``; returns the results kept.

    ``results`` are ``EvaluationResult`` objects or their dicts (``dayzero evaluate --output``
    writes them under ``"results"``). When some are of the card's own model (by registered
    name), only those are kept.
    """
    folder = Path(folder)
    card = read_card(folder)
    rows = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in results]
    for row in rows:
        if "segments" not in row or "model" not in row:
            raise CardError(
                "an evaluation result needs 'model' and 'segments' (the JSON of `dayzero "
                "evaluate --output`)"
            )
    own = [r for r in rows if r["model"] == card.name]
    kept = own or rows
    document = {"source": source, "results": kept}
    _write(folder / EVALUATION_FILE, json.dumps(document, indent=1, default=_json_default))
    refresh_card(folder)
    return kept


def refresh_card(folder: str | Path, notes: Sequence[str] = (), **fields: Any) -> ModelCard:
    """Rewrite the card of ``folder`` (JSON and HTML) with ``notes`` appended and ``fields``
    (``intended_use``, ``limitations``) replaced; returns the merged card."""
    folder = Path(folder)
    card = read_card(folder)
    unknown = set(fields) - {"intended_use", "limitations"}
    if unknown:
        raise CardError(f"a card's {sorted(unknown)} are not set by hand")
    for key, value in fields.items():
        setattr(card, key, value)
    card.notes = [*card.notes, *notes]
    write_card(folder, card)
    return read_card(folder)


# ----------------------------------------------------------------------------- helpers


def _card_from_artifact(folder: Path) -> ModelCard:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CardError(f"{folder} holds no saved dayzero model ({CONFIG_FILE} is missing)")
    document = _read_json(path)
    return ModelCard(
        kind=str(document.get("kind")),
        name=str(document.get("name")),
        dayzero_version=str(document.get("dayzero_version", "unknown")),
        params=dict(document.get("params") or {}),
        limitations=["saved before model cards: no training-data summary was recorded"],
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CardError(f"{path}: expected a JSON object")
    return data


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _value_summary(values: np.ndarray, levels: np.ndarray) -> dict[str, Any]:
    if not len(values):
        return {"kind": "none"}
    if len(levels) == 1:
        return {"kind": "implicit", "value": float(levels[0])}
    out: dict[str, Any] = {
        "kind": "explicit",
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }
    if len(levels) <= 11:
        out["levels"] = [float(v) for v in levels]
    return out


def _quantiles(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.0, 0.5, 0.9, 1.0])
    return {"min": float(q[0]), "median": float(q[1]), "p90": float(q[2]), "max": float(q[3])}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    # A card is a report: what the artifact format cannot store is shown as text, not refused.
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    try:
        return json_default(value)
    except TypeError:
        return str(value)


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.warn{color:#a40}code{font-size:.85rem}
"""


def _render_html(card: ModelCard) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card: {e(card.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Model card: {e(card.kind)} / {e(card.name)}</h1>",
        f"<p>written {e(card.created)} by dayzero {e(card.dayzero_version)}</p>",
        "<h2>Intended use</h2>",
        f"<p>{e(card.intended_use or 'not stated')}</p>",
        "<h2>Limitations</h2>",
        _list(card.limitations) if card.limitations else "<p>none recorded</p>",
        "<h2>Training data</h2>",
        _mapping(card.training_data) if card.training_data else "<p>not recorded</p>",
        "<h2>How settings were chosen</h2>",
        _mapping(card.selection) if card.selection else "<p>fixed settings (no selection)</p>",
        "<h2>Encoder</h2>",
        _mapping(card.encoder) if card.encoder else "<p>no language model</p>",
        "<h2>Evaluation</h2>",
        _evaluation(card.evaluation),
        "<h2>Fairness audit</h2>",
        _mapping(card.fairness) if card.fairness else "<p>no audit attached</p>",
    ]
    if card.serving:
        parts += ["<h2>Serving</h2>", _mapping(card.serving)]
    if card.notes:
        parts += ["<h2>Notes</h2>", _list(card.notes)]
    parts += ["<h2>Parameters</h2>", _mapping(card.params), "</body></html>"]
    return "\n".join(parts)


def _list(items: Iterable[Any]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in items) + "</ul>"


def _mapping(data: Mapping[str, Any]) -> str:
    rows = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value and len(json.dumps(value, default=str)) > 80:
            cell = _mapping(value)
        else:
            cell = f"<code>{html.escape(json.dumps(value, default=_json_default))}</code>"
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{cell}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _evaluation(results: Sequence[Mapping[str, Any]]) -> str:
    if not results:
        return "<p>no evaluation attached (<code>dayzero card DIR --evaluation FILE</code>)</p>"
    out = []
    for result in results:
        segments = result.get("segments") or {}
        names: list[str] = []
        for seg in segments.values():
            names.extend(m for m in seg.get("metrics", {}) if m not in names)
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        out.append(
            f"<p>{html.escape(str(result.get('model')))} on "
            f"{html.escape(str(result.get('protocol')))} ({html.escape(str(result.get('task')))})"
            "</p>"
        )
        rows = []
        for segment, seg in segments.items():
            cells = []
            for name in names:
                value = seg.get("metrics", {}).get(name)
                ci = seg.get("ci", {}).get(name)
                text = "-" if value is None else f"{value:.4f}"
                if value is not None and ci:
                    text += f" [{ci[0]:.4f}, {ci[1]:.4f}]"
                cells.append(f"<td>{text}</td>")
            rows.append(
                f"<tr><td>{html.escape(segment)}</td><td>{seg.get('users', '')}</td>"
                + "".join(cells)
                + "</tr>"
            )
        out.append(f"<table><tr><th>segment</th><th>users</th>{head}</tr>{''.join(rows)}</table>")
    return "\n".join(out)


__all__ = [
    "CARD_HTML",
    "CARD_JSON",
    "EVALUATION_FILE",
    "FAIRNESS_FILE",
    "CardError",
    "ModelCard",
    "attach_evaluation",
    "encoder_section",
    "read_card",
    "refresh_card",
    "sensitive_columns",
    "summarize_dataset",
    "summarize_table",
    "summarize_texts",
    "write_card",
]
