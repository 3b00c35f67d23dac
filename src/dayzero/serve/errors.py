"""Exception handlers: each refusal of the service as a JSON ``{"detail": ...}`` answer.

Any input may be echoed in an error body, so what is echoed is first made encodable
(:func:`encodable_json`): a NaN or a lone surrogate in a request must not drop the connection.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dayzero.serve.state import BadRequestError, NoModelError, UnknownItemError


def encodable_json(value):
    """``value`` as JSON can carry it: NaN / infinities by their names (JSON has no such
    numbers), text that is not valid Unicode (lone surrogates) with backslash escapes."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return encodable_text(value)
    if isinstance(value, dict):
        return {encodable_text(str(k)): encodable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable_json(v) for v in value]
    return value


def encodable_text(text: str) -> str:
    """``text``, with what UTF-8 cannot encode (lone surrogates) as backslash escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def install_errors(app: FastAPI) -> None:
    """Answer the service's own exceptions with their status and message, and request
    validation errors with an encodable 422."""
    from dayzero.core.schema import SchemaError
    from dayzero.online.registry import CorruptVersionError, RegistryError, UnknownVersionError
    from dayzero.online.store import IdempotencyConflictError

    def error(status: int):
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return JSONResponse({"detail": encodable_text(str(message))}, status_code=status)

        return handler

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which fails to encode when it is NaN/inf or
        # holds a lone surrogate (the connection then dropped without an answer).
        detail = encodable_json(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(SchemaError, error(422))
    app.add_exception_handler(IdempotencyConflictError, error(409))
    app.add_exception_handler(UnknownItemError, error(404))
    app.add_exception_handler(BadRequestError, error(422))
    app.add_exception_handler(NoModelError, error(503))
    # The most specific class wins: an unknown version is a 404, any other registry refusal
    # (a corrupt version, nothing to roll back to) a 409.
    app.add_exception_handler(RegistryError, error(409))
    app.add_exception_handler(CorruptVersionError, error(409))
    app.add_exception_handler(UnknownVersionError, error(404))


__all__ = ["encodable_json", "encodable_text", "install_errors"]
