"""Start or join a Ray cluster, quietly, and hand back only what this process started.

``address`` (or the ``RAY_ADDRESS`` environment variable) joins a running cluster (``ray start
--head`` prints the address); without one a local cluster is started in this process with the
CPUs it is given. A cluster that was already initialised in this process is reused and left
running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

RAY_EXTRA = "pip install 'dayzero[ray]'"


class RayNotInstalledError(ImportError):
    """Ray is not installed; the message says how to install it."""


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`RayNotInstalledError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"this needs Ray, which is not installed: {RAY_EXTRA} (Ray Data, Train and Serve)"
        ) from exc
    return ray


@contextlib.contextmanager
def ray_cluster(
    address: str | None = None, num_cpus: int | None = None, progress: bool = True
) -> Iterator[Any]:
    """Run the block with Ray initialised; shut it down afterwards only if this call started it.

    Parameters
    ----------
    address : str, optional
        A running cluster (``"ray://host:10001"``, ``"host:6379"`` or ``"auto"``); default
        ``$RAY_ADDRESS``, else a local cluster started here.
    num_cpus : int, optional
        CPUs of a local cluster started here (default: every core).
    progress : bool, default True
        Ray Data's progress bars (off inside :func:`dayzero.core.progress.quiet` too).

    Yields
    ------
    module
        The ``ray`` module.
    """
    from dayzero.core.progress import progress_enabled

    ray = require_ray()
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "configure_logging": True,
        }
        if address is None:
            options["num_cpus"] = num_cpus
        ray.init(address=address, **options)
        started = True
    with warnings.catch_warnings():
        # Ray's own DataContext reads its deprecated fields when it is first built.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    bars = context.enable_progress_bars
    context.enable_progress_bars = progress_enabled(progress)
    try:
        yield ray
    finally:
        context.enable_progress_bars = bars
        if started:
            ray.shutdown()


def check_actor_pool(ray: Any, num_actors: int, cpus_per_actor: float, tasks: str) -> None:
    """Refuse an actor pool that leaves the cluster no CPU for Ray Data's own ``tasks``.

    Ray Data schedules its read and write tasks on CPUs too; a pool that reserves them all makes
    it wait for ever instead of failing.
    """
    total = float(ray.cluster_resources().get("CPU", 0))
    if num_actors * cpus_per_actor > total - 1:
        raise ValueError(
            f"{num_actors} actors x {cpus_per_actor} CPU leave less than one of the cluster's "
            f"{total:g} CPUs to {tasks} (Ray would wait for ever); lower num_actors or "
            "cpus_per_actor (fractions such as 0.5 are allowed)"
        )


__all__ = ["RAY_EXTRA", "RayNotInstalledError", "check_actor_pool", "ray_cluster", "require_ray"]
