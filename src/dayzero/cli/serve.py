"""``dayzero serve``: run the HTTP service (uvicorn) over a store and a registry.

    dayzero serve --store events.db --registry models/ --api-key "$KEY"
    dayzero serve --store events.db --registry models/ --bootstrap-demo     # fresh machine
    dayzero serve --store events.db --registry models/ --model-dir model/   # `dayzero fit` folder
    dayzero serve --store postgresql://... --registry models/ --workers 4    # 4 processes
    python -m dayzero.cli.serve --store ... --registry ...                   # same, without the CLI

``--bootstrap-demo`` fills an empty store with the restaurant data shipped in the package and
trains, publishes and promotes a first version when the registry has none, so the service has
something to serve on a fresh machine.

``--model-dir`` serves a folder written by ``dayzero fit`` (a two-tower or mf model): it is
published into the registry as a new version and promoted, its ``catalogue/`` going with it so
that answers carry titles. Import the same files into the store first (``dayzero import``) for
the items' fields and the users' histories; the store's events at that moment count as seen by
the model (``dayzero update`` fine-tunes on later ones). Starting again with the same folder
publishes nothing: the registry's current version is served when it is that fit or an update of
it, else that fit's version is promoted again.

``--workers N`` runs N uvicorn worker processes (one GIL each, each with its own socket on the
port so that the kernel spreads the connections; one that dies is replaced:
:mod:`dayzero.serve.workers`) over the same store and registry:
each reads the store's new items, events and profiles before every answer (so a write through
any worker counts in every worker's next answer) and follows the registry's current pointer
(``--follow-every``: a promotion reaches every worker within that time, while each keeps
answering). Background updates (``--update-every``) run in one process only: with several
workers run ``dayzero update`` on a schedule instead. ``--ray-replicas N`` does the same on Ray
Serve (:mod:`dayzero.distributed.serve`), replicas spread over a Ray cluster.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger("dayzero.serve")


def serve(
    store: Annotated[
        str,
        typer.Option(help="Event store: a SQLite file path, sqlite:///path or postgresql://..."),
    ] = "dayzero-events.db",
    registry: Annotated[Path, typer.Option(help="Model registry folder.")] = Path("dayzero-models"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="DAYZERO_API_KEY",
            help="Key required in the X-API-Key header of every call but /healthz and /metrics "
            "(default: $DAYZERO_API_KEY; without one, everything is open to anyone).",
        ),
    ] = None,
    public_reads: Annotated[
        bool,
        typer.Option(
            help="Serve reads (recommendations, similar items, model info, risk) without the "
            "key; a user's recommendations with exclude_seen=false still need it."
        ),
    ] = False,
    risk_model: Annotated[
        Path | None, typer.Option(help="RiskScorer folder served at POST /v1/risk/score.")
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="A folder written by `dayzero fit` (two-tower or mf): published into --registry "
            "and promoted (unless the registry already serves it or an update of it), then "
            "served. Run `dayzero import` with the same files first: the store's events count "
            "as seen by the model."
        ),
    ] = None,
    bootstrap_demo: Annotated[
        bool,
        typer.Option(
            help="When the registry is empty, load the shipped restaurant demo data into the "
            "store and train, publish and promote a first version."
        ),
    ] = False,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest request body accepted, in MiB (413 beyond).", min=0.001)
    ] = 8.0,
    user_cache_size: Annotated[
        int,
        typer.Option(
            min=0,
            help="Users whose vectors are kept between their writes (0: recompute every request).",
        ),
    ] = 100_000,
    user_cache_ttl: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds a cached user vector may be served (bounds staleness when other "
            "processes write events to the store).",
        ),
    ] = 30.0,
    follow_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between two reads of the registry's current pointer: a version "
            "promoted or rolled back by another process is served within that time; 0 = off.",
        ),
    ] = 2.0,
    update_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between background incremental updates (fine-tune on the events "
            "since the served version's watermark, promote only if the gate passes); 0 = off.",
        ),
    ] = 0.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes over the same store and registry; each sees the others' "
            "writes in its next answer.",
        ),
    ] = 1,
    torch_threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="PyTorch intra-op threads. 1 is fastest for per-request work: one user-tower "
            "pass or one sentence is too small to split, and waking a second thread costs more "
            "than it saves on a busy machine; requests run in parallel across the threadpool.",
        ),
    ] = 1,
    ray_replicas: Annotated[
        int,
        typer.Option(
            min=0,
            help="Serve on Ray Serve with this many replicas behind Ray's HTTP proxy (the ray "
            "extra; joins $RAY_ADDRESS or starts a local cluster); 0 = uvicorn.",
        ),
    ] = 0,
) -> None:
    """Serve recommendations, events, items, users, risk scores and model admin over HTTP."""
    # Before torch loads: OpenMP's default thread count, used by threadpool workers.
    os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads))
    import torch
    import uvicorn

    from dayzero.serve.app import ServeConfig, create_app

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(torch_threads)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if risk_model is not None and not risk_model.is_dir():
        raise typer.BadParameter(f"{risk_model} is not a folder", param_hint="--risk-model")
    if risk_model is not None:
        _check_risk_model(risk_model)
    if model_dir is not None and bootstrap_demo:
        raise typer.BadParameter(
            "serve either a fit folder or the demo, not both", param_hint="--model-dir"
        )
    if model_dir is not None:
        version, how = serve_fit_folder(model_dir, store, registry)
        typer.echo(f"serving {model_dir} as version {version} ({how})")
    if bootstrap_demo:
        version = bootstrap_demo_version(store, registry)
        if version is not None:
            typer.echo(f"bootstrapped demo version {version}")
    if workers > 1 and update_every:
        raise typer.BadParameter(
            "background updates run in one process; with several workers leave --update-every "
            "at 0 and run `dayzero update` on a schedule (every worker follows the registry)",
            param_hint="--update-every",
        )
    config = ServeConfig(
        store=store,
        registry=registry,
        api_key=api_key or None,
        public_reads=public_reads,
        risk_model=risk_model,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        user_cache_size=user_cache_size,
        user_cache_ttl=user_cache_ttl,
        follow_every=follow_every or None,
        update_every=update_every or None,
        watch_store=workers > 1,
    )
    if ray_replicas:
        from dayzero.distributed.cluster import RayNotInstalledError
        from dayzero.distributed.serve import serve_on_ray

        if workers > 1:
            raise typer.BadParameter("give --workers or --ray-replicas", param_hint="--workers")
        try:
            serve_on_ray(config, replicas=ray_replicas, host=host, port=port, blocking=True)
        except (RayNotInstalledError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--ray-replicas") from None
        return
    if workers == 1:
        uvicorn.run(create_app(config), host=host, port=port, workers=1, log_level=log_level)
        return
    from dayzero.serve.app import CONFIG_ENV
    from dayzero.serve.workers import reuse_port_supported, run_workers

    # Worker processes build their own app from the environment (uvicorn needs an import path).
    os.environ[CONFIG_ENV] = config.to_json()
    if reuse_port_supported():  # a socket per worker: the kernel spreads the connections
        try:
            run_workers(workers, host, port, log_level, {CONFIG_ENV: os.environ[CONFIG_ENV]})
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--port") from None
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot bind {host}:{port}: {exc}", param_hint="--port"
            ) from None
        return
    uvicorn.run(
        "dayzero.serve.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


def _check_risk_model(folder: Path) -> None:
    """Refuse an unloadable risk model, or a ``training.json`` left by another model, before the
    server starts (inside the server the error would be a startup traceback)."""
    from dayzero.core.artifact import ArtifactError
    from dayzero.risk.scorer import RiskScorer
    from dayzero.risk.target import TrainingInfo

    try:
        columns = list(RiskScorer.load(folder).columns_)
        TrainingInfo.load(folder, features=columns)
    except (ArtifactError, OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--risk-model") from None


def serve_fit_folder(model_dir: Path, store: str | Path, registry: str | Path) -> tuple[str, str]:
    """Make the model of a ``dayzero fit`` folder the registry's served version.

    Parameters
    ----------
    model_dir : Path
        Folder written by ``dayzero fit`` (a model that can be served from a vector index).
    store : str or Path
        Event store URL: its last event id is the new version's watermark.
    registry : str or Path
        Model registry folder.

    Returns
    -------
    (version, how)
        The version now current, and how it became so: ``"published and promoted"``,
        ``"already served"`` (the current version is this fit or an update of it) or
        ``"promoted again"`` (an earlier version of the same files).

    Raises
    ------
    typer.BadParameter
        Naming the missing or unreadable file, or why the model cannot be served.
    """
    from dayzero.cli.files import fit_fingerprint, publish_fit_folder, read_catalogue
    from dayzero.core.artifact import ArtifactError
    from dayzero.core.schema import SchemaError
    from dayzero.online.registry import ModelRegistry, RegistryError
    from dayzero.online.store import open_store

    def refuse(message: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint="--model-dir")

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise refuse(f"{model_dir} is not a folder; give the --out folder of `dayzero fit`")
    if not (model_dir / "dayzero.json").is_file():
        raise refuse(
            f"{model_dir / 'dayzero.json'} is missing: {model_dir} is not a folder written by "
            f"`dayzero fit` (write one with `dayzero fit --interactions F --model two-tower "
            f"--out {model_dir}`)"
        )
    try:
        if read_catalogue(model_dir) is None:
            typer.echo(
                f"{model_dir} has no catalogue/ (not written by `dayzero fit`): titles come from "
                "the store's items only",
                err=True,
            )
    except (ArtifactError, OSError, ValueError) as exc:
        raise refuse(f"{model_dir / 'catalogue'}: {exc}") from None
    fingerprint = fit_fingerprint(model_dir)
    models = ModelRegistry(registry)
    current = models.current()
    ours = [
        v["name"]
        for v in models.versions()
        if (_config(models, v["name"]).get("fingerprint")) == fingerprint
    ]
    if current is not None and _descends(models, current, set(ours)):
        return current, "already served"
    if ours:
        try:
            models.promote(ours[-1])
        except RegistryError as exc:
            raise refuse(f"cannot promote {ours[-1]}, published from these files: {exc}") from None
        return ours[-1], "promoted again"
    try:
        events = open_store(store)
    except Exception as exc:
        message = f"cannot open the store {store!r}: {exc}"
        raise typer.BadParameter(message, param_hint="--store") from None
    try:
        watermark = events.last_event_id()
    finally:
        events.close()
    try:
        version = publish_fit_folder(model_dir, Path(registry), watermark=watermark)
    except (ArtifactError, OSError, ValueError, TypeError, KeyError, SchemaError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise refuse(f"{model_dir} cannot be served: {message}") from None
    return version, "published and promoted"


def _config(models, version: str) -> dict:
    from dayzero.online.registry import RegistryError

    try:
        return models.info(version).get("config") or {}
    except (RegistryError, OSError, ValueError):
        return {}  # an unreadable version is nobody's ancestor


def _descends(models, version: str, ancestors: set[str]) -> bool:
    """Whether ``version`` is one of ``ancestors`` or fine-tuned from one (config ``parent``)."""
    seen: set[str] = set()
    while isinstance(version, str) and version not in seen:
        if version in ancestors:
            return True
        seen.add(version)
        version = _config(models, version).get("parent")
    return False


def bootstrap_demo_version(store: str | Path, registry: str | Path) -> str | None:
    """Create and promote a first version from the shipped restaurant data if none exists.

    Parameters
    ----------
    store : str or Path
        Event store URL; the demo items, users and ratings are written to it when it holds no
        events yet.
    registry : str or Path
        Model registry folder.

    Returns
    -------
    str or None
        The new version, or None when the registry already had a current version.
    """
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store
    from dayzero.online.updater import OnlineUpdater

    models = ModelRegistry(registry)
    if models.current() is not None:
        return None
    events = open_store(store)
    try:
        if events.count_events() == 0:
            load_demo_into(events)
        return OnlineUpdater(events, models).bootstrap(events)
    finally:
        events.close()


def load_demo_into(store) -> int:
    """Write the shipped restaurant items, diners and ratings into ``store``; returns #events."""
    from datetime import UTC, datetime, timedelta

    from dayzero.core.settings import DEMO_DATA
    from dayzero.core.templates import entity_template
    from dayzero.datasets.restaurant import load_restaurant
    from dayzero.online.store import EntityRecord, Event

    dataset = load_restaurant(DEMO_DATA / "restaurant-uci")
    for entities, upsert in (
        (dataset.items, store.upsert_items),
        (dataset.users, store.upsert_users),
    ):
        if entities is None:
            continue
        template = entity_template(None, entities)
        records = [entities.record(i) for i in entities.ids]
        texts = template.render_many(records)
        upsert(
            [
                EntityRecord(id=str(i), text=t, fields=_json_fields(r))
                for i, t, r in zip(entities.ids, texts, records, strict=True)
            ]
        )
    frame = dataset.interactions.frame
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = list(zip(frame["user"], frame["item"], frame["value"], strict=True))
    events = [
        Event(user=str(u), item=str(i), value=float(v), ts=start + timedelta(minutes=n))
        for n, (u, i, v) in enumerate(rows)
    ]
    for chunk in range(0, len(events), 1000):
        store.append_events(events[chunk : chunk + 1000])
    return len(events)


def _json_fields(record: dict) -> dict:
    import math

    import numpy as np

    out = {}
    for key, value in record.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if isinstance(value, tuple | np.ndarray):
            value = list(value)
        out[str(key)] = value
    return out


def main() -> None:
    """Entry point of ``python -m dayzero.cli.serve``."""
    typer.run(serve)


if __name__ == "__main__":
    main()
