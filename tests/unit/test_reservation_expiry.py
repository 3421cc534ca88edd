"""Reservation expiry (processors/reservation_expiry.py, docs/adr/0021): the
pure rule, what the session lifecycle and the EVSE status make of its
decision, the gateway's rule for a reservation past its expiry, and the
Faust shell with its timer (``agent.test_context()``, memory store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
from hypothesis import given
from hypothesis import strategies as st

from processors import evse_status, reservation_expiry
from processors.reservation_expiry import Held, Relevant, decide, evolve, overdue
from processors.session_lifecycle import ChargerFact, Lifecycle, MeterConfig, session_of
from processors.session_lifecycle import evolve as lifecycle_evolve
from producers.ocpp import reservation_usable
from schemas.events import (
    ReservationEnded,
    ReservationExpiryPassed,
    parse_event,
    serialize_event,
)
from schemas.ocpi.locations import EvseStatus
from tests.unit.charger_facts import at, reservation_ended, reserved, started


def run(events: list[Relevant], now: datetime | None = None) -> tuple[Held | None, list[Any]]:
    """Fold events as the agent does; return the entry and what was decided."""
    state: Held | None = None
    decided: list[ReservationEnded] = []
    for event in events:
        ended = decide(state, event, now or at(120))
        if ended is not None:
            decided.append(ended)
        state = evolve(state, event)
    return state, decided


def statement(held: Held, minutes_late: float = 0) -> ReservationExpiryPassed:
    """The timer's statement for a held reservation."""
    now = held.expires_at + timedelta(minutes=minutes_late)
    (passed,) = overdue([held], now)
    return passed


def held_after(*events: Relevant) -> Held:
    state, _ = run(list(events))
    assert state is not None
    return state


# --- the rule -------------------------------------------------------------------


def test_an_unused_reservation_expires_once_at_its_expiry() -> None:
    made = reserved(0, evse_uid="EVSE1", connector_id="1")
    passed = statement(held_after(made), minutes_late=0.1)
    state, decided = run([made, passed, passed])
    assert state is None  # it left the table
    assert len(decided) == 1
    (ended,) = decided
    assert ended.payload.reason == "EXPIRED"
    assert ended.payload.at == at(30)  # when it expired, not when we noticed
    assert ended.occurred_at == at(30)
    assert (ended.payload.session_id, ended.payload.reservation_id) == ("S1", "R1")
    assert (ended.payload.evse_uid, ended.payload.connector_id) == ("EVSE1", "1")
    assert ended.aggregate_key == made.aggregate_key  # into the reservation's partition
    assert ended.causation_id == passed.event_id
    # A re-run (crash before the offset commit) writes the same id.
    _, again = run([made, passed])
    assert again[0].event_id == ended.event_id
    assert parse_event(serialize_event(ended)) == ended


def test_a_used_reservation_never_expires() -> None:
    made = reserved(0)
    passed = statement(held_after(made))
    state, decided = run([made, started(12, 1000), passed])
    assert state is None
    assert decided == []


def test_a_cancelled_reservation_never_expires() -> None:
    made = reserved(0)
    passed = statement(held_after(made))
    cancelled = reservation_ended(5, reason="CANCELLED")
    assert run([made, cancelled, passed]) == (None, [])


def test_a_start_of_another_session_does_not_use_it() -> None:
    made = reserved(0)
    passed = statement(held_after(made))
    _, decided = run([made, started(12, 1000, session_id="OTHER"), passed])
    assert len(decided) == 1


def test_a_replacing_reservation_moves_the_expiry() -> None:
    first = reserved(0, expires_after=30)
    second = reserved(10, expires_after=50, evse_uid="EVSE2", connector_id="1")
    early = statement(held_after(first))  # stated for 08:30, read after the replace
    state, decided = run([first, second, early])
    assert decided == []  # no EXPIRED for the earlier time
    assert state is not None and state.expires_at == at(60)
    late = statement(state)
    assert late.event_id != early.event_id  # a moved expiry is a statement of its own
    state, decided = run([first, second, early, late])
    assert state is None
    assert [(e.payload.at, e.payload.evse_uid) for e in decided] == [(at(60), "EVSE2")]


def test_an_earlier_reservation_read_after_its_replacement_changes_nothing() -> None:
    first = reserved(0, expires_after=30)
    second = reserved(10, expires_after=50)
    assert run([second, first])[0] == run([second])[0]


def test_the_same_reservation_read_twice_is_held_once() -> None:
    made = reserved(0)
    assert run([made, made])[0] == run([made])[0]


def test_an_expiry_statement_without_a_reservation_decides_nothing() -> None:
    made = reserved(0)
    passed = statement(held_after(made))
    assert run([passed]) == (None, [])


def test_the_timer_states_only_expiries_past_their_grace() -> None:
    held = held_after(reserved(0))
    grace = timedelta(seconds=5)
    assert overdue([held], at(30), grace) == []
    assert overdue([held], at(30) + timedelta(seconds=4), grace) == []
    (passed,) = overdue([held], at(30) + timedelta(seconds=5), grace)
    assert passed.payload.expires_at == at(30)
    assert passed.aggregate_key == held.aggregate_key
    # Stated again later: the same id.
    assert overdue([held], at(45), grace)[0].event_id == passed.event_id


@given(
    st.lists(
        st.sampled_from(["stated", "stated", "used", "cancelled", "replaced", "made_again"]),
        max_size=8,
    )
)
def test_at_most_one_expiry_and_only_if_nothing_ended_it_first(steps: list[str]) -> None:
    """Whatever happens after a reservation is made: at most one EXPIRED, and
    one exactly when the current expiry was stated before a use or cancel."""
    made = reserved(0, expires_after=30)
    events: list[Relevant] = [made]
    expected = 0
    live = True  # held, not yet ended
    replaced = False
    for i, step in enumerate(steps):
        state, _ = run(events)
        if step == "stated":
            if state is not None:
                events.append(statement(state))
                if live:
                    expected, live = 1, False
        elif step == "used":
            events.append(started(40 + i, 1000))
            live = False
        elif step == "cancelled":
            events.append(reservation_ended(40 + i, reason="CANCELLED"))
            live = False
        elif step == "replaced" and live and not replaced:
            events.append(reserved(5, expires_after=55))
            replaced = True
        elif step == "made_again" and live:
            events.append(made)  # a duplicate (a replay, or a producer retry)
    _, decided = run(events)
    assert len(decided) == expected


def test_a_late_duplicate_of_the_reservation_can_only_repeat_the_same_expiry() -> None:
    """Read again after its expiry (not something an in-order replay does),
    the reservation is held again; its expiry then repeats the same event id,
    which every reader of the topic folds as the one it already has."""
    made = reserved(0)
    passed = statement(held_after(made))
    state, decided = run([made, passed, made, passed])
    assert state is None
    assert len(decided) == 2 and decided[0] == decided[1]


# --- what the decision does downstream ----------------------------------------------


def test_an_expired_reservation_completes_its_session_and_frees_the_evse() -> None:
    made = reserved(0, evse_uid="EVSE1", connector_id="1")
    _, (expired,) = run([made, statement(held_after(made), minutes_late=0.1)])
    facts: list[ChargerFact] = [made]
    state = Lifecycle()
    for fact in [*facts, expired]:
        state = lifecycle_evolve(state, fact)
    session = session_of(state, MeterConfig())
    assert session is not None
    assert session["status"] == "COMPLETED"
    assert session["end_date_time"] == "2026-04-01T08:30:00Z"
    assert session["charging_periods"][0]["dimensions"] == [
        {"type": "RESERVATION_TIME", "volume": 0.5}
    ]
    signals = evse_status.EvseSignals()
    for event in (made, expired):
        for signal in evse_status.charger_signals_of(event):
            signals = evse_status.apply_charger_signal(signals, signal)
            if event is made:
                assert evse_status.resolve_status(signals) is EvseStatus.RESERVED
    assert not signals.reserved
    assert evse_status.resolve_status(signals) is not EvseStatus.RESERVED


def test_a_replaced_reservation_is_one_session_that_ends_at_the_new_expiry() -> None:
    first = reserved(0, evse_uid="EVSE1", connector_id="1", expires_after=30)
    second = reserved(10, evse_uid="EVSE2", connector_id="2", expires_after=50)
    state = Lifecycle()
    for fact in (first, second):
        state = lifecycle_evolve(state, fact)
    session = session_of(state, MeterConfig())
    assert session is not None
    assert session["status"] == "RESERVATION"
    assert (session["evse_uid"], session["connector_id"]) == ("EVSE2", "2")
    _, (expired,) = run([first, second, statement(held_after(first, second))])
    state = lifecycle_evolve(state, expired)
    session = session_of(state, MeterConfig())
    assert session is not None
    assert session["status"] == "COMPLETED"
    assert session["end_date_time"] == "2026-04-01T09:00:00Z"
    assert session["charging_periods"][0]["dimensions"] == [
        {"type": "RESERVATION_TIME", "volume": 1}
    ]


def test_a_reservation_made_for_a_charging_session_changes_nothing() -> None:
    state = Lifecycle()
    for fact in (started(0, 1000), reserved(5, evse_uid="EVSE2")):
        state = lifecycle_evolve(state, fact)
    session = session_of(state, MeterConfig())
    assert session is not None
    assert session["status"] == "ACTIVE" and session["evse_uid"] == "EVSE1"


# --- the gateway honours a reservation until its expiry ----------------------------


def test_a_remembered_reservation_is_usable_until_its_expiry() -> None:
    expiry = datetime(2026, 4, 1, 8, 30, tzinfo=UTC)
    held = {"session_id": "S1", "expires_at": expiry.isoformat()}
    assert reservation_usable(held, expiry - timedelta(seconds=1))
    assert not reservation_usable(held, expiry)
    assert reservation_usable({"session_id": "S1"}, expiry)  # kept before expiries were
    naive = {"expires_at": "2026-04-01T08:30:00"}
    assert not reservation_usable(naive, expiry)


# --- the Faust shell ------------------------------------------------------------


async def test_agent_and_timer_state_and_decide_the_expiry_once(tmp_path: Path) -> None:
    app: Any = faust.App(
        "test-reservation-expiry", store="memory://", datadir=str(tmp_path), autodiscover=False
    )
    source = app.topic("source", key_type=bytes, value_type=bytes, value_serializer="raw")
    emitted: list[Any] = []

    async def emit(event: Any) -> None:
        emitted.append(event)

    agent, state_expiries = reservation_expiry.register(
        app, source, emit, partitions=1, scan_s=1.0, grace_s=0.0
    )
    table = app.tables["reservation-expiry"]
    now = datetime.now(UTC)
    # Expiries relative to the wall clock the timer reads: S1 past, S2 far
    # ahead, S3 past but used, S4 past but moved far ahead by a replace.
    minutes = (now - at(0)).total_seconds() / 60
    past = reserved(0, session_id="S1", expires_after=minutes - 1)
    ahead = reserved(0, session_id="S2", expires_after=minutes + 60)
    used = reserved(0, session_id="S3", expires_after=minutes - 1)
    moved = reserved(0, session_id="S4", expires_after=minutes - 1)
    async with agent.test_context() as ctx:
        for event in (past, ahead, used, moved):
            await ctx.put(serialize_event(event))
        await ctx.put(b'{"event_type": "ChargerRebooted", "schema_version": 1}')  # skipped
        assert set(table.keys()) == {"ZZ/HUB/S1", "ZZ/HUB/S2", "ZZ/HUB/S3", "ZZ/HUB/S4"}
        await state_expiries()
        await state_expiries()  # stated once until restated
        statements = [e for e in emitted if isinstance(e, ReservationExpiryPassed)]
        assert sorted(e.payload.session_id for e in statements) == ["S1", "S3", "S4"]
        # Before the statements come back: S3 is used, S4 replaced.
        await ctx.put(serialize_event(started(minutes, 1000, session_id="S3")))
        replace = reserved(1, session_id="S4", expires_after=minutes + 60)
        await ctx.put(serialize_event(replace))
        for event in [*statements, *statements]:  # each read twice
            await ctx.put(serialize_event(event))
    ended = [e for e in emitted if isinstance(e, ReservationEnded)]
    assert [(e.payload.session_id, e.payload.reason) for e in ended] == [("S1", "EXPIRED")]
    assert set(table.keys()) == {"ZZ/HUB/S2", "ZZ/HUB/S4"}
    assert Held.model_validate(table["ZZ/HUB/S4"]).expires_at == replace.payload.expires_at
