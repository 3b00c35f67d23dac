"""A map-style dataset of positions ``0..n-1``: the trainer shuffles and batches them, and the
model's ``loss_fn`` turns a batch of positions into its own examples (users, pairs, items)."""

from __future__ import annotations

import torch


class IndexDataset(torch.utils.data.Dataset):
    """Positions ``0..n-1``; batches arrive in ``loss_fn`` as a 1-D long tensor."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"IndexDataset needs n >= 1, got {n}")
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return index
