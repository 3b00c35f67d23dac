"""Quiet loading of pretrained models: no third-party bars, logs or deprecation notices.

Loading an encoder through transformers prints a "Loading weights" bar per model, logs load
reports, and peft's wrapping raises a ``FutureWarning`` about ``is_gradient_checkpointing``
(transformers 5 renamed the attribute that peft still reads). None of it is actionable for a
dayzero user, so :func:`quiet_loading` silences exactly that, for the duration of the ``with``
block only, through the libraries' own switches: transformers' verbosity and progress-bar
API (which also switches huggingface_hub's bars) and a ``warnings`` filter on that one
message. Whatever was set before is restored on exit; the user's own warning filters and
logging configuration are never changed.

Examples
--------
>>> from dayzero.text.quiet import quiet_loading
>>> with quiet_loading():
...     pass  # AutoModel.from_pretrained(...) here prints no bar and no load report
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Third-party deprecation notices raised inside dayzero's own calls, that a user cannot act on.
QUIET_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r".*`is_gradient_checkpointing` is deprecated", FutureWarning),
)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' / huggingface_hub's bars and logs and the known third-party
    deprecation warnings inside the block; restore the previous settings on exit.

    Errors still propagate, and transformers' error-level logs still print.

    Yields
    ------
    None
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if bars:
        hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            for message, category in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
