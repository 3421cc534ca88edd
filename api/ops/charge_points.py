"""Ops API of the charge point registry (our OCPP chargers).

``PUT /ops/charge-points/{charge_point_id}`` with ``{location_id, password,
connectors: [{ocpp_connector_id, evse_uid, connector_id}]}`` registers a
charge point (or replaces its registration) at one of our locations: the
location, EVSEs and connectors must be ours (2003) and the body valid (2001),
else nothing is written. ``GET`` shows the registration without the password
hash; ``DELETE`` deregisters it. Writes go through the one write path
(docs/adr/0022); reads wait for the view to hold the last write.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from api.consistency import read_after, written
from api.deps import ChargePointViewDep, ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ops.access import OPS_ACCESS
from api.writes import JsonBody, WritePathDep, body_of
from api.writes import written as answered
from producers import charge_points, locations
from producers.charge_points import (
    CHARGE_POINT_ID_PATTERN,
    RegisterBody,
    decide_deregister,
    decide_register,
    hash_password,
    parse_register,
)
from producers.write_path import Origin
from schemas.events import Party
from schemas.events.locations import location_key
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import CHARGER_REGISTRY

router = APIRouter(
    prefix="/ops/charge-points", tags=["ops: charge points"], dependencies=[OPS_ACCESS]
)

ChargePointIdPath = Annotated[str, Path(pattern=CHARGE_POINT_ID_PATTERN)]

_SHOWN = ("charge_point_id", "country_code", "party_id", "location_id", "registered")


def shown(doc: dict[str, Any]) -> dict[str, Any]:
    """What ops see of a registration: never the password hash."""
    return {
        **{k: doc[k] for k in _SHOWN},
        "connectors": [
            {k: c[k] for k in ("ocpp_connector_id", "evse_uid", "connector_id")}
            for c in doc["connectors"]
        ],
    }


@router.put("/{charge_point_id}", openapi_extra=body_of(RegisterBody))
async def register_charge_point(
    charge_point_id: ChargePointIdPath,
    body: JsonBody,
    c: ContainerDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    s = c.settings
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    request = parse_register(body)
    key = location_key(s.party_country_code, s.party_id, request.location_id)
    held = await write_path.state(locations.SLICE, key)
    location = locations.asserted(held)
    # The hash costs ~25 ms of CPU: off the event loop, and before the
    # charge point is held.
    password_hash = await asyncio.to_thread(hash_password, request.password)
    created = await write_path.write(
        charge_points.SLICE,
        charge_point_id,
        lambda state: decide_register(
            state,
            charge_point_id,
            request,
            location,
            Origin(us, correlation_id),
            now,
            password_hash=password_hash,
        ),
    )
    return answered(response, created)


@router.get("/{charge_point_id}")
async def get_charge_point(
    charge_point_id: ChargePointIdPath,
    c: ContainerDep,
    view: ChargePointViewDep,
    write_path: WritePathDep,
) -> dict[str, Any]:
    doc = await read_after(
        lambda: view.read(charge_point_id),
        lambda: view.positions(charge_point_id),
        CHARGER_REGISTRY.name,
        await written(write_path, charge_points.SLICE, charge_point_id),
        timeout_s=c.settings.read_own_writes_timeout_s,
        what="charge point",
    )
    if doc is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"unknown charge point {charge_point_id!r}", 404
        )
    return envelope(shown(doc))


@router.delete("/{charge_point_id}")
async def deregister_charge_point(
    charge_point_id: ChargePointIdPath,
    c: ContainerDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    s = c.settings
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    await write_path.write(
        charge_points.SLICE,
        charge_point_id,
        lambda state: decide_deregister(state, charge_point_id, Origin(us, correlation_id), now),
    )
    return envelope()
