"""Small builders of events for unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from projections.position import Record
from schemas.events import EvseStatusResolved, LocationObjectPatched, LocationObjectPut, Party
from schemas.events.locations import (
    EvseStatusResolvedPayload,
    LocationObjectPatchedPayload,
    LocationObjectPutPayload,
    location_key,
)
from schemas.ocpi.common import parse_ocpi_datetime
from schemas.ocpi.locations import EvseStatus

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def resolved(
    status: EvseStatus,
    *,
    evse_uid: str = "EVSE1",
    location_id: str = "LOC1",
    at: datetime = T0,
    offset: int = 0,
    partition: int = 0,
) -> Record[EvseStatusResolved]:
    event = EvseStatusResolved(
        event_id=uuid.uuid4(),
        aggregate_key=location_key("NL", "ABC", location_id),
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code="NL", party_id="ABC"),
        correlation_id="c-1",
        payload=EvseStatusResolvedPayload(
            country_code="NL",
            party_id="ABC",
            location_id=location_id,
            evse_uid=evse_uid,
            status=status,
            last_updated=at,
            reported_status=status,
        ),
    )
    return Record("ocpi.evse-status.v1", partition, offset, event)


def _ref(
    location_id: str, evse_uid: str | None, connector_id: str | None, country_code: str = "NL"
) -> dict[str, object]:
    return {
        "country_code": country_code,
        "party_id": "ABC",
        "location_id": location_id,
        "evse_uid": evse_uid,
        "connector_id": connector_id,
    }


def put(
    obj: dict[str, object],
    *,
    location_id: str = "LOC1",
    evse_uid: str | None = None,
    connector_id: str | None = None,
    offset: int = 0,
    partition: int = 0,
    country_code: str = "NL",
) -> Record[LocationObjectPut]:
    """A PUT of ``obj`` at the level the ids name, as a record on ocpi.locations.v1."""
    at = parse_ocpi_datetime(str(obj["last_updated"]))
    event = LocationObjectPut(
        event_id=uuid.uuid4(),
        aggregate_key=location_key(country_code, "ABC", location_id),
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code="NL", party_id="ABC"),
        correlation_id="c-1",
        payload=LocationObjectPutPayload(
            **_ref(location_id, evse_uid, connector_id, country_code),  # type: ignore[arg-type]
            object=obj,
            last_updated=at,
        ),
    )
    return Record("ocpi.locations.v1", partition, offset, event)


def patch(
    body: dict[str, object],
    *,
    location_id: str = "LOC1",
    evse_uid: str | None = None,
    connector_id: str | None = None,
    offset: int = 0,
    partition: int = 0,
) -> Record[LocationObjectPatched]:
    at = parse_ocpi_datetime(str(body["last_updated"]))
    event = LocationObjectPatched(
        event_id=uuid.uuid4(),
        aggregate_key=location_key("NL", "ABC", location_id),
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code="NL", party_id="ABC"),
        correlation_id="c-1",
        payload=LocationObjectPatchedPayload(
            **_ref(location_id, evse_uid, connector_id),  # type: ignore[arg-type]
            patch=body,
            last_updated=at,
        ),
    )
    return Record("ocpi.locations.v1", partition, offset, event)
