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
