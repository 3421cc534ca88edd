"""OCPI 2.3.0 Payments, we as CPO (docs/adr/0047): the Terminal and
FinancialAdviceConfirmation models, the slice's decisions and folds, and
the CDR's ``invoice_reference_id`` of a terminal payment. Objects written
for these tests (our ids), following the v2.3.0 tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from api.ocpi.payments import payments_endpoint
from producers.cdrs import build_cdr
from producers.partners import PartnerState
from producers.payments import (
    TerminalState,
    activation_of,
    assignment_of,
    changes_of,
    decide_assigned,
    decide_deactivated,
    decide_post_advice,
    decide_post_terminal,
    decide_pulled_advice,
    decide_pulled_terminal,
    decide_put,
    evolve_advice,
    evolve_terminal,
    invoice_reference_id,
    patch_body,
    put_body,
)
from producers.write_path import Origin, RefusedError
from schemas.events import Party, parse_event, serialize_event
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import Tariff, loads_exact
from schemas.ocpi.types import to_json
from schemas.ocpi.v230.mapping import tariff_from_core
from schemas.ocpi.v230.payments import (
    CaptureStatusCode,
    FinancialAdviceConfirmation,
    InvoiceCreator,
    Terminal,
)
from schemas.topics import PAYMENTS, topic_for
from tests.cdr_objects import completed_session, priced_location, simple_tariff

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
AT = "2026-12-07T09:00:00Z"
ORIGIN = Origin(Party(country_code="DE", party_id="PTP"), "corr-pay")


def ptp(partner_id: str = "ptp-1", cc: str = "DE", pid: str = "PTP") -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.OTHER,
                business_details=BusinessDetails(name="Terminals GmbH"),
                country_code=cc,
                party_id=pid,
            ),
        ),
    )


def terminal_body(**extra: Any) -> dict[str, Any]:
    return {
        "terminal_id": "term-0001",
        "customer_reference": "HUB-OPERATOR",
        "address": "Hauptstrasse 5",
        "city": "Berlin",
        "country": "DEU",
        "coordinates": {"latitude": "52.520008", "longitude": "13.404954"},
        "invoice_base_url": "https://invoices.example.com/ad-hoc/",
        "invoice_creator": "CPO",
        "location_ids": [],
        "last_updated": AT,
        **extra,
    }


def advice_body(**extra: Any) -> dict[str, Any]:
    return {
        "id": "fac-0001",
        "authorization_reference": "pay-ref-0001",
        "total_costs": {
            "before_taxes": Decimal("10.00"),
            "taxes": [{"name": "VAT", "percentage": 19, "amount": Decimal("1.90")}],
        },
        "currency": "EUR",
        "eft_data": ["VISA", "PAN **** 4242", "AID A0000000031010", "EUR 11.90"],
        "capture_status_code": "SUCCESS",
        "last_updated": AT,
        **extra,
    }


# --- models -------------------------------------------------------------------------


def test_a_terminal_keeps_unknown_fields_and_is_strict_on_known_ones() -> None:
    terminal = Terminal.model_validate(terminal_body(vendor_note={"firmware": "4.2"}))
    assert terminal.invoice_creator is InvoiceCreator.CPO
    assert to_json(terminal)["vendor_note"] == {"firmware": "4.2"}
    with pytest.raises(ValidationError, match="terminal_id"):
        Terminal.model_validate({k: v for k, v in terminal_body().items() if k != "terminal_id"})
    with pytest.raises(ValidationError, match="invoice_creator"):
        Terminal.model_validate(terminal_body(invoice_creator="EMSP"))
    with pytest.raises(ValidationError, match="terminal_id"):
        Terminal.model_validate(terminal_body(terminal_id="x" * 37))
    with pytest.raises(ValidationError, match="location_ids"):
        Terminal.model_validate(terminal_body(location_ids="LOC-1"))


def test_a_minimal_terminal_is_its_id_alone() -> None:
    # The spec's POST example of a minimal terminal carries no last_updated.
    assert Terminal.model_validate({"terminal_id": "t-min"}).last_updated is None


def test_an_activation_needs_no_terminal_id_but_a_reference() -> None:
    activation = activation_of({"reference": "SN-778", "location_ids": ["LOC-1"]})
    assert activation.terminal_id is None
    with pytest.raises(RefusedError) as refused:
        activation_of({"location_ids": ["LOC-1"]})
    assert refused.value.status is OcpiStatus.INVALID_PARAMETERS


def test_an_advice_is_strict_on_its_required_fields() -> None:
    advice = FinancialAdviceConfirmation.model_validate(advice_body())
    assert advice.capture_status_code is CaptureStatusCode.SUCCESS
    assert advice.total_costs.after_taxes() == Decimal("11.90")
    for missing in ("id", "authorization_reference", "total_costs", "currency", "last_updated"):
        with pytest.raises(ValidationError, match=missing):
            FinancialAdviceConfirmation.model_validate(
                {k: v for k, v in advice_body().items() if k != missing}
            )
    with pytest.raises(ValidationError, match="capture_status_code"):
        FinancialAdviceConfirmation.model_validate(advice_body(capture_status_code="MAYBE"))
    with pytest.raises(ValidationError, match="eft_data"):
        FinancialAdviceConfirmation.model_validate(advice_body(eft_data=[]))


def test_eft_data_may_be_absent_only_from_a_failed_capture() -> None:
    body = {k: v for k, v in advice_body().items() if k != "eft_data"}
    with pytest.raises(ValidationError, match="eft_data is required"):
        FinancialAdviceConfirmation.model_validate(body)
    failed = FinancialAdviceConfirmation.model_validate({**body, "capture_status_code": "FAILED"})
    assert failed.eft_data is None


def test_a_price_in_the_2_2_1_shape_of_the_modules_examples_is_read_as_2_3_0() -> None:
    raw = json.dumps(advice_body(total_costs={"excl_vat": 4.00, "incl_vat": 4.40}), default=str)
    advice = FinancialAdviceConfirmation.model_validate(loads_exact(raw))
    assert advice.total_costs.before_taxes == Decimal("4.0")
    assert advice.total_costs.after_taxes() == Decimal("4.4")
    plain = FinancialAdviceConfirmation.model_validate(
        advice_body(total_costs={"excl_vat": 4.0, "incl_vat": 4.4})
    )
    assert plain.total_costs.taxes is not None
    assert plain.total_costs.taxes[0].amount == Decimal("0.4")  # not 0.40000000000000036
    with pytest.raises(ValidationError, match="before_taxes"):
        FinancialAdviceConfirmation.model_validate(advice_body(total_costs={"excl_vat": "four"}))


def test_preauthorize_amount_is_kept_checked_and_served_in_2_3_0() -> None:
    body = {**simple_tariff(), "preauthorize_amount": Decimal("50.00")}
    tariff = Tariff.model_validate(body)
    assert tariff.preauthorize_amount == Decimal("50.00")
    assert tariff_from_core(tariff).preauthorize_amount == Decimal("50.00")
    with pytest.raises(ValidationError, match="preauthorize_amount"):
        Tariff.model_validate({**simple_tariff(), "preauthorize_amount": -1})


# --- the slice ------------------------------------------------------------------------


def posted(state: TerminalState | None = None, **extra: Any) -> TerminalState:
    decision = decide_post_terminal(
        state, ptp=ptp(), body=terminal_body(**extra), now=T0, origin=ORIGIN
    )
    [event] = decision.events
    after = evolve_terminal(state, event)
    assert after is not None
    return after


def test_a_ptp_posts_a_terminal_and_the_event_round_trips() -> None:
    decision = decide_post_terminal(None, ptp=ptp(), body=terminal_body(), now=T0, origin=ORIGIN)
    assert decision.answer is True
    [event] = decision.events
    assert event.aggregate_key == "ptp-1/terminal/TERM-0001"
    assert topic_for(event.event_type) is PAYMENTS
    assert parse_event(serialize_event(event)) == event
    state = evolve_terminal(None, event)
    assert state is not None
    assert state.ptp_parties == (Party(country_code="DE", party_id="PTP"),)
    assert state.invoice_creator == "CPO"
    again = decide_post_terminal(state, ptp=ptp(), body=terminal_body(), now=T0, origin=ORIGIN)
    assert again.answer is False


def test_a_terminal_without_last_updated_is_stamped_with_our_receipt() -> None:
    decision = decide_post_terminal(
        None, ptp=ptp(), body={"terminal_id": "t-min"}, now=T0, origin=ORIGIN
    )
    state = evolve_terminal(None, decision.events[0])
    assert state is not None
    assert state.last_updated == T0
    assert state.object["last_updated"] == AT


def test_an_older_post_is_recorded_not_applied() -> None:
    state = posted(city="Berlin")
    older = terminal_body(city="Potsdam", last_updated="2026-12-07T08:00:00Z")
    decision = decide_post_terminal(state, ptp=ptp(), body=older, now=T0, origin=ORIGIN)
    assert len(decision.events) == 1
    assert evolve_terminal(state, decision.events[0]) == state


def test_assignment_sets_both_lists_and_an_empty_one_unassigns() -> None:
    state = posted()
    later = T0 + timedelta(minutes=5)
    assignment = assignment_of({"location_ids": ["LOC-1"], "evse_uids": ["EVSE-9"]})
    assert patch_body(assignment, later) == {
        "location_ids": ["LOC-1"],
        "evse_uids": ["EVSE-9"],
        "last_updated": "2026-12-07T09:05:00Z",
    }
    decision = decide_assigned(
        state,
        terminal_id="term-0001",
        assignment=assignment,
        ptp_status_code=1000,
        now=later,
        origin=ORIGIN,
    )
    assert decision.answer["location_ids"] == ["LOC-1"]
    assert decision.answer["evse_uids"] == ["EVSE-9"]
    assert decision.answer["last_updated"] == "2026-12-07T09:05:00Z"
    assigned = evolve_terminal(state, decision.events[0])
    assert assigned is not None and assigned.location_ids == ["LOC-1"]
    cleared = decide_assigned(
        assigned,
        terminal_id="term-0001",
        assignment=assignment_of({}),
        ptp_status_code=1000,
        now=later,
        origin=ORIGIN,
    )
    assert cleared.answer["location_ids"] == [] and cleared.answer["evse_uids"] == []


def test_an_assignment_needs_a_held_active_terminal() -> None:
    assignment = assignment_of({"location_ids": ["LOC-1"]})
    with pytest.raises(RefusedError) as unknown:
        decide_assigned(
            None,
            terminal_id="nope",
            assignment=assignment,
            ptp_status_code=1000,
            now=T0,
            origin=ORIGIN,
        )
    assert unknown.value.http_status == 404
    state = posted()
    off = decide_deactivated(
        state, terminal_id="term-0001", ptp_status_code=1000, now=T0, origin=ORIGIN
    )
    assert off.answer is True
    deactivated = evolve_terminal(state, off.events[0])
    assert deactivated is not None and deactivated.deactivated
    twice = decide_deactivated(
        deactivated, terminal_id="term-0001", ptp_status_code=1000, now=T0, origin=ORIGIN
    )
    assert twice.events == [] and twice.answer is False
    with pytest.raises(RefusedError) as refused:
        decide_assigned(
            deactivated,
            terminal_id="term-0001",
            assignment=assignment,
            ptp_status_code=1000,
            now=T0,
            origin=ORIGIN,
        )
    assert refused.value.http_status == 409
    # The PTP creating it again (after a new activation) brings it back.
    again = decide_post_terminal(
        deactivated, ptp=ptp(), body=terminal_body(), now=T0, origin=ORIGIN
    )
    back = evolve_terminal(deactivated, again.events[0])
    assert back is not None and not back.deactivated
    with pytest.raises(ValidationError):
        assignment_of({"location_ids": ["x" * 37]})


def test_a_put_sends_the_whole_terminal_with_our_changes_and_records_it() -> None:
    state = posted(vendor_field={"kept": True})
    later = T0 + timedelta(minutes=5)
    changes = changes_of(
        {"customer_reference": "OMV", "invoice_base_url": "https://inv.example.com/new/"},
        "TERM-0001",
    )
    sent = put_body(state, changes, later)
    # The whole object (PUT): held fields and unknown ones kept, ours over them.
    assert sent == {
        **terminal_body(vendor_field={"kept": True}),
        "customer_reference": "OMV",
        "invoice_base_url": "https://inv.example.com/new/",
        "last_updated": "2026-12-07T09:05:00Z",
    }
    decision = decide_put(
        state, terminal_id="term-0001", body=sent, ptp_status_code=1000, now=later, origin=ORIGIN
    )
    [event] = decision.events
    assert event.event_type == "TerminalPut"
    assert topic_for(event.event_type) is PAYMENTS
    assert parse_event(serialize_event(event)) == event
    after = evolve_terminal(state, event)
    assert after is not None
    assert after.object == decision.answer == sent
    assert after.last_updated == later and after.ptp_parties == state.ptp_parties
    # null removes a field; known fields are strict; the id is the URL's.
    removed = put_body(state, changes_of({"customer_reference": None}, "term-0001"), later)
    assert "customer_reference" not in removed
    for bad in ({"invoice_creator": "NOBODY"}, {"customer_reference": "x" * 37}):
        with pytest.raises(ValidationError):
            changes_of(bad, "term-0001")
    with pytest.raises(RefusedError) as other:
        changes_of({"terminal_id": "term-0002"}, "term-0001")
    assert other.value.status == OcpiStatus.INVALID_PARAMETERS


def test_a_put_needs_a_held_active_terminal() -> None:
    state = posted()
    for held, http in ((None, 404), (_deactivated(state), 409)):
        with pytest.raises(RefusedError) as refused:
            decide_put(
                held,
                terminal_id="term-0001",
                body=terminal_body(),
                ptp_status_code=1000,
                now=T0,
                origin=ORIGIN,
            )
        assert refused.value.http_status == http


def _deactivated(state: TerminalState) -> TerminalState:
    off = decide_deactivated(
        state, terminal_id="term-0001", ptp_status_code=1000, now=T0, origin=ORIGIN
    )
    after = evolve_terminal(state, off.events[0])
    assert after is not None and after.deactivated
    return after


def test_a_pulled_terminal_is_recorded_when_new_or_changed_and_once() -> None:
    first = decide_pulled_terminal(None, ptp=ptp(), item=terminal_body(), now=T0, origin=ORIGIN)
    [event] = first.events
    assert event.event_type == "TerminalPulled"
    assert event.aggregate_key == "ptp-1/terminal/TERM-0001"
    assert parse_event(serialize_event(event)) == event
    state = evolve_terminal(None, event)
    assert state is not None and state.object == terminal_body()
    same = decide_pulled_terminal(state, ptp=ptp(), item=terminal_body(), now=T0, origin=ORIGIN)
    assert same.events == [] and same.answer == "unchanged"
    changed_body = terminal_body(city="Potsdam", last_updated="2026-12-07T10:00:00Z")
    changed = decide_pulled_terminal(state, ptp=ptp(), item=changed_body, now=T0, origin=ORIGIN)
    assert len(changed.events) == 1
    after = evolve_terminal(state, changed.events[0])
    assert after is not None and after.object["city"] == "Potsdam"
    # Older than what we hold (our assignment after it): nothing to record.
    assigned = decide_assigned(
        after,
        terminal_id="term-0001",
        assignment=assignment_of({"location_ids": ["LOC-1"]}),
        ptp_status_code=1000,
        now=T0 + timedelta(hours=2),
        origin=ORIGIN,
    )
    held = evolve_terminal(after, assigned.events[0])
    stale = decide_pulled_terminal(held, ptp=ptp(), item=changed_body, now=T0, origin=ORIGIN)
    assert stale.events == []
    # Invalid: the model names the field.
    with pytest.raises(ValidationError) as invalid:
        decide_pulled_terminal(
            None, ptp=ptp(), item=terminal_body(invoice_creator="X"), now=T0, origin=ORIGIN
        )
    assert "invoice_creator" in str(invalid.value)


def test_a_pulled_terminal_without_last_updated_is_compared_without_it() -> None:
    bare = {"terminal_id": "term-0001", "city": "Berlin"}
    first = decide_pulled_terminal(None, ptp=ptp(), item=bare, now=T0, origin=ORIGIN)
    state = evolve_terminal(None, first.events[0])
    assert state is not None and state.last_updated == T0
    later = T0 + timedelta(minutes=1)
    again = decide_pulled_terminal(state, ptp=ptp(), item=bare, now=later, origin=ORIGIN)
    assert again.events == []
    moved = decide_pulled_terminal(
        state, ptp=ptp(), item={**bare, "city": "Bonn"}, now=later, origin=ORIGIN
    )
    after = evolve_terminal(state, moved.events[0])
    assert after is not None and after.object["city"] == "Bonn" and after.last_updated == later


def test_a_pull_does_not_reactivate_a_terminal_we_deactivated() -> None:
    off = _deactivated(posted())
    changed = terminal_body(city="Potsdam", last_updated="2026-12-07T10:00:00Z")
    pulled = decide_pulled_terminal(off, ptp=ptp(), item=changed, now=T0, origin=ORIGIN)
    after = evolve_terminal(off, pulled.events[0])
    assert after is not None and after.object["city"] == "Potsdam" and after.deactivated
    # A new terminal pulled is active.
    fresh = decide_pulled_terminal(None, ptp=ptp(), item=changed, now=T0, origin=ORIGIN)
    made = evolve_terminal(None, fresh.events[0])
    assert made is not None and not made.deactivated


def test_a_pulled_advice_is_recorded_when_new_or_changed_and_once() -> None:
    first = decide_pulled_advice(None, ptp=ptp(), item=advice_body(), now=T0, origin=ORIGIN)
    [event] = first.events
    assert event.event_type == "FinancialAdviceConfirmationPosted"
    state = evolve_advice(None, event)
    assert state is not None
    same = decide_pulled_advice(state, ptp=ptp(), item=advice_body(), now=T0, origin=ORIGIN)
    assert same.events == [] and same.answer == "unchanged"
    newer = advice_body(capture_status_code="PARTIAL_SUCCESS", last_updated="2026-12-07T10:00:00Z")
    changed = decide_pulled_advice(state, ptp=ptp(), item=newer, now=T0, origin=ORIGIN)
    after = evolve_advice(state, changed.events[0])
    assert after is not None and after.capture_status_code == "PARTIAL_SUCCESS"
    older = advice_body(capture_status_code="FAILED", last_updated="2026-12-07T08:00:00Z")
    assert decide_pulled_advice(after, ptp=ptp(), item=older, now=T0, origin=ORIGIN).events == []
    with pytest.raises(ValidationError):
        decide_pulled_advice(None, ptp=ptp(), item={"id": "fac-x"}, now=T0, origin=ORIGIN)


def test_a_ptp_posts_an_advice_keyed_under_itself() -> None:
    decision = decide_post_advice(None, ptp=ptp(), body=advice_body(), now=T0, origin=ORIGIN)
    [event] = decision.events
    assert decision.answer is True
    assert event.aggregate_key == "ptp-1/advice/FAC-0001"
    assert parse_event(serialize_event(event)) == event
    state = evolve_advice(None, event)
    assert state is not None
    assert state.authorization_reference == "pay-ref-0001"
    assert state.object["eft_data"][1] == "PAN **** 4242"
    # The terminal slice folds nothing of an advice, and the other way round.
    assert evolve_terminal(None, event) is None
    assert evolve_advice(None, posted_event()) is None
    with pytest.raises(ValidationError):
        decide_post_advice(
            None, ptp=ptp(), body=advice_body(currency="euro"), now=T0, origin=ORIGIN
        )


def posted_event() -> Any:
    return decide_post_terminal(
        None, ptp=ptp(), body=terminal_body(), now=T0, origin=ORIGIN
    ).events[0]


# --- the money path: invoice_reference_id ------------------------------------------


def session_paid(**extra: Any) -> dict[str, Any]:
    session = completed_session()
    return {
        **session,
        "auth_method": "COMMAND",
        "authorization_reference": "pay-ref-0001",
        "cdr_token": {**session["cdr_token"], "country_code": "DE", "party_id": "PTP"},
        **extra,
    }


def assigned_terminal(creator: str = "CPO", **assignment: list[str]) -> TerminalState:
    state = posted(invoice_creator=creator)
    decision = decide_assigned(
        state,
        terminal_id="term-0001",
        assignment=assignment_of(assignment),
        ptp_status_code=1000,
        now=T0,
        origin=ORIGIN,
    )
    after = evolve_terminal(state, decision.events[0])
    assert after is not None
    return after


def test_the_invoice_reference_of_a_terminal_payment_we_invoice() -> None:
    session = session_paid()
    by_location = assigned_terminal(location_ids=[session["location_id"].lower()])
    assert invoice_reference_id(session, [by_location]) == "pay-ref-0001"
    by_evse = assigned_terminal(evse_uids=[session["evse_uid"]])
    assert invoice_reference_id(session, [by_evse]) == "pay-ref-0001"


def test_no_invoice_reference_where_the_ptp_invoices_or_nothing_matches() -> None:
    session = session_paid()
    at_location = {"location_ids": [session["location_id"]]}
    assert invoice_reference_id(session, [assigned_terminal("PTP", **at_location)]) is None
    assert invoice_reference_id(session, [assigned_terminal(evse_uids=["ELSEWHERE"])]) is None
    assert invoice_reference_id(session, []) is None
    # Another party's token at a terminal's charger: not this PTP's payment.
    other = session_paid(cdr_token={**session["cdr_token"], "party_id": "EMP"})
    assert invoice_reference_id(other, [assigned_terminal(**at_location)]) is None
    # No authorization_reference: nothing to name the invoice by.
    bare = session_paid(authorization_reference=None)
    assert invoice_reference_id(bare, [assigned_terminal(**at_location)]) is None
    # A deactivated terminal takes no payments.
    terminal = assigned_terminal(**at_location)
    off = decide_deactivated(
        terminal, terminal_id="term-0001", ptp_status_code=1000, now=T0, origin=ORIGIN
    )
    gone = evolve_terminal(terminal, off.events[0])
    assert gone is not None
    assert invoice_reference_id(session, [gone]) is None


def test_the_cdr_carries_the_invoice_reference() -> None:
    location = priced_location(tariff_ids=["CDR-T1"])
    built = build_cdr(
        session_paid(),
        location,
        {"CDR-T1": simple_tariff()},
        issued_at=T0,
        invoice_reference_id="pay-ref-0001",
    )
    assert built.cdr["invoice_reference_id"] == "pay-ref-0001"
    assert built.cdr["authorization_reference"] == "pay-ref-0001"
    plain = build_cdr(completed_session(), location, {"CDR-T1": simple_tariff()}, issued_at=T0)
    assert "invoice_reference_id" not in plain.cdr


def test_our_endpoint_entry_for_the_2_3_0_version_details() -> None:
    endpoint = payments_endpoint("https://hub.example.com/")
    assert endpoint.model_dump(mode="json") == {
        "identifier": "payments",
        "role": "RECEIVER",
        "url": "https://hub.example.com/ocpi/cpo/2.3.0/payments",
    }
