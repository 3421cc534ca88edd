"""The HTTP side of the one write path (producers/write_path.py,
docs/adr/0022): the write path every route records through, request bodies
as JSON, and the answer to a write.

Refusals and failures of the write path (``RefusedError``,
``NotRecordedError``, ``UnavailableError``) become OCPI envelopes in one
place, ``api/errors.py``: a route only decides what to write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.errors import OcpiError, envelope
from ocpi_hub.settings import Settings
from producers.write_path import WritePath
from schemas.ocpi.limits import ORDERING_STAMPS, BeyondLimitsError, check_body
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import loads_exact


async def _write_path(request: Request) -> WritePath:
    path: WritePath = request.app.state.write_path
    return path


WritePathDep = Annotated[WritePath, Depends(_write_path)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.container.settings
    return settings


def checked(request: Request, data: Any, stamps: frozenset[str] = ORDERING_STAMPS) -> Any:
    """A decoded body passes the limits of what the views hold, whole and
    unknown fields included (schemas/ocpi/limits.py, docs/adr/0027); else
    2001 naming the field, before any decision."""
    settings = _settings(request)
    try:
        check_body(
            data,
            now=datetime.now(UTC),
            max_ahead=timedelta(seconds=settings.max_clock_skew_s),
            stamps=stamps,
        )
    except BeyondLimitsError as exc:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"invalid or missing parameters: {exc}"
        ) from exc
    return data


def _not_json(exc: Exception) -> OcpiError:
    # status_codes: a message that is not valid JSON gets HTTP 400.
    return OcpiError(OcpiStatus.CLIENT_ERROR, "request body is not valid JSON", 400)


async def json_body(request: Request) -> Any:
    """The request body as JSON (read once, decoded by orjson; the slice's
    models validate it), checked against the views' limits."""
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers beyond a double (1e400) as invalid JSON;
        # they are valid JSON, so decode exactly to name the field (2001).
        try:
            data = loads_exact(raw)
        except ValueError:
            raise _not_json(exc) from exc
        checked(request, data)
        raise _not_json(exc) from exc
    return checked(request, data)


JsonBody = Annotated[Any, Depends(json_body)]


async def json_body_or_none(request: Request) -> Any:
    """As ``json_body``, but no body at all is None: the slice's model then
    says what is missing (2001), as for a JSON ``null``."""
    if not await request.body():
        return None
    return await json_body(request)


JsonBodyOrNone = Annotated[Any, Depends(json_body_or_none)]


async def exact_body(request: Request) -> Any:
    """The request body as JSON with every fractional number a Decimal,
    digit for digit (tariffs, CDRs: money is never a binary float), checked
    against the views' limits."""
    raw = await request.body()
    try:
        data = loads_exact(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _not_json(exc) from exc
    return checked(request, data)


ExactBody = Annotated[Any, Depends(exact_body)]


def written(response: Response, created: bool = False) -> dict[str, Any]:
    """The answer to a recorded PUT or PATCH: HTTP 201 when it created the
    object, else 200; OCPI 1000 without data."""
    response.status_code = 201 if created else 200
    return envelope()


# --- request bodies in OpenAPI -------------------------------------------------------

# Models named by ``body_of``; their JSON schemas join the OpenAPI components.
BODY_MODELS: dict[str, type[BaseModel]] = {}


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route whose body the slice validates itself
    (so that it keeps the body as sent): the body's schema is ``model``'s."""
    BODY_MODELS[model.__name__] = model
    ref = f"#/components/schemas/{model.__name__}"
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
    }


def with_body_schemas(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap ``app.openapi`` so that the models named by ``body_of``, and the
    models they use, are in ``components.schemas``."""

    def build() -> dict[str, Any]:
        schema = openapi()
        if BODY_MODELS:
            _, defs = models_json_schema(
                [(m, "validation") for m in BODY_MODELS.values()],
                ref_template="#/components/schemas/{model}",
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in defs.get("$defs", {}).items():
                components.setdefault(name, definition)
        return schema

    return build
