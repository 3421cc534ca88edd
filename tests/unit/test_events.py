"""The event envelope: round trip, immutability, discriminated parsing."""

import json

import pytest
from pydantic import ValidationError

from producers.locations import ReportEvseStatus, decide_report_evse_status
from schemas.events import EvseStatusReported, Party, parse_event, serialize_event
from schemas.ocpi.locations import EvseStatus, EvseStatusPatch
from schemas.topics import CATALOGUE, topic_for
from tests.unit.factories import T0


def reported() -> EvseStatusReported:
    command = ReportEvseStatus(
        country_code="nl",
        party_id="abc",
        location_id="Loc-1",
        evse_uid="Evse-1",
        patch=EvseStatusPatch(status=EvseStatus.CHARGING, last_updated=T0),
        source=Party(country_code="NL", party_id="ABC"),
        correlation_id="corr-1",
    )
    [event] = decide_report_evse_status(command, T0)
    return event


def test_round_trip_through_json() -> None:
    event = reported()
    assert parse_event(serialize_event(event)) == event
    body = json.loads(serialize_event(event))
    assert body["event_type"] == "EvseStatusReported"
    assert body["schema_version"] == 1
    assert body["aggregate_key"] == "NL/ABC/LOC-1"  # folded: one key per object
    assert body["payload"]["location_id"] == "Loc-1"  # stored as received


def test_events_are_frozen() -> None:
    event = reported()
    with pytest.raises(ValidationError):
        event.correlation_id = "other"  # type: ignore[misc]


def test_unknown_event_types_and_extra_fields_are_refused() -> None:
    body = json.loads(serialize_event(reported()))
    with pytest.raises(ValidationError):
        parse_event(json.dumps({**body, "event_type": "Nope"}))
    with pytest.raises(ValidationError):
        parse_event(json.dumps({**body, "surprise": 1}))


def test_every_event_type_has_one_topic_kept_forever() -> None:
    names = [t.name for t in CATALOGUE]
    assert len(names) == len(set(names))
    assert topic_for("EvseStatusReported").name == "ocpi.locations.v1"
    assert topic_for("EvseStatusResolved").name == "ocpi.evse-status.v1"
    for spec in CATALOGUE:
        assert spec.config["retention.ms"] == "-1"
        assert spec.config["retention.bytes"] == "-1"
