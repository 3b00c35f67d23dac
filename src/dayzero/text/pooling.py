"""Pool a transformer's token states into one vector per text."""

from __future__ import annotations

import torch

POOLING_METHODS = ("mean", "cls", "last")


def check_pooling(pooling: str) -> str:
    """Return ``pooling`` if it names a known method, else raise a ``ValueError`` listing them."""
    if pooling not in POOLING_METHODS:
        raise ValueError(f"pooling={pooling!r} is not one of {POOLING_METHODS}")
    return pooling


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """Reduce token states ``(batch, tokens, dim)`` to text vectors ``(batch, dim)``.

    Parameters
    ----------
    hidden : torch.Tensor
        Last hidden state, shape ``(batch, tokens, dim)``.
    attention_mask : torch.Tensor
        1 for real tokens, 0 for padding, shape ``(batch, tokens)``. Left and right padding
        both work. When ``hidden`` has more positions than the mask (virtual tokens prepended
        by prompt tuning), the extra leading positions count as real tokens.
    pooling : {"mean", "cls", "last"}
        ``mean``: average of the real tokens (sentence-transformers' default); ``cls``: the
        first position; ``last``: the last real token (what decoders summarise into).

    Returns
    -------
    torch.Tensor
        Shape ``(batch, dim)``, differentiable, same dtype as ``hidden``.
    """
    check_pooling(pooling)
    mask = attention_mask.to(hidden.device)
    extra = hidden.shape[1] - mask.shape[1]
    if extra > 0:
        mask = torch.cat([mask.new_ones(mask.shape[0], extra), mask], dim=1)
    elif extra < 0:
        raise ValueError(
            f"hidden has {hidden.shape[1]} positions but attention_mask has {mask.shape[1]}"
        )
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (positions * (mask > 0)).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return summed / counts
