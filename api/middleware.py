"""Request and correlation ids (transport_and_format, "Request ID" and
"Correlation ID" headers): echoed when the caller sends them, made up when it
does not, bound to every log line of the request.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``,
which runs each request in an extra task with memory streams (a large share
of a write's CPU). Each request is logged at DEBUG, or at INFO when it
failed or was slow, so that the log does not cost more than the write.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.write_path import act_as, reset_actor
from schemas.ocpi.common import format_ocpi_datetime

log = structlog.get_logger("api.access")

_MAX_ID = 100  # longer ids are not echoed verbatim; a fresh one is used
SLOW_S = 1.0  # a request this slow is logged at INFO


def _id(value: str | None) -> str:
    if value and len(value) <= _MAX_ID and value.isprintable():
        return value
    return str(uuid.uuid4())


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = _id(_text(headers.get(b"x-request-id")))
        correlation_id = _id(_text(headers.get(b"x-correlation-id")))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["correlation_id"] = correlation_id
        status = 500
        started = time.perf_counter()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                out["X-Correlation-ID"] = correlation_id
                # Routing headers of a functional module's answer (api/routing.py).
                for name, value in state.get("routing_headers", {}).items():
                    out[name] = value
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=correlation_id)
        # The ops access check names the request's actor (api/ops/access.py);
        # it ends with the request, even where requests share a context
        # (an in-process test client).
        acting = act_as(None)
        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            reset_actor(acting)
            took = time.perf_counter() - started
            level = log.info if status >= 400 or took >= SLOW_S else log.debug
            level(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(took * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id", "actor")


def _text(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


def install_request_ids(app: FastAPI) -> None:
    app.add_middleware(RequestIds)


_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLargeError(Exception):
    """The request body grew past the limit while being read."""


class BodyLimit:
    """Request bodies larger than a Kafka message can be are refused with
    HTTP 413 and an OCPI envelope (2001) before they are read, when
    Content-Length says so, or as soon as more bytes arrive than fit
    (docs/adr/0027): such an object could never be recorded, so "retry"
    would be a lie."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        declared = _text(dict(scope["headers"]).get(b"content-length"))
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(send, received)

    async def _refuse(self, send: Send, size: int) -> None:
        body = orjson.dumps(
            {
                "status_code": 2001,
                "status_message": (
                    f"the request body is too large: {size} bytes or more, at most "
                    f"{self.max_bytes} bytes fit in one recorded event"
                ),
                "timestamp": format_ocpi_datetime(datetime.now(UTC)),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
