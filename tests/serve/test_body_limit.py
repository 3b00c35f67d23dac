"""BodyLimitMiddleware on a bare ASGI app: declared and streamed sizes, and the body it lets
through arrives whole."""

from __future__ import annotations

import asyncio
import json

from dayzero.serve.body_limit import BodyLimitMiddleware


class Echo:
    """An ASGI app that records the body it reads."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(app, chunks: list[bytes], declared: int | None = None) -> tuple[int, bytes]:
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    messages = [
        {"type": "http.request", "body": c, "more_body": n < len(chunks) - 1}
        for n, c in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def test_a_body_within_the_limit_reaches_the_app_whole():
    inner = Echo()
    status, _ = call(BodyLimitMiddleware(inner, max_bytes=10), [b"abcd", b"efgh", b"ij"])
    assert status == 200 and inner.bodies == [b"abcdefghij"]


def test_a_declared_size_over_the_limit_is_refused_before_reading():
    inner = Echo()
    status, body = call(BodyLimitMiddleware(inner, max_bytes=10), [b"x"], declared=11)
    assert status == 413 and inner.bodies == []
    assert json.loads(body) == {
        "detail": "request body is larger than 10 bytes; send smaller batches"
    }


def test_a_streamed_body_over_the_limit_is_refused_whatever_it_declares():
    inner = Echo()
    status, _ = call(BodyLimitMiddleware(inner, max_bytes=10), [b"abcdef", b"ghijk"], declared=3)
    assert status == 413 and inner.bodies == []


def test_non_http_scopes_pass_through():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(BodyLimitMiddleware(inner, max_bytes=1)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
