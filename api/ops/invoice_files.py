"""Ops API of an invoice's files and e-mails (issue 14, part D;
docs/adr/0040); role ``billing``.

* ``GET /ops/invoices/{id}/pdf``: the Factur-X PDF (readable, PDF/A-3, the
  EN 16931 XML inside); ``/xml``: that XML alone; ``/csv``: the lines. Only
  an issued, paid or void invoice has files (a draft has no number: 409);
  an unknown invoice is 404. Rendered, in a thread, from the invoice's
  source in the billing slice's state (producers/invoice_files.py).
* ``POST /ops/invoices/{id}/mail``: ask for one more e-mail of the invoice
  to its billing address; the billing worker sends it once
  (processors/invoice_mailer.py). The answer lists the invoice's mailings.
  A retried request (same ``X-Correlation-Id``) asks for the same mailing.
* ``GET /ops/invoices/{id}/mailings``: those mailings, and what was sent.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import envelope
from api.ops.access import OPS_ACCESS
from api.ops.billing_common import our_origin
from api.writes import WritePathDep
from ocpi_hub.settings import Settings
from producers.billing.aggregate import SLICE
from producers.billing.invoices import corporation_of_invoice, invoice_source
from producers.billing.mailings import decide_mailing_request, new_mailing_id, shown_mailings
from producers.invoice_documents import seller_from
from producers.invoice_files import FileKind, InvoiceRenderer
from schemas.events.billing import INVOICE_ID_PATTERN

router = APIRouter(prefix="/ops/invoices", tags=["ops: billing"], dependencies=[OPS_ACCESS])

InvoiceIdPath = Annotated[str, Path(pattern=INVOICE_ID_PATTERN)]


def renderer_of(settings: Settings) -> InvoiceRenderer:
    return InvoiceRenderer.of(
        seller_from(settings), settings.billing_pdf_font_regular, settings.billing_pdf_font_bold
    )


async def _file(invoice_id: str, kind: FileKind, w: WritePathDep, c: ContainerDep) -> Response:
    state = await w.state(SLICE, corporation_of_invoice(invoice_id))
    source = invoice_source(state, invoice_id)
    # CPU-heavy (fonts, subsetting, Factur-X): off the event loop.
    rendered = await asyncio.to_thread(renderer_of(c.settings).render, source, kind)
    return Response(
        rendered.content,
        media_type=kind.media_type,
        headers={"Content-Disposition": f'attachment; filename="{rendered.filename}"'},
    )


@router.get("/{invoice_id}/pdf", response_class=Response)
async def invoice_pdf_file(invoice_id: InvoiceIdPath, w: WritePathDep, c: ContainerDep) -> Response:
    return await _file(invoice_id, FileKind.PDF, w, c)


@router.get("/{invoice_id}/xml", response_class=Response)
async def invoice_xml_file(invoice_id: InvoiceIdPath, w: WritePathDep, c: ContainerDep) -> Response:
    return await _file(invoice_id, FileKind.XML, w, c)


@router.get("/{invoice_id}/csv", response_class=Response)
async def invoice_csv_file(invoice_id: InvoiceIdPath, w: WritePathDep, c: ContainerDep) -> Response:
    return await _file(invoice_id, FileKind.CSV, w, c)


@router.get("/{invoice_id}/mailings")
async def invoice_mailings(invoice_id: InvoiceIdPath, w: WritePathDep) -> dict[str, Any]:
    """The invoice's mailings in the order asked for: each with its
    recipient, Message-ID and the SHA-256 of the files once mailed (a
    mailing never recorded was refused, or its fate is unknown: ask again)."""
    state = await w.state(SLICE, corporation_of_invoice(invoice_id))
    return envelope(shown_mailings(invoice_source(state, invoice_id)))


@router.post("/{invoice_id}/mail")
async def mail_invoice_again(
    invoice_id: InvoiceIdPath,
    w: WritePathDep,
    c: ContainerDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
    response: Response,
) -> dict[str, Any]:
    """Record a new mailing request (202: the billing worker sends it)."""
    origin = our_origin(c, correlation_id)
    mailing_id = new_mailing_id(invoice_id, correlation_id)
    source = await w.write(
        SLICE,
        corporation_of_invoice(invoice_id),
        lambda state: decide_mailing_request(
            state, invoice_id=invoice_id, mailing_id=mailing_id, origin=origin, now=now
        ),
    )
    response.status_code = 202
    return envelope(
        {
            "invoice_id": invoice_id,
            "mailing_id": mailing_id,
            "recipient": source.drafted.buyer.billing_email,
            "mailings": shown_mailings(source),
        }
    )
