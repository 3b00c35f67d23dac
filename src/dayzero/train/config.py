"""Settings of the training runs the models share: optimisation and encoder adaptation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdaptationConfig:
    """How a model adapts its text encoder after (or while) training its own layers.

    Parameters
    ----------
    steps : int, default 60
        Optimizer steps of the encoder adaptation.
    items : int, default 32
        Distinct items per step (each item's text goes through the encoder once per step).
    users : int, default 32
        Users per step, for models that adapt on user sequences.
    lr : float, default 5e-4
        Learning rate of the adaptation.
    refit_epochs : int, default 4
        Epochs of the model's own layers on the re-encoded texts after adaptation.
    contrastive_steps : int, default 0
        Steps of in-domain contrastive adaptation on co-engagement pairs of the training
        interactions (:mod:`dayzero.train.contrastive`) before the model's own layers train;
        0: off. The two-tower reads it (and ``steps=0`` then skips its end-to-end stage).
    contrastive_pairs : int, default 32
        Pairs per contrastive step.
    contrastive_lr : float, default 1e-4
        Learning rate of the contrastive adaptation.
    contrastive_seconds : float, optional
        Wall-time budget of the contrastive adaptation in seconds (``None``: steps only).
    """

    steps: int = 60
    items: int = 32
    users: int = 32
    lr: float = 5e-4
    refit_epochs: int = 4
    contrastive_steps: int = 0
    contrastive_pairs: int = 32
    contrastive_lr: float = 1e-4
    contrastive_seconds: float | None = None


__all__ = ["AdaptationConfig"]
