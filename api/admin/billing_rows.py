"""What the dashboard's billing pages show (issue 14, docs/adr/0034): pure
functions from the billing slice's state and MySQL rows to the rows a
template renders (api/admin/billing.py). No I/O. Money is shown exactly, as
stored (Decimal), never through a float.

Which invoice documents, e-mails and credit notes a page offers depends on
whether the app serves their ops routes (``BillingExtras``): those come in
their own parts of issue 14, and a page links to nothing that is not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from api.admin.shown import amount
from producers.billing.state import CorporationState, InvoiceState, MemberState
from schemas.events.billing import CorporationStatus, InvoiceStatus, MemberStatus

Row = dict[str, Any]

CORPORATION_STATUSES = [s.value for s in CorporationStatus]
INVOICE_STATUSES = [s.value for s in InvoiceStatus]


def stamp(value: datetime | None) -> str:
    """A moment for people: "2026-06-01 12:00 UTC" (rows hold naive UTC)."""
    if value is None:
        return ""
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def percent(rate: Decimal | None) -> str:
    """A VAT rate held as a fraction (0.21) as people say it: "21 %"."""
    if rate is None:
        return ""
    shown = (Decimal(rate) * 100).normalize()
    return f"{shown:f} %"


def money(value: Any, currency: str) -> str:
    """An exact amount with its currency: "1,234.50 EUR"."""
    if value is None:
        return ""
    return f"{amount(value)} {currency}".strip()


# --- corporations -----------------------------------------------------------------------


def corporation_list_row(row: Row) -> Row:
    """A ``billing_corporations`` row as the corporations list shows it."""
    currency = row.get("currency") or ""
    return {
        "id": row["corporation_id"],
        "name": row.get("legal_name") or "",
        "country": row.get("country") or "",
        "registration_number": row.get("registration_number") or "",
        "vat_id": row.get("vat_id") or "",
        "email": row.get("billing_email") or "",
        "price": money(row.get("price_per_kwh"), currency) + " / kWh",
        "status": row.get("status") or "",
        "registered": stamp(row.get("registered_at")),
        "href": f"/admin/corporations/{row['corporation_id']}",
    }


@dataclass(frozen=True)
class MemberShown:
    """A member's invitation state in one word, and in a sentence."""

    state: str  # invited, mailed, expired, active
    words: str


def member_state(member: MemberState, now: datetime) -> MemberShown:
    """Where a member stands: invited (the e-mail not accepted by the SMTP
    server yet), mailed (it was; the link not followed), expired (the link
    is too old: invite again), active."""
    if member.status is MemberStatus.ACTIVE:
        return MemberShown("active", f"active since {stamp(member.activated_at)}")
    if member.expires_at <= now:
        return MemberShown("expired", f"invitation expired {stamp(member.expires_at)}")
    if member.mailed_invitation_id == member.invitation_id:
        return MemberShown("mailed", f"e-mail sent; link valid until {stamp(member.expires_at)}")
    return MemberShown("invited", "invited; the e-mail has not been sent yet")


def member_row(member: MemberState, now: datetime) -> Row:
    shown = member_state(member, now)
    return {
        "id": member.member_id,
        "name": member.name,
        "email": member.email,
        "cost_centre": member.cost_centre or "",
        "state": shown.state,
        "state_words": shown.words,
        "token": f"{member.token_uid} ({member.token_type})" if member.token_uid else "",
        "invited": stamp(member.invited_at),
        # Only a member who has not activated can be invited again.
        "may_reinvite": member.status is not MemberStatus.ACTIVE,
    }


def cost_centres(members: Iterable[MemberState]) -> list[Row]:
    """Each cost centre with its members and how many are active; members
    without one under "" (shown as "none"), listed last."""
    held: dict[str, list[MemberState]] = {}
    for m in members:
        held.setdefault(m.cost_centre or "", []).append(m)
    return [
        {
            "name": name,
            "members": len(group),
            "active": sum(1 for m in group if m.status is MemberStatus.ACTIVE),
        }
        for name, group in sorted(held.items(), key=lambda item: (item[0] == "", item[0].lower()))
    ]


def status_actions(status: CorporationStatus) -> list[str]:
    """What may be done to a corporation in ``status`` (producers/billing/corporations.py
    refuses the rest): a closed one stays closed."""
    if status is CorporationStatus.ACTIVE:
        return ["suspend", "close"]
    if status is CorporationStatus.SUSPENDED:
        return ["reinstate", "close"]
    return []


def corporation_detail(state: CorporationState, now: datetime) -> Row:
    """One corporation as its page shows it, from the write path's state
    (what the next write is decided on, so an action shows at once)."""
    contract, address, currency = state.contract, state.billing_address, state.currency
    members = sorted(state.members.values(), key=lambda m: (m.name.lower(), m.member_id))
    return {
        "id": state.corporation_id,
        "name": state.legal_name,
        "country": state.country,
        "registration_number": state.registration_number,
        "vat_id": state.vat_id,
        "email": state.billing_email,
        "address": [address.street, f"{address.postal_code} {address.city}", address.country],
        "currency": currency,
        "payment_method": state.payment_method.value,
        "contract": {
            "price": money(contract.price_per_kwh, currency) + " per kWh excl. VAT",
            "fee": money(contract.monthly_fee_per_member, currency) + " per active member a month"
            if contract.monthly_fee_per_member is not None
            else "none",
            "vat": percent(contract.vat_rate),
            "term": f"{contract.payment_term_days} days",
        },
        "status": state.status.value,
        "status_reason": state.status_reason or "",
        "status_since": stamp(state.status_since),
        "registered": stamp(state.registered_at),
        "members": [member_row(m, now) for m in members],
        "cost_centres": cost_centres(members),
        "actions": status_actions(state.status),
        "may_invite": state.status is CorporationStatus.ACTIVE,
        "invoices": [
            invoice_summary(i)
            for i in sorted(state.invoices.values(), key=lambda i: i.month, reverse=True)
        ],
    }


# --- invoices -----------------------------------------------------------------------------


def invoice_list_row(row: Row) -> Row:
    """A ``billing_invoices`` row as the invoices list shows it."""
    currency = row.get("currency") or ""
    return {
        "id": row["invoice_id"],
        "number": row.get("number") or "",
        "month": row.get("month") or "",
        "corporation_id": row.get("corporation_id") or "",
        "buyer": row.get("buyer_legal_name") or "",
        "status": row.get("status") or "",
        "net": money(row.get("net_total"), currency),
        "vat": money(row.get("vat_total"), currency),
        "gross": money(row.get("gross_total"), currency),
        "issued": day(row.get("issue_date")),
        "due": day(row.get("due_date")),
        "paid": day(row.get("paid_on")),
        "href": f"/admin/invoices/{row['invoice_id']}",
    }


def invoice_summary(invoice: InvoiceState) -> Row:
    """An invoice as its corporation's aggregate holds it (the write path's
    state: a payment or a void shows at once)."""
    currency = invoice.currency
    return {
        "id": invoice.invoice_id,
        "corporation_id": invoice.corporation_id,
        "number": invoice.number or "",
        "month": invoice.month,
        "buyer": invoice.buyer_legal_name,
        "status": invoice.status.value,
        "currency": currency,
        "period": f"{stamp(invoice.period_start)} to {stamp(invoice.period_end)}",
        "net": money(invoice.net_total, currency),
        "vat": money(invoice.vat_total, currency),
        "gross": money(invoice.gross_total, currency),
        "term": f"{invoice.payment_term_days} days",
        "lines": invoice.lines,
        "issued": day(invoice.issue_date),
        "due": day(invoice.due_date),
        "paid": day(invoice.paid_on),
        "reference": invoice.payment_reference or "",
        "void_reason": invoice.void_reason or "",
        # producers/billing/invoices.py: only an issued invoice is paid or voided.
        "may_settle": invoice.status is InvoiceStatus.ISSUED,
        "href": f"/admin/invoices/{invoice.invoice_id}",
    }


_KINDS = {
    "CHARGES": "Charging",
    "REVERSALS": "Reversed (Credit CDRs)",
    "MONTHLY_FEE": "Monthly fee",
}


def invoice_line_row(line: Row, currency: str) -> Row:
    """A ``billing_invoice_lines`` row: what, for whom, how much."""
    kind = line.get("kind") or ""
    energy = line.get("energy_kwh")
    return {
        "no": line["line_no"],
        "kind": kind,
        "what": _KINDS.get(kind, kind),
        "member": line.get("member_name") or line.get("member_id") or "",
        "cost_centre": line.get("cost_centre") or "",
        "sessions": line.get("sessions") if kind != "MONTHLY_FEE" else "",
        "kwh": amount(energy) if energy is not None and kind != "MONTHLY_FEE" else "",
        "unit_price": money(line.get("unit_price"), currency),
        "net": money(line.get("net"), currency),
    }


def cost_centre_subtotals(lines: Iterable[Row], currency: str) -> list[Row]:
    """The net of each cost centre's lines (no cost centre last, as
    "none"): the lines' nets add up exactly (each charge was rounded once
    when recorded, docs/adr/0036)."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        name = line.get("cost_centre") or ""
        totals[name] = totals.get(name, Decimal(0)) + Decimal(str(line.get("net") or 0))
    return [
        {"name": name, "net": money(net, currency)}
        for name, net in sorted(totals.items(), key=lambda item: (item[0] == "", item[0].lower()))
    ]


# --- what other parts of issue 14 add ---------------------------------------------------


@dataclass(frozen=True)
class BillingExtras:
    """Which ops routes of invoice documents, e-mails and credit notes the
    app serves: the pages offer a link or a button only for those."""

    documents: tuple[str, ...] = ()  # "pdf", "xml", "csv"
    resend: bool = False
    credit_notes: bool = False  # the list of credit notes
    credit_note_request: bool = False  # a credit note against an invoice


DOCUMENT_KINDS = ("pdf", "xml", "csv")
RESEND = ("POST", "/ops/invoices/{invoice_id}/mail")
CREDIT_NOTES = ("GET", "/ops/credit-notes")
CREDIT_NOTE_REQUEST = ("POST", "/ops/invoices/{invoice_id}/credit-notes")


def billing_extras(routes: Iterable[tuple[str, str]]) -> BillingExtras:
    """What of the later parts the app serves, from its (method, path) pairs."""
    served = set(routes)
    return BillingExtras(
        documents=tuple(
            kind
            for kind in DOCUMENT_KINDS
            if ("GET", f"/ops/invoices/{{invoice_id}}/{kind}") in served
        ),
        resend=RESEND in served,
        credit_notes=CREDIT_NOTES in served,
        credit_note_request=CREDIT_NOTE_REQUEST in served,
    )
