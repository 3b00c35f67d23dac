"""``dayzero toplists``: precompute top-K lists of every known user on Ray (the ``ray`` extra).

dayzero toplists --store events.db --registry models/ --k 100 --actors 2
dayzero toplists --store postgresql://... --registry /shared/models --address auto --prune
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def toplists(
    store: Annotated[str, typer.Option(help="The event store: a SQLite file or PostgreSQL URL.")],
    registry: Annotated[Path, typer.Option(help="The model registry folder.")],
    k: Annotated[int, typer.Option(min=1, help="Items per list (requests up to k use it).")] = 100,
    version: Annotated[
        str | None, typer.Option(help="Rank by this version (default: the current one).")
    ] = None,
    user: Annotated[
        list[str] | None, typer.Option(help="Rank only this user (repeat; default: every one).")
    ] = None,
    actors: Annotated[int, typer.Option(min=1, help="Ranking actors (one model each).")] = 1,
    cpus_per_actor: Annotated[
        float, typer.Option(min=0.01, help="CPUs each actor reserves (fractions allowed).")
    ] = 1.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Users per actor call.")] = 256,
    prune: Annotated[
        bool, typer.Option(help="Delete the stored lists of every other version afterwards.")
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(help="A running Ray cluster (default $RAY_ADDRESS, else a local one)."),
    ] = None,
) -> None:
    """Rank every known user by a model version on Ray Data and store the lists; the service
    answers users without newer events from them."""
    from dayzero.core.schema import SchemaError
    from dayzero.distributed.cluster import RayNotInstalledError
    from dayzero.distributed.toplists import precompute_toplists
    from dayzero.online.registry import RegistryError

    try:
        summary = precompute_toplists(
            store, registry, k=k, version=version, users=user or None, num_actors=actors,
            cpus_per_actor=cpus_per_actor, batch_size=batch_size, prune=prune, address=address,
        )  # fmt: skip
    except (RayNotInstalledError, RegistryError, SchemaError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    pruned = f", {summary['pruned']:,} lists of other versions deleted" if prune else ""
    typer.echo(
        f"{summary['lists']:,} lists of {k} items by {summary['version']} in "
        f"{summary['seconds']:.1f} s ({summary['users_per_second'] or 0:,.0f} users/s){pruned}"
    )
