"""Ops API of credit notes (issue 14, part E; docs/adr/0041); role ``billing``.

* ``POST /ops/invoices/{id}/credit-notes``: request a credit note of an
  issued or paid invoice, ``{"sessions": [CDR keys], "reason"}`` or
  ``{"amount": "12.50", "reason"}`` (net, excl. VAT); 201 with the request.
* ``POST /ops/credit-notes/{id}/approve``: approve and issue it (its number,
  VAT and dates); another operator than the requester unless
  ``OCPI_HUB_BILLING_CREDIT_NOTE_FOUR_EYES`` is off.
* ``POST /ops/credit-notes/{id}/reject`` (``reason``).
* ``GET /ops/credit-notes[?corporation_id=&invoice_id=&status=&after=&limit=]``:
  the MySQL rows (next page: ``X-Next-After``);
  ``GET /ops/credit-notes/{id}``: one with its lines.
* ``GET /ops/credit-notes/{id}/pdf|xml|csv``: an issued credit note's files
  (Factur-X PDF of type 381 naming the invoice, its XML, its CSV), rendered
  like an invoice's (api/ops/invoice_files.py); 409 if not issued.

Who asked and who decided are the envelopes' actors: the access check sets
them (docs/adr/0031). Writes go through producers/credit_notes.py.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import envelope
from api.ops.access import OPS_ACCESS
from api.ops.billing_common import our_origin, row_json
from api.ops.invoice_files import renderer_of
from api.writes import ExactBody, WritePathDep, body_of
from producers.billing.aggregate import SLICE
from producers.billing.credit_notes import (
    CreditNoteRejection,
    CreditNoteRequest,
    corporation_of_credit_note,
    credit_note_source,
    shown_credit_note,
)
from producers.credit_notes import approve_credit_note, reject_credit_note, request_credit_note
from producers.invoice_files import FileKind
from producers.write_path import RefusedError
from projections.mysql.billing import BillingRowQuery
from schemas.events.billing import (
    CORPORATION_ID_PATTERN,
    CREDIT_NOTE_ID_PATTERN,
    INVOICE_ID_PATTERN,
    CreditNoteStatus,
)
from schemas.ocpi.status_codes import OcpiStatus

Json = dict[str, Any]

router = APIRouter(prefix="/ops", tags=["ops: billing"], dependencies=[OPS_ACCESS])

InvoiceIdPath = Annotated[str, Path(pattern=INVOICE_ID_PATTERN)]
CreditNoteIdPath = Annotated[str, Path(pattern=CREDIT_NOTE_ID_PATTERN)]


@router.post("/invoices/{invoice_id}/credit-notes", openapi_extra=body_of(CreditNoteRequest))
async def request_invoice_credit_note(
    invoice_id: InvoiceIdPath,
    body: ExactBody,
    w: WritePathDep,
    c: ContainerDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
    response: Response,
) -> Json:
    note = await request_credit_note(
        w,
        invoice_id=invoice_id,
        body=CreditNoteRequest.model_validate(body),
        origin=our_origin(c, correlation_id),
        now=now,
    )
    response.status_code = 201
    return envelope(shown_credit_note(note))


@router.post("/credit-notes/{credit_note_id}/approve")
async def approve_invoice_credit_note(
    credit_note_id: CreditNoteIdPath,
    w: WritePathDep,
    c: ContainerDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    note = await approve_credit_note(
        w,
        credit_note_id=credit_note_id,
        four_eyes=c.settings.billing_credit_note_four_eyes,
        origin=our_origin(c, correlation_id),
        now=now,
    )
    return envelope(shown_credit_note(note))


@router.post("/credit-notes/{credit_note_id}/reject", openapi_extra=body_of(CreditNoteRejection))
async def reject_invoice_credit_note(
    credit_note_id: CreditNoteIdPath,
    body: ExactBody,
    w: WritePathDep,
    c: ContainerDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    note = await reject_credit_note(
        w,
        credit_note_id=credit_note_id,
        body=CreditNoteRejection.model_validate(body),
        origin=our_origin(c, correlation_id),
        now=now,
    )
    return envelope(shown_credit_note(note))


@router.get("/credit-notes")
async def list_credit_notes(
    c: ContainerDep,
    response: Response,
    corporation_id: Annotated[str | None, Query(pattern=CORPORATION_ID_PATTERN)] = None,
    invoice_id: Annotated[str | None, Query(pattern=INVOICE_ID_PATTERN)] = None,
    status: CreditNoteStatus | None = None,
    after: Annotated[str | None, Query(pattern=CREDIT_NOTE_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    rows = BillingRowQuery(c.mysql).credit_notes(
        corporation_id=corporation_id,
        invoice_id=invoice_id,
        status=status.value if status else None,
        after=after,
        limit=limit,
    )
    if len(rows) == limit:
        response.headers["X-Next-After"] = rows[-1]["credit_note_id"]
    return envelope([row_json(r) for r in rows])


@router.get("/credit-notes/{credit_note_id}")
async def get_credit_note(credit_note_id: CreditNoteIdPath, c: ContainerDep) -> Json:
    query = BillingRowQuery(c.mysql)
    row = query.credit_note(credit_note_id)
    if row is None:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, f"no credit note {credit_note_id!r}", 404)
    shown = row_json(row)
    shown["lines"] = [row_json(line) for line in query.credit_note_lines(credit_note_id)]
    return envelope(shown)


async def _file(credit_note_id: str, kind: FileKind, w: WritePathDep, c: ContainerDep) -> Response:
    # The write path's state, as for an invoice's files (docs/adr/0040, 1).
    state = await w.state(SLICE, corporation_of_credit_note(credit_note_id))
    source = credit_note_source(state, credit_note_id)
    # CPU-heavy (fonts, subsetting, Factur-X): off the event loop.
    rendered = await asyncio.to_thread(renderer_of(c.settings).render_credit_note, source, kind)
    return Response(
        rendered.content,
        media_type=kind.media_type,
        headers={"Content-Disposition": f'attachment; filename="{rendered.filename}"'},
    )


@router.get("/credit-notes/{credit_note_id}/pdf", response_class=Response)
async def credit_note_pdf_file(
    credit_note_id: CreditNoteIdPath, w: WritePathDep, c: ContainerDep
) -> Response:
    return await _file(credit_note_id, FileKind.PDF, w, c)


@router.get("/credit-notes/{credit_note_id}/xml", response_class=Response)
async def credit_note_xml_file(
    credit_note_id: CreditNoteIdPath, w: WritePathDep, c: ContainerDep
) -> Response:
    return await _file(credit_note_id, FileKind.XML, w, c)


@router.get("/credit-notes/{credit_note_id}/csv", response_class=Response)
async def credit_note_csv_file(
    credit_note_id: CreditNoteIdPath, w: WritePathDep, c: ContainerDep
) -> Response:
    return await _file(credit_note_id, FileKind.CSV, w, c)
