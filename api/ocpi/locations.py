"""Locations module, Receiver interface (we as eMSP; mod_locations,
"Receiver Interface"): partners push their locations and EVSE status here.

The walking skeleton carries EVSE status PATCHes; the full object model and
authentication arrive with the OCPI edge.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CorrelationIdDep, EventLogDep, LocationViewDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import CountryCodePath, EvseUidPath, LocationIdPath, PartyIdPath
from producers.locations import ReportEvseStatus, decide_report_evse_status
from schemas.events import Party
from schemas.ocpi.common import fold
from schemas.ocpi.locations import EvseStatusPatch
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(prefix="/ocpi/emsp/2.2.1/locations", tags=["ocpi: locations (receiver)"])


@router.patch("/{country_code}/{party_id}/{location_id}/{evse_uid}")
async def patch_evse(
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    location_id: LocationIdPath,
    evse_uid: EvseUidPath,
    body: EvseStatusPatch,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    command = ReportEvseStatus(
        country_code=country_code,
        party_id=party_id,
        location_id=location_id,
        evse_uid=evse_uid,
        patch=body,
        source=Party(country_code=fold(country_code), party_id=fold(party_id)),
        correlation_id=correlation_id,
    )
    events = decide_report_evse_status(command, now)
    try:
        await event_log.append(events)
    except Exception as exc:
        # Not acknowledged by Kafka: say so, so the partner retries (the PATCH
        # is idempotent) rather than believing it was recorded. An OCPI 3000,
        # not an HTTP error: the request itself was fine (status_codes).
        raise OcpiError(OcpiStatus.SERVER_ERROR, "the update could not be recorded; retry") from exc
    return envelope()


@router.get("/{country_code}/{party_id}/{location_id}")
def get_location(
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    location_id: LocationIdPath,
    locations: LocationViewDep,
) -> dict[str, Any]:
    return envelope(_find(locations, country_code, party_id, location_id))


@router.get("/{country_code}/{party_id}/{location_id}/{evse_uid}")
def get_evse(
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    location_id: LocationIdPath,
    evse_uid: EvseUidPath,
    locations: LocationViewDep,
) -> dict[str, Any]:
    location = _find(locations, country_code, party_id, location_id)
    for evse in location["evses"]:
        if fold(evse["uid"]) == fold(evse_uid):
            return envelope(evse)
    raise OcpiError(OcpiStatus.UNKNOWN_LOCATION, f"unknown EVSE {evse_uid!r}", 404)


def _find(
    locations: LocationViewDep, country_code: str, party_id: str, location_id: str
) -> dict[str, Any]:
    location = locations.get(country_code, party_id, location_id)
    if location is None:
        raise OcpiError(OcpiStatus.UNKNOWN_LOCATION, f"unknown location {location_id!r}", 404)
    return location
