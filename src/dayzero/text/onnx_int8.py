"""Optional int8 ONNX export of a frozen :class:`~dayzero.text.encoder.TextEncoder`.

The model and its pooling are exported with ``torch.onnx.export(..., dynamo=True)`` (the legacy
exporter gives wrong outputs with transformers 5), weights are quantised to int8 per channel
with ``onnxruntime.quantization.quantize_dynamic``, and the export is accepted only if its
vectors match torch's (cosine >= ``min_cosine`` on check texts). Inference only: no gradients,
no adapters left unmerged. Needs ``pip install onnxruntime==1.32.0 onnx==1.23.2
onnxscript==0.7.2``; this module imports without them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dayzero.core.artifact import Artifact, load_artifact, save_artifact
from dayzero.text.pooling import pool

MODEL_FILE = "model_int8.onnx"
ARTIFACT_KIND = "onnx-encoder"  # dayzero.json (dayzero.core.artifact) beside model.onnx
_INSTALL = "pip install onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2"
DEFAULT_CHECK_TEXTS = (
    "A little boy's toys come to life when he leaves the room.",
    "Cosy ramen bar, open late, vegetarian options, cash only.",
    "Applicant aged 35, skilled employee, owns a house, wants a loan for a new car.",
    "The stock market fell sharply after the profit warning.",
    "war",
)


def _require_onnx() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"the int8 ONNX path needs onnx, onnxruntime and onnxscript: {_INSTALL}"
        ) from err
    return onnxruntime


def _activation_products(path: Path) -> list[str]:
    """Names of the MatMul nodes in the ONNX file whose inputs are both activations."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    weights |= {n.output[0] for n in graph.node if n.op_type == "Constant"}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and not any(i in weights for i in n.input)
    ]


class _Pooled(torch.nn.Module):
    """The encoder's model followed by its pooling, as one graph with tensor inputs."""

    def __init__(self, model: torch.nn.Module, pooling: str, inputs: Sequence[str]) -> None:
        super().__init__()
        self.model, self.pooling, self.inputs = model, pooling, tuple(inputs)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(self.inputs, tensors, strict=True))
        output = self.model(**batch)
        return pool(output[0], batch["attention_mask"], self.pooling)


class OnnxInt8Encoder:
    """An int8 ONNX Runtime copy of a frozen text encoder.

    Build one with :meth:`export`; reopen a saved folder with ``OnnxInt8Encoder(folder)``.

    Parameters
    ----------
    folder : str or Path
        A folder written by :meth:`export`.
    threads : int, optional
        ONNX Runtime intra-op threads; ``None`` lets it decide.
    """

    def __init__(self, folder: str | os.PathLike, threads: int | None = None) -> None:
        ort = _require_onnx()
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.config = load_artifact(self.folder, ARTIFACT_KIND).params
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.config["dim"])

    @classmethod
    def export(
        cls,
        encoder: Any,
        folder: str | os.PathLike,
        check_texts: Sequence[str] = DEFAULT_CHECK_TEXTS,
        min_cosine: float = 0.99,
    ) -> OnnxInt8Encoder:
        """Export ``encoder`` (a ``TextEncoder``) to ``folder`` as int8 ONNX and check it.

        Raises
        ------
        ValueError
            When the int8 vectors' cosine to torch's falls below ``min_cosine`` on
            ``check_texts``; the folder is then left with the failed files for inspection.
        """
        _require_onnx()
        from onnxruntime.quantization import QuantType, quantize_dynamic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sample = encoder.tokenize(list(check_texts)[:2])
        names = list(sample)
        wrapper = _Pooled(encoder.model, encoder.pooling, names).eval()
        batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens")
        dynamic = tuple({0: batch, 1: tokens} for _ in names)
        fp32 = folder / "model_fp32.onnx"
        with torch.no_grad():
            program = torch.onnx.export(
                wrapper,
                tuple(sample[n].cpu() for n in names),
                input_names=names,
                output_names=["vectors"],
                dynamic_shapes=(dynamic,),
                dynamo=True,
            )
        program.save(str(fp32))
        # Only products with a weight matrix: quantising the embedding tables (Gather) or the
        # attention products of two activations costs accuracy and saves little time.
        quantize_dynamic(
            str(fp32),
            str(folder / MODEL_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_activation_products(fp32),
        )
        fp32.unlink()
        for extra in folder.glob("model_fp32.onnx*"):
            extra.unlink()
        encoder.tokenizer.save_pretrained(folder)
        config = {
            "inputs": names,
            "dim": encoder.dim,
            "max_length": encoder.max_length,
            "pooling": encoder.pooling,
            "source_fingerprint": encoder.fingerprint(),
        }
        save_artifact(folder, Artifact(ARTIFACT_KIND, "onnx-int8", config))
        onnx_encoder = cls(folder)
        cosine = onnx_encoder.min_cosine_to(encoder, check_texts)
        config["min_cosine_to_torch"] = cosine
        save_artifact(folder, Artifact(ARTIFACT_KIND, "onnx-int8", config))
        onnx_encoder.config = config
        if cosine < min_cosine:
            raise ValueError(
                f"int8 ONNX vectors have cosine {cosine:.4f} to torch's, below min_cosine="
                f"{min_cosine}; use the torch encoder"
            )
        return onnx_encoder

    def encode(
        self, texts: str | Sequence[str], batch_size: int = 32, normalize: bool = False
    ) -> np.ndarray:
        """Like ``TextEncoder.encode`` (length-sorted batches, order kept), without a cache."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.config["max_length"],
                return_tensors="np",
            )
            feeds = {n: batch[n].astype(np.int64) for n in self.config["inputs"]}
            out[rows] = self.session.run(["vectors"], feeds)[0]
        if normalize and len(out):
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out

    def min_cosine_to(self, encoder: Any, texts: Sequence[str]) -> float:
        """Smallest cosine between this model's vectors and ``encoder.encode``'s on ``texts``."""
        ours = self.encode(list(texts), normalize=True)
        theirs = encoder.encode(list(texts), normalize=True)
        return float((ours * theirs).sum(axis=1).min())
