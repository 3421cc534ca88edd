"""Ops API of the charge point registry (our OCPP chargers).

``PUT /ops/charge-points/{charge_point_id}`` with ``{location_id, password,
connectors: [{ocpp_connector_id, evse_uid, connector_id}]}`` registers a
charge point (or replaces its registration) at one of our locations: the
location, EVSEs and connectors must be ours (2003) and the body valid (2001),
else nothing is written. ``GET`` shows the registration without the password
hash; ``DELETE`` deregisters it. Reads wait for this API's own acknowledged
writes (docs/adr/0009), like the token and location reads.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from api.consistency import read_after, read_own_writes
from api.deps import (
    ChargePointViewDep,
    ContainerDep,
    CorrelationIdDep,
    EventLogDep,
    LocationViewDep,
    NowDep,
    WriteMarksDep,
)
from api.errors import OcpiError, envelope
from producers.charge_points import (
    CHARGE_POINT_ID_PATTERN,
    hash_password,
    parse_register,
    plan_deregister,
    plan_register,
)
from producers.locations import Origin, RefusedError
from projections.mongo.charge_points import ChargePointViewQuery
from projections.write_marks import WriteMarks
from schemas.events import EventMeta, Party
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import CHARGER_REGISTRY

router = APIRouter(prefix="/ops/charge-points", tags=["ops: charge points"])

ChargePointIdPath = Annotated[str, Path(pattern=CHARGE_POINT_ID_PATTERN)]

_SHOWN = ("charge_point_id", "country_code", "party_id", "location_id", "registered")


def _mark_key(charge_point_id: str) -> str:
    return f"charge_point:{charge_point_id}"


async def _current(
    view: ChargePointViewQuery, marks: WriteMarks, charge_point_id: str, timeout_s: float
) -> dict[str, Any] | None:
    """The document once the view holds every registry write we acknowledged."""
    return await read_after(
        lambda: view.read(charge_point_id),
        lambda: view.positions(charge_point_id),
        CHARGER_REGISTRY.name,
        await marks.marks(_mark_key(charge_point_id)),
        timeout_s=timeout_s,
        what="charge point",
    )


async def _record(event: EventMeta, event_log: EventLogDep, marks: WriteMarks) -> None:
    try:
        [position] = await event_log.append([event])
    except Exception as exc:
        raise OcpiError(OcpiStatus.SERVER_ERROR, "the change could not be recorded; retry") from exc
    try:
        await marks.mark(_mark_key(event.aggregate_key), position.partition, position.offset)
    except Exception as exc:
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "the change was recorded; retry to confirm"
        ) from exc


def shown(doc: dict[str, Any]) -> dict[str, Any]:
    """What ops see of a registration: never the password hash."""
    return {
        **{k: doc[k] for k in _SHOWN},
        "connectors": [
            {k: c[k] for k in ("ocpp_connector_id", "evse_uid", "connector_id")}
            for c in doc["connectors"]
        ],
    }


@router.put("/{charge_point_id}")
async def register_charge_point(
    charge_point_id: ChargePointIdPath,
    body: Annotated[Any, Body()],
    c: ContainerDep,
    view: ChargePointViewDep,
    locations: LocationViewDep,
    marks: WriteMarksDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    s = c.settings
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    try:
        request = parse_register(body)
    except RefusedError as exc:
        raise OcpiError(exc.status, exc.message, exc.http_status) from exc
    location = await read_own_writes(
        locations,
        marks,
        s.party_country_code,
        s.party_id,
        request.location_id,
        timeout_s=s.read_own_writes_timeout_s,
    )
    before = await _current(view, marks, charge_point_id, s.read_own_writes_timeout_s)
    # The hash costs ~25 ms of CPU: off the event loop.
    password_hash = await asyncio.to_thread(hash_password, request.password)
    try:
        event = plan_register(
            charge_point_id,
            request,
            location,
            Origin(us, correlation_id),
            now,
            password_hash=password_hash,
        )
    except RefusedError as exc:
        raise OcpiError(exc.status, exc.message, exc.http_status) from exc
    await _record(event, event_log, marks)
    response.status_code = 200 if before and before.get("registered") else 201
    return envelope()


@router.get("/{charge_point_id}")
async def get_charge_point(
    charge_point_id: ChargePointIdPath,
    c: ContainerDep,
    view: ChargePointViewDep,
    marks: WriteMarksDep,
) -> dict[str, Any]:
    doc = await _current(view, marks, charge_point_id, c.settings.read_own_writes_timeout_s)
    if doc is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"unknown charge point {charge_point_id!r}", 404
        )
    return envelope(shown(doc))


@router.delete("/{charge_point_id}")
async def deregister_charge_point(
    charge_point_id: ChargePointIdPath,
    c: ContainerDep,
    view: ChargePointViewDep,
    marks: WriteMarksDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    s = c.settings
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    doc = await _current(view, marks, charge_point_id, s.read_own_writes_timeout_s)
    try:
        event = plan_deregister(
            charge_point_id, bool(doc and doc.get("registered")), Origin(us, correlation_id), now
        )
    except RefusedError as exc:
        raise OcpiError(exc.status, exc.message, exc.http_status) from exc
    await _record(event, event_log, marks)
    return envelope()
