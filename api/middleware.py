"""Request and correlation ids (transport_and_format, "Request ID" and
"Correlation ID" headers): echoed when the caller sends them, made up when it
does not, bound to every log line of the request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response

log = structlog.get_logger("api.access")

_MAX_ID = 100  # longer ids are not echoed verbatim; a fresh one is used


def _id(value: str | None) -> str:
    if value and len(value) <= _MAX_ID and value.isprintable():
        return value
    return str(uuid.uuid4())


def install_request_ids(app: FastAPI) -> None:
    @app.middleware("http")
    async def request_ids(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = _id(request.headers.get("x-request-id"))
        correlation_id = _id(request.headers.get("x-correlation-id"))
        request.state.request_id = request_id
        request.state.correlation_id = correlation_id
        structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=correlation_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")
        response.headers["X-Request-ID"] = request_id
        response.headers["X-Correlation-ID"] = correlation_id
        # Routing headers of a functional module's answer (api/routing.py).
        response.headers.update(getattr(request.state, "routing_headers", {}))
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 2),
            request_id=request_id,
            correlation_id=correlation_id,
        )
        return response
