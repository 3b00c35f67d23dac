"""The optimizer and learning-rate schedule: AdamW over decay / no-decay parameter groups
(nanoGPT-style), and warmup followed by linear or cosine decay to zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SCHEDULES = ("linear", "cosine")
# Names of parameters that should not be pulled toward zero: biases and normalisation gains.
_NO_DECAY_TAGS = ("bias", "layernorm", "layer_norm", "norm")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split the trainable parameters of ``model`` into a decay and a no-decay group.

    Matrices (weights of linear and embedding layers, ``ndim >= 2``) decay; biases, LayerNorm
    and other normalisation weights, and every 1-d parameter do not. Frozen parameters
    (``requires_grad=False``) are left out.

    Returns
    -------
    list of dict
        ``[{"params": [...], "weight_decay": weight_decay}, {"params": [...], "weight_decay": 0}]``
        without empty groups.

    Raises
    ------
    ValueError
        If ``model`` has no trainable parameter.
    """
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}")
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        lowered = name.lower()
        if parameter.ndim < 2 or any(tag in lowered for tag in _NO_DECAY_TAGS):
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    if not decay and not no_decay:
        raise ValueError(
            "the model has no trainable parameter (every requires_grad is False, e.g. the "
            "'frozen' strategy without a trainable head); nothing to optimise"
        )
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def make_optimizer(
    model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01
) -> torch.optim.AdamW:
    """AdamW (torch's default betas and eps) over :func:`param_groups` of ``model``."""
    if lr <= 0:
        raise ValueError(f"`lr` must be > 0, got {lr}")
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)


def lr_schedule(step: int, warmup_steps: int, total_steps: int, kind: str = "linear") -> float:
    """Learning-rate multiplier for optimizer step ``step`` (0-based).

    Linear warmup ``(step + 1) / warmup_steps`` (so the first step already learns), then decay
    from 1 to 0 at ``total_steps``: linear or half a cosine.

    Examples
    --------
    >>> lr_schedule(0, 10, 110), lr_schedule(9, 10, 110), lr_schedule(60, 10, 110)
    (0.1, 1.0, 0.5)
    >>> round(lr_schedule(60, 10, 110, kind="cosine"), 6)
    0.5
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if kind == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, kind: str = "linear"
) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`lr_schedule` as a ``LambdaLR``; call ``scheduler.step()`` after each step."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")
    if warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be >= 0, got {warmup_steps}")

    def multiplier(step: int) -> float:
        return lr_schedule(step, warmup_steps, total_steps, kind)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
