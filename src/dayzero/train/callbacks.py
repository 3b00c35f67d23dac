"""Trainer callbacks: hooks into :class:`dayzero.train.trainer.Trainer` at fixed points.

Order of one training step::

    loss = loss_fn(model, batch); loss.backward()
    clip gradients; optimizer.step(); scheduler.step()
    after_optimizer_step(trainer, step)   # weights updated, gradients still there
    optimizer.zero_grad()

``step`` counts optimizer steps from 1; ``on_train_begin(trainer)`` runs once before the first
step. Early stopping lives in the trainer itself (``TrainerConfig.patience``), because
restoring the best weights is part of ``fit``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from dayzero.train.trainer import Trainer


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Called once before the first step (``trainer.total_steps`` is known)."""

    def after_optimizer_step(self, trainer: Trainer, step: int) -> None:
        """Called after ``optimizer.step()``, before ``zero_grad`` (gradients still present)."""


class AdaLoraBudgetCallback(Callback):
    """Run AdaLoRA's rank-budget update every step, as peft requires.

    peft's ``AdaLoraModel.update_and_allocate(global_step)`` scores the importance of each
    singular value from the current gradients and masks the least important ones. It must run
    after ``loss.backward()`` and before ``zero_grad()``; we call it after ``optimizer.step()``
    (peft's documented order), because a mask applied before the step would be undone by the
    optimizer's update of the masked values.

    Parameters
    ----------
    model : torch.nn.Module, optional
        The module holding the AdaLoRA adapters (the peft model or any module containing it).
        Default: ``trainer.model``, searched for the AdaLoRA model.
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        self.model = model
        self.adalora_ = None

    def on_train_begin(self, trainer: Trainer) -> None:
        self.adalora_ = find_adalora(self.model if self.model is not None else trainer.model)
        config = self.adalora_.peft_config[self.adalora_.trainable_adapter_name]
        if config.total_step != trainer.total_steps:
            warnings.warn(
                f"AdaLoRA total_step={config.total_step} but the trainer runs "
                f"{trainer.total_steps} steps; the rank budget schedule will not end where "
                "training ends. Set the strategy's total_step to the trainer's total steps",
                stacklevel=2,
            )

    def after_optimizer_step(self, trainer: Trainer, step: int) -> None:
        # peft counts global steps from 0; the trainer counts optimizer steps from 1.
        self.adalora_.update_and_allocate(step - 1)


def find_adalora(model: nn.Module) -> nn.Module:
    """The peft ``AdaLoraModel`` inside ``model``.

    Raises
    ------
    ValueError
        If ``model`` contains no AdaLoRA adapter.
    """
    for module in model.modules():
        if type(module).__name__ == "AdaLoraModel" and hasattr(module, "update_and_allocate"):
            return module
    raise ValueError(
        "AdaLoraBudgetCallback: the model contains no AdaLoRA adapter; apply the 'adalora' "
        "strategy first or drop this callback"
    )
