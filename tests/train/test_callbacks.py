"""Callback hooks (order) and AdaLoRA's per-step budget update on the tiny BERT."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from transformers import AutoModel, AutoTokenizer

from dayzero.text.adapters import apply_strategy, strategy_config
from dayzero.train.callbacks import AdaLoraBudgetCallback, Callback, find_adalora
from dayzero.train.index_dataset import IndexDataset
from dayzero.train.trainer import Trainer, TrainerConfig


def tiny_regression() -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=generator)
    return TensorDataset(x, x.sum(1))


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x).squeeze(-1), y)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer):
        self.events.append(("begin", trainer.total_steps))

    def after_optimizer_step(self, trainer, step):
        has_grads = all(p.grad is not None for p in trainer.model.parameters())
        self.events.append(("after_optimizer_step", step, has_grads))


def test_hooks_run_in_the_documented_order():
    torch.manual_seed(0)
    recorder = Recorder()
    config = TrainerConfig(epochs=1, batch_size=4, progress_bar=False)
    Trainer(nn.Linear(3, 1), config, mse, [recorder]).fit(tiny_regression(), lambda m: {"v": 1.0})
    assert recorder.events == [
        ("begin", 2),
        ("after_optimizer_step", 1, True),
        ("after_optimizer_step", 2, True),
    ]


TEXTS = ["a funny movie", "space war film", "bank loan risk", "sad love drama"] * 2


def encoder_loss_on(folder):
    """A loss on one fixed batch of the tiny BERT's texts, whatever the positions asked for."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    targets = torch.linspace(-1.0, 1.0, len(TEXTS))

    def loss(model, positions):
        return nn.functional.mse_loss(model(**inputs).last_hidden_state[:, 0].sum(-1), targets)

    return loss


def test_adalora_callback_updates_the_budget_every_step(tiny_bert_dir, monkeypatch):
    steps = 8
    config = strategy_config(
        "adalora", init_r=4, target_r=2, tinit=1, tfinal=2, total_step=steps, dropout=0.0
    )
    model = apply_strategy(AutoModel.from_pretrained(tiny_bert_dir), config)
    adalora = find_adalora(model)
    calls = []
    real_update = adalora.update_and_allocate

    def spy(global_step):
        grads = [p.grad for n, p in model.named_parameters() if "lora_E" in n]
        calls.append((global_step, all(g is not None for g in grads)))
        return real_update(global_step)

    monkeypatch.setattr(adalora, "update_and_allocate", spy)
    trainer_config = TrainerConfig(epochs=steps, lr=0.05, progress_bar=False)
    Trainer(model, trainer_config, encoder_loss_on(tiny_bert_dir), [AdaLoraBudgetCallback()]).fit(
        IndexDataset(1)
    )
    assert calls == [(step, True) for step in range(steps)]  # peft counts from 0, grads present

    # The budget really was allocated: at most target_r ranks per matrix on average, the rest
    # of the singular values masked to exactly zero.
    pattern = model.peft_config["default"].rank_pattern
    assert pattern and len(pattern) == 4  # query + value in 2 layers
    assert sum(sum(kept) for kept in pattern.values()) <= 2 * len(pattern)
    values = {n: p for n, p in model.named_parameters() if "lora_E" in n}
    for name, kept in pattern.items():
        e = next(p for n, p in values.items() if n.endswith(name))
        dropped = ~torch.tensor(kept)
        assert torch.all(e.view(-1)[dropped] == 0)


def test_adalora_callback_warns_when_total_step_differs_from_training(tiny_bert_dir):
    config = strategy_config("adalora", init_r=2, target_r=1, total_step=50)
    model = apply_strategy(AutoModel.from_pretrained(tiny_bert_dir), config)
    trainer_config = TrainerConfig(epochs=2, lr=0.01, progress_bar=False)
    with pytest.warns(UserWarning, match="total_step=50 but the trainer runs 2 steps"):
        Trainer(
            model, trainer_config, encoder_loss_on(tiny_bert_dir), [AdaLoraBudgetCallback()]
        ).fit(IndexDataset(1))


def test_adalora_callback_without_adalora_fails_clearly(tiny_bert_dir):
    model = apply_strategy(AutoModel.from_pretrained(tiny_bert_dir), strategy_config("lora"))
    with pytest.raises(ValueError, match="no AdaLoRA adapter"):
        Trainer(
            model,
            TrainerConfig(progress_bar=False),
            encoder_loss_on(tiny_bert_dir),
            [AdaLoraBudgetCallback()],
        ).fit(IndexDataset(1))
