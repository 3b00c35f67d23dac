"""The shared trainer: optimizers and schedules, the training loop, callbacks."""

from __future__ import annotations

from dayzero.train.callbacks import AdaLoraBudgetCallback, Callback
from dayzero.train.optim import lr_schedule, make_optimizer, make_scheduler, param_groups
from dayzero.train.trainer import Trainer, TrainerConfig, TrainingHistory

__all__ = [
    "AdaLoraBudgetCallback",
    "Callback",
    "Trainer",
    "TrainerConfig",
    "TrainingHistory",
    "lr_schedule",
    "make_optimizer",
    "make_scheduler",
    "param_groups",
]
