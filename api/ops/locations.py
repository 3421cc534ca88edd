"""Ops API for our own locations (we as CPO): create, change and read them.

``/ops/locations/{location_id}[/{evse_uid}[/{connector_id}]]``. Every write
becomes the same event a partner's PUT or PATCH becomes, under our
``country_code``/``party_id``, through the same write path; the Sender
interface serves the result and the pusher sends it to every registered
eMSP. Bodies are OCPI objects and PATCH fragments, checked exactly as at the
OCPI receiver.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.errors import envelope
from api.ocpi.locations import (
    LocationReadsDep,
    LocationWritesDep,
    OurConnector,
    OurEvse,
    OurLocation,
)
from api.ops.access import OPS_ACCESS
from api.writes import JsonBody, body_of, written
from schemas.ocpi.locations import Connector, Evse, Location
from schemas.ocpi.patch import patch_model

Json = dict[str, Any]

router = APIRouter(prefix="/ops/locations", tags=["ops: our locations"], dependencies=[OPS_ACCESS])

LOCATION = "/{location_id}"
EVSE = LOCATION + "/{evse_uid}"
CONNECTOR = EVSE + "/{connector_id}"


@router.get(LOCATION)
async def get_location(ref: OurLocation, reads: LocationReadsDep) -> Json:
    return envelope(await reads.get(ref))


@router.get(EVSE)
async def get_evse(ref: OurEvse, reads: LocationReadsDep) -> Json:
    return envelope(await reads.get(ref))


@router.get(CONNECTOR)
async def get_connector(ref: OurConnector, reads: LocationReadsDep) -> Json:
    return envelope(await reads.get(ref))


@router.put(LOCATION, openapi_extra=body_of(Location))
async def put_location(
    ref: OurLocation, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return written(response, await writes.put(ref, body))


@router.put(EVSE, openapi_extra=body_of(Evse))
async def put_evse(
    ref: OurEvse, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return written(response, await writes.put(ref, body))


@router.put(CONNECTOR, openapi_extra=body_of(Connector))
async def put_connector(
    ref: OurConnector, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return written(response, await writes.put(ref, body))


@router.patch(LOCATION, openapi_extra=body_of(patch_model(Location)))
async def patch_location(
    ref: OurLocation, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return written(response, await writes.patch(ref, body))


@router.patch(EVSE, openapi_extra=body_of(patch_model(Evse)))
async def patch_evse(
    ref: OurEvse, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return written(response, await writes.patch(ref, body))


@router.patch(CONNECTOR, openapi_extra=body_of(patch_model(Connector)))
async def patch_connector(
    ref: OurConnector, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return written(response, await writes.patch(ref, body))
