"""Small builders of events for unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from projections.position import Record
from schemas.events import EvseStatusResolved, Party
from schemas.events.locations import EvseStatusResolvedPayload, location_key
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
