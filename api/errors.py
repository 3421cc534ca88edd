"""Every response a partner sees is an OCPI envelope (transport_and_format,
"Response format"); this module turns every failure into one, so no framework
default error body ever leaks out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError as SqlInterfaceError
from sqlalchemy.exc import OperationalError as SqlOperationalError
from sqlalchemy.exc import TimeoutError as SqlPoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.admin.render import error_page
from producers.write_path import (
    NotRecordedError,
    OutcomeUnknownError,
    RefusedError,
    UnavailableError,
)
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import CORE_VERSION

log = structlog.get_logger(__name__)


def envelope(
    data: Any = None,
    status_code: OcpiStatus = OcpiStatus.SUCCESS,
    message: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status_code": int(status_code),
        "timestamp": format_ocpi_datetime(datetime.now(UTC)),
    }
    # Where the spec names no data, leave the field unset (transport_and_format,
    # Response format, NOTE on the data field).
    if data is not None:
        body["data"] = data
    if message is not None:
        body["status_message"] = message
    return body


class OcpiError(Exception):
    """A failure with its OCPI status code and the HTTP status to carry it
    (200 unless the spec asks for an HTTP error, e.g. 404 on an unknown GET).
    On ``/ocpi`` the HTTP status passes through ``ocpi_http_status``."""

    def __init__(
        self,
        status: OcpiStatus,
        message: str,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http_status = http_status
        self.headers = headers


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts)


def _admin_page(request: Request, status: int, message: str) -> Response | None:
    """The dashboard's pages answer a browser with a page in words, never
    an envelope or a trace (api/admin/pages.py); None for other paths."""
    if not request.url.path.startswith("/admin"):
        return None
    return error_page(request, status, message)


# The two routes whose module names a 404 for a request that is not a GET:
# authorize of an unknown Token (mod_tokens, POST) and charging preferences for
# an EVSE without the capability (mod_sessions, PUT).
_MODULE_404 = ("/authorize", "/charging_preferences")


def is_ocpi(request: Request) -> bool:
    return request.url.path.startswith("/ocpi/")


def ocpi_version_and_module(path: str) -> tuple[str, str] | None:
    """The version and module an OCPI path names, ``/ocpi/[cpo|emsp/]{version}/{module}``
    (the module "" when the path ends at the version); None for a path that
    names no version."""
    parts = path.split("/")
    at = next((i for i in (2, 3) if i < len(parts) and parts[i][:1].isdigit()), None)
    if at is None:
        return None
    return parts[at], parts[at + 1] if at + 1 < len(parts) else ""


def ocpi_http_status(request: Request, wanted: int) -> int:
    """The one rule for the HTTP status of an OCPI error (docs/adr/0039 §2;
    status_codes: a request that reached the OCPI layer MUST NOT get an HTTP
    error, a GET of what does not exist SHOULD get 404).

    ``wanted`` is what the refusal asks for; the ops and public APIs are ours,
    not OCPI, and keep it. On ``/ocpi`` only these pass: 400 (the body is not
    JSON), 401 (the token), 405 (credentials in the wrong registration
    state; a method the module lacks), 413 (a body too large to be recorded)
    and 5xx; a 404 only on a GET or on the two routes whose module names one.
    Everything else is HTTP 200 with its OCPI code: a slice's refusal that a
    REST caller gets as 404 or 409 (a DELETE of an unknown tariff, a command
    for an unknown location) is a 2xxx at HTTP 200 for a partner."""
    if not is_ocpi(request) or wanted in (400, 401, 405, 413) or wanted >= 500:
        return wanted
    if wanted == 404 and (request.method == "GET" or request.url.path.endswith(_MODULE_404)):
        return 404
    return 200


def _unserved_version(request: Request) -> str | None:
    """For an OCPI path no route serves that names a version
    (``/ocpi/[cpo|emsp/]{version}/{module}``): what we do not serve, as the
    message of a 3002 (docs/adr/0045); None for other paths."""
    if not is_ocpi(request):
        return None
    named = ocpi_version_and_module(request.url.path)
    if named is None:
        return None
    version, module = named
    offered = request.app.state.container.settings.offered_versions
    served = WIRES.get(version)
    # An unknown path of a version we offer is just that (2000), unless the
    # version's adapter lacks the module (our own model has them all).
    if (
        version in offered
        and served is not None
        and (version == CORE_VERSION or not module or module in served.modules)
    ):
        return None
    what = f"the {module} module in OCPI {version}" if module else f"OCPI {version}"
    return f"we do not serve {what}; we offer {', '.join(offered)}"


def _one_object(request: Request) -> bool:
    """A GET of one object: its route names the object in the path."""
    route = request.scope.get("route")
    # The OCPI version in a path (docs/adr/0045) names no object.
    path = str(getattr(route, "path", "")).replace("{version}", "")
    return request.method == "GET" and "{" in path


_BROKEN = (
    "Something went wrong on our side; it has been logged. Try again, or tell an administrator."
)
_UNPARSED = "There was an error parsing the body"  # fastapi.routing's detail
_STORE_AWAY = "A store the dashboard reads did not answer in time. Try again in a moment."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OcpiError)
    async def ocpi_error(request: Request, exc: OcpiError) -> JSONResponse:
        return JSONResponse(
            envelope(None, exc.status, exc.message),
            status_code=ocpi_http_status(request, exc.http_status),
            headers=exc.headers,
        )

    @app.exception_handler(RefusedError)
    async def refused(request: Request, exc: RefusedError) -> JSONResponse:
        # A slice's decision: nothing was recorded. Slices are shared by the
        # OCPI and ops routes; the rule says what a partner gets.
        return JSONResponse(
            envelope(None, exc.status, exc.message),
            status_code=ocpi_http_status(request, exc.http_status),
        )

    @app.exception_handler(NotRecordedError)
    async def not_recorded(_: Request, exc: NotRecordedError) -> JSONResponse:
        # Nothing reached Kafka: say so, so the sender retries rather than
        # believing it was recorded. An OCPI 3000, not an HTTP error: the
        # request itself was fine.
        message = "the update was not recorded; retry"
        return JSONResponse(envelope(None, OcpiStatus.SERVER_ERROR, message))

    @app.exception_handler(OutcomeUnknownError)
    async def outcome_unknown(_: Request, exc: OutcomeUnknownError) -> JSONResponse:
        # Kafka may hold the update: never claim it does not. A retry of the
        # same request is decided as the same change (docs/adr/0027).
        return JSONResponse(envelope(None, OcpiStatus.SERVER_ERROR, str(exc)))

    @app.exception_handler(UnavailableError)
    async def unavailable(request: Request, exc: UnavailableError) -> Response:
        if (page := _admin_page(request, 503, _STORE_AWAY)) is not None:
            return page
        return JSONResponse(envelope(None, OcpiStatus.SERVER_ERROR, str(exc)))

    @app.exception_handler(PyMongoError)
    async def views_unavailable(request: Request, exc: PyMongoError) -> Response:
        # A view read that hit its bound (OCPI_HUB_MONGO_*_TIMEOUT_S) or lost
        # its server: the request was fine and nothing was written, so the
        # sender should retry (docs/adr/0026). Anything else is a defect.
        if not (exc.timeout or isinstance(exc, ConnectionFailure)):
            log.exception("unhandled_error", error_type=type(exc).__name__)
            if (page := _admin_page(request, 500, _BROKEN)) is not None:
                return page
            body = envelope(None, OcpiStatus.SERVER_ERROR, "internal error")
            return JSONResponse(body, status_code=500)
        log.warning("views_unavailable", error_type=type(exc).__name__, error=str(exc)[:300])
        if (page := _admin_page(request, 503, _STORE_AWAY)) is not None:
            return page
        message = "the views did not answer in time; retry"
        return JSONResponse(envelope(None, OcpiStatus.SERVER_ERROR, message))

    async def dependency_unavailable(request: Request, exc: Exception) -> Response:
        # Redis (rate limits, cached decisions, token lookups) or MariaDB
        # (ops lists, session rows) failed or hit its socket timeout
        # (OCPI_HUB_REDIS_*_TIMEOUT_S, OCPI_HUB_MYSQL_*_TIMEOUT_S): the request
        # was fine and nothing was written by this read, so the sender should
        # retry (OCPI 3000), not see a 500. The message never carries the
        # driver's text (it can quote the statement).
        log.warning(
            "dependency_unavailable",
            error_type=type(exc).__name__,
            path=request.url.path,
        )
        if (page := _admin_page(request, 503, _STORE_AWAY)) is not None:
            return page
        message = "a store did not answer in time; retry"
        return JSONResponse(envelope(None, OcpiStatus.SERVER_ERROR, message))

    for unavailable_type in (
        RedisConnectionError,
        RedisTimeoutError,
        SqlOperationalError,
        SqlInterfaceError,
        SqlPoolTimeoutError,
    ):
        app.add_exception_handler(unavailable_type, dependency_unavailable)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if page := _admin_page(request, 400, "This address has a value the page cannot use."):
            return page
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            # status_codes: "When a message does not contain a valid JSON
            # string, the HTTP error 400 - Bad request MUST be returned."
            body = envelope(None, OcpiStatus.CLIENT_ERROR, "request body is not valid JSON")
            return JSONResponse(body, status_code=400)
        message = f"invalid or missing parameters: {_describe(errors)}"
        in_url = any(e.get("loc", ("",))[0] in ("path", "query") for e in errors)
        if is_ocpi(request):
            # docs/adr/0039 §2: 2001 at HTTP 200 (the request reached the
            # OCPI layer), except a GET of one object whose ids break the
            # spec's limits: no such object can exist, so the GET's 404.
            status = 404 if in_url and _one_object(request) else 200
        else:
            # The ops and public APIs: a URL that names nothing is a 400.
            status = 400 if in_url else 200
        return JSONResponse(
            envelope(None, OcpiStatus.INVALID_PARAMETERS, message), status_code=status
        )

    @app.exception_handler(ValidationError)
    async def invalid_body(_: Request, exc: ValidationError) -> JSONResponse:
        # A body validated inside a route (PATCH fragments, bodies checked
        # against the stored object): valid JSON, so HTTP 200 with 2001.
        message = f"invalid or missing parameters: {_describe([dict(e) for e in exc.errors()])}"
        return JSONResponse(envelope(None, OcpiStatus.INVALID_PARAMETERS, message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (page := _admin_page(request, 404, "No such page.")):
            return page
        if exc.status_code == 404 and (unserved := _unserved_version(request)):
            return JSONResponse(
                envelope(None, OcpiStatus.UNSUPPORTED_VERSION, unserved), status_code=404
            )
        if exc.status_code == 400 and exc.detail == _UNPARSED and is_ocpi(request):
            # FastAPI's answer to a body it could not decode at all (not
            # UTF-8): for a partner that is a body that is not valid JSON.
            return JSONResponse(
                envelope(None, OcpiStatus.CLIENT_ERROR, "request body is not valid JSON"),
                status_code=400,
            )
        return JSONResponse(
            envelope(None, OcpiStatus.CLIENT_ERROR, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        if (page := _admin_page(request, 500, _BROKEN)) is not None:
            return page
        return JSONResponse(
            envelope(None, OcpiStatus.SERVER_ERROR, "internal error"), status_code=500
        )
