"""``dayzero encode``: encode a catalogue on Ray (the ``ray`` extra), vectors to Parquet.

dayzero encode items.parquet --out vectors/ --field title --field genres --actors 4
dayzero encode items.csv --out vectors/ --text-column description --address auto
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def encode(
    catalogue: Annotated[
        Path, typer.Argument(help="Items: a Parquet / CSV / JSON Lines file or a folder of them.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder (Parquet id + vector, vectors.json).")],
    id_column: Annotated[str, typer.Option(help="The item id column.")] = "item_id",
    text_column: Annotated[
        str | None, typer.Option(help="Encode this column as it is (or give --field).")
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(help="A field rendered into the text ('Title: ... | Genres: ...'); repeat."),
    ] = None,
    encoder: Annotated[
        str,
        typer.Option(help="Model id, local folder or saved TextEncoder folder."),
    ] = "all-MiniLM-L6-v2",
    adapter: Annotated[
        Path | None,
        typer.Option(help="An adapter folder (save_adapter) or a model folder with encoder/."),
    ] = None,
    max_length: Annotated[int, typer.Option(min=2, help="Longest text in tokens.")] = 128,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Disk cache of vectors shared by every actor.")
    ] = None,
    actors: Annotated[int, typer.Option(min=1, help="Encoder actors (one model each).")] = 2,
    cpus_per_actor: Annotated[
        float, typer.Option(min=0.01, help="CPUs each actor reserves (fractions allowed).")
    ] = 1.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per actor call.")] = 1024,
    normalize: Annotated[bool, typer.Option(help="L2-normalise the vectors.")] = False,
    blocks: Annotated[
        int | None, typer.Option(min=1, help="Repartition the input into this many blocks.")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="A running Ray cluster (default $RAY_ADDRESS, else a local one)."),
    ] = None,
) -> None:
    """Encode every item of a catalogue on a Ray Data actor pool."""
    from dayzero.distributed.cluster import RayNotInstalledError
    from dayzero.distributed.encode import EncoderSpec, encode_catalogue

    spec = EncoderSpec(
        model=encoder,
        adapter=None if adapter is None else str(adapter),
        max_length=max_length,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    try:
        manifest = encode_catalogue(
            catalogue, out, id_column=id_column, text_column=text_column, fields=field or None,
            encoder=spec, num_actors=actors, cpus_per_actor=cpus_per_actor,
            batch_size=batch_size, normalize=normalize, blocks=blocks, address=address,
        )  # fmt: skip
    except (RayNotInstalledError, ValueError, FileNotFoundError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{manifest['rows']:,} vectors of {manifest['dim']} dimensions in {out} "
        f"({manifest['seconds']:.1f} s, {actors} actors)"
    )
