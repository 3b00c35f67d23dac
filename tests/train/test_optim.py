"""Parameter groups, optimizers and learning-rate schedules (known values)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from transformers import AutoModel

from dayzero.train.optim import lr_schedule, make_optimizer, make_scheduler, param_groups


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.linear = nn.Linear(4, 4)
        self.LayerNorm = nn.LayerNorm(4)
        self.scale = nn.Parameter(torch.ones(4))
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def names_of(group, model):
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_linear_warmup_then_linear_decay_to_zero():
    values = [lr_schedule(s, warmup_steps=10, total_steps=110) for s in range(0, 111, 1)]
    assert values[0] == pytest.approx(0.1)
    assert values[4] == pytest.approx(0.5)
    assert values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert values[60] == pytest.approx(0.5)
    assert values[85] == pytest.approx(0.25)
    assert values[110] == pytest.approx(0.0)
    assert lr_schedule(500, 10, 110) == pytest.approx(0.0)  # clamped past the end
    assert all(a >= b for a, b in itertools.pairwise(values[9:]))


def test_cosine_midpoint_and_quarter_and_end():
    assert lr_schedule(60, 10, 110, kind="cosine") == pytest.approx(0.5)
    assert lr_schedule(35, 10, 110, kind="cosine") == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )
    assert lr_schedule(110, 10, 110, kind="cosine") == pytest.approx(0.0)
    assert lr_schedule(500, 10, 110, kind="cosine") == pytest.approx(0.0)  # clamped


def test_no_warmup_and_unknown_schedules():
    assert lr_schedule(0, 0, 100) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_schedule(0, 0, 10, kind="constant")
    with pytest.raises(ValueError, match="unknown schedule"):
        make_scheduler(torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1), 0, 10, "step")


def test_scheduler_drives_the_optimizer_with_the_schedule():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    scheduler = make_scheduler(optimizer, warmup_steps=3, total_steps=13, kind="cosine")
    seen = []
    for _ in range(13):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.2 * lr_schedule(s, 3, 13, "cosine") for s in range(13)]
    assert seen == pytest.approx(expected)


def test_param_groups_put_biases_norms_and_vectors_in_no_decay():
    model = Small()
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert names_of(decay, model) == {"embed.weight", "linear.weight"}
    assert names_of(no_decay, model) == {
        "linear.bias",
        "LayerNorm.weight",
        "LayerNorm.bias",
        "scale",
    }


def test_param_groups_on_bert_keep_every_layernorm_and_bias_out_of_decay(tiny_bert_dir):
    model = AutoModel.from_pretrained(tiny_bert_dir)
    decay, no_decay = param_groups(model, weight_decay=0.01)
    decayed, not_decayed = names_of(decay, model), names_of(no_decay, model)
    assert not any("LayerNorm" in n or n.endswith("bias") for n in decayed)
    assert all(p.ndim >= 2 for p in decay["params"])
    assert any("LayerNorm" in n for n in not_decayed)
    assert "embeddings.word_embeddings.weight" in decayed
    assert len(decayed) + len(not_decayed) == len(list(model.parameters()))


def test_frozen_parameters_are_left_out_and_all_frozen_is_an_error():
    model = Small()
    groups = param_groups(model, 0.1)
    assert not any("frozen" in n for g in groups for n in names_of(g, model))
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        param_groups(model, 0.1)


def test_make_optimizer_is_adamw_over_the_groups():
    model = Small()
    adamw = make_optimizer(model, lr=1e-3, weight_decay=0.05)
    assert isinstance(adamw, torch.optim.AdamW)
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.05, 0.0]
    assert adamw.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="`lr`"):
        make_optimizer(model, lr=0)
