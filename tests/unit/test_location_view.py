"""The pure fold behind the MongoDB location view."""

from datetime import timedelta

from projections.mongo.locations import apply, public
from projections.mysql.chargers import rows_for
from schemas.ocpi.locations import EvseStatus as S
from tests.unit.factories import T0, resolved


def fold(records):  # type: ignore[no-untyped-def]
    doc = None
    for rec in records:
        doc = apply(doc, rec)
    return doc


def test_builds_a_location_with_its_evses() -> None:
    doc = fold(
        [
            resolved(S.AVAILABLE, evse_uid="E1", offset=0),
            resolved(S.CHARGING, evse_uid="E2", offset=1, at=T0 + timedelta(seconds=5)),
        ]
    )
    assert public(doc) == {
        "country_code": "NL",
        "party_id": "ABC",
        "id": "LOC1",
        "evses": [
            {"uid": "E1", "status": "AVAILABLE", "last_updated": "2026-01-01T12:00:00Z"},
            {"uid": "E2", "status": "CHARGING", "last_updated": "2026-01-01T12:00:05Z"},
        ],
        "last_updated": "2026-01-01T12:00:05Z",  # an EVSE write bumps its location
    }
    assert doc["_positions"] == {"ocpi_evse-status_v1@0": 1}


def test_redelivery_changes_nothing() -> None:
    records = [resolved(S.AVAILABLE, offset=3), resolved(S.CHARGING, offset=4)]
    once = fold(records)
    assert apply(once, records[0]) is once  # already applied: untouched
    assert fold(records + records) == once


def test_evse_uid_matches_case_insensitively() -> None:
    doc = fold(
        [
            resolved(S.AVAILABLE, evse_uid="e1", offset=0),
            resolved(S.CHARGING, evse_uid="E1", offset=1),
        ]
    )
    assert [(e["uid"], e["status"]) for e in doc["evses"]] == [("e1", "CHARGING")]


def test_charger_rows_keep_the_newest_record_per_evse() -> None:
    rows = rows_for(
        [
            resolved(S.CHARGING, evse_uid="E1", offset=7),
            resolved(S.AVAILABLE, evse_uid="E1", offset=5),
            resolved(S.BLOCKED, evse_uid="E2", offset=6),
        ]
    )
    assert {(r["evse_uid"], r["status"], r["status_offset"]) for r in rows} == {
        ("E1", "CHARGING", 7),
        ("E2", "BLOCKED", 6),
    }
