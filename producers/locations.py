"""Decisions of the Locations slice: requests in, events out.

``plan_put`` and ``plan_patch`` judge a write against the object we hold (the
view, read by the caller) and return the event to record, or raise
``RefusedError`` with the OCPI status to answer. They do no I/O: the HTTP
shells (receiver, ops) and the pull sync read the view, call them and append
the event. Every well-formed write is recorded, an older one too: which write
wins is decided when the events are folded (docs/adr/0004).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.events import (
    EvseStatusReported,
    LocationObjectPatched,
    LocationObjectPut,
    Party,
    new_event_id,
)
from schemas.events.locations import (
    EvseStatusReportedPayload,
    LocationObjectPatchedPayload,
    LocationObjectPutPayload,
    LocationObjectRef,
    ObjectLevel,
    location_key,
)
from schemas.ocpi import merge
from schemas.ocpi.common import fold
from schemas.ocpi.locations import (
    Connector,
    Evse,
    EvseStatusPatch,
    Location,
    to_json,
    validate_patch,
)
from schemas.ocpi.status_codes import OcpiStatus

Json = dict[str, Any]

_MODEL: dict[ObjectLevel, type[Location] | type[Evse] | type[Connector]] = {
    ObjectLevel.LOCATION: Location,
    ObjectLevel.EVSE: Evse,
    ObjectLevel.CONNECTOR: Connector,
}


class RefusedError(Exception):
    """The write is not recorded; answer with this OCPI status."""

    def __init__(self, status: OcpiStatus, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class Origin:
    """Who writes, and the request's correlation id."""

    source: Party
    correlation_id: str


@dataclass(frozen=True)
class Planned:
    event: LocationObjectPut | LocationObjectPatched
    created: bool  # a PUT of an object we did not hold


def plan_put(
    ref: LocationObjectRef,
    body: Any,
    current: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> Planned:
    """A PUT of the object ``ref`` names. ``current`` is the stored Location
    (None if we hold none). Raises ``pydantic.ValidationError`` for a body
    that is not a valid object (OCPI 2001) and ``RefusedError`` otherwise."""
    model = _MODEL[ref.level].model_validate(body)
    obj = to_json(model)
    _same_ids(ref, obj)
    if ref.level is ObjectLevel.LOCATION:
        merged, created = merge.put_location(obj), current is None
    else:
        held = _require(current, ref)
        assert ref.evse_uid is not None
        if ref.level is ObjectLevel.EVSE:
            created = merge.find_evse(held, ref.evse_uid) is None
            merged = merge.put_evse(held, obj)
        else:
            assert ref.connector_id is not None
            _require_evse(held, ref)
            created = merge.find_connector(held, ref.evse_uid, ref.connector_id) is None
            merged = merge.put_connector(held, ref.evse_uid, obj)
    Location.model_validate(merged)  # rules that span the whole object
    event = LocationObjectPut(
        event_id=new_event_id(),
        aggregate_key=ref.location_key,
        occurred_at=model.last_updated,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=LocationObjectPutPayload(
            **ref.model_dump(), object=obj, last_updated=model.last_updated
        ),
    )
    return Planned(event, created)


def plan_patch(
    ref: LocationObjectRef,
    body: Any,
    current: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> Planned:
    """A PATCH of the object ``ref`` names: it must exist (else 2003; the
    sender is to PUT it first), the body is checked field by field, and the
    object it would produce must still be a valid Location."""
    patch = validate_patch(_MODEL[ref.level], body)
    held = _require(current, ref)
    try:
        if ref.level is ObjectLevel.LOCATION:
            merged = merge.patch_location(held, patch)
        elif ref.level is ObjectLevel.EVSE:
            assert ref.evse_uid is not None
            merged = merge.patch_evse(held, ref.evse_uid, patch)
        else:
            assert ref.evse_uid is not None and ref.connector_id is not None
            merged = merge.patch_connector(held, ref.evse_uid, ref.connector_id, patch)
    except merge.UnknownObjectError as exc:
        raise RefusedError(OcpiStatus.UNKNOWN_LOCATION, str(exc)) from exc
    except merge.IdentifierMismatchError as exc:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, str(exc)) from exc
    Location.model_validate(merged)
    event = LocationObjectPatched(
        event_id=new_event_id(),
        aggregate_key=ref.location_key,
        occurred_at=patch.last_updated,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=LocationObjectPatchedPayload(
            **ref.model_dump(), patch=patch.to_json(), last_updated=patch.last_updated
        ),
    )
    return Planned(event, False)


def find(current: Mapping[str, Any] | None, ref: LocationObjectRef) -> Json:
    """The stored object ``ref`` names (for GETs); ``RefusedError`` 2003/404
    when there is none."""
    held = _require(current, ref, http_status=404)
    if ref.evse_uid is None:
        return dict(held)
    evse = _require_evse(held, ref, http_status=404)
    if ref.connector_id is None:
        return evse
    connector = merge.find_connector(held, ref.evse_uid, ref.connector_id)
    if connector is None:
        raise RefusedError(
            OcpiStatus.UNKNOWN_LOCATION, f"unknown connector {ref.connector_id!r}", 404
        )
    return connector


def _require(
    current: Mapping[str, Any] | None, ref: LocationObjectRef, http_status: int = 200
) -> Mapping[str, Any]:
    if current is None:
        raise RefusedError(
            OcpiStatus.UNKNOWN_LOCATION, f"unknown location {ref.location_id!r}", http_status
        )
    return current


def _require_evse(held: Mapping[str, Any], ref: LocationObjectRef, http_status: int = 200) -> Json:
    assert ref.evse_uid is not None
    evse = merge.find_evse(held, ref.evse_uid)
    if evse is None:
        raise RefusedError(
            OcpiStatus.UNKNOWN_LOCATION, f"unknown EVSE {ref.evse_uid!r}", http_status
        )
    return evse


def _same_ids(ref: LocationObjectRef, obj: Json) -> None:
    """Identifiers in a PUT body must name the object of the URL."""
    expected: dict[str, str | None]
    if ref.level is ObjectLevel.LOCATION:
        expected = {
            "country_code": ref.country_code,
            "party_id": ref.party_id,
            "id": ref.location_id,
        }
    elif ref.level is ObjectLevel.EVSE:
        expected = {"uid": ref.evse_uid}
    else:
        expected = {"id": ref.connector_id}
    for name, value in expected.items():
        if fold(str(obj.get(name))) != fold(str(value)):
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"{name} in the body is {obj.get(name)!r}, the URL names {value!r}",
            )


# --- a bare status report (chargers; OCPI clients of the walking skeleton) ---


@dataclass(frozen=True)
class ReportEvseStatus:
    """A charger's (or a party's) statement of one EVSE's status."""

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str
    patch: EvseStatusPatch
    source: Party
    correlation_id: str


def decide_report_evse_status(command: ReportEvseStatus, now: datetime) -> list[EvseStatusReported]:
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
