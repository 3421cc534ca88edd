"""The Locations slice: a location's state, the decisions on writes to it,
and the fold of its events. Pure: no I/O, no clock.

**State.** Two things are kept apart, because they come from different
topics and so in no guaranteed order relative to each other:

* ``asserted``: the OCPI Location as its owner said it, PUT and PATCH events
  merged with the rules of ``schemas.ocpi.merge``;
* ``statuses``: per EVSE (folded uid), the status the platform resolved from
  every signal (``EvseStatusResolved``, see processors/evse_status.py).

``served`` combines them into the object we show. A write older than the
object it targets is not applied (docs/adr/0004); a write to an object that
does not exist (a PATCH before any PUT, a Connector of an unknown EVSE) is
not applied either.

**Decisions.** ``decide`` judges a PUT or PATCH against the state the write
path holds (``producers.write_path``, docs/adr/0022: the location as of its
latest event in the log, ``asserted`` only) and returns the event to record,
or raises ``RefusedError`` with the OCPI status to answer. Every well-formed
write is recorded, an older one too: which write wins is decided by
``evolve`` (docs/adr/0004).

The write path, the MongoDB and MySQL views and the CDR history all fold
with this one ``evolve``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from producers.write_path import Decision, Origin, RefusedError, Slice
from schemas.events import (
    EvseStatusReported,
    EvseStatusResolved,
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
from schemas.ocpi.common import fold, format_ocpi_datetime, parse_ocpi_datetime
from schemas.ocpi.locations import (
    Connector,
    Evse,
    EvseStatusPatch,
    Location,
    to_json,
    validate_patch,
)
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import LOCATIONS

Json = dict[str, Any]

_MODEL: dict[ObjectLevel, type[Location] | type[Evse] | type[Connector]] = {
    ObjectLevel.LOCATION: Location,
    ObjectLevel.EVSE: Evse,
    ObjectLevel.CONNECTOR: Connector,
}


# --- state and fold -------------------------------------------------------------


@dataclass(frozen=True)
class LocationState:
    asserted: Json | None = None
    statuses: Mapping[str, Json] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {"asserted": self.asserted, "statuses": dict(self.statuses)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LocationState:
        if not data:
            return cls()
        return cls(asserted=data.get("asserted"), statuses=dict(data.get("statuses") or {}))


def evolve(state: LocationState, event: object) -> LocationState:
    """The state after one event; the same object when the event changes nothing."""
    if isinstance(event, LocationObjectPut):
        asserted = _put(state.asserted, event)
    elif isinstance(event, LocationObjectPatched):
        asserted = _patch(state.asserted, event)
    elif isinstance(event, EvseStatusResolved):
        return _resolved(state, event)
    else:
        return state
    if asserted is None or asserted == state.asserted:
        return state
    return LocationState(asserted=asserted, statuses=state.statuses)


def _put(current: Json | None, event: LocationObjectPut) -> Json | None:
    p = event.payload
    new = p.object
    if p.level is ObjectLevel.LOCATION:
        if current is not None and merge.is_stale(current.get("last_updated"), p.last_updated):
            return None
        return merge.put_location(new)
    if current is None:
        return None
    assert p.evse_uid is not None
    if p.level is ObjectLevel.EVSE:
        stored = merge.find_evse(current, p.evse_uid)
        if stored is not None and merge.is_stale(stored.get("last_updated"), p.last_updated):
            return None
        return merge.put_evse(current, new)
    assert p.connector_id is not None
    stored_connector = merge.find_connector(current, p.evse_uid, p.connector_id)
    if stored_connector is not None and merge.is_stale(
        stored_connector.get("last_updated"), p.last_updated
    ):
        return None
    try:
        return merge.put_connector(current, p.evse_uid, new)
    except merge.UnknownObjectError:
        return None


def _patch(current: Json | None, event: LocationObjectPatched) -> Json | None:
    p = event.payload
    if current is None:
        return None
    if p.level is ObjectLevel.LOCATION:
        target: Json | None = current
    elif p.level is ObjectLevel.EVSE:
        assert p.evse_uid is not None
        target = merge.find_evse(current, p.evse_uid)
    else:
        assert p.evse_uid is not None and p.connector_id is not None
        target = merge.find_connector(current, p.evse_uid, p.connector_id)
    if target is None or merge.is_stale(target.get("last_updated"), p.last_updated):
        return None
    try:
        if p.level is ObjectLevel.LOCATION:
            return merge.patch_location(current, p.patch)
        if p.level is ObjectLevel.EVSE:
            assert p.evse_uid is not None
            return merge.patch_evse(current, p.evse_uid, p.patch)
        assert p.evse_uid is not None and p.connector_id is not None
        return merge.patch_connector(current, p.evse_uid, p.connector_id, p.patch)
    except merge.MergeError:
        return None


def _resolved(state: LocationState, event: EvseStatusResolved) -> LocationState:
    p = event.payload
    key = fold(p.evse_uid)
    held = state.statuses.get(key)
    if held is not None and parse_ocpi_datetime(held["last_updated"]) > p.last_updated:
        return state
    entry = {"status": p.status.value, "last_updated": format_ocpi_datetime(p.last_updated)}
    if held == entry:
        return state
    return LocationState(asserted=state.asserted, statuses={**state.statuses, key: entry})


def served(state: LocationState) -> Json | None:
    """The OCPI Location we show: the asserted object, each EVSE's status
    replaced by the resolved one unless the owner's word is newer (the
    processor has not caught up with it yet). A resolved status newer than
    the EVSE bumps its and the location's ``last_updated``, so delta pulls
    (``date_from``) see it.

    A new location and a new copy of each EVSE it changes; everything else
    is shared with ``state.asserted``, which nobody changes in place (a
    deep copy per fold was most of a replay's CPU)."""
    if state.asserted is None:
        return None
    location = dict(state.asserted)
    latest = parse_ocpi_datetime(location["last_updated"])
    evses: list[Json] = []
    for evse in location.get("evses") or ():
        own = parse_ocpi_datetime(evse["last_updated"])
        resolved = state.statuses.get(fold(str(evse.get("uid", ""))))
        if resolved is not None:
            at = parse_ocpi_datetime(resolved["last_updated"])
            if at >= own:  # else the owner said something newer
                evse = {**evse, "status": resolved["status"]}
                if at > own:
                    evse["last_updated"] = resolved["last_updated"]
                    own = at
        latest = max(latest, own)
        evses.append(evse)
    if location.get("evses"):
        location["evses"] = evses
    location["last_updated"] = format_ocpi_datetime(latest)
    return location


# --- the slice, as the write path holds it ----------------------------------------


def _evolve_held(state: LocationState | None, event: Any) -> LocationState | None:
    after = evolve(state or LocationState(), event)
    return after if after.asserted is not None or after.statuses else None


def _dump(state: LocationState) -> bytes:
    return orjson.dumps(state.to_json())


def _load(raw: bytes) -> LocationState:
    return LocationState.from_json(orjson.loads(raw))


SLICE: Slice[LocationState] = Slice("locations", LOCATIONS, _evolve_held, _dump, _load)


@dataclass(frozen=True)
class PutObject:
    """An OCPI PUT of the object ``ref`` names (a Location, an EVSE, a Connector)."""

    ref: LocationObjectRef
    body: Any
    origin: Origin


@dataclass(frozen=True)
class PatchObject:
    """An OCPI PATCH of the object ``ref`` names."""

    ref: LocationObjectRef
    body: Any
    origin: Origin


def asserted(state: LocationState | None) -> Json | None:
    """The Location as its owner last said it, from the state the write path
    holds: what a decision about another aggregate checks a place against
    (a charge point's connectors, a charger's fact)."""
    return state.asserted if state is not None else None


def decide(
    state: LocationState | None, command: PutObject | PatchObject, now: datetime
) -> Decision[bool]:
    """The event a write records; the answer says whether a PUT created the
    object (HTTP 201 rather than 200)."""
    current = state.asserted if state is not None else None
    plan = plan_put if isinstance(command, PutObject) else plan_patch
    planned = plan(command.ref, command.body, current, command.origin, now)
    return Decision([planned.event], planned.created)


# --- decisions ----------------------------------------------------------------------


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
    _still_valid(ref, merged)
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


def _still_valid(ref: LocationObjectRef, merged: Json) -> None:
    """The object a PATCH produces must still be valid. Below the Location
    only the patched EVSE (and Connector) changed, and a PATCH cannot touch
    what the Location's own rules span (EVSE uids are identifiers; publish
    fields are the Location's): checking the changed EVSE is the same check
    as the whole Location, at a fraction of the cost of a status update."""
    if ref.level is ObjectLevel.LOCATION:
        Location.model_validate(merged)
        return
    assert ref.evse_uid is not None
    Evse.model_validate(merge.find_evse(merged, ref.evse_uid))


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
