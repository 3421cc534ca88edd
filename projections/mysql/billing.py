"""The MySQL tables of the billing slice (issue 14, docs/adr/0035): one row
per corporation in ``billing_corporations`` and one per member in
``billing_members``, folded with the slice's own ``evolve``
(producers/billing/aggregate.py), so the rows are what the write path decides on.
Invoices (docs/adr/0036): ``billing_invoices`` holds each invoice's summary
and state as the fold has it, ``billing_invoice_lines`` the lines of its
``InvoiceDrafted`` event, written once (never recomputed).

A corporation's events are on one partition (keyed by its id): the row's
``state_json`` keeps the folded state and the offset of the last event
applied, and events at or below it are skipped (a batch read again after a
crash changes nothing, docs/adr/0002). A batch is one transaction, the
corporations' rows locked in key order, like the cdrs writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.mysql import DATE, DATETIME, DECIMAL, insert

from producers.billing.aggregate import evolve
from producers.billing.state import CorporationState, CreditNoteState, InvoiceState
from projections.mysql.batches import apply_grouped, upsert
from projections.mysql.models import ascii_key, ci_text
from projections.position import Record
from schemas.events.billing import (
    ChargeRecorded,
    ChargeReversed,
    CorporationRegistered,
    CorporationStatusChanged,
    CreditNoteApproved,
    CreditNoteIssued,
    CreditNoteMailed,
    CreditNoteRejected,
    CreditNoteRequested,
    InvitationMailed,
    InvoiceDrafted,
    InvoiceIssued,
    InvoiceMailed,
    InvoiceMailingRequested,
    InvoicePaid,
    InvoiceVoided,
    MemberActivated,
    MemberInvited,
)

Row = dict[str, Any]

metadata = MetaData()

# Created by migration 0006_billing; declared here for queries.
corporations = Table(
    "billing_corporations",
    metadata,
    Column("corporation_id", ascii_key(12), primary_key=True),
    Column("legal_name", ci_text(200)),
    Column("country", ascii_key(2)),
    Column("registration_number", ci_text(40)),
    Column("vat_id", ci_text(40)),
    Column("billing_email", ci_text(254)),
    Column("billing_street", ci_text(200)),
    Column("billing_postal_code", ci_text(20)),
    Column("billing_city", ci_text(200)),
    Column("billing_country", ascii_key(2)),
    Column("currency", ascii_key(3)),
    Column("payment_method", ascii_key(32)),
    Column("price_per_kwh", DECIMAL(18, 6)),
    Column("monthly_fee_per_member", DECIMAL(18, 6)),
    Column("vat_rate", DECIMAL(18, 6)),
    Column("payment_term_days", Integer),
    Column("status", ascii_key(16)),
    Column("status_reason", ci_text(500)),
    Column("registered_at", DATETIME(fsp=3)),
    Column("updated_at", DATETIME(fsp=3)),
    Column("state_json", JSON(none_as_null=True)),
)

members = Table(
    "billing_members",
    metadata,
    Column("corporation_id", ascii_key(12), primary_key=True),
    Column("member_id", ascii_key(12), primary_key=True),
    Column("name", ci_text(200)),
    Column("email", ci_text(254)),
    Column("cost_centre", ci_text(64)),
    Column("status", ascii_key(16)),
    Column("invitation_expires_at", DATETIME(fsp=3)),
    Column("invitation_mailed", Boolean),
    Column("token_uid", ci_text(36)),
    Column("token_type", ascii_key(16)),
    Column("invited_at", DATETIME(fsp=3)),
    Column("activated_at", DATETIME(fsp=3)),
)

charges = Table(
    "billing_charges",
    metadata,
    Column("cdr_key", ascii_key(160), primary_key=True),
    Column("corporation_id", ascii_key(12)),
    Column("member_id", ascii_key(12)),
    Column("cost_centre", ci_text(64)),
    Column("role", ascii_key(8)),
    Column("token_uid", ci_text(36)),
    Column("token_type", ascii_key(16)),
    Column("start_date_time", DATETIME(fsp=3)),
    Column("end_date_time", DATETIME(fsp=3)),
    Column("energy_kwh", DECIMAL(18, 6)),
    Column("price_per_kwh", DECIMAL(18, 6)),
    Column("amount", DECIMAL(18, 6)),
    Column("currency", ascii_key(3)),
    Column("cdr_cost_excl_vat", DECIMAL(18, 6)),
    Column("reversed_by", ascii_key(160)),
    Column("reversal_amount", DECIMAL(18, 6)),
)

# Created by migration 0007_invoices.
invoices = Table(
    "billing_invoices",
    metadata,
    Column("invoice_id", ascii_key(19), primary_key=True),
    Column("corporation_id", ascii_key(12)),
    Column("month", ascii_key(7)),
    Column("status", ascii_key(8)),
    Column("number", ascii_key(16)),
    Column("buyer_legal_name", ci_text(200)),
    Column("currency", ascii_key(3)),
    Column("period_start", DATETIME(fsp=3)),
    Column("period_end", DATETIME(fsp=3)),
    Column("net_total", DECIMAL(18, 6)),
    Column("vat_total", DECIMAL(18, 6)),
    Column("gross_total", DECIMAL(18, 6)),
    Column("payment_term_days", Integer),
    Column("lines", Integer),
    Column("issue_date", DATE),
    Column("due_date", DATE),
    Column("paid_on", DATE),
    Column("payment_reference", ci_text(200)),
    Column("void_reason", ci_text(500)),
    Column("drafted_at", DATETIME(fsp=3)),
    Column("updated_at", DATETIME(fsp=3)),
    # Added by migration 0008_credit_notes (docs/adr/0041).
    Column("credited_net", DECIMAL(18, 6)),
    Column("credited_vat", DECIMAL(18, 6)),
    Column("credited_gross", DECIMAL(18, 6)),
)

invoice_lines = Table(
    "billing_invoice_lines",
    metadata,
    Column("invoice_id", ascii_key(19), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("kind", ascii_key(16)),
    Column("member_id", ascii_key(12)),
    Column("member_name", ci_text(200)),
    Column("cost_centre", ci_text(64)),
    Column("sessions", Integer),
    Column("energy_kwh", DECIMAL(18, 6)),
    Column("unit_price", DECIMAL(18, 6)),
    Column("net", DECIMAL(18, 6)),
)

# Created by migration 0008_credit_notes (docs/adr/0041).
credit_notes = Table(
    "billing_credit_notes",
    metadata,
    Column("credit_note_id", ascii_key(30), primary_key=True),
    Column("corporation_id", ascii_key(12)),
    Column("invoice_id", ascii_key(19)),
    Column("invoice_number", ascii_key(16)),
    Column("invoice_issue_date", DATE),
    Column("status", ascii_key(16)),
    Column("number", ascii_key(20)),
    Column("currency", ascii_key(3)),
    Column("reason", ci_text(500)),
    Column("lines", Integer),
    Column("net_total", DECIMAL(18, 6)),
    Column("vat_rate", DECIMAL(18, 6)),
    Column("vat_total", DECIMAL(18, 6)),
    Column("gross_total", DECIMAL(18, 6)),
    Column("settles_invoice", Boolean),
    Column("issue_date", DATE),
    Column("due_date", DATE),
    Column("requested_by", ci_text(120)),
    Column("requested_at", DATETIME(fsp=3)),
    Column("decided_by", ci_text(120)),
    Column("decided_at", DATETIME(fsp=3)),
    Column("reject_reason", ci_text(500)),
    Column("updated_at", DATETIME(fsp=3)),
)

credit_note_lines = Table(
    "billing_credit_note_lines",
    metadata,
    Column("credit_note_id", ascii_key(30), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("kind", ascii_key(16)),
    Column("description", ci_text(300)),
    Column("cdr_key", ascii_key(160)),
    Column("member_id", ascii_key(12)),
    Column("member_name", ci_text(200)),
    Column("cost_centre", ci_text(64)),
    Column("energy_kwh", DECIMAL(18, 6)),
    Column("unit_price", DECIMAL(18, 6)),
    Column("net", DECIMAL(18, 6)),
)

_BILLING_EVENTS = (
    CorporationRegistered,
    CorporationStatusChanged,
    MemberInvited,
    InvitationMailed,
    MemberActivated,
    ChargeRecorded,
    ChargeReversed,
    InvoiceDrafted,
    InvoiceIssued,
    InvoicePaid,
    InvoiceVoided,
    # Folded into the state kept with the row (docs/adr/0040); no row of their own.
    InvoiceMailingRequested,
    InvoiceMailed,
    CreditNoteRequested,
    CreditNoteApproved,
    CreditNoteRejected,
    CreditNoteIssued,
    # Folded into the state kept with the row, as an invoice's mailing is.
    CreditNoteMailed,
)


def _naive(value: datetime | None) -> datetime | None:
    # DATETIME(3) holds naive UTC; a millisecond is its resolution.
    if value is None:
        return None
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def corporation_row(state: CorporationState) -> Row:
    """The columns of one corporation's row (``state_json`` apart). Pure."""
    address, contract = state.billing_address, state.contract
    return {
        "corporation_id": state.corporation_id,
        "legal_name": state.legal_name,
        "country": state.country,
        "registration_number": state.registration_number,
        "vat_id": state.vat_id,
        "billing_email": state.billing_email,
        "billing_street": address.street,
        "billing_postal_code": address.postal_code,
        "billing_city": address.city,
        "billing_country": address.country,
        "currency": state.currency,
        "payment_method": state.payment_method.value,
        "price_per_kwh": contract.price_per_kwh,
        "monthly_fee_per_member": contract.monthly_fee_per_member,
        "vat_rate": contract.vat_rate,
        "payment_term_days": contract.payment_term_days,
        "status": state.status.value,
        "status_reason": state.status_reason,
        "registered_at": _naive(state.registered_at),
        "updated_at": _naive(state.updated_at),
    }


def member_rows(state: CorporationState) -> list[Row]:
    """The rows of the corporation's members. Pure."""
    return [
        {
            "corporation_id": state.corporation_id,
            "member_id": m.member_id,
            "name": m.name,
            "email": m.email,
            "cost_centre": m.cost_centre,
            "status": m.status.value,
            "invitation_expires_at": _naive(m.expires_at),
            "invitation_mailed": m.mailed_invitation_id == m.invitation_id,
            "token_uid": m.token_uid,
            "token_type": m.token_type,
            "invited_at": _naive(m.invited_at),
            "activated_at": _naive(m.activated_at),
        }
        for m in sorted(state.members.values(), key=lambda m: m.member_id)
    ]


def _charge_row(event: ChargeRecorded) -> Row:
    c = event.payload
    return {
        "cdr_key": c.cdr_key,
        "corporation_id": c.corporation_id,
        "member_id": c.member_id,
        "cost_centre": c.cost_centre,
        "role": c.role,
        "token_uid": c.token_uid,
        "token_type": c.token_type,
        "start_date_time": _naive(c.start_date_time),
        "end_date_time": _naive(c.end_date_time),
        "energy_kwh": c.energy_kwh,
        "price_per_kwh": c.price_per_kwh,
        "amount": c.amount,
        "currency": c.currency,
        "cdr_cost_excl_vat": c.cdr_cost_excl_vat,
        "reversed_by": None,
        "reversal_amount": None,
    }


def invoice_row(invoice: InvoiceState) -> Row:
    """The row of one invoice, from the fold's summary. Pure."""
    return {
        "invoice_id": invoice.invoice_id,
        "corporation_id": invoice.corporation_id,
        "month": invoice.month,
        "status": invoice.status.value,
        "number": invoice.number,
        "buyer_legal_name": invoice.buyer_legal_name,
        "currency": invoice.currency,
        "period_start": _naive(invoice.period_start),
        "period_end": _naive(invoice.period_end),
        "net_total": invoice.net_total,
        "vat_total": invoice.vat_total,
        "gross_total": invoice.gross_total,
        "payment_term_days": invoice.payment_term_days,
        "lines": invoice.lines,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "paid_on": invoice.paid_on,
        "payment_reference": invoice.payment_reference,
        "void_reason": invoice.void_reason,
        "drafted_at": _naive(invoice.drafted_at),
        "updated_at": _naive(invoice.updated_at),
        "credited_net": invoice.credited_net,
        "credited_vat": invoice.credited_vat,
        "credited_gross": invoice.credited_gross,
    }


def invoice_line_rows(event: InvoiceDrafted) -> list[Row]:
    """The lines of a drafted invoice, numbered from 1 in the event's order. Pure."""
    d = event.payload
    return [
        {
            "invoice_id": d.invoice_id,
            "line_no": n,
            "kind": line.kind.value,
            "member_id": line.member_id,
            "member_name": line.member_name,
            "cost_centre": line.cost_centre,
            "sessions": line.sessions,
            "energy_kwh": line.energy_kwh,
            "unit_price": line.unit_price,
            "net": line.net,
        }
        for n, line in enumerate(d.lines, start=1)
    ]


def credit_note_row(note: CreditNoteState) -> Row:
    """The row of one credit note, from the fold. Pure."""
    return {
        "credit_note_id": note.credit_note_id,
        "corporation_id": note.corporation_id,
        "invoice_id": note.invoice_id,
        "invoice_number": note.invoice_number,
        "invoice_issue_date": note.invoice_issue_date,
        "status": note.status.value,
        "number": note.number,
        "currency": note.currency,
        "reason": note.reason,
        "lines": len(note.lines),
        "net_total": note.net_total,
        "vat_rate": note.vat_rate,
        "vat_total": note.vat_total,
        "gross_total": note.gross_total,
        "settles_invoice": note.settles_invoice,
        "issue_date": note.issue_date,
        "due_date": note.due_date,
        "requested_by": note.requested_by,
        "requested_at": _naive(note.requested_at),
        "decided_by": note.decided_by,
        "decided_at": _naive(note.decided_at),
        "reject_reason": note.reject_reason,
        "updated_at": _naive(note.updated_at),
    }


def credit_note_line_rows(event: CreditNoteRequested) -> list[Row]:
    """The lines of a requested credit note, numbered from 1. Pure."""
    r = event.payload
    return [
        {
            "credit_note_id": r.credit_note_id,
            "line_no": n,
            "kind": line.kind.value,
            "description": line.description,
            "cdr_key": line.cdr_key,
            "member_id": line.member_id,
            "member_name": line.member_name,
            "cost_centre": line.cost_centre,
            "energy_kwh": line.energy_kwh,
            "unit_price": line.unit_price,
            "net": line.net,
        }
        for n, line in enumerate(r.lines, start=1)
    ]


_CREDIT_NOTE_EVENTS = (
    CreditNoteRequested,
    CreditNoteApproved,
    CreditNoteRejected,
    CreditNoteIssued,
)


def _key(record: Record[object]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, _BILLING_EVENTS) else None


_INVOICE_EVENTS = (InvoiceDrafted, InvoiceIssued, InvoicePaid, InvoiceVoided)


class BillingRowWriter:
    name = "mysql.billing"
    event_types = _BILLING_EVENTS

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def prepare(self) -> None:
        """The tables come from the Alembic migrations."""

    def wipe(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(credit_note_lines))
            conn.execute(delete(credit_notes))
            conn.execute(delete(invoice_lines))
            conn.execute(delete(invoices))
            conn.execute(delete(charges))
            conn.execute(delete(members))
            conn.execute(delete(corporations))

    def apply(self, records: Sequence[Record[object]]) -> int:
        return apply_grouped(self._engine, self.name, records, _key, self._apply)

    def _apply(self, conn: Connection, by_key: dict[str, list[Record[object]]]) -> int:
        keys = sorted(by_key)
        claim = insert(corporations)
        conn.execute(
            claim.on_duplicate_key_update(corporation_id=claim.inserted.corporation_id),
            [{"corporation_id": k, "state_json": None} for k in keys],
        )
        stored = {
            row.corporation_id: row.state_json
            for row in conn.execute(
                select(corporations.c.corporation_id, corporations.c.state_json)
                .where(corporations.c.corporation_id.in_(keys))
                .with_for_update()
            )
        }
        rows: list[Row] = []
        member_updates: list[Row] = []
        charge_rows: list[Row] = []
        reversals: list[Row] = []
        invoice_rows: list[Row] = []
        line_rows: list[Row] = []
        note_rows: list[Row] = []
        note_line_rows: list[Row] = []
        for key in keys:
            before: Row | None = stored[key]
            state = CorporationState.model_validate(before["state"]) if before else None
            last = before["offset"] if before else -1
            changed = False
            touched: set[str] = set()
            notes_touched: set[str] = set()
            for record in by_key[key]:
                if record.offset <= last:
                    continue  # applied already (a batch read again)
                state = evolve(state, record.event)  # type: ignore[arg-type]
                # Charges are rows of their own, written from their events
                # (not rewritten from the state at every change).
                if isinstance(record.event, ChargeRecorded):
                    charge_rows.append(_charge_row(record.event))
                elif isinstance(record.event, ChargeReversed):
                    r = record.event.payload
                    reversals.append({"key": r.cdr_key, "by": r.credit_cdr_key, "amount": r.amount})
                elif isinstance(record.event, InvoiceDrafted):
                    line_rows += invoice_line_rows(record.event)
                if isinstance(record.event, _INVOICE_EVENTS):
                    touched.add(record.event.payload.invoice_id)
                # A credit note's events change its row and its invoice's
                # credited totals (docs/adr/0041).
                if isinstance(record.event, CreditNoteRequested):
                    note_line_rows += credit_note_line_rows(record.event)
                if isinstance(record.event, _CREDIT_NOTE_EVENTS):
                    touched.add(record.event.payload.invoice_id)
                    notes_touched.add(record.event.payload.credit_note_id)
                last = record.offset
                changed = True
            if not changed or state is None:
                continue
            rows.append(
                corporation_row(state)
                | {"state_json": {"state": state.model_dump(mode="json"), "offset": last}}
            )
            member_updates += member_rows(state)
            invoice_rows += [invoice_row(state.invoices[i]) for i in sorted(touched)]
            note_rows += [
                credit_note_row(state.credit_notes[n])
                for n in sorted(notes_touched)
                if n in state.credit_notes
            ]
        upsert(conn, corporations, rows)
        upsert(conn, invoices, invoice_rows)
        upsert(conn, invoice_lines, line_rows)  # the rows exist: claimed above
        upsert(conn, credit_notes, note_rows)
        upsert(conn, credit_note_lines, note_line_rows)
        upsert(conn, members, member_updates)
        upsert(conn, charges, charge_rows)
        for reversal in reversals:
            conn.execute(
                update(charges)
                .where(charges.c.cdr_key == reversal["key"])
                .values(reversed_by=reversal["by"], reversal_amount=reversal["amount"])
            )
        return len(rows)


class BillingRowQuery:
    """Ops reads of the billing tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def corporations(
        self,
        *,
        status: str | None = None,
        country: str | None = None,
        name: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Corporations by id, filtered by status, country and a part of the
        legal name (its column compares without case); keyset paging."""
        query = select(*(c for c in corporations.columns if c.name != "state_json"))
        if status is not None:
            query = query.where(corporations.c.status == status)
        if country is not None:
            query = query.where(corporations.c.country == country)
        if name:
            # Matched as typed: a % or _ in it is no wildcard.
            query = query.where(corporations.c.legal_name.contains(name, autoescape=True))
        if after is not None:
            query = query.where(corporations.c.corporation_id > after)
        query = query.where(corporations.c.legal_name.is_not(None))
        query = query.order_by(corporations.c.corporation_id).limit(limit)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def members(self, corporation_id: str) -> list[Row]:
        query = (
            select(members)
            .where(members.c.corporation_id == corporation_id)
            .order_by(members.c.member_id)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def invoices(
        self,
        *,
        corporation_id: str | None = None,
        month: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Invoices by id (corporation, then month), filtered; keyset paging."""
        query = select(invoices)
        if corporation_id is not None:
            query = query.where(invoices.c.corporation_id == corporation_id)
        if month is not None:
            query = query.where(invoices.c.month == month)
        if status is not None:
            query = query.where(invoices.c.status == status)
        if after is not None:
            query = query.where(invoices.c.invoice_id > after)
        query = query.order_by(invoices.c.invoice_id).limit(limit)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def invoice(self, invoice_id: str) -> Row | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(invoices).where(invoices.c.invoice_id == invoice_id)).first()
        return dict(row._mapping) if row is not None else None

    def invoice_lines(self, invoice_id: str) -> list[Row]:
        query = (
            select(invoice_lines)
            .where(invoice_lines.c.invoice_id == invoice_id)
            .order_by(invoice_lines.c.line_no)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # --- credit notes (docs/adr/0041) ------------------------------------------------

    def credit_notes(
        self,
        *,
        corporation_id: str | None = None,
        invoice_id: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Credit notes by id (so by corporation, invoice, then order of
        request), filtered; keyset paging."""
        query = select(credit_notes)
        if corporation_id is not None:
            query = query.where(credit_notes.c.corporation_id == corporation_id)
        if invoice_id is not None:
            query = query.where(credit_notes.c.invoice_id == invoice_id)
        if status is not None:
            query = query.where(credit_notes.c.status == status)
        if after is not None:
            query = query.where(credit_notes.c.credit_note_id > after)
        query = query.order_by(credit_notes.c.credit_note_id).limit(limit)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def credit_note(self, credit_note_id: str) -> Row | None:
        query = select(credit_notes).where(credit_notes.c.credit_note_id == credit_note_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

    def credit_note_lines(self, credit_note_id: str) -> list[Row]:
        query = (
            select(credit_note_lines)
            .where(credit_note_lines.c.credit_note_id == credit_note_id)
            .order_by(credit_note_lines.c.line_no)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
