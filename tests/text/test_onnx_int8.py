"""Tests of the optional int8 ONNX path (skipped where onnxruntime is not installed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from dayzero.text.encoder import TextEncoder
from dayzero.text.onnx_int8 import OnnxInt8Encoder

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
TEXTS = ["a funny comedy", "war", "a scary horror movie about a robot in space", "love"]


@pytest.mark.skipif(HAS_ONNX, reason="onnx is installed: the missing-dependency path cannot run")
def test_without_onnx_the_error_names_the_install_command(tmp_path):
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        OnnxInt8Encoder(tmp_path)


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime and onnxscript")
def test_int8_export_matches_torch_and_reloads(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir)
    exported = OnnxInt8Encoder.export(encoder, tmp_path / "onnx", check_texts=TEXTS)
    assert exported.config["min_cosine_to_torch"] >= 0.99
    reopened = OnnxInt8Encoder(tmp_path / "onnx")
    ours = reopened.encode([*TEXTS, "love"], batch_size=2, normalize=True)
    theirs = encoder.encode([*TEXTS, "love"], normalize=True)
    assert ours.shape == (5, encoder.dim) and ours.dtype == np.float32
    assert (ours * theirs).sum(axis=1).min() >= 0.99
    assert reopened.encode("war").shape == (encoder.dim,)


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime and onnxscript")
def test_export_refuses_an_export_that_does_not_match(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir)
    with pytest.raises(ValueError, match="min_cosine"):
        OnnxInt8Encoder.export(encoder, tmp_path / "onnx", check_texts=TEXTS, min_cosine=1.01)


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime and onnxscript")
def test_an_export_folder_is_told_apart(tiny_bert_dir, tmp_path):
    from dayzero.text.onnx_int8 import is_onnx_encoder

    encoder = TextEncoder(tiny_bert_dir)
    OnnxInt8Encoder.export(encoder, tmp_path / "onnx", check_texts=TEXTS)
    assert is_onnx_encoder(tmp_path / "onnx")
    assert not is_onnx_encoder(encoder.save(tmp_path / "torch"))
    assert not is_onnx_encoder(tmp_path / "missing") and not is_onnx_encoder("all-MiniLM-L6-v2")


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime and onnxscript")
def test_max_length_is_capped_by_the_export_and_changes_the_fingerprint(tiny_bert_dir, tmp_path):
    encoder = TextEncoder(tiny_bert_dir, max_length=16)
    OnnxInt8Encoder.export(encoder, tmp_path / "onnx", check_texts=TEXTS)
    assert OnnxInt8Encoder(tmp_path / "onnx").max_length == 16
    assert OnnxInt8Encoder(tmp_path / "onnx", max_length=64).max_length == 16
    short = OnnxInt8Encoder(tmp_path / "onnx", max_length=4)
    assert short.max_length == 4
    from dayzero.text.onnx_int8 import export_fingerprint

    assert export_fingerprint(tmp_path / "onnx", 4) == short.fingerprint()
    long_text = "a scary horror movie about a robot in space and a dog"
    cut = short.tokenizer.decode(
        short.tokenizer(long_text, max_length=4, truncation=True)["input_ids"],
        skip_special_tokens=True,
    )
    np.testing.assert_allclose(short.encode(long_text), short.encode(cut), atol=1e-6)
    assert short.fingerprint() != OnnxInt8Encoder(tmp_path / "onnx").fingerprint()
    assert (
        OnnxInt8Encoder(tmp_path / "onnx").fingerprint()
        == OnnxInt8Encoder(tmp_path / "onnx").fingerprint()
    )
    with pytest.raises(ValueError, match="max_length must be an int >= 2"):
        OnnxInt8Encoder(tmp_path / "onnx", max_length=1)
    reopened = OnnxInt8Encoder(tmp_path / "onnx", threads=1)
    session = reopened.session
    reopened.use_threads(1)
    assert reopened.session is session  # unchanged setting: the same session
    reopened.use_threads(2)
    assert reopened.session is not session and reopened.threads == 2


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime and onnxscript")
def test_each_distinct_text_is_run_once_and_then_read_from_the_disk_cache(
    tiny_bert_dir, tmp_path, monkeypatch
):
    OnnxInt8Encoder.export(TextEncoder(tiny_bert_dir), tmp_path / "onnx", check_texts=TEXTS)
    ran: list[str] = []
    original = OnnxInt8Encoder._run

    def counting(self, texts, batch_size):
        ran.extend(texts)
        return original(self, texts, batch_size)

    monkeypatch.setattr(OnnxInt8Encoder, "_run", counting)
    first = OnnxInt8Encoder(tmp_path / "onnx", cache_dir=tmp_path / "cache")
    vectors = first.encode([*TEXTS, "war", "love"])
    assert sorted(ran) == sorted(TEXTS)  # duplicates run once
    np.testing.assert_array_equal(vectors[4], vectors[1])
    again = OnnxInt8Encoder(tmp_path / "onnx", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.encode(TEXTS[::-1]), vectors[:4][::-1])
    assert len(ran) == len(TEXTS)  # a new encoder on the same folder reads the cache
