"""The state of one location, folded from its events: what every location
view (MongoDB, MySQL) is built from. Pure: no I/O, no clock.

Two things are kept apart, because they come from different topics and so in
no guaranteed order relative to each other:

* ``asserted``: the OCPI Location as its owner said it, PUT and PATCH events
  merged with the rules of ``schemas.ocpi.merge``;
* ``statuses``: per EVSE (folded uid), the status the platform resolved from
  every signal (``EvseStatusResolved``, see processors/evse_status.py).

``served`` combines them into the object we show. A write older than the
object it targets is not applied (docs/adr/0004); a write to an object that
does not exist (a PATCH before any PUT, a Connector of an unknown EVSE) is
not applied either: the API refuses those, so they reach the log only through
a race with a concurrent delete, and a later PUT repairs them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.events import EvseStatusResolved, LocationObjectPatched, LocationObjectPut
from schemas.events.locations import ObjectLevel
from schemas.ocpi import merge
from schemas.ocpi.common import fold, format_ocpi_datetime, parse_ocpi_datetime

Json = dict[str, Any]


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
    (``date_from``) see it."""
    if state.asserted is None:
        return None
    location = copy.deepcopy(state.asserted)
    for evse in location.get("evses") or ():
        resolved = state.statuses.get(fold(str(evse.get("uid", ""))))
        if resolved is None:
            continue
        at = parse_ocpi_datetime(resolved["last_updated"])
        own = parse_ocpi_datetime(evse["last_updated"])
        if at < own:
            continue  # the owner said something newer
        evse["status"] = resolved["status"]
        if at > own:
            evse["last_updated"] = resolved["last_updated"]
    stamps = [location["last_updated"], *(e["last_updated"] for e in location.get("evses") or ())]
    location["last_updated"] = format_ocpi_datetime(max(parse_ocpi_datetime(s) for s in stamps))
    return location


def sort_stamp(value: str | datetime) -> str:
    """A fixed-width UTC text of an OCPI DateTime that sorts in time order
    (the OCPI form drops zero milliseconds, so it does not)."""
    instant = parse_ocpi_datetime(value) if isinstance(value, str) else value
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
