"""Fit a recommender on Ray Train: N CPU workers, one gloo process group, the shared Trainer.

:func:`fit_on_ray` runs the recommender's own ``fit`` in every worker of a Ray Train
``TorchTrainer``. Ray makes the ``torch.distributed`` process group (gloo on CPUs), and inside
it :class:`dayzero.train.trainer.Trainer` trains data parallel: each worker takes its shard of
every epoch's permutation of the training examples, and the gradients are averaged over the
workers after every step (see the Trainer's docstring). Everything else in ``fit`` (encoding
texts, building the towers, the validation carve) is the same deterministic work on every
worker. Rank 0 saves the fitted model in the one artifact format as the run's checkpoint, and
the driver loads it back. One worker trains exactly as the plain ``fit``; N workers of batch b
step as one process of batch N * b, so settings tuned for one process may want a larger
learning rate, or a batch N times smaller per worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dayzero.distributed.cluster import ray_cluster


def _train_loop(config: dict[str, Any]) -> None:
    """The body of every Ray Train worker."""
    import ray.train
    import torch

    from dayzero.text.quiet import quiet_loading

    torch.set_num_threads(config["threads"])
    model = config["model"]
    with quiet_loading():
        model.fit(config["dataset"])
    history = getattr(model, "history_", None) or []
    metrics: dict[str, Any] = {"rank": ray.train.get_context().get_world_rank()}
    metrics["history"] = [
        {k: float(v) for k, v in entry.items() if isinstance(v, int | float)} for entry in history
    ]
    if metrics["rank"] == 0:
        with tempfile.TemporaryDirectory() as folder:
            model.save(folder)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
    else:
        ray.train.report(metrics)


def fit_on_ray(
    recommender: Any,
    dataset: Any,
    num_workers: int = 2,
    cpus_per_worker: float = 1.0,
    out: str | os.PathLike | None = None,
    address: str | None = None,
    storage_path: str | os.PathLike | None = None,
) -> Any:
    """Fit ``recommender`` on ``dataset`` with ``num_workers`` Ray Train workers.

    Parameters
    ----------
    recommender : Recommender
        An unfitted recommender whose training runs through :class:`dayzero.train.Trainer`
        (the two-tower, the sequential model, the cross-encoder); it is copied to the
        workers, and the fitted copy is returned (``recommender`` itself stays unfitted).
    dataset : Dataset
        The training data, sent to every worker (each takes its own shard while training).
    num_workers : int, default 2
        Workers (processes); the cluster needs ``num_workers * cpus_per_worker`` CPUs.
    cpus_per_worker : float, default 1.0
        CPUs each worker reserves, and its torch threads (at least 1).
    out : path, optional
        Keep the fitted model's folder (the artifact format) here; default a temporary folder,
        removed once the model is loaded.
    address : str, optional
        A running Ray cluster; default ``$RAY_ADDRESS`` or a local one started for the call.
    storage_path : path, optional
        Where Ray Train keeps the run (default a temporary folder, removed afterwards).

    Returns
    -------
    Recommender
        The model rank 0 fitted, loaded from its checkpoint; ``distributed_`` records the
        workers and rank 0's training history (its evaluations: ``train_loss`` and the
        validation metrics, as in the model's ``history_``).

    Examples
    --------
    >>> model = fit_on_ray(make_recommender("two-tower"), dataset, num_workers=4)  # doctest: +SKIP
    """
    from sklearn.base import clone

    from dayzero.recommend.contract import Recommender

    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if not cpus_per_worker > 0:
        raise ValueError(f"cpus_per_worker must be > 0, got {cpus_per_worker}")
    storage = Path(tempfile.mkdtemp(prefix="dayzero-ray-train-")) if storage_path is None else None
    try:
        with ray_cluster(address, progress=False) as ray:
            from ray.train import RunConfig, ScalingConfig
            from ray.train.torch import TorchTrainer

            total = float(ray.cluster_resources().get("CPU", 0))
            if num_workers * cpus_per_worker > total:
                raise ValueError(
                    f"{num_workers} workers x {cpus_per_worker} CPU exceed the cluster's "
                    f"{total:g} CPUs; lower num_workers or cpus_per_worker"
                )
            trainer = TorchTrainer(
                _train_loop,
                train_loop_config={
                    "model": clone(recommender),
                    "dataset": dataset,
                    "threads": max(1, int(cpus_per_worker)),
                },
                scaling_config=ScalingConfig(
                    num_workers=num_workers,
                    use_gpu=False,
                    resources_per_worker={"CPU": cpus_per_worker},
                ),
                run_config=RunConfig(storage_path=str(storage_path or storage), name="dayzero-fit"),
            )
            result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError(f"the Ray Train run ended without a checkpoint ({result.error})")
        target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="dayzero-fit-"))
        with result.checkpoint.as_directory() as folder:
            shutil.copytree(folder, target, dirs_exist_ok=True)
        try:
            model = Recommender.load(target)
        finally:
            if out is None:
                shutil.rmtree(target, ignore_errors=True)
    finally:
        if storage is not None:
            shutil.rmtree(storage, ignore_errors=True)
    model.distributed_ = {"workers": num_workers, "metrics": dict(result.metrics or {})}
    return model


__all__ = ["fit_on_ray"]
