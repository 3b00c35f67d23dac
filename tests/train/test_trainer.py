"""The shared Trainer: learning, early stopping + restore, determinism, clipping, input rules."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dayzero.train import trainer as trainer_module
from dayzero.train.callbacks import Callback
from dayzero.train.optim import lr_schedule
from dayzero.train.trainer import Trainer, TrainerConfig

QUIET = {"progress_bar": False}


def regression_data(n=128, seed=0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = x @ torch.tensor([1.5, -2.0, 0.5, 3.0]) + 0.7
    return TensorDataset(x, y)


def mse(model, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.mse_loss(model(x).squeeze(-1), y)


def mlp(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_linear_model_fits_a_linear_target():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    config = TrainerConfig(epochs=40, batch_size=16, lr=0.05, weight_decay=0.0, **QUIET)
    history = Trainer(model, config, mse).fit(regression_data())
    assert history.losses[0] > 1.0
    assert history.evals[-1]["train_loss"] < 1e-3
    assert len(history.losses) == 40 * 8
    assert [e["step"] for e in history.evals] == [8 * (i + 1) for i in range(40)]
    assert torch.allclose(model.weight, torch.tensor([[1.5, -2.0, 0.5, 3.0]]), atol=0.02)


def test_train_data_must_be_a_map_style_dataset():
    data = regression_data()
    batches = [
        (data.tensors[0][i : i + 32], data.tensors[1][i : i + 32]) for i in range(0, 128, 32)
    ]
    with pytest.raises(TypeError, match="IndexDataset"):
        Trainer(mlp(), TrainerConfig(**QUIET), mse).fit(batches)
    with pytest.raises(ValueError, match="empty"):
        Trainer(mlp(), TrainerConfig(**QUIET), mse).fit(TensorDataset(torch.zeros(0, 4)))


def test_learning_rates_follow_warmup_and_schedule():
    config = TrainerConfig(epochs=2, batch_size=16, lr=0.01, warmup_ratio=0.25, schedule="cosine")
    history = Trainer(mlp(), TrainerConfig(**{**config.__dict__, **QUIET}), mse).fit(
        regression_data()
    )
    assert history.lrs == pytest.approx([0.01 * lr_schedule(s, 4, 16, "cosine") for s in range(16)])


class ScriptedMetric:
    """A val_fn whose metric follows ``values``, one per evaluation (a known answer), keeping
    a copy of the weights it was called on at each evaluation."""

    def __init__(self, values):
        self.values = iter(values)
        self.weights = []

    def __call__(self, model):
        self.weights.append(weights(model))
        return {"val_error": next(self.values)}


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    config = TrainerConfig(
        epochs=10, batch_size=16, lr=0.01, eval_every=1, monitor="val_error", patience=2, **QUIET
    )
    model = mlp()
    metric = ScriptedMetric([5.0, 4.0, 3.0, 2.0, 2.5, 3.0, 1.0, 0.5])
    history = Trainer(model, config, mse).fit(regression_data(), metric)
    assert history.stopped_early
    assert len(history.losses) == 6  # two evaluations without improvement after step 4
    assert history.best_step == 4 and history.best_metric == 2.0
    assert [e["val_error"] for e in history.evals] == [5.0, 4.0, 3.0, 2.0, 2.5, 3.0]
    assert_same_weights(weights(model), metric.weights[3])  # evaluation 4 = step 4
    with pytest.raises(AssertionError):  # the final weights were different: restore mattered
        assert_same_weights(metric.weights[5], metric.weights[3])


def test_mode_max_restores_the_highest():
    config = TrainerConfig(
        epochs=10, batch_size=16, eval_every=1, monitor="val_error", mode="max", patience=3, **QUIET
    )
    model = mlp()
    metric = ScriptedMetric([1.0, 3.0, 2.0, 2.0, 2.9, 9.0])
    history = Trainer(model, config, mse).fit(regression_data(), metric)
    assert history.best_step == 2 and history.stopped_early and len(history.losses) == 5
    assert_same_weights(weights(model), metric.weights[1])


def test_monitoring_train_loss_needs_no_val_fn():
    config = TrainerConfig(epochs=5, batch_size=16, monitor="train_loss", **QUIET)
    history = Trainer(mlp(), config, mse).fit(regression_data())
    assert history.best_metric == min(e["train_loss"] for e in history.evals)


def test_a_missing_monitored_metric_is_named():
    config = TrainerConfig(epochs=1, monitor="val_auc", **QUIET)
    with pytest.raises(KeyError, match="val_auc"):
        Trainer(mlp(), config, mse).fit(regression_data(), lambda model: {"val_loss": 1.0})


def test_same_seed_same_weights_other_seed_other_weights():
    def run(seed):
        model = mlp()
        config = TrainerConfig(epochs=3, batch_size=16, lr=0.01, seed=seed, **QUIET)
        Trainer(model, config, mse).fit(regression_data())
        return weights(model)

    first, second = run(seed=1), run(seed=1)
    assert_same_weights(first, second)
    with pytest.raises(AssertionError):
        assert_same_weights(first, run(seed=2))


class PostClipNorm(Callback):
    def __init__(self):
        self.norms = []

    def after_optimizer_step(self, trainer, step):
        grads = [p.grad.norm() for p in trainer.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))


@pytest.mark.parametrize("clip", [0.5, None])
def test_gradient_clipping_bounds_the_norm(clip):
    def big_loss(model, batch):
        return 1000.0 * mse(model, batch)

    seen = PostClipNorm()
    config = TrainerConfig(epochs=1, batch_size=16, grad_clip=clip, **QUIET)
    history = Trainer(mlp(), config, big_loss, [seen]).fit(regression_data())
    assert min(history.grad_norms) > 0.5  # the raw norms are large
    if clip is None:
        assert seen.norms == pytest.approx(history.grad_norms, rel=1e-4)
    else:
        assert max(seen.norms) <= 0.5 + 1e-5


def held_out_error(model):
    x, y = regression_data(32, seed=1).tensors
    return {"val": float(nn.functional.mse_loss(model(x).squeeze(-1), y))}


def test_max_steps_stops_early_and_still_evaluates_the_final_weights():
    history = Trainer(
        mlp(), TrainerConfig(epochs=5, batch_size=16, max_steps=11, **QUIET), mse
    ).fit(regression_data(), held_out_error)
    assert len(history.losses) == 11
    assert [e["step"] for e in history.evals] == [8, 11]


def test_a_nan_loss_stops_with_a_clear_error():
    def nan_loss(model, batch):
        return mse(model, batch) * float("nan")

    with pytest.raises(FloatingPointError, match="step 1"):
        Trainer(mlp(), TrainerConfig(**QUIET), nan_loss).fit(regression_data())


def test_tensorboard_is_optional(tmp_path):
    trainer_module._tensorboard_writer_class.cache_clear()
    config = TrainerConfig(epochs=1, batch_size=64, log_dir=str(tmp_path / "tb"), **QUIET)
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        with pytest.warns(UserWarning, match="tensorboard is not installed"):
            history = Trainer(mlp(), config, mse).fit(regression_data())
        assert len(history.losses) == 2
    else:
        Trainer(mlp(), config, mse).fit(regression_data())
        assert any((tmp_path / "tb").iterdir())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patience": 2}, "needs `monitor`"),
        ({"schedule": "step"}, "`schedule`"),
        ({"mode": "best"}, "`mode`"),
        ({"epochs": 0}, "`epochs`"),
        ({"grad_clip": 0.0}, "`grad_clip`"),
        ({"max_steps": 0}, "`max_steps`"),
        ({"warmup_ratio": 1.5}, "`warmup_ratio`"),
    ],
)
def test_bad_config_is_rejected_with_the_argument_named(options, message):
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**options)


def _data_parallel_worker(rank: int, world: int, store: str, out: str) -> None:
    """One process of a gloo group: trains a linear model on its shard, writes what it saw."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(rank)  # different starts: rank 0's weights must win
        model = nn.Linear(4, 1)
        config = TrainerConfig(epochs=2, batch_size=8, lr=0.05, warmup_ratio=0.0, **QUIET)
        history = Trainer(model, config, mse).fit(regression_data(n=64))
        torch.save({"losses": history.losses, "weights": weights(model)}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_data_parallel_equals_one_process_with_the_global_batch(tmp_path):
    # Two processes with 8 rows each per step, gradients averaged, take exactly the steps of
    # one process with 16 rows (their shards interleave the same permutation).
    import torch.multiprocessing as mp

    out = str(tmp_path / "run")
    mp.spawn(_data_parallel_worker, args=(2, str(tmp_path / "store"), out), nprocs=2, join=True)
    first, second = (torch.load(f"{out}.{r}") for r in (0, 1))
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    config = TrainerConfig(epochs=2, batch_size=16, lr=0.05, warmup_ratio=0.0, **QUIET)
    alone = Trainer(model, config, mse).fit(regression_data(n=64))
    assert len(first["losses"]) == len(alone.losses) == 8
    assert first["losses"] == pytest.approx(alone.losses, rel=1e-5)
    assert first["losses"] == second["losses"]  # every process records the mean loss
    for name, value in weights(model).items():
        torch.testing.assert_close(first["weights"][name], value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(second["weights"][name], value, rtol=1e-5, atol=1e-6)
