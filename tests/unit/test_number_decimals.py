"""Numbers in the objects we build carry at most 4 decimals (types.asciidoc,
number; docs/adr/0039 §3): our sessions from our chargers' facts, and the
priced CDRs built from them. Properties over random sessions (readings at
odd instants and odd Wh, with or without a reservation), checked on the
JSON as the events record it; pure, no services."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.session_lifecycle import ChargerFact, Lifecycle, MeterConfig, evolve, session_of
from producers.cdrs import build_cdr
from schemas.events import SessionPut, serialize_event
from schemas.ocpi.sessions import SessionStatus
from schemas.ocpi.tariffs import loads_exact
from tests.cdr_objects import priced_location, simple_tariff
from tests.unit.charger_facts import meter, reserved, started, stopped

CONFIG = MeterConfig(rollover_wh=0, currency="EUR")
ISSUED = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


def decimals(value: Any, where: str = "") -> list[tuple[str, int]]:
    """Every number in a decoded JSON value (numbers as Decimals) with its
    count of decimals."""
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in decimals(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in decimals(v, f"{where}[{i}]")]
    if isinstance(value, Decimal):
        exponent = value.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        return [(where, max(0, -exponent))]
    if isinstance(value, int) and not isinstance(value, bool):
        return [(where, 0)]
    return []


def as_sent(body: dict[str, Any]) -> Any:
    """``body`` through JSON text, every number read back exactly."""
    return json.loads(json.dumps(body, default=str), parse_float=Decimal, parse_int=Decimal)


def too_fine(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(where, n) for where, n in decimals(as_sent(body)) if n > 4]


# Minutes between readings with sub-second parts; Wh steps to the mWh.
steps = st.lists(
    st.tuples(
        st.floats(min_value=0.001, max_value=90, allow_nan=False, allow_infinity=False),
        st.decimals(min_value=0, max_value=25_000, places=3),
    ),
    min_size=0,
    max_size=12,
)


def facts_of(
    start_wh: Decimal, readings: list[tuple[float, Decimal]], reserved_for: float | None
) -> list[ChargerFact]:
    facts: list[ChargerFact] = []
    if reserved_for is not None:
        facts.append(reserved(-reserved_for, evse_uid="EVSE1", connector_id="1"))
    facts.append(started(0, str(start_wh)))
    minute, wh = 0.0, start_wh
    for gap, delta in readings:
        minute, wh = minute + gap, wh + delta
        facts.append(meter(minute, str(wh)))
    facts.append(stopped(minute + 0.37, str(wh)))
    return facts


def fold(facts: list[ChargerFact]) -> dict[str, Any]:
    state = Lifecycle()
    for fact in facts:
        state = evolve(state, fact)
    session = session_of(state, CONFIG)
    assert session is not None
    return session


@settings(max_examples=150, deadline=None)
@given(
    start_wh=st.decimals(min_value=0, max_value=10**6, places=3),
    readings=steps,
    reserved_for=st.none() | st.floats(min_value=0.01, max_value=25),
    energy_price=st.decimals(min_value=0, max_value=2, places=4),
)
def test_our_sessions_and_cdrs_carry_at_most_4_decimals(
    start_wh: Decimal,
    readings: list[tuple[float, Decimal]],
    reserved_for: float | None,
    energy_price: Decimal,
) -> None:
    session = fold(facts_of(start_wh, readings, reserved_for))
    assert session["status"] == SessionStatus.COMPLETED
    assert not too_fine(session), too_fine(session)
    # As the event on ocpi.sessions.v1 records it, too.
    recorded = json.loads(
        serialize_event(
            SessionPut.model_validate(
                {
                    "event_id": "00000000-0000-0000-0000-000000000001",
                    "aggregate_key": "ZZ/HUB/S1",
                    "occurred_at": ISSUED,
                    "recorded_at": ISSUED,
                    "source": {"country_code": "ZZ", "party_id": "HUB"},
                    "correlation_id": "c",
                    "payload": {"country_code": "ZZ", "party_id": "HUB", "session_id": "S1",
                                "session": session, "last_updated": ISSUED},
                }
            )
        ),
        parse_float=Decimal,
    )  # fmt: skip
    assert not too_fine(recorded["payload"]), too_fine(recorded["payload"])

    tariff = simple_tariff("T1", energy_price=str(energy_price))
    for tariffs in [{"T1": tariff}, {}]:  # priced, and issued free
        cdr = build_cdr(
            session, priced_location("LOC1", tariff_ids=["T1"]), tariffs, issued_at=ISSUED
        ).cdr
        assert not too_fine(cdr), too_fine(cdr)
        exact = as_sent(cdr)
        # Totals of quantities are the exact sums of the periods' volumes.
        volumes: dict[str, Decimal] = {}
        for period in exact["charging_periods"]:
            for d in period["dimensions"]:
                volumes[d["type"]] = volumes.get(d["type"], Decimal(0)) + d["volume"]
        assert exact["total_energy"] == volumes.get("ENERGY", 0)
        assert exact["total_time"] == volumes.get("TIME", 0) + volumes.get("PARKING_TIME", 0)


def volumes_of(session: dict[str, Any], dimension: str) -> list[Decimal]:
    return [
        Decimal(str(d["volume"]))
        for p in session["charging_periods"]
        for d in p["dimensions"]
        if d["type"] == dimension
    ]


def test_a_period_is_rounded_half_up_once_and_kwh_from_the_exact_total() -> None:
    # 3 steps of 0.00005 kWh (0.05 Wh) over 1 s each: each period rounds half
    # up to 0.0001 kWh; the session's kwh is the exact 0.00015 rounded once
    # (0.0002), not the sum of the rounded periods (0.0003).
    seconds = 1 / 60
    facts: list[ChargerFact] = [
        started(0, "1000"),
        meter(seconds, "1000.05"),
        meter(2 * seconds, "1000.1"),
        stopped(3 * seconds, "1000.15"),
    ]
    session = fold(facts)
    assert volumes_of(session, "ENERGY") == [Decimal("0.0001")] * 3
    assert Decimal(str(session["kwh"])) == Decimal("0.0002")
    # 1 s is 0.000277... h: 0.0003 at 4 decimals.
    assert volumes_of(session, "TIME") == [Decimal("0.0003")] * 3


def test_a_cdr_of_a_session_recorded_with_6_decimals_is_rounded_to_4() -> None:
    # The CDR of the issue: total_time 0.376944 h from periods at 6 decimals.
    session = fold([started(0, "1000"), stopped(22.61664, "2234.5678")])
    session["charging_periods"][0]["dimensions"] = [
        {"type": "ENERGY", "volume": Decimal("1.234568")},
        {"type": "TIME", "volume": Decimal("0.376944")},
    ]
    cdr = build_cdr(session, priced_location("LOC1", tariff_ids=["T1"]), {}, issued_at=ISSUED).cdr
    exact = as_sent(cdr)
    assert (exact["total_time"], exact["total_energy"]) == (Decimal("0.3769"), Decimal("1.2346"))
    assert not too_fine(cdr)


def test_a_session_that_began_with_a_reservation_is_priced_from_the_reservation() -> None:
    # Reserved 30 minutes before charging (0.5 h at 2.00/h under the
    # reservation element), then 10 kWh in 1 h (0.30/kWh, no charging-time
    # element): the CDR starts at the reservation (mod_cdrs, start_date_time)
    # and charges both.
    session = fold([reserved(-30), started(0, "1000"), meter(60, "11000"), stopped(60, "11000")])
    reservation_start = session["charging_periods"][0]["start_date_time"]
    assert reservation_start < session["start_date_time"]
    tariff = loads_exact(
        '{"country_code": "ZZ", "party_id": "HUB", "id": "T1", "currency": "EUR",'
        ' "elements": ['
        '  {"price_components": [{"type": "TIME", "price": 2.00, "step_size": 1}],'
        '   "restrictions": {"reservation": "RESERVATION"}},'
        '  {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]}],'
        ' "last_updated": "2026-03-01T00:00:00Z"}'
    )
    cdr = as_sent(
        build_cdr(
            session, priced_location("LOC1", tariff_ids=["T1"]), {"T1": tariff}, issued_at=ISSUED
        ).cdr
    )
    assert cdr["start_date_time"] == reservation_start
    assert cdr["total_reservation_cost"]["excl_vat"] == Decimal("1.00")
    assert cdr["total_energy_cost"]["excl_vat"] == Decimal("3.00")
    assert cdr["total_cost"]["excl_vat"] == Decimal("4.00")
