"""Precompute top-K lists for every known user on Ray Data, written to the event store.

:func:`precompute_toplists` reads the ids of every user the store knows (a profile record or an
event), ranks them in a pool of Ray actors that each load one model version once (the
service's own code path, :func:`dayzero.serve.toplists.compute_toplists`, so a list is the
answer a request would get), and streams the lists back to the driver, which writes them to
the store in batches. The service then answers a known user without new events from their
list (:func:`dayzero.serve.toplists.toplist_answer`) instead of reading their history and
running the user tower and the index search.

Every actor opens the store and the registry itself: on a cluster of several machines both
must be reachable from every node (a PostgreSQL URL; a registry folder on shared storage).
"""

from __future__ import annotations

import os
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dayzero.distributed.cluster import check_actor_pool, ray_cluster
from dayzero.online.store import TopList

WRITE_BATCH = 1_000  # lists per store transaction


class _RankUsers:
    """The Ray Data actor: one served version per actor, one call per batch of users."""

    def __init__(self, store: str, registry: str, version: str, k: int, threads: int) -> None:
        import torch

        from dayzero.online.registry import ModelRegistry
        from dayzero.online.store import open_store
        from dayzero.serve.state import ServiceState, UserVectorCache
        from dayzero.text.quiet import quiet_loading

        torch.set_num_threads(threads)
        self.k = k
        self.state = ServiceState(
            open_store(store), ModelRegistry(registry), user_cache=UserVectorCache(0)
        )
        with quiet_loading():
            self.state.serve_version(version)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from dayzero.serve.toplists import compute_toplists

        lists = compute_toplists(self.state, [str(u) for u in batch["user"]], self.k)
        columns = {name: [getattr(t, name) for t in lists] for name in _COLUMNS}
        columns["vector"] = [np.asarray(t.vector, dtype=np.float32) for t in lists]
        return columns


_COLUMNS = tuple(f.name for f in fields(TopList))


def precompute_toplists(
    store: str | os.PathLike,
    registry: str | os.PathLike,
    *,
    k: int = 100,
    version: str | None = None,
    users: list[str] | None = None,
    num_actors: int = 1,
    cpus_per_actor: float = 1.0,
    batch_size: int = 256,
    prune: bool = False,
    address: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rank every known user (or ``users``) by a model version on Ray and store the lists.

    Parameters
    ----------
    store : str or path
        The event store (a SQLite file or a PostgreSQL URL, as given to ``dayzero serve``).
    registry : str or path
        The model registry folder.
    k : int, default 100
        Items per list: requests for up to ``k`` items are answered from it.
    version : str, optional
        The version to rank by (default: the registry's current one). Lists are kept per
        version: a service serving another version does not use them.
    users : list of str, optional
        Whom to rank (default: every user with a profile or an event).
    num_actors, cpus_per_actor
        The actor pool; each actor loads the version once. The pool must leave one of the
        cluster's CPUs to Ray Data's own tasks: ``num_actors * cpus_per_actor <= CPUs - 1``.
    batch_size
        Users per actor call.
    prune : bool, default False
        Delete the stored lists of every other version afterwards.
    address : str, optional
        A running Ray cluster; default ``$RAY_ADDRESS`` or a local one started for the call.
    progress : bool, default True
        Ray Data's progress bars.

    Returns
    -------
    dict
        ``version``, ``users``, ``k``, ``lists`` written, ``pruned``, ``seconds``,
        ``users_per_second``.
    """
    from dayzero.online.registry import ModelRegistry
    from dayzero.online.store import open_store

    if k < 1 or batch_size < 1 or num_actors < 1:
        raise ValueError("k, batch_size and num_actors must be >= 1")
    if not cpus_per_actor > 0:
        raise ValueError(f"cpus_per_actor must be > 0, got {cpus_per_actor}")
    store, registry = str(store), str(Path(registry).expanduser())
    models = ModelRegistry(registry)
    version = version or models.current()
    if version is None:
        raise ValueError(f"{registry} has no promoted version: give --version or promote one")
    models.verify(version)  # fail here, not in every actor
    started = datetime.now(UTC)
    with open_store(store) as db:
        users = db.known_user_ids() if users is None else list(dict.fromkeys(users))
        written = 0
        if users:
            with ray_cluster(address, progress=progress) as ray:
                from ray.data import ActorPoolStrategy

                check_actor_pool(ray, num_actors, cpus_per_actor, "Ray Data's tasks")
                ranked = ray.data.from_items([{"user": u} for u in users]).map_batches(
                    _RankUsers,
                    fn_constructor_kwargs={
                        "store": store,
                        "registry": registry,
                        "version": version,
                        "k": k,
                        "threads": max(1, int(cpus_per_actor)),
                    },
                    batch_size=batch_size,
                    batch_format="numpy",
                    compute=ActorPoolStrategy(size=num_actors),
                    num_cpus=cpus_per_actor,
                )
                for batch in ranked.iter_batches(batch_size=WRITE_BATCH, batch_format="numpy"):
                    lists = [
                        TopList(
                            version=str(batch["version"][n]),
                            user=str(batch["user"][n]),
                            items=[str(i) for i in batch["items"][n]],
                            scores=[float(s) for s in batch["scores"][n]],
                            vector=batch["vector"][n],
                            new_user=bool(batch["new_user"][n]),
                            event_mark=int(batch["event_mark"][n]),
                            user_mark=int(batch["user_mark"][n]),
                            item_mark=int(batch["item_mark"][n]),
                            k=int(batch["k"][n]),
                        )
                        for n in range(len(batch["user"]))
                    ]
                    written += db.put_toplists(lists)
        pruned = db.delete_toplists(keep=version) if prune else 0
    seconds = (datetime.now(UTC) - started).total_seconds()
    return {
        "version": version,
        "users": len(users),
        "k": k,
        "lists": written,
        "pruned": pruned,
        "seconds": round(seconds, 3),
        "users_per_second": round(len(users) / seconds, 1) if seconds > 0 else None,
    }


__all__ = ["precompute_toplists"]
