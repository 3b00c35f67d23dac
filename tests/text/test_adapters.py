"""Transfer strategies: one parametrised matrix over every strategy on the tiny random BERT."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from dayzero.text.adapters import (
    STRATEGIES,
    apply_strategy,
    config_from_dict,
    config_to_dict,
    count_parameters,
    find_layers,
    load_adapter,
    merge_for_serving,
    save_adapter,
    strategy_config,
)
from tests.tiny_bert import build_tiny_bert

TEXTS = [
    "a funny family movie with a toy robot",
    "space alien war film",
    "bank loan credit risk default",
    "sad romance drama",
    "new game for young player",
    "great food restaurant in the city",
]
OPTIONS = {
    "frozen": {},
    "top_k": {"k": 1},
    "full": {},
    "lora": {"r": 4, "alpha": 8},
    "adalora": {"init_r": 4, "target_r": 2, "total_step": 20, "tinit": 2, "tfinal": 4},
    "ia3": {},
    "prefix": {"num_virtual_tokens": 4},
}
# IA3 scales start at 1 and move slowly: it needs a larger step to show progress in 15 steps.
LEARNING_RATES = {"ia3": 0.3}
ADAPTERS = [name for name, spec in STRATEGIES.items() if spec.is_adapter]
TRAINABLE = [name for name in STRATEGIES if name != "frozen"]


def test_every_registered_strategy_is_in_the_matrix():
    assert set(OPTIONS) == set(STRATEGIES)


@pytest.fixture(scope="module")
def batch(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    return dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))


def fresh(folder) -> torch.nn.Module:
    return AutoModel.from_pretrained(folder)


def pooled(model, batch) -> torch.Tensor:
    """Mean of the last hidden state over real tokens (what TextEncoder does)."""
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def outputs(model, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return pooled(model, batch)


def regression_loss(model, batch, direction, targets) -> torch.Tensor:
    return torch.nn.functional.mse_loss(pooled(model, batch) @ direction, targets)


def train_a_few_steps(model, batch, lr=3e-2, steps=15) -> tuple[float, float]:
    """AdamW on pooled · direction -> targets; dropout off so the loss is a function of weights."""
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(model.config.hidden_size, generator=generator)
    targets = torch.randn(len(TEXTS), generator=generator)
    model.eval()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    with torch.no_grad():
        before = regression_loss(model, batch, direction, targets).item()
    for step in range(steps):
        regression_loss(model, batch, direction, targets).backward()
        optimizer.step()
        if hasattr(model, "base_model") and hasattr(model.base_model, "update_and_allocate"):
            model.base_model.update_and_allocate(step)
        optimizer.zero_grad()
    with torch.no_grad():
        after = regression_loss(model, batch, direction, targets).item()
    return before, after


_TRAINED: dict[tuple[str, str], tuple[torch.nn.Module, object]] = {}


def trained(name, tiny_bert_dir, batch):
    """A model trained with strategy ``name`` (trained once per session, handed out as copies)."""
    key = (name, str(tiny_bert_dir))
    if key not in _TRAINED:
        config = strategy_config(name, **OPTIONS[name])
        model = apply_strategy(fresh(tiny_bert_dir), config)
        if name != "frozen":
            train_a_few_steps(model, batch, LEARNING_RATES.get(name, 3e-2))
        _TRAINED[key] = (model, config)
    model, config = _TRAINED[key]
    return copy.deepcopy(model), config


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_trainable_parameter_counts(name, tiny_bert_dir):
    _, base_total = count_parameters(fresh(tiny_bert_dir))
    model = apply_strategy(fresh(tiny_bert_dir), strategy_config(name, **OPTIONS[name]))
    trainable, total = count_parameters(model)
    assert total >= base_total
    if name == "frozen":
        assert trainable == 0
    elif name == "full":
        assert trainable == total == base_total
    elif name == "top_k":
        assert 0 < trainable < base_total
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        assert all(n.startswith(("encoder.layer.1.", "pooler.")) for n in names)
        assert any(n.startswith("pooler.") for n in names)
    else:
        assert 0 < trainable < 0.1 * base_total
        assert total - trainable >= base_total  # the base weights are all frozen


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_few_steps_lower_the_loss(name, tiny_bert_dir, batch):
    torch.manual_seed(0)  # prefix / adapter initialisation draws from the global generator
    model = apply_strategy(fresh(tiny_bert_dir), strategy_config(name, **OPTIONS[name]))
    before, after = train_a_few_steps(model, batch, LEARNING_RATES.get(name, 3e-2))
    assert after < 0.8 * before


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_save_then_load_on_a_fresh_base_gives_identical_outputs(
    name, tiny_bert_dir, batch, tmp_path
):
    model, config = trained(name, tiny_bert_dir, batch)
    expected = outputs(model, batch)
    save_adapter(model, config, tmp_path / "adapter")
    files = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert "dayzero.json" in files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    if name in ADAPTERS:
        assert {"adapter_model.safetensors", "adapter_config.json"} <= files
    elif name == "frozen":
        assert files == {"dayzero.json"}
    else:
        assert files == {"dayzero.json", "weights.safetensors"}

    loaded = load_adapter(fresh(tiny_bert_dir), tmp_path / "adapter")
    assert torch.allclose(outputs(loaded, batch), expected, atol=1e-6)
    assert count_parameters(loaded)[0] == 0  # inference by default
    if name != "frozen":
        assert not torch.allclose(outputs(fresh(tiny_bert_dir), batch), expected, atol=1e-4)


def test_an_adapter_is_loaded_from_safetensors_only(tiny_bert_dir, batch, tmp_path):
    """peft falls back to a pickled adapter_model.bin: load_adapter refuses instead."""
    model, config = trained("lora", tiny_bert_dir, batch)
    save_adapter(model, config, tmp_path / "adapter")
    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    weights.rename(tmp_path / "adapter" / "adapter_model.bin")
    with pytest.raises(ValueError, match=r"adapter_model\.safetensors is missing"):
        load_adapter(fresh(tiny_bert_dir), tmp_path / "adapter")


@pytest.mark.parametrize("name", ["top_k", "lora", "prefix"])
def test_load_adapter_trainable_continues_training(name, tiny_bert_dir, batch, tmp_path):
    model, config = trained(name, tiny_bert_dir, batch)
    save_adapter(model, config, tmp_path)
    loaded = load_adapter(fresh(tiny_bert_dir), tmp_path, trainable=True)
    assert count_parameters(loaded)[0] == count_parameters(model)[0] > 0


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_training_leaves_the_base_weights_untouched(name, tiny_bert_dir, batch):
    model, _ = trained(name, tiny_bert_dir, batch)
    reference = fresh(tiny_bert_dir).state_dict()
    base = {}
    for key, value in model.state_dict().items():
        key = key.replace("base_model.model.", "").replace("base_model.", "")
        base[key.replace(".base_layer", "")] = value
    for key, value in reference.items():
        assert torch.equal(base[key], value), key


@pytest.mark.parametrize("name", ["lora", "adalora", "ia3"])
def test_merge_gives_the_same_outputs_as_unmerged(name, tiny_bert_dir, batch):
    model, _ = trained(name, tiny_bert_dir, batch)
    expected = outputs(model, batch)
    merged, was_merged = merge_for_serving(model)
    assert was_merged
    assert type(merged).__name__ == "BertModel"
    assert not any(("lora_" in n or "ia3_" in n) for n, _ in merged.named_parameters())
    assert torch.allclose(outputs(merged, batch), expected, atol=1e-5)


def test_prefix_cannot_merge_and_is_served_unmerged(tiny_bert_dir, batch):
    model, _ = trained("prefix", tiny_bert_dir, batch)
    expected = outputs(model, batch)
    with pytest.warns(UserWarning, match="cannot merge"):
        served, was_merged = merge_for_serving(model)
    assert served is model and not was_merged
    assert torch.equal(outputs(served, batch), expected)


@pytest.mark.parametrize("name", ["frozen", "top_k", "full"])
def test_merge_of_a_plain_model_is_a_no_op(name, tiny_bert_dir, batch):
    model, _ = trained(name, tiny_bert_dir, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        served, was_merged = merge_for_serving(model)
    assert served is model and was_merged


def test_prefix_keeps_the_input_length_so_mean_pooling_masks_work(tiny_bert_dir, batch):
    model = apply_strategy(fresh(tiny_bert_dir), strategy_config("prefix", num_virtual_tokens=5))
    model.eval()
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[:2] == batch["input_ids"].shape
    # Padding does not leak into the pooled vector: one text alone == the same text in the batch.
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    alone = dict(tokenizer(TEXTS[1:2], return_tensors="pt"))
    assert torch.allclose(outputs(model, alone)[0], outputs(model, batch)[1], atol=1e-5)


def test_top_k_trains_exactly_the_last_k_layers(tiny_bert_dir):
    model = apply_strategy(
        fresh(tiny_bert_dir), strategy_config("top_k", k=2, train_top_modules=False)
    )
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("encoder.layer.0.", "encoder.layer.1.")) for n in names)
    assert len(find_layers(model)) == 2


def test_top_k_rejects_k_larger_than_the_model(tiny_bert_dir):
    with pytest.raises(ValueError, match="only 2 layers"):
        apply_strategy(fresh(tiny_bert_dir), strategy_config("top_k", k=3))


def test_top_k_on_an_unknown_architecture_lists_what_it_found():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])

    with pytest.raises(ValueError, match=r"found module lists \['blocks \(2\)'\]"):
        apply_strategy(Odd(), strategy_config("top_k", k=1))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("nope", {}, "unknown transfer strategy"),
        ("lora", {"rank": 4}, "no option"),
        ("lora", {"r": 0}, "`r` must be a positive int"),
        ("lora", {"dropout": 1.5}, "`dropout`"),
        ("lora", {"target_modules": "query"}, "`target_modules`"),
        ("adalora", {}, "total_step"),
        ("adalora", {"total_step": 10, "init_r": 2, "target_r": 4}, "`target_r`"),
        ("adalora", {"total_step": 10, "tinit": 5, "tfinal": 5}, "no budgeting phase"),
        ("top_k", {"k": 0}, "`k` must be a positive int"),
        ("prefix", {"num_virtual_tokens": -1}, "num_virtual_tokens"),
        ("ia3", {"target_modules": ["key"]}, "feedforward_modules"),
    ],
)
def test_bad_options_are_rejected_with_the_argument_named(name, options, message):
    with pytest.raises(ValueError, match=message):
        strategy_config(name, **options)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_config_round_trips_through_json(name):
    config = strategy_config(name, **OPTIONS[name])
    assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


def test_applying_twice_is_refused(tiny_bert_dir):
    model = apply_strategy(fresh(tiny_bert_dir), strategy_config("lora"))
    with pytest.raises(ValueError, match="already a peft model"):
        apply_strategy(model, strategy_config("lora"))


def test_lora_targets_default_to_query_and_value_for_bert(tiny_bert_dir):
    model = apply_strategy(fresh(tiny_bert_dir), strategy_config("lora"))
    assert set(model.peft_config["default"].target_modules) == {"query", "value"}


def test_loading_onto_a_different_base_model_fails_clearly(tiny_bert_dir, batch, tmp_path):
    model, config = trained("full", tiny_bert_dir, batch)
    save_adapter(model, config, tmp_path / "adapter")
    other = build_tiny_bert(tmp_path / "three-layers", num_layers=3)
    with pytest.raises(ValueError, match="does not fit this base model"):
        load_adapter(fresh(other), tmp_path / "adapter")


@pytest.mark.parametrize("name", ["frozen", "lora", "full"])
def test_an_encoder_adapted_inside_a_model_saves_and_loads_beside_it(name, tiny_bert_dir, tmp_path):
    from dayzero.text.adapters import load_adapted_encoder, save_adapted_encoder
    from dayzero.text.encoder import TextEncoder

    encoder = TextEncoder(str(tiny_bert_dir), max_length=16)
    config = strategy_config(name, **OPTIONS.get(name, {}))
    encoder.model = apply_strategy(encoder.model, config)
    with torch.no_grad():  # move the weights so a reload of the base alone would differ
        for param in encoder.model.parameters():
            if param.requires_grad:
                param.add_(0.05)
    encoder.eval()
    encoder.invalidate_fingerprint()
    save_adapted_encoder(encoder, name, config, tmp_path)
    loaded = load_adapted_encoder(tmp_path, str(tiny_bert_dir), 16, None)
    if name == "frozen":
        assert loaded is None and not any(tmp_path.iterdir())
        return
    restored, restored_config = loaded
    texts = ["a cheap spicy taco place", "quiet wine bar"]
    assert torch.allclose(
        torch.from_numpy(restored.encode(texts)), torch.from_numpy(encoder.encode(texts)), atol=1e-5
    )
    assert restored_config == config
    assert [p.name for p in tmp_path.iterdir()] == ["encoder"]
