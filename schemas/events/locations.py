"""Events of the Locations slice.

Topic ``ocpi.locations.v1`` carries what parties assert about locations;
``ocpi.evse-status.v1`` carries the status the platform resolves from all
signals. Both are keyed by the location's aggregate key, so every event about
one location (and its EVSEs) keeps its order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.events.envelope import EventMeta
from schemas.ocpi.common import DateTime, fold
from schemas.ocpi.locations import EvseStatus


def location_key(country_code: str, party_id: str, location_id: str) -> str:
    """Aggregate key of a location: the owning party and the id, folded
    (CiString compares case-insensitively)."""
    return "/".join(fold(part) for part in (country_code, party_id, location_id))


def evse_key(country_code: str, party_id: str, location_id: str, evse_uid: str) -> str:
    return f"{location_key(country_code, party_id, location_id)}/{fold(evse_uid)}"


class EvseRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)

    @property
    def evse_key(self) -> str:
        return evse_key(self.country_code, self.party_id, self.location_id, self.evse_uid)


class EvseStatusReportedPayload(EvseRef):
    status: EvseStatus
    last_updated: DateTime


class EvseStatusReported(EventMeta):
    """A party (a partner CPO over OCPI, or a charger) reported an EVSE's status."""

    event_type: Literal["EvseStatusReported"] = "EvseStatusReported"
    schema_version: Literal[1] = 1
    payload: EvseStatusReportedPayload


class EvseStatusResolvedPayload(EvseRef):
    status: EvseStatus
    last_updated: DateTime
    reported_status: EvseStatus | None


class EvseStatusResolved(EventMeta):
    """The platform resolved the one status an EVSE shows from every signal it
    has (priority: faulted > charging > reserved > occupied > available)."""

    event_type: Literal["EvseStatusResolved"] = "EvseStatusResolved"
    schema_version: Literal[1] = 1
    payload: EvseStatusResolvedPayload
