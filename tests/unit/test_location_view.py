"""The pure fold behind the location views: PUT/PATCH merge, stale writes,
resolved statuses from the other topic, idempotency."""

import copy
from datetime import timedelta
from typing import Any

from producers.locations import LocationState, evolve, served
from projections.mongo.locations import apply
from projections.position import Record
from schemas.ocpi.common import sort_stamp
from schemas.ocpi.locations import EvseStatus as S
from tests.ocpi_objects import connector, evse, location
from tests.unit.factories import T0, patch, put, resolved

LATER = "2026-01-01T12:10:00Z"
EARLIER = "2026-01-01T11:00:00Z"


def fold(records: list[Record[Any]]) -> Any:
    doc = None
    for offset, rec in enumerate(records):
        doc = apply(doc, Record(rec.topic, rec.partition, offset, rec.event))
    return doc


def test_a_put_location_is_served_as_put() -> None:
    doc = fold([put(location())])
    assert doc["location"] == location()
    assert doc["_id"] == "NL/ABC/LOC1"
    assert doc["_ts"] == "2026-01-01T12:00:00.000000Z"
    assert doc["_positions"] == {"ocpi_locations_v1@0": 0}


def test_redelivery_changes_nothing() -> None:
    records = [put(location()), patch({"name": "Central", "last_updated": LATER}, offset=1)]
    once = fold(records)
    assert apply(once, Record("ocpi.locations.v1", 0, 1, records[1].event)) is once
    assert fold(records + records)["location"] == once["location"]


def test_an_evse_patch_merges_and_bumps_the_location() -> None:
    doc = fold(
        [put(location()), patch({"status": "CHARGING", "last_updated": LATER}, evse_uid="evse1")]
    )
    [one] = doc["location"]["evses"]
    assert (one["uid"], one["status"], one["last_updated"]) == ("EVSE1", "CHARGING", LATER)
    assert one["connectors"] == [connector()]  # absent fields unchanged
    assert doc["location"]["last_updated"] == LATER


def test_a_null_clears_and_arrays_are_replaced() -> None:
    doc = fold(
        [
            put(location(evses=[evse(floor_level="-1")])),
            patch({"floor_level": None, "last_updated": LATER}, evse_uid="EVSE1"),
            patch({"facilities": ["CAFE"], "last_updated": LATER}),
        ]
    )
    assert "floor_level" not in doc["location"]["evses"][0]
    assert doc["location"]["facilities"] == ["CAFE"]


def test_a_stale_write_is_recorded_but_not_applied() -> None:
    doc = fold(
        [
            put(location(at=LATER)),
            patch({"name": "old news", "last_updated": EARLIER}),
            put(location(name="older copy", at=EARLIER)),
            patch({"status": "OUTOFORDER", "last_updated": EARLIER}, evse_uid="EVSE1"),
        ]
    )
    assert doc["location"] == location(at=LATER)
    assert doc["_positions"] == {"ocpi_locations_v1@0": 3}  # every record counted


def test_connector_writes_bump_evse_and_location() -> None:
    doc = fold(
        [
            put(location()),
            put(connector("2", at=LATER), evse_uid="EVSE1", connector_id="2"),
        ]
    )
    [one] = doc["location"]["evses"]
    assert [c["id"] for c in one["connectors"]] == ["1", "2"]
    assert one["last_updated"] == doc["location"]["last_updated"] == LATER


def test_writes_to_objects_we_do_not_hold_change_nothing() -> None:
    doc = fold(
        [
            patch({"name": "x", "last_updated": LATER}),  # PATCH before any PUT
            put(evse("E9"), evse_uid="E9"),  # an EVSE of an unknown location
        ]
    )
    assert doc["location"] is None and doc["_ts"] is None
    doc = fold([put(location()), put(connector("1"), evse_uid="E9", connector_id="1")])
    assert doc["location"] == location()


def test_the_resolved_status_is_shown_and_a_newer_one_bumps_timestamps() -> None:
    later = T0 + timedelta(minutes=10)
    doc = fold([put(location()), resolved(S.OUTOFORDER, evse_uid="evse1", at=later)])
    [one] = doc["location"]["evses"]
    assert (one["status"], one["last_updated"]) == ("OUTOFORDER", LATER)
    assert doc["location"]["last_updated"] == LATER
    assert doc["_ts"] == sort_stamp(LATER)


def test_the_owner_saying_something_newer_wins_until_the_processor_catches_up() -> None:
    doc = fold(
        [
            put(location()),
            resolved(S.CHARGING, evse_uid="EVSE1", at=T0),
            patch({"status": "AVAILABLE", "last_updated": LATER}, evse_uid="EVSE1"),
        ]
    )
    assert doc["location"]["evses"][0]["status"] == "AVAILABLE"


def test_topics_may_interleave_in_any_order() -> None:
    status = resolved(S.CHARGING, evse_uid="EVSE1", at=T0)
    first = fold([put(location()), status])
    second = fold([status, put(location())])
    assert first["location"] == second["location"]
    assert first["location"]["evses"][0]["status"] == "CHARGING"


def test_an_older_resolved_status_never_replaces_a_newer_one() -> None:
    state = LocationState()
    for rec in (
        put(location()),
        resolved(S.CHARGING, at=T0 + timedelta(minutes=1)),
        resolved(S.AVAILABLE, at=T0),
    ):
        state = evolve(state, rec.event)
    shown = served(state)
    assert shown is not None and shown["evses"][0]["status"] == "CHARGING"


def test_sort_stamps_sort_in_time_order_unlike_ocpi_text() -> None:
    assert "2026-01-01T12:00:00.500Z" < "2026-01-01T12:00:00Z"  # the OCPI form does not
    assert sort_stamp("2026-01-01T12:00:00.500Z") > sort_stamp("2026-01-01T12:00:00Z")


def test_serving_a_location_leaves_its_state_as_it_was() -> None:
    # served() copies only the location and the EVSEs it changes; the rest
    # is shared with the state, so it must never write into it.
    state = LocationState()
    for rec in (
        put(location(evses=[evse("EVSE1"), evse("EVSE2")])),
        resolved(S.CHARGING, evse_uid="EVSE1", at=T0 + timedelta(hours=1)),
    ):
        state = evolve(state, rec.event)
    assert state.asserted is not None
    before = copy.deepcopy(state.asserted)
    shown = served(state)
    assert shown is not None
    assert [e["status"] for e in shown["evses"]] == ["CHARGING", "AVAILABLE"]
    assert shown["last_updated"] == shown["evses"][0]["last_updated"]
    assert state.asserted == before
    assert state.asserted["evses"][0]["status"] == "AVAILABLE"
    assert served(state) == shown
