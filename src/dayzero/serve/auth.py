"""API key rules, as FastAPI dependencies.

Writes and admin calls need the key; reads need it unless the service runs with
``public_reads``; a user's recommendations with ``exclude_seen=false`` need it always (they
reveal that user's history). No configured key leaves everything open.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

if TYPE_CHECKING:
    from dayzero.serve.app import ServeConfig

API_KEY_HEADER = "X-API-Key"

# Plain attribute reads and a header compare: ``async def`` so FastAPI runs them on the event
# loop instead of a thread-pool hop each (a hop costs more than the work, on every request).
_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")
ApiKey = Annotated[str | None, Depends(_key_header)]


def check_key(config: ServeConfig, key: str | None) -> None:
    """Refuse ``key`` unless it is ``config.api_key`` (or no key is configured).

    Parameters
    ----------
    config : ServeConfig
    key : str or None
        The ``X-API-Key`` header as sent (None when absent).

    Raises
    ------
    fastapi.HTTPException
        401 when the key is missing, 403 when it is wrong.
    """
    if config.api_key is None:
        return
    if not key:
        raise HTTPException(401, f"missing API key: send it in the {API_KEY_HEADER} header")
    if not secrets.compare_digest(key.encode(), config.api_key.encode()):
        raise HTTPException(403, f"invalid API key in the {API_KEY_HEADER} header")


def check_history_key(config: ServeConfig, key: str | None, exclude_seen: bool) -> None:
    """Refuse ``exclude_seen=false`` without the key when reads are public.

    Without ``public_reads`` (or without a configured key) :func:`read_auth` has decided
    already; with ``exclude_seen`` the answer reveals nothing of the user's history.

    Raises
    ------
    fastapi.HTTPException
        401 when the key is missing, 403 when it is wrong.
    """
    if exclude_seen or not config.public_reads or config.api_key is None:
        return  # read_auth has checked the key already where one is needed
    if not key:
        raise HTTPException(
            401,
            f"exclude_seen=false reveals the user's history: send the API key in the "
            f"{API_KEY_HEADER} header, or leave exclude_seen at true",
        )
    check_key(config, key)


async def write_auth(request: Request, key: ApiKey) -> None:
    """Writes and admin calls need the key (when one is configured)."""
    check_key(request.app.state.config, key)


async def read_auth(request: Request, key: ApiKey) -> None:
    """Reads need the key unless the service was started with ``public_reads``."""
    config: ServeConfig = request.app.state.config
    if not config.public_reads:
        check_key(config, key)


async def history_auth(request: Request, key: ApiKey, exclude_seen: bool = True) -> None:
    """``exclude_seen=false`` reveals a user's history (diffed against the default list): it
    needs the key even with ``public_reads``."""
    check_history_key(request.app.state.config, key, exclude_seen)


__all__ = [
    "API_KEY_HEADER",
    "check_history_key",
    "check_key",
    "history_auth",
    "read_auth",
    "write_auth",
]
