from __future__ import annotations

import pytest
import torch

from dayzero.train.index_dataset import IndexDataset


def test_positions_batch_into_long_tensors():
    data = IndexDataset(5)
    assert len(data) == 5 and data[4] == 4
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=3)))
    assert batch.tolist() == [0, 1, 2] and batch.dtype == torch.long
    with pytest.raises(IndexError):
        data[5]
    with pytest.raises(ValueError, match="n >= 1"):
        IndexDataset(0)
