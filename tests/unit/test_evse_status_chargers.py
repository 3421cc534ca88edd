"""Our chargers' facts as EVSE status signals: a running transaction shows
CHARGING, a held reservation RESERVED, by the same priority as every other
signal (processors/evse_status.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.evse_status import (
    EvseSignals,
    charger_signals_of,
    decide_charger,
    resolve_status,
)
from schemas.events import (
    MeterValuesSampled,
    Party,
    ReservationEnded,
    ReservationMade,
    TransactionStarted,
    TransactionStopped,
)
from schemas.events.chargers import (
    MeterValuesSampledPayload,
    ReservationEndedPayload,
    ReservationMadePayload,
    TokenIdentity,
    TransactionStartedPayload,
    TransactionStoppedPayload,
)
from schemas.ocpi.locations import EvseStatus as S
from schemas.ocpi.sessions import AuthMethod

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
WHERE = {"country_code": "ZZ", "party_id": "HUB", "location_id": "DEPOT", "evse_uid": "E1"}
TOKEN = TokenIdentity(
    uid="CARD-1", type="RFID", country_code="NL", party_id="PEE", contract_id="NL-PEE-1"
)


def _meta(minute: int) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minute)
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": "ZZ/HUB/DEPOT",
        "occurred_at": at,
        "recorded_at": at,
        "source": Party(country_code="ZZ", party_id="HUB"),
        "correlation_id": "c",
    }


def started(session: str, minute: int) -> TransactionStarted:
    return TransactionStarted(
        **_meta(minute),
        payload=TransactionStartedPayload(
            **WHERE,
            connector_id="1",
            session_id=session,
            transaction_id=f"TX-{session}",
            token=TOKEN,
            authorized=True,
            auth_method=AuthMethod.WHITELIST,
            meter_start_wh=0,
            at=T0 + timedelta(minutes=minute),
        ),
    )


def stopped(session: str, minute: int) -> TransactionStopped:
    return TransactionStopped(
        **_meta(minute),
        payload=TransactionStoppedPayload(
            **WHERE,
            connector_id="1",
            session_id=session,
            transaction_id=f"TX-{session}",
            meter_stop_wh=5000,
            at=T0 + timedelta(minutes=minute),
        ),
    )


def reserved(session: str, minute: int, evse_uid: str = "E1") -> ReservationMade:
    return ReservationMade(
        **_meta(minute),
        payload=ReservationMadePayload(
            **{**WHERE, "evse_uid": evse_uid},
            connector_id="1" if evse_uid != "#NA" else "#NA",
            session_id=session,
            reservation_id=f"R-{session}",
            token=TOKEN,
            expires_at=T0 + timedelta(hours=1),
            at=T0 + timedelta(minutes=minute),
        ),
    )


def reservation_ended(session: str, minute: int) -> ReservationEnded:
    return ReservationEnded(
        **_meta(minute),
        payload=ReservationEndedPayload(
            **WHERE,
            connector_id="1",
            session_id=session,
            reservation_id=f"R-{session}",
            reason="EXPIRED",
            at=T0 + timedelta(minutes=minute),
        ),
    )


def run(events: list[Any], start: EvseSignals) -> tuple[EvseSignals, list[S]]:
    """Fold facts through the decision; the statuses it emitted, in order."""
    signals, shown = start, []
    for event in events:
        for signal in charger_signals_of(event):
            signals, out = decide_charger(signals, signal, event, T0)
            shown += [o.payload.status for o in out]
    return signals, shown


AVAILABLE_AT_7 = EvseSignals(reported_status=S.AVAILABLE, reported_at=T0 - timedelta(hours=1))

# facts in the charger's order -> statuses emitted, status shown at the end
CASES = [
    ([started("S1", 0)], [S.CHARGING], S.CHARGING),
    ([started("S1", 0), stopped("S1", 30)], [S.CHARGING, S.AVAILABLE], S.AVAILABLE),
    # a second connector of the same EVSE keeps it charging until both stop
    (
        [started("S1", 0), started("S2", 5), stopped("S1", 30)],
        [S.CHARGING],
        S.CHARGING,
    ),
    ([reserved("R1", 0)], [S.RESERVED], S.RESERVED),
    ([reserved("R1", 0), reservation_ended("R1", 60)], [S.RESERVED, S.AVAILABLE], S.AVAILABLE),
    # the reserved session starts: the reservation is used, charging wins
    (
        [reserved("R1", 0), started("R1", 10), stopped("R1", 40)],
        [S.RESERVED, S.CHARGING, S.AVAILABLE],
        S.AVAILABLE,
    ),
    # another driver's reservation outlives a charge
    (
        [started("S1", 0), reserved("R2", 20), stopped("S1", 30)],
        [S.CHARGING, S.RESERVED],
        S.RESERVED,
    ),
    # redelivered facts change nothing
    ([started("S1", 0), started("S1", 0)], [S.CHARGING], S.CHARGING),
    # a reservation of no EVSE in particular says nothing about this one
    ([reserved("R1", 0, evse_uid="#NA")], [], S.AVAILABLE),
]


@pytest.mark.parametrize(("events", "emitted", "final"), CASES)
def test_charger_facts_resolve_by_priority(events: list[Any], emitted: list[S], final: S) -> None:
    signals, shown = run(events, AVAILABLE_AT_7)
    assert shown == emitted
    assert resolve_status(signals) == final


def test_a_faulted_evse_stays_faulted_while_a_transaction_runs() -> None:
    faulted = EvseSignals(reported_status=S.OUTOFORDER, reported_at=T0)
    signals, shown = run([started("S1", 1)], faulted)
    assert shown == [] and signals.session_active


def test_meter_values_are_not_status_signals() -> None:
    sample = MeterValuesSampled(
        **_meta(3),
        payload=MeterValuesSampledPayload(
            **WHERE,
            connector_id="1",
            session_id="S1",
            transaction_id="TX-S1",
            meter_wh=1000,
            at=T0 + timedelta(minutes=3),
        ),
    )
    assert charger_signals_of(sample) == []


def test_the_resolution_is_never_stamped_before_the_owners_last_word() -> None:
    later_word = EvseSignals(reported_status=S.AVAILABLE, reported_at=T0 + timedelta(hours=2))
    event = started("S1", 0)
    [signal] = charger_signals_of(event)
    _, [resolved] = decide_charger(later_word, signal, event, T0)
    assert resolved.payload.last_updated == T0 + timedelta(hours=2)
    assert resolved.payload.reported_status is S.AVAILABLE


def test_the_resolution_id_is_derived_from_the_fact() -> None:
    event = started("S1", 0)
    [signal] = charger_signals_of(event)
    _, [first] = decide_charger(AVAILABLE_AT_7, signal, event, T0)
    _, [again] = decide_charger(AVAILABLE_AT_7, signal, event, T0 + timedelta(seconds=9))
    assert first.event_id == again.event_id
    assert first.causation_id == event.event_id


def test_session_ids_compare_folded() -> None:
    # OCPI ids are CiStrings: a stop of "S1" ends the session started as "s1".
    signals, shown = run([started("s1", 0), stopped("S1", 30)], AVAILABLE_AT_7)
    assert signals.sessions == () and shown == [S.CHARGING, S.AVAILABLE]
