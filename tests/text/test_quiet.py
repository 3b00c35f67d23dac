"""quiet_loading: transformers' bars / logs and peft's deprecation notice are silenced inside the
block only; the user's own warnings and the libraries' settings are untouched afterwards."""

from __future__ import annotations

import warnings

import pytest
from transformers.utils import logging as hf_logging

from dayzero.text.quiet import quiet_loading


def test_loading_an_encoder_prints_no_bar_and_no_log(tiny_bert_dir, capfd):
    from dayzero.text import TextEncoder
    from dayzero.text.adapters import apply_strategy, strategy_config

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = TextEncoder(str(tiny_bert_dir))
        apply_strategy(encoder.model, strategy_config("lora"))
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "it/s" not in err
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_the_settings_before_the_block_are_restored():
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()
    try:
        with quiet_loading():
            assert hf_logging.get_verbosity() == hf_logging.ERROR
            assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.get_verbosity() == hf_logging.INFO
        assert hf_logging.is_progress_bar_enabled()
        # bars the user had switched off stay off
        hf_logging.disable_progress_bar()
        with quiet_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(before)


def test_only_the_known_notice_is_silenced_and_only_inside():
    message = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_loading():
            warnings.warn(message, FutureWarning, stacklevel=1)
            warnings.warn("the user's own notice", FutureWarning, stacklevel=1)
        warnings.warn(message, FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["the user's own notice", message]


def test_an_error_inside_still_propagates_and_restores():
    before = hf_logging.get_verbosity()
    with pytest.raises(OSError, match="no such model"), quiet_loading():
        raise OSError("no such model")
    assert hf_logging.get_verbosity() == before
