"""The training loop every dayzero model shares, short enough to read top to bottom.

Contract
--------
``loss_fn(model, batch) -> scalar tensor``
    Forward pass and loss for one batch; the trainer does backward and the optimizer step.
``val_fn(model) -> dict[str, float]``
    Validation metrics, called at each evaluation with the model in eval mode under
    ``torch.no_grad()``. The trainer adds ``train_loss`` (mean loss since the last evaluation).
``train_data``
    A map-style ``torch.utils.data.Dataset``, batched by ``config.batch_size`` and shuffled
    each epoch with a generator seeded by ``seed + epoch``. The models pass an
    :class:`~dayzero.train.index_dataset.IndexDataset` of positions and build their examples
    in ``loss_fn``.

Every run is seeded (``random``, ``numpy``, ``torch``). With ``monitor`` set, the trainable
weights of the best evaluation are kept in memory and loaded back at the end; ``patience``
stops the run after that many evaluations without improvement.

Data parallel: inside an initialised ``torch.distributed`` process group of N > 1 processes
(Ray Train's ``TorchTrainer`` makes one, :mod:`dayzero.distributed.train`), every process runs
the same loop on its shard of each epoch's permutation (shards padded to equal length, so every
process takes the same number of steps), the trainable weights start from rank 0's, and after
each backward the gradients and the loss are averaged over the processes in one all-reduce of
their flattened values, which is what ``DistributedDataParallel`` does; DDP's module wrapper is
not used because the models' ``loss_fn`` call their towers directly rather than ``forward``.
Each process's batch is ``batch_size`` (the global batch is N times that); only rank 0 draws
progress bars. With one process, or none, nothing of this happens.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dayzero.train.callbacks import Callback
from dayzero.train.optim import SCHEDULES, make_optimizer, make_scheduler


@dataclass
class TrainerConfig:
    """Everything that shapes a training run.

    Parameters
    ----------
    epochs : int
        Passes over ``train_data`` (training may stop earlier: ``max_steps``, early stopping).
    batch_size : int
        Batch size.
    lr, weight_decay :
        AdamW settings. Biases and norm weights never decay.
    warmup_ratio :
        Linear warmup length as a fraction of the total steps.
    schedule :
        ``"linear"`` or ``"cosine"`` decay to zero after warmup.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    max_steps : int or None
        Stop after this many optimizer steps.
    eval_every : int or None
        Evaluate every this many steps; ``None`` = at the end of each epoch.
    monitor, mode :
        Metric to track for early stopping and best-weights restore (``"train_loss"`` or a key
        of ``val_fn``'s dict) and whether lower (``"min"``) or higher (``"max"``) is better.
        At the end, the trainable weights of the best evaluation are loaded back.
    patience : int or None
        Stop after this many evaluations without improvement of ``monitor``.
    seed : int
        Seeds ``random``, ``numpy`` and ``torch`` (and the shuffling).
    log_dir : str or None
        TensorBoard scalars (skipped with a warning when tensorboard is not installed).
    progress_bar : bool
        One tqdm bar per epoch with the running loss and the last monitored metric (none
        inside :func:`dayzero.core.progress.quiet`).
    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    schedule: str = "linear"
    grad_clip: float | None = 1.0
    max_steps: int | None = None
    eval_every: int | None = None
    monitor: str | None = None
    mode: str = "min"
    patience: int | None = None
    seed: int = 0
    log_dir: str | None = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "eval_every", "patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be None or a positive int, got {value}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"`schedule` must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"`warmup_ratio` must be in [0, 1), got {self.warmup_ratio}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max', got {self.mode!r}")
        if self.patience is not None and self.monitor is None:
            raise ValueError("`patience` needs `monitor` (e.g. monitor='val_loss')")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"`grad_clip` must be None or > 0, got {self.grad_clip}")

    @classmethod
    def encoder_adaptation(
        cls, lr: float, max_steps: int, batch_size: int, seed: int, progress_bar: bool
    ) -> TrainerConfig:
        """The short run that adapts an encoder inside a recommender (two-tower, sequential):
        one pass of ``max_steps`` steps, 10 % warmup then linear decay, weight decay 0.01 and
        gradient clipping at 1, so a few hundred noisy steps cannot wreck pretrained weights."""
        return cls(
            epochs=1,
            batch_size=batch_size,
            lr=lr,
            weight_decay=0.01,
            schedule="linear",
            warmup_ratio=0.1,
            grad_clip=1.0,
            max_steps=max_steps,
            seed=seed,
            progress_bar=progress_bar,
        )


@dataclass
class TrainingHistory:
    """What happened in ``fit``: per-step loss, learning rate and gradient norm (before
    clipping), per-evaluation metrics (``{"step": ..., metric: value}``), the best evaluation of
    the monitored metric, whether early stopping fired, and the wall time in seconds.
    """

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


class Trainer:
    """Train ``model`` by minimising ``loss_fn`` (see the module docstring for the contract).

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place; only parameters with ``requires_grad`` are optimised.
    config : TrainerConfig
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor``.
    callbacks : sequence of Callback
        Hooks (e.g. ``AdaLoraBudgetCallback``); see :mod:`dayzero.train.callbacks`.

    Examples
    --------
    >>> history = Trainer(model, TrainerConfig(epochs=3), loss_fn).fit(dataset)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainerConfig | None = None,
        loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        if loss_fn is None:
            raise ValueError("`loss_fn(model, batch) -> scalar tensor` is required")
        self.model = model
        self.config = config if config is not None else TrainerConfig()
        self.loss_fn = loss_fn
        self.callbacks = list(callbacks)
        self.should_stop = False
        self.step = 0
        self.total_steps: int | None = None

    # ------------------------------------------------------------------ the loop

    def fit(
        self,
        train_data: torch.utils.data.Dataset,
        val_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> TrainingHistory:
        """Train on ``train_data``; evaluate with ``val_fn``; return the history."""
        cfg = self.config
        _seed_everything(cfg.seed)
        self.total_steps = self._count_total_steps(train_data)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.rank, self.world = _world()
        if self.world > 1:
            _broadcast_from_rank0(self.params)
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay)
        warmup_steps = round(cfg.warmup_ratio * self.total_steps)
        self.scheduler = make_scheduler(
            self.optimizer, warmup_steps, self.total_steps, cfg.schedule
        )
        self.history = TrainingHistory()
        self.step, self.epoch = 0, 0
        self.should_stop, self.best_state, self.bad_evals = False, None, 0
        self._recent_losses: list[float] = []
        self._last_eval_step = -1
        self._writer = _summary_writer(cfg.log_dir)
        started = time.perf_counter()
        self._bar = _progress_bar(0, False, "train")  # one bar per epoch, made in the loop
        self._train_size = len(train_data)
        self.model.train()
        for callback in self.callbacks:
            callback.on_train_begin(self)
        try:
            while self.epoch < cfg.epochs and not self._finished():
                self._bar.close()
                self._bar = self._epoch_bar(len(train_data))
                for batch in self._epoch_batches(train_data):
                    self._train_step(batch)
                    if cfg.eval_every and self.step % cfg.eval_every == 0:
                        self._evaluate(val_fn)
                    if self._finished():
                        break
                else:
                    self.epoch += 1
                    if cfg.eval_every is None:
                        self._evaluate(val_fn)
            if self._last_eval_step != self.step:  # the final weights always get a score
                self._evaluate(val_fn)
        finally:
            self._bar.close()
            if self._writer is not None:
                self._writer.close()
        if self.best_state is not None:
            self._load_trainable(self.best_state)
        self.history.wall_time_s = time.perf_counter() - started
        return self.history

    def _epoch_bar(self, n_examples: int):
        cfg = self.config
        n_examples = math.ceil(n_examples / self.world)
        steps = min(math.ceil(n_examples / cfg.batch_size), self.total_steps - self.step)
        enabled = cfg.progress_bar and self.rank == 0
        return _progress_bar(steps, enabled, f"epoch {self.epoch + 1}/{cfg.epochs}")

    def _train_step(self, batch: Any) -> None:
        loss = self.loss_fn(self.model, batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {self.step + 1}; lower `lr`, set `grad_clip`, "
                "or check the batch for NaN/inf"
            )
        loss.backward()
        value = float(loss.detach())
        if self.world > 1:
            value = _average_gradients(self.params, loss.detach(), self.world)
        self.step += 1
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        for callback in self.callbacks:
            callback.after_optimizer_step(self, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        self.history.losses.append(value)
        self.history.lrs.append(lr)
        self.history.grad_norms.append(grad_norm)
        self._recent_losses.append(value)
        self._bar.update(1)
        self._bar.set_postfix(self._postfix(), refresh=False)
        if self._writer is not None:
            self._writer.add_scalar("train/loss", value, self.step)
            self._writer.add_scalar("train/lr", lr, self.step)

    def _evaluate(self, val_fn: Callable | None) -> None:
        metrics: dict[str, float] = {}
        if self._recent_losses:
            metrics["train_loss"] = float(np.mean(self._recent_losses))
        self._recent_losses = []
        if val_fn is not None:
            self.model.eval()
            with torch.no_grad():
                values = val_fn(self.model)
            self.model.train()
            if not isinstance(values, dict):
                raise TypeError(f"val_fn must return dict[str, float], got {type(values)}")
            metrics.update({key: float(value) for key, value in values.items()})
        self._last_eval_step = self.step
        self.history.evals.append({"step": self.step, **metrics})
        if self.config.monitor is not None:
            self._track_best(metrics)
        if self._writer is not None:
            for key, value in metrics.items():
                self._writer.add_scalar(f"eval/{key}", value, self.step)
        self._bar.set_postfix(self._postfix(), refresh=False)

    def _track_best(self, metrics: dict[str, float]) -> None:
        cfg = self.config
        if cfg.monitor not in metrics:
            raise KeyError(
                f"monitored metric {cfg.monitor!r} is not among the metrics {sorted(metrics)}; "
                "return it from val_fn or monitor 'train_loss'"
            )
        value, best = metrics[cfg.monitor], self.history.best_metric
        improved = best is None or (value < best if cfg.mode == "min" else value > best)
        if improved:
            self.history.best_metric, self.history.best_step = value, self.step
            self.best_state = self._trainable_state()
            self.bad_evals = 0
        else:
            self.bad_evals += 1
            if cfg.patience is not None and self.bad_evals >= cfg.patience:
                self.should_stop = self.history.stopped_early = True

    def _finished(self) -> bool:
        return self.should_stop or self.step >= self.total_steps

    # ------------------------------------------------------------------ data

    def _epoch_batches(self, train_data: torch.utils.data.Dataset) -> torch.utils.data.DataLoader:
        # A fresh generator per epoch: the order depends on the seed and the epoch only.
        generator = torch.Generator().manual_seed(self.config.seed + self.epoch)
        if self.world == 1:
            return torch.utils.data.DataLoader(
                train_data, batch_size=self.config.batch_size, shuffle=True, generator=generator
            )
        # Every process draws the permutation one process would (the same seed, drawn through a
        # DataLoader as above: it takes a number from the generator first) and takes every
        # world-th position from its rank on, padded with the first positions to equal shards;
        # so N processes of batch b step exactly as one process of batch N * b.
        everything = torch.utils.data.DataLoader(
            range(len(train_data)), batch_size=len(train_data), shuffle=True, generator=generator
        )
        order = next(iter(everything))
        per_shard = math.ceil(len(order) / self.world)
        order = torch.cat([order, order[: per_shard * self.world - len(order)]])
        shard = order[self.rank :: self.world].tolist()
        return torch.utils.data.DataLoader(
            torch.utils.data.Subset(train_data, shard),
            batch_size=self.config.batch_size,
            shuffle=False,
        )

    def _count_total_steps(self, train_data: torch.utils.data.Dataset) -> int:
        cfg = self.config
        if not isinstance(train_data, torch.utils.data.Dataset) or isinstance(
            train_data, torch.utils.data.IterableDataset
        ):
            raise TypeError(
                f"`train_data` must be a map-style torch Dataset, got {type(train_data).__name__}; "
                "wrap positions in dayzero.train.index_dataset.IndexDataset(n) and build each "
                "batch in loss_fn"
            )
        if len(train_data) == 0:
            raise ValueError("`train_data` is empty")
        shard = math.ceil(len(train_data) / _world()[1])
        total = math.ceil(shard / cfg.batch_size) * cfg.epochs
        return total if cfg.max_steps is None else min(total, cfg.max_steps)

    # ------------------------------------------------------------------ state

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the trainable parameters (cheap for adapters)."""
        return {
            name: p.detach().to("cpu", copy=True)
            for name, p in self.model.named_parameters()
            if p.requires_grad
        }

    def _load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                parameters[name].copy_(value)

    def _postfix(self) -> dict[str, str]:
        postfix = {}
        if self._recent_losses:
            postfix["loss"] = f"{np.mean(self._recent_losses[-50:]):.4g}"
        if self.history.evals:
            key = self.config.monitor or next(iter(self.history.evals[-1].keys() - {"step"}), None)
            if key in self.history.evals[-1]:
                postfix[key] = f"{self.history.evals[-1][key]:.4g}"
        return postfix


# ---------------------------------------------------------------------- helpers


def _world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, ``(0, 1)`` without one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _broadcast_from_rank0(params: Sequence[torch.Tensor]) -> None:
    """Every process starts from rank 0's trainable weights (as DDP does at construction)."""
    if not params:
        return
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        torch.distributed.broadcast(flat, src=0)
        offset = 0
        for p in params:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def _average_gradients(params: Sequence[torch.Tensor], loss: torch.Tensor, world: int) -> float:
    """Average the gradients and the loss over the processes in one all-reduce; returns the
    mean loss."""
    grads = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(torch.float32)
        for p in params
    ]
    flat = torch.cat([*grads, loss.reshape(1).to(torch.float32)])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        chunk = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        offset += p.numel()
    return float(flat[-1])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress_bar(total: int, enabled: bool, desc: str):
    from dayzero.core.progress import progress_bar

    return progress_bar(total=total, enabled=enabled, desc=desc, unit="step")


@functools.cache
def _tensorboard_writer_class() -> type | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "tensorboard is not installed: `log_dir` is ignored (pip install tensorboard)",
            stacklevel=3,
        )
        return None
    return SummaryWriter


def _summary_writer(log_dir: str | None):
    if log_dir is None:
        return None
    writer_class = _tensorboard_writer_class()
    return None if writer_class is None else writer_class(log_dir=log_dir)
