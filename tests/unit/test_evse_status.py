"""The status priority rule, table-driven, and its fold."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from processors.evse_status import (
    EvseSignals,
    StatusReport,
    decide,
    evolve,
    reports_of,
    resolve_status,
)
from schemas.events import EvseStatusReported, Party
from schemas.events.locations import EvseStatusReportedPayload
from schemas.ocpi.locations import EvseStatus as S
from tests.ocpi_objects import AT, connector, evse, location
from tests.unit.factories import patch, put

STATUS_PATCH = {"status": "RESERVED", "last_updated": AT}

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)

# reported, faulted, session, reserved, occupied -> shown
TABLE = [
    (None, False, False, False, False, S.UNKNOWN),
    (S.AVAILABLE, False, False, False, False, S.AVAILABLE),
    (S.AVAILABLE, True, False, False, False, S.OUTOFORDER),
    (S.AVAILABLE, False, True, False, False, S.CHARGING),
    (S.AVAILABLE, False, False, True, False, S.RESERVED),
    (S.AVAILABLE, False, False, False, True, S.BLOCKED),
    (S.AVAILABLE, True, True, True, True, S.OUTOFORDER),  # a faulted charger never shows free
    (S.CHARGING, True, False, False, False, S.OUTOFORDER),  # fault while charging
    (S.AVAILABLE, False, True, True, True, S.CHARGING),
    (S.AVAILABLE, False, False, True, True, S.RESERVED),
    (S.INOPERATIVE, True, False, False, False, S.INOPERATIVE),  # keeps the reported fault
    (S.OUTOFORDER, False, False, False, False, S.OUTOFORDER),
    (S.CHARGING, False, False, False, False, S.CHARGING),
    (S.BLOCKED, False, False, True, False, S.RESERVED),
    (S.UNKNOWN, False, False, False, True, S.BLOCKED),
    (None, False, True, False, False, S.CHARGING),
    (S.REMOVED, True, True, False, False, S.REMOVED),  # life-cycle states win
    (S.PLANNED, False, False, True, False, S.PLANNED),
]


@pytest.mark.parametrize(("reported", "faulted", "session", "reserved", "occupied", "shown"), TABLE)
def test_resolve_status(
    reported: S | None, faulted: bool, session: bool, reserved: bool, occupied: bool, shown: S
) -> None:
    signals = EvseSignals(
        reported_status=reported,
        reported_at=T0 if reported else None,
        charger_faulted=faulted,
        session_active=session,
        reserved=reserved,
        occupied=occupied,
    )
    assert resolve_status(signals) is shown


def report(status: S, at: datetime) -> EvseStatusReported:
    return EvseStatusReported(
        event_id=uuid.uuid4(),
        aggregate_key="NL/ABC/LOC1",
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code="NL", party_id="ABC"),
        correlation_id="c-1",
        payload=EvseStatusReportedPayload(
            country_code="NL",
            party_id="ABC",
            location_id="LOC1",
            evse_uid="EVSE1",
            status=status,
            last_updated=at,
        ),
    )


def stated(event: EvseStatusReported) -> StatusReport:
    [one] = reports_of(event)
    return one


def test_an_older_report_changes_nothing() -> None:
    newer = evolve(EvseSignals(), stated(report(S.CHARGING, T0)))
    assert evolve(newer, stated(report(S.AVAILABLE, T0 - timedelta(seconds=1)))) == newer
    assert (
        evolve(newer, stated(report(S.AVAILABLE, T0 + timedelta(seconds=1)))).reported_status
        is S.AVAILABLE
    )


def test_decide_emits_the_resolved_status_with_a_deterministic_id() -> None:
    event = report(S.OUTOFORDER, T0)
    after, out = decide(EvseSignals(charger_faulted=False), stated(event), event, T0)
    again, out_again = decide(EvseSignals(), stated(event), event, T0 + timedelta(minutes=5))
    assert after == again
    assert [e.payload.status for e in out] == [S.OUTOFORDER]
    assert out[0].event_id == out_again[0].event_id  # a re-run emits the same event
    assert out[0].causation_id == event.event_id
    assert out[0].aggregate_key == event.aggregate_key


def test_decide_emits_nothing_for_a_stale_report() -> None:
    first = report(S.CHARGING, T0)
    state, _ = decide(EvseSignals(), stated(first), first, T0)
    stale = report(S.AVAILABLE, T0 - timedelta(hours=1))
    unchanged, out = decide(state, stated(stale), stale, T0)
    assert unchanged == state
    assert out == []


def test_every_location_write_that_states_a_status_is_a_report() -> None:
    two = location(
        evses=[evse("E1", "CHARGING"), evse("E2", "OUTOFORDER", at="2026-01-01T12:00:07Z")]
    )
    by_location = reports_of(put(two).event)
    assert [(r.ref.evse_uid, r.status, r.last_updated.second) for r in by_location] == [
        ("E1", S.CHARGING, 0),
        ("E2", S.OUTOFORDER, 7),
    ]
    [by_evse] = reports_of(put(evse("e1", "BLOCKED"), evse_uid="E1").event)
    assert (by_evse.ref.evse_key, by_evse.status) == ("NL/ABC/LOC1/E1", S.BLOCKED)
    [by_patch] = reports_of(patch(STATUS_PATCH, evse_uid="E1").event)
    assert by_patch.status is S.RESERVED
    # No status stated: nothing to resolve.
    assert reports_of(patch({"floor_level": "2", "last_updated": AT}, evse_uid="E1").event) == []
    assert reports_of(patch({"name": "x", "last_updated": AT}).event) == []
    assert reports_of(put(connector(), evse_uid="E1", connector_id="1").event) == []


def test_a_location_write_resolves_each_evse_with_its_own_id() -> None:
    event = put(location(evses=[evse("E1"), evse("E2")])).event
    outs = [decide(EvseSignals(), r, event, T0)[1][0] for r in reports_of(event)]
    assert len({o.event_id for o in outs}) == 2
    assert {o.payload.evse_uid for o in outs} == {"E1", "E2"}
    again = [decide(EvseSignals(), r, event, T0)[1][0].event_id for r in reports_of(event)]
    assert again == [o.event_id for o in outs]
