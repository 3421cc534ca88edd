"""What chargers report of their connectors (OCPP StatusNotification, as
``ConnectorStatusReported``) as EVSE status signals, by the same priority
as every other signal: a fault outranks a charge (OUTOFORDER), Unavailable
is INOPERATIVE, a plugged-in car without a charge is BLOCKED, Available
clears faults and occupancy (processors/evse_status.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from processors.evse_status import (
    EvseSignals,
    charger_signals_of,
    connector_signals_of,
    decide_charger,
    decide_connector,
    resolve_status,
)
from schemas.events import ConnectorStatusReported
from schemas.events.chargers import ConnectorStatusReportedPayload
from schemas.ocpi.locations import EvseStatus as S
from tests.unit.test_evse_status_chargers import T0, WHERE, _meta, started, stopped


def status(value: str, minute: int) -> ConnectorStatusReported:
    return ConnectorStatusReported(
        **_meta(minute),
        payload=ConnectorStatusReportedPayload(
            **WHERE,
            connector_id="1",
            charge_point_id="CP-1",
            ocpp_connector_id=1,
            status=value,  # type: ignore[arg-type]
            at=T0 + timedelta(minutes=minute),
        ),
    )


def run(events: list[Any], start: EvseSignals) -> tuple[EvseSignals, list[S]]:
    signals, shown = start, []
    for event in events:
        for signal in charger_signals_of(event):
            signals, out = decide_charger(signals, signal, event, T0)
            shown += [o.payload.status for o in out]
        for connector in connector_signals_of(event):
            signals, out = decide_connector(signals, connector, event, T0)
            shown += [o.payload.status for o in out]
    return signals, shown


AVAILABLE = EvseSignals(reported_status=S.AVAILABLE, reported_at=T0 - timedelta(hours=1))
UNKNOWN = EvseSignals(reported_status=S.UNKNOWN, reported_at=T0 - timedelta(hours=1))

# reports in the charger's order -> statuses emitted, status shown at the end
CASES: list[tuple[Any, ...]] = [
    ([status("Available", 0)], [], S.AVAILABLE),
    ([status("Faulted", 0)], [S.OUTOFORDER], S.OUTOFORDER),
    ([status("Faulted", 0), status("Available", 5)], [S.OUTOFORDER, S.AVAILABLE], S.AVAILABLE),
    ([status("Unavailable", 0)], [S.INOPERATIVE], S.INOPERATIVE),
    ([status("Unavailable", 0), status("Available", 1)], [S.INOPERATIVE, S.AVAILABLE], S.AVAILABLE),
    ([status("Preparing", 0)], [S.BLOCKED], S.BLOCKED),
    ([status("Preparing", 0), status("Available", 2)], [S.BLOCKED, S.AVAILABLE], S.AVAILABLE),
    # a charge: occupied, then charging; finishing keeps the car there
    (
        [status("Preparing", 0), started("S1", 1), status("Charging", 1), stopped("S1", 30)],
        [S.BLOCKED, S.CHARGING, S.BLOCKED],
        S.BLOCKED,
    ),
    # faulted during a charge: OUTOFORDER (faulted > charging), then back
    (
        [started("S1", 0), status("Charging", 0), status("Faulted", 10), status("Charging", 12)],
        [S.CHARGING, S.OUTOFORDER, S.CHARGING],
        S.CHARGING,
    ),
    (
        [started("S1", 0), status("Faulted", 10), status("Available", 12)],
        [S.CHARGING, S.OUTOFORDER, S.CHARGING],
        S.CHARGING,
    ),
    # a fault keeps the car's occupancy
    (
        [status("Preparing", 0), status("Faulted", 1), status("Reserved", 2)],
        [S.BLOCKED, S.OUTOFORDER, S.AVAILABLE],
        S.AVAILABLE,
    ),
    # Reserved alone is not a reservation (ReservationMade says that)
    ([status("Reserved", 0)], [], S.AVAILABLE),
    # a charger's Available shows where the owner said nothing useful
    ([status("Available", 0)], [S.AVAILABLE], S.AVAILABLE, UNKNOWN),
    (
        [status("Faulted", 0), status("Available", 1)],
        [S.OUTOFORDER, S.AVAILABLE],
        S.AVAILABLE,
        UNKNOWN,
    ),
    # ... but never over the owner's own INOPERATIVE
    (
        [status("Available", 0)],
        [],
        S.INOPERATIVE,
        EvseSignals(reported_status=S.INOPERATIVE, reported_at=T0),
    ),
    # redelivery changes nothing
    ([status("Faulted", 0), status("Faulted", 0)], [S.OUTOFORDER], S.OUTOFORDER),
]


@pytest.mark.parametrize("case", CASES)
def test_connector_reports_resolve_by_priority(case: tuple[Any, ...]) -> None:
    events, emitted, final, *start = case
    signals, shown = run(events, start[0] if start else AVAILABLE)
    assert shown == emitted
    assert resolve_status(signals) == final


def test_an_owner_set_lifecycle_status_wins_over_connector_reports() -> None:
    removed = EvseSignals(reported_status=S.REMOVED, reported_at=T0)
    signals, shown = run([status("Faulted", 1)], removed)
    assert shown == [] and resolve_status(signals) is S.REMOVED


def test_connector_reports_are_not_transaction_facts_and_vice_versa() -> None:
    assert charger_signals_of(status("Charging", 0)) == []
    assert connector_signals_of(started("S1", 0)) == []


def test_a_resolved_status_says_which_signal_made_it() -> None:
    """The status history tells a charger's doing from the owner's
    (docs/adr/0038): the processor marks what it resolved from."""
    from processors.evse_status import StatusReport, decide
    from schemas.events import serialize_event
    from schemas.events.locations import EvseRef

    fault = status("Faulted", 0)
    _, [by_charger] = decide_connector(AVAILABLE, connector_signals_of(fault)[0], fault, T0)
    assert by_charger.payload.cause == "charger"
    start = started("S1", 1)
    _, [by_trx] = decide_charger(AVAILABLE, charger_signals_of(start)[0], start, T0)
    assert by_trx.payload.cause == "charger"
    ref = EvseRef(**WHERE)
    owner = StatusReport(ref, S.BLOCKED, T0)
    _, [by_owner] = decide(AVAILABLE, owner, fault, T0)
    assert by_owner.payload.cause == "object"  # not a status-only statement
    # An event resolved before the field existed keeps its exact JSON form.
    old = by_owner.model_copy(
        update={"payload": by_owner.payload.model_copy(update={"cause": None})}
    )
    assert b'"cause"' not in serialize_event(old)
    assert b'"cause":"charger"' in serialize_event(by_charger)
