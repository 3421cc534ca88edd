"""CDRs, pure core: the CDR model's rules, our CDR builder, Credit CDRs,
receiving a partner's CDR and reconciling it; the slice's state and its
decisions through the write path."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from producers.cdrs import (
    SLICE,
    BuildError,
    CdrState,
    CreditCdr,
    ReceiveCdr,
    build_cdr,
    credit_key,
    credit_of,
    decide_credit,
    decide_receive,
    evolve,
    plan_credit,
    plan_receive,
    plan_reconciled,
    reconcile,
    tariffs_named,
)
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryLogHistory
from producers.write_path import Origin, RefusedError, WritePath
from schemas.events import (
    CdrIssued,
    CdrReceived,
    CdrReconciled,
    Party,
    parse_event,
    serialize_event,
)
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.tariffs import loads_exact
from schemas.topics import CDRS, topic_for
from tests.cdr_objects import completed_session, issued_cdr, priced_location, simple_tariff
from tests.unit.test_write_path import SlowLog

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
TOLERANCE = Decimal("0.01")


def exact(value: Any) -> Any:
    """A CDR's JSON numbers (printed exactly, see ExactNumber) as Decimals."""
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    return Decimal(repr(value)) if isinstance(value, int | float) else value


def our_cdr(**changes: Any) -> dict[str, Any]:
    built = build_cdr(
        completed_session(),
        priced_location(tariff_ids=["CDR-T1"]),
        {"CDR-T1": simple_tariff()},
        issued_at=NOW,
    )
    return {**copy.deepcopy(built.cdr), **changes}


# --- the model ----------------------------------------------------------------


def test_a_built_cdr_is_a_valid_cdr_and_round_trips_exactly() -> None:
    cdr = our_cdr()
    parsed = Cdr.model_validate(cdr)
    assert parsed.total_cost.excl_vat == Decimal("3.575")
    assert parsed.total_energy == Decimal("8.25")


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"end_date_time": "2026-06-02T07:59:59Z"}, "earlier than start"),
        ({"total_energy": -1}, "must not be negative"),
        ({"total_time": -0.5}, "must not be negative"),
        ({"charging_periods": []}, "at least 1"),
        ({"credit": True}, "needs credit_reference_id"),
        ({"credit_reference_id": "OS-0"}, "only for a Credit CDR"),
        ({"id": "X" * 37}, "at most 36"),
        ({"id": "X" * 40, "credit": True, "credit_reference_id": "A"}, "at most 39"),
        ({"currency": "USD"}, "not in the CDR's currency"),
        ({"total_cost": {"excl_vat": "3.575"}}, "JSON number"),
    ],
)
def test_the_model_refuses_what_the_spec_rules_out(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Cdr.model_validate(our_cdr(**changes))


def test_a_credit_cdr_may_carry_negated_quantities() -> None:
    cdr = our_cdr(id="OS-1-C", credit=True, credit_reference_id="OS-1", total_energy=-8.25)
    assert Cdr.model_validate(cdr).total_energy == Decimal("-8.25")


# --- the builder (as CPO) ------------------------------------------------------


def test_our_completed_session_becomes_a_priced_cdr() -> None:
    cdr = our_cdr()
    # Computed by hand: 0.50 start + 8.25 kWh x 0.30 + 0.5 h x 1.20, VAT 20 %.
    assert exact(cdr["total_cost"]) == {"excl_vat": Decimal("3.575"), "incl_vat": Decimal("4.29")}
    assert exact(cdr["total_energy_cost"]["excl_vat"]) == Decimal("2.475")
    assert exact(cdr["total_time_cost"]["excl_vat"]) == Decimal("0.6")
    assert exact(cdr["total_fixed_cost"]["excl_vat"]) == Decimal("0.5")
    assert cdr["id"] == cdr["session_id"] == "OS-1"
    assert cdr["cdr_location"]["evse_id"] == "ZZ*HUB*E1"
    assert cdr["cdr_location"]["connector_standard"] == "IEC_62196_T2"
    assert cdr["auth_method"] == "AUTH_REQUEST"
    assert cdr["authorization_reference"] == "AUTH-REF-1"
    assert [t["id"] for t in cdr["tariffs"]] == ["CDR-T1"]
    assert {p["tariff_id"] for p in cdr["charging_periods"]} == {"CDR-T1"}


def test_the_first_tariff_held_at_session_start_prices_it() -> None:
    built = build_cdr(
        completed_session(),
        priced_location(tariff_ids=["GONE", "CDR-T2"]),
        {"GONE": None, "CDR-T2": simple_tariff("CDR-T2", energy_price="0.50")},
        issued_at=NOW,
    )
    # 0.50 + 8.25 x 0.50 + 0.60
    assert exact(built.cdr["total_cost"]["excl_vat"]) == Decimal("5.225")
    assert built.tariff_source == "tariff"


def test_a_tariff_not_yet_active_at_session_start_is_passed_over() -> None:
    later = simple_tariff()
    later["start_date_time"] = "2026-07-01T00:00:00Z"
    built = build_cdr(
        completed_session(),
        priced_location(tariff_ids=["CDR-T1"]),
        {"CDR-T1": later},
        issued_at=NOW,
    )
    assert built.tariff_source == "none"


@pytest.mark.parametrize(
    ("tariff_ids", "remark"),
    [(None, "references no tariff"), (["UNKNOWN"], "no tariff of ['UNKNOWN']")],
)
def test_without_a_tariff_the_cdr_is_issued_free_and_says_why(
    tariff_ids: list[str] | None, remark: str
) -> None:
    built = build_cdr(
        completed_session(),
        priced_location(tariff_ids=tariff_ids),
        {"UNKNOWN": None},
        issued_at=NOW,
    )
    cdr = built.cdr
    assert built.tariff_source == "none"
    assert cdr["total_cost"] == {"excl_vat": 0}
    assert "tariffs" not in cdr
    assert remark in cdr["remark"]
    assert exact(cdr["total_energy"]) == Decimal("8.25")
    assert exact(cdr["total_time"]) == Decimal("0.5")


def test_a_session_without_periods_gets_one_spanning_it() -> None:
    built = build_cdr(
        completed_session(periods=False),
        priced_location(tariff_ids=["CDR-T1"]),
        {"CDR-T1": simple_tariff()},
        issued_at=NOW,
    )
    assert len(built.cdr["charging_periods"]) == 1
    assert exact(built.cdr["total_cost"]["excl_vat"]) == Decimal("3.575")


# Day rate until 23:00, night rate from then (Location in Europe/Amsterdam).
DAY_NIGHT_TARIFF = """{"country_code": "ZZ", "party_id": "HUB", "id": "CDR-DN", "currency": "EUR",
 "elements": [
  {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 20.0, "step_size": 1}],
   "restrictions": {"start_time": "07:00", "end_time": "23:00"}},
  {"price_components": [{"type": "ENERGY", "price": 0.20, "vat": 20.0, "step_size": 1}],
   "restrictions": {"start_time": "23:00", "end_time": "07:00"}}],
 "last_updated": "2026-05-01T00:00:00Z"}"""


def test_a_meter_period_across_a_tariff_change_is_cut_and_priced_in_two() -> None:
    # 22:30-23:30 in Amsterdam (summer time), one meter period of 10 kWh.
    session = completed_session()
    session |= {
        "start_date_time": "2026-06-02T20:30:00Z",
        "end_date_time": "2026-06-02T21:30:00Z",
        "last_updated": "2026-06-02T21:30:00Z",
        "kwh": 10,
        "charging_periods": [
            {
                "start_date_time": "2026-06-02T20:30:00Z",
                "dimensions": [
                    {"type": "ENERGY", "volume": 10},
                    {"type": "TIME", "volume": 1},
                    {"type": "MAX_POWER", "volume": 11},
                ],
            }
        ],
    }
    built = build_cdr(
        session,
        priced_location(tariff_ids=["CDR-DN"]),
        {"CDR-DN": loads_exact(DAY_NIGHT_TARIFF)},
        issued_at=NOW,
    )
    cdr = Cdr.model_validate(built.cdr)
    assert [(p.start_date_time, p.tariff_id) for p in cdr.charging_periods] == [
        (datetime(2026, 6, 2, 20, 30, tzinfo=UTC), "CDR-DN"),
        (datetime(2026, 6, 2, 21, 0, tzinfo=UTC), "CDR-DN"),
    ]
    assert [{d.type: d.volume for d in p.dimensions} for p in cdr.charging_periods] == [
        {"ENERGY": Decimal(5), "TIME": Decimal("0.5"), "MAX_POWER": Decimal(11)}
    ] * 2
    # 5 kWh x 0.40 + 5 kWh x 0.20, VAT 20 %; the whole hour at the day rate
    # would have been 4.00.
    assert exact(built.cdr["total_cost"]) == {"excl_vat": Decimal(3), "incl_vat": Decimal("3.6")}
    assert exact(built.cdr["total_energy_cost"]) == {
        "excl_vat": Decimal(3),
        "incl_vat": Decimal("3.6"),
    }
    assert cdr.total_energy == Decimal(10)
    assert cdr.total_time == Decimal(1)


def test_a_tariff_without_time_restrictions_keeps_the_meter_periods() -> None:
    cdr = our_cdr()
    assert [p["start_date_time"] for p in cdr["charging_periods"]] == [
        "2026-06-02T08:00:00Z",
        "2026-06-02T08:15:00Z",
    ]


def test_only_a_completed_session_on_a_known_connector_is_built() -> None:
    active = {**completed_session(), "status": "ACTIVE"}
    with pytest.raises(BuildError, match="not COMPLETED"):
        build_cdr(active, priced_location(), {}, issued_at=NOW)
    elsewhere = {**completed_session(), "connector_id": "9"}
    with pytest.raises(BuildError, match="no connector"):
        build_cdr(elsewhere, priced_location(), {}, issued_at=NOW)


def test_an_unused_reservation_without_an_evse_is_not_built() -> None:
    reservation = {
        **completed_session(periods=False),
        "evse_uid": "#NA",
        "connector_id": "#NA",
        "kwh": 0,
    }
    with pytest.raises(BuildError, match="no connector"):
        build_cdr(reservation, priced_location(), {}, issued_at=NOW)


def test_issuing_twice_from_the_same_session_event_gives_the_same_event() -> None:
    cause = uuid.uuid4()

    def issue(now: datetime) -> CdrIssued:
        return issued_cdr(now, cause=cause, correlation_id="corr-1")

    first, again = issue(NOW), issue(NOW.replace(minute=5))
    assert first.event_id == again.event_id
    assert first.aggregate_key == "ZZ/HUB/OS-1"
    assert first.payload.tariff_source == "tariff"
    assert topic_for(first.event_type) is CDRS
    parsed = parse_event(serialize_event(first))
    assert isinstance(parsed, CdrIssued)
    assert Cdr.model_validate(parsed.payload.cdr).total_cost.excl_vat == Decimal("3.575")


# --- Credit CDRs -------------------------------------------------------------------


def test_a_credit_cdr_negates_total_cost_and_references_the_original() -> None:
    original = our_cdr()
    credit = credit_of(original, now=NOW)
    assert credit["id"] == "OS-1-C"
    assert credit["credit"] is True
    assert credit["credit_reference_id"] == "OS-1"
    assert exact(credit["total_cost"]) == {
        "excl_vat": Decimal("-3.575"),
        "incl_vat": Decimal("-4.29"),
    }
    # Everything else is the original's (mod_cdrs, "Credit CDRs").
    assert credit["total_energy"] == original["total_energy"]
    assert exact(original["total_cost"]["excl_vat"]) == Decimal("3.575")  # not edited


def test_crediting_is_refused_for_unknown_credited_or_credit_cdrs() -> None:
    origin = Origin(Party(country_code="ZZ", party_id="HUB"), "c")
    us = Party(country_code="ZZ", party_id="HUB")
    args: dict[str, Any] = {
        "us": us,
        "cdr_id": "OS-1",
        "origin": origin,
        "event_id": uuid.uuid4(),
        "now": NOW,
    }
    with pytest.raises(RefusedError) as missing:
        plan_credit(None, False, **args)
    assert missing.value.http_status == 404
    with pytest.raises(RefusedError, match="credited already"):
        plan_credit(our_cdr(), True, **args)
    credit = credit_of(our_cdr(), now=NOW)
    with pytest.raises(RefusedError, match="cannot be credited"):
        plan_credit(credit, False, **args)
    event = plan_credit(our_cdr(), False, **args)
    assert event.aggregate_key == "ZZ/HUB/OS-1-C"
    assert event.payload.tariff_source == "credit"


# --- receiving and reconciling (as eMSP) --------------------------------------------


def _receive(
    body: Any,
    *,
    owns: bool = True,
    held: bool = False,
    token_known: bool = True,
    tariffs: frozenset[str] = frozenset(),
) -> Any:
    """As the eMSP NL/PEE, which issued the token of ``our_cdr()``."""
    return plan_receive(
        body,
        poster_owns=lambda cc, pid: owns,
        already_held=lambda key: held,
        us=Party(country_code="NL", party_id="PEE"),
        token_held=lambda key: token_known and key == "NL/PEE/RFID-77/RFID",
        tariff_held=lambda tariff_id: tariff_id in tariffs,
        origin=Origin(Party(country_code="ZZ", party_id="HUB"), "c"),
        event_id=uuid.uuid4(),
        now=NOW,
    )


def test_a_partner_cdr_is_received_once_and_only_from_its_owner() -> None:
    event = _receive(our_cdr())
    assert event.aggregate_key == "ZZ/HUB/OS-1"
    with pytest.raises(RefusedError, match="not a party registered"):
        _receive(our_cdr(), owns=False)
    with pytest.raises(RefusedError, match="received before"):
        _receive(our_cdr(), held=True)
    with pytest.raises(ValidationError):
        _receive(our_cdr(total_energy=-2))


def test_a_partner_cdr_must_bill_a_token_we_issued() -> None:
    someone_else = {**our_cdr()["cdr_token"], "country_code": "DE", "party_id": "OTH"}
    with pytest.raises(RefusedError, match="send it to the eMSP") as other:
        _receive(our_cdr(cdr_token=someone_else))
    assert other.value.status == 2001
    with pytest.raises(RefusedError, match="RFID-77") as unknown:
        _receive(our_cdr(), token_known=False)
    assert unknown.value.status == 2004


def test_a_partner_cdr_must_carry_or_name_a_tariff_we_know() -> None:
    bare = our_cdr()
    del bare["tariffs"]
    with pytest.raises(RefusedError, match="CDR-T1"):
        _receive(bare)
    assert _receive(bare, tariffs=frozenset({"CDR-T1"})).aggregate_key == "ZZ/HUB/OS-1"
    assert _receive(our_cdr()).aggregate_key == "ZZ/HUB/OS-1"  # it carries the tariff


def test_reconciliation_with_the_held_tariff_finds_no_difference() -> None:
    result = reconcile(our_cdr(), simple_tariff(), tolerance=TOLERANCE, time_zone="UTC")
    assert (result.tariff_source, result.tariff_id) == ("held", "CDR-T1")
    assert result.expected == Decimal("3.575")
    assert result.difference == 0
    assert not result.discrepancy


def test_reconciliation_flags_a_difference_above_the_tolerance() -> None:
    dearer = simple_tariff(energy_price="0.40")  # we hold another version
    result = reconcile(our_cdr(), dearer, tolerance=TOLERANCE, time_zone="UTC")
    assert result.expected == Decimal("4.4")  # 0.50 + 8.25 x 0.40 + 0.60
    assert result.difference == Decimal("-0.825")
    assert result.discrepancy
    within = reconcile(our_cdr(), dearer, tolerance=Decimal("1"), time_zone="UTC")
    assert not within.discrepancy


def test_reconciliation_falls_back_to_the_embedded_tariff_then_to_nothing() -> None:
    embedded = reconcile(our_cdr(), None, tolerance=TOLERANCE, time_zone="UTC")
    assert (embedded.tariff_source, embedded.discrepancy) == ("embedded", False)
    bare = our_cdr()
    del bare["tariffs"]
    for period in bare["charging_periods"]:
        del period["tariff_id"]
    none = reconcile(bare, None, tolerance=TOLERANCE, time_zone="UTC")
    assert (none.tariff_source, none.expected, none.discrepancy) == ("none", None, False)


def test_a_credit_cdr_reconciles_against_the_negated_price() -> None:
    credit = credit_of(our_cdr(), now=NOW)
    result = reconcile(credit, simple_tariff(), tolerance=TOLERANCE, time_zone="UTC")
    assert result.expected == Decimal("-3.575")
    assert not result.discrepancy


def test_a_tariff_in_another_currency_is_a_discrepancy() -> None:
    result = reconcile(
        our_cdr(), simple_tariff(currency="USD"), tolerance=TOLERANCE, time_zone="UTC"
    )
    assert result.discrepancy and "currency" in (result.note or "")


def test_the_reconciled_event_follows_the_received_one() -> None:
    received = _receive(our_cdr())
    result = reconcile(our_cdr(), simple_tariff(), tolerance=TOLERANCE, time_zone="UTC")
    event = plan_reconciled(received, result, tolerance=TOLERANCE, now=NOW)
    assert event.aggregate_key == received.aggregate_key
    assert event.causation_id == received.event_id
    again = parse_event(serialize_event(event))
    assert again == event


# --- the slice, as the write path holds it -----------------------------------------

US = Party(country_code="ZZ", party_id="HUB")


def _issued() -> CdrIssued:
    return issued_cdr(NOW)


def _receive_command(**changes: Any) -> ReceiveCdr:
    """NL/PEE, the eMSP of ``our_cdr()``'s token, receiving it from ZZ/HUB."""
    fields: dict[str, Any] = {
        "cdr": Cdr.model_validate(our_cdr()),
        "poster_owns": lambda cc, pid: True,
        "us": Party(country_code="NL", party_id="PEE"),
        "token_issued": True,
        "tariffs": {"CDR-T1": simple_tariff()},
        "time_zone": "Europe/Amsterdam",
        "tolerance": TOLERANCE,
        "origin": Origin(US, "c"),
    }
    return ReceiveCdr(**(fields | changes))


def test_the_first_cdr_of_a_key_is_the_cdr() -> None:
    received = decide_receive(None, _receive_command(), NOW).events
    state = SLICE.fold(None, received)
    assert state == CdrState(role="received", reconciled=True)
    assert evolve(state, received[0]) is state  # a second CDR changes nothing
    assert evolve(state, _issued()) is state
    issued = evolve(None, _issued())
    assert issued == CdrState(role="issued")
    assert SLICE.load(SLICE.dump(state)) == state
    # A reconciliation without a CDR on record has nothing to attach to.
    assert evolve(None, received[1]) is None


def test_receiving_records_the_cdr_and_its_reconciliation_under_its_key() -> None:
    decision = decide_receive(None, _receive_command(), NOW)
    received, reconciled = decision.events
    assert isinstance(received, CdrReceived) and isinstance(reconciled, CdrReconciled)
    assert received.aggregate_key == reconciled.aggregate_key == "ZZ/HUB/OS-1"
    assert reconciled.causation_id == received.event_id
    assert reconciled.payload.tariff_source == "held" and reconciled.payload.difference == 0
    assert reconciled.payload.note is None


def test_receiving_is_refused_when_a_cdr_is_on_record_or_the_token_is_not_ours() -> None:
    for state in (CdrState(role="received"), CdrState(role="issued")):
        with pytest.raises(RefusedError, match="received before"):
            decide_receive(state, _receive_command(), NOW)
    with pytest.raises(RefusedError) as unknown:
        decide_receive(None, _receive_command(token_issued=False), NOW)
    assert unknown.value.status == 2004


def test_without_the_location_reconciliation_prices_in_utc_and_says_so() -> None:
    _, reconciled = decide_receive(None, _receive_command(time_zone=None), NOW).events
    assert isinstance(reconciled, CdrReconciled)
    assert reconciled.payload.note == "time zone UTC: we hold no location 'LOC-CDR'"


def test_the_tariffs_a_received_cdr_needs_are_those_it_names() -> None:
    cdr = Cdr.model_validate(our_cdr())
    assert tariffs_named(cdr) == {"CDR-T1"}
    bare = our_cdr()
    for period in bare["charging_periods"]:
        del period["tariff_id"]
    assert tariffs_named(Cdr.model_validate(bare)) == {"CDR-T1"}  # the embedded one
    del bare["tariffs"]
    assert tariffs_named(Cdr.model_validate(bare)) == set()


def test_a_credit_is_decided_under_the_credit_cdrs_key() -> None:
    command = CreditCdr("OS-1", our_cdr(), US, Origin(US, "c"))
    decision = decide_credit(None, command, NOW)
    [event] = decision.events
    assert event.aggregate_key == credit_key(US, "os-1") == "ZZ/HUB/OS-1-C"
    assert decision.answer["credit_reference_id"] == "OS-1"
    with pytest.raises(RefusedError, match="credited already"):
        decide_credit(SLICE.fold(None, [event]), command, NOW)
    with pytest.raises(RefusedError) as missing:
        decide_credit(None, CreditCdr("NOPE", None, US, Origin(US, "c")), NOW)
    assert missing.value.http_status == 404


async def test_two_api_processes_crediting_one_cdr_credit_it_once() -> None:
    log, store = SlowLog(), InMemoryDecisionStore()
    first, second = (WritePath(log, store, InMemoryLogHistory(log)) for _ in range(2))
    command = CreditCdr("OS-1", our_cdr(), US, Origin(US, "c"))

    async def credit(w: WritePath) -> Any:
        key = credit_key(US, "OS-1")
        return await w.write(SLICE, key, lambda state: decide_credit(state, command, NOW))

    results = await asyncio.gather(
        credit(first), credit(second), credit(first), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, RefusedError)]
    assert len(refused) == 2 and all("credited already" in r.message for r in refused)
    assert [type(e) for e in log.events] == [CdrIssued]
