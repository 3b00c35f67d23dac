"""What the recommenders that own a text encoder share: building it and saving its part.

The two-tower and the sequential model encode entity texts with a
:class:`~dayzero.text.encoder.TextEncoder` built from their ``encoder``, ``max_length`` and
``cache_dir`` parameters, and may adapt it with a transfer ``strategy``. The adapted weights are
saved as the model's ``encoder/`` part by :func:`~dayzero.text.adapters.save_adapted_encoder`,
the one scheme every model uses (the cross-encoder too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dayzero.text.config import EncoderConfig


class OwnsTextEncoder:
    """Mixin: a lazily built text encoder, saved and loaded as the ``encoder/`` part.

    Expects an ``encoder`` config parameter (:class:`~dayzero.text.config.EncoderConfig`, a dict
    of its fields or a model id; see :class:`~dayzero.core.config.ConfigParams`) and a
    ``strategy``; an adapting fit sets ``strategy_config_``.
    """

    strategy: str

    def _encoder_settings(self) -> EncoderConfig:
        return self._config("encoder")  # type: ignore[attr-defined]

    def _text_encoder(self) -> Any:
        if getattr(self, "_encoder_obj", None) is None:
            from dayzero.text.encoder import TextEncoder

            settings = self._encoder_settings()
            self._encoder_obj = TextEncoder(
                settings.model, max_length=settings.max_length, cache_dir=settings.cache_dir
            )
            self._encoder_key = self._wanted_encoder()
        return self._encoder_obj

    def _wanted_encoder(self) -> tuple:
        settings = self._encoder_settings()
        return (settings.model, settings.max_length, settings.cache_dir)

    def _pristine_encoder_kept(self) -> tuple[str, ...]:
        """What a refit may keep of the last run: the loaded encoder, while it is the
        pretrained one with the current settings (loading it again is the slow part); an
        adapted encoder never survives a refit."""
        pristine = (
            getattr(self, "_encoder_obj", None) is not None
            and getattr(self, "strategy_config_", None) is None
            and getattr(self, "_encoder_key", None) == self._wanted_encoder()
        )
        return ("_encoder_obj", "_encoder_key") if pristine else ()

    def _save_parts(self, folder: Path) -> None:
        """The adapted encoder as the ``encoder/`` part (nothing while it is pretrained)."""
        if getattr(self, "_encoder_obj", None) is not None:
            from dayzero.text.adapters import save_adapted_encoder

            config = getattr(self, "strategy_config_", None)
            save_adapted_encoder(self._encoder_obj, self.strategy, config, folder)

    def _load_parts(self, folder: Path) -> None:
        """Restore an adapted encoder saved by :meth:`_save_parts` (used for new entities)."""
        from dayzero.text.adapters import load_adapted_encoder

        settings = self._encoder_settings()
        loaded = load_adapted_encoder(
            folder, settings.model, settings.max_length, settings.cache_dir
        )
        if loaded is not None:
            self._encoder_obj, self.strategy_config_ = loaded
            self._encoder_key = self._wanted_encoder()


__all__ = ["OwnsTextEncoder"]
