"""Decisions of the Locations slice: requests in, events out. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.events import EvseStatusReported, Party, new_event_id
from schemas.events.locations import EvseStatusReportedPayload, location_key
from schemas.ocpi.locations import EvseStatusPatch


@dataclass(frozen=True)
class ReportEvseStatus:
    """A party's order to record an EVSE status (the OCPI PATCH, as a command)."""

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str
    patch: EvseStatusPatch
    source: Party
    correlation_id: str


def decide_report_evse_status(command: ReportEvseStatus, now: datetime) -> list[EvseStatusReported]:
    """Every well-formed report is recorded, even one older than what we hold:
    the log keeps what was said; which report wins is the processors' call."""
    return [
        EvseStatusReported(
            event_id=new_event_id(),
            aggregate_key=location_key(command.country_code, command.party_id, command.location_id),
            occurred_at=command.patch.last_updated,
            recorded_at=now,
            source=command.source,
            correlation_id=command.correlation_id,
            payload=EvseStatusReportedPayload(
                country_code=command.country_code,
                party_id=command.party_id,
                location_id=command.location_id,
                evse_uid=command.evse_uid,
                status=command.patch.status,
                last_updated=command.patch.last_updated,
            ),
        )
    ]
