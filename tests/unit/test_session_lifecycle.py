"""The session lifecycle rule (processors/session_lifecycle.py): status,
energy from meter readings, charging periods and the events it emits.
Table-driven cases and hypothesis properties; pure, no services."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.session_lifecycle import (
    ChargerFact,
    Lifecycle,
    MeterConfig,
    decide,
    energy_wh,
    evolve,
    session_of,
    step_wh,
)
from schemas.events import SessionPatched, SessionPut
from schemas.ocpi.sessions import Session
from tests.unit.charger_facts import (
    T0,
    authorized,
    meter,
    reservation_ended,
    reserved,
    started,
    stopped,
)

CONFIG = MeterConfig(rollover_wh=0, currency="EUR")
WRAP = MeterConfig(rollover_wh=100_000, currency="EUR")


def fold(facts: list[ChargerFact], config: MeterConfig = CONFIG) -> dict[str, Any] | None:
    state = Lifecycle()
    for fact in facts:
        state = evolve(state, fact)
    return session_of(state, config)


@pytest.mark.parametrize(
    ("facts", "status", "kwh"),
    [
        ([started(0, 1000, authorized=False)], "PENDING", 0),
        ([started(0, 1000)], "ACTIVE", 0),
        ([started(0, 1000, authorized=False), authorized(1)], "ACTIVE", 0),
        ([started(0, 1000), meter(15, 4000), stopped(30, 7500)], "COMPLETED", 6.5),
        ([started(0, 1000, authorized=False), stopped(5, 1000)], "INVALID", 0),
        # Authorised but no energy: a session need not transfer energy (mod_sessions).
        ([started(0, 1000), stopped(5, 1000)], "COMPLETED", 0),
        # Stopped before the start arrived: still COMPLETED once it does.
        ([stopped(30, 3000), started(0, 1000)], "COMPLETED", 2),
        # Final: later facts change nothing.
        ([started(0, 1000), stopped(10, 2000), meter(20, 9000)], "COMPLETED", 1),
        # A reading lower than the one before, no rollover configured: a reset.
        ([started(0, 5000), meter(10, 6000), meter(20, 100), stopped(30, 600)], "COMPLETED", 1.5),
        # Duplicated and out-of-order readings.
        (
            [started(0, 0), meter(20, 2000), meter(10, 1000), meter(20, 2000), meter(10, 1000)],
            "ACTIVE",
            2,
        ),
        # Readings before the start or after the stop are outside the session.
        ([meter(-5, 1), started(0, 1000), stopped(10, 1500), meter(11, 99999)], "COMPLETED", 0.5),
        # A second transaction of a session that is not final continues it.
        (
            [
                started(0, 0, tx="T1"),
                meter(5, 500, tx="T1"),
                started(6, 40, tx="T2"),
                stopped(9, 340, tx="T2"),
            ],
            "COMPLETED",
            0.8,
        ),
    ],
)
def test_status_and_energy(facts: list[ChargerFact], status: str, kwh: float) -> None:
    session = fold(facts)
    assert session is not None
    Session.model_validate(session)
    assert session["status"] == status
    assert Decimal(str(session["kwh"])) == Decimal(str(kwh))


def test_no_session_before_the_start() -> None:
    assert fold([meter(5, 100)]) is None


def test_rollover_past_the_configured_maximum() -> None:
    facts: list[ChargerFact] = [started(0, 99_000), meter(10, 99_900), stopped(20, 400)]
    session = fold(facts, WRAP)
    assert session is not None and session["kwh"] == 1.4  # 900 + 100 + 400 Wh
    assert step_wh(Decimal(99_900), Decimal(400), 100_000) == 500
    assert step_wh(Decimal(60_000), Decimal(10), 100_000) == 40_010
    assert step_wh(Decimal(40_000), Decimal(10), 100_000) == 0  # implausible wrap: a reset


def test_start_date_time_moves_to_when_it_went_active() -> None:
    pending = fold([started(0, 0, authorized=False)])
    active = fold([started(0, 0, authorized=False), authorized(2)])
    assert pending is not None and active is not None
    assert pending["start_date_time"] == "2026-04-01T08:00:00Z"
    assert active["start_date_time"] == "2026-04-01T08:02:00Z"
    assert active["auth_method"] == "AUTH_REQUEST"
    assert active["authorization_reference"] == "AUTH-1"


def test_periods_one_per_meter_interval_with_energy_and_time() -> None:
    session = fold([started(0, 1000), meter(15, 4000), stopped(30, 7500)])
    assert session is not None
    assert session["charging_periods"] == [
        {
            "start_date_time": "2026-04-01T08:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 3}, {"type": "TIME", "volume": 0.25}],
        },
        {
            "start_date_time": "2026-04-01T08:15:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 3.5}, {"type": "TIME", "volume": 0.25}],
        },
    ]
    assert session["end_date_time"] == "2026-04-01T08:30:00Z"
    assert session["country_code"] == "ZZ" and session["cdr_token"]["party_id"] == "PEE"


def test_decide_puts_then_patches_with_only_new_periods() -> None:
    state = Lifecycle()
    emitted: list[Any] = []
    for fact in [started(0, 1000), meter(15, 4000), meter(30, 5000), stopped(45, 5000)]:
        state, events = decide(state, fact, CONFIG, T0)
        emitted += events
    put, *patches = emitted
    assert isinstance(put, SessionPut)
    assert all(isinstance(p, SessionPatched) for p in patches)
    assert put.aggregate_key == "ZZ/HUB/S1"
    assert [len(p.payload.patch.get("charging_periods", [])) for p in patches] == [1, 1, 1]
    last = patches[-1].payload.patch
    assert last["status"] == "COMPLETED" and last["end_date_time"] == "2026-04-01T08:45:00Z"
    assert "kwh" not in last and "currency" not in last  # unchanged fields are left out
    assert last["cdr_token"]["party_id"] == "PEE"  # except the token: it names the eMSP


def test_a_late_reading_that_splits_a_period_is_a_put() -> None:
    state = Lifecycle()
    for fact in [started(0, 0), meter(20, 2000)]:
        state, _ = decide(state, fact, CONFIG, T0)
    state, [event] = decide(state, meter(10, 1000), CONFIG, T0)
    assert isinstance(event, SessionPut)
    assert len(event.payload.session["charging_periods"]) == 2


def test_reprocessing_a_fact_emits_the_same_event_id_and_a_duplicate_nothing() -> None:
    fact = started(0, 1000)
    _, [first] = decide(Lifecycle(), fact, CONFIG, T0)
    _, [again] = decide(Lifecycle(), fact, CONFIG, T0)
    assert first.event_id == again.event_id
    assert first.causation_id == fact.event_id
    state, _ = decide(Lifecycle(), fact, CONFIG, T0)
    assert decide(state, fact, CONFIG, T0)[1] == []


# --- properties -------------------------------------------------------------

increments = st.lists(st.integers(min_value=0, max_value=40_000), min_size=1, max_size=25)


def _facts(start_wh: int, steps: list[int], modulus: int) -> tuple[list[ChargerFact], int]:
    """A true consumption of ``steps`` Wh per interval, read off a register
    that wraps at ``modulus`` (0: never)."""
    facts: list[ChargerFact] = [started(0, start_wh % modulus if modulus else start_wh)]
    total = start_wh
    for i, inc in enumerate(steps, start=1):
        total += inc
        facts.append(meter(i, total % modulus if modulus else total))
    return facts, sum(steps)


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=10**7),
    steps=increments,
    seed=st.integers(min_value=0, max_value=2**16),
    duplicates=st.integers(min_value=0, max_value=10),
)
def test_energy_is_what_the_meter_advanced_whatever_the_order(
    start: int, steps: list[int], seed: int, duplicates: int
) -> None:
    for modulus in (0, 100_000):
        facts, advanced = _facts(start, steps, modulus)
        rng = random.Random(seed)
        delivered = facts + [rng.choice(facts) for _ in range(duplicates)]
        rng.shuffle(delivered)
        state = Lifecycle()
        for fact in delivered:
            state = evolve(state, fact)
        assert energy_wh(state, modulus) == advanced


@settings(max_examples=150, deadline=None)
@given(readings=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20))
def test_energy_never_negative_nor_more_than_the_register_rose(readings: list[int]) -> None:
    state = evolve(Lifecycle(), started(0, readings[0]))
    for i, wh in enumerate(readings[1:], start=1):
        state = evolve(state, meter(i, wh))
    energy = energy_wh(state, 0)
    rises = sum(max(b - a, 0) for a, b in itertools.pairwise(readings))
    assert 0 <= energy <= rises
    session = session_of(state, CONFIG)
    assert session is not None and session["kwh"] >= 0


@settings(max_examples=100, deadline=None)
@given(steps=increments, seed=st.integers(min_value=0, max_value=2**16))
def test_folding_every_fact_twice_gives_the_same_session(steps: list[int], seed: int) -> None:
    facts, _ = _facts(1000, steps, 0)
    once = fold(facts)
    twice = list(facts) + list(facts)
    random.Random(seed).shuffle(twice)
    assert fold(twice) == once


# --- reservations (mod_sessions, "Reservation") ------------------------------


def test_a_reservation_is_a_session_in_reservation_without_an_evse() -> None:
    session = fold([reserved(0)])
    assert session is not None
    Session.model_validate(session)
    assert session["status"] == "RESERVATION"
    assert (session["evse_uid"], session["connector_id"]) == ("#NA", "#NA")
    assert session["auth_method"] == "COMMAND"
    assert session["authorization_reference"] == "RES-1"
    assert "charging_periods" not in session  # the reservation time is not over yet


def test_an_unused_reservation_completes_with_its_reservation_time() -> None:
    session = fold([reserved(0), reservation_ended(30)])
    assert session is not None
    assert session["status"] == "COMPLETED"
    assert session["end_date_time"] == "2026-04-01T08:30:00Z"
    assert session["charging_periods"] == [
        {
            "start_date_time": "2026-04-01T08:00:00Z",
            "dimensions": [{"type": "RESERVATION_TIME", "volume": 0.5}],
        }
    ]


def test_a_used_reservation_goes_active_where_the_charger_says() -> None:
    facts: list[ChargerFact] = [
        reserved(0),
        started(12, 1000),
        reservation_ended(30),  # used: ignored
        meter(27, 2000),
    ]
    session = fold(facts)
    assert session is not None
    assert session["status"] == "ACTIVE"
    assert (session["evse_uid"], session["connector_id"]) == ("EVSE1", "1")
    assert session["start_date_time"] == "2026-04-01T08:12:00Z"
    assert [p["dimensions"][0]["type"] for p in session["charging_periods"]] == [
        "RESERVATION_TIME",
        "ENERGY",
    ]
    assert session["charging_periods"][0]["dimensions"][0]["volume"] == 0.2
    assert session["kwh"] == 1
