"""The HTTP service as a Ray Serve deployment: replicas over one store and one registry.

:func:`serve_on_ray` deploys the FastAPI app of :mod:`dayzero.serve.app` with Ray Serve's
ingress: each replica builds its own app (the builder runs on the replica), opens the store and
the registry named by the :class:`~dayzero.serve.app.ServeConfig` and serves the registry's
current version. Every replica takes in what the others committed before each read
(``watch_store``: their items folded in, their users' cached vectors dropped), so an event or
item written through one replica counts in every replica's next answer; each follows the
registry's current pointer (``follow_every``), so a promotion reaches every replica while each
keeps answering. The store must be one that several processes share: PostgreSQL across
machines, a SQLite file on one machine.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dayzero.distributed.cluster import require_ray


def _build_app(config_json: str) -> Any:
    """The replica's app (runs on the replica, where Ray Serve calls the builder)."""
    import torch

    from dayzero.serve.app import ServeConfig, create_app

    torch.set_num_threads(1)  # one user-tower pass per request: threads cost more than they save
    return create_app(ServeConfig.from_json(config_json))


def serve_on_ray(
    config: Any,
    replicas: int = 2,
    cpus_per_replica: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str = "dayzero",
    address: str | None = None,
    blocking: bool = False,
) -> Any:
    """Deploy the service on Ray Serve with ``replicas`` replicas behind Ray's HTTP proxy.

    Parameters
    ----------
    config : ServeConfig
        The service settings every replica uses (``watch_store`` is turned on;
        ``update_every`` must be off: background updates belong to one process, run
        ``dayzero update`` on a schedule).
    replicas : int, default 2
    cpus_per_replica : float, default 1.0
        CPUs each replica reserves (fractions allowed).
    host, port : str, int
        Where Ray's HTTP proxy listens.
    name : str
        The Ray Serve application's name.
    address : str, optional
        A running Ray cluster; default ``$RAY_ADDRESS`` or a local one (left running).
    blocking : bool, default False
        Block until interrupted (the command line); otherwise return once every replica is
        up, leaving the deployment running (``ray.serve.shutdown()`` stops it).

    Returns
    -------
    ray.serve.handle.DeploymentHandle
    """
    import os

    ray = require_ray()
    from ray import serve

    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if config.update_every:
        raise ValueError(
            "update_every must be off on Ray Serve (each replica would fine-tune): run "
            "`dayzero update` on a schedule; every replica follows the registry"
        )
    config = dataclasses.replace(config, watch_store=True)
    if not ray.is_initialized():
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
        )
    serve.start(http_options={"host": host, "port": port})
    config_json = config.to_json()

    def build() -> Any:
        # A builder, not an app: it runs on each replica, which opens its own store connection
        # (Ray Serve takes a plain function as a builder; a functools.partial would be taken
        # for the ASGI app itself).
        return _build_app(config_json)

    service = serve.ingress(build)()
    deployment = serve.deployment(
        service,
        name="dayzero-service",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica},
    )
    return serve.run(deployment.bind(), name=name, route_prefix="/", blocking=blocking)


__all__ = ["serve_on_ray"]
