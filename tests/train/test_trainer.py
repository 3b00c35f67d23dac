"""The shared Trainer: learning, early stopping + restore, determinism, resume, clipping."""

from __future__ import annotations

import json

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


def test_sgd_and_a_list_of_batches_also_train():
    data = regression_data()
    batches = [
        (data.tensors[0][i : i + 32], data.tensors[1][i : i + 32]) for i in range(0, 128, 32)
    ]
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    config = TrainerConfig(epochs=30, lr=0.05, optimizer="sgd", momentum=0.9, **QUIET)
    history = Trainer(model, config, mse).fit(batches)
    assert history.evals[-1]["train_loss"] < 0.01 * history.evals[0]["train_loss"]


def test_learning_rates_follow_warmup_and_schedule():
    config = TrainerConfig(epochs=2, batch_size=16, lr=0.01, warmup_ratio=0.25, schedule="cosine")
    history = Trainer(mlp(), TrainerConfig(**{**config.__dict__, **QUIET}), mse).fit(
        regression_data()
    )
    assert history.lrs == pytest.approx([0.01 * lr_schedule(s, 4, 16, "cosine") for s in range(16)])


class Snapshots(Callback):
    """Copies of the weights at each evaluation, by step."""

    def __init__(self):
        self.by_step = {}

    def on_evaluate(self, trainer, metrics):
        self.by_step[trainer.step] = weights(trainer.model)


def scripted_metric(values):
    """A val_fn whose metric follows ``values``, one per evaluation (a known answer)."""
    calls = iter(values)
    return lambda model: {"val_error": next(calls)}


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    snapshots = Snapshots()
    config = TrainerConfig(
        epochs=10, batch_size=16, lr=0.01, eval_every=1, monitor="val_error", patience=2, **QUIET
    )
    model = mlp()
    history = Trainer(model, config, mse, [snapshots]).fit(
        regression_data(), scripted_metric([5.0, 4.0, 3.0, 2.0, 2.5, 3.0, 1.0, 0.5])
    )
    assert history.stopped_early
    assert len(history.losses) == 6  # two evaluations without improvement after step 4
    assert history.best_step == 4 and history.best_metric == 2.0
    assert [e["val_error"] for e in history.evals] == [5.0, 4.0, 3.0, 2.0, 2.5, 3.0]
    assert_same_weights(weights(model), snapshots.by_step[4])
    with pytest.raises(AssertionError):  # the final weights were different: restore mattered
        assert_same_weights(snapshots.by_step[6], snapshots.by_step[4])


def test_mode_max_and_no_restore():
    snapshots = Snapshots()
    config = TrainerConfig(
        epochs=10,
        batch_size=16,
        eval_every=1,
        monitor="val_error",
        mode="max",
        patience=3,
        restore_best=False,
        **QUIET,
    )
    model = mlp()
    history = Trainer(model, config, mse, [snapshots]).fit(
        regression_data(), scripted_metric([1.0, 3.0, 2.0, 2.0, 2.9, 9.0])
    )
    assert history.best_step == 2 and history.stopped_early and len(history.losses) == 5
    assert_same_weights(weights(model), snapshots.by_step[5])


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
        config = TrainerConfig(epochs=3, batch_size=16, lr=0.01, seed=seed, deterministic=True)
        Trainer(model, TrainerConfig(**{**config.__dict__, **QUIET}), mse).fit(regression_data())
        return weights(model)

    first, second = run(seed=1), run(seed=1)
    assert_same_weights(first, second)
    with pytest.raises(AssertionError):
        assert_same_weights(first, run(seed=2))


class Crash(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, trainer, step, loss):
        if step == self.at_step:
            raise KeyboardInterrupt


def resumable_config(folder, **overrides) -> TrainerConfig:
    options = {
        "epochs": 3,
        "batch_size": 16,
        "lr": 0.01,
        "warmup_steps": 3,
        "schedule": "cosine",
        "eval_every": 5,
        "monitor": "val",
        "checkpoint_dir": str(folder),
        "seed": 7,
        **QUIET,
    }
    return TrainerConfig(**{**options, **overrides})


def held_out_error(model):
    x, y = regression_data(32, seed=1).tensors
    return {"val": float(nn.functional.mse_loss(model(x).squeeze(-1), y))}


def test_resuming_from_a_checkpoint_ends_with_the_same_weights(tmp_path):
    data = regression_data()  # 8 batches per epoch, 24 steps
    model = mlp()
    full = Trainer(model, resumable_config(tmp_path / "a"), mse).fit(data, held_out_error)

    interrupted = mlp()
    with pytest.raises(KeyboardInterrupt):  # mid-epoch, 2 steps after the checkpoint of step 10
        Trainer(interrupted, resumable_config(tmp_path / "b"), mse, [Crash(12)]).fit(
            data, held_out_error
        )
    state = json.loads((tmp_path / "b" / "last" / "trainer_state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (10, 1, 2)
    files = {p.name for p in (tmp_path / "b" / "last").iterdir()}
    assert files == {
        "trainable.safetensors",
        "best.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "trainer_state.json",
    }

    resumed_model = mlp(seed=99)  # other initial weights: everything must come from the checkpoint
    resumed = Trainer(resumed_model, resumable_config(tmp_path / "b", resume=True), mse).fit(
        data, held_out_error
    )
    assert resumed.losses == full.losses
    assert resumed.evals == full.evals
    assert resumed.best_step == full.best_step
    assert_same_weights(weights(resumed_model), weights(model))


def test_resume_refuses_a_checkpoint_for_other_parameters(tmp_path):
    Trainer(mlp(), resumable_config(tmp_path, epochs=1), mse).fit(regression_data(), held_out_error)
    other = nn.Linear(4, 1)
    with pytest.raises(ValueError, match="other trainable parameters"):
        Trainer(other, resumable_config(tmp_path, resume=True), mse).fit(
            regression_data(), held_out_error
        )


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


def test_an_unsized_iterable_needs_max_steps():
    data = regression_data()

    def batches():
        for i in range(0, 128, 16):
            yield data.tensors[0][i : i + 16], data.tensors[1][i : i + 16]

    with pytest.raises(ValueError, match="max_steps"):
        Trainer(mlp(), TrainerConfig(**QUIET), mse).fit(batches())
    history = Trainer(mlp(), TrainerConfig(max_steps=5, **QUIET), mse).fit(batches())
    assert len(history.losses) == 5
    with pytest.raises(ValueError, match="one-shot iterator"):
        Trainer(mlp(), TrainerConfig(epochs=2, max_steps=5, **QUIET), mse).fit(batches())


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
        ({"optimizer": "adam"}, "`optimizer`"),
        ({"schedule": "step"}, "`schedule`"),
        ({"mode": "best"}, "`mode`"),
        ({"epochs": 0}, "`epochs`"),
        ({"grad_clip": 0.0}, "`grad_clip`"),
        ({"resume": True}, "needs `checkpoint_dir`"),
        ({"warmup_ratio": 1.5}, "`warmup_ratio`"),
    ],
)
def test_bad_config_is_rejected_with_the_argument_named(options, message):
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**options)
