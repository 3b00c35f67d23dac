"""``dayzero update`` (incremental fine-tune behind a gate) and ``dayzero bootstrap`` (a first
version), over an event store and a model registry.

    dayzero bootstrap --store events.db --registry models/
    dayzero update --store events.db --registry models/ --replay-ratio 4 --epochs 2 --tolerance 0

``update`` prints the gate's numbers and what happened. Exit code 0 when the candidate was
promoted, rejected by the gate (published, not promoted) or there was nothing to do; 1 on an
error (no promoted version, unreadable store or registry, bad option).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)  # long status lines stay greppable

STORE_HELP = "Event store: a SQLite file path, sqlite:///path or postgresql://..."
OUTCOMES = {
    "promoted": "[green]promoted[/green] {version} (the gate passed)",
    "rejected": "[yellow]rejected by the gate[/yellow]: {reason}; {version} is published, "
    "not promoted ({parent} stays current)",
    "no-gate": "[yellow]not promoted[/yellow]: {reason}; {version} is published, {parent} "
    "stays current and its events are seen again next time (--promote-without-gate to force)",
    "superseded": "[yellow]not promoted[/yellow]: the current version changed while the update "
    "ran (an operator's promote or rollback wins); {version} is published, promote it by hand "
    "if it should be served",
    "no-new-events": "nothing to do: no events after the watermark of {parent}",
}


def gate_table(result) -> Table:
    """The gate's numbers (current vs candidate) as a rich table."""
    gate = result.gate
    table = Table(title=f"gate: {result.parent} -> {result.version or '-'}")
    for column in ("metric", "current", "candidate", "allowed"):
        table.add_column(column, justify="left" if column == "metric" else "right")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    allowed_mae = None if gate.current_mae is None else gate.current_mae + gate.tolerance
    allowed_ndcg = None if gate.current_ndcg is None else gate.current_ndcg - gate.tolerance
    table.add_row(
        "MAE (lower is better)",
        cell(gate.current_mae),
        cell(gate.candidate_mae),
        f"<= {cell(allowed_mae)}",
    )
    table.add_row(
        f"nDCG@{gate.k}",
        cell(gate.current_ndcg),
        cell(gate.candidate_ndcg),
        f">= {cell(allowed_ndcg)}",
    )
    table.add_row(
        "held-out ratings / users", "", f"{gate.heldout_ratings} / {gate.heldout_users}", ""
    )
    table.add_row(
        "trained on new / replayed", "", f"{result.train_ratings} / {result.replay_ratings}", ""
    )
    return table


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def update(
    store: Annotated[str, typer.Option(help=STORE_HELP)],
    registry: Annotated[Path, typer.Option(help="Model registry folder.")],
    replay_ratio: Annotated[
        float, typer.Option(help="Older ratings replayed per new one.", min=0.0)
    ] = 4.0,
    epochs: Annotated[int, typer.Option(help="Fine-tuning passes.", min=1)] = 2,
    tolerance: Annotated[
        float, typer.Option(help="Allowed regression of MAE / nDCG on the held-out slice.")
    ] = 0.0,
    holdout: Annotated[
        float, typer.Option(help="Share of each user's newest ratings held out for the gate.")
    ] = 0.2,
    promote_without_gate: Annotated[
        bool, typer.Option(help="Promote when no user has enough new ratings for a gate.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of replay sampling and fine-tuning.")] = 0,
) -> None:
    """Fine-tune the current model on the events since its watermark; promote it only if it
    does not regress on the newest events."""
    from dayzero.online.registry import RegistryError
    from dayzero.online.store import open_store
    from dayzero.online.updater import OnlineUpdater, UpdaterConfig

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = UpdaterConfig(
            epochs=epochs,
            replay_ratio=replay_ratio,
            tolerance=tolerance,
            holdout=holdout,
            promote_without_gate=promote_without_gate,
            seed=seed,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    from dayzero.online.registry import ModelRegistry

    try:
        events = open_store(store)
    except Exception as exc:
        raise _fail(f"cannot open the store {store!r}: {exc}") from exc
    try:
        result = OnlineUpdater(events, ModelRegistry(registry), config).update()
    except (RuntimeError, RegistryError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        events.close()
    if result.gate is not None:
        console.print(gate_table(result))
    reason = result.gate.reason if result.gate is not None else ""
    console.print(
        OUTCOMES[result.status].format(version=result.version, parent=result.parent, reason=reason)
    )


def bootstrap(
    store: Annotated[str, typer.Option(help=STORE_HELP)],
    registry: Annotated[Path, typer.Option(help="Model registry folder.")],
    epochs: Annotated[int, typer.Option(help="Training epochs of the first model.", min=1)] = 20,
    force: Annotated[
        bool, typer.Option(help="Publish and promote a new first version even if one exists.")
    ] = False,
) -> None:
    """Fit a first model on everything in the store, publish it and promote it."""
    from dayzero.online.registry import ModelRegistry, RegistryError
    from dayzero.online.store import open_store
    from dayzero.online.updater import DEFAULT_MODEL_PARAMS, OnlineUpdater, UpdaterConfig

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    models = ModelRegistry(registry)
    if models.current() is not None and not force:
        console.print(f"{registry} already serves {models.current()}; use --force for a new one")
        return
    try:
        events = open_store(store)
    except Exception as exc:
        raise _fail(f"cannot open the store {store!r}: {exc}") from exc
    try:
        config = UpdaterConfig(model_params={**DEFAULT_MODEL_PARAMS, "training__epochs": epochs})
        version = OnlineUpdater(events, models, config).bootstrap()
    except (RuntimeError, RegistryError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        events.close()
    console.print(f"[green]bootstrapped and promoted[/green] {version}")
