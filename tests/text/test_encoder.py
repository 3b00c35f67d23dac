"""Tests of TextEncoder, its pooling and its fingerprint (tiny random models; MiniLM is slow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dayzero.core.artifact import CONFIG_FILE, Artifact, save_artifact
from dayzero.text.encoder import TextEncoder
from dayzero.text.pooling import pool

TEXTS = ["a funny comedy", "war", "a scary horror movie about a robot in space", "love", ""]


class RowCounter:
    """Wraps ``encoder.model.forward`` and records the batch sizes it sees."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.batches: list[int] = []
        self._forward = encoder.model.forward
        encoder.model.forward = self

    def __call__(self, *args, **kwargs):
        self.batches.append(int(kwargs["input_ids"].shape[0]))
        return self._forward(*args, **kwargs)

    @property
    def rows(self) -> int:
        return sum(self.batches)


@pytest.fixture
def encoder(tiny_bert_dir) -> TextEncoder:
    return TextEncoder(tiny_bert_dir)


def _train_step(encoder: TextEncoder, seed: int = 0) -> None:
    torch.manual_seed(seed)
    encoder.train()
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)
    loss = encoder(TEXTS[:3]).pow(2).sum()
    loss.backward()
    optimizer.step()
    encoder.eval()


# ---- pooling --------------------------------------------------------------------------------
def test_pool_known_answers_for_right_and_left_padding():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool(hidden, right, "mean").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert pool(hidden, left, "mean").tolist() == [[3.0, 4.0], [8.0, 9.0]]
    assert pool(hidden, right, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]
    assert pool(hidden, right, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool(hidden, left, "last").tolist() == [[4.0, 5.0], [10.0, 11.0]]


def test_pool_counts_prepended_virtual_tokens_and_rejects_bad_input():
    hidden = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1)
    assert pool(hidden, torch.tensor([[1, 0]]), "mean").tolist() == [[1.0]]  # (0+1+2)/3
    with pytest.raises(ValueError, match="positions"):
        pool(hidden, torch.ones(1, 5), "mean")
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, torch.ones(1, 4), "max")


# ---- encode ---------------------------------------------------------------------------------
def test_encode_shapes_and_types(encoder):
    out = encoder.encode(TEXTS)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (5, 32)
    assert encoder.encode("war").shape == (32,)
    np.testing.assert_allclose(encoder.encode("war"), out[1], atol=1e-6)
    assert encoder.encode([]).shape == (0, 32)
    tensor = encoder.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), out)


def test_encode_matches_one_text_at_a_time_in_input_order(encoder):
    with torch.no_grad():
        one_by_one = torch.cat([encoder([t]) for t in TEXTS]).numpy()
    np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=2), one_by_one, atol=1e-5)


def test_encode_deduplicates_and_batches_by_length(encoder):
    counter = RowCounter(encoder)
    texts = [*TEXTS, "war", "a funny comedy", "war"]
    out = encoder.encode(texts, batch_size=2)
    assert counter.rows == len(set(texts))
    np.testing.assert_array_equal(out[5], out[1])
    np.testing.assert_array_equal(out[6], out[0])

    seen: list[list[str]] = []
    tokenize = encoder.tokenize
    encoder.tokenize = lambda batch: seen.append(list(batch)) or tokenize(batch)
    encoder.encode(TEXTS, batch_size=2)
    flat = [t for batch in seen for t in batch]
    assert flat == sorted(TEXTS, key=len, reverse=True)


def test_encode_normalize_and_forward_does_not(encoder):
    assert np.allclose(np.linalg.norm(encoder.encode(TEXTS[:4], normalize=True), axis=1), 1)
    with torch.no_grad():
        raw = encoder(TEXTS[:4])
        unit = encoder(TEXTS[:4], normalize=True)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(4))


def test_encode_rejects_bad_input(encoder):
    with pytest.raises(TypeError, match=r"texts\[2\] is int"):
        encoder.encode(["a", "b", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        encoder([None])
    with pytest.raises(TypeError, match="single bytes"):
        encoder.encode(b"war")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["a"], batch_size=0)


def test_forward_is_differentiable_and_encode_is_deterministic_in_train_mode(encoder):
    encoder.train()
    torch.manual_seed(0)
    first, second = encoder(TEXTS[:2]), encoder(TEXTS[:2])
    assert not torch.allclose(first, second)  # dropout is on in train mode
    first.sum().backward()
    assert encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    np.testing.assert_array_equal(encoder.encode(TEXTS), encoder.encode(TEXTS))
    assert encoder.training and encoder.model.training  # encode restores the mode


def test_constructor_rejects_bad_arguments(tiny_bert_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(tiny_bert_dir, pooling="max")
    with pytest.raises(ValueError, match="max_length"):
        TextEncoder(tiny_bert_dir, max_length=0)
    with pytest.raises(ValueError, match="torch_dtype"):
        TextEncoder(tiny_bert_dir, torch_dtype="float8")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="local Hugging Face model folder"):
        TextEncoder(tmp_path / "no-such-model")


def test_max_length_is_clamped_to_the_model_and_truncates(tiny_bert_dir):
    encoder = TextEncoder(tiny_bert_dir, max_length=1000)
    assert encoder.max_length == 64
    batch = encoder.tokenize(["a " * 500])
    assert batch["input_ids"].shape == (1, 64)
    short = TextEncoder(tiny_bert_dir, max_length=8)
    np.testing.assert_allclose(
        short.encode(["a b c d e f g h i j k l"]), short.encode(["a b c d e f"]), atol=1e-6
    )


def test_bfloat16_weights_still_encode_to_float32(tiny_bert_dir):
    encoder = TextEncoder(tiny_bert_dir, torch_dtype="bfloat16")
    assert encoder.model.dtype == torch.bfloat16
    assert encoder.encode(TEXTS).dtype == np.float32
    assert encoder.config().torch_dtype == "bfloat16"


# ---- decoders -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A 2-layer random GPT-2 with a word-level tokenizer that has no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    words = ["<unk>", "<eos>", *sorted({w for t in TEXTS for w in t.split()})]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(words), n_embd=16, n_layer=2, n_head=2, n_positions=32)
    GPT2Model(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_decoder_pads_with_eos_and_pooling_ignores_padding(tiny_gpt2_dir, pooling):
    encoder = TextEncoder(tiny_gpt2_dir, pooling=pooling)
    assert encoder.tokenizer.pad_token == "<eos>" and encoder.dim == 16
    texts = TEXTS[:4]
    with torch.no_grad():
        one_by_one = torch.cat([encoder([t]) for t in texts]).numpy()
    np.testing.assert_allclose(encoder.encode(texts, batch_size=4), one_by_one, atol=1e-5)


# ---- fingerprint and cache ------------------------------------------------------------------
def test_fingerprint_is_stable_across_reloads_and_tracks_settings(tiny_bert_dir):
    first = TextEncoder(tiny_bert_dir)
    assert first.fingerprint() == TextEncoder(tiny_bert_dir).fingerprint()
    assert len(first.fingerprint()) == 40
    assert first.fingerprint() != TextEncoder(tiny_bert_dir, pooling="cls").fingerprint()
    assert first.fingerprint() != TextEncoder(tiny_bert_dir, max_length=32).fingerprint()


def test_fingerprint_changes_with_any_weight_change(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir)
    seen = {encoder.fingerprint()}

    _train_step(encoder)  # optimizer step in place
    seen.add(encoder.fingerprint())

    other = TextEncoder(shutil.copytree(tiny_bert_dir, tmp_path / "copy"))
    with torch.no_grad():
        other.model.pooler.dense.bias.add_(1.0)
    encoder.model.load_state_dict(other.model.state_dict())
    seen.add(encoder.fingerprint())

    # A write through .data bypasses version counters: invalidate_fingerprint() is the contract.
    encoder.model.embeddings.LayerNorm.weight.data[0] += 1.0
    encoder.invalidate_fingerprint()
    seen.add(encoder.fingerprint())

    # Entering train mode alone drops the cached value too.
    encoder.model.embeddings.LayerNorm.weight.data[1] += 1.0
    encoder.train()
    encoder.eval()
    seen.add(encoder.fingerprint())
    assert len(seen) == 5


def test_fingerprint_covers_a_peft_adapter(tiny_bert_dir):
    from peft import LoraConfig, get_peft_model

    encoder = TextEncoder(tiny_bert_dir)
    base = encoder.fingerprint()
    config = LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False)
    encoder.model = get_peft_model(encoder.model, config)
    adapted = encoder.fingerprint()
    with torch.no_grad():
        next(p for n, p in encoder.named_parameters() if "lora_B" in n).add_(1.0)
    assert len({base, adapted, encoder.fingerprint()}) == 3


def test_cache_means_a_frozen_encoder_never_encodes_a_text_twice(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir, cache_dir=tmp_path / "cache")
    counter = RowCounter(encoder)
    first = encoder.encode(TEXTS[:3])
    assert counter.rows == 3
    second = encoder.encode([TEXTS[2], TEXTS[3], TEXTS[0], TEXTS[3]])
    assert counter.rows == 3 + 1
    np.testing.assert_array_equal(second[[0, 2]], first[[2, 0]])

    reloaded = TextEncoder(tiny_bert_dir, cache_dir=tmp_path / "cache")
    counter = RowCounter(reloaded)
    np.testing.assert_array_equal(reloaded.encode(TEXTS[:4]), encoder.encode(TEXTS[:4]))
    assert counter.rows == 0


def test_cache_never_returns_vectors_from_before_fine_tuning(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir, cache_dir=tmp_path / "cache")
    before = encoder.encode(TEXTS)
    _train_step(encoder)
    after = encoder.encode(TEXTS)
    assert not np.allclose(after, before)
    uncached = TextEncoder(tiny_bert_dir)
    uncached.model.load_state_dict(encoder.model.state_dict())
    np.testing.assert_allclose(after, uncached.encode(TEXTS), atol=1e-6)


def test_forward_never_uses_the_cache(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir, cache_dir=tmp_path / "cache")
    encoder.encode(TEXTS)
    counter = RowCounter(encoder)
    encoder(TEXTS)
    assert counter.rows == len(TEXTS)


# ---- save / load ----------------------------------------------------------------------------
def test_save_of_a_stock_model_is_a_reference(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir, pooling="cls", max_length=16)
    encoder.save(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == [CONFIG_FILE]
    loaded = TextEncoder.load(tmp_path / "saved")
    assert (loaded.pooling, loaded.max_length) == ("cls", 16)
    assert loaded.fingerprint() == encoder.fingerprint()
    np.testing.assert_array_equal(loaded.encode(TEXTS), encoder.encode(TEXTS))


def test_save_after_fine_tuning_writes_weights_and_tokenizer(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir)
    _train_step(encoder)
    assert encoder.weights_changed()
    encoder.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "model.safetensors").is_file()
    loaded = TextEncoder.load(tmp_path / "saved")
    assert loaded.base_model == str(tiny_bert_dir)
    assert loaded.fingerprint() == encoder.fingerprint()
    np.testing.assert_allclose(loaded.encode(TEXTS), encoder.encode(TEXTS), atol=1e-6)
    # Saving the loaded (unchanged) encoder elsewhere must not fall back to the stock weights.
    loaded.save(tmp_path / "again")
    shutil.rmtree(tmp_path / "saved")
    again = TextEncoder.load(tmp_path / "again")
    assert again.fingerprint() == encoder.fingerprint()
    assert again.base_model == str(tiny_bert_dir)


def test_save_under_peft_keeps_the_base_reference_and_refuses_a_changed_base(
    tiny_bert_dir, tmp_path
):
    from peft import LoraConfig, get_peft_model

    encoder = TextEncoder(tiny_bert_dir)
    encoder.model = get_peft_model(encoder.model, LoraConfig(r=2, target_modules=["query"]))
    encoder.save(tmp_path / "saved")
    assert not (tmp_path / "saved" / "model.safetensors").exists()
    with torch.no_grad():
        encoder.model.get_base_model().pooler.dense.bias.add_(1.0)
    with pytest.raises(ValueError, match="merge"):
        encoder.save(tmp_path / "saved-2")


def _evil_folder(tiny_bert_dir, tmp_path, marker) -> Path:
    """A saved-encoder folder whose config.json auto_map names a module that writes ``marker``
    on import, and whose dayzero.json asks for trust_remote_code."""
    import json

    folder = tmp_path / "evil"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig as EvilConfig, BertModel as EvilModel\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    saved = {
        "model_name_or_path": str(folder),
        "weights_saved": True,
        "model_kwargs": {"trust_remote_code": True, "use_safetensors": False},
    }
    save_artifact(folder, Artifact("text-encoder", "TextEncoder", saved))
    return folder


def test_a_saved_folder_never_turns_on_trust_remote_code(tiny_bert_dir, tmp_path):
    marker = tmp_path / "ran"
    folder = _evil_folder(tiny_bert_dir, tmp_path, marker)
    encoder = TextEncoder.load(folder)
    assert not marker.exists(), "code named by the model folder ran"
    assert encoder.encode(TEXTS).shape == (len(TEXTS), encoder.dim)
    # Pointing TextEncoder at the folder directly does not run it either (explicitly off).
    TextEncoder(folder)
    assert not marker.exists()


def test_saved_weights_are_read_from_safetensors_only(tiny_bert_dir, tmp_path):
    import pickle

    marker = tmp_path / "unpickled"
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "model.safetensors").unlink()
    # A pickle that writes a file when loaded: what a hostile pytorch_model.bin would do.
    payload = pickle.dumps(type("P", (), {"__reduce__": lambda self: (
        Path.write_text, (marker, "x"))})())  # fmt: skip
    (folder / "pytorch_model.bin").write_bytes(payload)
    saved = {"model_name_or_path": str(folder), "weights_saved": True}
    save_artifact(folder, Artifact("text-encoder", "TextEncoder", saved))
    with pytest.raises(ValueError, match=r"pytorch_model\.bin \(pickle files are never loaded"):
        TextEncoder.load(folder)
    assert not marker.exists()


def test_load_reports_a_folder_without_config(tmp_path):
    from dayzero.core.artifact import ArtifactError

    with pytest.raises(ArtifactError, match=r"dayzero\.json is missing"):
        TextEncoder.load(tmp_path)
    (tmp_path / "text_encoder.json").write_text("{}")  # what dayzero 0.1 wrote
    with pytest.raises(ArtifactError, match=r"saved by dayzero 0\.1.*fit it again"):
        TextEncoder.load(tmp_path)


# ---- the real default model -----------------------------------------------------------------
@pytest.mark.slow
def test_default_model_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from dayzero.text.encoder import DEFAULT_MODEL, resolve_model_path

    encoder = TextEncoder()
    assert encoder.dim == 384 and encoder.model_name_or_path == DEFAULT_MODEL
    reference = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")
    reference.max_seq_length = encoder.max_length
    texts = [
        "Toy Story: a cowboy doll is profoundly threatened when a new spaceman figure arrives.",
        "A cosy ramen bar with vegetarian options, open late, cash only.",
        "Applicant: 35 years old, skilled employee, owns a house, loan for a new car.",
        "",
        "word " * 300,
    ]
    ours = encoder.encode(texts, normalize=True, batch_size=2)
    theirs = reference.encode(texts, normalize_embeddings=True, batch_size=2)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999
