"""Credit notes through the one write path (issue 14, part E; docs/adr/0041).

The decisions are the billing slice's (producers/billing/credit_notes.py); this module
only chains the writes of an approval, which touches two aggregates:

1. the corporation's: ``CreditNoteApproved`` (who approved: the actor);
2. the numbering aggregate: the credit note's number in its own
   ``CN-YYYY-NNNNNN`` series (``invoice_numbers.decide_credit_note_number``);
3. the corporation's again: ``CreditNoteIssued`` with that number, its
   dates and its VAT.

Each step is idempotent, so approving again a credit note that stopped
between them (approved, not yet issued) finishes it with the same number;
one issued or rejected is refused. An approval is recorded before a number
is asked for, and an approved credit note can no longer be rejected, so a
number once given is always used: the series has no gap.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from producers import invoice_numbers
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.billing.credit_notes import (
    CreditNoteRejection,
    CreditNoteRequest,
    corporation_of_credit_note,
    decide_credit_approve,
    decide_credit_issue,
    decide_credit_reject,
    decide_credit_request,
)
from producers.billing.invoices import corporation_of_invoice
from producers.billing.state import CreditNoteState
from producers.write_path import Origin, WritePath, current_actor
from schemas.events.billing import CreditNoteStatus

log = structlog.get_logger(__name__)


async def request_credit_note(
    write_path: WritePath,
    *,
    invoice_id: str,
    body: CreditNoteRequest,
    origin: Origin,
    now: datetime,
) -> CreditNoteState:
    actor = current_actor()
    note = await write_path.write(
        BILLING_SLICE,
        corporation_of_invoice(invoice_id),
        lambda s: decide_credit_request(
            s, invoice_id=invoice_id, body=body, actor=actor, origin=origin, now=now
        ),
    )
    log.info(
        "credit_note_requested",
        credit_note_id=note.credit_note_id,
        net=str(note.net_total),
        by=note.requested_by,
    )
    return note


async def approve_credit_note(
    write_path: WritePath,
    *,
    credit_note_id: str,
    four_eyes: bool,
    origin: Origin,
    now: datetime,
) -> CreditNoteState:
    """Approve and issue (see the module)."""
    actor = current_actor()
    corporation_id = corporation_of_credit_note(credit_note_id)
    approved = await write_path.write(
        BILLING_SLICE,
        corporation_id,
        lambda s: decide_credit_approve(
            s,
            credit_note_id=credit_note_id,
            actor=actor,
            four_eyes=four_eyes,
            origin=origin,
            now=now,
        ),
    )
    assert approved.status is CreditNoteStatus.APPROVED
    given = await write_path.write(
        invoice_numbers.SLICE,
        invoice_numbers.KEY,
        lambda s: invoice_numbers.decide_credit_note_number(
            s, credit_note_id=credit_note_id, origin=origin, now=now
        ),
    )
    issued = await write_path.write(
        BILLING_SLICE,
        corporation_id,
        lambda s: decide_credit_issue(
            s,
            credit_note_id=credit_note_id,
            number=given.number,
            issue_date=given.issue_date,
            origin=origin,
            now=now,
        ),
    )
    log.info(
        "credit_note_issued",
        credit_note_id=credit_note_id,
        number=issued.number,
        gross=str(issued.gross_total),
        by=issued.decided_by,
    )
    return issued


async def reject_credit_note(
    write_path: WritePath,
    *,
    credit_note_id: str,
    body: CreditNoteRejection,
    origin: Origin,
    now: datetime,
) -> CreditNoteState:
    actor = current_actor()
    return await write_path.write(
        BILLING_SLICE,
        corporation_of_credit_note(credit_note_id),
        lambda s: decide_credit_reject(
            s, credit_note_id=credit_note_id, body=body, actor=actor, origin=origin, now=now
        ),
    )
