"""Text encoders: pretrained transformers as text -> vector functions, with a disk cache.

Names are imported lazily so that ``import dayzero.encoders.tiny`` (or the cache alone) does
not pay for importing transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DEFAULT_MODEL": "dayzero.encoders.encoder",
    "TextEncoder": "dayzero.encoders.encoder",
    "TextEncoderConfig": "dayzero.encoders.encoder",
    "resolve_model_path": "dayzero.encoders.encoder",
    "EmbeddingCache": "dayzero.encoders.cache",
    "pool": "dayzero.encoders.pooling",
    "POOLING_METHODS": "dayzero.encoders.pooling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dayzero.encoders' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
