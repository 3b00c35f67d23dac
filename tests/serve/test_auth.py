"""The API key rules as plain functions: which calls need the key, and 401 vs 403."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from dayzero.serve.app import ServeConfig
from dayzero.serve.auth import check_history_key, check_key


def config(api_key: str | None = "secret", public_reads: bool = False) -> ServeConfig:
    return ServeConfig(
        store="unused.db", registry="unused", api_key=api_key, public_reads=public_reads
    )


def status(call) -> int:
    try:
        call()
    except HTTPException as exc:
        assert "X-API-Key" in exc.detail  # every refusal names the header to send
        return exc.status_code
    return 200


@pytest.mark.parametrize(
    ("key", "expected"), [("secret", 200), (None, 401), ("", 401), ("wrong", 403), ("secre", 403)]
)
def test_check_key_wants_the_configured_key(key, expected):
    assert status(lambda: check_key(config(), key)) == expected


@pytest.mark.parametrize("key", [None, "", "anything"])
def test_without_a_configured_key_everything_is_open(key):
    assert status(lambda: check_key(config(api_key=None), key)) == 200
    open_history = config(api_key=None, public_reads=True)
    for exclude_seen in (True, False):
        assert status(lambda e=exclude_seen: check_history_key(open_history, key, e)) == 200


def test_check_key_compares_unicode_keys():
    assert status(lambda: check_key(config(api_key="clé"), "clé")) == 200
    assert status(lambda: check_key(config(api_key="clé"), "cle")) == 403


@pytest.mark.parametrize(
    ("key", "expected"), [("secret", 200), (None, 401), ("", 401), ("wrong", 403)]
)
def test_public_reads_still_want_the_key_to_reveal_a_history(key, expected):
    public = config(public_reads=True)
    assert status(lambda: check_history_key(public, key, exclude_seen=False)) == expected
    # exclude_seen=true reveals nothing of the history: open to anyone with public reads
    assert status(lambda: check_history_key(public, key, exclude_seen=True)) == 200


def test_history_rule_leaves_private_reads_to_the_read_rule():
    """Without public reads the read rule has asked for the key already; the history rule
    adds nothing (so a missing key is one 401, not two checks)."""
    for key in (None, "wrong", "secret"):
        assert status(lambda k=key: check_history_key(config(), k, exclude_seen=False)) == 200


def test_missing_key_for_a_history_says_how_to_do_without():
    with pytest.raises(HTTPException, match="leave exclude_seen at true") as info:
        check_history_key(config(public_reads=True), None, exclude_seen=False)
    assert info.value.status_code == 401
