"""Pushing the status our EVSEs show (processors/evse_status_push.py): a
charger's fault, resolved by processors/evse_status.py, becomes the EVSE-level
status PATCH every Locations Receiver gets; partners' EVSEs are not pushed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from processors.evse_status import (
    ConnectorSignal,
    EvseSignals,
    decide_connector,
)
from processors.evse_status_push import EVSE_STATUS_PUSH, plan_evse_status
from processors.push import LOCATIONS_PUSH
from schemas.events import EvseStatusReported, EvseStatusResolved, Party
from schemas.events.locations import EvseRef, EvseStatusReportedPayload
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
