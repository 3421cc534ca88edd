"""The AFIR feed for pull: ``GET /afir/v3/static`` and ``GET /afir/v3/dynamic``
(docs/afir.md, docs/adr/0048).

The DATEX II v3 energy infrastructure publications of our published
locations, as the projection keeps them (projections/mongo/afir.py):
static, the ``EnergyInfrastructureTablePublication``; dynamic, the
``EnergyInfrastructureStatusPublication``. ``since`` (an RFC 3339 time)
returns only the records updated at or after it: a delta.

Only the configured access point may read: a bearer token, or HTTP basic
user and password (``OCPI_HUB_AFIR_PULL_*``), compared in constant time.
Neither the credential nor the Authorization header is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import NowDep, SettingsDep, container
from ocpi_hub.bootstrap import Container, afir_publisher
from ocpi_hub.settings import Settings
from producers import afir
from projections.mongo.afir import AfirViewQuery
from schemas.ocpi.common import sort_stamp

router = APIRouter(prefix="/afir/v3", tags=["AFIR national access point (DATEX II v3)"])

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="afir", Basic realm="afir"'}


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def access_point_allowed(authorization: str | None, settings: Settings) -> bool:
    """Whether an Authorization header carries the access point's credential.
    Nothing configured: nobody is allowed (a feed is not public by
    omission)."""
    if not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    token = settings.afir_pull_token.get_secret_value()
    if scheme.lower() == "bearer" and token:
        return _same(value, token)
    password = settings.afir_pull_password.get_secret_value()
    if scheme.lower() == "basic" and settings.afir_pull_user and password:
        try:
            user, sep, given = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ok_user = _same(user, settings.afir_pull_user)
        ok_password = _same(given, password)
        return bool(sep) and ok_user and ok_password
    return False


async def _afir(c: Annotated[Container, Depends(container)]) -> AfirViewQuery:
    assert c.afir is not None
    return c.afir


AfirViewDep = Annotated[AfirViewQuery, Depends(_afir)]
SinceQuery = Annotated[
    datetime | None,
    Query(description="Only records updated at or after this time (RFC 3339): a delta."),
]


def _refused() -> JSONResponse:
    return JSONResponse({"detail": "access point credential required"}, 401, _CHALLENGE)


@router.get("/static", response_model=None)
async def static_feed(
    request: Request,
    settings: SettingsDep,
    view: AfirViewDep,
    now: NowDep,
    since: SinceQuery = None,
) -> Response | dict[str, Any]:
    """The static publication (sites, stations, refill points, connectors,
    operator, location, opening hours, payment, ad-hoc price); 204 when
    there is no site to publish."""
    if not access_point_allowed(request.headers.get("authorization"), settings):
        return _refused()
    sites = await view.records("static", sort_stamp(since) if since else None)
    if not sites:
        # A table holds at least one site in the model: with none to
        # publish (nothing published, or nothing changed since) there is
        # no valid publication to send.
        return Response(status_code=204)
    return afir.table_publication(afir_publisher(settings), sites, now)


@router.get("/dynamic", response_model=None)
async def dynamic_feed(
    request: Request,
    settings: SettingsDep,
    view: AfirViewDep,
    now: NowDep,
    since: SinceQuery = None,
) -> JSONResponse | dict[str, Any]:
    """The dynamic publication (status and availability per refill point,
    ad-hoc price)."""
    if not access_point_allowed(request.headers.get("authorization"), settings):
        return _refused()
    statuses = await view.records("dynamic", sort_stamp(since) if since else None)
    return afir.status_publication(afir_publisher(settings), statuses, now)
