"""Pushing the status our EVSEs show (processors/evse_status_push.py): a
charger's fault, resolved by processors/evse_status.py, becomes the EVSE-level
status PATCH every Locations Receiver gets; partners' EVSEs are not pushed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from processors.evse_status import (
    ConnectorSignal,
    EvseSignals,
    decide,
    decide_connector,
    reports_of,
)
from processors.evse_status_push import EVSE_STATUS_PUSH, plan_evse_status
from processors.push import LOCATIONS_PUSH
from schemas.events import EvseStatusReported, EvseStatusResolved, LocationObjectPut, Party
from schemas.events.locations import EvseRef, EvseStatusReportedPayload, LocationObjectPutPayload
from schemas.ocpi.locations import EvseStatus

US = Party(country_code="DE", party_id="CHG")
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _cause(cc: str, pid: str) -> EvseStatusReported:
    # Any event will do as the cause: only its ids and times are copied.
    return EvseStatusReported(
        event_id=uuid.uuid4(),
        aggregate_key=f"{cc}/{pid}/LOC 1",
        occurred_at=T0,
        recorded_at=T0,
        source=Party(country_code=cc, party_id=pid),
        correlation_id="c-7",
        payload=EvseStatusReportedPayload(
            country_code=cc,
            party_id=pid,
            location_id="Loc 1",
            evse_uid="EVSE/1",
            status=EvseStatus.AVAILABLE,
            last_updated=T0,
        ),
    )


def _faulted(cc: str, pid: str) -> EvseStatusResolved:
    ref = EvseRef(country_code=cc, party_id=pid, location_id="Loc 1", evse_uid="EVSE/1")
    held = EvseSignals(reported_status=EvseStatus.AVAILABLE, reported_at=T0)
    fault = ConnectorSignal(ref, "Faulted", T0 + timedelta(minutes=3))
    _, [resolved] = decide_connector(held, fault, _cause(cc, pid), T0)
    return resolved


def test_a_charger_driven_status_of_our_evse_is_patched_to_receivers() -> None:
    resolved = _faulted("DE", "CHG")
    request = plan_evse_status(resolved, US)
    assert request is not None
    assert request.method == "PATCH"
    assert request.path == "/DE/CHG/Loc%201/EVSE%2F1"
    assert request.body == {"status": "OUTOFORDER", "last_updated": "2026-06-01T08:03:00Z"}
    assert request.object_key == "DE/CHG/LOC 1/EVSE/1"
    assert request.last_updated == T0 + timedelta(minutes=3)
    assert request.audience is None  # every Locations Receiver
    assert request.event_id == str(resolved.event_id)


def test_a_partners_evse_and_other_events_are_not_pushed() -> None:
    assert plan_evse_status(_faulted("NL", "PEE"), US) is None
    assert plan_evse_status(_cause("DE", "CHG"), US) is None


def test_the_module_reads_the_resolved_statuses_on_lanes_of_its_own() -> None:
    assert EVSE_STATUS_PUSH.topic == "ocpi.evse-status.v1"
    assert EVSE_STATUS_PUSH.event_types == frozenset({"EvseStatusResolved"})
    assert EVSE_STATUS_PUSH.module_id == LOCATIONS_PUSH.module_id
    assert EVSE_STATUS_PUSH.group_suffix not in ("", LOCATIONS_PUSH.group_suffix)
    assert EVSE_STATUS_PUSH.ready_event != LOCATIONS_PUSH.ready_event


def _put_of_evse(status: EvseStatus) -> LocationObjectPut:
    return LocationObjectPut(
        event_id=uuid.uuid4(),
        aggregate_key="DE/CHG/LOC 1",
        occurred_at=T0,
        recorded_at=T0,
        source=US,
        correlation_id="c-8",
        payload=LocationObjectPutPayload(
            country_code="DE",
            party_id="CHG",
            location_id="Loc 1",
            evse_uid="EVSE/1",
            object={
                "uid": "EVSE/1",
                "status": status.value,
                "last_updated": "2026-06-01T08:05:00Z",
            },
            last_updated=T0 + timedelta(minutes=5),
        ),
    )


def test_each_status_change_of_ours_is_pushed_by_one_lane_only() -> None:
    """The owner's PUT carries its status to partners through the locations
    lane; its resolution is pushed only when it differs (a charger's signal
    outranks the owner's word). A status stated alone goes out only here."""
    [report] = reports_of(_put_of_evse(EvseStatus.AVAILABLE))
    # Nothing else known: the resolution repeats the PUT, which went out whole.
    _, [same] = decide(EvseSignals(), report, _put_of_evse(EvseStatus.AVAILABLE), T0)
    assert same.payload.cause == "object" and same.payload.status is EvseStatus.AVAILABLE
    assert plan_evse_status(same, US) is None
    assert LOCATIONS_PUSH.plan(_put_of_evse(EvseStatus.AVAILABLE), US) is not None
    # A transaction runs: the PUT's AVAILABLE is resolved to CHARGING, which
    # partners must be told.
    charging = EvseSignals(session_active=True, sessions=("S1",))
    _, [corrected] = decide(charging, report, _put_of_evse(EvseStatus.AVAILABLE), T0)
    request = plan_evse_status(corrected, US)
    assert request is not None and request.body["status"] == "CHARGING"
    # A bare status statement: the locations lane leaves it, this lane sends it.
    bare = _cause("DE", "CHG")
    assert LOCATIONS_PUSH.plan(bare, US) is None
    [stated] = reports_of(bare)
    _, [alone] = decide(EvseSignals(), stated, bare, T0)
    assert alone.payload.cause == "status"
    assert plan_evse_status(alone, US) is not None
    # A charger's fact is always this lane's.
    assert _faulted("DE", "CHG").payload.cause == "charger"
