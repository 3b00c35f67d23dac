"""Text encoders: pretrained transformers as text -> vector functions, with a disk cache.

Names are imported lazily so that ``import dayzero.text.cache`` (or the pooling alone) does
not pay for importing transformers.
"""

from __future__ import annotations

from dayzero.core.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
