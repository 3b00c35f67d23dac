"""Text encoders: pretrained transformers as text -> vector functions, with a disk cache.

Names are imported lazily so that ``import dayzero.text.cache`` (or the pooling alone) does
not pay for importing transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DEFAULT_MODEL": "dayzero.text.encoder",
    "TextEncoder": "dayzero.text.encoder",
    "TextEncoderConfig": "dayzero.text.encoder",
    "resolve_model_path": "dayzero.text.encoder",
    "EmbeddingCache": "dayzero.text.cache",
    "pool": "dayzero.text.pooling",
    "POOLING_METHODS": "dayzero.text.pooling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dayzero.text' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
