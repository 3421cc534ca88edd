"""Events of the Locations slice.

Topic ``ocpi.locations.v1`` carries what parties assert about locations;
``ocpi.evse-status.v1`` carries the status the platform resolves from all
signals. Both are keyed by the location's aggregate key, so every event about
one location (and its EVSEs) keeps its order.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

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


# What made the platform resolve an EVSE's status again: a write of the
# owner that carried the status with other fields ("object": a PUT, or a
# PATCH of more than the status), an owner's statement of the status alone
# ("status"), or a fact of our own charger ("charger"). None: recorded
# before the field existed.
ResolutionCause = Literal["object", "status", "charger"]


class EvseStatusResolvedPayload(EvseRef):
    status: EvseStatus
    last_updated: DateTime
    reported_status: EvseStatus | None
    # Absent from events resolved before 2026-12-06; left out of the JSON
    # when None, so those keep the exact form they have.
    cause: ResolutionCause | None = None

    @model_serializer(mode="wrap")
    def _leave_out_unknown_cause(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("cause") is None:
            data.pop("cause", None)
        return data


class EvseStatusResolved(EventMeta):
    """The platform resolved the one status an EVSE shows from every signal it
    has (priority: faulted > charging > reserved > occupied > available)."""

    event_type: Literal["EvseStatusResolved"] = "EvseStatusResolved"
    schema_version: Literal[1] = 1
    payload: EvseStatusResolvedPayload


# --- what the owner of a location asserts: PUT and PATCH, at three levels ---


class ObjectLevel(StrEnum):
    """Which object of a location a write is about (the URL's depth)."""

    LOCATION = "LOCATION"
    EVSE = "EVSE"
    CONNECTOR = "CONNECTOR"


class LocationObjectRef(BaseModel):
    """The object a write targets: a Location, one of its EVSEs, or one of an
    EVSE's Connectors. Identifiers as received (CiStrings: compare folded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str | None = None
    connector_id: str | None = None

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> LocationObjectRef:
        if self.connector_id is not None and self.evse_uid is None:
            raise ValueError("a connector is addressed through its EVSE")
        return self

    @property
    def level(self) -> ObjectLevel:
        if self.connector_id is not None:
            return ObjectLevel.CONNECTOR
        if self.evse_uid is not None:
            return ObjectLevel.EVSE
        return ObjectLevel.LOCATION

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)


class LocationObjectPutPayload(LocationObjectRef):
    """``object`` is the complete OCPI object of ``level`` (a Location with its
    EVSEs and Connectors, an EVSE with its Connectors, or a Connector) in the
    JSON form of ``schemas.ocpi.locations``; it passed that model's checks."""

    object: dict[str, Any]
    last_updated: DateTime


class LocationObjectPut(EventMeta):
    """The owner of a location replaced one object of it whole (OCPI PUT)."""

    event_type: Literal["LocationObjectPut"] = "LocationObjectPut"
    schema_version: Literal[1] = 1
    payload: LocationObjectPutPayload


class LocationObjectPatchedPayload(LocationObjectRef):
    """``patch`` holds the fields to change: a field absent is unchanged, a
    field set to ``null`` is cleared, any other value replaces the stored one
    whole (see ``schemas.ocpi.merge``). ``last_updated`` is always in it."""

    patch: dict[str, Any]
    last_updated: DateTime


class LocationObjectPatched(EventMeta):
    """The owner of a location changed some fields of one object (OCPI PATCH)."""

    event_type: Literal["LocationObjectPatched"] = "LocationObjectPatched"
    schema_version: Literal[1] = 1
    payload: LocationObjectPatchedPayload
