"""``dayzero card``: show, extend and export the model card of a saved model.

    dayzero card model/                                  # the card as tables
    dayzero card model/ --evaluation results.json        # attach `dayzero evaluate --output`
    dayzero card model/ --note "approved by the risk committee" --html card.html
    dayzero card model/ --json                           # the card as JSON on stdout

The card itself is written by every model's ``save`` (:mod:`dayzero.core.card`); this command
attaches what was measured later and rewrites ``card.json`` / ``card.html`` in the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def card(
    model_dir: Annotated[Path, typer.Argument(help="A folder a dayzero model was saved to.")],
    evaluation: Annotated[
        Path | None,
        typer.Option(help="Results of `dayzero evaluate --output` to keep with the model."),
    ] = None,
    note: Annotated[list[str] | None, typer.Option(help="A note to add (repeatable).")] = None,
    intended_use: Annotated[
        str | None, typer.Option(help="Replace the card's intended use.")
    ] = None,
    limitation: Annotated[
        list[str] | None,
        typer.Option(help="A limitation to add to the card's list (repeatable)."),
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the card as HTML here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """Show the model card of MODEL_DIR; with options, attach results and notes to it first."""
    from dayzero.core.card import CardError, attach_evaluation, read_card, refresh_card

    try:
        current = read_card(model_dir)
        if evaluation is not None:
            results = _read_results(evaluation)
            kept = attach_evaluation(model_dir, results, source=str(evaluation))
            console.print(f"attached {len(kept)} evaluation result(s) from {evaluation}")
        changes: dict[str, Any] = {}
        if intended_use is not None:
            changes["intended_use"] = intended_use
        if limitation:
            changes["limitations"] = [*current.limitations, *limitation]
        if changes or note:
            refresh_card(model_dir, notes=note or (), **changes)
        model_card = read_card(model_dir)
    except CardError as exc:
        raise typer.BadParameter(str(exc), param_hint="MODEL_DIR") from None
    if html is not None:
        html.write_text(model_card.to_html(), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(model_card.to_dict(), indent=1, default=str))
        return
    _show(model_card)
    if html is not None:
        console.print(f"wrote {html}")


def _read_results(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path}: not readable JSON ({exc})", "--evaluation") from None
    results = data.get("results") if isinstance(data, dict) else data
    if not isinstance(results, list) or not results:
        raise typer.BadParameter(
            f"{path} holds no results: give the JSON written by `dayzero evaluate --output`",
            param_hint="--evaluation",
        )
    return results


def _show(model_card: Any) -> None:
    console.print(f"[bold]{model_card.kind} / {model_card.name}[/bold]  {model_card.created}")
    console.print(f"intended use: {model_card.intended_use or 'not stated'}")
    for line in model_card.limitations:
        console.print(f"  limit: {line}")
    data = Table(title="training data", show_header=False)
    for key, value in model_card.training_data.items():
        data.add_row(str(key), _short(value))
    console.print(data)
    if model_card.encoder:
        console.print(f"encoder: {_short(model_card.encoder)}")
    for result in model_card.evaluation:
        table = Table(title=f"{result.get('model')} on {result.get('protocol')}")
        segments = result.get("segments") or {}
        names: list[str] = []
        for seg in segments.values():
            names.extend(m for m in seg.get("metrics", {}) if m not in names)
        table.add_column("segment")
        for name in names:
            table.add_column(name, justify="right")
        for segment, seg in segments.items():
            cells = []
            for name in names:
                value, ci = seg["metrics"].get(name), seg.get("ci", {}).get(name)
                text = "-" if value is None else f"{value:.4f}"
                cells.append(text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
            table.add_row(segment, *cells)
        console.print(table)
    if model_card.fairness:
        console.print(f"fairness audit: {_short(model_card.fairness)}")
    for line in model_card.notes:
        console.print(f"  note: {line}")


def _short(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."
