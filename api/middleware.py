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
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            took = time.perf_counter() - started
            level = log.info if status >= 400 or took >= SLOW_S else log.debug
            level(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(took * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")


def _text(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


def install_request_ids(app: FastAPI) -> None:
    app.add_middleware(RequestIds)
