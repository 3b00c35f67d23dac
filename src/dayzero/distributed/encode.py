"""Encode a catalogue on Ray Data: an actor pool that loads the text encoder once per actor.

:func:`encode_catalogue` reads a catalogue (Parquet, CSV or JSON Lines; a file or a folder of
them, or a DataFrame), turns every row into text (one text column, or fields rendered by
:class:`~dayzero.core.templates.Template` exactly as the recommenders render them), encodes it
with :meth:`dayzero.text.encoder.TextEncoder.encode` inside ``num_actors`` Ray actors and writes
``id`` + ``vector`` (a fixed-size list of float32) to Parquet, in the input's order, with a
``vectors.json`` manifest beside the files. Every actor builds the same encoder from one
:class:`EncoderSpec` (a model name or folder, a saved ``TextEncoder`` folder, and optionally an
adapter of any transfer strategy), so the vectors are those of the single-process encoder, and
an actor given ``cache_dir`` reads and writes the same disk cache under the same fingerprint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dayzero.core.artifact import CONFIG_FILE, dayzero_version
from dayzero.core.templates import Template
from dayzero.distributed.cluster import check_actor_pool, ray_cluster

MANIFEST = "vectors.json"
ID_COLUMN = "id"
VECTOR_COLUMN = "vector"
_READERS = {".parquet": "read_parquet", ".csv": "read_csv", ".jsonl": "read_json",
            ".json": "read_json"}  # fmt: skip


@dataclass
class EncoderSpec:
    """What every actor loads: a serialisable recipe for one :class:`TextEncoder`.

    Parameters
    ----------
    model : str
        A Hugging Face id or local folder (default: the shipped all-MiniLM-L6-v2), or a folder
        written by :meth:`TextEncoder.save` (fine-tuned weights included).
    adapter : str, optional
        A folder written by :func:`dayzero.text.adapters.save_adapter` (LoRA, AdaLoRA, IA3,
        prefix, top-k, full), or a saved model folder holding such an ``encoder/`` part; applied
        on top of ``model``, which must be the base it was trained on.
    max_length, pooling
        As in :class:`TextEncoder`.
    cache_dir : str, optional
        An :class:`~dayzero.text.cache.EmbeddingCache` folder every actor shares.
    """

    model: str = "all-MiniLM-L6-v2"
    adapter: str | None = None
    max_length: int = 128
    pooling: str = "mean"
    cache_dir: str | None = None

    def build(self) -> Any:
        """The encoder, in eval mode."""
        from dayzero.text.encoder import TextEncoder

        model = Path(self.model).expanduser()
        if (model / CONFIG_FILE).is_file():
            encoder = TextEncoder.load(model, cache_dir=self.cache_dir)
        else:
            encoder = TextEncoder(
                self.model,
                pooling=self.pooling,
                max_length=self.max_length,
                cache_dir=self.cache_dir,
            )
        if self.adapter is not None:
            from dayzero.text.adapters import ENCODER_FOLDER, load_adapter

            part = Path(self.adapter).expanduser()
            if (part / ENCODER_FOLDER / CONFIG_FILE).is_file():
                part = part / ENCODER_FOLDER
            encoder.model = load_adapter(encoder.model, part)
            encoder.eval()
        return encoder


class _EncodeBatches:
    """The Ray Data actor: one encoder per actor, one call per batch of rows."""

    def __init__(
        self,
        spec: dict[str, Any],
        id_column: str,
        text_column: str | None,
        template: dict[str, Any] | None,
        encode_batch_size: int,
        normalize: bool,
        threads: int,
    ) -> None:
        import torch

        from dayzero.text.quiet import quiet_loading

        torch.set_num_threads(threads)  # the CPUs the actor reserved, not every core each
        with quiet_loading():
            self.encoder = EncoderSpec(**spec).build()
        self.id_column, self.text_column = id_column, text_column
        self.template = None if template is None else Template.from_dict(template)
        self.encode_batch_size, self.normalize = encode_batch_size, normalize

    def __call__(self, batch: pd.DataFrame) -> Any:
        import pyarrow as pa

        texts = batch_texts(batch, self.text_column, self.template)
        vectors = self.encoder.encode(
            texts, batch_size=self.encode_batch_size, normalize=self.normalize
        )
        flat = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1))
        column = pa.FixedSizeListArray.from_arrays(flat, self.encoder.dim)
        return pa.table(
            {ID_COLUMN: pa.array(batch[self.id_column].tolist()), VECTOR_COLUMN: column}
        )


def batch_texts(
    batch: pd.DataFrame, text_column: str | None, template: Template | None
) -> list[str]:
    """The text of every row: ``text_column`` as it is (missing -> ""), or ``template``'s
    rendering (array cells, as Parquet gives lists back, become lists)."""
    if text_column is not None:
        return ["" if _missing(v) else str(v) for v in batch[text_column]]
    records = [
        {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()}
        for row in batch.to_dict(orient="records")
    ]
    return template.render_many(records)


def _files(source: str | os.PathLike) -> tuple[list[Path], str]:
    """The catalogue's files and the Ray Data reader of their kind."""
    path = Path(source).expanduser()
    files = sorted(p for p in path.iterdir() if p.suffix in _READERS) if path.is_dir() else [path]
    if not files or not all(p.is_file() for p in files):
        raise FileNotFoundError(
            f"catalogue {path} not found (or a folder without .parquet / .csv / .jsonl files)"
        )
    kinds = {_READERS.get(p.suffix) for p in files}
    if None in kinds or len(kinds) != 1:
        raise ValueError(
            f"catalogue {path}: read Parquet, CSV or JSON Lines files of one kind, found "
            f"{sorted({p.suffix for p in files})}"
        )
    return files, str(kinds.pop())


def _check_source(source: Any, columns: list[str]) -> None:
    """Fail before starting Ray on a missing file or a frame without the columns."""
    if isinstance(source, pd.DataFrame):
        missing = [c for c in columns if c not in source.columns]
        if missing:
            raise ValueError(
                f"the catalogue frame has no column(s) {missing}; it has {list(source.columns)}"
            )
    else:
        _files(source)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _read(ray: Any, source: Any, columns: list[str]) -> Any:
    if isinstance(source, pd.DataFrame):
        return ray.data.from_pandas(source[columns])
    files, kind = _files(source)
    reader = getattr(ray.data, kind)
    paths = [str(p) for p in files]
    data = reader(paths)
    schema = data.schema().names
    missing = [c for c in columns if c not in schema]
    if missing:
        raise ValueError(f"catalogue {source} has no column(s) {missing}; it has {schema}")
    return data.select_columns(columns)


def encode_catalogue(
    source: str | os.PathLike | pd.DataFrame,
    out: str | os.PathLike,
    *,
    id_column: str = "item_id",
    text_column: str | None = None,
    fields: list[str] | None = None,
    template: Template | None = None,
    encoder: EncoderSpec | str | None = None,
    num_actors: int = 2,
    cpus_per_actor: float = 1.0,
    batch_size: int = 1024,
    encode_batch_size: int = 32,
    normalize: bool = False,
    blocks: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Encode every row of a catalogue on Ray and write ``id`` + ``vector`` Parquet files.

    Parameters
    ----------
    source
        A Parquet / CSV / JSON Lines file, a folder of files of one kind, or a DataFrame.
    out
        The output folder (Parquet files and :data:`MANIFEST`); must not hold vectors already.
    id_column
        The row id, written as ``id``.
    text_column, fields, template
        What is encoded: one text column; or the ``fields`` rendered in list style
        (``"Title: Heat | Genres: Crime, Drama"``, the recommenders' default view); or a
        :class:`~dayzero.core.templates.Template`. Exactly one.
    encoder
        An :class:`EncoderSpec` or a model name / folder (default: the shipped MiniLM).
    num_actors
        Actors in the pool; each loads the encoder once.
    cpus_per_actor
        CPUs each actor reserves (its torch threads: at least 1). The pool must leave at least
        one of the cluster's CPUs to the tasks that read and write the files, or they would wait
        for ever: ``num_actors * cpus_per_actor <= CPUs - 1``.
    batch_size
        Rows per actor call; ``encode_batch_size`` is the transformer's batch inside it.
    normalize
        L2-normalise the vectors.
    blocks
        Repartition the input into this many blocks first (a small file is one block, which
        one actor would encode alone).
    address
        A running Ray cluster; default ``$RAY_ADDRESS`` or a local one started for the call.
    progress
        Ray Data's progress bars.

    Returns
    -------
    dict
        The manifest: rows, dim, the encoder spec, the columns read, timings.

    Examples
    --------
    >>> encode_catalogue("items.parquet", "vectors/", fields=["title", "genres"])  # doctest: +SKIP
    {'rows': 21900, 'dim': 384, ...}
    """
    views = sum(x is not None for x in (text_column, fields, template))
    if views != 1:
        raise ValueError("give exactly one of text_column, fields or template (what is encoded)")
    if num_actors < 1 or batch_size < 1 or encode_batch_size < 1:
        raise ValueError("num_actors, batch_size and encode_batch_size must be >= 1")
    if not cpus_per_actor > 0:
        raise ValueError(f"cpus_per_actor must be > 0, got {cpus_per_actor}")
    spec = (
        encoder
        if isinstance(encoder, EncoderSpec)
        else EncoderSpec(**({} if encoder is None else {"model": str(encoder)}))
    )
    if fields is not None:
        template = Template(list(fields))
    out = Path(out).expanduser()
    if (out / MANIFEST).exists() or (out.is_dir() and any(out.glob("*.parquet"))):
        raise FileExistsError(f"{out} already holds vectors; write to a new folder or remove it")
    columns = [id_column, *([text_column] if text_column else [s.name for s in template.specs])]
    columns = list(dict.fromkeys(columns))
    _check_source(source, columns)
    started = datetime.now(UTC)
    with ray_cluster(address, num_cpus=None, progress=progress) as ray:
        from ray.data import ActorPoolStrategy

        check_actor_pool(ray, num_actors, cpus_per_actor, "read and write the files")

        context = ray.data.DataContext.get_current()
        order = context.execution_options.preserve_order
        context.execution_options.preserve_order = True
        try:
            data = _read(ray, source, columns)
            if blocks is not None:
                data = data.repartition(blocks)
            vectors = data.map_batches(
                _EncodeBatches,
                fn_constructor_kwargs={
                    "spec": asdict(spec),
                    "id_column": id_column,
                    "text_column": text_column,
                    "template": None if template is None else template.to_dict(),
                    "encode_batch_size": encode_batch_size,
                    "normalize": normalize,
                    "threads": max(1, int(cpus_per_actor)),
                },
                batch_size=batch_size,
                batch_format="pandas",
                compute=ActorPoolStrategy(size=num_actors),
                num_cpus=cpus_per_actor,
            )
            rows, dim = _write_in_order(vectors, out)
        finally:
            context.execution_options.preserve_order = order
    manifest = {
        "format": "dayzero-catalogue-vectors",
        "format_version": 1,
        "dayzero_version": dayzero_version(),
        "created": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        "rows": rows,
        "dim": dim,
        "normalize": normalize,
        "encoder": asdict(spec),
        "id_column": id_column,
        "text_column": text_column,
        "template": None if template is None else template.to_dict(),
        "num_actors": num_actors,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _write_in_order(vectors: Any, out: Path, rows_per_file: int = 1_000_000) -> tuple[int, int]:
    """Stream the encoded batches, in input order, into ``part-NNNNN.parquet`` files; returns
    ``(rows, dim)`` for the manifest (the files are not read back).

    Ray Data's own ``write_parquet`` names its files by write task, not by block, so their
    sorted names do not give the input order back; streaming through the driver does (one
    batch in memory at a time).
    """
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    writer, rows, part, total, dim = None, 0, 0, 0, 0
    try:
        for batch in vectors.iter_batches(batch_format="pyarrow", batch_size=None):
            if writer is not None and rows >= rows_per_file:
                writer.close()
                writer, rows, part = None, 0, part + 1
            if writer is None:
                writer = pq.ParquetWriter(out / f"part-{part:05d}.parquet", batch.schema)
            writer.write_table(batch)
            rows += batch.num_rows
            total += batch.num_rows
            dim = batch.schema.field(VECTOR_COLUMN).type.list_size
    finally:
        if writer is not None:
            writer.close()
    return total, dim


def read_vectors(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of a folder written by :func:`encode_catalogue`, in row order."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no vector files (.parquet)")
    tables = [pq.read_table(f) for f in files]
    ids = np.concatenate([t.column(ID_COLUMN).to_numpy(zero_copy_only=False) for t in tables])
    dims = {t.schema.field(VECTOR_COLUMN).type.list_size for t in tables}
    dim = dims.pop()
    parts = [t.column(VECTOR_COLUMN).combine_chunks().flatten().to_numpy() for t in tables]
    matrix = np.concatenate(parts).astype(np.float32).reshape(-1, dim)
    return ids, matrix


__all__ = ["MANIFEST", "EncoderSpec", "batch_texts", "encode_catalogue", "read_vectors"]
