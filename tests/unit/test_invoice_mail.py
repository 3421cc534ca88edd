"""An invoice's files and mailings without services (docs/adr/0040): the
state keeps what the files are rendered from, exactly as the events carry
it; the issue asks for the first mailing, ops for more; a mailing is
recorded once; a draft has no files; a 0 % contract is refused upfront;
the e-mail carries the Factur-X PDF and the CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from ocpi_hub.settings import Settings
from processors.invoice_mailer import compose
from producers.billing.aggregate import SLICE
from producers.billing.corporations import NewCorporation, decide_register
from producers.billing.invoices import InvoiceVoiding, decide_issue, decide_void, invoice_source
from producers.billing.mailings import (
    DocumentMailing,
    MailReceipt,
    decide_document_mailed,
    decide_mailing_request,
    mailing_asked_by,
    mailing_of,
    new_mailing_id,
    shown_mailings,
    skip_reason,
)
from producers.billing.state import CorporationState
from producers.invoice_documents import seller_from
from producers.invoice_files import FileKind, InvoiceRenderer
from producers.invoice_mapping import document_of
from producers.write_path import RefusedError
from schemas.events.billing import (
    FIRST_MAILING,
    InvoiceMailed,
    InvoiceMailingRequested,
)
from tests.unit.test_billing import CORP, ORIGIN, corporation_body
from tests.unit.test_invoices import CLOSE_AT, _apply, credited, draft, november

INVOICE = f"{CORP}-202611"
SHA = "ab" * 32


def _settings() -> Settings:
    return Settings()


def renderer() -> InvoiceRenderer:
    s = _settings()
    return InvoiceRenderer.of(seller_from(s), s.billing_pdf_font_regular, s.billing_pdf_font_bold)


def drafted_state() -> tuple[CorporationState, Any]:
    """November's invoice drafted: charges of Ada and Bob, one reversed."""
    state = credited(november(), "A0", "mem000000001")
    decision = draft(state, "2026-11")
    return _apply(state, decision), decision.events[0]


def issued_state() -> tuple[CorporationState, Any, Any]:
    state, drafted = drafted_state()
    decision = decide_issue(
        state,
        invoice_id=INVOICE,
        number="2026-000042",
        issue_date=date(2026, 12, 1),
        origin=ORIGIN,
        now=CLOSE_AT,
    )
    return _apply(state, decision), drafted, decision.events[0]


def request(state: CorporationState, mailing_id: str) -> Any:
    return decide_mailing_request(
        state, invoice_id=INVOICE, mailing_id=mailing_id, origin=ORIGIN, now=CLOSE_AT
    )


def mailed(state: CorporationState, mailing_id: str) -> Any:
    return decide_document_mailed(
        state,
        mailing=DocumentMailing.of_invoice(INVOICE, mailing_id),
        receipt=MailReceipt(
            recipient="invoices@acme.example",
            message_id=f"<{INVOICE}.{mailing_id}@billing.ocpi-hub>",
            pdf_sha256=SHA,
            csv_sha256=SHA,
        ),
        origin=ORIGIN,
        now=CLOSE_AT,
    )


def voided(state: CorporationState) -> CorporationState:
    body = InvoiceVoiding(reason="wrong month")
    return _apply(
        state, decide_void(state, invoice_id=INVOICE, body=body, origin=ORIGIN, now=CLOSE_AT)
    )


def test_the_state_keeps_the_two_events_content_and_the_first_mailing() -> None:
    state, drafted, issued = issued_state()
    # Through the decision store's own form (JSON), as a rebuild would load it.
    state = SLICE.load(SLICE.dump(state))
    source = state.invoice_sources[INVOICE]
    assert source.issued == issued.payload
    # Everything but the CDR keys, which no document shows.
    assert source.drafted == drafted.payload.model_copy(
        update={"charge_keys": [], "reversal_keys": []}
    )
    assert drafted.payload.charge_keys  # there were some
    assert list(source.mailings) == [FIRST_MAILING]
    assert source.mailings[FIRST_MAILING].message_id is None


def test_files_from_the_state_are_the_files_from_the_events() -> None:
    state, drafted, issued = issued_state()
    state = SLICE.load(SLICE.dump(state))
    r = renderer()
    source = invoice_source(state, INVOICE)
    from_events = document_of(drafted.payload, issued.payload, r.seller, r.means)
    assert r.document(source) == from_events
    for kind in FileKind:
        file = r.render(source, kind)
        again = r.render(source, kind)
        assert file.content == again.content and file.filename == f"invoice-2026-000042.{kind}"
    csv = r.render(source, FileKind.CSV).content.decode()
    assert csv.splitlines()[1].startswith("2026-000042,1,")
    assert r.render(source, FileKind.PDF).content.startswith(b"%PDF-1.7")


def test_a_draft_has_no_files_and_an_unknown_invoice_is_404() -> None:
    state, _ = drafted_state()
    with pytest.raises(RefusedError) as draft_refused:
        invoice_source(state, INVOICE)
    assert draft_refused.value.http_status == 409
    assert "draft" in draft_refused.value.message
    with pytest.raises(RefusedError) as unknown:
        invoice_source(state, f"{CORP}-202501")
    assert unknown.value.http_status == 404
    with pytest.raises(RefusedError) as no_corporation:
        invoice_source(None, INVOICE)
    assert no_corporation.value.http_status == 404
    with pytest.raises(RefusedError) as not_mailed:
        request(state, "c" * 32)
    assert not_mailed.value.http_status == 409


def test_a_mailing_is_requested_once_and_recorded_once() -> None:
    state, _, _ = issued_state()
    again = new_mailing_id(INVOICE, "corr-1")
    assert again == new_mailing_id(INVOICE, "corr-1")
    assert again != new_mailing_id(INVOICE, "corr-2")
    asked = request(state, again)
    [event] = asked.events
    assert isinstance(event, InvoiceMailingRequested) and event.payload.mailing_id == again
    state = _apply(state, asked)
    assert request(state, again).events == []  # the same request: nothing new
    assert set(state.invoice_sources[INVOICE].mailings) == {FIRST_MAILING, again}

    first = mailed(state, FIRST_MAILING)
    [record] = first.events
    assert isinstance(record, InvoiceMailed) and record.payload.pdf_sha256 == SHA
    state = _apply(state, first)
    assert mailed(state, FIRST_MAILING).events == []  # once
    held = state.invoice_sources[INVOICE].mailings
    assert held[FIRST_MAILING].message_id == f"<{INVOICE}.issue@billing.ocpi-hub>"
    assert held[again].message_id is None  # still to send
    shown = shown_mailings(state.invoice_sources[INVOICE])
    assert [m["mailing_id"] for m in shown] == [FIRST_MAILING, again]

    with pytest.raises(RefusedError) as unknown:
        mailed(state, "d" * 32)
    assert unknown.value.http_status == 404


def test_a_void_invoice_is_not_mailed_again_but_keeps_its_files() -> None:
    state, _, _ = issued_state()
    state = voided(state)
    with pytest.raises(RefusedError) as refused:
        request(state, "e" * 32)
    assert refused.value.http_status == 409 and "VOID" in refused.value.message
    assert renderer().render(invoice_source(state, INVOICE), FileKind.XML).content


def test_a_zero_percent_contract_is_refused_upfront() -> None:
    """Its invoices could not be documented: VAT category S needs a rate
    above zero (the document refuses 0 %), and Z/E/AE are not built."""
    body = corporation_body()
    body["contract"] = body["contract"] | {"vat_rate": Decimal(0)}
    with pytest.raises(RefusedError) as refused:
        decide_register(
            None,
            corporation_id=CORP,
            body=NewCorporation.model_validate(body),
            origin=ORIGIN,
            now=datetime(2026, 9, 1, tzinfo=UTC),
        )
    assert "contract.vat_rate" in refused.value.message
    # What it prevents: a 0 % invoice's document cannot be built.
    _, drafted, issued = issued_state()
    zero = drafted.payload.model_copy(
        update={
            "contract": drafted.payload.contract.model_copy(update={"vat_rate": Decimal(0)}),
            "vat": [
                drafted.payload.vat[0].model_copy(update={"rate": Decimal(0), "amount": Decimal(0)})
            ],
            "vat_total": Decimal(0),
            "gross_total": drafted.payload.net_total,
        }
    )
    r = renderer()
    with pytest.raises(ValidationError):
        document_of(zero, issued.payload, r.seller, r.means)


def test_the_email_carries_the_pdf_and_the_csv_to_the_billing_address() -> None:
    state, _, _ = issued_state()
    r = renderer()
    source = invoice_source(state, INVOICE)
    pdf, csv = r.render(source, FileKind.PDF), r.render(source, FileKind.CSV)
    message = compose(
        mail_from="billing@hub.example",
        doc=r.document(source),
        invoice_id=INVOICE,
        mailing_id=FIRST_MAILING,
        pdf=pdf,
        csv=csv,
        now=CLOSE_AT,
    )
    assert message["To"] == '"Acme Fleet B.V." <invoices@acme.example>'
    assert message["Message-ID"] == f"<{INVOICE}.issue@billing.ocpi-hub>"
    assert "2026-000042" in str(message["Subject"])
    attached = {
        part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    }
    assert attached == {
        "invoice-2026-000042.pdf": ("application/pdf", pdf.content),
        "invoice-2026-000042.csv": ("text/csv", csv.content),
    }
    body = message.get_body(("plain",))
    assert body is not None and "€ 17.28" in body.get_content()


def test_the_font_cache_changes_no_byte_in_threads_either(monkeypatch: pytest.MonkeyPatch) -> None:
    """producers/pdf_fonts.py reuses fpdf2's parsed fonts across documents:
    the PDFs must be the bytes fpdf2's own add_font gives, also when
    documents are rendered at once in threads (an fpdf2 upgrade that
    breaks its assumptions fails here)."""
    from concurrent.futures import ThreadPoolExecutor

    from fpdf import FPDF

    from producers import invoice_documents
    from producers.invoice_documents import facturx_pdf, invoice_pdf
    from tests.unit.test_invoice_documents import credit_note, invoice

    r = renderer()
    docs = [
        invoice(),
        credit_note(),
        r.document(invoice_source(issued_state()[0], INVOICE)),
    ]
    cached = [(invoice_pdf(d, r.fonts), facturx_pdf(d, r.fonts)) for d in docs]
    with ThreadPoolExecutor(4) as pool:
        at_once = list(
            pool.map(lambda d: (invoice_pdf(d, r.fonts), facturx_pdf(d, r.fonts)), docs * 3)
        )

    def plain(pdf: FPDF, family: str, style: str, path: str) -> None:
        pdf.add_font(family, style, path)

    monkeypatch.setattr(invoice_documents, "add_font", plain)
    parsed = [(invoice_pdf(d, r.fonts), facturx_pdf(d, r.fonts)) for d in docs]
    assert cached == parsed
    assert at_once == parsed * 3
    assert len({pdf for pdf, _ in parsed}) == 3  # three different documents


# --- the one mailing path: invoices and credit notes alike -------------------------------


def test_which_events_ask_for_an_email() -> None:
    state, drafted, issued = issued_state()
    assert mailing_asked_by(issued) == DocumentMailing.of_invoice(INVOICE, FIRST_MAILING)
    [again] = request(state, "f" * 32).events
    assert mailing_asked_by(again) == DocumentMailing.of_invoice(INVOICE, "f" * 32)
    assert mailing_asked_by(drafted) is None
    [record] = mailed(state, FIRST_MAILING).events
    assert mailing_asked_by(record) is None  # a record of an e-mail asks for none


def test_the_mailer_skips_what_is_unknown_done_or_void_and_sends_what_is_due() -> None:
    drafted, _ = drafted_state()
    issue = DocumentMailing.of_invoice(INVOICE, FIRST_MAILING)
    assert skip_reason(None, issue) == "unknown"
    assert skip_reason(drafted, issue) == "unknown"  # a draft has nothing to mail yet
    state, _, _ = issued_state()
    assert skip_reason(state, issue) is None
    assert skip_reason(state, DocumentMailing.of_invoice(INVOICE, "a" * 32)) == "unknown"
    assert skip_reason(_apply(state, mailed(state, FIRST_MAILING)), issue) == "done"
    assert skip_reason(voided(state), issue) == "void"


def test_a_recorded_mailing_keeps_when_it_was_asked_for() -> None:
    state, _, issued = issued_state()
    issue = DocumentMailing.of_invoice(INVOICE, FIRST_MAILING)
    decision = mailed(state, FIRST_MAILING)
    held = decision.answer
    assert held == mailing_of(_apply(state, decision), issue)
    assert held.requested_at == issued.payload.at and held.mailed_at == CLOSE_AT
    assert (held.recipient, held.pdf_sha256, held.csv_sha256) == ("invoices@acme.example", SHA, SHA)
    assert str(issue) == f"invoice {INVOICE} mailing issue"
    assert issue.corporation_id == CORP
