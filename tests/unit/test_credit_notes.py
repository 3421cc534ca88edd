"""Credit notes without services (docs/adr/0041): sessions or an amount of
an issued invoice, VAT split proportionally and a full credit netting to
zero, the limits, the states and who decided, the credit notes' own
gap-free numbers, and approval on the write path with its fakes (a run
broken between number and issue is finished with the same number)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from producers import invoice_numbers
from producers.billing.aggregate import SLICE
from producers.billing.credit_notes import (
    CreditNoteRejection,
    CreditNoteRequest,
    credit_note_source,
    decide_credit_approve,
    decide_credit_issue,
    decide_credit_reject,
    decide_credit_request,
    remaining_net,
)
from producers.billing.invoices import InvoicePayment, InvoiceVoiding, decide_paid, decide_void
from producers.billing.mailings import (
    DocumentMailing,
    MailReceipt,
    decide_document_mailed,
    mailing_asked_by,
    mailing_of,
    skip_reason,
)
from producers.billing.state import CorporationState
from producers.credit_notes import approve_credit_note, reject_credit_note, request_credit_note
from producers.decision_store import InMemoryDecisionStore
from producers.log import Fault, InMemoryEventLog, InMemoryLogHistory
from producers.write_path import Decision, NotRecordedError, RefusedError, WritePath, acting_as
from schemas.events import parse_event, serialize_event
from schemas.events.billing import (
    FIRST_MAILING,
    CreditNoteIssued,
    CreditNoteNumberAssigned,
    CreditNoteStatus,
    InvoiceStatus,
)
from schemas.events.envelope import Actor
from schemas.topics import BILLING_CORPORATIONS, BILLING_INVOICE_NUMBERS
from tests.unit.test_billing import CORP, ORIGIN
from tests.unit.test_invoices import (
    ADA,
    CLOSE_AT,
    _apply,
    charged,
    credited,
    draft,
    issued,
    november,
)

INVOICE = f"{CORP}-202611"
CLERK = Actor(kind="account", id="clerk")
CONTROLLER = Actor(kind="account", id="controller")
LATER = CLOSE_AT + timedelta(days=9)
D = Decimal


def invoiced(state: CorporationState | None = None) -> CorporationState:
    """November's invoice issued as 2026-000007: Ada's three sessions of
    2.89 (A0-A2), Bob's 3.50 (B0), two fees of 2.50: net 17.17, VAT 21 %
    3.61 (3.6057), gross 20.78."""
    state = state or november()
    return issued(_apply(state, draft(state, "2026-11")))


def request(state: CorporationState, actor: Actor = CLERK, **body: Any) -> Any:
    return decide_credit_request(
        state,
        invoice_id=INVOICE,
        body=CreditNoteRequest.model_validate({"reason": "goodwill"} | body),
        actor=actor,
        origin=ORIGIN,
        now=LATER,
    )


def requested(state: CorporationState, **body: Any) -> tuple[CorporationState, str]:
    decision = request(state, **body)
    return _apply(state, decision), decision.answer.credit_note_id


def approved(
    state: CorporationState,
    credit_note_id: str,
    number: str,
    actor: Actor = CONTROLLER,
    issue_date: date = date(2026, 12, 10),
) -> CorporationState:
    state = _apply(
        state,
        decide_credit_approve(
            state,
            credit_note_id=credit_note_id,
            actor=actor,
            four_eyes=True,
            origin=ORIGIN,
            now=LATER,
        ),
    )
    return _apply(
        state,
        decide_credit_issue(
            state,
            credit_note_id=credit_note_id,
            number=number,
            issue_date=issue_date,
            origin=ORIGIN,
            now=LATER,
        ),
    )


def credit(state: CorporationState, number: str, **body: Any) -> tuple[CorporationState, str]:
    state, note = requested(state, **body)
    return approved(state, note, number), note


# --- what a credit note credits -------------------------------------------------------


def test_a_session_is_credited_whole_with_its_vat_and_the_invoice_stays_as_issued() -> None:
    before = invoiced()
    state, note_id = requested(before, sessions=["NL/CPO/A0"])
    note = state.credit_notes[note_id]
    assert note_id == f"{INVOICE}-cn1"
    assert (note.status, note.net_total, note.requested_by) == (
        CreditNoteStatus.REQUESTED,
        D("2.89"),
        "account:clerk",
    )
    assert (note.invoice_number, note.invoice_issue_date) == ("2026-000007", date(2026, 12, 1))
    [line] = note.lines
    assert (line.cdr_key, line.member_id, line.energy_kwh, line.unit_price, line.net) == (
        "NL/CPO/A0",
        ADA,
        D("8.25"),
        D("0.35"),
        D("2.89"),
    )
    assert line.description.startswith("Refund of session A0, Ada (R&D), ended 2026-11-10")
    state = approved(state, note_id, "CN-2026-000001")
    note = state.credit_notes[note_id]
    # 2.89 x 21 % = 0.6069 -> 0.61, rounded once.
    assert (note.status, note.number, note.vat_total, note.gross_total) == (
        CreditNoteStatus.ISSUED,
        "CN-2026-000001",
        D("0.61"),
        D("3.50"),
    )
    assert (note.decided_by, note.issue_date, note.due_date) == (
        "account:controller",
        date(2026, 12, 10),
        date(2027, 1, 9),
    )
    # The invoice's own figures and state are as issued; its credited totals show.
    invoice, was = state.invoices[INVOICE], before.invoices[INVOICE]
    assert (invoice.status, invoice.number, invoice.net_total, invoice.vat_total) == (
        was.status,
        was.number,
        was.net_total,
        was.vat_total,
    )
    assert (invoice.credited_net, invoice.credited_vat, invoice.credited_gross) == (
        D("2.89"),
        D("0.61"),
        D("3.50"),
    )
    assert invoice.reserved_net == 0


@pytest.mark.parametrize(
    ("net", "vat"),
    [("10.00", "2.10"), ("0.02", "0.00"), ("0.03", "0.01"), ("1.05", "0.22"), ("4.50", "0.95")],
)
def test_a_partial_credit_takes_its_net_times_the_rate_rounded_half_up_once(
    net: str, vat: str
) -> None:
    state, note = credit(invoiced(), "CN-2026-000001", amount=net)
    shown = state.credit_notes[note]
    assert (shown.net_total, shown.vat_total, shown.settles_invoice) == (D(net), D(vat), False)
    assert shown.gross_total == D(net) + D(vat)


def test_credits_of_the_whole_remaining_amount_net_the_invoice_to_zero() -> None:
    state = invoiced()
    # 0.02 at 21 % is 0.0042: no VAT each; what remains, 17.13, would be
    # 3.5973 -> 3.60 on its own, but takes exactly the VAT left: 3.61.
    state, first = credit(state, "CN-2026-000001", amount="0.02")
    state, second = credit(state, "CN-2026-000002", amount="0.02")
    state, last = credit(state, "CN-2026-000003", amount="17.13")
    notes = [state.credit_notes[n] for n in (first, second, last)]
    assert [(n.vat_total, n.settles_invoice) for n in notes] == [
        (D("0.00"), False),
        (D("0.00"), False),
        (D("3.61"), True),
    ]
    invoice = state.invoices[INVOICE]
    assert invoice.net_total - sum(n.net_total for n in notes) == 0
    assert invoice.vat_total - sum(n.vat_total or 0 for n in notes) == 0
    assert invoice.gross_total - sum(n.gross_total or 0 for n in notes) == 0
    assert (invoice.credited_gross, remaining_net(invoice)) == (D("20.78"), 0)
    with pytest.raises(RefusedError) as nothing_left:
        request(state, amount="0.01")
    assert nothing_left.value.http_status == 409
    assert "remains to credit of invoice 2026-000007: 0.00 EUR" in nothing_left.value.message


def test_a_full_credit_in_one_note_takes_the_invoices_vat() -> None:
    state, note = credit(invoiced(), "CN-2026-000001", amount="17.17")
    shown = state.credit_notes[note]
    assert (shown.vat_total, shown.gross_total, shown.settles_invoice) == (
        D("3.61"),
        D("20.78"),
        True,
    )


def test_tiny_credits_never_credit_more_vat_than_the_invoice_had() -> None:
    # An invoice of 0.25 net at 10 % has 0.03 of VAT (0.025 half up); five
    # credits of 0.05 would each round 0.005 up to 0.01, 0.05 in all.
    state = billing_fleet_without_fees()
    state = state.model_copy(
        update={"contract": state.contract.model_copy(update={"vat_rate": D("0.10")})}
    )
    state = invoiced(charged(state, "T0", ADA, kwh="0.71"))  # 0.2485 -> 0.25
    assert state.invoices[INVOICE].vat_total == D("0.03")
    vats = []
    for n in range(5):
        state, note = credit(state, f"CN-2026-00000{n + 1}", amount="0.05")
        vats.append(state.credit_notes[note].vat_total)
    assert vats == [D("0.01"), D("0.01"), D("0.01"), D("0.00"), D("0.00")]
    assert state.invoices[INVOICE].credited_vat == D("0.03")
    assert state.credit_notes[note].settles_invoice


def billing_fleet_without_fees() -> CorporationState:
    from tests.unit.test_invoices import fleet

    return fleet(fee=None)


# --- the limits: a clear error, nothing recorded --------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"amount": "17.18"}, 409, "more than remains to credit of invoice 2026-000007: 17.17"),
        ({"sessions": ["NL/CPO/ZZ"]}, 400, "'NL/CPO/ZZ' is not a session on invoice 2026-000007"),
        ({"sessions": ["NL/CPO/A0", "NL/CPO/A0"]}, 400, "a session is named twice"),
        ({"sessions": ["NL/CPO/A0"], "amount": "1.00"}, 400, "either sessions"),
        ({}, 400, "either sessions"),
    ],
)
def test_a_request_beyond_the_invoice_is_refused(
    body: dict[str, Any], status: int, says: str
) -> None:
    with pytest.raises(RefusedError) as refused:
        request(invoiced(), **body)
    assert refused.value.http_status == status and says in refused.value.message


@pytest.mark.parametrize("amount", ["-1.00", "0", "0.001", "NaN"])
def test_a_negative_zero_or_sub_cent_amount_is_not_a_request(amount: str) -> None:
    with pytest.raises(ValidationError):
        CreditNoteRequest.model_validate({"amount": amount, "reason": "x"})
    with pytest.raises(ValidationError):
        CreditNoteRequest.model_validate({"amount": "1.00"})  # no reason


def test_a_session_is_credited_once_and_a_reversed_one_not_at_all() -> None:
    state, note = requested(invoiced(), sessions=["NL/CPO/A0"])
    with pytest.raises(RefusedError) as twice:
        request(state, sessions=["NL/CPO/A1", "NL/CPO/A0"])
    assert twice.value.http_status == 409
    assert f"already on credit note '{note}'" in twice.value.message
    # A Credit CDR reversed A1 after the invoice: it is refunded on the next
    # invoice (a reversal line), so no credit note may refund it too.
    reversed_ = credited(state, "A1", ADA)
    with pytest.raises(RefusedError) as reversal:
        request(reversed_, sessions=["NL/CPO/A1"])
    assert "was reversed by Credit CDR" in reversal.value.message


def test_a_session_of_another_invoice_is_not_on_this_one() -> None:
    late = charged(invoiced(), "L0", ADA, ended=datetime(2026, 11, 20, tzinfo=UTC))
    with pytest.raises(RefusedError) as refused:
        request(late, sessions=["NL/CPO/L0"])
    assert refused.value.http_status == 400


def test_pending_requests_reserve_their_amount_until_rejected() -> None:
    state, first = requested(invoiced(), amount="17.00")
    with pytest.raises(RefusedError) as refused:
        request(state, amount="0.18")
    assert "0.17 EUR" in refused.value.message
    state = _apply(
        state,
        decide_credit_reject(
            state,
            credit_note_id=first,
            body=CreditNoteRejection(reason="not agreed"),
            actor=CONTROLLER,
            origin=ORIGIN,
            now=LATER,
        ),
    )
    rejected = state.credit_notes[first]
    assert (rejected.status, rejected.decided_by, rejected.reject_reason) == (
        CreditNoteStatus.REJECTED,
        "account:controller",
        "not agreed",
    )
    state, second = requested(state, amount="0.18")
    assert second == f"{INVOICE}-cn2"  # ids count every request, rejected ones too
    assert state.invoices[INVOICE].reserved_net == D("0.18")


def test_rejecting_a_session_credit_frees_the_session() -> None:
    state, note = requested(invoiced(), sessions=["NL/CPO/A0"])
    state = _apply(
        state,
        decide_credit_reject(
            state,
            credit_note_id=note,
            body=CreditNoteRejection(reason="no"),
            actor=CLERK,  # the requester may withdraw their own
            origin=ORIGIN,
            now=LATER,
        ),
    )
    assert "NL/CPO/A0" not in state.credited_charges
    assert request(state, sessions=["NL/CPO/A0"]).answer.net_total == D("2.89")


# --- states and who decides ----------------------------------------------------------------


def test_only_an_issued_or_paid_invoice_gets_a_credit_note() -> None:
    drafted = _apply(november(), draft(november(), "2026-11"))
    with pytest.raises(RefusedError) as of_draft:
        request(drafted, amount="1.00")
    assert of_draft.value.http_status == 409 and "is DRAFT" in of_draft.value.message
    void = _apply(
        invoiced(),
        decide_void(
            invoiced(),
            invoice_id=INVOICE,
            body=InvoiceVoiding(reason="wrong"),
            origin=ORIGIN,
            now=LATER,
        ),
    )
    with pytest.raises(RefusedError) as of_void:
        request(void, amount="1.00")
    assert "is VOID" in of_void.value.message
    paid = _apply(
        invoiced(),
        decide_paid(
            invoiced(), invoice_id=INVOICE, body=InvoicePayment(), origin=ORIGIN, now=LATER
        ),
    )
    assert paid.invoices[INVOICE].status is InvoiceStatus.PAID
    assert request(paid, amount="1.00").events  # a refund of a paid invoice


def test_unknown_invoice_corporation_or_credit_note_is_404() -> None:
    with pytest.raises(RefusedError) as no_invoice:
        request(november(), amount="1.00")
    assert no_invoice.value.http_status == 404
    with pytest.raises(RefusedError) as no_corporation:
        request(None, amount="1.00")  # type: ignore[arg-type]
    assert no_corporation.value.http_status == 404
    with pytest.raises(RefusedError) as no_note:
        decide_credit_approve(
            invoiced(),
            credit_note_id=f"{INVOICE}-cn9",
            actor=CONTROLLER,
            four_eyes=True,
            origin=ORIGIN,
            now=LATER,
        )
    assert no_note.value.http_status == 404


def test_four_eyes_the_requester_does_not_approve_unless_switched_off() -> None:
    state, note = requested(invoiced(), amount="5.00")

    def approve(actor: Actor | None, four_eyes: bool = True) -> Any:
        return decide_credit_approve(
            state, credit_note_id=note, actor=actor, four_eyes=four_eyes, origin=ORIGIN, now=LATER
        )

    with pytest.raises(RefusedError) as own:
        approve(CLERK)
    assert own.value.http_status == 403 and "four eyes" in own.value.message
    with pytest.raises(RefusedError) as nobody:
        approve(None)
    assert nobody.value.http_status == 403
    # The same login through an API key is another actor (docs/adr/0041).
    assert approve(Actor(kind="api_key", id="clerk")).events
    [event] = approve(CLERK, four_eyes=False).events
    assert event.actor == CLERK
    assert _apply(state, approve(CLERK, False)).credit_notes[note].decided_by == "account:clerk"


def test_a_decided_credit_note_is_not_decided_again_and_nothing_is_recorded() -> None:
    state, note = credit(invoiced(), "CN-2026-000001", amount="5.00")
    for decide in (
        lambda: decide_credit_approve(
            state, credit_note_id=note, actor=CLERK, four_eyes=True, origin=ORIGIN, now=LATER
        ),
        lambda: decide_credit_reject(
            state,
            credit_note_id=note,
            body=CreditNoteRejection(reason="late"),
            actor=CLERK,
            origin=ORIGIN,
            now=LATER,
        ),
    ):
        with pytest.raises(RefusedError) as again:
            decide()
        assert again.value.http_status == 409
        assert "already decided: ISSUED as CN-2026-000001 by account:controller" in (
            again.value.message
        )
    # Issued again with its own number: nothing; with another: refused.
    assert (
        decide_credit_issue(
            state,
            credit_note_id=note,
            number="CN-2026-000001",
            issue_date=date(2026, 12, 10),
            origin=ORIGIN,
            now=LATER,
        ).events
        == []
    )
    with pytest.raises(RefusedError):
        decide_credit_issue(
            state,
            credit_note_id=note,
            number="CN-2026-000002",
            issue_date=date(2026, 12, 10),
            origin=ORIGIN,
            now=LATER,
        )


def test_an_invoice_with_credit_notes_is_not_voided() -> None:
    state, _ = requested(invoiced(), amount="1.00")
    with pytest.raises(RefusedError) as refused:
        decide_void(
            state, invoice_id=INVOICE, body=InvoiceVoiding(reason="x"), origin=ORIGIN, now=LATER
        )
    assert "has credit notes" in refused.value.message


def test_the_fold_of_the_logged_events_is_the_decisions_state() -> None:
    state, note = requested(invoiced(), sessions=["NL/CPO/B0"])
    decision = decide_credit_approve(
        state, credit_note_id=note, actor=CONTROLLER, four_eyes=True, origin=ORIGIN, now=LATER
    )
    [event] = decision.events
    assert parse_event(serialize_event(event)) == event
    assert _apply(state, decision).credit_notes[note] == decision.answer


# --- numbers ------------------------------------------------------------------------------------


def number(state: invoice_numbers.NumberingState | None, note: str, now: datetime) -> Any:
    decision = invoice_numbers.decide_credit_note_number(
        state, credit_note_id=note, origin=ORIGIN, now=now
    )
    for event in decision.events:
        state = invoice_numbers.evolve(state, parse_event(serialize_event(event)))  # type: ignore[arg-type]
    return state, decision


def test_credit_notes_have_their_own_gap_free_series_per_year() -> None:
    state, first = number(None, f"{INVOICE}-cn1", LATER)
    state, second = number(state, f"{INVOICE}-cn2", LATER)
    assert (first.answer.number, second.answer.number) == ("CN-2026-000001", "CN-2026-000002")
    assert first.answer.issue_date == LATER.date()
    state, again = number(state, f"{INVOICE}-cn1", LATER)
    assert again.events == [] and again.answer.number == "CN-2026-000001"
    # The invoices' own sequence is untouched.
    assert (state.year, state.last) == (None, 0)
    state, january = number(state, f"{INVOICE}-cn3", datetime(2027, 1, 2, tzinfo=UTC))
    assert january.answer.number == "CN-2027-000001"
    # A clock set back does not reopen 2026.
    _, back = number(state, f"{INVOICE}-cn4", LATER)
    assert back.answer.number == "CN-2027-000002"


def test_the_new_events_are_on_their_topics_and_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "topics.md").read_text()
    for name in ("CreditNoteRequested", "CreditNoteApproved", "CreditNoteRejected"):
        assert name in BILLING_CORPORATIONS.event_types and f"`{name}`" in doc
    assert "CreditNoteIssued" in BILLING_CORPORATIONS.event_types and "`CreditNoteIssued`" in doc
    assert "CreditNoteNumberAssigned" in BILLING_INVOICE_NUMBERS.event_types
    assert "`CreditNoteNumberAssigned`" in doc
    assert "CreditNoteMailed" in BILLING_CORPORATIONS.event_types and "`CreditNoteMailed`" in doc


# --- on the write path (fakes) -----------------------------------------------------------------


def _write_path(log: InMemoryEventLog, store: InMemoryDecisionStore) -> WritePath:
    return WritePath(log, store, InMemoryLogHistory(log))


async def test_request_approve_reject_on_the_write_path_with_who_did_it() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    store.seed(SLICE, CORP, invoiced())
    w = _write_path(log, store)
    with acting_as(CLERK):
        one = await request_credit_note(
            w,
            invoice_id=INVOICE,
            body=CreditNoteRequest(sessions=["NL/CPO/B0"], reason="charger fault"),
            origin=ORIGIN,
            now=LATER,
        )
        two = await request_credit_note(
            w,
            invoice_id=INVOICE,
            body=CreditNoteRequest(amount=D("1.00"), reason="goodwill"),
            origin=ORIGIN,
            now=LATER,
        )
        with pytest.raises(RefusedError):  # four eyes
            await approve_credit_note(
                w, credit_note_id=one.credit_note_id, four_eyes=True, origin=ORIGIN, now=LATER
            )
    with acting_as(CONTROLLER):
        issued_one = await approve_credit_note(
            w, credit_note_id=one.credit_note_id, four_eyes=True, origin=ORIGIN, now=LATER
        )
        rejected = await reject_credit_note(
            w,
            credit_note_id=two.credit_note_id,
            body=CreditNoteRejection(reason="not agreed"),
            origin=ORIGIN,
            now=LATER,
        )
    assert (issued_one.number, issued_one.vat_total, issued_one.decided_by) == (
        "CN-2026-000001",
        D("0.74"),  # 3.50 x 21 % = 0.735 -> 0.74
        "account:controller",
    )
    assert rejected.status is CreditNoteStatus.REJECTED
    kinds = [(type(e).__name__, str(e.actor)) for e in log.events]
    assert kinds == [
        ("CreditNoteRequested", "account:clerk"),
        ("CreditNoteRequested", "account:clerk"),
        ("CreditNoteApproved", "account:controller"),
        # The write path stamps the approver on the writes the approval makes.
        ("CreditNoteNumberAssigned", "account:controller"),
        ("CreditNoteIssued", "account:controller"),
        ("CreditNoteRejected", "account:controller"),
    ]


async def test_an_approval_broken_before_its_issue_is_finished_with_the_same_number() -> None:
    log, store = InMemoryEventLog(), InMemoryDecisionStore()
    state, note = requested(invoiced(), amount="5.00")
    store.seed(SLICE, CORP, state)
    w = _write_path(log, store)
    # Appends: the approval, the number, then the issue fails.
    log.faults = [None, None, Fault.NOT_SENT]  # type: ignore[list-item]
    with acting_as(CONTROLLER), pytest.raises(NotRecordedError):
        await approve_credit_note(w, credit_note_id=note, four_eyes=True, origin=ORIGIN, now=LATER)
    with acting_as(CONTROLLER):
        done = await approve_credit_note(
            w, credit_note_id=note, four_eyes=True, origin=ORIGIN, now=LATER + timedelta(days=1)
        )
    assert (done.status, done.number, done.issue_date) == (
        CreditNoteStatus.ISSUED,
        "CN-2026-000001",
        LATER.date(),  # the number's date, not the rerun's
    )
    assert sum(isinstance(e, CreditNoteNumberAssigned) for e in log.events) == 1
    assert sum(isinstance(e, CreditNoteIssued) for e in log.events) == 1
    with acting_as(CONTROLLER), pytest.raises(RefusedError) as again:
        await approve_credit_note(w, credit_note_id=note, four_eyes=True, origin=ORIGIN, now=LATER)
    assert again.value.http_status == 409


# --- the document (producers/invoice_mapping.py, producers/invoice_documents.py) --------------


def _issued(
    state: CorporationState, note: str, number: str
) -> tuple[CorporationState, Decision[Any]]:
    """Approve and issue a requested credit note: the state, and the issue."""
    state = _apply(
        state,
        decide_credit_approve(
            state, credit_note_id=note, actor=CONTROLLER, four_eyes=True, origin=ORIGIN, now=LATER
        ),
    )
    issue = decide_credit_issue(
        state,
        credit_note_id=note,
        number=number,
        issue_date=date(2026, 12, 10),
        origin=ORIGIN,
        now=LATER,
    )
    return _apply(state, issue), issue


def _credit_events(
    state: CorporationState, number: str, **body: Any
) -> tuple[CorporationState, Any, Any]:
    """Request, approve and issue; the requested and issued payloads."""
    decision = request(state, **body)
    state, issue = _issued(_apply(state, decision), decision.answer.credit_note_id, number)
    return state, decision.events[0].payload, issue.events[0].payload


def _invoice_drafted() -> Any:
    return draft(november(), "2026-11").events[0].payload


def _valid_e_invoice(doc: Any) -> bytes:
    import facturx  # type: ignore[import-untyped]

    from producers.invoice_documents import invoice_xml
    from tests.unit.test_invoice_documents import schematron_failures

    xml = invoice_xml(doc)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert schematron_failures(xml) == []
    return xml


def test_a_session_credit_note_becomes_its_document_naming_the_invoice() -> None:
    from ocpi_hub.settings import Settings
    from producers.invoice_documents import DocumentKind, invoice_csv, seller_from
    from producers.invoice_mapping import credit_note_document_of

    _, requested_, issued_ = _credit_events(
        invoiced(), "CN-2026-000001", sessions=["NL/CPO/A0", "NL/CPO/B0"]
    )
    doc = credit_note_document_of(_invoice_drafted(), requested_, issued_, *seller_from(Settings()))
    assert (doc.kind, doc.kind.type_code, doc.number) == (
        DocumentKind.CREDIT_NOTE,
        "381",
        "CN-2026-000001",
    )
    assert doc.corrects is not None
    assert (doc.corrects.number, doc.corrects.issue_date) == ("2026-000007", date(2026, 12, 1))
    assert (doc.issue_date, doc.due_date) == (date(2026, 12, 10), date(2027, 1, 9))
    assert (doc.period_start, doc.period_end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert [
        (ln.quantity, ln.unit_code.value, ln.unit_price, ln.net_amount) for ln in doc.lines
    ] == [
        (D("8.25"), "KWH", D("0.35"), D("2.89")),
        (D("10"), "KWH", D("0.35"), D("3.50")),
    ]
    # 6.39 x 21 % = 1.3419 -> 1.34.
    assert (doc.net_total, doc.vat_total, doc.gross_total) == (D("6.39"), D("1.34"), D("7.73"))
    xml = _valid_e_invoice(doc)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    assert b"<ram:IssuerAssignedID>2026-000007</ram:IssuerAssignedID>" in xml
    assert invoice_csv(doc).count(b"\r\n") == 1 + len(doc.lines)


def test_the_last_credit_note_settling_the_invoice_is_a_valid_document() -> None:
    from ocpi_hub.settings import Settings
    from producers.invoice_documents import seller_from
    from producers.invoice_mapping import credit_note_document_of

    state, _, _ = _credit_events(invoiced(), "CN-2026-000001", amount="0.02")
    state, _, _ = _credit_events(state, "CN-2026-000002", amount="0.02")
    _, requested_, issued_ = _credit_events(state, "CN-2026-000003", amount="17.13")
    assert (issued_.vat_total, issued_.settles_invoice, issued_.vat_roundings) == (
        D("3.61"),
        True,
        3,
    )
    doc = credit_note_document_of(_invoice_drafted(), requested_, issued_, *seller_from(Settings()))
    [line] = doc.lines
    assert (line.quantity, line.unit_code.value, line.net_amount) == (D(1), "C62", D("17.13"))
    # 17.13 x 21 % = 3.5973: the remainder 3.61 is within three roundings,
    # and within the EN 16931 schematron's own tolerance.
    _valid_e_invoice(doc)
    from producers.invoice_documents import VatBreakdown

    with pytest.raises(ValidationError, match="BR-S-09"):
        doc.model_validate(
            doc.model_dump()
            | {
                "vat_breakdown": (
                    VatBreakdown(rate=D("0.21"), taxable_amount=D("17.13"), tax_amount=D("3.61")),
                )
            }
        )


def test_the_events_of_another_credit_note_or_invoice_make_no_document() -> None:
    from ocpi_hub.settings import Settings
    from producers.invoice_documents import seller_from
    from producers.invoice_mapping import credit_note_document_of

    _, requested_, issued_ = _credit_events(invoiced(), "CN-2026-000001", amount="1.00")
    other = issued_.model_copy(update={"credit_note_id": f"{INVOICE}-cn2"})
    with pytest.raises(ValueError, match="is not the credit note"):
        credit_note_document_of(_invoice_drafted(), requested_, other, *seller_from(Settings()))
    elsewhere = _invoice_drafted().model_copy(update={"invoice_id": "beta00000002-202611"})
    with pytest.raises(ValueError, match="does not correct"):
        credit_note_document_of(elsewhere, requested_, issued_, *seller_from(Settings()))


# --- files and the e-mail (docs/adr/0041, 12 and 13) -----------------------------------------


def test_an_issued_credit_notes_source_is_its_logged_payloads_field_for_field() -> None:
    state, requested_, issued_ = _credit_events(invoiced(), "CN-2026-000003", amount="5.00")
    source = credit_note_source(state, requested_.credit_note_id)
    assert source.requested == requested_
    assert source.issued == issued_
    assert source.invoice == state.invoice_sources[INVOICE].drafted
    # Through the slice's own dump and load (the decision store's bytes) too.
    loaded = SLICE.load(SLICE.dump(state))
    assert credit_note_source(loaded, requested_.credit_note_id) == source


def test_only_an_issued_credit_note_has_a_source() -> None:
    state, pending = requested(invoiced(), amount="1.00")
    with pytest.raises(RefusedError) as refused:
        credit_note_source(state, pending)
    assert refused.value.http_status == 409
    assert "only an issued credit note" in str(refused.value)
    with pytest.raises(RefusedError) as missing:
        credit_note_source(state, f"{INVOICE}-cn9")
    assert missing.value.http_status == 404


def _mailed(state: CorporationState, credit_note_id: str) -> Any:
    return decide_document_mailed(
        state,
        mailing=DocumentMailing.of_credit_note(credit_note_id),
        receipt=MailReceipt(
            recipient="invoices@acme.example",
            message_id=f"<{credit_note_id}.issue@billing.ocpi-hub>",
            pdf_sha256="a" * 64,
            csv_sha256="b" * 64,
        ),
        origin=ORIGIN,
        now=LATER,
    )


def test_a_credit_notes_mailing_is_recorded_once_and_only_when_issued() -> None:
    state, note = credit(invoiced(), "CN-2026-000001", amount="2.00")
    first = _mailed(state, note)
    [event] = first.events
    assert event.event_type == "CreditNoteMailed"
    after = _apply(state, first)
    mailed = after.credit_notes[note].mailed
    assert mailed is not None
    assert (mailed.recipient, mailed.message_id, mailed.pdf_sha256, mailed.mailed_at) == (
        "invoices@acme.example",
        f"<{note}.issue@billing.ocpi-hub>",
        "a" * 64,
        LATER,
    )
    assert _mailed(after, note).events == []  # once
    pending_state, pending = requested(after, amount="1.00")
    with pytest.raises(RefusedError) as refused:
        _mailed(pending_state, pending)
    assert refused.value.http_status == 409


def test_a_credit_notes_email_goes_the_invoices_way() -> None:
    """The one mailing path (producers/billing/mailings.py): its issue asks
    for its one e-mail, due until recorded, then done; one not issued has
    nothing to mail, and it has no other mailing than ``issue``."""
    state, note = requested(invoiced(), amount="2.00")
    mailing = DocumentMailing.of_credit_note(note)
    assert mailing.corporation_id == CORP and str(mailing) == f"credit note {note}"
    assert skip_reason(state, mailing) == "unknown"  # requested: nothing to mail yet
    state, issue = _issued(state, note, "CN-2026-000001")
    [issued] = issue.events
    assert isinstance(issued, CreditNoteIssued) and mailing_asked_by(issued) == mailing
    assert skip_reason(state, mailing) is None
    held = mailing_of(state, mailing)
    assert (held.mailing_id, held.requested_at, held.message_id) == (
        FIRST_MAILING,
        issued.payload.at,
        None,
    )
    after = _apply(state, _mailed(state, note))
    assert skip_reason(after, mailing) == "done"
    assert after.credit_notes[note].mailed == _mailed(state, note).answer
    with pytest.raises(RefusedError) as other:
        mailing_of(state, DocumentMailing(mailing.kind, note, "a" * 32))
    assert other.value.http_status == 404
