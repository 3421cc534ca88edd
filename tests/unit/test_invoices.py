"""Monthly invoices without services (docs/adr/0036): the lines, VAT and
its rounding, the gap-free numbers, idempotence, a late charge on the next
invoice, a reversal on an invoice, the states, and a whole close on the
write path with its fakes (a run broken half-way, a second close)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from processors.billing_close import ScheduledClose, month_to_close
from producers import invoice_numbers
from producers.billing.aggregate import SLICE, evolve
from producers.billing.charges import decide_charge
from producers.billing.corporations import NewCorporation, decide_register
from producers.billing.invoices import (
    DraftOutcome,
    InvoicePayment,
    InvoiceVoiding,
    decide_draft,
    decide_issue,
    decide_paid,
    decide_void,
    vat_of,
)
from producers.billing.members import NewMember, decide_activate, decide_invite
from producers.billing.state import CorporationState
from producers.decision_store import InMemoryDecisionStore
from producers.invoicing import close_month, month_period, previous_month
from producers.log import Fault, InMemoryEventLog, InMemoryLogHistory
from producers.write_path import NotRecordedError, RefusedError, WritePath
from schemas.events import parse_event, serialize_event
from schemas.events.billing import (
    InvoiceDrafted,
    InvoiceIssued,
    InvoiceLineKind,
    InvoiceNumbersAssigned,
    InvoiceStatus,
    MonthClosed,
)
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import BILLING_INVOICE_NUMBERS, CATALOGUE
from tests.unit.test_billing import CORP, INVITATION, ORIGIN, member_cdr, registered

ADA, BOB = "mem000000001", "mem000000002"
CARDS = {ADA: "04A1B2C3D4", BOB: "04FFEEDDCC"}
NOV_START, DEC_START = month_period("2026-11")
DEC_END = month_period("2026-12")[1]
CLOSE_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def _with_member(
    state: CorporationState, member_id: str, name: str, cost_centre: str | None
) -> CorporationState:
    body = NewMember.model_validate(
        {"name": name, "email": f"{name.lower()}@acme.example", "rfid_uid": CARDS[member_id]}
        | ({"cost_centre": cost_centre} if cost_centre else {})
    )
    at = datetime(2026, 10, 1, tzinfo=UTC)
    state = decide_invite(
        state,
        corporation_id=CORP,
        member_id=member_id,
        body=body,
        invitation_id=INVITATION,
        valid_for=timedelta(days=7),
        origin=ORIGIN,
        now=at,
    ).answer
    return decide_activate(
        state,
        corporation_id=CORP,
        member_id=member_id,
        invitation_id=INVITATION,
        origin=ORIGIN,
        now=at,
    ).answer


def fleet(fee: str | None = "2.50") -> CorporationState:
    """Acme (0.35/kWh, 21 % VAT, 30 days) with Ada (cost centre R&D) and Bob."""
    body = NewCorporation.model_validate(
        {
            **_corporation(),
            "contract": {
                "price_per_kwh": Decimal("0.35"),
                "monthly_fee_per_member": Decimal(fee) if fee else None,
                "vat_rate": Decimal("0.21"),
                "payment_term_days": 30,
            },
        }
    )
    state = decide_register(
        None, corporation_id=CORP, body=body, origin=ORIGIN, now=datetime(2026, 9, 1, tzinfo=UTC)
    ).answer
    return _with_member(_with_member(state, ADA, "Ada", "R&D"), BOB, "Bob", None)


def _corporation() -> dict[str, Any]:
    from tests.unit.test_billing import corporation_body

    return corporation_body()


def _apply(state: CorporationState, decision: Any) -> CorporationState:
    """Fold a decision's events as they come back from the log (JSON)."""
    for event in decision.events:
        state = evolve(state, parse_event(serialize_event(event)))  # type: ignore[arg-type]
    return state


def charged(
    state: CorporationState,
    cdr_id: str,
    member_id: str,
    *,
    kwh: str = "8.25",
    ended: datetime = datetime(2026, 11, 10, 12, tzinfo=UTC),
) -> CorporationState:
    token = {
        "country_code": "ZZ",
        "party_id": "HUB",
        "uid": CARDS[member_id],
        "type": "RFID",
        "contract_id": "C",
    }
    cdr = member_cdr(
        cdr_id,
        cdr_token=token,
        total_energy=float(kwh),
        start_date_time=(ended - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        end_date_time=ended.isoformat().replace("+00:00", "Z"),
    )
    return _apply(state, _charge(state, cdr))


def _charge(state: CorporationState, cdr: dict[str, Any]) -> Any:
    return decide_charge(
        state,
        corporation_id=CORP,
        cdr_key_of=lambda ref: f"NL/CPO/{ref}",
        key=f"NL/CPO/{cdr['id']}",
        cdr=cdr,
        role="received",
        origin=ORIGIN,
        now=CLOSE_AT,
    )


def credited(state: CorporationState, cdr_id: str, member_id: str) -> CorporationState:
    token = {
        "country_code": "ZZ",
        "party_id": "HUB",
        "uid": CARDS[member_id],
        "type": "RFID",
        "contract_id": "C",
    }
    credit = member_cdr(f"{cdr_id}-C", cdr_token=token, credit=True, credit_reference_id=cdr_id)
    return _apply(state, _charge(state, credit))


def draft(state: CorporationState, month: str, now: datetime = CLOSE_AT) -> Any:
    start, end = month_period(month)
    return decide_draft(
        state,
        corporation_id=CORP,
        month=month,
        period_start=start,
        period_end=end,
        origin=ORIGIN,
        now=now,
    )


def november() -> CorporationState:
    """Three sessions of Ada's (8.25 kWh: 2.89 each), one of Bob's (10 kWh: 3.50)."""
    state = fleet()
    for n in range(3):
        state = charged(state, f"A{n}", ADA)
    return charged(state, "B0", BOB, kwh="10")


# --- the content -------------------------------------------------------------------


def test_an_invoice_has_lines_per_cost_centre_and_member_and_vat_on_the_total() -> None:
    decision = draft(november(), "2026-11")
    [event] = decision.events
    d = event.payload
    assert decision.answer.outcome is DraftOutcome.DRAFTED
    assert d.invoice_id == f"{CORP}-202611" and d.month == "2026-11"
    assert (d.period_start, d.period_end) == (NOV_START, DEC_START)
    got = [
        (line.cost_centre, line.member_name, line.kind, line.sessions, line.energy_kwh, line.net)
        for line in d.lines
    ]
    assert got == [
        ("R&D", "Ada", InvoiceLineKind.CHARGES, 3, Decimal("24.75"), Decimal("8.67")),
        ("R&D", "Ada", InvoiceLineKind.MONTHLY_FEE, 0, Decimal(0), Decimal("2.50")),
        (None, "Bob", InvoiceLineKind.CHARGES, 1, Decimal("10"), Decimal("3.50")),
        (None, "Bob", InvoiceLineKind.MONTHLY_FEE, 0, Decimal(0), Decimal("2.50")),
    ]
    assert [line.unit_price for line in d.lines] == [Decimal("0.35"), Decimal("2.50")] * 2
    # By hand: 8.67 + 2.50 + 3.50 + 2.50 = 17.17; 21 % = 3.6057 -> 3.61.
    assert (d.net_total, d.vat_total, d.gross_total) == (
        Decimal("17.17"),
        Decimal("3.61"),
        Decimal("20.78"),
    )
    [vat] = d.vat
    assert (vat.rate, vat.base, vat.amount) == (Decimal("0.21"), Decimal("17.17"), Decimal("3.61"))
    assert [(c.cost_centre, c.sessions, c.net) for c in d.cost_centres] == [
        ("R&D", 3, Decimal("11.17")),
        (None, 1, Decimal("6.00")),
    ]
    # The buyer and the terms as they were; amounts as decimal strings.
    assert d.buyer.legal_name == "Acme Fleet B.V." and d.buyer.vat_id == "NL004495445B01"
    assert d.contract.payment_term_days == d.payment_term_days == 30
    raw = json.loads(serialize_event(event))["payload"]
    assert (raw["net_total"], raw["vat_total"], raw["gross_total"]) == ("17.17", "3.61", "20.78")
    assert raw["lines"][0]["energy_kwh"] == "24.75"
    assert sorted(d.charge_keys) == ["NL/CPO/A0", "NL/CPO/A1", "NL/CPO/A2", "NL/CPO/B0"]


@pytest.mark.parametrize(
    ("net", "rate", "vat"),
    [
        ("17.17", "0.21", "3.61"),  # 3.6057
        ("0.50", "0.05", "0.03"),  # 0.025: half up (half even would give 0.02)
        ("-0.50", "0.05", "-0.03"),  # a half away from zero when negative too
        ("100.00", "0", "0.00"),
        ("0.15", "0.1", "0.02"),  # 0.015
    ],
)
def test_vat_is_rounded_once_half_up_to_the_cent(net: str, rate: str, vat: str) -> None:
    assert str(vat_of(Decimal(net), Decimal(rate))) == vat


def test_vat_is_computed_on_the_total_not_summed_per_line() -> None:
    # Three members' 0.05 each at 10 %: per line 0.005 -> 0.01, three times
    # 0.03; on the total 0.15 -> 0.015 -> 0.02. The invoice says 0.02.
    state = fleet(fee=None)
    body = NewCorporation.model_validate(
        {
            **_corporation(),
            "contract": {
                "price_per_kwh": Decimal("0.05"),
                "vat_rate": Decimal("0.1"),
                "payment_term_days": 14,
            },
        }
    )
    state = state.model_copy(update={"contract": body.contract})
    for n, member in enumerate((ADA, BOB, ADA)):
        state = charged(state, f"S{n}", member, kwh="1")
    d = draft(state, "2026-11").events[0].payload
    assert d.net_total == Decimal("0.15") and d.vat_total == Decimal("0.02")


def test_nothing_to_bill_makes_no_invoice_but_a_fee_alone_does() -> None:
    without_fee = draft(fleet(fee=None), "2026-11")
    assert without_fee.events == [] and without_fee.answer.outcome is DraftOutcome.NOTHING
    fees = draft(fleet(), "2026-11").events[0].payload
    assert [line.kind for line in fees.lines] == [InvoiceLineKind.MONTHLY_FEE] * 2
    assert fees.net_total == Decimal("5.00") and fees.gross_total == Decimal("6.05")


def test_a_member_activated_after_the_month_pays_no_fee_for_it() -> None:
    state = fleet()
    late = state.members[BOB].model_copy(update={"activated_at": DEC_START})
    state = state.model_copy(update={"members": {**state.members, BOB: late}})
    d = draft(state, "2026-11").events[0].payload
    assert [line.member_id for line in d.lines] == [ADA]


def test_a_session_ending_at_the_months_end_belongs_to_the_next_month() -> None:
    state = charged(fleet(fee=None), "EDGE", ADA, ended=DEC_START)
    state = charged(state, "LAST", ADA, ended=DEC_START - timedelta(milliseconds=1))
    d = draft(state, "2026-11").events[0].payload
    assert d.charge_keys == ["NL/CPO/LAST"]
    state = _apply(state, draft(state, "2026-11"))
    assert draft(state, "2026-12").events[0].payload.charge_keys == ["NL/CPO/EDGE"]


# --- open charges: once on an invoice, never again ------------------------------------


def test_a_late_charge_lands_on_the_next_invoice_never_on_a_closed_one() -> None:
    state = november()
    nov = draft(state, "2026-11")
    state = _apply(state, nov)
    before = state.invoices[f"{CORP}-202611"]
    # A CDR of a November session arrives after November was invoiced.
    state = charged(state, "LATE", BOB, kwh="2", ended=datetime(2026, 11, 20, tzinfo=UTC))
    assert state.invoices[f"{CORP}-202611"] == before
    assert draft(state, "2026-11").events == []  # November's invoice is drafted once
    dec = draft(state, "2026-12", now=DEC_END).events[0].payload
    assert dec.charge_keys == ["NL/CPO/LATE"]
    late = [line for line in dec.lines if line.kind is InvoiceLineKind.CHARGES]
    assert [(line.member_id, line.net) for line in late] == [(BOB, Decimal("0.70"))]


def test_a_reversal_goes_with_its_charge_or_on_the_next_invoice() -> None:
    state = credited(november(), "A0", ADA)  # reversed before any invoice
    nov = draft(state, "2026-11").events[0].payload
    reversals = [line for line in nov.lines if line.kind is InvoiceLineKind.REVERSALS]
    assert [(r.sessions, r.energy_kwh, r.net) for r in reversals] == [
        (1, Decimal("-8.25"), Decimal("-2.89"))
    ]
    assert nov.reversal_keys == ["NL/CPO/A0"] and "NL/CPO/A0" in nov.charge_keys
    assert nov.net_total == Decimal("17.17") - Decimal("2.89")
    state = _apply(state, draft(state, "2026-11"))
    # A Credit CDR after the invoice: the reversal is on the next one.
    state = credited(state, "B0", BOB)
    dec = draft(state, "2026-12", now=DEC_END).events[0].payload
    assert dec.charge_keys == [] and dec.reversal_keys == ["NL/CPO/B0"]
    assert [(line.kind, line.net) for line in dec.lines if line.member_id == BOB] == [
        (InvoiceLineKind.REVERSALS, Decimal("-3.50")),
        (InvoiceLineKind.MONTHLY_FEE, Decimal("2.50")),
    ]


def test_a_credit_before_its_cdr_is_on_no_invoice() -> None:
    state = credited(fleet(fee=None), "X1", ADA)
    state = charged(state, "X1", ADA)  # charged nothing: reversed already
    assert draft(state, "2026-11").answer.outcome is DraftOutcome.NOTHING


def test_a_month_earlier_than_one_invoiced_is_skipped() -> None:
    state = _apply(november(), draft(november(), "2026-12", now=DEC_END))
    decision = draft(state, "2026-11")
    assert decision.events == [] and decision.answer.outcome is DraftOutcome.LATER


def test_an_unknown_corporation_is_refused() -> None:
    with pytest.raises(RefusedError) as refused:
        draft(None, "2026-11")  # type: ignore[arg-type]
    assert refused.value.http_status == 404


# --- numbers ---------------------------------------------------------------------------


def assign(state: Any, ids: list[str], now: datetime = CLOSE_AT) -> Any:
    return invoice_numbers.decide_assign(state, invoice_ids=ids, origin=ORIGIN, now=now)


def _fold(state: Any, decision: Any) -> Any:
    for event in decision.events:
        state = invoice_numbers.evolve(state, parse_event(serialize_event(event)))  # type: ignore[arg-type]
    return state


def test_numbers_follow_one_another_once_per_invoice() -> None:
    a, b, c = (f"{x * 12}-202611" for x in "abc")
    first = assign(None, [a, b])
    [event] = first.events
    assert [(n.invoice_id, n.number) for n in event.payload.numbers] == [
        (a, "2026-000001"),
        (b, "2026-000002"),
    ]
    state = _fold(None, first)
    again = assign(state, [b, c, c])
    [event] = again.events  # only c is new
    assert [(n.invoice_id, n.number) for n in event.payload.numbers] == [(c, "2026-000003")]
    assert {i: n.number for i, n in again.answer.numbers.items()} == {
        b: "2026-000002",
        c: "2026-000003",
    }
    state = _fold(state, again)
    assert assign(state, [a, b, c]).events == []
    assert (state.year, state.last) == (2026, 3)


def test_a_new_year_starts_its_sequence_again() -> None:
    state = _fold(None, assign(None, [f"{'a' * 12}-202611"]))
    january = datetime(2027, 1, 2, tzinfo=UTC)
    decision = assign(state, [f"{'a' * 12}-202612"], now=january)
    [given] = decision.events[0].payload.numbers
    assert (given.number, given.issue_date) == ("2027-000001", date(2027, 1, 2))


def test_a_closed_month_is_recorded_once_and_gets_no_more_numbers() -> None:
    a = f"{'a' * 12}-202611"
    state = _fold(None, assign(None, [a]))
    closing = invoice_numbers.decide_close_month(
        state, month="2026-11", invoices=1, origin=ORIGIN, now=CLOSE_AT
    )
    state = _fold(state, closing)
    assert state.closed_months == {"2026-11": 1} and state.assigned == {}
    assert (
        invoice_numbers.decide_close_month(
            state, month="2026-11", invoices=1, origin=ORIGIN, now=CLOSE_AT
        ).events
        == []
    )
    with pytest.raises(RefusedError):
        assign(state, [f"{'b' * 12}-202611"])
    # The sequence goes on after a close.
    assert assign(state, [f"{'b' * 12}-202612"]).events[0].payload.numbers[0].number == (
        "2026-000002"
    )


def test_the_numbers_topic_has_one_partition_and_is_documented() -> None:
    from pathlib import Path

    assert BILLING_INVOICE_NUMBERS in CATALOGUE and BILLING_INVOICE_NUMBERS.partitions == 1
    doc = (Path(__file__).parents[2] / "docs" / "topics.md").read_text()
    assert f"## `{BILLING_INVOICE_NUMBERS.name}`" in doc
    for event_type in BILLING_INVOICE_NUMBERS.event_types:
        assert f"`{event_type}`" in doc


# --- states -------------------------------------------------------------------------------


def issued(state: CorporationState, number: str = "2026-000007") -> CorporationState:
    invoice_id = f"{CORP}-202611"
    decision = decide_issue(
        state,
        invoice_id=invoice_id,
        number=number,
        issue_date=date(2026, 12, 1),
        origin=ORIGIN,
        now=CLOSE_AT,
    )
    return _apply(state, decision)


def test_draft_issued_paid() -> None:
    invoice_id = f"{CORP}-202611"
    state = _apply(november(), draft(november(), "2026-11"))
    assert state.invoices[invoice_id].status is InvoiceStatus.DRAFT
    with pytest.raises(RefusedError):  # a draft is neither paid nor voided
        decide_paid(
            state, invoice_id=invoice_id, body=InvoicePayment(), origin=ORIGIN, now=CLOSE_AT
        )
    state = issued(state)
    invoice = state.invoices[invoice_id]
    assert (invoice.status, invoice.number) == (InvoiceStatus.ISSUED, "2026-000007")
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 12, 1), date(2026, 12, 31))
    assert issued(state) == state  # the same number again: nothing
    with pytest.raises(RefusedError) as other:
        issued(state, "2026-000008")
    assert other.value.http_status == 409
    paid = decide_paid(
        state,
        invoice_id=invoice_id,
        body=InvoicePayment(paid_on=date(2026, 12, 20), reference="BANK-1"),
        origin=ORIGIN,
        now=CLOSE_AT,
    )
    state = _apply(state, paid)
    assert state.invoices[invoice_id].status is InvoiceStatus.PAID
    assert state.invoices[invoice_id].paid_on == date(2026, 12, 20)
    again = decide_paid(
        state, invoice_id=invoice_id, body=InvoicePayment(), origin=ORIGIN, now=CLOSE_AT
    )
    assert again.events == []
    with pytest.raises(RefusedError) as voided:
        decide_void(
            state,
            invoice_id=invoice_id,
            body=InvoiceVoiding(reason="x"),
            origin=ORIGIN,
            now=CLOSE_AT,
        )
    assert "PAID" in voided.value.message


def test_a_void_invoice_keeps_its_number_and_its_charges_go_on_the_next() -> None:
    invoice_id = f"{CORP}-202611"
    state = issued(_apply(november(), draft(november(), "2026-11")))
    decision = decide_void(
        state,
        invoice_id=invoice_id,
        body=InvoiceVoiding(reason="wrong contract"),
        origin=ORIGIN,
        now=CLOSE_AT,
    )
    state = _apply(state, decision)
    invoice = state.invoices[invoice_id]
    assert (invoice.status, invoice.number, invoice.void_reason) == (
        InvoiceStatus.VOID,
        "2026-000007",
        "wrong contract",
    )
    assert (
        decide_void(
            state,
            invoice_id=invoice_id,
            body=InvoiceVoiding(reason="again"),
            origin=ORIGIN,
            now=CLOSE_AT,
        ).events
        == []
    )
    with pytest.raises(RefusedError):
        decide_paid(
            state, invoice_id=invoice_id, body=InvoicePayment(), origin=ORIGIN, now=CLOSE_AT
        )
    dec = draft(state, "2026-12", now=DEC_END).events[0].payload
    assert sorted(dec.charge_keys) == ["NL/CPO/A0", "NL/CPO/A1", "NL/CPO/A2", "NL/CPO/B0"]


def test_an_unknown_invoice_is_refused() -> None:
    with pytest.raises(RefusedError) as refused:
        decide_paid(
            fleet(),
            invoice_id=f"{CORP}-202611",
            body=InvoicePayment(),
            origin=ORIGIN,
            now=CLOSE_AT,
        )
    assert refused.value.http_status == 404


def test_replay_folds_the_same_state_as_the_decisions() -> None:
    state = november()
    decision = draft(state, "2026-11")
    assert _apply(state, decision) == evolve(state, decision.events[0])


# --- a whole close on the write path (fakes) --------------------------------------------


def _write_path(log: InMemoryEventLog, store: InMemoryDecisionStore) -> WritePath:
    return WritePath(log, store, InMemoryLogHistory(log))


def _seed(store: InMemoryDecisionStore) -> None:
    store.seed(SLICE, CORP, november())
    other = registered().model_copy(update={"corporation_id": "beta00000002"})
    store.seed(SLICE, "beta00000002", other)  # no member: nothing to bill
    store.seed(SLICE, "gamma0000003", _renamed(november(), "gamma0000003"))


def _renamed(state: CorporationState, corporation_id: str) -> CorporationState:
    return state.model_copy(update={"corporation_id": corporation_id})


async def test_close_month_numbers_each_invoice_and_refuses_a_second_close() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    _seed(store)
    w = _write_path(log, store)
    report = await close_month(w, month="2026-11", origin=ORIGIN, now=CLOSE_AT)
    shown = report.shown()
    assert (shown["invoices"], shown["drafted"], shown["numbered"], shown["issued"]) == (2, 2, 2, 2)
    assert shown["nothing_to_bill"] == 1
    assert shown["numbers"] == ["2026-000001", "2026-000002"]
    kinds = [type(e).__name__ for e in log.events]
    assert kinds.count("InvoiceDrafted") == 2 and kinds.count("InvoiceIssued") == 2
    assert kinds[-1] == "MonthClosed"
    written = len(log.events)
    with pytest.raises(RefusedError) as again:
        await close_month(w, month="2026-11", origin=ORIGIN, now=CLOSE_AT)
    assert again.value.message == "2026-11 is already closed (2 invoices), nothing written"
    assert len(log.events) == written
    # December (the fees) is closed in January: the new year's sequence.
    later = await close_month(w, month="2026-12", origin=ORIGIN, now=DEC_END)
    assert later.shown()["numbers"] == ["2027-000001", "2027-000002"]


async def test_a_close_in_chunks_numbers_in_id_order_and_lets_states_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from producers import invoicing

    monkeypatch.setattr(invoicing, "CORPORATIONS_PER_CHUNK", 1)
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    _seed(store)
    w = _write_path(log, store)
    report = await close_month(w, month="2026-11", origin=ORIGIN, now=CLOSE_AT)
    assert report.shown()["numbers"] == ["2026-000001", "2026-000002"]
    assigned = [e for e in log.events if isinstance(e, InvoiceNumbersAssigned)]
    assert [[n.invoice_id for n in e.payload.numbers] for e in assigned] == [
        [f"{CORP}-202611"],
        ["gamma0000003-202611"],
    ]
    assert not any(key[0] == SLICE.name for key in w._cache)


@pytest.mark.parametrize(
    ("month", "now", "status", "says"),
    [
        ("2026-11", datetime(2026, 11, 30, 23, tzinfo=UTC), 409, "has not ended yet"),
        ("2026-13", CLOSE_AT, 400, "is not a month"),
        ("nov", CLOSE_AT, 400, "is not a month"),
    ],
)
async def test_a_month_that_cannot_be_closed_writes_nothing(
    month: str, now: datetime, status: int, says: str
) -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    _seed(store)
    with pytest.raises(RefusedError) as refused:
        await close_month(_write_path(log, store), month=month, origin=ORIGIN, now=now)
    assert refused.value.http_status == status and says in refused.value.message
    if status == 400:
        assert refused.value.status is OcpiStatus.INVALID_PARAMETERS
    assert log.events == []


async def test_a_close_broken_between_number_and_issue_is_completed_without_new_numbers() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    _seed(store)
    w = _write_path(log, store)
    # Appends: two drafts, the numbers, then the first issue fails.
    log.faults = [None, None, None, Fault.NOT_SENT]  # type: ignore[list-item]
    with pytest.raises(NotRecordedError):
        await close_month(w, month="2026-11", origin=ORIGIN, now=CLOSE_AT)
    assigned = [e for e in log.events if isinstance(e, InvoiceNumbersAssigned)]
    assert len(assigned) == 1 and not any(isinstance(e, MonthClosed) for e in log.events)
    report = await close_month(w, month="2026-11", origin=ORIGIN, now=CLOSE_AT + timedelta(hours=1))
    shown = report.shown()
    assert (shown["drafted"], shown["numbered"]) == (0, 0)
    assert shown["numbers"] == ["2026-000001", "2026-000002"]
    assert len([e for e in log.events if isinstance(e, InvoiceNumbersAssigned)]) == 1
    issues = [e for e in log.events if isinstance(e, InvoiceIssued)]
    assert sorted(e.payload.number for e in issues) == ["2026-000001", "2026-000002"]
    # Issued with the date the number was given, not the rerun's.
    assert {e.payload.issue_date for e in issues} == {date(2026, 12, 1)}
    assert sum(isinstance(e, InvoiceDrafted) for e in log.events) == 2


def test_previous_month() -> None:
    assert previous_month(datetime(2027, 1, 5, tzinfo=UTC)) == "2026-12"
    assert previous_month(datetime(2026, 11, 1, tzinfo=UTC)) == "2026-10"


# --- the scheduled close -------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "day", "closed", "due"),
    [
        (datetime(2026, 12, 3, 1, tzinfo=UTC), 3, set(), "2026-11"),
        (datetime(2026, 12, 2, 23, tzinfo=UTC), 3, set(), None),  # before the day
        (datetime(2026, 12, 9, tzinfo=UTC), 3, set(), "2026-11"),  # any day after it
        (datetime(2026, 12, 9, tzinfo=UTC), 3, {"2026-11"}, None),  # closed already
        (datetime(2027, 1, 1, tzinfo=UTC), 1, set(), "2026-12"),
        (datetime(2027, 1, 1, tzinfo=UTC), 0, set(), None),  # no schedule
    ],
)
def test_the_schedule_closes_the_previous_month_from_its_day(
    now: datetime, day: int, closed: set[str], due: str | None
) -> None:
    assert month_to_close(now, day, closed) == due


async def test_the_scheduled_close_closes_once() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    _seed(store)
    schedule = ScheduledClose(_write_path(log, store), ORIGIN.source, 1, clock=lambda: CLOSE_AT)
    report = await schedule.tick()
    assert report is not None and report.shown()["numbers"] == ["2026-000001", "2026-000002"]
    written = len(log.events)
    assert await schedule.tick() is None
    assert len(log.events) == written


# --- the document of an issued invoice (producers/invoice_documents.py) -----------------


def _issued_events(state: CorporationState) -> tuple[Any, Any]:
    decision = draft(state, "2026-11")
    state = _apply(state, decision)
    [issue] = decide_issue(
        state,
        invoice_id=f"{CORP}-202611",
        number="2026-000042",
        issue_date=date(2026, 12, 1),
        origin=ORIGIN,
        now=CLOSE_AT,
    ).events
    return decision.events[0].payload, issue.payload


def test_an_issued_invoice_becomes_its_document() -> None:
    from ocpi_hub.settings import Settings
    from producers.invoice_documents import DocumentKind, invoice_csv, invoice_xml, seller_from
    from producers.invoice_mapping import document_of

    # One reversal among the charges: a negative quantity at a positive price.
    drafted, issued = _issued_events(credited(november(), "A0", ADA))
    seller, means = seller_from(Settings())
    doc = document_of(drafted, issued, seller, means)
    assert (doc.kind, doc.number, doc.issue_date, doc.due_date) == (
        DocumentKind.INVOICE,
        "2026-000042",
        date(2026, 12, 1),
        date(2026, 12, 31),
    )
    assert (doc.period_start, doc.period_end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert doc.buyer.vat_id == "NL004495445B01" and doc.buyer.registration_id == "12345678"
    assert [
        (ln.description, ln.quantity, ln.unit_code.value, ln.net_amount) for ln in doc.lines
    ] == [
        ("Charging, Ada (R&D): 3 sessions", Decimal("24.75"), "KWH", Decimal("8.67")),
        (
            "Charging reversed (Credit CDRs), Ada (R&D): 1 session",
            Decimal("-8.25"),
            "KWH",
            Decimal("-2.89"),
        ),
        ("Monthly fee, Ada (R&D)", Decimal(1), "C62", Decimal("2.50")),
        ("Charging, Bob: 1 session", Decimal("10"), "KWH", Decimal("3.50")),
        ("Monthly fee, Bob", Decimal(1), "C62", Decimal("2.50")),
    ]
    # 17.17 - 2.89 = 14.28; VAT 21 % 2.9988 -> 3.00.
    assert (doc.net_total, doc.vat_total, doc.gross_total, doc.amount_due) == (
        Decimal("14.28"),
        Decimal("3.00"),
        Decimal("17.28"),
        Decimal("17.28"),
    )
    assert "by 2026-12-31" in doc.payment_terms
    xml = invoice_xml(doc)
    assert b"2026-000042" in xml and b"17.28" in xml
    assert invoice_csv(doc).count(b"\n") == 1 + len(doc.lines)
    # The e-invoice of it passes the official XSD and the EN 16931 rules.
    import facturx  # type: ignore[import-untyped]

    from tests.unit.test_invoice_documents import schematron_failures

    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert schematron_failures(xml) == []


def test_the_events_of_two_invoices_make_no_document() -> None:
    from ocpi_hub.settings import Settings
    from producers.invoice_documents import seller_from
    from producers.invoice_mapping import document_of

    drafted, issued = _issued_events(november())
    other = issued.model_copy(update={"invoice_id": "beta00000002-202611"})
    with pytest.raises(ValueError, match="is not the invoice"):
        document_of(drafted, other, *seller_from(Settings()))
