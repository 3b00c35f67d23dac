"""Optional int8 ONNX export of a frozen :class:`~dayzero.text.encoder.TextEncoder`.

The model and its pooling are exported with ``torch.onnx.export(..., dynamo=True)`` (the legacy
exporter gives wrong outputs with transformers 5), weights are quantised to int8 per channel
with ``onnxruntime.quantization.quantize_dynamic``, and the export is accepted only if its
vectors match torch's (cosine >= ``min_cosine`` on check texts). Inference only: no gradients,
no adapters left unmerged. Needs the ``onnx`` extra (``pip install 'dayzero[onnx]'``:
onnxruntime, onnx, onnxscript); this module imports without them.

A saved folder can stand in for a model name where dayzero only encodes frozen text, e.g.
``RiskScorer(encoder=folder)`` (:func:`is_onnx_encoder` tells such a folder apart).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dayzero.core.artifact import Artifact, artifact_kind, load_artifact, save_artifact
from dayzero.core.checks import text_list
from dayzero.text.cache import distinct_vectors
from dayzero.text.pooling import pool

MODEL_FILE = "model_int8.onnx"
ARTIFACT_KIND = "onnx-encoder"  # dayzero.json (dayzero.core.artifact) beside model.onnx
_INSTALL = "pip install 'dayzero[onnx]' (onnxruntime, onnx, onnxscript)"
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


def is_onnx_encoder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :meth:`OnnxInt8Encoder.export`."""
    folder = Path(path)
    return folder.is_dir() and artifact_kind(folder) == ARTIFACT_KIND


def export_fingerprint(folder: str | os.PathLike, max_length: int | None = None) -> str:
    """A hex digest of what determines an export's vectors: every file in ``folder`` but
    ``dayzero.json`` (the int8 model, the tokenizer's files), the input length (``max_length``
    capped by the export's), the pooling and the exported encoder's own fingerprint. Reads the
    files, opens no session."""
    folder = Path(folder)
    config = load_artifact(folder, ARTIFACT_KIND).params
    exported = int(config["max_length"])
    length = exported if max_length is None else min(int(max_length), exported)
    digest = hashlib.blake2b(digest_size=20)
    digest.update(b"dayzero.OnnxInt8Encoder.fingerprint.v1\0")
    digest.update(str(config.get("source_fingerprint")).encode())
    digest.update(f"\0{length}\0{config['pooling']}\0".encode())
    # every file but dayzero.json (the export rewrites it with its check's cosine)
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != "dayzero.json"):
        digest.update(f"\0{path.name}\0".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


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
    max_length : int, optional
        Input length in tokens, at most the exported encoder's (``config["max_length"]``,
        the default); longer texts are cut.
    cache_dir : str or Path, optional
        Folder of a disk cache of vectors (:class:`~dayzero.text.cache.EmbeddingCache`), keyed
        by :meth:`fingerprint`, like ``TextEncoder``'s.

    Attributes
    ----------
    dim : int
        Vector width.
    max_length : int
        The input length used.
    tokenizer
        The exported encoder's tokenizer (a ``transformers`` tokenizer).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        threads: int | None = None,
        max_length: int | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        ort = _require_onnx()
        from transformers import AutoTokenizer

        from dayzero.text.cache import EmbeddingCache

        self.folder = Path(folder)
        self.config = load_artifact(self.folder, ARTIFACT_KIND).params
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        exported = int(self.config["max_length"])
        if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 2):
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
        self.max_length = exported if max_length is None else min(int(max_length), exported)
        self._ort = ort
        self.threads: int | None = None
        self.session = None
        self.use_threads(threads)
        self.dim = int(self.config["dim"])
        self.cache = None if cache_dir is None else EmbeddingCache(cache_dir)
        # Hashed now, from the file the session just read: a file replaced later cannot key
        # another model's vectors.
        self._fingerprint: str | None = None
        self._fingerprint = self.fingerprint()

    def use_threads(self, threads: int | None) -> None:
        """Run on ``threads`` intra-op threads (``None``: ONNX Runtime's choice); the session is
        rebuilt only when the setting changes."""
        if self.session is not None and threads == self.threads:
            return
        options = self._ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        self.session = self._ort.InferenceSession(
            str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.threads = threads

    def fingerprint(self) -> str:
        """:func:`export_fingerprint` of the folder at this encoder's ``max_length``, computed
        when the encoder opened (from the files its session read)."""
        if self._fingerprint is None:
            self._fingerprint = export_fingerprint(self.folder, self.max_length)
        return self._fingerprint

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
        """Like ``TextEncoder.encode``: each distinct text encoded once (or read from the disk
        cache), in length-sorted batches, the input order kept."""
        single = isinstance(texts, str)
        texts = text_list([texts] if single else texts)
        out = distinct_vectors(
            texts,
            self.dim,
            lambda todo: self._run(todo, batch_size),
            self.cache,
            self.fingerprint,
        )
        if normalize and len(out):
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out

    def _run(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feeds = {n: batch[n].astype(np.int64) for n in self.config["inputs"]}
            out[rows] = self.session.run(["vectors"], feeds)[0]
        return out

    def min_cosine_to(self, encoder: Any, texts: Sequence[str]) -> float:
        """Smallest cosine between this model's vectors and ``encoder.encode``'s on ``texts``."""
        ours = self.encode(list(texts), normalize=True)
        theirs = encoder.encode(list(texts), normalize=True)
        return float((ours * theirs).sum(axis=1).min())
