"""The training loop every dayzero model shares, short enough to read top to bottom.

Contract
--------
``loss_fn(model, batch) -> scalar tensor``
    Forward pass and loss for one batch; the trainer does backward and the optimizer step.
``val_fn(model) -> dict[str, float]``
    Validation metrics, called at each evaluation with the model in eval mode under
    ``torch.no_grad()``. The trainer adds ``train_loss`` (mean loss since the last evaluation).
``train_data``
    A map-style ``torch.utils.data.Dataset`` (batched by ``config.batch_size``, shuffled with a
    generator seeded by ``seed + epoch``), or any re-iterable of ready batches (a ``DataLoader``,
    a list), iterated as given once per epoch. Without ``len()``, set ``max_steps``.

Checkpoints (``checkpoint_dir``) are written at every evaluation, pickle-free, to
``<checkpoint_dir>/last``: ``trainable.safetensors`` (trainable parameters), ``best.safetensors``
(best trainable parameters so far), ``optimizer.safetensors`` (every optimizer state tensor,
keyed ``state.<param index>.<name>``), ``rng.safetensors`` (torch and numpy generator states),
and ``trainer_state.json`` (step, position in the epoch, optimizer param groups and non-tensor
state, scheduler state, Python RNG state, early-stopping state, history). With ``resume=True``
training continues from there and ends with the same weights as an uninterrupted run (exactly
so for a Dataset or a fixed list of batches; a shuffling DataLoader of your own draws a new order).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dayzero.train.callbacks import Callback
from dayzero.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_scheduler

FORMAT_VERSION = 1


@dataclass
class TrainerConfig:
    """Everything that shapes a training run.

    Parameters
    ----------
    epochs : int
        Passes over ``train_data`` (training may stop earlier: ``max_steps``, early stopping).
    batch_size : int
        Batch size when ``train_data`` is a map-style Dataset.
    shuffle : bool
        Shuffle a map-style Dataset each epoch.
    lr, weight_decay, optimizer, momentum :
        Optimizer settings (``"adamw"`` or ``"sgd"``; momentum is for SGD). Biases and norm
        weights never decay.
    warmup_ratio, warmup_steps :
        Linear warmup length as a fraction of the total steps, or in steps (overrides the ratio).
    schedule, min_lr_ratio :
        ``"linear"``, ``"cosine"`` or ``"constant"`` decay after warmup, down to
        ``min_lr_ratio * lr``.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    max_steps : int or None
        Stop after this many optimizer steps.
    eval_every : int or None
        Evaluate (and checkpoint) every this many steps; ``None`` = at the end of each epoch.
    monitor, mode :
        Metric to track for early stopping and best-weights restore (``"train_loss"`` or a key
        of ``val_fn``'s dict) and whether lower (``"min"``) or higher (``"max"``) is better.
    patience : int or None
        Stop after this many evaluations without improvement of ``monitor``.
    restore_best : bool
        At the end, load the trainable weights of the best evaluation of ``monitor``.
    seed, deterministic :
        Seeds ``random``, ``numpy`` and ``torch``; ``deterministic`` also turns on
        ``torch.use_deterministic_algorithms`` for the run.
    log_dir : str or None
        TensorBoard scalars (skipped with a warning when tensorboard is not installed).
    checkpoint_dir, resume :
        Where to write checkpoints, and whether to continue from the one there.
    progress_bar : bool
        A tqdm bar with the running loss and the last monitored metric.
    """

    epochs: int = 1
    batch_size: int = 32
    shuffle: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    momentum: float = 0.9
    warmup_ratio: float = 0.0
    warmup_steps: int | None = None
    schedule: str = "linear"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    max_steps: int | None = None
    eval_every: int | None = None
    monitor: str | None = None
    mode: str = "min"
    patience: int | None = None
    restore_best: bool = True
    seed: int = 0
    deterministic: bool = False
    log_dir: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    progress_bar: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "eval_every", "patience", "warmup_steps"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "warmup_steps" else 1):
                raise ValueError(f"`{name}` must be None or a positive int, got {value}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}, got {self.optimizer!r}")
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
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("`resume=True` needs `checkpoint_dir`")

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
        train_data: Iterable[Any],
        val_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> TrainingHistory:
        """Train on ``train_data``; evaluate with ``val_fn``; return the history."""
        cfg = self.config
        _seed_everything(cfg.seed)
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.total_steps = self._count_total_steps(train_data)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(
            self.model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum
        )
        self.scheduler = make_scheduler(
            self.optimizer, self._warmup_steps(), self.total_steps, cfg.schedule, cfg.min_lr_ratio
        )
        self.history = TrainingHistory()
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.should_stop, self.best_state, self.bad_evals = False, None, 0
        self._recent_losses: list[float] = []
        self._last_eval_step = -1
        if cfg.resume and (Path(cfg.checkpoint_dir) / "last").is_dir():
            self.load_checkpoint(Path(cfg.checkpoint_dir) / "last")
        self._writer = _summary_writer(cfg.log_dir)
        started = time.perf_counter() - self.history.wall_time_s
        self._bar = _progress_bar(self.total_steps, self.step, cfg.progress_bar)
        self.model.train()
        for callback in self.callbacks:
            callback.on_train_begin(self)
        try:
            while self.epoch < cfg.epochs and not self._finished():
                for index, batch in enumerate(self._epoch_batches(train_data)):
                    if index < self.batch_in_epoch:  # already trained on before the resume
                        continue
                    self._train_step(batch)
                    self.batch_in_epoch = index + 1
                    if cfg.eval_every and self.step % cfg.eval_every == 0:
                        self._evaluate(val_fn, started)
                    if self._finished():
                        break
                else:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    if cfg.eval_every is None:
                        self._evaluate(val_fn, started)
            if self._last_eval_step != self.step:  # the final weights always get a score
                self._evaluate(val_fn, started)
        finally:
            self._bar.close()
            if self._writer is not None:
                self._writer.close()
            torch.use_deterministic_algorithms(deterministic_before)
        if cfg.restore_best and self.best_state is not None:
            self._load_trainable(self.best_state)
        self.history.wall_time_s = time.perf_counter() - started
        for callback in self.callbacks:
            callback.on_train_end(self)
        return self.history

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
        self.step += 1
        for callback in self.callbacks:
            callback.after_backward(self, self.step)
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        for callback in self.callbacks:
            callback.after_optimizer_step(self, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        self.history.losses.append(value)
        self.history.lrs.append(lr)
        self.history.grad_norms.append(grad_norm)
        self._recent_losses.append(value)
        for callback in self.callbacks:
            callback.on_step_end(self, self.step, value)
        self._bar.update(1)
        self._bar.set_postfix(self._postfix(), refresh=False)
        if self._writer is not None:
            self._writer.add_scalar("train/loss", value, self.step)
            self._writer.add_scalar("train/lr", lr, self.step)

    def _evaluate(self, val_fn: Callable | None, started: float) -> None:
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
        for callback in self.callbacks:
            callback.on_evaluate(self, metrics)
        if self._writer is not None:
            for key, value in metrics.items():
                self._writer.add_scalar(f"eval/{key}", value, self.step)
        self._bar.set_postfix(self._postfix(), refresh=False)
        if self.config.checkpoint_dir is not None:
            self.history.wall_time_s = time.perf_counter() - started
            self.save_checkpoint(Path(self.config.checkpoint_dir) / "last")

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
        return self.should_stop or (self.total_steps is not None and self.step >= self.total_steps)

    # ------------------------------------------------------------------ data and schedule

    def _epoch_batches(self, train_data: Iterable[Any]) -> Iterable[Any]:
        if _is_map_dataset(train_data):
            # A fresh generator per epoch makes the order reproducible on resume.
            generator = torch.Generator().manual_seed(self.config.seed + self.epoch)
            return torch.utils.data.DataLoader(
                train_data,
                batch_size=self.config.batch_size,
                shuffle=self.config.shuffle,
                generator=generator,
            )
        return train_data

    def _count_total_steps(self, train_data: Iterable[Any]) -> int | None:
        cfg = self.config
        if isinstance(train_data, Iterator) and cfg.epochs > 1:
            raise ValueError(
                "`train_data` is a one-shot iterator but epochs > 1; pass a list, a Dataset or a "
                "DataLoader (anything that can be iterated again)"
            )
        try:
            per_epoch = len(train_data)  # type: ignore[arg-type]
        except TypeError:
            per_epoch = None
        if per_epoch is not None and _is_map_dataset(train_data):
            per_epoch = math.ceil(per_epoch / cfg.batch_size)
        if per_epoch == 0:
            raise ValueError("`train_data` is empty")
        total = None if per_epoch is None else per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = cfg.max_steps if total is None else min(total, cfg.max_steps)
        if total is None and (cfg.schedule != "constant" or cfg.warmup_ratio > 0):
            raise ValueError(
                "`train_data` has no len(): set `max_steps` (or schedule='constant' and "
                "warmup_steps instead of warmup_ratio)"
            )
        return total

    def _warmup_steps(self) -> int:
        if self.config.warmup_steps is not None:
            return self.config.warmup_steps
        return round(self.config.warmup_ratio * (self.total_steps or 0))

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

    def save_checkpoint(self, folder: str | Path) -> Path:
        """Write the resumable state to ``folder`` (replaced atomically); see the module doc."""
        from safetensors.torch import save_file

        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(self._trainable_state(), str(tmp / "trainable.safetensors"))
        if self.best_state is not None:
            save_file(self.best_state, str(tmp / "best.safetensors"))
        optimizer_tensors, optimizer_json = _split_optimizer_state(self.optimizer.state_dict())
        save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
        rng_tensors, rng_json = _rng_state()
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        state = {
            "format": FORMAT_VERSION,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "param_names": [n for n, p in self.model.named_parameters() if p.requires_grad],
            "optimizer": optimizer_json,
            "scheduler": _jsonable(self.scheduler.state_dict()),
            "rng": rng_json,
            "bad_evals": self.bad_evals,
            "recent_losses": self._recent_losses,
            "last_eval_step": self._last_eval_step,
            "history": self.history.to_dict(),
            "config": dataclasses.asdict(self.config),
        }
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
        return folder

    def load_checkpoint(self, folder: str | Path) -> None:
        """Restore the state written by :meth:`save_checkpoint` (call inside ``fit``)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        state = json.loads((folder / "trainer_state.json").read_text())
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        if state["param_names"] != names:
            raise ValueError(
                f"checkpoint {folder} was written for other trainable parameters "
                f"({len(state['param_names'])} vs {len(names)} now); apply the same strategy and "
                "model before resuming, or point `checkpoint_dir` elsewhere"
            )
        self._load_trainable(load_file(str(folder / "trainable.safetensors")))
        if (folder / "best.safetensors").is_file():
            self.best_state = load_file(str(folder / "best.safetensors"))
        self.optimizer.load_state_dict(
            _join_optimizer_state(load_file(str(folder / "optimizer.safetensors")), state)
        )
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(load_file(str(folder / "rng.safetensors")), state["rng"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch, self.bad_evals = state["batch_in_epoch"], state["bad_evals"]
        self._recent_losses, self._last_eval_step = state["recent_losses"], state["last_eval_step"]
        self.history = TrainingHistory(**state["history"])

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


def _is_map_dataset(data: Any) -> bool:
    return isinstance(data, torch.utils.data.Dataset) and not isinstance(
        data, torch.utils.data.IterableDataset
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress_bar(total: int | None, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="step")


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def _split_optimizer_state(
    state_dict: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state -> (tensors for safetensors, the rest for JSON)."""
    tensors, scalars = {}, {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": _jsonable(state_dict["param_groups"]), "scalars": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], state: dict) -> dict[str, Any]:
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        per_param.setdefault(int(index), {})[key] = value
    for index, values in state["optimizer"]["scalars"].items():
        per_param.setdefault(int(index), {}).update(values)
    groups = state["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:  # JSON turned the tuple into a list
            group["betas"] = tuple(group["betas"])
    return {"state": per_param, "param_groups": groups}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    tensors = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
    }
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = cuda_state
    version, python_state, gauss_next = random.getstate()
    return tensors, {
        "numpy": [kind, int(position), int(has_gauss), float(cached_gaussian)],
        "python": [version, list(python_state), gauss_next],
    }


def _set_rng_state(tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    kind, position, has_gauss, cached_gaussian = state["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, position, has_gauss, cached_gaussian))
    version, python_state, gauss_next = state["python"]
    random.setstate((version, tuple(python_state), gauss_next))
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
