"""Progress bars: one per stage when asked for, none inside quiet() whatever the caller asks."""

from __future__ import annotations

import threading

import numpy as np

from dayzero.core.progress import progress_bar, progress_enabled, quiet


def test_a_requested_bar_is_drawn_and_quiet_removes_it(capfd):
    assert sum(progress_bar(range(4), desc="stage-a")) == 6
    assert "stage-a" in capfd.readouterr().err
    with quiet():
        assert sum(progress_bar(range(4), desc="stage-b")) == 6
    assert capfd.readouterr().err == ""
    sum(progress_bar(range(4), desc="stage-c", enabled=False))
    assert capfd.readouterr().err == ""


def test_quiet_nests_and_holds_in_other_threads():
    seen = []
    with quiet():
        with quiet():
            pass
        worker = threading.Thread(target=lambda: seen.append(progress_enabled(True)))
        worker.start()
        worker.join()
        assert not progress_enabled(True)
    assert seen == [False]
    assert progress_enabled(True) and not progress_enabled(False)


def _fit(epochs: int, progress: bool):
    import torch

    from dayzero.train import Trainer, TrainerConfig
    from dayzero.train.index_dataset import IndexDataset

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32))

    def loss_fn(net, batch):
        return net(x[batch]).pow(2).mean()

    config = TrainerConfig(epochs=epochs, batch_size=4, progress_bar=progress)
    return Trainer(model, config, loss_fn=loss_fn).fit(IndexDataset(8))


def test_the_trainer_draws_one_bar_per_epoch(capfd):
    history = _fit(3, progress=True)
    err = capfd.readouterr().err
    assert len(history.losses) == 6
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}/3" in err
    assert "0/2" in err and "0/6" not in err  # each bar counts the steps of its own epoch
    with quiet():
        _fit(3, progress=True)
    assert capfd.readouterr().err == ""
